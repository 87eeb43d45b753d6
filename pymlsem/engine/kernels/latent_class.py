"""The latent class family as one hand-written numba kernel: log-density and gradient of every model of
:func:`pymlsem.latent_class.model.build_lca_model` at its unconstrained point.

The per-model PyMC graph is the specification; the kernel equals its ``model.logp()`` and gradient
(tests/engine/test_latent_class_engine.py). A single-level model is the two-level one with one cluster
class and every person a cluster of one (``sum_m 1 * sum_k pi_k|1 p(y_i | k)``), so the kernel has one
form:

``log p(y) = sum_j LSE_m (log pi_m + sum_{i in j} LSE_k (log pi_k|m + l_ik))``,

``l_ik = sum_h log p(y_ih | k)``: the class's log-probability of each categorical answer (``answers``:
each row's one-hot column of every categorical item, the columns of
:class:`pymlsem.latent_class.data.CategoryGroup` side by side, -1 where missing) and the normal
log-density of each observed continuous item. With ``v_jm`` the posterior of cluster j's class and
``w_imk`` that of person i's class given it, ``d/d log pi_m = sum_j v_jm``,
``d/d log pi_k|m = sum_i v_j(i)m w_imk`` and ``d/d l_ik = r_ik = sum_m v_j(i)m w_imk``.

Every simplex (the proportions, each item's category probabilities in each class) is PyMC's ``simplex``
transform of its C - 1 elements of the point, ``p = softmax([z, -sum z])``, whose log-Jacobian is
``log C + sum_c log p_c``; under its Dirichlet(1, ..., 1) prior (density ``Gamma(C)``) it adds
``log Gamma(C) + log C + sum_c log p_c``. With ``G_c`` the derivative of the log-density in ``log p_c``,
the derivative in ``z_j`` is ``(G_j - p_j S) - (G_C - p_C S)``, ``S = sum_c G_c``. A continuous item's class
means have normal priors, its SD a half-normal one on PyMC's log transform (log-Jacobian ``log sigma``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pymlsem.engine.kernels import internal
from pymlsem.engine.kernels.parts import LOG_2PI, segment
from pymlsem.latent_class.model import MEAN_PRIOR_SD, SD_PRIOR_SD

__all__ = ["SEGMENTS", "expand", "logp_grad"]

#: the packed integer arrays: (K, M, continuous items, 1 for a multilevel model), each categorical group's
#: number of categories and of items
SEGMENTS = ("sizes", "group_categories", "group_items")
_SIZES, _CATEGORIES, _ITEMS = range(3)
_LOG_MEAN_SD = math.log(MEAN_PRIOR_SD)
_LOG_SD_SD = math.log(SD_PRIOR_SD)


@internal
def _simplex(z):
    """PyMC's simplex transform of ``z`` (C - 1 elements): ``log p`` (C) and the log of the prior times
    the Jacobian, ``log Gamma(C) + log C + sum log p``."""
    count = z.size + 1
    full = np.empty(count)
    total = 0.0
    for c in range(z.size):
        full[c] = z[c]
        total += z[c]
    full[count - 1] = -total
    top = full.max()
    norm = 0.0
    for c in range(count):
        norm += math.exp(full[c] - top)
    log_p = full - (top + math.log(norm))
    return log_p, math.lgamma(count) + math.log(count) + log_p.sum()


@internal
def _simplex_gradient(log_p, g_log_p, grad, start):
    """Add the gradient in the point's ``z`` of a simplex whose log-density gradient in ``log p`` is
    ``g_log_p`` (the Jacobian's ones included) at ``grad[start:]``."""
    count = log_p.size
    p = np.exp(log_p)
    total = g_log_p.sum()
    last = g_log_p[count - 1] - p[count - 1] * total
    for c in range(count - 1):
        grad[start + c] += g_log_p[c] - p[c] * total - last


@internal
def _unpack(x, ints, offsets):
    """Every parameter at ``x``: log pi_m (M), log pi_k|m (M x K), the categories' log-probabilities by
    one-hot column and class, the continuous items' class means and SDs; the prior (with Jacobians), and
    where each simplex starts in the point."""
    n_classes, n_cluster_classes, n_continuous, _ = segment(ints, offsets, _SIZES)
    categories = segment(ints, offsets, _CATEGORIES)
    items = segment(ints, offsets, _ITEMS)
    log_prior = 0.0
    pos = 0
    log_cluster, term = _simplex(x[pos : pos + n_cluster_classes - 1])
    log_prior += term
    pos += n_cluster_classes - 1
    log_class = np.empty((n_cluster_classes, n_classes))
    for m in range(n_cluster_classes):
        log_class[m], term = _simplex(x[pos : pos + n_classes - 1])
        log_prior += term
        pos += n_classes - 1
    columns = 0
    for g in range(categories.size):
        columns += items[g] * categories[g]
    log_item = np.empty((columns, n_classes))
    column = 0
    for g in range(categories.size):
        count = categories[g]
        for _ in range(items[g]):
            for k in range(n_classes):
                log_p, term = _simplex(x[pos : pos + count - 1])
                log_prior += term
                pos += count - 1
                for c in range(count):
                    log_item[column + c, k] = log_p[c]
            column += count
    means = x[pos : pos + n_continuous * n_classes].reshape((n_continuous, n_classes))
    pos += n_continuous * n_classes
    sds = np.exp(x[pos : pos + n_continuous])
    for h in range(n_continuous):
        for k in range(n_classes):
            log_prior += -0.5 * (means[h, k] / MEAN_PRIOR_SD) ** 2 - _LOG_MEAN_SD - 0.5 * LOG_2PI
        # half-normal at sigma, and the log transform's Jacobian log sigma
        log_prior += 0.5 * math.log(2.0 / math.pi) - _LOG_SD_SD - 0.5 * (sds[h] / SD_PRIOR_SD) ** 2
        log_prior += x[pos + h]
    return log_cluster, log_class, log_item, means, sds, log_prior


@numba.njit(cache=False, inline="always")  # inlined: a call per cluster costs more than its arithmetic
def _softmax(values, weights):
    """``log sum exp(values)``, and ``weights`` set to ``softmax(values)`` (one exp per value)."""
    top = -np.inf
    for c in range(values.size):
        top = max(top, values[c])
    total = 0.0
    for c in range(values.size):
        weights[c] = math.exp(values[c] - top)
        total += weights[c]
    for c in range(values.size):
        weights[c] /= total
    return top + math.log(total)


@internal
def logp_grad(x, hyper, ints, offsets, answers, values, observed, cluster):
    """Log-density of the family at the unconstrained point ``x`` and its gradient.

    The arguments are the family's inputs in order (:func:`pymlsem.engine.latent_class.family_inputs`).
    """
    n_classes, n_cluster_classes, n_continuous, _ = segment(ints, offsets, _SIZES)
    categories = segment(ints, offsets, _CATEGORIES)
    items = segment(ints, offsets, _ITEMS)
    log_cluster, log_class, log_item, means, sds, log_prior = _unpack(x, ints, offsets)
    n_rows, n_items = answers.shape
    n_clusters = cluster.max() + 1
    person = np.zeros((n_rows, n_classes))  # l_ik
    for i in range(n_rows):
        for h in range(n_items):
            col = answers[i, h]
            if col >= 0:
                for k in range(n_classes):
                    person[i, k] += log_item[col, k]
        for h in range(n_continuous):
            if observed[i, h] != 0.0:
                for k in range(n_classes):
                    z = (values[i, h] - means[h, k]) / sds[h]
                    person[i, k] += -0.5 * z * z - math.log(sds[h]) - 0.5 * LOG_2PI
    # w_imk and A_im = LSE_k(log pi_k|m + l_ik), summed by cluster
    within = np.empty((n_rows, n_cluster_classes, n_classes))
    summed = np.zeros((n_clusters, n_cluster_classes))
    for i in range(n_rows):  # written out: views within[i, m] for a helper cost 4x the arithmetic
        for m in range(n_cluster_classes):
            top = -np.inf
            for k in range(n_classes):
                within[i, m, k] = log_class[m, k] + person[i, k]
                top = max(top, within[i, m, k])
            total = 0.0
            for k in range(n_classes):
                within[i, m, k] = math.exp(within[i, m, k] - top)
                total += within[i, m, k]
            for k in range(n_classes):
                within[i, m, k] /= total
            summed[cluster[i], m] += top + math.log(total)
    loglik = 0.0
    posterior = np.empty((n_clusters, n_cluster_classes))  # v_jm
    g_cluster = np.ones(n_cluster_classes)  # the Jacobian's ones
    cluster_terms = np.empty(n_cluster_classes)
    for j in range(n_clusters):
        for m in range(n_cluster_classes):
            cluster_terms[m] = log_cluster[m] + summed[j, m]
        loglik += _softmax(cluster_terms, posterior[j])
        for m in range(n_cluster_classes):
            g_cluster[m] += posterior[j, m]
    if not np.isfinite(loglik):
        return -np.inf, np.zeros(x.size)
    g_class = np.ones((n_cluster_classes, n_classes))
    g_item = np.ones(log_item.shape)
    g_means = np.zeros(means.shape)
    g_sds = np.zeros(n_continuous)
    responsibility = np.empty(n_classes)
    for i in range(n_rows):
        responsibility[:] = 0.0
        for m in range(n_cluster_classes):
            v = posterior[cluster[i], m]
            for k in range(n_classes):
                share = v * within[i, m, k]
                g_class[m, k] += share
                responsibility[k] += share
        for h in range(n_items):
            col = answers[i, h]
            if col >= 0:
                for k in range(n_classes):
                    g_item[col, k] += responsibility[k]
        for h in range(n_continuous):
            if observed[i, h] != 0.0:
                for k in range(n_classes):
                    z = (values[i, h] - means[h, k]) / sds[h]
                    g_means[h, k] += responsibility[k] * z / sds[h]
                    g_sds[h] += responsibility[k] * (z * z - 1.0)  # d/d log sigma
    grad = np.zeros(x.size)
    pos = 0
    _simplex_gradient(log_cluster, g_cluster, grad, pos)
    pos += n_cluster_classes - 1
    for m in range(n_cluster_classes):
        _simplex_gradient(log_class[m], g_class[m], grad, pos)
        pos += n_classes - 1
    column = 0
    for g in range(categories.size):
        count = categories[g]
        for _ in range(items[g]):
            for k in range(n_classes):
                _simplex_gradient(
                    log_item[column : column + count, k], g_item[column : column + count, k], grad, pos
                )
                pos += count - 1
            column += count
    for h in range(n_continuous):
        for k in range(n_classes):
            grad[pos] = g_means[h, k] - means[h, k] / MEAN_PRIOR_SD**2
            pos += 1
    for h in range(n_continuous):
        grad[pos] = g_sds[h] - (sds[h] / SD_PRIOR_SD) ** 2 + 1.0
        pos += 1
    return log_prior + loglik, grad


@internal
def expand(x, hyper, ints, offsets, answers, values, observed, cluster):
    """The expanded values at ``x``: the point itself, then the constrained parameters in the per-model
    variables' order and layout (pi_m, in a multilevel model; pi_k|m, M x K; each group's category
    probabilities, items x K x C; the continuous items' class means, items x K, and SDs)."""
    log_cluster, log_class, log_item, means, sds, _ = _unpack(x, ints, offsets)
    n_classes = log_class.shape[1]
    categories = segment(ints, offsets, _CATEGORIES)
    items = segment(ints, offsets, _ITEMS)
    item_probs = np.empty(log_item.size)
    out = 0
    column = 0
    for g in range(categories.size):
        count = categories[g]
        for _ in range(items[g]):
            for k in range(n_classes):
                for c in range(count):
                    item_probs[out] = math.exp(log_item[column + c, k])
                    out += 1
            column += count
    multilevel = segment(ints, offsets, _SIZES)[3] == 1  # a single-level model has no pi_m
    cluster_part = np.exp(log_cluster) if multilevel else np.zeros(0)
    parts = (x, cluster_part, np.exp(log_class).reshape(-1), item_probs, means.reshape(-1), sds)
    return (np.concatenate(parts),)
