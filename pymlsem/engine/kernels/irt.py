"""The IRT family as one hand-written numba kernel: log-density and gradient of every model of
:func:`pymlsem.irt.model.build_irt_model` at its unconstrained point.

The per-model PyMC graph is the specification; the kernel equals its ``model.logp()`` and gradient
(tests/engine/test_irt_engine.py). With ``v_ig`` the log of person i's integrand at grid point g (the
notation of :mod:`pymlsem.irt.model`: ``theta_g A_i + D_i - S_p(i)g`` from the binary items, the ordinal
answers' table entries ``L_gkc``, and ``-(theta_g - u_j)^2 / 2``) a person contributes
``LSE_g v_ig + log(step s) - log(2 pi) / 2``. With ``w_ig = softmax_g(v_ig)`` and
``E_i = sum_g w_ig theta_g``: ``d/dA_i = E_i``, ``d/dD_i = 1``, ``d/du_j = sum_{i in j} (E_i - u_j)``,
``d/dS_pg = -W_pg`` (the weights of the pattern's rows summed), ``d/dL_gkc`` the weights of the rows that
answered c to item k, and ``d/dtheta_g`` collects all of them; it reaches ``s`` through ``theta_g = s x_g``.

The point holds ``log a`` (one per item, or one shared by every item with a common discrimination; PyMC's
log transform of the log-normal prior; with its Jacobian the prior is
``N(log a; 0, sd^2)`` up to a constant), the binary items' ``d``, each ordinal item's thresholds under
PyMC's ``ordered`` transform (``kappa_1 = y_1``, ``kappa_c = kappa_c-1 + exp(y_c)``, log-Jacobian
``sum_{c >= 2} y_c``), and with clusters ``log sigma_b`` (half-normal prior, log transform) and ``z``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pymlsem.build.category_terms import log1mexp_scalar, probit_category
from pymlsem.engine.kernels import internal
from pymlsem.engine.kernels.parts import LOG_2PI, segment
from pymlsem.irt.model import (
    BETWEEN_SD_PRIOR_SD,
    DISCRIMINATION_PRIOR_SD,
    GRID_HALF_WIDTH,
    INTERCEPT_PRIOR_SD,
)

__all__ = ["SEGMENTS", "expand", "logp_grad"]

#: the packed integer arrays: (grid points, 1 for a model with clusters, 1 for a common discrimination, 1 for
#: the probit link), each item's number of categories
SEGMENTS = ("sizes", "categories")
_SIZES, _CATEGORIES = range(2)
#: grid points whose log-weight is this far below a person's largest add nothing a double holds to its sum
_NEGLIGIBLE = -40.0
_LOG_INTERCEPT_SD = math.log(INTERCEPT_PRIOR_SD)


@numba.njit(cache=False, inline="always")
def _softplus_sigmoid(x):
    """``log(1 + exp(x))`` and ``1 / (1 + exp(-x))``, stable for either sign."""
    if x > 0.0:
        e = math.exp(-x)
        return x + math.log1p(e), 1.0 / (1.0 + e)
    e = math.exp(x)
    return math.log1p(e), e / (1.0 + e)


@internal
def _layout(categories, n_discriminations):
    """Where each item's intercept (binary) or first threshold (ordinal) sits in the point, as PyMC orders
    the variables: the discriminations (one per item or one in all), the binary items' intercepts, then the
    ordinal items' thresholds by number of categories (increasing) and item; and where the between part
    starts."""
    n_items = categories.size
    start = np.empty(n_items, dtype=np.int64)
    pos = n_discriminations
    for k in range(n_items):
        if categories[k] == 2:
            start[k] = pos
            pos += 1
    for count in range(3, categories.max() + 1):
        for k in range(n_items):
            if categories[k] == count:
                start[k] = pos
                pos += count - 1
    return start, pos


@internal
def _thresholds(x, categories, start):
    """Every ordinal item's thresholds (items x max C - 1, ascending) from the point, the ordered transform's
    log-Jacobian and the thresholds' normal prior."""
    n_items = categories.size
    kappa = np.zeros((n_items, max(categories.max() - 1, 1)))
    log_prior = 0.0
    for k in range(n_items):
        if categories[k] > 2:
            for c in range(categories[k] - 1):
                y = x[start[k] + c]
                kappa[k, c] = y if c == 0 else kappa[k, c - 1] + math.exp(y)
                if c > 0:
                    log_prior += y
                log_prior += (
                    -0.5 * (kappa[k, c] / INTERCEPT_PRIOR_SD) ** 2 - _LOG_INTERCEPT_SD - 0.5 * LOG_2PI
                )
    return kappa, log_prior


@internal
def logp_grad(x, hyper, ints, offsets, codes, pattern, pattern_observed, cluster):
    """Log-density of the family at the unconstrained point ``x`` and its gradient.

    The arguments are the family's inputs in order (:func:`pymlsem.engine.irt.family_inputs`).
    """
    sizes = segment(ints, offsets, _SIZES)
    categories = segment(ints, offsets, _CATEGORIES)
    n_nodes, multilevel, common, probit = sizes[0], sizes[1] == 1, sizes[2] == 1, sizes[3] == 1
    n_rows, n_items = codes.shape
    n_patterns = pattern_observed.shape[0]
    n_discriminations = 1 if common else n_items
    start, between = _layout(categories, n_discriminations)
    a = np.empty(n_items)
    for k in range(n_items):
        a[k] = math.exp(x[0 if common else k])
    kappa, log_prior = _thresholds(x, categories, start)
    n_cuts = kappa.shape[1]
    # items whose answers add a table entry: ordinal ones, and with the probit link binary ones too
    # (kappa = -d); the logit's binary items are the linear split instead
    tabled = np.empty(n_items, dtype=np.bool_)
    for k in range(n_items):
        tabled[k] = categories[k] > 2 or probit
        if probit and categories[k] == 2:
            kappa[k, 0] = -x[start[k]]
    sd = math.exp(x[between]) if multilevel else 0.0
    z = x[between + 1 :] if multilevel else x[:0]
    scale = math.sqrt(1.0 + sd * sd)
    step = 2.0 * GRID_HALF_WIDTH / (n_nodes - 1)
    standard = np.empty(n_nodes)
    theta = np.empty(n_nodes)
    for g in range(n_nodes):
        standard[g] = -GRID_HALF_WIDTH + g * step
        theta[g] = scale * standard[g]
    # binary items: softplus and sigmoid of a theta + d; ordinal: sigma(+-(a theta - kappa_c)) and the table
    softplus = np.zeros((n_nodes, n_items))
    sigmoid = np.zeros((n_nodes, n_items))
    above = np.zeros((n_nodes, n_items, n_cuts))  # sigma(a theta - kappa_c)
    below = np.zeros((n_nodes, n_items, n_cuts))  # sigma(-(a theta - kappa_c))
    table = np.zeros((n_items, n_cuts + 1, n_nodes))  # log P(y = c | theta_g), contiguous in g
    # probit: phi(eta - kappa_c-1) / P(y = c) and phi(eta - kappa_c) / P(y = c)
    upper_ratio = np.zeros((n_items, n_cuts + 1, n_nodes) if probit else (0, 0, 0))
    lower_ratio = np.zeros((n_items, n_cuts + 1, n_nodes) if probit else (0, 0, 0))
    for k in range(n_items):
        count = categories[k]
        if probit:
            for c in range(count):
                for g in range(n_nodes):
                    eta = theta[g] * a[k]
                    upper = eta - kappa[k, c - 1] if c > 0 else 0.0
                    lower = eta - kappa[k, c] if c < count - 1 else 0.0
                    table[k, c, g], upper_ratio[k, c, g], lower_ratio[k, c, g] = probit_category(
                        upper, lower, c == 0, c == count - 1
                    )
            continue
        if count == 2:
            for g in range(n_nodes):
                softplus[g, k], sigmoid[g, k] = _softplus_sigmoid(theta[g] * a[k] + x[start[k]])
            continue
        for c in range(1, count - 1):
            gap = log1mexp_scalar(kappa[k, c - 1] - kappa[k, c])
            for g in range(n_nodes):
                table[k, c, g] = gap
        for g in range(n_nodes):
            for c in range(count - 1):
                plus, up = _softplus_sigmoid(theta[g] * a[k] - kappa[k, c])
                above[g, k, c] = up
                below[g, k, c] = 1.0 - up if up < 0.5 else _softplus_sigmoid(kappa[k, c] - theta[g] * a[k])[1]
                table[k, c + 1, g] -= plus - (theta[g] * a[k] - kappa[k, c])  # log sigma(x) = x - softplus(x)
                table[k, c, g] -= plus  # log sigma(-x) = -softplus(x)
    by_pattern = np.zeros((n_patterns, n_nodes))
    for p in range(n_patterns):
        for k in range(n_items):
            if not tabled[k] and pattern_observed[p, k] != 0.0:
                for g in range(n_nodes):
                    by_pattern[p, g] += softplus[g, k]
            elif probit and categories[k] == 2 and pattern_observed[p, k] != 0.0:
                for g in range(n_nodes):
                    by_pattern[p, g] -= table[k, 0, g]
    # probit binary items: every answered item's entry for the answer 0 is in its pattern's sum above, so
    # an answer 1 adds the difference of the two entries (half the per-person work of adding every answer);
    # the table is not read after the persons' loop (the gradient uses the ratios)
    for k in range(n_items):
        if probit and categories[k] == 2:
            for g in range(n_nodes):
                table[k, 1, g] -= table[k, 0, g]
    weight_sums = np.zeros((n_patterns, n_nodes))
    answer_weights = np.zeros((n_items, n_cuts + 1, n_nodes))
    g_theta = np.zeros(n_nodes)
    g_a = np.zeros(n_items)
    g_point = np.zeros(x.size)
    g_u = np.zeros(z.size)
    values = np.empty(n_nodes)
    loglik = 0.0
    for i in range(n_rows):
        slope, level = 0.0, 0.0
        for k in range(n_items):
            if not tabled[k] and codes[i, k] == 1:
                slope += a[k]
                level += x[start[k]]
                g_point[start[k]] += 1.0
        u = sd * z[cluster[i]] if multilevel else 0.0
        p = pattern[i]
        for g in range(n_nodes):
            gap = theta[g] - u
            values[g] = theta[g] * slope + level - by_pattern[p, g] - 0.5 * gap * gap
        for k in range(n_items):
            c = codes[i, k]
            if tabled[k] and c >= 0 and (c > 0 or categories[k] > 2):
                for g in range(n_nodes):
                    values[g] += table[k, c, g]
        best = 0
        for g in range(1, n_nodes):
            if values[g] > values[best]:
                best = g
        # v is concave in theta (linear, minus convex softplus sums, log-concave category probabilities and
        # a square): the grid points within 40 of the top form one run around it; those outside weigh under
        # exp(-40) = 4e-18 of the sum and are skipped
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
            values[g] = w
            weight_sums[p, g] += w
            g_theta[g] += w * (slope - theta[g] + u)
            mean += w * theta[g]
        for k in range(n_items):
            c = codes[i, k]
            if not tabled[k] and c == 1:
                g_a[k] += mean
            elif tabled[k] and c >= 0 and (c > 0 or categories[k] > 2):
                for g in range(low, high + 1):
                    answer_weights[k, c, g] += values[g]
        if multilevel:
            g_u[cluster[i]] += mean - u
    loglik += n_rows * (math.log(step * scale) - 0.5 * LOG_2PI)
    if not np.isfinite(loglik):
        return -np.inf, np.zeros(x.size)
    g_kappa = np.zeros(kappa.shape)
    # each binary item's weight at each grid point summed over the rows that answered it (by pattern)
    answered = np.zeros((n_items, n_nodes))
    for k in range(n_items):
        if categories[k] == 2:
            for p in range(n_patterns):
                if pattern_observed[p, k] != 0.0:
                    for g in range(n_nodes):
                        answered[k, g] += weight_sums[p, g]
        if probit and categories[k] == 2:  # the weights of the answers 0: the answered ones' less the 1s'
            for g in range(n_nodes):
                answer_weights[k, 0, g] = answered[k, g] - answer_weights[k, 1, g]
    for k in range(n_items):
        count = categories[k]
        if probit:  # d log P / d eta = phi(upper) / P - phi(lower) / P; kappa_c-1 and kappa_c as - and +
            for g in range(n_nodes):
                g_eta = 0.0
                for c in range(count):
                    w = answer_weights[k, c, g]
                    if w == 0.0:
                        continue
                    g_eta += w * (upper_ratio[k, c, g] - lower_ratio[k, c, g])
                    if c > 0:
                        g_kappa[k, c - 1] -= w * upper_ratio[k, c, g]
                    if c < count - 1:
                        g_kappa[k, c] += w * lower_ratio[k, c, g]
                g_a[k] += g_eta * theta[g]
                g_theta[g] += g_eta * a[k]
            continue
        if count == 2:
            for g in range(n_nodes):
                share = answered[k, g] * sigmoid[g, k]
                g_a[k] -= share * theta[g]
                g_point[start[k]] -= share
                g_theta[g] -= share * a[k]
            continue
        for g in range(n_nodes):
            g_eta = 0.0
            for c in range(count):
                w = answer_weights[k, c, g]
                if w == 0.0:
                    continue
                if c > 0:  # log sigma(a theta - kappa_c-1)
                    g_eta += w * below[g, k, c - 1]
                    g_kappa[k, c - 1] -= w * below[g, k, c - 1]
                if c < count - 1:  # log sigma(-(a theta - kappa_c))
                    g_eta -= w * above[g, k, c]
                    g_kappa[k, c] += w * above[g, k, c]
            g_a[k] += g_eta * theta[g]
            g_theta[g] += g_eta * a[k]
        for c in range(1, count - 1):  # log(1 - exp(kappa_c-1 - kappa_c)), the same at every grid point
            w = 0.0
            for g in range(n_nodes):
                w += answer_weights[k, c, g]
            ratio = -1.0 / math.expm1(kappa[k, c] - kappa[k, c - 1])
            g_kappa[k, c - 1] += w * ratio
            g_kappa[k, c] -= w * ratio
    grad = g_point
    if common:  # d/dlog a = a sum_k d/da_k
        grad[0] = a[0] * g_a.sum() - x[0] / DISCRIMINATION_PRIOR_SD**2
    for k in range(n_items):
        if not common:
            grad[k] = a[k] * g_a[k] - x[k] / DISCRIMINATION_PRIOR_SD**2
        if categories[k] == 2:
            if probit:  # kappa = -d
                grad[start[k]] -= g_kappa[k, 0]
            grad[start[k]] -= x[start[k]] / INTERCEPT_PRIOR_SD**2
            continue
        tail = 0.0  # d/dy_c = exp(y_c) sum_{c' >= c} d/dkappa_c' (+1, the Jacobian), d/dy_1 = sum
        for c in range(categories[k] - 2, -1, -1):
            tail += g_kappa[k, c] - kappa[k, c] / INTERCEPT_PRIOR_SD**2
            grad[start[k] + c] = tail if c == 0 else tail * math.exp(x[start[k] + c]) + 1.0
    log_prior += _log_prior(x, n_discriminations, categories, start, between, multilevel)
    if multilevel:
        g_scale = n_rows / scale
        for g in range(n_nodes):
            g_scale += g_theta[g] * standard[g]
        g_sd = g_scale * sd / scale
        for j in range(z.size):
            g_sd += z[j] * g_u[j]
            grad[between + 1 + j] = sd * g_u[j] - z[j]
        grad[between] = sd * g_sd - (sd / BETWEEN_SD_PRIOR_SD) ** 2 + 1.0
    return log_prior + loglik, grad


@internal
def _log_prior(x, n_discriminations, categories, start, between, multilevel):
    """The priors of the discriminations, intercepts and between part, with their transforms' Jacobians (the
    thresholds' are in :func:`_thresholds`)."""
    total = 0.0
    for k in range(n_discriminations):
        total += (
            -0.5 * (x[k] / DISCRIMINATION_PRIOR_SD) ** 2 - math.log(DISCRIMINATION_PRIOR_SD) - 0.5 * LOG_2PI
        )
    for k in range(categories.size):
        if categories[k] == 2:
            total += -0.5 * (x[start[k]] / INTERCEPT_PRIOR_SD) ** 2 - _LOG_INTERCEPT_SD - 0.5 * LOG_2PI
    if multilevel:
        sd = math.exp(x[between])
        total += 0.5 * math.log(2.0 / math.pi) - math.log(BETWEEN_SD_PRIOR_SD)
        total += -0.5 * (sd / BETWEEN_SD_PRIOR_SD) ** 2 + x[between]
        for j in range(between + 1, x.size):
            total += -0.5 * x[j] * x[j] - 0.5 * LOG_2PI
    return total


@internal
def expand(x, hyper, ints, offsets, codes, pattern, pattern_observed, cluster):
    """The expanded values at ``x``: the point itself, then the constrained parameters in the per-model
    variables' order and layout (discriminations, binary intercepts, each ordinal group's thresholds items x
    C-1, with clusters the cluster parts' SD and ``z``)."""
    categories = segment(ints, offsets, _CATEGORIES)
    sizes = segment(ints, offsets, _SIZES)
    multilevel = sizes[1] == 1
    n_discriminations = 1 if sizes[2] == 1 else categories.size
    start, between = _layout(categories, n_discriminations)
    kappa, _ = _thresholds(x, categories, start)
    out = np.concatenate((x, x))
    for k in range(n_discriminations):
        out[x.size + k] = math.exp(x[k])
    for k in range(categories.size):
        for c in range(categories[k] - 1 if categories[k] > 2 else 0):
            out[x.size + start[k] + c] = kappa[k, c]
    if multilevel:
        out[x.size + between] = math.exp(x[between])
    return (out,)
