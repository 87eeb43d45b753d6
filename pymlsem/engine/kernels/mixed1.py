"""The Gaussian mixed-model families with one grouping factor (``mixed1``, ``mixed1_q1``, ``mixed1_q2``:
default priors) as one hand-written numba kernel.

The family graph (:func:`pymlsem.engine.mixed.family_graph`) written by hand over the same inputs, with its
gradient, and tested against the graph (tests/engine/test_kernels.py) and against every such model's own
PyMC graph (tests/engine/test_engine.py). The three families differ only in how their graphs factor a
cluster's matrix (entry by entry for one or two effects), not in what they compute, so one kernel serves
them all.

Before and after the likelihood, the parameters and the chain rule of :mod:`pymlsem.engine.kernels.effects`
(with the residual SD ``scale * value``). The likelihood of
:func:`pymlsem.mlm.loglik.gaussian_marginal_loglik`, per cluster ``j`` with ``A = Z_j'Z_j``,
``g = Z_j'(y_j - X_j b)``, ``u = L'g`` and ``D = I + L'A L / s^2``::

    f_j = log|D| - u'D^-1 u / s^4
    log L = -1/2 [n log 2pi + 2 n log s + sum_j f_j + r'r / s^2]

and, with ``a = D^-1 u`` and ``G = D^-1 + a a' / s^4``, its gradient::

    df_j/dL = 2 A L G / s^2 - 2 g a' / s^4
    df_j/ds = -2 tr(G L'A L) / s^3 + 4 u'D^-1 u / s^5
    df_j/db = 2 X_j'Z_j L a / s^4
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pymlsem.engine.kernels import internal
from pymlsem.engine.kernels.effects import (
    EFFECT_REALS,
    EFFECT_SEGMENTS,
    correlation,
    effect_gradient,
    effect_parameters,
    power_slope,
)
from pymlsem.engine.kernels.linalg import factor_inverse, quadratic_form
from pymlsem.engine.kernels.parts import segment
from pymlsem.engine.kernels.priors import PRIOR_SEGMENTS

__all__ = [
    "REALS",
    "SEGMENTS",
    "add_cluster_gradient",
    "expand",
    "logp_grad",
    "marginal",
    "parameters",
    "posterior",
]

#: the packed integer arrays of the family, in order (:func:`pymlsem.engine.mixed._segments`)
SEGMENTS = (
    *PRIOR_SEGMENTS,
    *EFFECT_SEGMENTS,
    "sigma_param",
    "level_effects",
    "level_sizes",
)
_SIGMA = SEGMENTS.index("sigma_param")
#: the packed real arrays, in order (:data:`pymlsem.engine.mixed._REALS`)
REALS = (*EFFECT_REALS, "sigma_scale", "sigma_power")
_SIGMA_SCALE, _SIGMA_POWER = REALS.index("sigma_scale"), REALS.index("sigma_power")
_LOG_2PI = math.log(2.0 * math.pi)


@internal
def parameters(x, hyper, ints, offsets, reals, real_offsets):
    """:func:`effect_parameters`, and the residual SD."""
    log_prior, grad, values, slope, fixef, sd, corr_factor = effect_parameters(
        x, hyper, ints, offsets, reals, real_offsets
    )
    power = segment(reals, real_offsets, _SIGMA_POWER)[0]
    sigma = segment(reals, real_offsets, _SIGMA_SCALE)[0] * values[segment(ints, offsets, _SIGMA)[0]] ** power
    return log_prior, grad, values, slope, fixef, sigma, sd, corr_factor


@internal
def _loglik(fixef, sigma, factor, yy, xy, xx, zz, zy, zx, nobs):
    """The marginal log-likelihood and its gradient in the fixed effects, the residual SD and ``L``."""
    n_clusters, q = zy.shape
    p = fixef.size
    s2 = sigma * sigma
    s4 = s2 * s2
    g_factor = np.zeros((q, q))
    g_fixef = np.zeros(p)
    sum_f = 0.0
    g_sigma_f = 0.0
    g = np.empty(q)
    u = np.empty(q)
    a = np.empty(q)
    al = np.empty((q, q))
    d = np.empty((q, q))
    lal = np.empty((q, q))
    inv = np.empty((q, q))
    for j in range(n_clusters):
        area = zz[j]
        for r in range(q):
            total = zy[j, r]
            for t in range(p):
                total -= zx[j, r, t] * fixef[t]
            g[r] = total
        for r in range(q):
            for c in range(q):
                total = 0.0
                for m in range(q):
                    total += area[r, m] * factor[m, c]
                al[r, c] = total
        for r in range(q):  # L'A L / s^2, D = I + L'A L / s^2 (lower triangle), u = L'g
            total = 0.0
            for m in range(q):
                total += factor[m, r] * g[m]
            u[r] = total
            for c in range(q):
                total = 0.0
                for m in range(q):
                    total += factor[m, r] * al[m, c]
                lal[r, c] = total / s2
            for c in range(r + 1):
                d[r, c] = lal[r, c] + (1.0 if r == c else 0.0)
        ok, logdet = factor_inverse(d, inv)
        if not ok:
            return -np.inf, fixef, sigma, factor
        quad = quadratic_form(inv, u, q, a)
        sum_f += logdet - quad / s4
        for r in range(q):  # G = D^-1 + a a' / s^4
            for c in range(q):
                inv[r, c] += a[r] * a[c] / s4
        trace = add_cluster_gradient(g_factor, g_fixef, al, inv, g, a, lal, factor, zx[j], s2, s4)
        g_sigma_f += -2.0 * trace / sigma + 4.0 * quad / (s4 * sigma)
    return marginal(fixef, sigma, yy, xy, xx, nobs, sum_f, g_fixef, g_sigma_f, g_factor)


@numba.njit(cache=False, inline="always")  # in each cluster loop: a call would cost more than it does
def add_cluster_gradient(g_factor, g_fixef, al, blocks, g, a, k, factor, zx, s2, s4):
    """Add a cluster's ``df_j/dL = 2 A L G / s^2 - 2 g a' / s^4`` to ``g_factor`` and ``df_j/db = 2 X_j'Z_j
    L a / s^4`` to ``g_fixef`` (``blocks``: its ``G``; ``al``: ``A L``; ``zx``: ``Z_j'X_j``), and return
    ``tr(G L'A L) / s^2`` for ``df_j/ds`` (``k``: ``L'A L / s^2``)."""
    q = a.size
    trace = 0.0
    for r in range(q):
        for c in range(q):
            total = 0.0
            for m in range(q):
                total += al[r, m] * blocks[m, c]
            g_factor[r, c] += 2.0 * total / s2 - 2.0 * g[r] * a[c] / s4
            trace += blocks[r, c] * k[r, c]
        la = 0.0
        for c in range(q):
            la += factor[r, c] * a[c]
        for t in range(g_fixef.size):
            g_fixef[t] += 2.0 * zx[r, t] * la / s4
    return trace


@internal
def marginal(fixef, sigma, yy, xy, xx, nobs, sum_f, g_fixef_f, g_sigma_f, g_factor_f):
    """The marginal log-likelihood ``-1/2 [n log 2pi + 2 n log s + f + r'r / s^2]`` and its gradient in
    the fixed effects, the residual SD and ``L``, from ``f`` (``sum_j f_j``) and its gradients."""
    s2 = sigma * sigma
    n = nobs[0]
    xx_b = np.sum(xx * fixef.reshape((1, -1)), axis=1)  # X'X b (symmetric)
    rr = yy[0] - 2.0 * np.sum(xy * fixef) + np.sum(fixef * xx_b)
    loglik = -0.5 * (n * _LOG_2PI + n * math.log(s2) + sum_f + rr / s2)
    g_rr = -2.0 * xy + 2.0 * xx_b
    g_fixef = -0.5 * (g_fixef_f + g_rr / s2)
    g_sigma = -0.5 * (2.0 * n / sigma + g_sigma_f - 2.0 * rr / (s2 * sigma))
    return loglik, g_fixef, g_sigma, -0.5 * g_factor_f


@internal
def logp_grad(x, hyper, ints, offsets, reals, real_offsets, yy, xy, xx, zz, zy, zx, nobs):
    """Log-density of the family at the unconstrained point ``x`` and its gradient.

    The arguments are the family's inputs in order (:func:`pymlsem.engine.mixed.family_inputs`).
    """
    log_prior, grad, values, slope, fixef, sigma, sd, corr_factor = parameters(
        x, hyper, ints, offsets, reals, real_offsets
    )
    factor = sd.reshape((-1, 1)) * corr_factor
    likelihood = _loglik(fixef, sigma, factor, yy, xy, xx, zz, zy, zx, nobs)
    state = (slope, values, sd, corr_factor)
    return posterior(x, log_prior, grad, likelihood, state, ints, offsets, reals, real_offsets)


@internal
def posterior(x, log_prior, grad, likelihood, state, ints, offsets, reals, real_offsets):
    """The log-density and its gradient in ``x`` from the prior's (``log_prior``, ``grad``) and the
    likelihood's (:func:`marginal`'s four values); ``state`` as :func:`effect_gradient` reads it."""
    loglik, g_fixef, g_sigma, g_factor = likelihood
    if not np.isfinite(loglik):
        return -np.inf, np.zeros(x.size)
    g_values = np.zeros(x.size)
    at = segment(ints, offsets, _SIGMA)[0]
    scale, power = (
        segment(reals, real_offsets, _SIGMA_SCALE)[0],
        segment(reals, real_offsets, _SIGMA_POWER)[0],
    )
    g_values[at] = power_slope(scale, power, state[1][at]) * g_sigma  # sigma = scale * value ** power
    effect_gradient(x, grad, g_values, g_fixef, g_factor, state, ints, offsets, reals, real_offsets)
    return log_prior + loglik, grad


@internal
def expand(x, hyper, ints, offsets, reals, real_offsets, yy, xy, xx, zz, zy, zx, nobs):
    """The expanded values at ``x``: the K constrained values, the fixed effects, the residual SD, the SDs,
    the correlation factor and the correlation matrix it gives (both Q x Q, row by row)."""
    _, _, values, _, fixef, sigma, sd, corr_factor = parameters(x, hyper, ints, offsets, reals, real_offsets)
    corr = correlation(corr_factor)
    return (
        np.concatenate((values, fixef, np.array([sigma]), sd, corr_factor.reshape(-1), corr.reshape(-1))),
    )
