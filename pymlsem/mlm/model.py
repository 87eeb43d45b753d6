"""The PyMC model of a Gaussian mixed model.

Priors are placed on the **standardised scale** and scaled to the data (as rstanarm's autoscaling does), so
the sampler sees parameters of order one whatever the units:

=============  ====================================================  ==================================
parameter      on the data scale                                     default prior (``priors`` key)
=============  ====================================================  ==================================
intercept      ``mean(y) + sd(y) * t``                               ``normal(0,10)`` (``"intercept"``)
fixed slope k  ``sd(y) / sd(x_k) * t``                               ``normal(0,2.5)`` (``"fixef"``)
random SD      ``sd(y) / sd(z_r) * t`` (``sd(y)`` for an intercept)  ``halfnormal(1)`` (``"sd"``)
residual SD    ``sd(y) * t``                                         ``halfnormal(1)`` (``"sigma"``)
correlations   LKJ on each correlated block                          ``eta = 2`` (``"lkj_eta"``)
=============  ====================================================  ==================================

with ``t`` the standardised parameter that carries the prior. Two more ``priors`` keys set a prior on the
**data scale** for one term or block: ``"fixef:<term>"`` (e.g. ``{"fixef:Days": "normal(10,2)"}``, the
variable ``fixef__<term>``) and ``"sd:<block label>"`` (every SD of that block, e.g.
``{"sd:Subject": "halfnormal(30)"}``). An SD's prior (``"sd"``, ``"sd:<label>"``, ``"sigma"``) may be
on its variance or precision, with blavaan's suffixes: ``{"sd:Subject": "inv_gamma(1,500)[var]"}`` (the
variable ``var__Subject``, and ``sd__Subject`` its square root). MCMCglmm's prior forms are ``prior=``
(:mod:`pymlsem.mlm.mcmcglmm_prior`).

Two likelihoods, one posterior:

* ``method="marginal"``: the random effects are integrated out with
  :func:`pymlsem.mlm.loglik.gaussian_marginal_loglik` (added as a potential named ``loglik``); the
  cross products are ``pm.Data``, so a compiled model can take new data of the same shape.
* ``method="latent"``: explicit, non-centered random effects ``u = z L'`` with ``z ~ N(0, 1)`` per level,
  and ``y ~ Normal(X b + sum_k Z_k u_k[g], sigma)`` observed.

By default (``method=None``) the grouping factors in the data choose (:func:`choose_method`): one factor,
or factors nested in one another, are integrated out exactly at a cost linear in the number of clusters
(``"marginal"``); so are crossed factors while the factors other than the largest have few effects (they
share one dense factorisation); beyond that crossed factors are sampled (``"latent"``).
``BuiltMixedModel.likelihood`` says which, e.g. ``"marginal (nested Woodbury)"`` or
``"latent (crossed factors)"``.

Variables: ``fixef`` (dims ``term``), ``sigma``, and per block ``sd__<label>`` (dims ``<label>__effect``)
and, for correlated blocks with more than one effect, ``corr__<label>``. The label is the grouping factor,
with ``.1``, ``.2`` appended when several blocks share one (as lme4 names them).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from pymlsem.build.node_traces import without_node_traces
from pymlsem.build.parameters import DISTRIBUTIONS
from pymlsem.exceptions import ModelSpecificationError, PriorError
from pymlsem.formula.design import INTERCEPT, MixedDesign
from pymlsem.mlm.families import GLMMResponse
from pymlsem.mlm.loglik import gaussian_marginal_loglik
from pymlsem.mlm.mcmcglmm_prior import (
    McmcglmmPrior,
    as_pymlsem_priors,
    block_root,
    fixed_effects,
    parse_mcmcglmm_prior,
)
from pymlsem.mlm.stats import LAYOUTS, GaussianStats, crossed_split, gaussian_stats, grouping_hierarchy
from pymlsem.priors import Prior, parse_prior

__all__ = [
    "DEFAULT_MIXED_PRIORS",
    "BuiltMixedModel",
    "block_labels",
    "build_mixed_model",
    "choose_method",
    "crossed_cost",
]

DEFAULT_MIXED_PRIORS: dict[str, str | float] = {
    "intercept": "normal(0,10)",
    "fixef": "normal(0,2.5)",
    "sd": "halfnormal(1)",
    "sigma": "halfnormal(1)",
    "lkj_eta": 2.0,
}
METHODS = ("marginal", "latent")
#: crossed factors are integrated out (layout "crossed") while :func:`crossed_cost` is at most this many
#: floating-point operations per evaluation (about a minute of sampling, 4 x 2000 iterations, on 2 cores)
CROSSED_COST_MAX = 10_000_000


@dataclasses.dataclass(eq=False, frozen=True)
class BuiltMixedModel:
    """A built mixed model (frozen: a variant is a new one, e.g. :meth:`pymlsem.MixedModel.with_priors`).

    Attributes
    ----------
    model
        The PyMC model.
    design
        The design it was built from.
    method
        ``"marginal"`` or ``"latent"``.
    labels
        One label per random block (the names used in variable names and in ``varcorr()``).
    priors
        The priors used, by ``priors`` key (standardised scale).
    family
        The response family (``"gaussian"``, or one of :data:`pymlsem.mlm.families.FAMILIES`).
    response
        For non-Gaussian families, the response with its link, trials, offset and categories.
    mcmcglmm_prior
        The MCMCglmm-style prior (``prior=``), if one was given.
    likelihood
        How the random effects enter, in words: ``"marginal (Woodbury per cluster)"``,
        ``"marginal (nested Woodbury)"``, ``"marginal (dense Cholesky)"``, ``"latent"``, or
        ``"latent (crossed factors)"`` when crossed factors chose the latent method.
    """

    model: pm.Model
    design: MixedDesign
    method: str
    labels: tuple[str, ...]
    priors: dict[str, Prior | float]
    family: str = "gaussian"
    response: GLMMResponse | None = None
    mcmcglmm_prior: McmcglmmPrior | None = None
    likelihood: str = "latent"

    @property
    def pymc_model(self) -> pm.Model:
        """The PyMC model (``model``; the name a SEM uses too)."""
        return self.model


def block_labels(design: MixedDesign) -> tuple[str, ...]:
    """lme4-style labels of the random blocks: the grouping factor, then ``g.1``, ``g.2`` for repeats."""
    seen: dict[str, int] = {}
    labels = []
    for block in design.blocks:
        count = seen.get(block.group, 0)
        labels.append(block.group if count == 0 else f"{block.group}.{count}")
        seen[block.group] = count + 1
    return tuple(labels)


POSITIVE_PRIORS = ("sd", "sigma", "overdispersion")
#: priors= keys of SDs, whose prior may be on the variance (``[var]``) or the precision (``[prec]``)
SD_PRIORS = ("sd", "sigma")
#: the power of the variable that carries an SD's prior that gives the SD, by the prior's suffix
SD_POWER = {"sd": 1.0, "var": 0.5, "prec": -0.5}
#: priors= keys for one fixed-effect term (``"fixef:Days"``) or one random block's SDs (``"sd:Subject"``),
#: given on the data scale
TERM_PREFIXES = ("fixef:", "sd:")


def check_term_priors(priors: Mapping[str, object], design: MixedDesign, labels: tuple[str, ...]) -> None:
    """Refuse ``fixef:<term>`` / ``sd:<block>`` priors for terms or blocks the model does not have."""
    for key in priors:
        if key.startswith("fixef:") and key[6:] not in design.fixed_names:
            raise PriorError(
                f"priors[{key!r}]: no fixed-effect term {key[6:]!r}; terms: {', '.join(design.fixed_names)}"
            )
        if key.startswith("sd:") and key[3:] not in labels:
            raise PriorError(f"priors[{key!r}]: no random block {key[3:]!r}; blocks: {', '.join(labels)}")


def safe_name(name: str) -> str:
    return re.sub(r"\W", "_", name)


def resolve_mixed_priors(
    priors: Mapping[str, str | float] | None, defaults: Mapping[str, str | float] = DEFAULT_MIXED_PRIORS
) -> dict[str, Prior | float]:
    if priors is not None and not isinstance(priors, Mapping):
        raise PriorError(
            f"priors must be a dict of prior strings by key, e.g. {{'sigma': 'halfnormal(1)'}}, not "
            f"{type(priors).__name__}"
        )
    given = dict(priors or {})
    unknown = {key for key in set(given) - set(defaults) if not key.startswith(TERM_PREFIXES)}
    if unknown:
        raise PriorError(
            f"unknown priors= key(s) {sorted(unknown)}; use {', '.join(defaults)} "
            "(priors on the standardised scale), 'fixef:<term>' or 'sd:<block>' (data scale)"
        )
    resolved: dict[str, Prior | float] = {}
    for key in sorted(set(given) - set(defaults)):  # per term / per variance component, data scale
        prior = parse_prior(str(given[key]), where=key)
        if key.startswith("sd:") and prior.support != "positive":
            raise PriorError(
                f"the prior {prior} for {key!r} must be on positive values (halfnormal, gamma, ...)"
            )
        resolved[key] = prior
    for key, default in defaults.items():
        value = given.get(key, default)
        if key == "lkj_eta":
            if not isinstance(value, int | float) or not value > 0:
                raise PriorError(f"priors['lkj_eta'] must be a positive number, not {value!r}")
            resolved[key] = float(value)
            continue
        prior = parse_prior(str(value), where=key)
        if key in POSITIVE_PRIORS and prior.support != "positive":
            raise PriorError(
                f"the prior {prior} for {key!r} must be on positive values (halfnormal, gamma, ...)"
            )
        if prior.scale not in (None, "sd") and key not in SD_PRIORS:
            raise PriorError(
                f"the prior for {key!r} is on the SD; the suffix [{prior.scale}] is not supported"
            )
        resolved[key] = prior
    return resolved


def column_sd(values: np.ndarray) -> np.ndarray:
    sd = values.std(axis=0, ddof=1) if values.shape[0] > 1 else np.ones(values.shape[1])
    return np.where(sd > 0, sd, 1.0)


def data_scale(y: np.ndarray) -> tuple[float, float]:
    """The mean and SD of a continuous response: where a Gaussian or Student-t model's default priors are
    centred and their unit."""
    return float(y.mean()), float(column_sd(y[:, None])[0])


def prior_data(name: str, prior: Prior) -> dict[str, pt.TensorVariable]:
    """The prior's arguments as ``pm.Data`` named ``<name>__<argument>`` (a refit swaps their values)."""
    return {
        arg: pm.Data(f"{name}__{arg}", np.asarray(value, dtype=float))
        for arg, value in prior.kwargs().items()
    }


def draw_prior(
    name: str, prior: Prior, dims: str | None = None, shape: int | None = None, initval=None
) -> pt.TensorVariable:
    kwargs = {"dims": dims} if dims is not None else ({"shape": shape} if shape is not None else {})
    if initval is not None:
        kwargs["initval"] = initval
    return DISTRIBUTIONS[prior.family](name, **prior_data(name, prior), **kwargs)


def draw_sd(
    name: str, prior: Prior, dims: str | None = None, start: float | np.ndarray = 0.5
) -> pt.TensorVariable:
    """An SD whose prior is on the SD itself, its variance (``[var]``) or its precision (``[prec]``).

    The random variable carries the prior: ``name`` for an SD, else ``name`` with ``sd`` replaced by
    ``var`` or ``prec`` (``sigma_std`` becomes ``sigma2_std`` or ``tau_std``), raised to the power of
    :data:`SD_POWER`. Chains start such a variable where the SD is ``start`` (in the SD's units), not at
    its prior's mode: MCMCglmm's ``inv_gamma(0.001, 0.001)`` on a variance has its mode at 0.001, which
    would start a residual SD of 25 at 0.03.
    """
    scale = prior.scale or "sd"
    if scale == "sd":
        return draw_prior(name, prior, dims=dims)
    power = sd_power(prior)
    value = draw_prior(carrier_name(name, scale), prior, dims=dims, initval=start ** (1.0 / power))
    return value**power


def sd_power(prior: Prior) -> float:
    """The power of the variable carrying ``prior`` that is the SD (:data:`SD_POWER` of its suffix)."""
    return SD_POWER[prior.scale or "sd"]


def carrier_name(name: str, scale: str | None) -> str:
    """The random variable that carries the prior of the SD ``name`` on the scale ``"sd"`` (itself),
    ``"var"`` or ``"prec"``."""
    if scale in (None, "sd"):
        return name
    if name.startswith("sd"):
        return scale + name.removeprefix("sd")
    return {"var": "sigma2", "prec": "tau"}[scale] + name.removeprefix("sigma")


def intercept_shift(design: MixedDesign, priors: dict) -> tuple[np.ndarray, np.ndarray]:
    """Where the default intercept prior sits: at the predictors' means, as brms puts it.

    The default prior is on the intercept of the centred design, ``b_c = b_0 + sum_k mean(x_k) b_k`` (the
    mean response's link when the predictors are at their means), so that a predictor far from zero (a
    year, 95-97) does not put the intercept far from its prior; the model's intercept is then
    ``b_0 = b_c - shift . b``. A user's prior on ``(Intercept)`` keeps its lme4 meaning (no shift).

    Returns
    -------
    shift, is_intercept
        Per fixed effect: the column mean of each predictor (0 for the intercept, and everywhere without a
        default intercept prior), and 1.0 at the intercept.
    """
    names = design.fixed_names
    is_intercept = np.array([name == INTERCEPT for name in names], dtype=float)
    shift = np.where(is_intercept > 0, 0.0, design.x.mean(axis=0)) if names else np.zeros(0)
    if not is_intercept.any() or f"fixef:{INTERCEPT}" in priors:
        shift = np.zeros(len(names))
    return shift, is_intercept


def default_fixed_effects(design: MixedDesign, priors: dict, y_mean: float, y_sd: float) -> pt.TensorVariable:
    names = design.fixed_names
    if not names:
        return pt.zeros(0)
    scale = y_sd / column_sd(design.x)
    is_intercept = np.array([name == INTERCEPT for name in names])
    slopes = [name for name in names if name != INTERCEPT]
    parts: dict[str, pt.TensorVariable] = {
        name: draw_prior(f"fixef__{safe_name(name)}", priors[f"fixef:{name}"])  # data scale
        for name in names
        if f"fixef:{name}" in priors
    }
    slopes = [name for name in slopes if name not in parts]
    if is_intercept.any() and INTERCEPT not in parts:
        parts[INTERCEPT] = y_mean + y_sd * draw_prior("intercept_std", priors["intercept"])
    if slopes:
        pm.modelcontext(None).add_coord("fixef_slope", slopes)
        raw = draw_prior("fixef_std", priors["fixef"], dims="fixef_slope")
        for i, name in enumerate(slopes):
            parts[name] = raw[i] * scale[names.index(name)]
    fixef = pt.stack([parts[name] for name in names])
    shift, intercept = intercept_shift(design, priors)
    fixef = fixef - intercept * pt.dot(shift, fixef)  # the centred intercept back to x = 0
    return pm.Deterministic("fixef", fixef, dims="term")


def block_cholesky(design: MixedDesign, k: int, label: str, priors: dict, y_sd: float) -> pt.TensorVariable:
    """Lower Cholesky factor of block k's covariance, with ``sd__label`` and ``corr__label`` recorded."""
    block = design.blocks[k]
    dim = f"{label}__effect"
    pm.modelcontext(None).add_coord(dim, list(block.names))
    intercept = np.array([name == INTERCEPT for name in block.names])
    scale = np.where(intercept, y_sd, y_sd / column_sd(block.z))
    if f"sd:{label}" in priors:  # the user's prior, on the data scale
        sd = draw_sd(f"sd__{label}", priors[f"sd:{label}"], dims=dim, start=0.5 * scale)
        if priors[f"sd:{label}"].scale not in (None, "sd"):
            sd = pm.Deterministic(f"sd__{label}", sd, dims=dim)
    else:
        raw_sd = draw_sd(f"sd_std__{label}", priors["sd"], dims=dim, start=np.full(block.q, 0.5))
        sd = pm.Deterministic(f"sd__{label}", raw_sd * scale, dims=dim)
    if not block.correlated or block.q == 1:
        return pt.diag(sd)
    # PyMC's LKJCorr is the Cholesky factor of an LKJ-distributed correlation matrix
    corr_chol = pm.LKJCorr(f"corr_chol__{label}", n=block.q, eta=priors["lkj_eta"])
    pm.modelcontext(None).add_coord(f"{dim}_", list(block.names))
    pm.Deterministic(f"corr__{label}", pt.dot(corr_chol, corr_chol.T), dims=(dim, f"{dim}_"))
    return sd[:, None] * corr_chol


def _stats_data(stats: GaussianStats) -> GaussianStats:
    arrays = {
        name: pm.Data(f"stats__{name}", np.asarray(getattr(stats, name), dtype=float))
        for name in ("yy", "xy", "xx", "zz", "zy", "zx", "cross", "rest_zz", "rest_zy", "rest_zx")
        if getattr(stats, name) is not None
    }
    # which cluster nests in which is data too: a refit on other data of the same shape swaps it
    parents = tuple(
        pm.Data(f"stats__parent{level}", np.asarray(parent, dtype=np.int64))
        for level, parent in enumerate(stats.parents, start=1)
    )
    return dataclasses.replace(
        stats, **arrays, parents=parents, nobs=pm.Data("stats__nobs", float(stats.nobs))
    )


def latent_response_mean(design: MixedDesign, fixef: pt.TensorVariable, chols: list, labels: tuple[str, ...]):
    mean = pt.dot(pm.Data("x", design.x), fixef) if design.fixed_names else pt.zeros(design.nobs)
    model = pm.modelcontext(None)
    for block, chol, label in zip(design.blocks, chols, labels, strict=True):
        levels = f"{label}__level"
        model.add_coord(levels, list(block.levels))
        raw = pm.Normal(f"z__{label}", 0.0, 1.0, dims=(levels, f"{label}__effect"))
        effects = pm.Deterministic(f"u__{label}", pt.dot(raw, chol.T), dims=(levels, f"{label}__effect"))
        # the level of each row is data: a compiled model reused for new data of the same shape swaps it
        codes = pm.Data(f"codes__{label}", np.asarray(block.codes, dtype=np.int64))
        mean = mean + pt.sum(pm.Data(f"z_design__{label}", block.z) * effects[codes], axis=1)
    return mean


#: :attr:`BuiltMixedModel.likelihood` of a formula without random terms
NO_RANDOM_EFFECTS = "no random effects (a Bayesian regression)"


def choose_method(design: MixedDesign) -> tuple[str, str]:
    """The method the grouping factors call for, and the likelihood's description.

    One grouping factor, or factors that nest in one another in the data
    (:func:`pymlsem.mlm.stats.grouping_hierarchy`), are integrated out exactly, cluster by cluster and
    level by level: ``"marginal"``. Crossed factors are integrated out too while that costs at most
    :data:`CROSSED_COST_MAX` operations per evaluation (:func:`crossed_cost`); beyond that they are sampled
    explicitly, ``"latent"``. Integrating out gives many times the effective sample size per second
    where the factors' levels have many rows each (the latent parameterisation mixes poorly there), and
    sampling wins for large, sparse designs; the threshold comes from the measurements in
    ``benchmarks/README.md`` (see docs/design-decisions.md).

    Parameters
    ----------
    design
        A design with at least one random block.

    Returns
    -------
    tuple of str
        The method and :attr:`BuiltMixedModel.likelihood`.
    """
    hierarchy = grouping_hierarchy(design)
    if hierarchy is not None:
        layout = "clustered" if len(hierarchy.factors) == 1 else "nested"
    elif crossed_cost(design) <= CROSSED_COST_MAX:
        layout = "crossed"
    else:
        return "latent", "latent (crossed factors)"
    return "marginal", f"marginal ({LAYOUTS[layout]})"


def crossed_cost(design: MixedDesign) -> int:
    """Operations per evaluation of the ``"crossed"`` layout: ``J q Q_r^2 + Q_r^3``.

    J q is the number of effects of the largest factor, integrated out cluster by cluster; Q_r that of the
    others, whose Schur complement (a sum of J products of size Q_r) is factored densely
    (:func:`pymlsem.mlm.stats.crossed_split`).
    """
    own, rest = crossed_split(design)
    own_effects = sum(design.blocks[k].n_levels * design.blocks[k].q for k in own)
    rest_effects = sum(design.blocks[k].n_levels * design.blocks[k].q for k in rest)
    return own_effects * rest_effects**2 + rest_effects**3


@without_node_traces
def build_mixed_model(
    design: MixedDesign,
    *,
    priors: Mapping[str, str | float] | None = None,
    method: str | None = None,
    prior: Mapping | None = None,
    layout: str | None = None,
) -> BuiltMixedModel:
    """Build the PyMC model of a Gaussian mixed model.

    Parameters
    ----------
    design
        From :func:`pymlsem.formula.mixed_design`; needs at least one random block.
    priors
        Overrides of :data:`DEFAULT_MIXED_PRIORS` (prior strings on the standardised scale; ``lkj_eta`` a
        number).
    method
        ``"marginal"`` (random effects integrated out), ``"latent"`` (explicit non-centered effects) or
        ``None`` (default): chosen from the grouping factors by :func:`choose_method`.
    prior
        MCMCglmm-style priors (:mod:`pymlsem.mlm.mcmcglmm_prior`) replacing the defaults of the parts given.
    layout
        ``method="marginal"`` only: ``"dense"`` integrates the random effects out with one dense
        factorisation whatever the grouping factors (the reference the faster layouts are measured
        against); ``None`` (default) picks the layout from the grouping factors: ``"clustered"``,
        ``"nested"`` or ``"crossed"`` (:mod:`pymlsem.mlm.stats`).

    Returns
    -------
    BuiltMixedModel
        The model and what it was built from.

    Raises
    ------
    ModelSpecificationError
        No random-effect block, or an unknown ``method``.
    PriorError
        An unknown ``priors`` key or a prior that does not fit its parameter.
    """
    if not design.blocks:  # a Bayesian linear model (e.g. fixed effects with cluster dummies)
        if method not in (None, "latent"):
            raise ModelSpecificationError(
                f"a formula without random terms has nothing to integrate: no method={method!r}"
            )
        method, likelihood = "latent", NO_RANDOM_EFFECTS
    elif method is None:
        method, likelihood = choose_method(design)
    elif method in METHODS:
        likelihood = method
    else:
        raise ModelSpecificationError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if layout is not None and method != "marginal":
        raise ModelSpecificationError("layout= is for method='marginal'")
    resolved = resolve_mixed_priors(priors)
    labels = block_labels(design)
    check_term_priors(resolved, design, labels)
    y_mean, y_sd = data_scale(design.y)
    prior = (
        parse_mcmcglmm_prior(prior, design, gaussian=True)
        if prior is not None
        else McmcglmmPrior(None, None, (None,) * len(labels))
    )
    # what is a prior of one parameter becomes priors= entries (data for the engine families)
    prior, converted = as_pymlsem_priors(prior, design.fixed_names, labels, residual_scale=y_sd)
    resolved = {**resolved, **converted}
    with pm.Model(coords={"term": list(design.fixed_names)}) as model:
        fixef = fixed_effects(prior.b) if prior.b else default_fixed_effects(design, resolved, y_mean, y_sd)
        sigma = pm.Deterministic("sigma", y_sd * draw_sd("sigma_std", resolved["sigma"]))
        chols = [
            block_root(design, k, label, prior.g[k])
            if prior.g[k]
            else block_cholesky(design, k, label, resolved, y_sd)
            for k, label in enumerate(labels)
        ]
        if method == "marginal":
            stats = gaussian_stats(design, layout)
            likelihood = f"marginal ({LAYOUTS[stats.layout]})"
            pm.Potential("loglik", gaussian_marginal_loglik(_stats_data(stats), fixef, sigma, chols=chols))
        else:
            mean = latent_response_mean(design, fixef, chols, labels)
            mean.name = "eta"  # the linear predictor, found by name by the plug-in deviance (DIC)
            pm.Normal("y", mean, sigma, observed=pm.Data("y_obs", design.y))
    return BuiltMixedModel(
        model, design, method, labels, resolved, mcmcglmm_prior=prior, likelihood=likelihood
    )
