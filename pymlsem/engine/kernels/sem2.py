"""The two-level SEM family (``sem2``, default priors) as one hand-written numba kernel.

The family's PyTensor graph (:func:`pymlsem.engine.sem.family_graph`) compiles to ~930 numba functions, ~100 s
on a fresh 2-core machine (docs/design-decisions.md). The same log-density and its gradient, written here
by hand over the same inputs (the arrays of :func:`pymlsem.engine.sem.bind`), compile to one function in
~10 s, and a gradient costs about a third. The graph stays the specification: the compiled family is tested
against every model's own PyMC graph (tests/engine/test_engine.py), whichever of the two it was compiled from,
and against the family graph (tests/engine/test_kernels.py).

After the priors and the table's rows (:mod:`pymlsem.engine.kernels.parts`), each level's implied moments,
then the two-level normal log-likelihood by cluster size (:func:`pymlsem.build.loglik.two_level_loglik`),
``-inf`` where a covariance is not positive definite; each step's gradient is taken back in reverse.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pymlsem.engine.kernels import internal
from pymlsem.engine.kernels.parts import (
    COMMON_SEGMENTS,
    cholesky_inverse_at,
    expanded_values,
    level_moments,
    level_segments,
    normal_terms,
    normal_terms_at,
    posterior,
    prior_and_rows,
    segment,
    taken,
)

__all__ = ["SEGMENTS", "expand", "loglik_draws", "logp_grad"]

#: the packed integer arrays of the ``sem2`` family, in order (:func:`pymlsem.engine.sem.segments`)
SEGMENTS = (*COMMON_SEGMENTS, *level_segments(2), "within_index")
_WITHIN_INDEX = SEGMENTS.index("within_index")


@internal
def _two_level_terms(sigma_w, sigma_b, mu, within_index, within_scatter, sizes, counts, means, group_scatter):
    """The two-level log-likelihood from the implied moments (placed among all p variables) with
    dL/dSigma_w, dL/dSigma_b and dL/dmu; ``-inf`` where a covariance is not positive definite."""
    p = mu.size
    n_within = within_index.size
    g_w = np.zeros((p, p))
    g_b = np.zeros((p, p))
    g_mu = np.zeros(p)
    # within: the pooled within-cluster scatter, sum_g c_g (n_g - 1) degrees of freedom, mean zero
    dof = np.sum(counts * (sizes - 1.0))
    zeros = np.zeros(n_within)
    logp, g_sub, _ = normal_terms(taken(sigma_w, within_index), zeros, zeros, within_scatter, dof)
    if not np.isfinite(logp):
        return -np.inf, g_w, g_b, g_mu
    for i in range(n_within):
        for j in range(n_within):
            g_w[within_index[i], within_index[j]] += g_sub[i, j]
    # between, per cluster size n: the c cluster means ~ N(mu, Sigma_b + Sigma_w / n), the Jacobian of
    # the within part's change of variables adding -c p_w log(n) / 2 (buffers reused across the sizes)
    every = np.arange(p)
    omega, h = np.empty((p, p)), np.empty((p, p))
    chol, inv = np.empty((p, p)), np.empty((p, p))
    work = (np.empty((p, p)), np.empty(p))
    for g in range(sizes.size):
        for i in range(p):
            for j in range(p):
                omega[i, j] = sigma_b[i, j] + sigma_w[i, j] / sizes[g]
                h[i, j] = 0.0
        ok, logdet = cholesky_inverse_at(omega, every, p, chol, inv)
        if not ok:
            return -np.inf, g_w, g_b, g_mu
        group = (means[g], mu, group_scatter[g], counts[g])
        term = normal_terms_at(inv, logdet, p, every, *group, work, h, g_mu)
        logp += term - 0.5 * counts[g] * n_within * math.log(sizes[g])
        for i in range(p):
            for j in range(p):
                g_b[i, j] += h[i, j]
                g_w[i, j] += h[i, j] / sizes[g]
    return logp, g_w, g_b, g_mu


@numba.njit(cache=True)
def loglik_draws(
    mu_w, sigma_w, mu_b, sigma_b, within_index, sizes, counts, within_scatter, group_means, group_scatter
):  # fmt: skip
    """The two-level log-likelihood of R data sets under S draws of the implied moments (post-fit checks).

    Parameters
    ----------
    mu_w, sigma_w, mu_b, sigma_b
        Each level's implied moments among all p variables, shapes (S, p) and (S, p, p) (zeros where a level
        has no part), C-contiguous float64.
    within_index
        Positions of the within-varying variables, int64.
    sizes, counts
        The distinct cluster sizes and how many clusters have each.
    within_scatter, group_means, group_scatter
        The data sets' statistics, shapes (R, p_w, p_w), (R, G, p), (R, G, p, p); R is 1 or S.

    Returns
    -------
    numpy.ndarray
        Shape (max(S, R),): data set r under draw r (or the one data set under every draw, or every data
        set under the one draw); ``-inf`` where a covariance is not positive definite.
    """
    n_draws, n_data = mu_w.shape[0], within_scatter.shape[0]
    out = np.empty(max(n_draws, n_data))
    for i in range(out.size):
        a = i if n_draws > 1 else 0
        r = i if n_data > 1 else 0
        out[i] = _two_level_terms(
            sigma_w[a],
            sigma_b[a],
            mu_w[a] + mu_b[a],
            within_index,
            within_scatter[r],
            sizes,
            counts,
            group_means[r],
            group_scatter[r],
        )[0]
    return out


@internal
def logp_grad(x, hyper, ints, offsets, row_fixed, within_scatter, sizes, counts, means, group_scatter):
    """Log-density of the ``sem2`` family at the unconstrained point ``x`` and its gradient.

    The arguments are the family's inputs in order (:func:`pymlsem.engine.sem.family_inputs`).
    """
    log_prior, rows, state = prior_and_rows(x, hyper, ints, offsets, row_fixed)
    p = means.shape[1]
    sigma_w, mu_w, ram_w = level_moments(rows, ints, offsets, np.int64(0), p)
    sigma_b, mu_b, ram_b = level_moments(rows, ints, offsets, np.int64(1), p)
    within_index = segment(ints, offsets, _WITHIN_INDEX)
    loglik, g_w, g_b, g_mu = _two_level_terms(
        sigma_w, sigma_b, mu_w + mu_b, within_index, within_scatter, sizes, counts, means, group_scatter
    )
    levels = ((g_w, g_mu, ram_w), (g_b, g_mu, ram_b))
    return posterior(log_prior, loglik, state, rows.size, ints, offsets, levels)


@internal
def expand(x, hyper, ints, offsets, row_fixed, within_scatter, sizes, counts, means, group_scatter):
    """The expanded values at ``x``: the K constrained values, then every table row on lavaan's scale."""
    return expanded_values(x, hyper, ints, offsets, row_fixed)
