"""The pointwise densities of a SEM's post-fit checks (per row, per cluster) over posterior draws.

What :mod:`pymlsem.workflow.pointwise` reports for LOO: each row's normal log-density under each draw's
implied moments (single level), and each cluster's exact log-density (two levels, the per-cluster terms of
:func:`pymlsem.build.loglik.two_level_cluster_loglik`, which sum to the family's likelihood). Each draw's
covariances are factored once (:func:`pymlsem.engine.kernels.parts.cholesky_inverse`), then every row or
cluster reads them; ``-inf`` where a covariance is not positive definite. Compiled once per machine
(numba's disk cache; ``python -m pymlsem warmup`` does it) and tested against the PyTensor expressions
(tests/workflow/test_workflow.py).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pymlsem.engine.kernels.parts import cholesky_inverse, gaussian, taken

__all__ = ["cluster_loglik_draws", "row_loglik_draws"]


@numba.njit(cache=True)
def row_loglik_draws(mu, sigma, y):
    """Each row's log-density under each draw.

    Parameters
    ----------
    mu, sigma
        Implied means (S, p) and covariances (S, p, p), float64.
    y
        The rows (N, p), float64.

    Returns
    -------
    numpy.ndarray
        Shape (S, N).
    """
    n_draws, p = mu.shape
    out = np.empty((n_draws, y.shape[0]))
    for s in range(n_draws):
        ok, logdet, inv = cholesky_inverse(sigma[s])
        if not ok:
            out[s] = -np.inf
            continue
        for i in range(y.shape[0]):
            d = y[i] - mu[s]
            out[s, i] = gaussian(1.0, p, logdet, d @ inv @ d)
    return out


@numba.njit(cache=True)
def cluster_loglik_draws(
    mu_w, sigma_w, mu_b, sigma_b, within_index, cluster_group, cluster_sizes, cluster_means,
    cluster_within_scatter, group_sizes,
):  # fmt: skip
    """Each cluster's log-density under each draw.

    Parameters
    ----------
    mu_w, sigma_w, mu_b, sigma_b
        Each level's implied moments among all p variables, (S, p) and (S, p, p), float64.
    within_index
        Positions of the within-varying variables, int64.
    cluster_group
        Each cluster's position among the distinct cluster sizes ``group_sizes``, int64.
    cluster_sizes, cluster_means, cluster_within_scatter
        Each cluster's rows, mean (J, p) and scatter of its within-varying variables around it
        (J, p_w, p_w).

    Returns
    -------
    numpy.ndarray
        Shape (S, J).
    """
    n_draws, p = mu_w.shape
    n_within = within_index.size
    n_clusters = cluster_sizes.size
    out = np.empty((n_draws, n_clusters))
    logdets = np.empty(group_sizes.size)
    invs = np.empty((group_sizes.size, p, p))
    for s in range(n_draws):
        ok, logdet_w, inv_w = cholesky_inverse(taken(sigma_w[s], within_index))
        for g in range(group_sizes.size):
            if ok:
                ok, logdets[g], invs[g] = cholesky_inverse(sigma_b[s] + sigma_w[s] / group_sizes[g])
        if not ok:
            out[s] = -np.inf
            continue
        mu = mu_w[s] + mu_b[s]
        for j in range(n_clusters):
            n, g = cluster_sizes[j], cluster_group[j]
            within = gaussian(n - 1.0, n_within, logdet_w, np.sum(inv_w * cluster_within_scatter[j]))
            d = cluster_means[j] - mu
            between = gaussian(1.0, p, logdets[g], d @ invs[g] @ d) - 0.5 * n_within * math.log(n)
            out[s, j] = within + between
    return out
