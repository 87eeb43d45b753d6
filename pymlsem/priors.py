"""Prior distributions: blavaan-style prior strings, defaults per parameter class, user overrides.

A prior is written as blavaan writes it: ``"normal(0,10)"``, ``"gamma(1,.5)[sd]"``, ``"beta(1,1)"``.
For variance parameters a suffix says what the distribution is placed on: ``[sd]`` the standard
deviation, ``[var]`` the variance, ``[prec]`` the precision. Gamma and inverse-gamma use the
shape/rate parameterization (as Stan and JAGS do).

Parameter classes follow blavaan's names:

========  ==========================================  =====================
class     parameters                                  default prior
========  ==========================================  =====================
lambda    factor loadings (``=~``)                    ``normal(0,10)``
beta      regressions (``~``)                         ``normal(0,10)``
nu        intercepts of observed variables (``~1``)   ``normal(0,32)``
alpha     means/intercepts of latent variables        ``normal(0,10)``
theta     (residual) variances of observed variables  ``gamma(1,.5)[sd]``
psi       (residual) variances of latent variables    ``gamma(1,.5)[sd]``
rho       correlations (covariances ``~~``)           ``beta(1,1)``
tau       thresholds of ordered variables (``|``)     ``normal(0,1.5)``
========  ==========================================  =====================

``beta(a,b)`` on a correlation is placed on ``(rho + 1) / 2``, as blavaan does.

**In the data's units.** These defaults are blavaan's numbers for data whose variables have unit scale;
pymlsem applies them to each parameter in its data's units (:func:`scaled_prior` with a unit from
:mod:`pymlsem.build.prior_units`): a loading of indicator ``y`` on factor ``f`` gets ``normal(0, 10 *
sd(y) / sd(f))``, a regression of ``y`` on ``x`` ``normal(0, 10 * sd(y) / sd(x))``, an intercept or mean
``normal(0, 32 * rms(y))`` (``rms = sqrt(mean^2 + sd^2)``, so that a variable far from zero is not pulled
towards it), a variance ``gamma(1, .5 / sd(y))[sd]``. A factor's scale is its marker indicator's (divided
by the fixed loading) or the square root of its fixed variance. So the same model on data in other units
gives the correspondingly transformed posterior (exactly for a change of scale; a shift moves only the
intercepts' prior widths). ``priors="blavaan"`` uses blavaan's numbers as they are. Priors a user gives,
by class or by parameter, are used as written.

Thresholds: ``normal(0,1.5)`` is blavaan's current default for ``tau`` (target ``"stan"``; older
releases used ``normal(0,10^.5)``). On the probit scale 95% of its mass lies within +-2.9, cut points
between the 0.2% and 99.8% quantiles of a standard normal latent response. The thresholds of one
variable get the product of their priors restricted to increasing values (see
:func:`pymlsem.build.categorical.threshold_variable`); their family must be on the real line (normal,
student_t, cauchy, uniform) and shared by the thresholds of one variable.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pymlsem.exceptions import PriorError

DEFAULT_PRIORS: dict[str, str] = {
    "lambda": "normal(0,10)",
    "beta": "normal(0,10)",
    "nu": "normal(0,32)",
    "alpha": "normal(0,10)",
    "theta": "gamma(1,.5)[sd]",
    "psi": "gamma(1,.5)[sd]",
    "rho": "beta(1,1)",
    "tau": "normal(0,1.5)",
}

#: family -> (argument names, support) where support is "real", "positive" or "unit".
FAMILIES: dict[str, tuple[tuple[str, ...], str]] = {
    "normal": (("mu", "sigma"), "real"),
    "student_t": (("nu", "mu", "sigma"), "real"),
    "cauchy": (("alpha", "beta"), "real"),
    "gamma": (("alpha", "beta"), "positive"),
    "inv_gamma": (("alpha", "beta"), "positive"),
    "lognormal": (("mu", "sigma"), "positive"),
    "exponential": (("lam",), "positive"),
    "halfnormal": (("sigma",), "positive"),
    "halfcauchy": (("beta",), "positive"),
    "halft": (("nu", "sigma"), "positive"),
    "beta": (("alpha", "beta"), "unit"),
    "uniform": (("lower", "upper"), "bounded"),
}
_ALIASES = {
    "dnorm": "normal",
    "norm": "normal",
    "t": "student_t",
    "studentt": "student_t",
    "invgamma": "inv_gamma",
    "inverse_gamma": "inv_gamma",
    "dgamma": "gamma",
    "lnorm": "lognormal",
    "half_normal": "halfnormal",
    "half_cauchy": "halfcauchy",
    "exp": "exponential",
    "dbeta": "beta",
    "unif": "uniform",
}
_SCALES = ("sd", "var", "prec")
_PRIOR_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*(\[\s*([A-Za-z]+)\s*\])?\s*$")


@dataclass(frozen=True)
class Prior:
    """One parsed prior.

    Attributes
    ----------
    family
        Canonical family name, a key of :data:`FAMILIES`.
    args
        Numeric arguments in the order of ``FAMILIES[family][0]``.
    scale
        For variance parameters: ``"sd"``, ``"var"`` or ``"prec"``; ``None`` otherwise.
    """

    family: str
    args: tuple[float, ...]
    scale: str | None = None

    @property
    def support(self) -> str:
        """The support of the distribution: ``"real"``, ``"positive"``, ``"unit"`` or ``"bounded"``."""
        return FAMILIES[self.family][1]

    def kwargs(self) -> dict[str, float]:
        """Keyword arguments for the PyMC distribution of the same name."""
        return dict(zip(FAMILIES[self.family][0], self.args, strict=True))

    def __str__(self) -> str:
        args = ",".join(f"{a:g}" for a in self.args)
        suffix = f"[{self.scale}]" if self.scale else ""
        return f"{self.family}({args}){suffix}"


def parse_prior(text: str, *, where: str = "") -> Prior:
    """Parse a blavaan-style prior string such as ``"gamma(1,.5)[sd]"``.

    Parameters
    ----------
    text
        The prior.
    where
        Which parameter the prior is for, used in error messages.

    Returns
    -------
    Prior

    Raises
    ------
    PriorError
        For an unknown family, a wrong number of arguments or an invalid argument.
    """
    at = f" (for {where})" if where else ""
    match = _PRIOR_RE.match(text)
    if not match:
        raise PriorError(
            f"cannot read the prior {text!r}{at}: write it as family(arguments), "
            'for example "normal(0,10)" or "gamma(1,.5)[sd]"'
        )
    name, arg_text, _, scale = match.groups()
    family = _ALIASES.get(name.lower(), name.lower())
    if family not in FAMILIES:
        known = ", ".join(sorted(FAMILIES))
        raise PriorError(f"unknown prior family {name!r} in {text!r}{at}; known families: {known}")
    try:
        args = tuple(float(_number(a)) for a in arg_text.split(",")) if arg_text.strip() else ()
    except (ValueError, SyntaxError) as err:
        raise PriorError(f"the arguments of {text!r}{at} must be numbers") from err
    names = FAMILIES[family][0]
    if len(args) != len(names):
        raise PriorError(
            f"{family} takes {len(names)} argument(s) ({', '.join(names)}), got {len(args)} in {text!r}{at}"
        )
    if scale is not None:
        scale = scale.lower()
        if scale not in _SCALES:
            raise PriorError(f"unknown suffix [{scale}] in {text!r}{at}; use [sd], [var] or [prec]")
    _check_arguments(family, args, text, at)
    return Prior(family, args, scale)


def _number(text: str) -> float:
    node = ast.parse(text.strip(), mode="eval").body
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        node = node.operand
    else:
        sign = 1.0
    if not isinstance(node, ast.Constant) or not isinstance(node.value, int | float):
        raise ValueError(text)
    return sign * float(node.value)


def _check_arguments(family: str, args: tuple[float, ...], text: str, at: str) -> None:
    names = FAMILIES[family][0]
    for name, value in zip(names, args, strict=True):
        if name in ("sigma", "beta", "alpha", "lam", "nu") and family != "cauchy" and value <= 0:
            raise PriorError(f"{name} must be positive in {text!r}{at}")
        if family == "cauchy" and name == "beta" and value <= 0:
            raise PriorError(f"the scale of a cauchy prior must be positive in {text!r}{at}")
    if family == "uniform" and not args[0] < args[1]:
        raise PriorError(f"uniform(lower, upper) needs lower < upper in {text!r}{at}")
    if not np.all(np.isfinite(args)):
        raise PriorError(f"prior arguments must be finite in {text!r}{at}")


#: the ways of choosing the default priors: in the data's units, or blavaan's numbers as they are
DEFAULT_PRIOR_CHOICES = ("scaled", "blavaan")


def scaled_prior(prior: Prior, unit: float) -> Prior:
    """A prior on a parameter measured in ``unit`` s: the distribution of ``unit * X`` for ``X ~ prior``.

    Location-scale families on the real line scale their location and scale; a prior on a standard
    deviation (``[sd]``) of the gamma, halfnormal, halfcauchy, halft, exponential or lognormal family
    scales the SD. Other priors (correlations, variances with ``[var]``/``[prec]``) are returned as they are.
    """
    if unit == 1.0 or not np.isfinite(unit) or unit <= 0:
        return prior
    args = list(prior.args)
    family = prior.family
    if family in ("normal", "student_t") or (family == "lognormal" and prior.scale == "sd"):
        where = {"normal": (0, 1), "student_t": (1, 2), "lognormal": ()}[family]
        for k in where:
            args[k] *= unit
        if family == "lognormal":
            args[0] += float(np.log(unit))
    elif family == "cauchy":
        args = [args[0] * unit, args[1] * unit]
    elif prior.scale == "sd" and family in ("gamma", "exponential"):
        args[-1] /= unit  # the rate
    elif prior.scale == "sd" and family in ("halfnormal", "halfcauchy", "halft"):
        args[-1] *= unit
    else:
        return prior
    return Prior(family, tuple(float(a) for a in args), prior.scale)


def resolve_prior(
    pclass: str,
    *,
    names: tuple[str, ...] = (),
    syntax_prior: str = "",
    priors: Mapping[str, str] | None = None,
    unit: float = 1.0,
) -> Prior:
    """Choose the prior of one parameter.

    The order of precedence is: a prior written in the model syntax (``prior("...")*x``), then an
    entry of ``priors`` keyed by one of the parameter's ``names`` (its label or ``"lhs op rhs"``),
    then an entry of ``priors`` keyed by its class, then :data:`DEFAULT_PRIORS` in the parameter's
    ``unit`` (:func:`scaled_prior`).

    Parameters
    ----------
    pclass
        The parameter class: ``"lambda"``, ``"beta"``, ``"nu"``, ``"alpha"``, ``"theta"``, ``"psi"``,
        ``"rho"`` or ``"tau"``.
    names
        Names by which a user may refer to the parameter in ``priors``.
    syntax_prior
        The prior written in the model syntax, or ``""``.
    priors
        The user's ``priors=`` argument.
    unit
        The parameter's unit in the data (1: blavaan's default as it is).
    """
    priors = dict(priors or {})
    where = names[0] if names else pclass
    if syntax_prior:
        prior = parse_prior(syntax_prior, where=where)
    else:
        text = next((priors[n] for n in names if n in priors), None) or priors.get(pclass)
        prior = (
            parse_prior(text, where=where)
            if text
            else scaled_prior(parse_prior(DEFAULT_PRIORS[pclass]), unit)
        )
    _check_fits_class(prior, pclass, where)
    return prior


def check_prior_keys(priors: Mapping[str, str] | None, known_names: set[str]) -> None:
    """Raise :class:`PriorError` for a ``priors=`` key that names neither a class nor a parameter."""
    for key in priors or {}:
        if key not in DEFAULT_PRIORS and key not in known_names:
            classes = ", ".join(DEFAULT_PRIORS)
            raise PriorError(
                f"priors={{{key!r}: ...}} names no parameter of the model; use a class ({classes}), "
                "a label from the model, or a parameter written as in the summary (e.g. 'fw=~y2')"
            )


def _check_fits_class(prior: Prior, pclass: str, where: str) -> None:
    if pclass in ("theta", "psi"):
        if prior.support not in ("positive", "bounded"):
            raise PriorError(
                f"the prior {prior} for the variance {where} must be on positive values "
                "(gamma, lognormal, halfnormal, ...) with a [sd], [var] or [prec] suffix"
            )
        if prior.family == "uniform" and prior.args[0] < 0:
            raise PriorError(f"a uniform prior on the variance {where} needs lower >= 0")
    elif pclass == "rho":
        if prior.family != "beta":
            raise PriorError(f"the prior for the correlation {where} must be beta(a,b), got {prior}")
    elif prior.support not in ("real", "bounded"):
        raise PriorError(f"the prior {prior} for {where} must be on the real line (normal, student_t, ...)")
    if pclass not in ("theta", "psi") and prior.scale is not None:
        raise PriorError(f"the suffix [{prior.scale}] only applies to variances, not to {where}")
