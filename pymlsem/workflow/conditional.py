"""Pointwise log-likelihood of SEMs fitted by the latent builder, given the sampled latent variables.

Random slopes and ordered indicators have no implied moments that describe the data (their latent variables
cannot be integrated out in closed form), so, as for non-Gaussian mixed models, the pointwise
log-likelihood conditions on the sampled latent variables: the value of a unit at a draw is the model's own
likelihood term of that unit (the terms of the potentials ``loglik_level<k>``, kept per unit by
:mod:`pymlsem.build.latent`), evaluated at the draw's parameters and latent variables.

- ``unit="observation"``: each row's terms (level 1), for models without observed between-only variables;
- ``unit="cluster"`` (two levels, default): the terms of the cluster's rows plus its between-level terms.

The values sum to the log-likelihood given the latent variables. PSIS-LOO on such values is less stable
than on an integrated likelihood (each unit has its own latent variables, so leaving it out moves the
posterior more): read the Pareto k diagnostics.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import graph_replace

from pymlsem.exceptions import ModelSpecificationError
from pymlsem.workflow.replicate import psd_factor

__all__ = ["latent_pointwise_values", "latent_replicates", "observed_values", "values_per_draw"]

SAMPLE_DIMS = ("chain", "draw")


def _per_unit(spec: Any, unit: str) -> pt.TensorVariable:
    """The model's likelihood terms per unit, in terms of its random variables."""
    likelihood = spec.built.likelihood
    rows = likelihood[1].unit_loglik
    clusters = likelihood[2].unit_loglik if 2 in likelihood else None
    if unit == "observation":
        if clusters is not None:
            raise ModelSpecificationError(
                "the model has observed between-only variables, whose likelihood belongs to no single row; "
                "use unit='cluster'"
            )
        return rows
    index = np.asarray(spec.raw.cluster_index, dtype=np.int64)
    total = pt.zeros(spec.raw.n_clusters)
    if rows is not None:
        total = pt.inc_subtensor(total[pt.as_tensor(index)], rows)
    return total if clusters is None else total + clusters


def latent_pointwise_values(fit: Any, unit: str) -> np.ndarray:
    """Each unit's log-likelihood given the latent variables, per posterior draw.

    Parameters
    ----------
    fit
        A fit of a SEM built by the latent builder (``method="latent"``).
    unit
        ``"observation"`` or ``"cluster"``.

    Returns
    -------
    numpy.ndarray
        Shape (chain * draw, units), draws stacked chain by chain.

    Raises
    ------
    ModelSpecificationError
        ``unit="observation"`` with observed between-only variables.
    """
    spec = fit.model
    return np.stack(list(values_per_draw(spec, [_per_unit(spec, unit)], fit.idata.posterior)))[:, 0]


def values_per_draw(
    spec: Any, outputs: list[pt.TensorVariable], posterior: Any
) -> Iterator[list[np.ndarray]]:
    """The values of graph expressions of the model's random variables at each posterior draw."""
    model = spec.built.model
    inputs = [rv.type(name=rv.name) for rv in model.free_RVs]
    outputs = graph_replace(outputs, dict(zip(model.free_RVs, inputs, strict=True)), strict=False)
    # the Python implementations of the ops: no compilation, and each draw is a few numpy calls
    function = pytensor.function(inputs, outputs, on_unused_input="ignore", mode="FAST_COMPILE")
    draws = [posterior[rv.name].transpose(*SAMPLE_DIMS, ...).values for rv in model.free_RVs]
    draws = [d.reshape(-1, *d.shape[2:]) for d in draws]
    for s in range(draws[0].shape[0]):
        yield function(*[d[s] for d in draws])


def latent_replicates(spec: Any, posterior: Any, rng: np.random.Generator) -> np.ndarray:
    """One replicated data set per posterior draw, given the draw's latent variables.

    Each observed variable is drawn from its distribution given the draw's parameters, latent variables and
    the observed values of its predictors: continuous ones jointly normal around their conditional means
    with the residual covariance, ordered ones by thresholding a latent response (normal for probit,
    logistic for logit). Exogenous covariates keep their values; level-2 variables repeat over the rows of
    their cluster; missing values of the data stay missing.

    Parameters
    ----------
    spec
        A SEM built by the latent builder.
    posterior
        The posterior draws to replicate from (a Dataset with ``chain`` and ``draw``).
    rng
        Random generator.

    Returns
    -------
    numpy.ndarray
        Shape (chain * draw, N, p), variables in ``spec.stats.variables`` order; ordered variables as their
        category codes 0..K-1.
    """
    variables = list(spec.stats.variables)
    levels = sorted(spec.built.likelihood)
    parts = [spec.built.likelihood[level] for level in levels]
    outputs, layout = [], []
    for level, part in zip(levels, parts, strict=True):
        rows = np.arange(spec.nobs) if level == 1 else np.asarray(spec.raw.cluster_index)
        if part.continuous:
            outputs += [part.mean, part.cov]
            layout.append(("continuous", part.continuous, rows))
        if part.ordered:
            outputs += [part.eta, *part.thresholds]
            layout.append(("ordered", part.ordered, rows))
    fixed = np.column_stack([observed_values(spec, name) for name in variables])
    out = []
    for values in values_per_draw(spec, outputs, posterior):
        replicate = fixed.copy()
        at = 0
        for kind, names, rows in layout:
            where = [variables.index(name) for name in names]
            if kind == "continuous":
                mean, cov = values[at], values[at + 1]
                noise = rng.standard_normal(mean.shape) @ psd_factor(cov[None])[0].T
                replicate[:, where] = (mean + noise)[rows]
                at += 2
            else:
                eta, thresholds = values[at], values[at + 1 : at + 1 + len(names)]
                error = (
                    rng.standard_normal(eta.shape) if spec.link == "probit" else rng.logistic(size=eta.shape)
                )
                latent = eta + error
                codes = np.stack(
                    [(latent[:, k, None] > t[None, :]).sum(axis=1) for k, t in enumerate(thresholds)], 1
                )
                replicate[:, where] = codes[rows]
                at += 1 + len(names)
        out.append(np.where(np.isnan(fixed), np.nan, replicate))
    return np.stack(out)


def observed_values(spec: Any, name: str) -> np.ndarray:
    """A SEM variable's data (ordered ones as category codes 0..K-1), NaN where missing."""
    if name in getattr(spec, "codes", {}):
        codes = np.asarray(spec.codes[name], dtype=float)
        return np.where(codes >= 0, codes, np.nan)
    return spec.data[name].to_numpy(dtype=float)
