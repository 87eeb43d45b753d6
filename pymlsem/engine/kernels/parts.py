"""What every SEM kernel computes before and after its likelihood, and the matrix helpers they share.

Before: the free parameters' values from the unconstrained point, with their priors and the transforms'
log-Jacobians (every prior family: :mod:`pymlsem.engine.kernels.priors`), then every parameter-table
row on lavaan's scale (:func:`pymlsem.engine.table.row_values`: SD squared, precision inverted, correlation
``2u - 1``; fixed rows; covariances from correlations times SDs) and a level's RAM matrices and implied
moments (:mod:`pymlsem.build.ram`). After: the likelihood's gradient by row taken back through the same
steps to the unconstrained point.

The integer arrays arrive packed in ``ints`` and cut by ``offsets`` (:func:`pymlsem.engine.binding.pack`),
in the order of :func:`pymlsem.engine.sem.segments`; every SEM family starts with the same segments (one
per prior family, the rows, level 1), so their positions are constants here.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pymlsem.engine.kernels import internal
from pymlsem.engine.kernels.linalg import (
    factor_inverse,
    inverse,
    matmul,
    matmul_nt,
    matmul_tn,
    matvec,
    outer,
    vecmat,
)
from pymlsem.engine.kernels.priors import PRIOR_SEGMENTS, all_priors

#: the segments every SEM family starts with
COMMON_SEGMENTS = (*PRIOR_SEGMENTS, "scale", "row_param", "cov_rows", "cov_var_a", "cov_var_b")
LEVEL_SEGMENTS = ("nvars", "a_rows", "a_index", "s_rows", "s_index", "m_rows", "m_index", "where")
SCALE, ROW_PARAM, COV_ROWS, COV_A, COV_B = range(len(PRIOR_SEGMENTS), len(COMMON_SEGMENTS))
#: first segment of each level (level 1 at index 0)
LEVEL_START = (len(COMMON_SEGMENTS), len(COMMON_SEGMENTS) + len(LEVEL_SEGMENTS))
#: lavaan-scale codes (:data:`pymlsem.build.parameters.SCALE_CODES`)
_SD, _PREC, _RHO = 1, 3, 4
LOG_2PI = math.log(2.0 * math.pi)

# The steps a kernel is made of (prior_and_rows, level_moments, normal_terms, posterior, ...) are inlined
# into it by numba (``inline="always"``), the shared helpers below them are not. numba optimises and emits
# the machine code of every jitted function on its own and then again inside each caller, so steps compiled
# as functions of their own made a family's first compile 1-2 s (10-15%) longer (docs/design-decisions.md,
# "The kernels' steps inlined").


def level_segments(levels: int) -> tuple[str, ...]:
    """The segments of ``levels`` levels, after :data:`COMMON_SEGMENTS`."""
    return tuple(f"l{level}_{name}" for level in range(1, levels + 1) for name in LEVEL_SEGMENTS)


@numba.njit(cache=False, inline="always")  # inlined: called with a different constant at each site
def segment(ints, offsets, i):
    """The ``i``-th packed array (``ints`` or ``reals``, cut by their offsets)."""
    return ints[offsets[i] : offsets[i + 1]]


@internal
def _rows(values, ints, offsets, row_fixed):
    """Every table row's value on lavaan's scale; also the rows before covariances are scaled, and
    d(lavaan value)/d(value) of each free parameter."""
    scale = segment(ints, offsets, SCALE)
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
    row_param = segment(ints, offsets, ROW_PARAM)
    base = np.empty(row_param.size)
    for r in range(row_param.size):
        base[r] = lavaan[row_param[r]] if row_param[r] >= 0 else row_fixed[r]
    rows = base.copy()
    cov_rows = segment(ints, offsets, COV_ROWS)
    var_a = segment(ints, offsets, COV_A)
    var_b = segment(ints, offsets, COV_B)
    for t in range(cov_rows.size):
        rows[cov_rows[t]] = base[cov_rows[t]] * math.sqrt(base[var_a[t]] * base[var_b[t]])
    return lavaan_slope, base, rows


@numba.njit(cache=False, inline="always")  # a step of the kernel: see the module's note
def prior_and_rows(x, hyper, ints, offsets, row_fixed):
    """The prior's log-density at ``x`` and every table row's value, with what :func:`to_point` needs.

    Returns
    -------
    log_prior, rows, state
        ``state`` (the prior's gradient, dvalue/dx, dlavaan/dvalue, the rows before covariances are
        scaled) goes to :func:`to_point` with the likelihood's gradient by row.
    """
    log_prior, grad, values, slope = all_priors(x, hyper, ints, offsets)
    lavaan_slope, base, rows = _rows(values, ints, offsets, row_fixed)
    return log_prior, rows, (grad, slope, lavaan_slope, base)


@numba.njit(cache=False, inline="always")  # a step of the kernel: see the module's note
def to_point(g_rows, state, ints, offsets):
    """The gradient in the unconstrained point of the prior plus a likelihood whose gradient by table row
    is ``g_rows``."""
    grad, slope, lavaan_slope, base = state
    # covariances: row = base * sqrt(base_a * base_b)
    g_base = g_rows.copy()
    cov_rows = segment(ints, offsets, COV_ROWS)
    var_a = segment(ints, offsets, COV_A)
    var_b = segment(ints, offsets, COV_B)
    for t in range(cov_rows.size):
        c, a, b = cov_rows[t], var_a[t], var_b[t]
        sd = math.sqrt(base[a] * base[b])
        g_base[c] = g_rows[c] * sd
        g_base[a] += g_rows[c] * base[c] * sd / (2.0 * base[a])
        g_base[b] += g_rows[c] * base[c] * sd / (2.0 * base[b])
    row_param = segment(ints, offsets, ROW_PARAM)
    g_lavaan = np.zeros(grad.size)
    for r in range(row_param.size):
        if row_param[r] >= 0:
            g_lavaan[row_param[r]] += g_base[r]
    return grad + g_lavaan * lavaan_slope * slope


@numba.njit(cache=False, inline="always")  # a step of the kernel: see the module's note
def posterior(log_prior, loglik, state, n_rows, ints, offsets, levels):
    """The log-density and its gradient in the unconstrained point, from the prior's part and the
    likelihood with its gradient in each level's placed moments.

    ``levels`` holds ``(dL/dSigma, dL/dmu, ram)`` per level (:func:`level_moments`), level 1 first; a
    likelihood of ``-inf`` gives ``-inf`` and a zero gradient.
    """
    if not np.isfinite(loglik):
        return -np.inf, np.zeros(state[0].size)
    g_rows = np.zeros(n_rows)
    for level in range(len(levels)):
        g_sigma, g_mu, ram = levels[level]
        add_level_gradient(g_rows, g_sigma, g_mu, ram, ints, offsets, level)
    return log_prior + loglik, to_point(g_rows, state, ints, offsets)


@numba.njit(cache=False, inline="always")  # a step of the kernel: see the module's note
def expanded_values(x, hyper, ints, offsets, row_fixed):
    """The expanded values at ``x``: the K constrained values, then every table row on lavaan's scale."""
    _, _, values, _ = all_priors(x, hyper, ints, offsets)
    _, _, rows = _rows(values, ints, offsets, row_fixed)
    return (np.concatenate((values, rows)),)


@numba.njit(cache=False, inline="always")  # a step of the kernel: see the module's note
def level_moments(rows, ints, offsets, level, p):
    """One level's RAM matrices, ``(I - A)^-1`` and implied moments placed among the data's ``p``
    variables.

    Callers pass ``level`` as ``np.int64(0)`` or ``np.int64(1)``, a value known only at run time, so that
    the function's body is typed the same way at each of its (inlined) calls.

    Returns
    -------
    sigma, mu, ram
        The placed covariance (p, p) and mean (p,); ``ram`` goes to :func:`add_level_gradient`.
    """
    first = LEVEL_START[level]
    k = segment(ints, offsets, first)[0]
    a = np.zeros(k * k)
    s = np.zeros(k * k)
    m = np.zeros(k)
    a_rows, a_index = segment(ints, offsets, first + 1), segment(ints, offsets, first + 2)
    s_rows, s_index = segment(ints, offsets, first + 3), segment(ints, offsets, first + 4)
    m_rows, m_index = segment(ints, offsets, first + 5), segment(ints, offsets, first + 6)
    for t in range(a_rows.size):
        a[a_index[t]] = rows[a_rows[t]]
    for t in range(s_rows.size):
        s[s_index[t]] = rows[s_rows[t]]
    for t in range(m_rows.size):
        m[m_index[t]] = rows[m_rows[t]]
    i_minus_a = -a.reshape(k, k)
    for i in range(k):
        i_minus_a[i, i] += 1.0
    total = inverse(i_minus_a)
    s2 = s.reshape(k, k)
    where = segment(ints, offsets, first + 7)
    effect = np.ascontiguousarray(total[: where.size])
    sigma = placed(matmul_nt(matmul(effect, s2), effect), where, p)
    mean = matvec(effect, m)
    mu = np.zeros(p)
    for i in range(where.size):
        mu[where[i]] = mean[i]
    return sigma, mu, (total, s2, m, effect)


@numba.njit(cache=False, inline="always")  # a step of the kernel: see the module's note
def add_level_gradient(grad, g_sigma, g_mu, ram, ints, offsets, level):
    """Add to ``grad`` (by row) what dL/dSigma (symmetric) and dL/dmu of a level's placed moments give."""
    total, s, m, effect = ram
    first = LEVEL_START[level]
    where = segment(ints, offsets, first + 7)
    g_sub = taken(g_sigma, where)
    g_mean = np.empty(where.size)
    for i in range(where.size):
        g_mean[i] = g_mu[where[i]]
    inner = matmul(matmul_tn(effect, g_sub), effect)
    d_m = vecmat(g_mean, effect)
    d_a = outer(d_m, matvec(total, m))
    d_a += 2.0 * matmul_nt(matmul(inner, s), total)
    d_a = d_a.ravel()
    d_s = inner.ravel()
    a_rows, a_index = segment(ints, offsets, first + 1), segment(ints, offsets, first + 2)
    s_rows, s_index = segment(ints, offsets, first + 3), segment(ints, offsets, first + 4)
    m_rows, m_index = segment(ints, offsets, first + 5), segment(ints, offsets, first + 6)
    for t in range(a_rows.size):
        grad[a_rows[t]] += d_a[a_index[t]]
    for t in range(s_rows.size):
        grad[s_rows[t]] += d_s[s_index[t]]
    for t in range(m_rows.size):
        grad[m_rows[t]] += d_m[m_index[t]]


@internal
def cholesky_inverse(sigma):
    """``(ok, log|Sigma|, Sigma^-1)``; ``ok`` is False where ``Sigma`` is not positive definite."""
    n = sigma.shape[0]
    inv = np.zeros((n, n))
    ok, logdet = cholesky_inverse_at(sigma, np.arange(n), n, np.empty((n, n)), inv)
    return ok, logdet, inv


@internal
def cholesky_inverse_at(sigma, where, o, chol, inv):
    """``(ok, log|S|)`` of the block ``S = sigma[where[:o]][:, where[:o]]``, with ``S^-1`` written to
    ``inv[:o, :o]`` (:func:`pymlsem.engine.kernels.linalg.factor_inverse`; ``chol``, at least o x o, receives
    the block's Cholesky factor): buffers that a loop over blocks reuses. ``ok`` is False where ``S`` is not
    positive definite."""
    for i in range(o):
        for j in range(i + 1):
            chol[i, j] = sigma[where[i], where[j]]
    return factor_inverse(chol[:o, :o], inv[:o, :o])


@numba.njit(cache=False, inline="always")  # a step of the kernel: see the module's note
def normal_terms(sigma, mean, mu, scatter, count):
    """``count`` rows' normal log-likelihood from their mean and scatter around it (``-inf`` where
    ``sigma`` is not positive definite), with its gradient in ``sigma`` and ``mu``:

    ``-1/2 [count (p log 2pi + log|Sigma|) + tr(Sigma^-1 (scatter + count d d'))]``, ``d = mean - mu``.
    """
    p = mu.size
    ok, logdet, inv = cholesky_inverse(sigma)
    if not ok:
        return -np.inf, np.zeros((p, p)), np.zeros(p)
    return factored_normal_terms(inv, logdet, mean, mu, scatter, count)


@internal
def factored_normal_terms(inv, logdet, mean, mu, scatter, count):
    """:func:`normal_terms` with ``Sigma^-1`` and ``log|Sigma|`` known (:func:`cholesky_inverse`)."""
    p = mu.size
    g_sigma = np.zeros((p, p))
    g_mu = np.zeros(p)
    work = (np.empty((p, p)), np.empty(p))
    term = normal_terms_at(inv, logdet, p, np.arange(p), mean, mu, scatter, count, work, g_sigma, g_mu)
    return term, g_sigma, g_mu


@internal
def normal_terms_at(inv, logdet, o, where, mean, mu, scatter, count, work, g_sigma, g_mu):
    """:func:`normal_terms` of ``count`` rows on the variables ``where[:o]``, from the inverse ``inv[:o, :o]``
    and log-determinant of sigma's block (:func:`cholesky_inverse_at`); ``mean``, ``mu`` (p,) and
    ``scatter`` (p, p) are over all variables and read at ``where``. The gradient in sigma and mu is added
    to ``g_sigma`` (p, p) and ``g_mu`` (p,) at those variables. ``work``: a (p, p) and a (p,) buffer.

    The gradient in sigma's block is ``-1/2 [count S^-1 - S^-1 scatter S^-1 - count (S^-1 d)(S^-1 d)']``.
    """
    product, inv_d = work
    quadratic = 0.0
    for i in range(o):
        c = 0.0
        for j in range(o):
            c += inv[i, j] * (mean[where[j]] - mu[where[j]])
            quadratic += inv[i, j] * scatter[where[i], where[j]]
        inv_d[i] = c
        quadratic += count * (mean[where[i]] - mu[where[i]]) * c
    for i in range(o):  # S^-1 scatter
        for j in range(o):
            c = 0.0
            for t in range(o):
                c += inv[i, t] * scatter[where[t], where[j]]
            product[i, j] = c
    for i in range(o):
        for j in range(i + 1):
            c = 0.0
            for t in range(o):
                c += product[i, t] * inv[t, j]
            g = -0.5 * (count * inv[i, j] - c - count * inv_d[i] * inv_d[j])
            g_sigma[where[i], where[j]] += g
            if i != j:
                g_sigma[where[j], where[i]] += g
        g_mu[where[i]] += count * inv_d[i]
    return gaussian(count, o, logdet, quadratic)


@internal
def pattern_terms(sigma, mu, patterns, g_sigma, g_mu, precision):
    """The rows of each missingness pattern against their block of ``sigma`` (:func:`normal_terms_at`):
    the log-likelihood, ``-inf`` where a block is not positive definite, its gradient added to ``g_sigma``
    and ``g_mu``. ``patterns``: ``(observed (K, p), counts, means, scatter)``. ``precision``: (K, p, p)
    zeros to receive each block's inverse at its variables, or (0, p, p) for none."""
    observed, counts, means, scatter = patterns
    p = mu.size
    where = np.empty(p, dtype=np.int64)
    chol, inv = np.empty((p, p)), np.empty((p, p))
    work = (np.empty((p, p)), np.empty(p))
    logp = 0.0
    for k in range(counts.size):
        o = 0
        for v in range(p):
            if observed[k, v] > 0.5:
                where[o] = v
                o += 1
        ok, logdet = cholesky_inverse_at(sigma, where, o, chol, inv)
        if not ok:
            return -np.inf
        logp += normal_terms_at(
            inv, logdet, o, where, means[k], mu, scatter[k], counts[k], work, g_sigma, g_mu
        )
        if precision.shape[0] > 0:
            for i in range(o):
                for j in range(o):
                    precision[k, where[i], where[j]] = inv[i, j]
    return logp


@internal
def gaussian(count, p, logdet, quadratic):
    """The log-density of ``count`` p-variate normal vectors of covariance determinant ``exp(logdet)``
    whose squared Mahalanobis distances add up to ``quadratic``."""
    return -0.5 * (count * (p * LOG_2PI + logdet) + quadratic)


@internal
def placed(values, where, p):
    """``values`` at rows and columns ``where`` of a p x p zero matrix."""
    out = np.zeros((p, p))
    for i in range(where.size):
        for j in range(where.size):
            out[where[i], where[j]] = values[i, j]
    return out


@internal
def taken(full, where):
    """``full[where][:, where]``."""
    out = np.empty((where.size, where.size))
    for i in range(where.size):
        for j in range(where.size):
            out[i, j] = full[where[i], where[j]]
    return out
