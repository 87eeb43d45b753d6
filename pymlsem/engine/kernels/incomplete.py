"""The full-information densities of incomplete data over posterior draws, for the post-fit checks.

What :mod:`pymlsem.workflow.incomplete` reports for the PPP, LOO and information criteria of a SEM fitted to
data with missing values: under each draw's implied moments, each missingness pattern's log-likelihood (one
level; with one row per pattern, each row's) or each cluster's (two levels), with the terms and the
positive-definiteness rules of :mod:`pymlsem.build.missing`. The terms are those the families ``sem1_fiml``
and ``sem2_fiml`` sample with (:mod:`pymlsem.engine.kernels.sem1_fiml`,
:mod:`pymlsem.engine.kernels.sem2_fiml`), read without their gradients. Compiled once per machine (numba's
disk cache; ``python -m pymlsem warmup`` does it: ~15 s, where the same densities as PyTensor graphs
compiled for ~100 s) and tested against the PyTensor expressions (tests/workflow/test_missing_marginal.py).
"""

from __future__ import annotations

import numba
import numpy as np

from pymlsem.engine.kernels import internal
from pymlsem.engine.kernels.parts import cholesky_inverse, factored_normal_terms, placed, taken
from pymlsem.engine.kernels.sem2_fiml import cluster_term, cluster_work

__all__ = ["pattern_loglik_draws", "two_level_loglik_draws"]


@internal
def _patterns(sigma, mu, observed, counts, means, scatter):
    """Each pattern's log-likelihood (``-inf`` where its block of ``sigma`` is not positive definite) and
    its precision ``P_k`` (zero outside the pattern's variables)."""
    p = mu.size
    values = np.empty(counts.size)
    precision = np.zeros((counts.size, p, p))
    for k in range(counts.size):
        where = np.flatnonzero(observed[k] > 0.5)
        ok, logdet, inv = cholesky_inverse(taken(sigma, where))
        if not ok:
            values[k] = -np.inf
            continue
        values[k] = factored_normal_terms(
            inv, logdet, means[k][where], mu[where], taken(scatter[k], where), counts[k]
        )[0]
        precision[k] = placed(inv, where, p)
    return values, precision


@numba.njit(cache=True)
def pattern_loglik_draws(mu, sigma, observed, counts, means, scatter):
    """Each missingness pattern's log-likelihood under each draw (one level).

    Parameters
    ----------
    mu, sigma
        Implied means (S, p) and covariances (S, p, p).
    observed, counts, means, scatter
        The patterns' statistics (:class:`pymlsem.data.missing_stats.MissingSingleLevelStats`).

    Returns
    -------
    numpy.ndarray
        Shape (S, K); a draw's row is ``-inf`` where its covariance is not positive definite, an entry
        where the pattern's block is not. The rows' sum is the log-likelihood of all the data.
    """
    out = np.empty((mu.shape[0], counts.size))
    for s in range(mu.shape[0]):
        if not cholesky_inverse(sigma[s])[0]:
            out[s] = -np.inf
            continue
        out[s] = _patterns(sigma[s], mu[s], observed, counts, means, scatter)[0]
    return out


@numba.njit(cache=True)
def two_level_loglik_draws(
    mu_w, sigma_w, mu_b, sigma_b, within, between, observed, counts, means, scatter,
    cluster_counts, cluster_sums, cluster_observed, cluster_values, per_cluster,
):  # fmt: skip
    """The log-likelihood of two-level incomplete data under each draw: in total, or each cluster's.

    Parameters
    ----------
    mu_w, sigma_w, mu_b, sigma_b
        Each level's implied means (S, p) and covariances (S, p, p).
    within, between
        The variables of each level (int64 positions).
    observed, counts, means, scatter, cluster_counts, cluster_sums, cluster_observed, cluster_values
        The statistics (:class:`pymlsem.data.missing_stats.MissingTwoLevelStats`).
    per_cluster
        Each cluster's log-likelihood, for statistics whose patterns are by cluster (each pattern's within
        term belongs to the cluster its rows are in); else the total.

    Returns
    -------
    numpy.ndarray
        Shape (S, J) per cluster, (S, 1) in total. ``-inf`` for a draw whose within covariance or a pattern's
        block of it is not positive definite, and for a cluster whose ``G`` or ``C`` is not.
    """
    n_draws, p = mu_w.shape
    n_clusters, n_patterns = cluster_counts.shape
    out = np.zeros((n_draws, n_clusters if per_cluster else 1))
    is_within = np.zeros(p, dtype=np.bool_)
    is_within[within] = True
    clusters = (cluster_counts, cluster_sums, cluster_observed, cluster_values)
    owner = np.zeros(n_patterns, dtype=np.int64)  # the cluster whose rows each pattern holds (by cluster)
    for j in range(n_clusters):
        for k in range(n_patterns):
            if cluster_counts[j, k] > 0.0:
                owner[k] = j
    for s in range(n_draws):
        mu = mu_w[s] + mu_b[s]
        values, precision = _patterns(sigma_w[s], mu, observed, counts, means, scatter)
        if not cholesky_inverse(taken(sigma_w[s], within))[0] or not np.all(np.isfinite(values)):
            out[s] = -np.inf
            continue
        # the gradients the terms also compute are not read
        g_precision, g_b, g_mu = np.zeros((n_patterns, p, p)), np.zeros((p, p)), np.zeros(p)
        work = cluster_work(p)
        for j in range(n_clusters):
            term = cluster_term(
                j, sigma_b[s], mu, precision, g_precision, g_b, g_mu, between, is_within, clusters, work
            )
            out[s, j if per_cluster else 0] += term
        for k in range(n_patterns):
            out[s, owner[k] if per_cluster else 0] += values[k]
    return out
