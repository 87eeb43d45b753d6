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
from pymlsem.engine.kernels.linalg import dot, matmul, matvec, outer
from pymlsem.engine.kernels.parts import (
    COMMON_SEGMENTS,
    LOG_2PI,
    cholesky_inverse,
    expanded_values,
    factored_normal_terms,
    level_moments,
    level_segments,
    placed,
    posterior,
    prior_and_rows,
    segment,
    taken,
)

__all__ = ["SEGMENTS", "cluster_term", "expand", "likelihood", "logp_grad"]

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
def cluster_term(j, sigma_b, mu, precision, g_precision, g_b, g_mu, between, is_within, data, work):
    """Cluster j's log-likelihood term; adds its gradient to ``g_precision`` (by pattern), ``g_b`` and
    ``g_mu``. Returns ``-inf`` where ``G`` or ``C`` is not positive definite. ``work``: buffers reused
    from cluster to cluster (``gram`` (p, p), ``r`` (p,), ``indices`` (p,)), which this overwrites."""
    cluster_counts, cluster_sums, cluster_observed, cluster_values = data
    gram, r, indices = work
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
    both = indices[: nc + nz]
    seen = both[:nc]
    only = both[nc:]
    ok, logdet_g, h = cholesky_inverse(taken(gram, seen))
    if not ok:
        return -np.inf
    v = r[seen]
    b_hat = matvec(h, v)
    c = taken(sigma_b, both)
    c[:nc, :nc] += h
    ok, logdet_c, inv_c = cholesky_inverse(c)
    if not ok:
        return -np.inf
    w = np.concatenate((b_hat, cluster_values[j][only] - mu[only]))
    a = matvec(inv_c, w)
    quadratic = dot(w, a) - dot(v, b_hat)
    value = -0.5 * (only.size * LOG_2PI + logdet_g + logdet_c + quadratic)
    # the reverse pass of -1/2 (-2 log L_j)
    gamma = outer(a, a)
    for i in range(a.size):
        for t in range(a.size):
            gamma[i, t] = inv_c[i, t] - gamma[i, t]
    _add_block(g_b, both, gamma, -0.5)
    for i in range(only.size):
        g_mu[only[i]] += a[nc + i]
    a_c = a[:nc]
    phi = np.empty((nc, nc))
    for i in range(nc):
        for t in range(nc):
            phi[i, t] = gamma[i, t] - v[i] * v[t] + a_c[i] * v[t] + v[i] * a_c[t]
    h_phi_h = matmul(matmul(h, phi), h)
    for i in range(nc):
        for t in range(nc):
            h_phi_h[i, t] = h[i, t] - h_phi_h[i, t]
    # d/dv = 2 H (a_c - v) on c (0 elsewhere), through v = (sum_k P_k (T_jk - n_jk mu))[c]
    d_v = matvec(h, a_c - v)
    for i in range(nc):
        d_v[i] *= 2.0
    for i in range(p):
        total = 0.0
        for b in range(nc):
            total += gram[i, seen[b]] * d_v[b]
        g_mu[i] += 0.5 * total
    # d/dP_k = n_jk d/dG (on c x c) + the symmetrised outer product of d/dv and T_jk - n_jk mu
    for k in range(precision.shape[0]):
        n = cluster_counts[j, k]
        if n > 0.0:
            for a_i in range(nc):
                for b in range(nc):
                    g_precision[k, seen[a_i], seen[b]] -= 0.5 * n * h_phi_h[a_i, b]
            for a_i in range(nc):
                i = seen[a_i]
                for t in range(p):
                    term = 0.25 * d_v[a_i] * (cluster_sums[j, k, t] - n * mu[t])
                    g_precision[k, i, t] -= term
                    g_precision[k, t, i] -= term
    return value


@internal
def likelihood(sigma_w, sigma_b, mu, within, between, patterns, clusters):
    """The log-likelihood with dL/dSigma_w, dL/dSigma_b and dL/dmu (``-inf`` if not PD)."""
    observed, counts, means, scatter = patterns
    p = mu.size
    g_w = np.zeros((p, p))
    g_b = np.zeros((p, p))
    g_mu = np.zeros(p)
    if not cholesky_inverse(taken(sigma_w, within))[0]:
        return -np.inf, g_w, g_b, g_mu
    n_patterns = counts.size
    precision = np.zeros((n_patterns, p, p))
    logp = 0.0
    # every row against its pattern's block of Sigma_W
    for k in range(n_patterns):
        where = np.flatnonzero(observed[k] > 0.5)
        ok, logdet, inv = cholesky_inverse(taken(sigma_w, where))
        if not ok:
            return -np.inf, g_w, g_b, g_mu
        term, g_block, g_mean = factored_normal_terms(
            inv, logdet, means[k][where], mu[where], taken(scatter[k], where), counts[k]
        )
        logp += term
        _add_block(g_w, where, g_block, 1.0)
        g_mu[where] += g_mean
        precision[k] = placed(inv, where, p)
    # each cluster's between part, through P_k
    is_within = np.zeros(p, dtype=np.bool_)
    is_within[within] = True
    g_precision = np.zeros((n_patterns, p, p))
    work = (np.empty((p, p)), np.empty(p), np.empty(p, dtype=np.int64))
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
