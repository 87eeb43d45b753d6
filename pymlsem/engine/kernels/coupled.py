"""The Gaussian mixed-model families whose clusters are coupled to other effects, with the default priors:
nested grouping factors (``mixed2``) and crossed ones (``mixed_crossed``), as hand-written numba kernels.

The family graphs (:func:`pymlsem.engine.mixed.family_graph`) written by hand over the same inputs, with
their gradients, and tested against the graphs (tests/engine/test_kernels.py) and against every such model's
own PyMC graph (tests/engine/test_engine.py). The parameters before the likelihood and the chain rule after
it are :mod:`pymlsem.engine.kernels.mixed1`'s.

With ``M = I + K / s^2`` the precision of the standardised effects given y (``K = Lambda'Z'Z Lambda``) and
``u = Lambda'Z'(y - X b)``, the likelihood needs ``f = log|M| - u'M^-1 u / s^4``
(:mod:`pymlsem.mlm.loglik`). Each cluster of the lowest factor (a class; a crossed model's subject) has
its own effects ``o``, coupled to others ``c`` (its school's; every item's). Eliminating the own effects
(``D = I + K_oo / s^2``, ``B = D^-1 K_oc / s^2``, ``b = D^-1 u_o``) leaves the Schur complement
``S = I + K_cc / s^2 - sum (K_co / s^2) B`` and ``r = u_c - sum (K_co / s^2) b`` for the coupled effects,
so ``log|M| = sum log|D| + log|S|`` and ``u'M^-1 u = sum u_o'b + r'S^-1 r``.

The gradient is that of :mod:`pymlsem.engine.kernels.mixed1`, ``df = tr(G dM) - 2 a'du / s^4 + ...`` with
``a = M^-1 u`` and ``G = M^-1 + a a' / s^4``, and needs only the blocks of ``M^-1`` where K has entries
(selected inversion, from the same factors)::

    a_c = S^-1 r              a_o = b - B a_c
    M^-1_cc = S^-1            M^-1_oc = -B S^-1        M^-1_oo = D^-1 + B S^-1 B'

so the reverse pass costs what the forward one does, O(J d^3) for nested factors and O(J q Q_r^2 + Q_r^3)
for crossed ones (Q_r: the coupled effects).
"""

from __future__ import annotations

import numba
import numpy as np

from pymlsem.engine.kernels import mixed1
from pymlsem.engine.kernels.parts import cholesky_inverse, segment

__all__ = [
    "CROSSED_SEGMENTS",
    "NESTED_SEGMENTS",
    "crossed_expand",
    "crossed_logp_grad",
    "nested_expand",
    "nested_logp_grad",
]

#: the packed integer arrays of ``mixed2`` (:func:`pymlsem.engine.mixed._segments`)
NESTED_SEGMENTS = (*mixed1.SEGMENTS, "parent1")
#: and of ``mixed_crossed``
CROSSED_SEGMENTS = (*mixed1.SEGMENTS, "rest_source")
_LEVEL_EFFECTS = mixed1.SEGMENTS.index("level_effects")
_LEVEL_SIZES = mixed1.SEGMENTS.index("level_sizes")
_LAST = len(mixed1.SEGMENTS)  # parent1 (nested) or rest_source (crossed)


@numba.njit(cache=False)
def _mm(a, b):
    """``a @ b`` by loops: the matrices here are small, where a BLAS call costs more than the products."""
    out = np.zeros((a.shape[0], b.shape[1]))
    for i in range(a.shape[0]):
        for m in range(a.shape[1]):
            left = a[i, m]
            for j in range(b.shape[1]):
                out[i, j] += left * b[m, j]
    return out


@numba.njit(cache=False)
def _mv(a, v):
    """``a @ v`` by loops (see :func:`_mm`)."""
    out = np.zeros(a.shape[0])
    for i in range(a.shape[0]):
        total = 0.0
        for m in range(a.shape[1]):
            total += a[i, m] * v[m]
        out[i] = total
    return out


@numba.njit(cache=False)
def _eliminate(k_oo, k_oc, u_o, s2):
    """Integrate out a cluster's own effects: ``(ok, log|D|, D^-1, B, b)`` (module docstring)."""
    ok, logdet, d_inv = cholesky_inverse(np.eye(u_o.size) + k_oo / s2)
    return ok, logdet, d_inv, _mm(d_inv, k_oc) / s2, _mv(d_inv, u_o)


@numba.njit(cache=False)
def _own_blocks(d_inv, coupling, solved, s_inv, a_c, s4):
    """A cluster's ``a_o`` and its blocks of ``G = M^-1 + a a' / s^4``: ``(a_o, G_oo, G_oc)``."""
    a_o = solved - _mv(coupling, a_c)
    b_s = _mm(coupling, s_inv)
    g_oo = d_inv + _mm(b_s, coupling.T) + np.outer(a_o, a_o) / s4
    return a_o, g_oo, np.outer(a_o, a_c) / s4 - b_s


@numba.njit(cache=False)
def _nested(fixef, sigma, factor, yy, xy, xx, zz, zy, zx, nobs, top_effects, n_top, parent):
    """The marginal log-likelihood of two nested factors and its gradient (:func:`mixed1.marginal`).

    Per lowest cluster ``j`` (a class), the products of its rows ``zz[j]`` (d x d, d = the top factor's
    effects then its own), ``zy[j]`` and ``zx[j]``; ``parent[j]``: its top cluster (school).
    """
    n_low, d = zy.shape
    qc = top_effects
    s2 = sigma * sigma
    s4 = s2 * s2
    schur = np.zeros((n_top, qc, qc))
    reduced = np.zeros((n_top, qc))
    for s in range(n_top):
        schur[s] = np.eye(qc)
    g_all = np.empty((n_low, d))
    al_all = np.empty((n_low, d, d))
    k_all = np.empty((n_low, d, d))
    d_inv_all = np.empty((n_low, d - qc, d - qc))
    coupling_all = np.empty((n_low, d - qc, qc))
    solved_all = np.empty((n_low, d - qc))
    sum_f, quad = 0.0, 0.0
    for j in range(n_low):
        g = zy[j] - _mv(zx[j], fixef)
        al = _mm(zz[j], factor)
        k = _mm(factor.T, al)
        u = _mv(factor.T, g)
        k_co = np.ascontiguousarray(k[qc:, :qc])
        ok, logdet, d_inv, coupling, solved = _eliminate(
            np.ascontiguousarray(k[qc:, qc:]), k_co, np.ascontiguousarray(u[qc:]), s2
        )
        if not ok:
            return -np.inf, fixef, sigma, factor
        sum_f += logdet
        quad += np.sum(u[qc:] * solved)
        s = parent[j]
        schur[s] += (k[:qc, :qc] - _mm(k_co.T, coupling)) / s2
        reduced[s] += u[:qc] - _mv(k_co.T, solved) / s2
        g_all[j], al_all[j], k_all[j] = g, al, k
        d_inv_all[j], coupling_all[j], solved_all[j] = d_inv, coupling, solved
    s_inv = np.empty((n_top, qc, qc))
    a_top = np.empty((n_top, qc))
    for s in range(n_top):
        ok, logdet, inverse = cholesky_inverse(schur[s])
        if not ok:
            return -np.inf, fixef, sigma, factor
        s_inv[s] = inverse
        a_top[s] = _mv(s_inv[s], reduced[s])
        sum_f += logdet
        quad += np.sum(reduced[s] * a_top[s])
    sum_f -= quad / s4
    g_factor = np.zeros((d, d))
    g_fixef = np.zeros(fixef.size)
    trace = 0.0
    blocks = np.empty((d, d))
    a = np.empty(d)
    for j in range(n_low):
        s = parent[j]
        a_o, g_oo, g_oc = _own_blocks(d_inv_all[j], coupling_all[j], solved_all[j], s_inv[s], a_top[s], s4)
        a[:qc], a[qc:] = a_top[s], a_o
        blocks[:qc, :qc] = s_inv[s] + np.outer(a_top[s], a_top[s]) / s4
        blocks[qc:, qc:] = g_oo
        blocks[qc:, :qc] = g_oc
        blocks[:qc, qc:] = g_oc.T
        g_factor += 2.0 * _mm(al_all[j], blocks) / s2 - 2.0 * np.outer(g_all[j], a) / s4
        trace += np.sum(blocks * k_all[j])
        g_fixef += 2.0 * _mv(zx[j].T, _mv(factor, a)) / s4
    g_sigma_f = -2.0 * trace / (s2 * sigma) + 4.0 * quad / (s4 * sigma)
    return mixed1.marginal(fixef, sigma, yy, xy, xx, nobs, sum_f, g_fixef, g_sigma_f, g_factor)


@numba.njit(cache=False)
def _crossed(
    fixef, sigma, factor, yy, xy, xx, zz, zy, zx, nobs, rest_source, cross, rest_zz, rest_zy, rest_zx
):
    """The marginal log-likelihood of crossed factors and its gradient (:func:`mixed1.marginal`).

    Per cluster ``j`` of the factor integrated out cluster by cluster, the products ``zz[j]``, ``zy[j]``,
    ``zx[j]`` of its own effects and ``cross[j]`` with the other factors' Q_r effects, whose own products
    are ``rest_zz``, ``rest_zy``, ``rest_zx`` and whose covariance factor takes each entry from
    ``rest_source`` (0: a structural zero; else 1 + its place in ``factor``, row by row).
    """
    n_own, q = zy.shape
    n_rest = rest_zy.size
    s2 = sigma * sigma
    s4 = s2 * s2
    l_own = np.ascontiguousarray(factor[:q, :q])
    flat = factor.reshape(-1)
    lam = np.zeros(n_rest * n_rest)
    for k in range(lam.size):
        if rest_source[k] > 0:
            lam[k] = flat[rest_source[k] - 1]
    lam = lam.reshape((n_rest, n_rest))
    g_rest = rest_zy - _mv(rest_zx, fixef)
    zl_rest = _mm(rest_zz, lam)
    k_rest = _mm(lam.T, zl_rest)
    schur = np.eye(n_rest) + k_rest / s2
    reduced = _mv(lam.T, g_rest)
    g_all = np.empty((n_own, q))
    al_all = np.empty((n_own, q, q))
    k_all = np.empty((n_own, q, q))
    cl_all = np.empty((n_own, q, n_rest))
    k_co_all = np.empty((n_own, q, n_rest))
    d_inv_all = np.empty((n_own, q, q))
    coupling_all = np.empty((n_own, q, n_rest))
    solved_all = np.empty((n_own, q))
    sum_f, quad = 0.0, 0.0
    for j in range(n_own):
        g = zy[j] - _mv(zx[j], fixef)
        al = _mm(zz[j], l_own)
        k = _mm(l_own.T, al)
        cl = _mm(cross[j], lam)
        k_co = _mm(l_own.T, cl)
        u = _mv(l_own.T, g)
        ok, logdet, d_inv, coupling, solved = _eliminate(k, k_co, u, s2)
        if not ok:
            return -np.inf, fixef, sigma, factor
        sum_f += logdet
        quad += np.sum(u * solved)
        schur -= _mm(k_co.T, coupling) / s2
        reduced -= _mv(k_co.T, solved) / s2
        g_all[j], al_all[j], k_all[j], cl_all[j], k_co_all[j] = g, al, k, cl, k_co
        d_inv_all[j], coupling_all[j], solved_all[j] = d_inv, coupling, solved
    ok, logdet, s_inv = cholesky_inverse(schur)
    if not ok:
        return -np.inf, fixef, sigma, factor
    a_rest = _mv(s_inv, reduced)
    quad += np.sum(reduced * a_rest)
    sum_f += logdet - quad / s4
    g_own = np.zeros((q, q))
    g_lam = np.zeros((n_rest, n_rest))
    g_fixef = np.zeros(fixef.size)
    trace = 0.0
    for j in range(n_own):
        a_o, g_oo, g_oc = _own_blocks(d_inv_all[j], coupling_all[j], solved_all[j], s_inv, a_rest, s4)
        g_own += (
            2.0 * (_mm(al_all[j], g_oo) + _mm(cl_all[j], g_oc.T)) / s2 - 2.0 * np.outer(g_all[j], a_o) / s4
        )
        g_lam += 2.0 * _mm(cross[j].T, _mm(l_own, g_oc)) / s2
        trace += np.sum(g_oo * k_all[j]) + 2.0 * np.sum(g_oc * k_co_all[j])
        g_fixef += 2.0 * _mv(zx[j].T, _mv(l_own, a_o)) / s4
    g_cc = s_inv + np.outer(a_rest, a_rest) / s4
    g_lam += 2.0 * _mm(zl_rest, g_cc) / s2 - 2.0 * np.outer(g_rest, a_rest) / s4
    trace += np.sum(g_cc * k_rest)
    g_fixef += 2.0 * _mv(rest_zx.T, _mv(lam, a_rest)) / s4
    g_factor = np.zeros(factor.shape)
    g_factor[:q, :q] = g_own
    g_flat = g_factor.reshape(-1)
    g_lam_flat = g_lam.reshape(-1)
    for k in range(g_lam_flat.size):
        if rest_source[k] > 0:
            g_flat[rest_source[k] - 1] += g_lam_flat[k]
    g_sigma_f = -2.0 * trace / (s2 * sigma) + 4.0 * quad / (s4 * sigma)
    return mixed1.marginal(fixef, sigma, yy, xy, xx, nobs, sum_f, g_fixef, g_sigma_f, g_factor)


@numba.njit(cache=False)
def nested_logp_grad(x, hyper, ints, offsets, reals, real_offsets, yy, xy, xx, zz, zy, zx, nobs):
    """Log-density of ``mixed2`` at the unconstrained point ``x`` and its gradient.

    The arguments are the family's inputs in order (:func:`pymlsem.engine.mixed.family_inputs`).
    """
    log_prior, grad, _values, slope, fixef, sigma, sd, corr_factor = mixed1.parameters(
        x, hyper, ints, offsets, reals, real_offsets
    )
    factor = sd.reshape((-1, 1)) * corr_factor
    top_effects = segment(ints, offsets, _LEVEL_EFFECTS)[0]
    n_top = segment(ints, offsets, _LEVEL_SIZES)[0]
    parent = segment(ints, offsets, _LAST)
    likelihood = _nested(fixef, sigma, factor, yy, xy, xx, zz, zy, zx, nobs, top_effects, n_top, parent)
    state = (slope, sd, corr_factor)
    return mixed1.posterior(x, log_prior, grad, likelihood, state, ints, offsets, reals, real_offsets)


#: ``mixed2``'s expanded values are ``mixed1``'s (the same parameters, the same inputs)
nested_expand = mixed1.expand


@numba.njit(cache=False)
def crossed_logp_grad(
    x, hyper, ints, offsets, reals, real_offsets, yy, xy, xx, zz, zy, zx, nobs, cross, zz_r, zy_r, zx_r
):
    """Log-density of ``mixed_crossed`` at the unconstrained point ``x`` and its gradient.

    The arguments are the family's inputs in order (:func:`pymlsem.engine.mixed.family_inputs`): those of
    ``mixed1``, then the crossed products ``cross``, ``rest_zz``, ``rest_zy`` and ``rest_zx``.
    """
    log_prior, grad, _values, slope, fixef, sigma, sd, corr_factor = mixed1.parameters(
        x, hyper, ints, offsets, reals, real_offsets
    )
    factor = sd.reshape((-1, 1)) * corr_factor
    rest_source = segment(ints, offsets, _LAST)
    likelihood = _crossed(
        fixef, sigma, factor, yy, xy, xx, zz, zy, zx, nobs, rest_source, cross, zz_r, zy_r, zx_r
    )
    state = (slope, sd, corr_factor)
    return mixed1.posterior(x, log_prior, grad, likelihood, state, ints, offsets, reals, real_offsets)


@numba.njit(cache=False)
def crossed_expand(
    x, hyper, ints, offsets, reals, real_offsets, yy, xy, xx, zz, zy, zx, nobs, _cross, _zz_r, _zy_r, _zx_r
):
    """``mixed_crossed``'s expanded values: ``mixed1``'s (the crossed products are not read)."""
    return mixed1.expand(x, hyper, ints, offsets, reals, real_offsets, yy, xy, xx, zz, zy, zx, nobs)
