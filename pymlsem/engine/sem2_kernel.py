"""The two-level SEM family (``sem2``, default priors) as one hand-written numba kernel.

The family's PyTensor graph (:func:`pymlsem.engine.sem.family_graph`) compiles to ~930 numba functions, ~100 s
on a fresh 2-core machine (docs/design-decisions.md). The same log-density and its gradient, written here
by hand over the same inputs (the arrays of :func:`pymlsem.engine.sem.bind`), compile to one function in
~10 s, and a gradient costs about a third. The graph stays the specification: the compiled family is tested
against every model's own PyMC graph (tests/engine/test_engine.py), whichever of the two it was compiled from.

What the kernel computes, in the graph's order (each step's gradient is taken back in reverse):

* the free parameters' values from the unconstrained point, with their priors and the transforms'
  log-Jacobians (normal on the real line; gamma through ``exp``; beta through the logistic function):
  PyMC's ``Normal``, ``Gamma`` and ``Beta`` log-densities (:mod:`pymlsem.engine.priors`);
* every parameter-table row on lavaan's scale (:func:`pymlsem.engine.sem.row_values`: SD squared,
  precision inverted, correlation ``2u - 1``; fixed rows; covariances from correlations times SDs);
* per level the RAM matrices and implied moments of the level's observed variables
  (:mod:`pymlsem.build.ram`);
* the two-level normal log-likelihood by cluster size (:func:`pymlsem.build.loglik.two_level_loglik`),
  ``-inf`` where a covariance is not positive definite.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["SEGMENTS", "expand", "loglik_draws", "logp_grad"]

#: the packed integer arrays of the ``sem2`` family, in order (:func:`pymlsem.engine.sem.segments`)
SEGMENTS = (
    "prior_normal",
    "prior_gamma",
    "prior_beta",
    "scale",
    "row_param",
    "cov_rows",
    "cov_var_a",
    "cov_var_b",
    *(
        f"l{level}_{name}"
        for level in (1, 2)
        for name in ("nvars", "a_rows", "a_index", "s_rows", "s_index", "m_rows", "m_index", "where")
    ),
    "within_index",
)
_NORMAL, _GAMMA, _BETA, _SCALE, _ROW_PARAM, _COV_ROWS, _COV_A, _COV_B = range(8)
_LEVEL_START = (8, 16)  # first segment of each level
_WITHIN_INDEX = 24
#: lavaan-scale codes (:data:`pymlsem.build.parameters.SCALE_CODES`)
_SD, _PREC, _RHO = 1, 3, 4
_LOG_2PI = math.log(2.0 * math.pi)
_HALF_LOG_2PI = 0.5 * _LOG_2PI


@numba.njit(cache=False)
def _segment(ints, offsets, i):
    return ints[offsets[i] : offsets[i + 1]]


@numba.njit(cache=False)
def _log_sigmoid(x):
    """``log(1 / (1 + exp(-x)))`` without overflow."""
    if x >= 0:
        return -math.log1p(math.exp(-x))
    return x - math.log1p(math.exp(x))


@numba.njit(cache=False)
def _priors(x, hyper, ints, offsets):
    """Prior log-density (with log-Jacobians), its gradient in x, the values and dvalue/dx."""
    k = x.size
    logp = 0.0
    grad = np.zeros(k)
    values = np.zeros(k)
    slope = np.zeros(k)
    for i in _segment(ints, offsets, _NORMAL):
        mu, sigma = hyper[i, 0], hyper[i, 1]
        z = (x[i] - mu) / sigma
        logp += -0.5 * z * z - math.log(sigma) - _HALF_LOG_2PI
        grad[i] = -z / sigma
        values[i] = x[i]
        slope[i] = 1.0
    for i in _segment(ints, offsets, _GAMMA):
        alpha, beta = hyper[i, 0], hyper[i, 1]
        v = math.exp(x[i])
        # Gamma(alpha, rate beta) at v = exp(x), plus the log-Jacobian x
        logp += alpha * math.log(beta) - math.lgamma(alpha) + (alpha - 1.0) * x[i] - beta * v + x[i]
        grad[i] = alpha - beta * v
        values[i] = v
        slope[i] = v
    for i in _segment(ints, offsets, _BETA):
        alpha, beta = hyper[i, 0], hyper[i, 1]
        log_v, log_w = _log_sigmoid(x[i]), _log_sigmoid(-x[i])  # log u, log(1 - u)
        v = math.exp(log_v)
        betaln = math.lgamma(alpha) + math.lgamma(beta) - math.lgamma(alpha + beta)
        # Beta(alpha, beta) at u = logistic(x), plus the log-Jacobian log u + log(1 - u)
        logp += alpha * log_v + beta * log_w - betaln
        grad[i] = alpha * (1.0 - v) - beta * v
        values[i] = v
        slope[i] = v * (1.0 - v)
    return logp, grad, values, slope


@numba.njit(cache=False)
def _rows(values, ints, offsets, row_fixed):
    """Every table row's value on lavaan's scale; also the rows before covariances are scaled, and
    d(lavaan value)/d(value) of each free parameter."""
    scale = _segment(ints, offsets, _SCALE)
    k = values.size
    lavaan = np.empty(k)
    lavaan_slope = np.empty(k)
    for i in range(k):
        v, code = values[i], scale[i]
        if code == _SD:
            lavaan[i], lavaan_slope[i] = v * v, 2.0 * v
        elif code == _PREC:
            lavaan[i], lavaan_slope[i] = 1.0 / v, -1.0 / (v * v)
        elif code == _RHO:
            lavaan[i], lavaan_slope[i] = 2.0 * v - 1.0, 2.0
        else:
            lavaan[i], lavaan_slope[i] = v, 1.0
    row_param = _segment(ints, offsets, _ROW_PARAM)
    base = np.empty(row_param.size)
    for r in range(row_param.size):
        base[r] = lavaan[row_param[r]] if row_param[r] >= 0 else row_fixed[r]
    rows = base.copy()
    cov_rows = _segment(ints, offsets, _COV_ROWS)
    var_a = _segment(ints, offsets, _COV_A)
    var_b = _segment(ints, offsets, _COV_B)
    for t in range(cov_rows.size):
        rows[cov_rows[t]] = base[cov_rows[t]] * math.sqrt(base[var_a[t]] * base[var_b[t]])
    return lavaan, lavaan_slope, base, rows


@numba.njit(cache=False)
def _level(rows, ints, offsets, level):
    """One level's RAM matrices, ``(I - A)^-1`` and implied moments of its observed variables."""
    first = _LEVEL_START[level]
    k = _segment(ints, offsets, first)[0]
    a = np.zeros(k * k)
    s = np.zeros(k * k)
    m = np.zeros(k)
    a_rows, a_index = _segment(ints, offsets, first + 1), _segment(ints, offsets, first + 2)
    s_rows, s_index = _segment(ints, offsets, first + 3), _segment(ints, offsets, first + 4)
    m_rows, m_index = _segment(ints, offsets, first + 5), _segment(ints, offsets, first + 6)
    for t in range(a_rows.size):
        a[a_index[t]] = rows[a_rows[t]]
    for t in range(s_rows.size):
        s[s_index[t]] = rows[s_rows[t]]
    for t in range(m_rows.size):
        m[m_index[t]] = rows[m_rows[t]]
    total = np.linalg.inv(np.eye(k) - a.reshape(k, k))
    s2 = s.reshape(k, k)
    p = _segment(ints, offsets, first + 7).size
    effect = np.ascontiguousarray(total[:p])
    return total, s2, m, effect, effect @ s2 @ effect.T, effect @ m


@numba.njit(cache=False)
def _level_gradient(grad, g_sigma, g_mu, total, s, m, effect, ints, offsets, level):
    """Add to ``grad`` (by row) what dL/dSigma and dL/dmu of a level's observed variables give."""
    first = _LEVEL_START[level]
    inner = effect.T @ g_sigma @ effect
    d_a = (2.0 * (inner @ s @ total.T) + np.outer(effect.T @ g_mu, total @ m)).ravel()
    d_s = inner.ravel()
    d_m = effect.T @ g_mu
    a_rows, a_index = _segment(ints, offsets, first + 1), _segment(ints, offsets, first + 2)
    s_rows, s_index = _segment(ints, offsets, first + 3), _segment(ints, offsets, first + 4)
    m_rows, m_index = _segment(ints, offsets, first + 5), _segment(ints, offsets, first + 6)
    for t in range(a_rows.size):
        grad[a_rows[t]] += d_a[a_index[t]]
    for t in range(s_rows.size):
        grad[s_rows[t]] += d_s[s_index[t]]
    for t in range(m_rows.size):
        grad[m_rows[t]] += d_m[m_index[t]]


@numba.njit(cache=False)
def _cholesky_inverse(sigma):
    """``(ok, log|Sigma|, Sigma^-1)``; ``ok`` is False where ``Sigma`` is not positive definite."""
    n = sigma.shape[0]
    chol = np.zeros((n, n))
    for j in range(n):
        d = sigma[j, j] - np.sum(chol[j, :j] ** 2)
        if not d > 0.0:
            return False, 0.0, chol
        chol[j, j] = math.sqrt(d)
        for i in range(j + 1, n):
            chol[i, j] = (sigma[i, j] - np.sum(chol[i, :j] * chol[j, :j])) / chol[j, j]
    inv_chol = np.zeros((n, n))  # L^-1, lower triangular
    for j in range(n):
        inv_chol[j, j] = 1.0 / chol[j, j]
        for i in range(j + 1, n):
            inv_chol[i, j] = -np.sum(chol[i, j:i] * inv_chol[j:i, j]) / chol[i, i]
    logdet = 2.0 * np.sum(np.log(np.diag(chol)))
    return True, logdet, inv_chol.T @ inv_chol


@numba.njit(cache=False)
def _placed(values, where, p):
    out = np.zeros((p, p))
    for i in range(where.size):
        for j in range(where.size):
            out[where[i], where[j]] = values[i, j]
    return out


@numba.njit(cache=False)
def _taken(full, where):
    out = np.empty((where.size, where.size))
    for i in range(where.size):
        for j in range(where.size):
            out[i, j] = full[where[i], where[j]]
    return out


@numba.njit(cache=False)
def _two_level_terms(
    sigma_w, sigma_b, mu, within_index, within_scatter, sizes, counts, means, group_scatter, gradient
):  # fmt: skip
    """The two-level log-likelihood from the implied moments (placed among all p variables) and, with
    ``gradient``, dL/dSigma_w, dL/dSigma_b and dL/dmu; ``-inf`` where a covariance is not PD."""
    p = mu.size
    n_within = within_index.size
    g_w = np.zeros((p, p))
    g_b = np.zeros((p, p))
    g_mu = np.zeros(p)
    # within: -1/2 (dof (p_w log 2pi + log|Sigma_w|) + tr(Sigma_w^-1 W))
    ok, logdet, inv = _cholesky_inverse(_taken(sigma_w, within_index))
    if not ok:
        return -np.inf, g_w, g_b, g_mu
    dof = np.sum(counts * (sizes - 1.0))
    logp = -0.5 * (dof * (n_within * _LOG_2PI + logdet) + np.sum(inv * within_scatter))
    if gradient:
        g_sub = -0.5 * (dof * inv - inv @ within_scatter @ inv)
        for i in range(n_within):
            for j in range(n_within):
                g_w[within_index[i], within_index[j]] += g_sub[i, j]
    # between, per cluster size n: -1/2 (c (p log 2pi + log|Sigma_b + Sigma_w / n| + p_w log n)
    #                                     + tr((Sigma_b + Sigma_w / n)^-1 (B + c d d')))
    for g in range(sizes.size):
        ok, logdet, inv = _cholesky_inverse(sigma_b + sigma_w / sizes[g])
        if not ok:
            return -np.inf, g_w, g_b, g_mu
        d = means[g] - mu
        scatter = group_scatter[g] + counts[g] * np.outer(d, d)
        logp += -0.5 * (
            counts[g] * (p * _LOG_2PI + logdet + n_within * math.log(sizes[g])) + np.sum(inv * scatter)
        )
        if gradient:
            h = -0.5 * (counts[g] * inv - inv @ scatter @ inv)
            g_b += h
            g_w += h / sizes[g]
            g_mu += counts[g] * (inv @ d)
    return logp, g_w, g_b, g_mu


@numba.njit(cache=False)
def _likelihood(rows, ints, offsets, within_scatter, sizes, counts, means, group_scatter):
    """The two-level log-likelihood of the rows and its gradient by row (zeros and -inf if not PD)."""
    p = means.shape[1]
    total1, s1, m1, effect1, sigma1, mu1 = _level(rows, ints, offsets, 0)
    total2, s2, m2, effect2, sigma2, mu2 = _level(rows, ints, offsets, 1)
    where1 = _segment(ints, offsets, _LEVEL_START[0] + 7)
    where2 = _segment(ints, offsets, _LEVEL_START[1] + 7)
    mu = np.zeros(p)
    for i in range(where1.size):
        mu[where1[i]] += mu1[i]
    for i in range(where2.size):
        mu[where2[i]] += mu2[i]
    within_index = _segment(ints, offsets, _WITHIN_INDEX)
    logp, g_w, g_b, g_mu = _two_level_terms(
        _placed(sigma1, where1, p),
        _placed(sigma2, where2, p),
        mu,
        within_index,
        within_scatter,
        sizes,
        counts,
        means,
        group_scatter,
        True,
    )
    grad = np.zeros(rows.size)
    if not np.isfinite(logp):
        return -np.inf, grad
    mu_where1 = np.empty(where1.size)
    for i in range(where1.size):
        mu_where1[i] = g_mu[where1[i]]
    mu_where2 = np.empty(where2.size)
    for i in range(where2.size):
        mu_where2[i] = g_mu[where2[i]]
    _level_gradient(grad, _taken(g_w, where1), mu_where1, total1, s1, m1, effect1, ints, offsets, 0)
    _level_gradient(grad, _taken(g_b, where2), mu_where2, total2, s2, m2, effect2, ints, offsets, 1)
    return logp, grad


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
            False,
        )[0]
    return out


@numba.njit(cache=False)
def logp_grad(x, hyper, ints, offsets, row_fixed, within_scatter, sizes, counts, means, group_scatter):
    """Log-density of the ``sem2`` family at the unconstrained point ``x`` and its gradient.

    The arguments are the family's inputs in order (:func:`pymlsem.engine.sem.family_inputs`).
    """
    log_prior, grad, values, slope = _priors(x, hyper, ints, offsets)
    _, lavaan_slope, base, rows = _rows(values, ints, offsets, row_fixed)
    loglik, g_rows = _likelihood(rows, ints, offsets, within_scatter, sizes, counts, means, group_scatter)
    if not np.isfinite(loglik):
        return -np.inf, np.zeros(x.size)
    # covariances: row = base * sqrt(base_a * base_b)
    g_base = g_rows.copy()
    cov_rows = _segment(ints, offsets, _COV_ROWS)
    var_a = _segment(ints, offsets, _COV_A)
    var_b = _segment(ints, offsets, _COV_B)
    for t in range(cov_rows.size):
        c, a, b = cov_rows[t], var_a[t], var_b[t]
        sd = math.sqrt(base[a] * base[b])
        g_base[c] = g_rows[c] * sd
        g_base[a] += g_rows[c] * base[c] * sd / (2.0 * base[a])
        g_base[b] += g_rows[c] * base[c] * sd / (2.0 * base[b])
    row_param = _segment(ints, offsets, _ROW_PARAM)
    g_lavaan = np.zeros(x.size)
    for r in range(row_param.size):
        if row_param[r] >= 0:
            g_lavaan[row_param[r]] += g_base[r]
    return log_prior + loglik, grad + g_lavaan * lavaan_slope * slope


@numba.njit(cache=False)
def expand(x, hyper, ints, offsets, row_fixed, within_scatter, sizes, counts, means, group_scatter):
    """The expanded values at ``x``: the K constrained values, then every table row on lavaan's scale."""
    _, _, values, _ = _priors(x, hyper, ints, offsets)
    _, _, _, rows = _rows(values, ints, offsets, row_fixed)
    return (np.concatenate((values, rows)),)
