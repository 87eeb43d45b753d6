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

from pymlsem.build.rewrites import compile_mode
from pymlsem.exceptions import ModelSpecificationError
from pymlsem.workflow.replicate import psd_factor

__all__ = [
    "latent_deviances",
    "latent_pointwise_values",
    "latent_replicates",
    "observed_values",
    "values_per_draw",
]

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
    function = _at_draws(spec, outputs)
    draws = _stacked_draws(spec, posterior)
    for s in range(draws[0].shape[0]):
        yield function(*[d[s] for d in draws])


def _at_draws(
    spec: Any,
    outputs: list[pt.TensorVariable],
    extra: list[pt.TensorVariable] = (),
    mode: str = "FAST_COMPILE",
) -> Any:
    """A function of the model's random variables' values (then of ``extra`` inputs) returning ``outputs``.

    FAST_COMPILE by default: the Python implementations of the ops, nothing compiled, each draw a few numpy
    calls. Ops without a numpy ufunc (``log1mexp``, in the ordinal terms) run element by element there, so
    such graphs are compiled instead (``mode=None``).
    """
    model = spec.built.model
    inputs = [rv.type(name=rv.name) for rv in model.free_RVs]
    outputs = graph_replace(outputs, dict(zip(model.free_RVs, inputs, strict=True)), strict=False)
    return pytensor.function([*inputs, *extra], outputs, on_unused_input="ignore", mode=compile_mode(mode))


def _stacked_draws(spec: Any, posterior: Any) -> list[np.ndarray]:
    """Each random variable's draws, shape (chain * draw, ...), in ``free_RVs`` order."""
    draws = [posterior[rv.name].transpose(*SAMPLE_DIMS, ...).values for rv in spec.built.model.free_RVs]
    return [d.reshape(-1, *d.shape[2:]) for d in draws]


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
    fixed = np.column_stack([observed_values(spec, name) for name in variables])
    draws = _stacked_draws(spec, posterior)
    moments = _at_draws(spec, _moment_outputs(spec))
    data = {level: _level_data(spec, level) for level in spec.built.likelihood}
    rows_of = {level: _unit_of_rows(spec, level) for level in spec.built.likelihood}
    out = []
    for s in range(draws[0].shape[0]):
        replicate = fixed.copy()
        levels = _replicate_levels(spec, moments(*[d[s] for d in draws]), data, rng)
        for level, (continuous, codes) in levels.items():
            part = spec.built.likelihood[level]
            rows = rows_of[level]
            for names, values in ((part.continuous, continuous), (part.ordered, codes)):
                if names:
                    replicate[:, [variables.index(name) for name in names]] = values[rows]
        out.append(np.where(np.isnan(fixed), np.nan, replicate))
    return np.stack(out)


def latent_deviances(
    spec: Any, posterior: Any, rng: np.random.Generator, positions: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``-2 log p(y | theta, eta)`` of the data and of one replicate per draw, given its latent variables.

    The replicates are :func:`latent_replicates`' (the data's missing values kept); both deviances are the
    model's own likelihood terms (:attr:`pymlsem.build.latent.LevelLikelihood.other_loglik`), so the
    observed one is minus twice the sum of :func:`latent_pointwise_values`.

    Parameters
    ----------
    spec
        A SEM built by the latent builder.
    posterior
        Its posterior draws (a Dataset with ``chain`` and ``draw``).
    rng
        Random generator of the replicates.
    positions
        The draws to use, as positions among the draws stacked chain by chain (all by default).

    Returns
    -------
    tuple of numpy.ndarray
        The observed and the replicated deviance per used draw.
    """
    levels = sorted(spec.built.likelihood)
    parts = [spec.built.likelihood[level] for level in levels]
    inputs = [x for part in parts for x in (part.shift, part.codes) if x is not None]
    total = pt.add(*[pt.sum(part.other_loglik) for part in parts if part.other_loglik is not None])
    # ordered indicators: compiled (their log1mexp has no ufunc: 44 ms a draw at 1,600 x 6 in FAST_COMPILE)
    loglik = _at_draws(spec, [total], inputs, mode=None if any(p.ordered for p in parts) else "FAST_COMPILE")
    moments = _at_draws(spec, _moment_outputs(spec))
    data = {level: _level_data(spec, level) for level in levels}
    draws = _stacked_draws(spec, posterior)
    if positions is not None:
        draws = [d[positions] for d in draws]
    observed, replicated = np.empty(draws[0].shape[0]), np.empty(draws[0].shape[0])
    for s in range(draws[0].shape[0]):
        at = [d[s] for d in draws]
        levels_rep = _replicate_levels(spec, moments(*at), data, rng)
        same, other = [], []
        for level, part in zip(levels, parts, strict=True):
            (continuous, codes), (continuous_rep, codes_rep) = data[level], levels_rep[level]
            if part.shift is not None:
                same.append(np.zeros_like(continuous))
                other.append(np.nan_to_num(continuous_rep - continuous))
            if part.codes is not None:
                same.append(codes)
                other.append(codes_rep)
        observed[s] = -2.0 * loglik(*at, *same)[0]
        replicated[s] = -2.0 * loglik(*at, *other)[0]
    return observed, replicated


def _moment_outputs(spec: Any) -> list[pt.TensorVariable]:
    """Each level's conditional means and residual covariance, latent-response means and thresholds."""
    outputs = []
    for level in sorted(spec.built.likelihood):
        part = spec.built.likelihood[level]
        if part.continuous:
            outputs += [part.mean, part.cov]
        if part.ordered:
            outputs += [part.eta, *part.thresholds]
    return outputs


def _replicate_levels(
    spec: Any, values: list[np.ndarray], data: dict[int, tuple], rng: np.random.Generator
) -> dict[int, tuple[np.ndarray | None, np.ndarray | None]]:
    """One draw's replicated data per level (units of the level), from :func:`_moment_outputs`' values.

    Continuous values are NaN, and ordered variables' codes -1, where the data (:func:`_level_data`, per
    level) have none.
    """
    out = {}
    at = 0
    for level in sorted(spec.built.likelihood):
        part = spec.built.likelihood[level]
        observed, observed_codes = data[level]
        continuous = codes = None
        if part.continuous:
            mean, cov = values[at], values[at + 1]
            noise = rng.standard_normal(mean.shape) @ psd_factor(cov[None])[0].T
            continuous = np.where(np.isnan(observed), np.nan, mean + noise)
            at += 2
        if part.ordered:
            eta, thresholds = values[at], values[at + 1 : at + 1 + len(part.ordered)]
            error = rng.standard_normal(eta.shape) if spec.link == "probit" else rng.logistic(size=eta.shape)
            latent = eta + error
            codes = np.stack(
                [(latent[:, k, None] > t[None, :]).sum(axis=1) for k, t in enumerate(thresholds)], 1
            )
            codes = np.where(observed_codes < 0, -1, codes)
            at += 1 + len(part.ordered)
        out[level] = (continuous, codes)
    return out


def _level_data(spec: Any, level: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A level's data per unit: continuous values (NaN where missing) and codes (-1 where missing)."""
    part = spec.built.likelihood[level]
    continuous = codes = None
    if part.continuous:
        if level == 2 and spec.raw.cluster_ids is not None:
            continuous = np.column_stack([spec.raw.cluster_column(name) for name in part.continuous])
        else:
            continuous = np.column_stack([observed_values(spec, name) for name in part.continuous])
    if part.ordered:
        codes = np.column_stack([np.asarray(spec.codes[name], dtype=np.int64) for name in part.ordered])
    return continuous, codes


def _unit_of_rows(spec: Any, level: int) -> np.ndarray:
    """The unit (row, or cluster) of each row of the data at ``level``."""
    return np.arange(spec.nobs) if level == 1 else np.asarray(spec.raw.cluster_index)


def observed_values(spec: Any, name: str) -> np.ndarray:
    """A SEM variable's data (ordered ones as category codes 0..K-1), NaN where missing."""
    if name in getattr(spec, "codes", {}):
        codes = np.asarray(spec.codes[name], dtype=float)
        return np.where(codes >= 0, codes, np.nan)
    return spec.data[name].to_numpy(dtype=float)
