"""The two-level SEM family with missing values (``sem2_fiml``, default priors) as a numba kernel.

As :mod:`pymlsem.engine.kernels.sem2`, with the exact likelihood of incomplete two-level data
(:func:`pymlsem.build.missing.two_level_missing_loglik`, derived in :mod:`pymlsem.build.missing`): each
missingness pattern's rows against its block ``Sigma_kk`` of the within covariance (precision ``P_k``), then
per cluster j, over the between-varying variables it observes (``c``: also within-varying; ``z``:
between-only)::

    -2 log L_j = |z| log 2pi + log|G| + log|C| - v' G^-1 v + w' C^-1 w,
    G = (sum_k n_jk P_k)[c, c],  v = (sum_k P_k (T_jk - n_jk mu))[c],
    C = Sigma_B[c + z, c + z] + blockdiag(G^-1, 0),  w = (G^-1 v, z_j - mu_z),

which equals the graph's ``log|M_j| - u'u + t' M_j^-1 t`` (``|M_j| = |G| |C|``, ``u'u = v' G^-1 v``,
``t' M^-1 t = w' C^-1 w``); ``-inf`` where ``Sigma_W``, a pattern's block, ``G`` or ``C`` is not positive
definite. With ``R = C^-1``, ``a = R w``, ``H = G^-1``, ``Gamma = R - a a'`` and
``Phi = Gamma_cc - v v' + a_c v' + v a_c'``, the reverse pass is ``d/dSigma_B[c+z] = Gamma``,
``d/dG = H - H Phi H``, ``d/dv = 2 H (a_c - v)``, ``d/dmu_z = -2 a_z``, then through ``G`` and ``v`` to each
``P_k`` and ``mu``, and ``d/dSigma_kk = -P_k (d/dP_k) P_k``. Tested against the family graph
(tests/engine/test_kernels.py) and every such model's own PyMC graph (tests/engine/test_engine.py).
"""

from __future__ import annotations

import numpy as np

from pymlsem.engine.kernels import internal
from pymlsem.engine.kernels.linalg import matmul, quadratic_form
from pymlsem.engine.kernels.parts import (
    COMMON_SEGMENTS,
    LOG_2PI,
    cholesky_inverse,
    cholesky_inverse_at,
    expanded_values,
    level_moments,
    level_segments,
    pattern_terms,
    posterior,
    prior_and_rows,
    segment,
    taken,
)

__all__ = ["SEGMENTS", "cluster_term", "cluster_work", "expand", "likelihood", "logp_grad"]

#: the packed integer arrays of the ``sem2_fiml`` family, in order (:func:`pymlsem.engine.sem.segments`)
SEGMENTS = (*COMMON_SEGMENTS, *level_segments(2), "within_index", "between_index")
_WITHIN_INDEX, _BETWEEN_INDEX = SEGMENTS.index("within_index"), SEGMENTS.index("between_index")


@internal
def _add_block(full, where, block, factor):
    """``full[where, where] += factor * block``."""
    for i in range(where.size):
        for j in range(where.size):
            full[where[i], where[j]] += factor * block[i, j]


@internal
def cluster_work(p):
    """The buffers :func:`cluster_term` reuses from cluster to cluster, for p variables."""
    return (np.empty((p, p)), np.empty(p), np.empty(p, dtype=np.int64), np.arange(p), np.empty((6, p, p)),
            np.empty((5, p)))  # fmt: skip


@internal
def cluster_term(j, sigma_b, mu, precision, g_precision, g_b, g_mu, between, is_within, data, work):
    """Cluster j's log-likelihood term; adds its gradient to ``g_precision`` (by pattern), ``g_b`` and
    ``g_mu``. Returns ``-inf`` where ``G`` or ``C`` is not positive definite. ``work``: the buffers of
    :func:`cluster_work`, which this overwrites."""
    cluster_counts, cluster_sums, cluster_observed, cluster_values = data
    gram, r, indices, every, matrices, vectors = work
    chol, d_g, h = matrices[0], matrices[1], matrices[2]  # a factor (then H Phi), d/dG, H = G^-1
    c, inv_c, phi = matrices[3], matrices[4], matrices[5]  # C (then Gamma), C^-1, Phi
    v, b_hat, w, a, d_v = vectors[0], vectors[1], vectors[2], vectors[3], vectors[4]
    p = mu.size
    gram[:] = 0.0
    r[:] = 0.0
    for k in range(precision.shape[0]):
        n = cluster_counts[j, k]
        if n > 0.0:
            for i in range(p):
                total = 0.0
                for t in range(p):
                    gram[i, t] += n * precision[k, i, t]
                    total += precision[k, i, t] * (cluster_sums[j, k, t] - n * mu[t])
                r[i] += total
    # the between-varying variables the cluster observes: c (also within-varying: observed in some row),
    # then z (its between-only values)
    nc = 0
    for b in between:
        if cluster_observed[j, b] > 0.5 and is_within[b]:
            indices[nc] = b
            nc += 1
    nz = 0
    for b in between:
        if cluster_observed[j, b] > 0.5 and not is_within[b]:
            indices[nc + nz] = b
            nz += 1
    m = nc + nz
    ok, logdet_g = cholesky_inverse_at(gram, indices, nc, chol, h)  # H = G^-1
    if not ok:
        return -np.inf
    for i in range(nc):
        v[i] = r[indices[i]]
    for i in range(nc):
        total = 0.0
        for t in range(nc):
            total += h[i, t] * v[t]
        b_hat[i] = total
    for i in range(m):
        for t in range(m):
            c[i, t] = sigma_b[indices[i], indices[t]]
    for i in range(nc):
        for t in range(nc):
            c[i, t] += h[i, t]
    ok, logdet_c = cholesky_inverse_at(c, every, m, chol, inv_c)
    if not ok:
        return -np.inf
    for i in range(nc):
        w[i] = b_hat[i]
    for i in range(nc, m):
        w[i] = cluster_values[j, indices[i]] - mu[indices[i]]
    quadratic = quadratic_form(inv_c, w, m, a)
    for i in range(nc):
        quadratic -= v[i] * b_hat[i]
    value = -0.5 * (nz * LOG_2PI + logdet_g + logdet_c + quadratic)
    # the reverse pass of -1/2 (-2 log L_j); Gamma = R - a a' (in c)
    for i in range(m):
        for t in range(m):
            c[i, t] = inv_c[i, t] - a[i] * a[t]
            g_b[indices[i], indices[t]] -= 0.5 * c[i, t]
    for i in range(nc, m):
        g_mu[indices[i]] += a[i]
    for i in range(nc):
        for t in range(nc):
            phi[i, t] = c[i, t] - v[i] * v[t] + a[i] * v[t] + v[i] * a[t]
    for i in range(nc):  # H Phi (in chol), then d/dG = H - H Phi H
        for t in range(nc):
            total = 0.0
            for s in range(nc):
                total += h[i, s] * phi[s, t]
            chol[i, t] = total
    for i in range(nc):
        for t in range(nc):
            total = 0.0
            for s in range(nc):
                total += chol[i, s] * h[s, t]
            d_g[i, t] = h[i, t] - total
    # d/dv = 2 H (a_c - v) on c (0 elsewhere), through v = (sum_k P_k (T_jk - n_jk mu))[c]
    for i in range(nc):
        total = 0.0
        for t in range(nc):
            total += h[i, t] * (a[t] - v[t])
        d_v[i] = 2.0 * total
    for i in range(p):
        total = 0.0
        for b in range(nc):
            total += gram[i, indices[b]] * d_v[b]
        g_mu[i] += 0.5 * total
    # d/dP_k = n_jk d/dG (on c x c) + the symmetrised outer product of d/dv and T_jk - n_jk mu
    for k in range(precision.shape[0]):
        n = cluster_counts[j, k]
        if n > 0.0:
            for a_i in range(nc):
                for b in range(nc):
                    g_precision[k, indices[a_i], indices[b]] -= 0.5 * n * d_g[a_i, b]
            for a_i in range(nc):
                i = indices[a_i]
                for t in range(p):
                    term = 0.25 * d_v[a_i] * (cluster_sums[j, k, t] - n * mu[t])
                    g_precision[k, i, t] -= term
                    g_precision[k, t, i] -= term
    return value


@internal
def likelihood(sigma_w, sigma_b, mu, within, between, patterns, clusters):
    """The log-likelihood with dL/dSigma_w, dL/dSigma_b and dL/dmu (``-inf`` if not PD)."""
    counts = patterns[1]
    p = mu.size
    g_w = np.zeros((p, p))
    g_b = np.zeros((p, p))
    g_mu = np.zeros(p)
    if not cholesky_inverse(taken(sigma_w, within))[0]:
        return -np.inf, g_w, g_b, g_mu
    n_patterns = counts.size
    # every row against its pattern's block of Sigma_W (precision P_k)
    precision = np.zeros((n_patterns, p, p))
    logp = pattern_terms(sigma_w, mu, patterns, g_w, g_mu, precision)
    if not np.isfinite(logp):
        return -np.inf, g_w, g_b, g_mu
    # each cluster's between part, through P_k
    is_within = np.zeros(p, dtype=np.bool_)
    is_within[within] = True
    g_precision = np.zeros((n_patterns, p, p))
    work = cluster_work(p)
    for j in range(clusters[0].shape[0]):
        term = cluster_term(
            j, sigma_b, mu, precision, g_precision, g_b, g_mu, between, is_within, clusters, work
        )
        if not np.isfinite(term):
            return -np.inf, g_w, g_b, g_mu
        logp += term
    for k in range(n_patterns):  # P_k = Sigma_kk^-1
        _add_block(g_w, np.arange(p), matmul(matmul(precision[k], g_precision[k]), precision[k]), -1.0)
    return logp, g_w, g_b, g_mu


@internal
def logp_grad(
    x, hyper, ints, offsets, row_fixed, n_values, observed, counts, means, scatter,
    cluster_counts, cluster_sums, cluster_observed, cluster_values,
):  # fmt: skip
    """Log-density of the ``sem2_fiml`` family at the unconstrained point ``x`` and its gradient.

    The arguments are the family's inputs in order (:func:`pymlsem.engine.sem.family_inputs`).
    """
    log_prior, rows, state = prior_and_rows(x, hyper, ints, offsets, row_fixed)
    p = means.shape[1]
    sigma_w, mu_w, ram_w = level_moments(rows, ints, offsets, np.int64(0), p)
    sigma_b, mu_b, ram_b = level_moments(rows, ints, offsets, np.int64(1), p)
    loglik, g_w, g_b, g_mu = likelihood(
        sigma_w,
        sigma_b,
        mu_w + mu_b,
        segment(ints, offsets, _WITHIN_INDEX),
        segment(ints, offsets, _BETWEEN_INDEX),
        (observed, counts, means, scatter),
        (cluster_counts, cluster_sums, cluster_observed, cluster_values),
    )
    levels = ((g_w, g_mu, ram_w), (g_b, g_mu, ram_b))
    return posterior(log_prior, loglik, state, rows.size, ints, offsets, levels)


@internal
def expand(
    x, hyper, ints, offsets, row_fixed, n_values, observed, counts, means, scatter,
    cluster_counts, cluster_sums, cluster_observed, cluster_values,
):  # fmt: skip
    """The expanded values at ``x``: the K constrained values, then every table row on lavaan's scale."""
    return expanded_values(x, hyper, ints, offsets, row_fixed)
