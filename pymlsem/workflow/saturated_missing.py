"""The saturated model of incomplete single-level data (lavaan's h1 with ``missing = "ml"``).

With missing values the unrestricted means and covariances have no closed form: they are estimated by EM
(Dempster, Laird & Rubin 1977; the algorithm of lavaan's ``lav_mvnorm_missing_h1_estimate_moments``). The
E-step needs only each missingness pattern's statistics (count, observed means, scatter;
:class:`~pymlsem.data.missing_stats.MissingSingleLevelStats`): a pattern's missing values are replaced by
their regression on its observed ones at the current moments, and their conditional covariance is added.
The saturated log-likelihood is then the model's own full-information density
(:func:`pymlsem.workflow.incomplete.missing_loglik_at`) at the EM estimates, so the chi-square
``2 [log L_h1 - log L(theta)]`` at lavaan's estimates is lavaan's test statistic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pymlsem.data.missing_stats import MissingSingleLevelStats
from pymlsem.exceptions import PymlsemError
from pymlsem.workflow.incomplete import missing_loglik_at

__all__ = ["MissingH1", "missing_h1"]


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
    observed = stats.pattern_observed.astype(bool)
    counts = stats.pattern_counts.astype(float)
    if not observed.any(axis=0).all():
        raise PymlsemError("a variable has no observed value: the saturated model is undefined")
    n = float(counts.sum())
    seen = counts @ observed  # rows observing each variable
    mean = (counts[:, None] * stats.pattern_means * observed).sum(axis=0) / seen
    cov = np.diag(
        np.array([(stats.pattern_scatter[:, j, j]).sum() / seen[j] for j in range(mean.size)]) + 1e-3
    )
    for iteration in range(1, max_iter + 1):
        first, second = np.zeros(mean.size), np.zeros((mean.size, mean.size))
        for k in range(counts.size):
            o, m = observed[k], ~observed[k]
            size, xbar = counts[k], stats.pattern_means[k, o]
            sum_o = size * xbar
            sum_oo = stats.pattern_scatter[k][np.ix_(o, o)] + size * np.outer(xbar, xbar)
            first[o] += sum_o
            second[np.ix_(o, o)] += sum_oo
            if not m.any():
                continue
            slope = np.linalg.solve(cov[np.ix_(o, o)], cov[np.ix_(o, m)]).T  # (m, o): regression of m on o
            intercept = mean[m] - slope @ mean[o]
            sum_m = size * intercept + slope @ sum_o
            sum_mo = np.outer(intercept, sum_o) + slope @ sum_oo
            residual = cov[np.ix_(m, m)] - slope @ cov[np.ix_(o, m)]
            sum_mm = (
                size * np.outer(intercept, intercept)
                + np.outer(intercept, slope @ sum_o)
                + np.outer(slope @ sum_o, intercept)
                + slope @ sum_oo @ slope.T
                + size * residual
            )
            first[m] += sum_m
            second[np.ix_(m, o)] += sum_mo
            second[np.ix_(o, m)] += sum_mo.T
            second[np.ix_(m, m)] += sum_mm
        new_mean = first / n
        new_cov = second / n - np.outer(new_mean, new_mean)
        change = max(np.abs(new_mean - mean).max(), np.abs(new_cov - cov).max())
        mean, cov = new_mean, (new_cov + new_cov.T) / 2
        if change < tol:
            return MissingH1(mean, cov, missing_loglik_at(mean, cov, stats), iteration)
    raise PymlsemError(f"the saturated model's EM did not converge in {max_iter} iterations")
