"""The PyMC model of a generalised linear mixed model (bernoulli, binomial, poisson, negbinomial, ordinal).

The random effects are always explicit and non-centered (``z ~ N(0, 1)``, ``u = z L'`` with ``L`` the
Cholesky factor built from ``sd__<label>`` and the LKJ correlation, as in the Gaussian latent builder).
The linear predictor ``eta = offset + X b + sum_k Z_k u_k[g]`` is on the link scale, and so are the priors,
weakly informative as in rstanarm:

==============  ==========================================================  ===========================
parameter       on the link scale                                           default prior (``priors``)
==============  ==========================================================  ===========================
intercept       ``c + t`` with ``c`` the link of the pooled mean response   ``normal(0,2.5)``
                (``log`` of the mean count minus the mean offset, ``logit``  (``"intercept"``)
                or ``probit`` of the pooled proportion)
fixed slope k   ``t / sd(x_k)``                                             ``normal(0,2.5)`` (``"fixef"``)
random SD       ``t`` (intercepts) or ``t / sd(z_r)`` (slopes)              ``halfnormal(1)`` (``"sd"``)
correlations    LKJ on each correlated block                                ``eta = 2`` (``"lkj_eta"``)
theta           negbinomial size, variance ``mu + mu^2 / theta``;           ``halfnormal(1)``
                the prior is on ``t = 1 / sqrt(theta)``                     (``"overdispersion"``)
cut-points      ordinal thresholds, ordered; each                           ``normal(0,5)``
                                                                            (``"cutpoints"``)
==============  ==========================================================  ===========================

The ordinal model is the cumulative (proportional-odds) model of ``ordinal::clmm``:
``P(y <= k) = F(cutpoints[k] - eta)``; the fixed part has no intercept (the cut-points carry it).

Variables: ``fixef`` (dims ``term``), ``sd__<label>``, ``corr__<label>``, ``u__<label>`` as in the Gaussian
model; ``theta`` (negbinomial); ``cutpoints`` (ordinal, dims ``cutpoint``, labelled ``"1|2"``, ``"2|3"``, as
``ordinal`` prints them); the observed ``y``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from scipy.special import logit, ndtri

from pymlsem.build.node_traces import without_node_traces
from pymlsem.build.parameters import DISTRIBUTIONS
from pymlsem.exceptions import ModelSpecificationError, PriorError
from pymlsem.formula.design import INTERCEPT, MixedDesign
from pymlsem.mlm.families import LINEAR_PREDICTOR, GLMMResponse
from pymlsem.mlm.mcmcglmm_prior import (
    McmcglmmPrior,
    as_pymlsem_priors,
    block_root,
    fixed_effects,
    parse_mcmcglmm_prior,
)
from pymlsem.mlm.model import (
    DEFAULT_MIXED_PRIORS,
    NO_RANDOM_EFFECTS,
    BuiltMixedModel,
    block_cholesky,
    block_labels,
    check_term_priors,
    data_scale,
    default_fixed_effects,
    draw_prior,
    draw_sd,
    latent_response_mean,
    prior_data,
    resolve_mixed_priors,
)
from pymlsem.priors import Prior

__all__ = [
    "DEFAULT_GLMM_PRIORS",
    "STUDENT_PRIORS",
    "build_glmm_model",
    "intercept_center",
    "response_scale",
]

DEFAULT_GLMM_PRIORS: dict[str, str | float] = {
    "intercept": "normal(0,2.5)",
    "fixef": "normal(0,2.5)",
    "sd": "halfnormal(1)",
    "lkj_eta": 2.0,
    "overdispersion": "halfnormal(1)",
    "cutpoints": "normal(0,5)",
}
_FAMILY_PRIORS = {"overdispersion": ("negbinomial",), "cutpoints": ("ordinal",)}
#: Student-t (robust) models: the Gaussian model's priors on the data's scale, and brms's prior on the
#: degrees of freedom (gamma(2, 0.1): mean 20, most mass between 2 and 50)
STUDENT_PRIORS: dict[str, str | float] = {**DEFAULT_MIXED_PRIORS, "nu": "gamma(2,0.1)"}


def _defaults(family: str) -> dict[str, str | float]:
    if family == "student":
        return dict(STUDENT_PRIORS)
    return {
        key: value
        for key, value in DEFAULT_GLMM_PRIORS.items()
        if key not in _FAMILY_PRIORS or family in _FAMILY_PRIORS[key]
    }


def response_scale(response: GLMMResponse) -> tuple[float, float]:
    """Where the intercept's prior is centred and the unit of the fixed and random effects' priors: the
    data's mean and SD for a Student-t response (as for a Gaussian one), the link scale's otherwise."""
    if response.family == "student":
        return data_scale(response.y)
    return intercept_center(response), 1.0


def _inverse_link(link: str, p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 0.01, 0.99)
    return logit(p) if link == "logit" else ndtri(p)


def intercept_center(response: GLMMResponse) -> float:
    """Link of the pooled mean response: where the intercept's prior is centered."""
    y = response.y.astype(float)
    if response.family in ("poisson", "negbinomial"):
        mean_offset = 0.0 if response.offset is None else float(np.mean(response.offset))
        return float(np.log(np.mean(y) + 0.1) - mean_offset)
    if response.family == "binomial":
        return float(_inverse_link(response.link, np.sum(y) / max(np.sum(response.trials), 1)))
    if response.family == "bernoulli":
        return float(_inverse_link(response.link, np.mean(y)))
    return 0.0


def _without_intercept(design: MixedDesign) -> MixedDesign:
    keep = [k for k, name in enumerate(design.fixed_names) if name != INTERCEPT]
    names = tuple(design.fixed_names[k] for k in keep)
    return dataclasses.replace(design, x=design.x[:, keep], fixed_names=names)


def _cutpoints(response: GLMMResponse, prior: Prior) -> pt.TensorVariable:
    """Ordered cut-points, started at the link of the observed cumulative proportions."""
    k = len(response.categories)
    labels = [f"{a}|{b}" for a, b in zip(response.categories[:-1], response.categories[1:], strict=True)]
    pm.modelcontext(None).add_coord("cutpoint", labels)
    counts = np.bincount(response.y, minlength=k)
    start = _inverse_link(response.link, np.cumsum(counts)[:-1] / counts.sum())
    start = start + 1e-2 * np.arange(k - 1)  # strictly increasing even with an empty category
    if prior.support != "real":
        raise PriorError(
            f"the prior {prior} for 'cutpoints' must be on the real line (normal, student_t, ...)"
        )
    return _draw_ordered("cutpoints", prior, start)


def _draw_ordered(name: str, prior: Prior, start: np.ndarray) -> pt.TensorVariable:
    return DISTRIBUTIONS[prior.family](
        name,
        **prior_data(name, prior),
        dims="cutpoint",
        transform=pm.distributions.transforms.ordered,
        initval=start,
    )


def _likelihood(response: GLMMResponse, eta: pt.TensorVariable, priors: dict, scale: float = 1.0) -> None:
    observed = pm.Data("y_obs", response.y)
    family, link = response.family, response.link
    if family == "student":
        sigma = pm.Deterministic("sigma", scale * draw_sd("sigma_std", priors["sigma"]))
        nu = draw_prior("nu", priors["nu"])
        pm.StudentT("y", nu=nu, mu=eta, sigma=sigma, observed=observed)
        return
    if family in ("bernoulli", "binomial"):
        kwargs = {"logit_p": eta} if link == "logit" else {"p": pm.math.invprobit(eta)}
        if family == "bernoulli":
            pm.Bernoulli("y", **kwargs, observed=observed)
        else:
            pm.Binomial("y", n=pm.Data("trials", response.trials), **kwargs, observed=observed)
    elif family == "poisson":
        pm.Poisson("y", mu=pt.exp(eta), observed=observed)
    elif family == "negbinomial":
        raw = draw_prior("overdispersion_std", priors["overdispersion"])
        theta = pm.Deterministic("theta", 1.0 / pt.sqr(raw))
        pm.NegativeBinomial("y", mu=pt.exp(eta), alpha=theta, observed=observed)
    elif family == "ordinal":
        cutpoints = _cutpoints(response, priors["cutpoints"])
        if link == "logit":
            pm.OrderedLogistic("y", eta=eta, cutpoints=cutpoints, observed=observed, compute_p=False)
        else:
            pm.OrderedProbit("y", eta=eta, cutpoints=cutpoints, sigma=1.0, observed=observed, compute_p=False)
    else:  # pragma: no cover - families are checked by glmm_design
        raise ModelSpecificationError(f"unknown family {family!r}")


@without_node_traces
def build_glmm_model(
    design: MixedDesign,
    response: GLMMResponse,
    *,
    priors: Mapping[str, str | float] | None = None,
    prior: Mapping | None = None,
) -> BuiltMixedModel:
    """Build the PyMC model of a non-Gaussian mixed model.

    Parameters
    ----------
    design, response
        From :func:`pymlsem.mlm.families.glmm_design`.
    priors
        Overrides of :data:`DEFAULT_GLMM_PRIORS` (prior strings on the link scale; ``lkj_eta`` a number);
        ``"overdispersion"`` only for negbinomial, ``"cutpoints"`` only for ordinal.
    prior
        MCMCglmm-style ``B`` and ``G`` priors (:mod:`pymlsem.mlm.mcmcglmm_prior`), on the link scale.

    Returns
    -------
    BuiltMixedModel
        With ``method="latent"``, ``family`` and ``response`` set.

    Raises
    ------
    ModelSpecificationError
        No random-effect block.
    PriorError
        An unknown ``priors`` key or a prior that does not fit its parameter.
    """
    resolved = resolve_mixed_priors(priors, _defaults(response.family))
    if response.family == "ordinal":
        design = _without_intercept(design)
    labels = block_labels(design)
    check_term_priors(resolved, design, labels)
    parsed = (
        parse_mcmcglmm_prior(prior, design, gaussian=False)
        if prior is not None
        else McmcglmmPrior(None, None, (None,) * len(labels))
    )
    # what is a prior of one parameter becomes priors= entries (data for the engine families)
    parsed, converted = as_pymlsem_priors(parsed, design.fixed_names, labels)
    resolved = {**resolved, **converted}
    with pm.Model(coords={"term": list(design.fixed_names)}) as model:
        center, scale = response_scale(response)
        fixef = (
            fixed_effects(parsed.b) if parsed.b else default_fixed_effects(design, resolved, center, scale)
        )
        chols = [
            block_root(design, k, label, parsed.g[k])
            if parsed.g[k]
            else block_cholesky(design, k, label, resolved, scale)
            for k, label in enumerate(labels)
        ]
        eta = latent_response_mean(design, fixef, chols, labels)
        if response.offset is not None:
            eta = eta + pm.Data("offset", response.offset)
        eta.name = LINEAR_PREDICTOR  # found by name for the conditional DIC's plug-in deviance
        _likelihood(response, eta, resolved, scale)
    return BuiltMixedModel(
        model,
        design,
        "latent",
        labels,
        resolved,
        family=response.family,
        response=response,
        mcmcglmm_prior=parsed,
        likelihood="latent" if design.blocks else NO_RANDOM_EFFECTS,
    )
