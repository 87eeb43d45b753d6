"""The IRT family as one hand-written numba kernel: log-density and gradient of every model of
:func:`pymlsem.irt.model.build_irt_model` at its unconstrained point.

The per-model PyMC graph is the specification; the kernel equals its ``model.logp()`` and gradient
(tests/engine/test_irt_engine.py). With ``v_ig = theta_g A_i + D_i - S_p(i)g - (theta_g - u_j)^2 / 2`` (the
notation of :mod:`pymlsem.irt.model`) a person contributes ``LSE_g v_ig + log(step s) - log(2 pi) / 2``.
With ``w_ig = softmax_g(v_ig)`` and ``E_i = sum_g w_ig theta_g`` (the trait's posterior mean given u_j):
``d/dA_i = E_i``, ``d/dD_i = 1``, ``d/du_j = sum_{i in j} (E_i - u_j)``, ``d/dS_pg = -W_pg`` (the weights of
the pattern's rows summed) and ``d/dtheta_g = sum_i w_ig (A_i - theta_g + u_j) - sum_p W_pg sum_{k in p}
sigma(eta_gk) a_k``, which reaches ``s`` through ``theta_g = s x_g``.

The point holds ``log a`` (PyMC's log transform of the log-normal prior; with its Jacobian the prior is
``N(log a; 0, sd^2)`` up to a constant), ``d``, and with clusters ``log sigma_b`` (half-normal prior, log
transform) and ``z``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pymlsem.engine.kernels.parts import LOG_2PI, segment
from pymlsem.irt.model import (
    BETWEEN_SD_PRIOR_SD,
    DISCRIMINATION_PRIOR_SD,
    GRID_HALF_WIDTH,
    INTERCEPT_PRIOR_SD,
)

__all__ = ["SEGMENTS", "expand", "logp_grad"]

#: the packed integer arrays: (grid points, 1 for a model with clusters)
SEGMENTS = ("sizes",)
_SIZES = 0
#: grid points whose log-weight is this far below a person's largest add nothing a double holds to its sum
_NEGLIGIBLE = -40.0


@numba.njit(cache=False)
def _log_prior(x, n_items, multilevel):
    """The priors with their transforms' Jacobians at ``x``."""
    total = 0.0
    for k in range(n_items):
        total += -0.5 * (x[k] / DISCRIMINATION_PRIOR_SD) ** 2 - math.log(DISCRIMINATION_PRIOR_SD)
        total += -0.5 * (x[n_items + k] / INTERCEPT_PRIOR_SD) ** 2 - math.log(INTERCEPT_PRIOR_SD)
    total -= n_items * LOG_2PI  # 0.5 log(2 pi) for each of the 2 n_items normal densities
    if multilevel:
        sd = math.exp(x[2 * n_items])
        total += 0.5 * math.log(2.0 / math.pi) - math.log(BETWEEN_SD_PRIOR_SD)
        total += -0.5 * (sd / BETWEEN_SD_PRIOR_SD) ** 2 + x[2 * n_items]
        for j in range(2 * n_items + 1, x.size):
            total += -0.5 * x[j] * x[j] - 0.5 * LOG_2PI
    return total


@numba.njit(cache=False)
def logp_grad(x, hyper, ints, offsets, responses, pattern, pattern_observed, cluster):
    """Log-density of the family at the unconstrained point ``x`` and its gradient.

    The arguments are the family's inputs in order (:func:`pymlsem.engine.irt.family_inputs`).
    """
    sizes = segment(ints, offsets, _SIZES)
    n_nodes, multilevel = sizes[0], sizes[1] == 1
    n_rows, n_items = responses.shape
    n_patterns = pattern_observed.shape[0]
    a = np.exp(x[:n_items])
    d = x[n_items : 2 * n_items]
    sd = math.exp(x[2 * n_items]) if multilevel else 0.0
    z = x[2 * n_items + 1 :] if multilevel else x[:0]
    scale = math.sqrt(1.0 + sd * sd)
    step = 2.0 * GRID_HALF_WIDTH / (n_nodes - 1)
    standard = np.empty(n_nodes)
    theta = np.empty(n_nodes)
    for g in range(n_nodes):
        standard[g] = -GRID_HALF_WIDTH + g * step
        theta[g] = scale * standard[g]
    softplus = np.empty((n_nodes, n_items))
    sigmoid = np.empty((n_nodes, n_items))
    for g in range(n_nodes):
        for k in range(n_items):
            eta = theta[g] * a[k] + d[k]
            if eta > 0.0:
                e = math.exp(-eta)
                softplus[g, k] = eta + math.log1p(e)
                sigmoid[g, k] = 1.0 / (1.0 + e)
            else:
                e = math.exp(eta)
                softplus[g, k] = math.log1p(e)
                sigmoid[g, k] = e / (1.0 + e)
    by_pattern = np.zeros((n_patterns, n_nodes))
    for p in range(n_patterns):
        for k in range(n_items):
            if pattern_observed[p, k] != 0.0:
                for g in range(n_nodes):
                    by_pattern[p, g] += softplus[g, k]
    weight_sums = np.zeros((n_patterns, n_nodes))
    g_theta = np.zeros(n_nodes)
    g_a = np.zeros(n_items)
    g_d = np.zeros(n_items)
    g_u = np.zeros(z.size)
    values = np.empty(n_nodes)
    loglik = 0.0
    for i in range(n_rows):
        slope, level = 0.0, 0.0
        for k in range(n_items):
            if responses[i, k] != 0.0:
                slope += a[k]
                level += d[k]
                g_d[k] += 1.0
        u = sd * z[cluster[i]] if multilevel else 0.0
        p = pattern[i]
        best = 0
        for g in range(n_nodes):
            gap = theta[g] - u
            values[g] = theta[g] * slope + level - by_pattern[p, g] - 0.5 * gap * gap
            if values[g] > values[best]:
                best = g
        # v is concave in theta (linear, minus the convex softplus sums and a square): the grid points within
        # 40 of the top form one run around it; those outside weigh under exp(-40) = 4e-18 and are skipped
        top = values[best]
        low, high = best, best
        while low > 0 and values[low - 1] - top > _NEGLIGIBLE:
            low -= 1
        while high < n_nodes - 1 and values[high + 1] - top > _NEGLIGIBLE:
            high += 1
        total = 0.0
        for g in range(low, high + 1):
            values[g] = math.exp(values[g] - top)
            total += values[g]
        loglik += top + math.log(total)
        mean = 0.0
        for g in range(low, high + 1):
            w = values[g] / total
            weight_sums[p, g] += w
            g_theta[g] += w * (slope - theta[g] + u)
            mean += w * theta[g]
        for k in range(n_items):
            if responses[i, k] != 0.0:
                g_a[k] += mean
        if multilevel:
            g_u[cluster[i]] += mean - u
    loglik += n_rows * (math.log(step * scale) - 0.5 * LOG_2PI)
    if not np.isfinite(loglik):
        return -np.inf, np.zeros(x.size)
    for g in range(n_nodes):
        for k in range(n_items):
            total = 0.0
            for p in range(n_patterns):
                total += weight_sums[p, g] * pattern_observed[p, k]
            share = total * sigmoid[g, k]
            g_a[k] -= share * theta[g]
            g_d[k] -= share
            g_theta[g] -= share * a[k]
    grad = np.empty(x.size)
    for k in range(n_items):
        grad[k] = a[k] * g_a[k] - x[k] / DISCRIMINATION_PRIOR_SD**2
        grad[n_items + k] = g_d[k] - d[k] / INTERCEPT_PRIOR_SD**2
    if multilevel:
        g_scale = n_rows / scale
        for g in range(n_nodes):
            g_scale += g_theta[g] * standard[g]
        g_sd = g_scale * sd / scale
        for j in range(z.size):
            g_sd += z[j] * g_u[j]
            grad[2 * n_items + 1 + j] = sd * g_u[j] - z[j]
        grad[2 * n_items] = sd * g_sd - (sd / BETWEEN_SD_PRIOR_SD) ** 2 + 1.0
    return _log_prior(x, n_items, multilevel) + loglik, grad


@numba.njit(cache=False)
def expand(x, hyper, ints, offsets, responses, pattern, pattern_observed, cluster):
    """The expanded values at ``x``: the point itself, then the constrained parameters in the per-model
    variables' order (discriminations, intercepts; with clusters the cluster parts' SD and ``z``): the
    point with ``log a`` and ``log sigma_b`` exponentiated."""
    n_items = responses.shape[1]
    multilevel = segment(ints, offsets, _SIZES)[1] == 1
    out = np.concatenate((x, x))
    for k in range(n_items):
        out[x.size + k] = math.exp(x[k])
    if multilevel:
        out[x.size + 2 * n_items] = math.exp(x[2 * n_items])
    return (out,)
