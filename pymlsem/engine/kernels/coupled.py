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

import numpy as np

from pymlsem.engine.kernels import internal, mixed1
from pymlsem.engine.kernels.linalg import dot, factor_inverse
from pymlsem.engine.kernels.parts import segment

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


@internal
def _add_product(out, a, b, scale):
    """``out += scale * a @ b`` by loops: the matrices here are small, where a BLAS call or a new array
    costs more than the products (every helper here writes into arrays allocated once per call)."""
    for i in range(a.shape[0]):
        for m in range(a.shape[1]):
            left = scale * a[i, m]
            for j in range(b.shape[1]):
                out[i, j] += left * b[m, j]


@internal
def _add_t_product(out, a, b, scale, lower=False):
    """``out += scale * a.T @ b`` (see :func:`_add_product`); only its lower triangle with ``lower``, where
    that product is symmetric."""
    for m in range(a.shape[0]):
        for i in range(a.shape[1]):
            left = scale * a[m, i]
            for j in range(i + 1 if lower else b.shape[1]):
                out[i, j] += left * b[m, j]


@internal
def _add_mv(out, a, v, scale):
    """``out += scale * a @ v``."""
    for i in range(a.shape[0]):
        total = 0.0
        for m in range(a.shape[1]):
            total += a[i, m] * v[m]
        out[i] += scale * total


@internal
def _add_t_mv(out, a, v, scale):
    """``out += scale * a.T @ v``."""
    for m in range(a.shape[0]):
        left = scale * v[m]
        for i in range(a.shape[1]):
            out[i] += left * a[m, i]


@internal
def _add_outer(out, v, w, scale):
    """``out += scale * v w'``."""
    for i in range(v.size):
        for j in range(w.size):
            out[i, j] += scale * v[i] * w[j]


@internal
def _inner(a, b):
    """``sum(a * b)`` of two matrices of one shape."""
    total = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            total += a[i, j] * b[i, j]
    return total


@internal
def _cluster_products(g, al, k, u, fixef, factor, zz, zy, zx, s2):
    """A cluster's ``g = Z'(y - X b)``, ``A L``, ``K / s^2 = L'A L / s^2`` and ``u = L'g`` (zeroed arrays)."""
    for r in range(g.size):
        g[r] = zy[r]
    _add_mv(g, zx, fixef, -1.0)
    _add_product(al, zz, factor, 1.0)
    _add_t_product(k, factor, al, 1.0 / s2)
    _add_t_mv(u, factor, g, 1.0)


@internal
def _eliminate(k_oo, k_oc, u_o, d, d_inv, coupling, solved):
    """Integrate out a cluster's own effects (``k`` scaled by ``1 / s^2``): ``D^-1``, ``B`` and ``b``
    written into the last three (zeroed) arrays; ``(ok, log|D|)``."""
    for r in range(d.shape[0]):
        for c in range(r + 1):
            d[r, c] = k_oo[r, c] + (1.0 if r == c else 0.0)
    ok, logdet = factor_inverse(d, d_inv)
    _add_product(coupling, d_inv, k_oc, 1.0)
    _add_mv(solved, d_inv, u_o, 1.0)
    return ok, logdet


@internal
def _own_blocks(g_oo, g_oc, a_o, b_s, d_inv, coupling, solved, s_inv, a_c, s4):
    """A cluster's ``a_o`` and its blocks of ``G = M^-1 + a a' / s^4`` written into ``a_o``, ``g_oo`` and
    ``g_oc`` (``b_s``: room for ``B S^-1``)."""
    for r in range(a_o.size):
        a_o[r] = solved[r]
    _add_mv(a_o, coupling, a_c, -1.0)
    b_s[:, :] = 0.0
    _add_product(b_s, coupling, s_inv, 1.0)
    for r in range(g_oo.shape[0]):
        for c in range(g_oo.shape[1]):
            g_oo[r, c] = d_inv[r, c]
    _add_outer(g_oo, a_o, a_o, 1.0 / s4)
    for r in range(g_oo.shape[0]):
        for c in range(g_oo.shape[1]):
            total = 0.0
            for m in range(b_s.shape[1]):
                total += b_s[r, m] * coupling[c, m]
            g_oo[r, c] += total
    g_oc[:, :] = 0.0
    _add_outer(g_oc, a_o, a_c, 1.0 / s4)
    for r in range(g_oc.shape[0]):
        for c in range(g_oc.shape[1]):
            g_oc[r, c] -= b_s[r, c]


@internal
def _nested(fixef, sigma, factor, yy, xy, xx, zz, zy, zx, nobs, top_effects, n_top, parent):
    """The marginal log-likelihood of two nested factors and its gradient (:func:`mixed1.marginal`).

    Per lowest cluster ``j`` (a class), the products of its rows ``zz[j]`` (d x d, d = the top factor's
    ``qc`` effects then its own ``qo``), ``zy[j]`` and ``zx[j]``; ``parent[j]``: its top cluster (school).
    Written entry by entry, as :func:`mixed1._loglik` is: a class has a few effects, and a helper called
    with each class's slices costs more than its arithmetic.
    """
    n_low, d = zy.shape
    p = fixef.size
    qc = top_effects
    qo = d - qc
    s2 = sigma * sigma
    s4 = s2 * s2
    schur = np.zeros((n_top, qc, qc))
    reduced = np.zeros((n_top, qc))
    for s in range(n_top):
        for r in range(qc):
            schur[s, r, r] = 1.0
    g = np.zeros((n_low, d))  # per class: Z'(y - X b), A L, K / s^2 = L'A L / s^2, D^-1, B, b
    al = np.zeros((n_low, d, d))
    k = np.zeros((n_low, d, d))
    d_inv = np.zeros((n_low, qo, qo))
    coupling = np.zeros((n_low, qo, qc))
    solved = np.zeros((n_low, qo))
    u = np.empty(d)
    d_own = np.empty((qo, qo))
    d_own_inv = np.empty((qo, qo))
    sum_f, quad = 0.0, 0.0
    for j in range(n_low):
        for r in range(d):
            total = zy[j, r]
            for t in range(p):
                total -= zx[j, r, t] * fixef[t]
            g[j, r] = total
            u[r] = 0.0
        for r in range(d):
            for m in range(d):
                left = zz[j, r, m]
                for c in range(d):
                    al[j, r, c] += left * factor[m, c]
        for m in range(d):
            for r in range(d):
                left = factor[m, r] / s2
                u[r] += factor[m, r] * g[j, m]
                for c in range(d):
                    k[j, r, c] += left * al[j, m, c]
        for r in range(qo):
            for c in range(r + 1):
                d_own[r, c] = k[j, qc + r, qc + c] + (1.0 if r == c else 0.0)
        ok, logdet = factor_inverse(d_own, d_own_inv)
        if not ok:
            return -np.inf, fixef, sigma, factor
        sum_f += logdet
        for r in range(qo):  # B = D^-1 K_oc / s^2, b = D^-1 u_o
            for c in range(qo):
                d_inv[j, r, c] = d_own_inv[r, c]
            for c in range(qc):
                total = 0.0
                for m in range(qo):
                    total += d_own_inv[r, m] * k[j, qc + m, c]
                coupling[j, r, c] = total
            total = 0.0
            for m in range(qo):
                total += d_own_inv[r, m] * u[qc + m]
            solved[j, r] = total
            quad += u[qc + r] * total
        s = parent[j]
        for r in range(qc):  # S += I + K_cc / s^2 - K_co B / s^2, r += u_c - K_co b / s^2
            total = u[r]
            for m in range(qo):
                total -= k[j, qc + m, r] * solved[j, m]
            reduced[s, r] += total
            for c in range(qc):
                total = k[j, r, c]
                for m in range(qo):
                    total -= k[j, qc + m, r] * coupling[j, m, c]
                schur[s, r, c] += total
    s_inv = np.zeros((n_top, qc, qc))
    a_top = np.zeros((n_top, qc))
    for s in range(n_top):
        ok, logdet = factor_inverse(schur[s], s_inv[s])
        if not ok:
            return -np.inf, fixef, sigma, factor
        sum_f += logdet
        for r in range(qc):
            total = 0.0
            for c in range(qc):
                total += s_inv[s, r, c] * reduced[s, c]
            a_top[s, r] = total
            quad += reduced[s, r] * total
    sum_f -= quad / s4
    g_factor = np.zeros((d, d))
    g_fixef = np.zeros(p)
    trace = 0.0
    blocks = np.empty((d, d))  # G = M^-1 + a a' / s^4 on the class's effects
    a = np.empty(d)
    b_s = np.empty((qo, qc))
    for j in range(n_low):
        s = parent[j]
        for r in range(qc):
            a[r] = a_top[s, r]
        for r in range(qo):  # a_o = b - B a_c, B S^-1
            total = solved[j, r]
            for c in range(qc):
                total -= coupling[j, r, c] * a_top[s, c]
                b_total = 0.0
                for m in range(qc):
                    b_total += coupling[j, r, m] * s_inv[s, m, c]
                b_s[r, c] = b_total
            a[qc + r] = total
        for r in range(qc):
            for c in range(qc):
                blocks[r, c] = s_inv[s, r, c] + a[r] * a[c] / s4
        for r in range(qo):
            for c in range(qc):  # G_oc = a_o a_c' / s^4 - B S^-1
                value = a[qc + r] * a[c] / s4 - b_s[r, c]
                blocks[qc + r, c] = value
                blocks[c, qc + r] = value
            for c in range(qo):  # G_oo = D^-1 + B S^-1 B' + a_o a_o' / s^4
                total = d_inv[j, r, c] + a[qc + r] * a[qc + c] / s4
                for m in range(qc):
                    total += b_s[r, m] * coupling[j, c, m]
                blocks[qc + r, qc + c] = total
        trace += mixed1.add_cluster_gradient(
            g_factor, g_fixef, al[j], blocks, g[j], a, k[j], factor, zx[j], s2, s4
        )
    g_sigma_f = -2.0 * trace / sigma + 4.0 * quad / (s4 * sigma)
    return mixed1.marginal(fixef, sigma, yy, xy, xx, nobs, sum_f, g_fixef, g_sigma_f, g_factor)


@internal
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
    lam = np.zeros((n_rest, n_rest))
    lam_flat = lam.reshape(-1)
    for k in range(lam_flat.size):
        if rest_source[k] > 0:
            lam_flat[k] = flat[rest_source[k] - 1]
    g_rest = rest_zy.copy()
    _add_mv(g_rest, rest_zx, fixef, -1.0)
    zl_rest = np.zeros((n_rest, n_rest))
    _add_product(zl_rest, rest_zz, lam, 1.0)
    k_rest = np.zeros((n_rest, n_rest))
    _add_t_product(k_rest, lam, zl_rest, 1.0 / s2)
    schur = k_rest.copy()
    for r in range(n_rest):
        schur[r, r] += 1.0
    reduced = np.zeros(n_rest)
    _add_t_mv(reduced, lam, g_rest, 1.0)
    g_all = np.zeros((n_own, q))
    al_all = np.zeros((n_own, q, q))
    k_all = np.zeros((n_own, q, q))
    cl_all = np.zeros((n_own, q, n_rest))
    k_oc_all = np.zeros((n_own, q, n_rest))
    u = np.zeros(q)
    d_own = np.zeros((q, q))
    d_inv_all = np.zeros((n_own, q, q))
    coupling_all = np.zeros((n_own, q, n_rest))
    solved_all = np.zeros((n_own, q))
    sum_f, quad = 0.0, 0.0
    for j in range(n_own):
        for r in range(u.size):
            u[r] = 0.0
        _cluster_products(g_all[j], al_all[j], k_all[j], u, fixef, l_own, zz[j], zy[j], zx[j], s2)
        _add_product(cl_all[j], cross[j], lam, 1.0)
        _add_t_product(k_oc_all[j], l_own, cl_all[j], 1.0 / s2)
        ok, logdet = _eliminate(k_all[j], k_oc_all[j], u, d_own, d_inv_all[j], coupling_all[j], solved_all[j])
        if not ok:
            return -np.inf, fixef, sigma, factor
        sum_f += logdet
        quad += dot(u, solved_all[j])
        _add_t_product(schur, k_oc_all[j], coupling_all[j], -1.0, True)
        _add_t_mv(reduced, k_oc_all[j], solved_all[j], -1.0)
    s_inv = np.zeros((n_rest, n_rest))
    ok, logdet = factor_inverse(schur, s_inv)
    if not ok:
        return -np.inf, fixef, sigma, factor
    a_rest = np.zeros(n_rest)
    _add_mv(a_rest, s_inv, reduced, 1.0)
    quad += dot(reduced, a_rest)
    sum_f += logdet - quad / s4
    g_own = np.zeros((q, q))
    g_lam = np.zeros((n_rest, n_rest))
    g_fixef = np.zeros(fixef.size)
    trace = 0.0
    a_o = np.zeros(q)
    g_oo = np.zeros((q, q))
    g_oc = np.zeros((q, n_rest))
    b_s = np.zeros((q, n_rest))
    l_g_oc = np.zeros((q, n_rest))
    for j in range(n_own):
        _own_blocks(g_oo, g_oc, a_o, b_s, d_inv_all[j], coupling_all[j], solved_all[j], s_inv, a_rest, s4)
        trace += mixed1.add_cluster_gradient(
            g_own, g_fixef, al_all[j], g_oo, g_all[j], a_o, k_all[j], l_own, zx[j], s2, s4
        )
        for r in range(q):  # and the coupling's: 2 (C Lambda_r) G_oc' / s^2 in L_own, ...
            for c in range(q):
                g_own[r, c] += 2.0 * dot(cl_all[j, r], g_oc[c]) / s2
        l_g_oc[:, :] = 0.0  # ... 2 C'L_own G_oc / s^2 in Lambda_r (C: cross[j])
        _add_product(l_g_oc, l_own, g_oc, 1.0)
        _add_t_product(g_lam, cross[j], l_g_oc, 2.0 / s2)
        trace += 2.0 * _inner(g_oc, k_oc_all[j])
    g_cc = s_inv.copy()
    _add_outer(g_cc, a_rest, a_rest, 1.0 / s4)
    _add_product(g_lam, zl_rest, g_cc, 2.0 / s2)
    _add_outer(g_lam, g_rest, a_rest, -2.0 / s4)
    trace += _inner(g_cc, k_rest)
    la_rest = np.zeros(n_rest)
    _add_mv(la_rest, lam, a_rest, 1.0)
    _add_t_mv(g_fixef, rest_zx, la_rest, 2.0 / s4)
    g_factor = np.zeros(factor.shape)
    g_factor[:q, :q] = g_own
    g_flat = g_factor.reshape(-1)
    g_lam_flat = g_lam.reshape(-1)
    for k in range(g_lam_flat.size):
        if rest_source[k] > 0:
            g_flat[rest_source[k] - 1] += g_lam_flat[k]
    g_sigma_f = -2.0 * trace / sigma + 4.0 * quad / (s4 * sigma)
    return mixed1.marginal(fixef, sigma, yy, xy, xx, nobs, sum_f, g_fixef, g_sigma_f, g_factor)


@internal
def nested_logp_grad(x, hyper, ints, offsets, reals, real_offsets, yy, xy, xx, zz, zy, zx, nobs):
    """Log-density of ``mixed2`` at the unconstrained point ``x`` and its gradient.

    The arguments are the family's inputs in order (:func:`pymlsem.engine.mixed.family_inputs`).
    """
    log_prior, grad, values, slope, fixef, sigma, sd, corr_factor = mixed1.parameters(
        x, hyper, ints, offsets, reals, real_offsets
    )
    factor = sd.reshape((-1, 1)) * corr_factor
    top_effects = segment(ints, offsets, _LEVEL_EFFECTS)[0]
    n_top = segment(ints, offsets, _LEVEL_SIZES)[0]
    parent = segment(ints, offsets, _LAST)
    likelihood = _nested(fixef, sigma, factor, yy, xy, xx, zz, zy, zx, nobs, top_effects, n_top, parent)
    state = (slope, values, sd, corr_factor)
    return mixed1.posterior(x, log_prior, grad, likelihood, state, ints, offsets, reals, real_offsets)


#: ``mixed2``'s expanded values are ``mixed1``'s (the same parameters, the same inputs)
nested_expand = mixed1.expand


@internal
def crossed_logp_grad(
    x, hyper, ints, offsets, reals, real_offsets, yy, xy, xx, zz, zy, zx, nobs, cross, zz_r, zy_r, zx_r
):
    """Log-density of ``mixed_crossed`` at the unconstrained point ``x`` and its gradient.

    The arguments are the family's inputs in order (:func:`pymlsem.engine.mixed.family_inputs`): those of
    ``mixed1``, then the crossed products ``cross``, ``rest_zz``, ``rest_zy`` and ``rest_zx``.
    """
    log_prior, grad, values, slope, fixef, sigma, sd, corr_factor = mixed1.parameters(
        x, hyper, ints, offsets, reals, real_offsets
    )
    factor = sd.reshape((-1, 1)) * corr_factor
    rest_source = segment(ints, offsets, _LAST)
    likelihood = _crossed(
        fixef, sigma, factor, yy, xy, xx, zz, zy, zx, nobs, rest_source, cross, zz_r, zy_r, zx_r
    )
    state = (slope, values, sd, corr_factor)
    return mixed1.posterior(x, log_prior, grad, likelihood, state, ints, offsets, reals, real_offsets)


@internal
def crossed_expand(
    x, hyper, ints, offsets, reals, real_offsets, yy, xy, xx, zz, zy, zx, nobs, _cross, _zz_r, _zy_r, _zx_r
):
    """``mixed_crossed``'s expanded values: ``mixed1``'s (the crossed products are not read)."""
    return mixed1.expand(x, hyper, ints, offsets, reals, real_offsets, yy, xy, xx, zz, zy, zx, nobs)
