"""The saturated model of incomplete data (lavaan's h1 with ``missing = "ml"``), at one or two levels.

With missing values the unrestricted means and covariances have no closed form.

One level: they are estimated by EM (Dempster, Laird & Rubin 1977; the algorithm of lavaan's
``lav_mvnorm_missing_h1_estimate_moments``). The E-step needs only each missingness pattern's statistics
(count, observed means, scatter; :class:`~pymlsem.data.missing_stats.MissingSingleLevelStats`): a pattern's
missing values are replaced by their regression on its observed ones at the current moments, and their
conditional covariance is added. The saturated log-likelihood is then the model's own full-information
density (:func:`pymlsem.workflow.incomplete.missing_loglik_at`) at the EM estimates, so the chi-square
``2 [log L_h1 - log L(theta)]`` at lavaan's estimates is lavaan's test statistic.

Two levels: the unrestricted model has a mean per variable, a within covariance over the within-varying
variables and a between covariance over the between-varying ones. Its log-likelihood is the models' own
full-information density (:func:`pymlsem.build.missing.two_level_missing_loglik`), maximised directly over
the means and the two covariances' Cholesky factors (log-diagonals) by quasi-Newton steps with the density's
exact gradient, from moments that ignore the clustering. Both come from the ``sem2_fiml`` engine kernel's
likelihood (:mod:`pymlsem.engine.kernels.saturated`, compiled once per machine and cached: building and
compiling the density's PyTensor graph took 10-25 s in every process).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from pymlsem.data.missing_stats import MissingSingleLevelStats, MissingTwoLevelStats
from pymlsem.engine.kernels.saturated import objective
from pymlsem.exceptions import PymlsemError
from pymlsem.workflow.incomplete import TWO_LEVEL_ARRAYS, missing_loglik_at

__all__ = ["MissingH1", "MissingTwoLevelH1", "missing_h1", "missing_h1_moments", "two_level_missing_h1"]


@dataclass(frozen=True)
class MissingH1:
    """EM estimates of the saturated model of incomplete data.

    Attributes
    ----------
    mean, cov
        The unrestricted means (p,) and covariances (p, p), in ``stats.variables`` order.
    loglik
        The full-information log-likelihood at them.
    iterations
        EM iterations used.
    """

    mean: np.ndarray
    cov: np.ndarray
    loglik: float
    iterations: int


def missing_h1(stats: MissingSingleLevelStats, *, tol: float = 1e-9, max_iter: int = 10_000) -> MissingH1:
    """The saturated model's EM estimates and log-likelihood, from pattern statistics.

    Parameters
    ----------
    stats
        Statistics of the incomplete rows by missingness pattern.
    tol
        Largest change of a mean or covariance between iterations at convergence.
    max_iter
        At most this many iterations.

    Raises
    ------
    PymlsemError
        When EM does not converge, or a variable has no observed value.
    """
    mean, cov, iterations = missing_h1_moments(
        stats.pattern_observed,
        stats.pattern_counts,
        stats.pattern_means[None],
        stats.pattern_scatter[None],
        tol=tol,
        max_iter=max_iter,
    )
    return MissingH1(mean[0], cov[0], missing_loglik_at(mean[0], cov[0], stats), int(iterations[0]))


def missing_h1_moments(
    pattern_observed: np.ndarray,
    pattern_counts: np.ndarray,
    pattern_means: np.ndarray,
    pattern_scatter: np.ndarray,
    *,
    start: tuple[np.ndarray, np.ndarray] | None = None,
    tol: float = 1e-9,
    max_iter: int = 10_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The saturated model's EM estimates for R data sets with the same missingness patterns at once.

    Parameters
    ----------
    pattern_observed, pattern_counts
        The patterns, shared by the data sets: (K, p) observed (1/0) and (K,) rows of each.
    pattern_means, pattern_scatter
        Each data set's pattern statistics, (R, K, p) and (R, K, p, p), as in
        :class:`~pymlsem.data.missing_stats.MissingSingleLevelStats` (e.g. the replicated data sets of a
        posterior predictive check, which keep the data's missing values).
    start
        Means (R, p) and covariances (R, p, p) to start from (e.g. the moments each replicate was drawn
        from); by default each variable's observed mean and variance (plus 1e-3), no covariances.
    tol
        Largest change of a mean or covariance between iterations at convergence, per data set.
    max_iter
        At most this many iterations.

    Returns
    -------
    tuple of numpy.ndarray
        Means (R, p), covariances (R, p, p) and iterations (R,).

    Raises
    ------
    PymlsemError
        When EM does not converge, or a variable has no observed value.
    """
    observed = np.asarray(pattern_observed).astype(bool)
    counts = np.asarray(pattern_counts, dtype=float)
    if not observed.any(axis=0).all():
        raise PymlsemError("a variable has no observed value: the saturated model is undefined")
    n = float(counts.sum())
    if start is None:
        seen = counts @ observed  # rows observing each variable
        mean = (counts[:, None] * pattern_means * observed).sum(axis=1) / seen
        variance = np.einsum("rkjj->rj", pattern_scatter) / seen + 1e-3
        cov = variance[:, :, None] * np.eye(mean.shape[1])
    else:
        mean, cov = (np.array(a, dtype=float) for a in start)
    iterations = np.zeros(mean.shape[0], dtype=np.int64)
    active = np.arange(mean.shape[0])
    for _ in range(max_iter):
        if active.size == 0:
            return mean, cov, iterations
        new_mean, new_cov = _em_step(
            observed, counts, n, pattern_means[active], pattern_scatter[active], mean[active], cov[active]
        )
        change = np.maximum(
            np.abs(new_mean - mean[active]).max(axis=-1), np.abs(new_cov - cov[active]).max(axis=(-2, -1))
        )
        mean[active], cov[active] = new_mean, new_cov
        iterations[active] += 1
        active = active[~(change < tol)]
    raise PymlsemError(f"the saturated model's EM did not converge in {max_iter} iterations")


def _em_step(
    observed: np.ndarray,
    counts: np.ndarray,
    n: float,
    means: np.ndarray,
    scatter: np.ndarray,
    mean: np.ndarray,
    cov: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One EM iteration for a batch of data sets (lavaan's ``lav_mvnorm_missing_h1_estimate_moments``): each
    pattern's missing values replaced by their regression on its observed ones, their conditional covariance
    added."""
    first, second = np.zeros_like(mean), np.zeros_like(cov)
    for k in range(counts.size):
        o, m = np.flatnonzero(observed[k]), np.flatnonzero(~observed[k])
        oo, om, mo, mm = np.ix_(o, o), np.ix_(o, m), np.ix_(m, o), np.ix_(m, m)
        size, xbar = counts[k], means[:, k, o]
        sum_o = size * xbar
        sum_oo = scatter[:, k][(slice(None), *oo)] + size * np.einsum("ri,rj->rij", xbar, xbar)
        first[:, o] += sum_o
        second[(slice(None), *oo)] += sum_oo
        if not m.size:
            continue
        # regression of m on o: (R, m, o)
        slope = np.swapaxes(np.linalg.solve(cov[(slice(None), *oo)], cov[(slice(None), *om)]), -1, -2)
        intercept = mean[:, m] - np.einsum("rmo,ro->rm", slope, mean[:, o])
        predicted = np.einsum("rmo,ro->rm", slope, sum_o)
        sum_m = size * intercept + predicted
        sum_mo = np.einsum("rm,ro->rmo", intercept, sum_o) + slope @ sum_oo
        residual = cov[(slice(None), *mm)] - slope @ cov[(slice(None), *om)]
        cross = np.einsum("rm,rn->rmn", intercept, predicted)
        sum_mm = (
            size * np.einsum("rm,rn->rmn", intercept, intercept)
            + cross
            + np.swapaxes(cross, -1, -2)
            + slope @ sum_oo @ np.swapaxes(slope, -1, -2)
            + size * residual
        )
        first[:, m] += sum_m
        second[(slice(None), *mo)] += sum_mo
        second[(slice(None), *om)] += np.swapaxes(sum_mo, -1, -2)
        second[(slice(None), *mm)] += sum_mm
    new_mean = first / n
    new_cov = second / n - new_mean[:, :, None] * new_mean[:, None, :]
    return new_mean, (new_cov + np.swapaxes(new_cov, -1, -2)) / 2


@dataclass(frozen=True)
class MissingTwoLevelH1:
    """ML estimates of the two-level saturated model of incomplete data.

    Attributes
    ----------
    mu_w, sigma_w, mu_b, sigma_b
        Within and between means (p,) and covariances (p, p), in ``stats.variables`` order, with the
        convention of :class:`pymlsem.workflow.saturated.EMResult`: ``mu_w`` holds the means of the
        within-only variables and ``mu_b`` those of all others; the within-only rows and columns of
        ``sigma_b`` and the between-only ones of ``sigma_w`` are zero.
    loglik
        The full-information log-likelihood at them.
    iterations
        Quasi-Newton iterations used.
    """

    mu_w: np.ndarray
    sigma_w: np.ndarray
    mu_b: np.ndarray
    sigma_b: np.ndarray
    loglik: float
    iterations: int


def _starting_point(stats: MissingTwoLevelStats) -> tuple[np.ndarray, np.ndarray]:
    """Means and variances ignoring the clustering (half of each variance at each level it varies at)."""
    observed = stats.pattern_observed.astype(bool)
    counts = stats.pattern_counts.astype(float)
    seen = counts @ observed
    between_only = np.setdiff1d(np.arange(observed.shape[1]), stats.within_index)
    clusters = stats.cluster_observed[:, between_only].astype(bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (counts[:, None] * stats.pattern_means * observed).sum(axis=0) / seen
        scatter = np.einsum("kjj->j", stats.pattern_scatter)
        spread = (counts[:, None] * observed * (stats.pattern_means - mean) ** 2).sum(axis=0)
        variance = (scatter + spread) / seen
    values = stats.cluster_values[:, between_only]
    mean[between_only] = (values * clusters).sum(axis=0) / clusters.sum(axis=0)
    variance[between_only] = ((values - mean[between_only]) ** 2 * clusters).sum(axis=0) / clusters.sum(
        axis=0
    )
    return mean, variance


def _log_factor(variance: np.ndarray) -> np.ndarray:
    """Free elements of a diagonal Cholesky factor with these variances (lower triangle, row by row)."""
    rows, cols = np.tril_indices(variance.size)
    return np.where(rows == cols, 0.5 * np.log(variance[rows]), 0.0)


def two_level_missing_h1(
    stats: MissingTwoLevelStats, *, gtol: float = 1e-7, accept: float = 1e-3
) -> MissingTwoLevelH1:
    """The two-level saturated model's ML estimates and log-likelihood, from incomplete data's statistics.

    Parameters
    ----------
    stats
        Statistics of the incomplete two-level data
        (:func:`pymlsem.data.missing_stats.two_level_missing_stats`).
    gtol
        Largest gradient element (of the log-likelihood, per unconstrained parameter) at convergence.
    accept
        Largest gradient element accepted when the quasi-Newton steps stop before ``gtol`` (rounding).

    Raises
    ------
    PymlsemError
        When a variable has no observed value or the maximisation does not converge.
    """
    if not stats.pattern_observed.astype(bool)[:, stats.within_index].any(axis=0).all():
        raise PymlsemError("a variable has no observed value: the saturated model is undefined")
    mean, variance = _starting_point(stats)
    if not np.all(np.isfinite(variance) & (variance > 0)):
        raise PymlsemError("a variable has no observed variation: the saturated model is undefined")
    within = np.asarray(stats.within_index, dtype=np.int64)
    between = np.asarray(stats.between_index, dtype=np.int64)
    between_only = np.setdiff1d(between, within)
    within_share = np.where(np.isin(within, between), 0.5, 1.0)
    between_share = np.where(np.isin(between, between_only), 1.0, 0.5)
    start = np.concatenate(
        [mean, _log_factor(within_share * variance[within]), _log_factor(between_share * variance[between])]
    )
    statistics = (np.ascontiguousarray(getattr(stats, name), dtype=float) for name in TWO_LEVEL_ARRAYS)
    arrays = [within, between, *statistics]

    def negative_loglik(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient, *_ = objective(theta, *arrays)
        return float(value), gradient

    result = minimize(
        negative_loglik, start, jac=True, method="BFGS", options={"gtol": gtol, "maxiter": 10_000}
    )
    # BFGS may stop short of gtol from rounding in a log-likelihood of thousands (its line search then
    # fails); a gradient below ``accept`` leaves the log-likelihood within ~1e-8 of its maximum
    if not result.success and np.abs(result.jac).max() > accept:
        raise PymlsemError(f"the two-level saturated model did not converge: {result.message}")
    loglik, _, sigma_w, sigma_b = objective(result.x, *arrays)
    p = mean.size
    within_only = np.setdiff1d(within, between)
    mu_b = result.x[:p].copy()
    mu_w = np.zeros(p)
    mu_w[within_only], mu_b[within_only] = mu_b[within_only], 0.0
    return MissingTwoLevelH1(
        mu_w, np.asarray(sigma_w), mu_b, np.asarray(sigma_b), -float(loglik), int(result.nit)
    )
