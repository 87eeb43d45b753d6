"""Free parameters of a parameter table: which rows share one, their class, prior and PyMC variable.

Rows of the table with the same label are one parameter (an equality constraint), as are labels tied
by ``a == b``. Each free parameter belongs to a blavaan class (see :mod:`pymlsem.priors`) and becomes
one element of a vector random variable named after its class:

==========================  ===================  ===========================================
PyMC variable               dimension            holds
==========================  ===================  ===========================================
``loadings``                ``loading``          factor loadings
``regressions``             ``regression``       regression coefficients
``intercepts``              ``intercept``        intercepts of observed variables
``latent_means``            ``latent_mean``      means/intercepts of latent variables
``residual_sds``            ``residual_sd``      SDs of observed (residual) variances ([sd] priors)
``latent_sds``              ``latent_sd``        SDs of latent (residual) variances ([sd] priors)
``correlations_scaled``     ``correlation``      ``(rho + 1) / 2`` of each free correlation
``thresholds_<var>``        ``threshold_<var>``  free thresholds of ordered variable <var>
==========================  ===================  ===========================================

(``[var]`` and ``[prec]`` priors give ``*_variances`` and ``*_precisions`` variables instead of SDs; a
prior family other than normal/gamma/beta adds ``_<family>`` to the variable and dimension names.)

**Signed SDs.** A builder may ask for some SDs to be sampled with their sign (:attr:`FreeParameter.signed`,
the latent builder's level-2 disturbances, see :mod:`pymlsem.build.latent`): the variable ``*_sds_signed``
then holds a value ``s`` on the whole real line whose square is the variance, under the symmetric
extension of the SD's prior (density ``p(|s|) / 2``: ``gamma(1, b)`` and ``exponential(b)`` become
``laplace(0, 1/b)``, the half-normal, half-Cauchy and half-t their full distributions), so the prior on
``|s|`` is the prior as written. Only priors whose density is finite and positive at 0 extend so
(:func:`can_be_signed`); the others keep the positive SD.

Prior hyperparameters enter as ``pm.Data`` so that a compiled model can be refitted with other priors.

Thresholds (class ``tau``) get one variable per ordered variable, with coordinates ``t1``, ``t2``, ...
(the free ones), increasing by construction (PyMC's ordered transform; between the bounds set by fixed
thresholds when some are fixed, see :func:`pymlsem.build.categorical.threshold_variable`). Equality
constraints (shared labels, ``==``) on thresholds are not supported yet and are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from pymlsem.build.categorical import increasing_initial_values, threshold_variable
from pymlsem.exceptions import ModelSpecificationError, PriorError
from pymlsem.priors import Prior, check_prior_keys, resolve_prior

#: class -> (variable name, dimension name) for parameters that are used as they are.
_PLAIN = {
    "lambda": ("loadings", "loading"),
    "beta": ("regressions", "regression"),
    "nu": ("intercepts", "intercept"),
    "alpha": ("latent_means", "latent_mean"),
}
_VARIANCE_NAMES = {"theta": "residual", "psi": "latent"}
_SCALE_WORDS = {"sd": ("sds", "sd"), "var": ("variances", "variance"), "prec": ("precisions", "precision")}


@dataclass
class FreeParameter:
    """One free parameter, possibly shared by several rows of the parameter table.

    Attributes
    ----------
    name
        Display name: the label, or ``lhs op rhs`` (with ``@within``/``@between`` in two-level models).
    pclass
        blavaan class: lambda, beta, nu, alpha, theta, psi, rho or tau.
    rows
        Positions (0-based) of the table rows that share this parameter.
    prior
        The prior in use.
    aliases
        The ``lhs op rhs`` names of its rows.
    lhs, rhs
        Left- and right-hand side of its first row (for a threshold: the variable and ``t<j>``).
    bounds
        For a threshold: the values of the nearest fixed thresholds of the same variable below and
        above it (``-inf``/``inf`` when there is none); ``(-inf, inf)`` otherwise.
    """

    name: str
    pclass: str
    rows: list[int]
    prior: Prior | None = None
    aliases: tuple[str, ...] = field(default_factory=tuple)
    lhs: str = ""
    rhs: str = ""
    bounds: tuple[float, float] = (-np.inf, np.inf)
    signed: bool = False

    @property
    def variable(self) -> tuple[str, str]:
        """(PyMC variable name, dimension name) this parameter is an element of."""
        if self.pclass == "tau":
            name, dim = f"thresholds_{self.lhs}", f"threshold_{self.lhs}"
        elif self.pclass in _PLAIN:
            name, dim = _PLAIN[self.pclass]
        elif self.pclass in _VARIANCE_NAMES:
            plural, singular = _SCALE_WORDS[self.scale]
            prefix = _VARIANCE_NAMES[self.pclass]
            name, dim = f"{prefix}_{plural}", f"{prefix}_{singular}"
        else:
            name, dim = "correlations_scaled", "correlation"
        if self.prior is not None and self.prior.family not in ("normal", "gamma", "beta"):
            name, dim = f"{name}_{self.prior.family}", f"{dim}_{self.prior.family}"
        if self.signed:
            name, dim = f"{name}_signed", f"{dim}_signed"
        return name, dim

    @property
    def scale(self) -> str:
        """For variances: what the prior is placed on (``sd``, ``var`` or ``prec``)."""
        return (self.prior.scale if self.prior is not None else None) or "sd"


#: prior family of an SD -> the PyMC distribution of its symmetric extension, from the family's arguments
_SIGNED_DISTRIBUTIONS = {
    "gamma": lambda alpha, beta: (pm.Laplace, {"mu": 0.0, "b": 1.0 / beta}),  # alpha is 1
    "exponential": lambda lam: (pm.Laplace, {"mu": 0.0, "b": 1.0 / lam}),
    "halfnormal": lambda sigma: (pm.Normal, {"mu": 0.0, "sigma": sigma}),
    "halfcauchy": lambda beta: (pm.Cauchy, {"alpha": 0.0, "beta": beta}),
    "halft": lambda nu, sigma: (pm.StudentT, {"nu": nu, "mu": 0.0, "sigma": sigma}),
}


def can_be_signed(param: FreeParameter) -> bool:
    """Whether a free parameter is an SD whose prior extends symmetrically to the real line (a density
    finite and positive at 0: ``gamma`` with shape 1, ``exponential``, ``halfnormal``, ``halfcauchy``,
    ``halft``)."""
    prior = param.prior
    if param.pclass not in _VARIANCE_NAMES or param.scale != "sd" or prior is None:
        return False
    if prior.family == "gamma":
        return prior.args[0] == 1.0
    return prior.family in _SIGNED_DISTRIBUTIONS


def parameter_class(lhs: str, op: str, rhs: str, latent: set[str]) -> str:
    """blavaan's class of a parameter table row (``"tau"`` for a threshold ``y | t1``)."""
    if op == "|":
        return "tau"
    if op == "=~":
        return "lambda"
    if op == "~":
        return "beta"
    if op == "~1":
        return "alpha" if lhs in latent else "nu"
    if op == "~~":
        if lhs != rhs:
            return "rho"
        return "psi" if lhs in latent else "theta"
    raise ModelSpecificationError(f"no parameter class for operator {op!r}")


def row_name(row: pd.Series, two_level: bool) -> str:
    """The display name of a table row, e.g. ``fw=~y2@within``."""
    name = f"{row.lhs}{row.op}{row.rhs}"
    if two_level:
        name += "@within" if int(row.level) == 1 else "@between"
    return name


def collect_free_parameters(
    table: pd.DataFrame,
    latent: set[str],
    *,
    two_level: bool,
    tied_labels: list[tuple[str, str]] = (),
    priors: Mapping[str, str] | None = None,
    units: np.ndarray | None = None,
) -> list[FreeParameter]:
    """Group the free rows of ``table`` into parameters and give each its prior.

    Parameters
    ----------
    table
        The parameter table (see ``docs/architecture.md``).
    latent
        Names of latent variables (any level).
    two_level
        Whether names get ``@within``/``@between``.
    tied_labels
        Pairs of labels made equal by ``a == b`` constraints.
    priors
        The user's ``priors=`` argument (class or parameter name -> prior string).
    units
        Each row's unit in the data (:mod:`pymlsem.build.prior_units`), for the default priors; None:
        blavaan's defaults as they are.
    """
    root = {}

    def find(label: str) -> str:
        while root.get(label, label) != label:
            label = root[label]
        return label

    for a, b in tied_labels:
        root[find(a)] = find(b)

    groups: dict[str, FreeParameter] = {}
    for pos, row in enumerate(table.itertuples(index=False)):
        if int(row.free) == 0:
            continue
        label = str(row.label or "")
        key = find(label) if label else f"#{pos}"
        pclass = parameter_class(row.lhs, row.op, row.rhs, latent)
        rname = row_name(pd.Series(row._asdict()), two_level)
        if key not in groups:
            groups[key] = FreeParameter(name=label or rname, pclass=pclass, rows=[pos], aliases=(rname,),
                                        lhs=str(row.lhs), rhs=str(row.rhs))  # fmt: skip
        else:
            group = groups[key]
            if group.pclass == "tau" or pclass == "tau":
                raise ModelSpecificationError(
                    f"the label {label!r} makes thresholds equal to another parameter ({group.aliases[0]} "
                    f"and {rname}); equality constraints on thresholds are not supported yet: remove the "
                    "shared label (or the '==' constraint)"
                )
            if group.pclass == "rho" or pclass == "rho":
                raise ModelSpecificationError(
                    f"the label {label!r} makes covariances equal ({group.aliases[0]} and {rname}); "
                    "equality constraints on covariances are not supported yet: remove the shared label"
                )
            group.rows.append(pos)
            group.aliases = (*group.aliases, rname)

    params = list(groups.values())
    _set_threshold_bounds(table, params)
    known = {a for p in params for a in p.aliases} | {p.name for p in params}
    check_prior_keys(priors, known | set(table.loc[table.label != "", "label"]))
    for p in params:
        syntax = next((str(table.prior.iloc[r]) for r in p.rows if str(table.prior.iloc[r] or "")), "")
        unit = 1.0 if units is None else float(units[p.rows[0]])
        p.prior = resolve_prior(
            p.pclass, names=(p.name, *p.aliases), syntax_prior=syntax, priors=priors, unit=unit
        )
    return params


def _set_threshold_bounds(table: pd.DataFrame, params: list[FreeParameter]) -> None:
    """Give each free threshold the fixed thresholds of its variable around it; check they increase."""
    thresholds = table[table["op"] == "|"]
    if thresholds.empty:
        return
    fixed: dict[str, list[tuple[int, float]]] = {}
    for row in thresholds.itertuples(index=False):
        if int(row.free) == 0:
            fixed.setdefault(str(row.lhs), []).append((int(str(row.rhs)[1:]), float(row.value)))
    for name, values in fixed.items():
        values.sort()
        numbers = [v for _, v in values]
        if not np.all(np.isfinite(numbers)) or np.any(np.diff(numbers) <= 0):
            listed = ", ".join(f"t{j} = {v:g}" for j, v in values)
            raise ModelSpecificationError(
                f"the fixed thresholds of {name!r} ({listed}) must be finite and increase with their number"
            )
    for p in params:
        if p.pclass != "tau":
            continue
        j = int(p.rhs[1:])
        around = fixed.get(p.lhs, [])
        below = [v for i, v in around if i < j]
        above = [v for i, v in around if i > j]
        p.bounds = (below[-1] if below else -np.inf, above[0] if above else np.inf)


def make_random_variables(
    params: list[FreeParameter], starts: np.ndarray | None = None
) -> dict[str, pt.TensorVariable]:
    """Create the PyMC random variables inside the current model context.

    ``starts`` (one value per table row, lavaan's scale, see :mod:`pymlsem.build.starts`) sets each
    variable's initial value.

    Returns a mapping from parameter name to the scalar PyTensor expression of its value on the lavaan
    scale: loadings, regressions, intercepts and thresholds as they are, variances (not SDs), and
    correlations in (-1, 1) (turned into covariances by the caller, who knows the variances).

    Raises
    ------
    PriorError
        When the thresholds of one variable have priors of different families.
    """
    model = pm.modelcontext(None)
    by_variable: dict[tuple[str, str], list[FreeParameter]] = {}
    for p in params:
        by_variable.setdefault(p.variable, []).append(p)
    _check_threshold_families(params)

    values: dict[str, pt.TensorVariable] = {}
    for (name, dim), members in by_variable.items():
        if members[0].pclass == "tau":
            values.update(_make_thresholds(model, name, dim, members, starts))
            continue
        model.add_coord(dim, [p.name for p in members])
        prior = members[0].prior
        hyper = {
            arg: pm.Data(f"{name}__{arg}", np.array([p.prior.kwargs()[arg] for p in members]), dims=dim)
            for arg in prior.kwargs()
        }
        initval = (
            None if starts is None else np.array([_initial_value(p, starts[p.rows[0]]) for p in members])
        )
        if members[0].signed:
            distribution, arguments = _SIGNED_DISTRIBUTIONS[prior.family](*hyper.values())
            rv = distribution(name, **arguments, dims=dim, initval=initval)
        else:
            rv = DISTRIBUTIONS[prior.family](name, **hyper, dims=dim, initval=initval)
        for i, p in enumerate(members):
            values[p.name] = _to_lavaan_scale(rv[i], p)
    return values


def _check_threshold_families(params: list[FreeParameter]) -> None:
    families: dict[str, set[str]] = {}
    for p in params:
        if p.pclass == "tau":
            families.setdefault(p.lhs, set()).add(p.prior.family)
    for name, found in families.items():
        if len(found) > 1:
            raise PriorError(
                f"the thresholds of {name!r} have priors of different families ({', '.join(sorted(found))}); "
                "they form one increasing vector, so give them one family (the arguments may differ)"
            )


def _make_thresholds(
    model: pm.Model, name: str, dim: str, members: list[FreeParameter], starts: np.ndarray | None
) -> dict[str, pt.TensorVariable]:
    """One ordered variable's free thresholds as one increasing random variable, element per parameter."""
    members = sorted(members, key=lambda p: int(p.rhs[1:]))
    model.add_coord(dim, [p.rhs for p in members])
    prior = members[0].prior
    hyper = {
        arg: pm.Data(f"{name}__{arg}", np.array([p.prior.kwargs()[arg] for p in members]), dims=dim)
        for arg in prior.kwargs()
    }
    bounds = [p.bounds for p in members]
    given = None if starts is None else [starts[p.rows[0]] for p in members]
    initval = increasing_initial_values(given, bounds)
    rv = threshold_variable(name, prior.family, hyper, bounds, dims=dim, initval=initval)
    return {p.name: rv[i] for i, p in enumerate(members)}


#: how a random variable's value becomes lavaan's: as it is, SD squared, a variance, a precision inverted,
#: ``(rho + 1) / 2`` to a correlation
SCALE_CODES = {"plain": 0, "sd": 1, "var": 2, "prec": 3, "rho": 4}

#: scale code -> the map of a value on that scale to lavaan's (the other codes: as it is)
_SCALES = {
    SCALE_CODES["sd"]: lambda v: v**2,
    SCALE_CODES["prec"]: lambda v: 1.0 / v,
    SCALE_CODES["rho"]: lambda v: 2.0 * v - 1.0,
}


def scale_code(param: FreeParameter) -> int:
    """The :data:`SCALE_CODES` entry of a free parameter."""
    if param.pclass == "rho":
        return SCALE_CODES["rho"]
    if param.pclass in _VARIANCE_NAMES:
        return SCALE_CODES[param.scale]
    return SCALE_CODES["plain"]


def lavaan_scale(value: pt.TensorVariable, code) -> pt.TensorVariable:
    """Values of random variables on lavaan's scale, by scale code (a number, or an array of codes)."""
    code = pt.as_tensor(code)
    return pt.switch(
        pt.eq(code, SCALE_CODES["sd"]),
        _SCALES[SCALE_CODES["sd"]](value),
        pt.switch(
            pt.eq(code, SCALE_CODES["prec"]),
            _SCALES[SCALE_CODES["prec"]](value),
            pt.switch(pt.eq(code, SCALE_CODES["rho"]), _SCALES[SCALE_CODES["rho"]](value), value),
        ),
    )


def _to_lavaan_scale(value: pt.TensorVariable, param: FreeParameter) -> pt.TensorVariable:
    """One parameter's value on lavaan's scale: its own map, not :func:`lavaan_scale`'s switches (a model
    has one per parameter, and building them was a fifth of building a model)."""
    scale = _SCALES.get(scale_code(param))
    return value if scale is None else scale(value)


def _initial_value(param: FreeParameter, start: float) -> float:
    """A start value on the lavaan scale, expressed on the scale of the parameter's random variable."""
    if param.pclass in _VARIANCE_NAMES:
        var = max(float(start), 1e-3)
        value = {"sd": np.sqrt(var), "var": var, "prec": 1.0 / var}[param.scale]
    elif param.pclass == "rho":
        value = 0.5 * (float(np.clip(start, -0.9, 0.9)) + 1.0)
    else:
        value = float(start)
    if param.prior.family == "uniform":
        lower, upper = param.prior.args
        value = float(np.clip(value, lower + 0.01 * (upper - lower), upper - 0.01 * (upper - lower)))
    return value


DISTRIBUTIONS = {
    "normal": pm.Normal,
    "student_t": pm.StudentT,
    "cauchy": pm.Cauchy,
    "gamma": pm.Gamma,
    "inv_gamma": pm.InverseGamma,
    "lognormal": pm.LogNormal,
    "exponential": pm.Exponential,
    "halfnormal": pm.HalfNormal,
    "halfcauchy": pm.HalfCauchy,
    "halft": pm.HalfStudentT,
    "beta": pm.Beta,
    "uniform": pm.Uniform,
}
