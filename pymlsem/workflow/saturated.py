"""The saturated (unrestricted, "h1") model: its ML moments per level and its log-likelihood.

Single level, the saturated model's ML estimates are the sample mean and ML covariance. Two levels, the
saturated model has an unrestricted within covariance over the within-varying variables, an unrestricted
between covariance over the between-level variables (the variables shared by both levels and the between-only
ones) and free means; within-only variables have no between part and between-only variables no within part.
With unequal cluster sizes it has no closed form, so it is fitted by the EM algorithm that lavaan uses for its
h1 model (``lav_mvnorm_cluster_em_sat``, per cluster size): the cluster effects are the missing data; the
means and covariance of the between-only variables are fixed at their sample values (they are saturated and
separate from the rest); iterations start from identity covariances and zero means (a replicated data set of a
posterior predictive check starts at the moments it was drawn from, which saves a quarter of the iterations)
and stop when the log-likelihood improves by less than ``tol``. With lavaan's defaults (``tol = 1e-4``,
``min_variance = 1e-5``) the estimates and log-likelihood are lavaan's to rounding error (tested against
lavaan 0.6-14's ``lavInspect(fit, "sampstat")`` and ``fitMeasures(fit, "unrestricted.logl")``).

The EM works on the sufficient statistics of :mod:`pymlsem.data.stats` only, and on a batch of data sets
with the same cluster sizes at once (the replicated data sets of a posterior predictive check).

Mean convention: the split of a shared variable's mean between the levels is not identified (only the sum
enters the likelihood). As lavaan 0.6-18 and later, :func:`sample_statistics` reports the whole mean of a
shared variable at the between level (within-level mean 0); lavaan 0.6-14 reported the split at which its EM
happened to stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pymlsem.build.loglik import single_level_fixed_x_loglik, two_level_fixed_x_loglik
from pymlsem.data.stats import SingleLevelStats, TwoLevelStats
from pymlsem.exceptions import DataError
from pymlsem.workflow.loglik import (
    SingleLevelBatch,
    TwoLevelBatch,
    batch_of,
    single_level_loglik,
    two_level_loglik,
)
from pymlsem.workflow.saturated_missing import missing_h1, two_level_missing_h1

if TYPE_CHECKING:
    from pymlsem.api import SEM
    from pymlsem.results.fit import SEMFit

__all__ = [
    "EMResult",
    "SaturatedMoments",
    "check_saturated",
    "sample_statistics",
    "single_level_h1_loglik",
    "two_level_h1",
]

#: lavaan's settings for its two-level h1 EM.
LAVAAN_TOL = 1e-4
LAVAAN_MIN_VARIANCE = 1e-5
LAVAAN_MAX_ITER = 5000


def single_level_h1_loglik(batch: SingleLevelBatch) -> np.ndarray:
    """Saturated log-likelihood of each single-level data set: the normal density at the sample moments.

    Parameters
    ----------
    batch
        R data sets.

    Returns
    -------
    numpy.ndarray
        Shape (R,): ``-N/2 [p log 2pi + log|S| + p]`` (with or without means: the mean term is zero), the
        model's density (:func:`pymlsem.workflow.loglik.single_level_loglik`) at the sample moments; NaN
        for a data set whose sample covariance is not positive definite.
    """
    value = single_level_loglik(None, batch.cov, batch)
    return np.where(np.isfinite(value), value, np.nan)


def check_saturated(loglik: np.ndarray) -> None:
    """Raise when the observed data's saturated model is undefined.

    Parameters
    ----------
    loglik
        The saturated log-likelihood of the observed data (from :func:`single_level_h1_loglik` or
        :func:`two_level_h1`).

    Raises
    ------
    DataError
        When it is not finite (a sample covariance that is not positive definite: more variables than rows,
        a constant column, a variable without variation within or between clusters).
    """
    if not np.all(np.isfinite(loglik)):
        raise DataError(
            "the saturated model of the data is undefined (a sample covariance matrix is not positive "
            "definite: a constant variable, or more variables than observations?)"
        )


@dataclass(frozen=True)
class EMResult:
    """ML estimates of the two-level saturated model for a batch of data sets.

    All arrays have a leading batch axis (R) and are over all variables in ``variables`` order (p), with
    zeros where a level has no part, as :func:`pymlsem.workflow.loglik.two_level_loglik` takes them.

    Attributes
    ----------
    variables
        Variable names.
    mu_w, sigma_w, mu_b, sigma_b
        Shape (R, p) and (R, p, p): within and between means and covariances. ``mu_w`` holds the means of
        the within-only variables and ``mu_b`` those of all the others (the convention of lavaan 0.6-18).
    loglik
        Shape (R,): the log-likelihood at the estimates (full joint density, no fixed.x constant).
    iterations
        Shape (R,): EM iterations used.
    converged
        Shape (R,): whether the log-likelihood improvement fell below ``tol`` within ``max_iter``.
    """

    variables: tuple[str, ...]
    mu_w: np.ndarray
    sigma_w: np.ndarray
    mu_b: np.ndarray
    sigma_b: np.ndarray
    loglik: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray


@dataclass
class _EMState:
    """The EM's parameters in lavaan's internal layout: y = within-varying variables, z = between-only."""

    sigma_w: np.ndarray  # (R, ny, ny)
    sigma_b: np.ndarray  # (R, ny, ny)
    sigma_yz: np.ndarray  # (R, ny, nz)
    mu_w: np.ndarray  # (R, ny)
    mu_b: np.ndarray  # (R, ny)

    def take(self, index: np.ndarray) -> _EMState:
        return _EMState(
            *(a[index] for a in (self.sigma_w, self.sigma_b, self.sigma_yz, self.mu_w, self.mu_b))
        )

    def put(self, index: np.ndarray, other: _EMState) -> None:
        for name in ("sigma_w", "sigma_b", "sigma_yz", "mu_w", "mu_b"):
            getattr(self, name)[index] = getattr(other, name)


@dataclass(frozen=True)
class _EMData:
    """What the E-step reads, from the sufficient statistics (batched over R data sets)."""

    y: np.ndarray  # positions of the within-varying variables (ny,)
    z: np.ndarray  # positions of the between-only variables (nz,)
    within_only: np.ndarray  # positions among y of the within-only variables
    sizes: np.ndarray  # (G,)
    counts: np.ndarray  # (G,)
    nobs: int
    nclusters: int
    sum_b: np.ndarray  # (R, G, q): sum over the clusters of each size of (z_j, ybar_j)
    sum_bb: np.ndarray  # (R, G, q, q): sum of their outer products
    yy: np.ndarray  # (R, ny, ny): raw cross-product of all rows' y values
    mu_z: np.ndarray  # (R, nz)
    sigma_zz: np.ndarray  # (R, nz, nz)

    def take(self, index: np.ndarray) -> _EMData:
        return _EMData(
            self.y,
            self.z,
            self.within_only,
            self.sizes,
            self.counts,
            self.nobs,
            self.nclusters,
            self.sum_b[index],
            self.sum_bb[index],
            self.yy[index],
            self.mu_z[index],
            self.sigma_zz[index],
        )


def _em_data(batch: TwoLevelBatch) -> _EMData:
    variables = batch.variables
    z = np.array([variables.index(v) for v in batch.between_only], dtype=np.int64)
    y = np.array([k for k in range(len(variables)) if k not in set(z.tolist())], dtype=np.int64)
    within_only = np.array([y.tolist().index(variables.index(v)) for v in batch.within_only], dtype=np.int64)
    order = np.concatenate([z, y])
    counts = batch.group_counts
    means = batch.group_means[..., order]
    sum_b = counts[:, None] * means
    sum_bb = batch.group_scatter[..., order[:, None], order[None, :]] + counts[:, None, None] * (
        means[..., :, None] * means[..., None, :]
    )
    nz = z.size
    # the within scatter is over batch.within_index, which is y in the same order
    yy = batch.within_scatter + np.einsum("g,...gkl->...kl", batch.group_sizes, sum_bb[..., nz:, nz:])
    mu_z = sum_b[..., :nz].sum(axis=-2) / batch.nclusters
    sigma_zz = sum_bb[..., :nz, :nz].sum(axis=-3) / batch.nclusters - mu_z[..., :, None] * mu_z[..., None, :]
    return _EMData(
        y, z, within_only, batch.group_sizes, counts, batch.nobs, batch.nclusters,
        sum_b, sum_bb, yy, mu_z, sigma_zz,
    )  # fmt: skip


def _full_moments(state: _EMState, data: _EMData, sigma_zz: np.ndarray, p: int) -> tuple:
    """The EM parameters as (mu_w, sigma_w, mu_b, sigma_b) over all p variables (lavaan's implied form)."""
    y, z = data.y, data.z
    r = state.sigma_w.shape[0]
    mu_w, mu_b = np.zeros((r, p)), np.zeros((r, p))
    sigma_w, sigma_b = np.zeros((r, p, p)), np.zeros((r, p, p))
    mu_w[:, y] = state.mu_w
    mu_b[:, y] = state.mu_b
    mu_b[:, y[data.within_only]] = 0.0
    mu_b[:, z] = data.mu_z
    sigma_w[:, y[:, None], y[None, :]] = state.sigma_w
    sigma_b[:, y[:, None], y[None, :]] = state.sigma_b
    sigma_b[:, y[:, None], z[None, :]] = state.sigma_yz
    sigma_b[:, z[:, None], y[None, :]] = np.swapaxes(state.sigma_yz, -1, -2)
    sigma_b[:, z[:, None], z[None, :]] = sigma_zz
    wo = y[data.within_only]
    sigma_b[:, wo, :] = 0.0
    sigma_b[:, :, wo] = 0.0
    return mu_w, sigma_w, mu_b, sigma_b


def _lavaan_start(data: _EMData, r: int) -> _EMState:
    """lavaan's starting values: identity covariances (no between part for within-only variables), zero
    means."""
    ny, nz = data.y.size, data.z.size
    sigma_b = np.broadcast_to(np.eye(ny), (r, ny, ny)).copy()
    sigma_b[:, data.within_only, :] = 0.0
    sigma_b[:, :, data.within_only] = 0.0
    return _EMState(
        sigma_w=np.broadcast_to(np.eye(ny), (r, ny, ny)).copy(),
        sigma_b=sigma_b,
        sigma_yz=np.zeros((r, ny, nz)),
        mu_w=np.zeros((r, ny)),
        mu_b=np.zeros((r, ny)),
    )


def _start_at(
    data: _EMData, r: int, mu_w: np.ndarray, sigma_w: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray
) -> _EMState:
    """The EM's parameters at given two-level moments over all variables (the inverse of
    :func:`_full_moments`; the between-only variables' own moments stay at their sample values)."""
    y, z = data.y, data.z
    shape = (r, y.size, y.size)
    between = np.broadcast_to(sigma_b[..., y[:, None], y[None, :]], shape).copy()
    between[:, data.within_only, :] = 0.0
    between[:, :, data.within_only] = 0.0
    return _EMState(
        sigma_w=np.broadcast_to(sigma_w[..., y[:, None], y[None, :]], shape).copy(),
        sigma_b=between,
        sigma_yz=np.broadcast_to(sigma_b[..., y[:, None], z[None, :]], (r, y.size, z.size)).copy(),
        mu_w=np.broadcast_to(mu_w[..., y], (r, y.size)).copy(),
        mu_b=np.broadcast_to(mu_b[..., y], (r, y.size)).copy(),
    )


def _estep(state: _EMState, data: _EMData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """E-step per cluster size (lavaan's ``lav_mvnorm_cluster_em_estepb``): sums over each size's clusters.

    Returns ``sum_j E(v_j)`` (R, G, ny), ``sum_j E(v_j v_j')`` (R, G, ny, ny) and ``sum_j b_j E(v_j)'``
    (R, G, q, ny), with ``v_j`` the cluster effects of the within-varying variables and
    ``b_j = (z_j, ybar_j)``.
    """
    nz = data.z.size
    ny = data.y.size
    q = nz + ny
    sizes, counts = data.sizes, data.counts
    r, g = data.sum_b.shape[0], sizes.size
    mu_y = state.mu_w + state.mu_b
    sigma1 = np.concatenate([state.sigma_yz, state.sigma_b], axis=-1)  # (R, ny, q)
    mu = np.concatenate([data.mu_z, mu_y], axis=-1)  # (R, q)
    omega = np.empty((r, g, q, q))
    omega[:, :, :nz, :nz] = data.sigma_zz[:, None]
    omega[:, :, nz:, :nz] = state.sigma_yz[:, None]
    omega[:, :, :nz, nz:] = np.swapaxes(state.sigma_yz, -1, -2)[:, None]
    omega[:, :, nz:, nz:] = state.sigma_w[:, None] / sizes[:, None, None] + state.sigma_b[:, None]
    # K = sigma1 omega^-1, per data set and cluster size
    gain = np.swapaxes(np.linalg.solve(omega, np.swapaxes(sigma1, -1, -2)[:, None]), -1, -2)  # (R,G,ny,q)
    centered_sum = data.sum_b - counts[:, None] * mu[:, None]  # sum_j (b_j - mu)
    shift = np.einsum("rgyq,rgq->rgy", gain, centered_sum)
    sum_ev = counts[:, None] * state.mu_b[:, None] + shift  # sum_j E(v_j)
    outer_mu = data.sum_b[..., :, None] * mu[:, None, None, :]
    centered_cp = data.sum_bb - outer_mu - np.swapaxes(outer_mu, -1, -2)
    centered_cp = centered_cp + counts[:, None, None] * (mu[:, None, :, None] * mu[:, None, None, :])
    mb_shift = state.mu_b[:, None, :, None] * shift[..., None, :]
    sum_evev = (
        counts[:, None, None] * (state.mu_b[:, None, :, None] * state.mu_b[:, None, None, :])
        + mb_shift
        + np.swapaxes(mb_shift, -1, -2)
        + gain @ centered_cp @ np.swapaxes(gain, -1, -2)
    )
    cov_v = counts[:, None, None] * (state.sigma_b[:, None] - gain @ sigma1[:, None].swapaxes(-1, -2))
    evv = (cov_v + np.swapaxes(cov_v, -1, -2)) / 2 + sum_evev
    # sum_j b_j E(v_j)'
    sum_bev = data.sum_b[..., :, None] * state.mu_b[:, None, None, :] + (
        data.sum_bb - data.sum_b[..., :, None] * mu[:, None, None, :]
    ) @ np.swapaxes(gain, -1, -2)
    return sum_ev, evv, sum_bev


def _estep_mstep(state: _EMState, data: _EMData) -> _EMState:
    """One EM iteration: :func:`_estep`, then lavaan's M-step (moments of the completed data)."""
    nz, sizes = data.z.size, data.sizes
    sum_ev, evv, sum_bev = _estep(state, data)
    yev = sum_bev[:, :, nz:, :]
    mw = np.einsum("g,rgy->ry", sizes, data.sum_b[..., nz:] - sum_ev) / data.nobs
    mb = sum_ev.sum(axis=1) / data.nclusters
    cb = evv.sum(axis=1) / data.nclusters
    cw = (data.yy + np.einsum("g,rgkl->rkl", sizes, evv - yev - np.swapaxes(yev, -1, -2))) / data.nobs
    a = sum_bev[:, :, :nz, :].sum(axis=1) / data.nclusters - data.mu_z[:, :, None] * mb[:, None, :]
    return _EMState(
        sigma_w=cw - mw[:, :, None] * mw[:, None, :],
        sigma_b=cb - mb[:, :, None] * mb[:, None, :],
        sigma_yz=np.swapaxes(a, -1, -2),
        mu_w=mw,
        mu_b=mb,
    )


def _floor_variances(state: _EMState, min_variance: float) -> None:
    """lavaan's guard: within variances below ``min_variance`` are set to it, their covariances to 0."""
    diag = np.diagonal(state.sigma_w, axis1=-2, axis2=-1)
    low = diag < min_variance
    if not low.any():
        return
    keep = ~low
    state.sigma_w *= keep[:, :, None] & keep[:, None, :]
    eye = np.eye(low.shape[-1], dtype=bool)
    state.sigma_w[low[:, :, None] & eye] = min_variance


def two_level_h1(
    batch: TwoLevelBatch,
    *,
    tol: float = LAVAAN_TOL,
    max_iter: int = LAVAAN_MAX_ITER,
    min_variance: float = LAVAAN_MIN_VARIANCE,
    start: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> EMResult:
    """Fit the two-level saturated model by EM to every data set of a batch.

    Parameters
    ----------
    batch
        R data sets with the same variables and cluster sizes.
    tol
        Stop a data set's iterations when its log-likelihood improves by less than this (lavaan: 1e-4).
        Smaller values give estimates closer to the exact maximum (the log-likelihood rises by well under
        ``tol`` times the number of further iterations).
    max_iter
        Most iterations per data set.
    min_variance
        Floor for the within variances (lavaan's guard against variables with no within variation).
    start
        Where the iterations start, per data set: ``(mu_w, sigma_w, mu_b, sigma_b)`` over all variables,
        shaped as :func:`pymlsem.workflow.loglik.two_level_loglik` takes them (e.g. the implied moments a
        replicated data set was drawn from: close to its saturated estimates, so that few iterations remain).
        By default lavaan's start: identity covariances and zero means.

    Returns
    -------
    EMResult
    """
    data = _em_data(batch)
    p = len(batch.variables)
    r = batch.size
    state = _lavaan_start(data, r) if start is None else _start_at(data, r, *start)
    loglik = np.full(r, -np.inf)
    iterations = np.zeros(r, dtype=np.int64)
    converged = np.zeros(r, dtype=bool)
    active = np.arange(r)
    for _ in range(max_iter):
        if active.size == 0:
            break
        part = data.take(active)
        new = _estep_mstep(state.take(active), part)
        _floor_variances(new, min_variance)
        value = two_level_loglik(*_full_moments(new, part, part.sigma_zz, p), batch.take(active))
        state.put(active, new)
        iterations[active] += 1
        done = ~((value - loglik[active]) >= tol)  # NaN (a degenerate data set) stops too
        loglik[active] = value
        converged[active[done]] = True
        active = active[~done]
    mu_w, sigma_w, mu_b, sigma_b = _full_moments(state, data, data.sigma_zz, p)
    # lavaan 0.6-18's convention: the whole mean of a shared variable at the between level
    shared = np.setdiff1d(data.y, data.y[data.within_only])
    mu_b[:, shared] += mu_w[:, shared]
    mu_w[:, shared] = 0.0
    return EMResult(tuple(batch.variables), mu_w, sigma_w, mu_b, sigma_b, loglik, iterations, converged)


@dataclass(frozen=True)
class SaturatedMoments:
    """The saturated model's ML estimates for the observed data, per level (lavaan's ``sampstat``).

    Attributes
    ----------
    mean
        Level (1 = within or the only level, 2 = between) -> means of that level's observed variables.
    cov
        Level -> ML covariance matrix of that level's observed variables.
    loglik
        The saturated log-likelihood (full joint normal density of all observed variables).
    loglik_fixed_x
        lavaan's ``unrestricted.logl``: ``loglik`` minus the saturated log-likelihood of the fixed.x
        covariates (equal to ``loglik`` without exogenous covariates).
    iterations
        EM iterations (0 for a single-level model: closed form).
    converged
        Whether the EM met its tolerance (always True single-level).
    """

    mean: dict[int, pd.Series]
    cov: dict[int, pd.DataFrame]
    loglik: float
    loglik_fixed_x: float
    iterations: int
    converged: bool


def sample_statistics(
    model: SEM | SEMFit,
    *,
    tol: float = LAVAAN_TOL,
    max_iter: int = LAVAAN_MAX_ITER,
    min_variance: float = LAVAAN_MIN_VARIANCE,
) -> SaturatedMoments:
    """The saturated (h1) model's ML means and covariance matrices per level, for a model's data.

    The Bayesian workflow's counterpart of lavaan's ``lavInspect(fit, "sampstat")``: what each level's
    observed covariance matrix and means are estimated to be when the model puts no structure on them.
    Single level, the sample mean and ML covariance (divided by N). Two levels, the ML estimates of the
    unrestricted within and between moments (see the module docstring); with the default settings these
    are lavaan's numbers.

    Parameters
    ----------
    model
        A :class:`~pymlsem.api.SEM` or a fit (only its data and the variables' roles matter).
    tol, max_iter, min_variance
        Two-level EM settings, as in :func:`two_level_h1`.

    Returns
    -------
    SaturatedMoments
        Each level's variables in the order the model lists them (lavaan's order).
    """
    spec = getattr(model, "model", model)
    exo = spec.partable.exogenous
    if getattr(spec, "missing", False) and (spec.cluster is not None or not exo.get(1)):
        spec.check_closed_form("the saturated model's sample statistics")
        if spec.cluster is not None:
            return _incomplete_two_level_moments(spec, exo)
        return _incomplete_moments(spec)
    spec.check_complete("the saturated model's sample statistics")
    stats = spec.stats
    if isinstance(stats, SingleLevelStats):
        return _single_level_moments(spec, stats, exo.get(1, []))
    return _two_level_moments(spec, stats, exo, tol=tol, max_iter=max_iter, min_variance=min_variance)


def _incomplete_moments(spec: SEM) -> SaturatedMoments:
    """The EM estimates of incomplete single-level data (lavaan's ``sampstat.h1`` with missing = "ml")."""
    h1 = missing_h1(spec.likelihood_stats)
    names = list(spec.likelihood_stats.variables)
    return SaturatedMoments(
        mean={1: pd.Series(h1.mean, index=names)},
        cov={1: pd.DataFrame(h1.cov, index=names, columns=names)},
        loglik=h1.loglik,
        loglik_fixed_x=h1.loglik,
        iterations=h1.iterations,
        converged=True,
    )


def _incomplete_two_level_moments(spec: SEM, exo: dict[int, list[str]]) -> SaturatedMoments:
    """The ML estimates of incomplete two-level data (lavaan's h1 with missing = "ml", fitted to the end)."""
    h1 = two_level_missing_h1(spec.likelihood_stats)
    names = list(spec.likelihood_stats.variables)
    means, covs = {1: h1.mu_w, 2: h1.mu_b}, {1: h1.sigma_w, 2: h1.sigma_b}
    mean, cov = _by_level(spec, names, means, covs)
    # the exogenous covariates are complete (fixed.x): their constant is that of the complete data's
    constant = two_level_fixed_x_loglik(spec.stats, exo.get(1, []), exo.get(2, []))
    return SaturatedMoments(mean, cov, h1.loglik, h1.loglik - constant, h1.iterations, True)


def _by_level(spec: SEM, names: list[str], means: dict, covs: dict) -> tuple[dict, dict]:
    """Each level's means and covariances of the variables the model has at that level, in its order."""
    mean: dict[int, pd.Series] = {}
    cov: dict[int, pd.DataFrame] = {}
    for level in (1, 2):
        order = list(spec.partable.observed[level])
        where = [names.index(v) for v in order]
        mean[level] = pd.Series(means[level][where], index=order)
        cov[level] = pd.DataFrame(covs[level][np.ix_(where, where)], index=order, columns=order)
    return mean, cov


def _single_level_moments(spec: SEM, stats: SingleLevelStats, exo: list[str]) -> SaturatedMoments:
    names = list(stats.variables)
    loglik_batch = single_level_h1_loglik(batch_of(stats))
    check_saturated(loglik_batch)
    loglik = float(loglik_batch[0])
    mean = pd.Series(
        np.asarray(stats.mean, dtype=float) if stats.mean is not None else np.full(len(names), np.nan),
        index=names,
    )
    cov = pd.DataFrame(np.asarray(stats.cov, dtype=float), index=names, columns=names)
    order = list(spec.partable.observed[1])
    return SaturatedMoments(
        {1: mean[order]},
        {1: cov.loc[order, order]},
        loglik,
        loglik - single_level_fixed_x_loglik(stats, exo),
        0,
        True,
    )


def _two_level_moments(
    spec: SEM, stats: TwoLevelStats, exo: dict[int, list[str]], **settings: float
) -> SaturatedMoments:
    result = two_level_h1(batch_of(stats), **settings)
    check_saturated(result.loglik)
    means = {1: result.mu_w[0], 2: result.mu_b[0]}
    covs = {1: result.sigma_w[0], 2: result.sigma_b[0]}
    mean, cov = _by_level(spec, list(stats.variables), means, covs)
    loglik = float(result.loglik[0])
    constant = two_level_fixed_x_loglik(stats, exo.get(1, []), exo.get(2, []))
    return SaturatedMoments(
        mean, cov, loglik, loglik - constant, int(result.iterations[0]), bool(result.converged[0])
    )
