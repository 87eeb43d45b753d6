"""The two-level saturated model of incomplete data through the ``sem2_fiml`` kernel's likelihood.

The saturated (h1) model of two-level data has free means and unrestricted within and between covariances.
Its maximum (:func:`pymlsem.workflow.saturated_missing.two_level_missing_h1`) is found by quasi-Newton
steps on :func:`objective`: the point ``theta`` holds the ``p`` means, then the lower triangles of the
within and between Cholesky factors (row by row, diagonals on the log scale), and the log-likelihood with
its gradient in the covariances is :func:`pymlsem.engine.kernels.sem2_fiml.likelihood`, the density of
:func:`pymlsem.build.missing.two_level_missing_loglik` (tested against it in tests/engine/test_kernels.py).
For ``Sigma = L L'`` with ``G = dlogL/dSigma`` symmetric, ``dlogL/dL = 2 G L`` on the lower triangle.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pymlsem.engine.kernels import internal
from pymlsem.engine.kernels.parts import placed, taken
from pymlsem.engine.kernels.sem2_fiml import likelihood

__all__ = ["compile_objective", "objective"]


@internal
def _factor(free, n):
    """The lower-triangular factor whose lower triangle (row by row) is ``free``, diagonal ``exp``."""
    chol = np.zeros((n, n))
    k = 0
    for i in range(n):
        for j in range(i + 1):
            chol[i, j] = math.exp(free[k]) if i == j else free[k]
            k += 1
    return chol


@internal
def _factor_gradient(g_sigma, chol):
    """The gradient in the free elements of :func:`_factor` from ``g_sigma`` = dlogL/dSigma (symmetric)."""
    n = chol.shape[0]
    g_chol = 2.0 * (g_sigma @ chol)
    out = np.empty(n * (n + 1) // 2)
    k = 0
    for i in range(n):
        for j in range(i + 1):
            out[k] = g_chol[i, j] * chol[i, j] if i == j else g_chol[i, j]
            k += 1
    return out


@numba.njit(cache=True)
def objective(
    theta, within, between, observed, counts, means, scatter,
    cluster_counts, cluster_sums, cluster_observed, cluster_values,
):  # fmt: skip
    """``(-logL, -gradient, Sigma_W, Sigma_B)`` of the saturated model at ``theta``.

    The statistics are those of :func:`pymlsem.data.missing_stats.two_level_missing_stats`
    (``pattern_observed``, ``pattern_counts``, ``pattern_means``, ``pattern_scatter``,
    ``cluster_pattern_counts``, ``cluster_pattern_sums``, ``cluster_observed``, ``cluster_values``);
    ``within`` and ``between`` index the variables of each level. Where a covariance is not positive
    definite the value is ``inf`` with a zero gradient.
    """
    p = observed.shape[1]
    n_w, n_b = within.size, between.size
    cut = p + n_w * (n_w + 1) // 2
    chol_w = _factor(theta[p:cut], n_w)
    chol_b = _factor(theta[cut:], n_b)
    sigma_w = placed(chol_w @ chol_w.T, within, p)
    sigma_b = placed(chol_b @ chol_b.T, between, p)
    mu = np.ascontiguousarray(theta[:p])
    loglik, g_w, g_b, g_mu = likelihood(
        sigma_w,
        sigma_b,
        mu,
        within,
        between,
        (observed, counts, means, scatter),
        (cluster_counts, cluster_sums, cluster_observed, cluster_values),
    )
    gradient = np.zeros(theta.size)
    if not np.isfinite(loglik):
        return np.inf, gradient, sigma_w, sigma_b
    gradient[:p] = g_mu
    gradient[p:cut] = _factor_gradient(taken(g_w, within), chol_w)
    gradient[cut:] = _factor_gradient(taken(g_b, between), chol_b)
    return -loglik, -gradient, sigma_w, sigma_b


def compile_objective() -> None:
    """Compile (or load from numba's disk cache) :func:`objective`, with the argument types of every call:
    one call on a tiny example (two variables at both levels, one missingness pattern, one cluster)."""
    index = np.arange(2, dtype=np.int64)
    ones, eye = np.ones((1, 2)), np.eye(2)[None]
    theta = np.zeros(2 + 3 + 3)
    objective(theta, index, index, ones, np.ones(1), ones, eye, np.ones((1, 1)), ones[None], ones, ones)
