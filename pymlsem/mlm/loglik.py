"""Exact Gaussian log-likelihood of a mixed model with the random effects integrated out.

``y ~ N(X b, Z G Z' + s^2 I)`` with G block diagonal: one ``q_k x q_k`` covariance ``G_k = L_k L_k'`` per
random block, repeated for each level of the block's grouping factor. Writing ``Lambda`` for the block
diagonal of the ``L_k`` (one copy per level), ``r = y - X b`` and ``M = I + Lambda' Z'Z Lambda / s^2``, the
matrix determinant lemma and the Woodbury identity give, with ``C C' = M`` (Cholesky)::

    log|V|     = n log s^2 + 2 sum log diag(C)
    r' V^-1 r  = r'r / s^2 - |C^-1 Lambda' Z'r|^2 / s^4

so nothing of size n x n is ever formed; only the cross products of :mod:`pymlsem.mlm.stats` enter.

* One grouping factor (``layout="clustered"``): M is block diagonal over clusters, so the Cholesky is a
  batch of J factorisations of size q x q (q = the number of effects per cluster, all blocks of that factor
  side by side).
* Nested grouping factors (``layout="nested"``, e.g. ``(1 | school/class)``): ordered lowest clusters
  first, M is block diagonal over the lowest clusters except for their ancestors' effects, so the effects
  are integrated out level by level (a recursive Woodbury: per lowest cluster, then per parent cluster
  with the reduced statistics, up to the top factor). This is M's exact Cholesky factorisation in that
  order, with no fill-in: O(J d^3) for J lowest clusters with d effects in their chain of clusters.
* Crossed grouping factors (``layout="crossed"``): the factor with the most effects (e.g. subjects) is
  integrated out cluster by cluster as above, each cluster coupled to all the other factors' Q_r effects
  (e.g. items), which are left in one dense Q_r x Q_r Schur complement: O(J q Q_r^2 + Q_r^3). When Q_r is
  large, :func:`pymlsem.mlm.model.choose_method` samples the effects instead (``method="latent"``).
* Any grouping factors (``layout="dense"``): M is formed as one dense Q x Q matrix, Q = sum over factors of
  levels x effects: exact, O(Q^3) per evaluation; the reference the other layouts are checked against.

Covariances are factored by Cholesky, with triangular solves only (no explicit inverse); a covariance that
is not positive definite, or a residual SD that is not positive, gives ``-inf``.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import numpy as np
import pytensor.tensor as pt

from pymlsem.build.loglik import guarded_cholesky, identity
from pymlsem.mlm.stats import GaussianStats

__all__ = ["gaussian_cluster_marginal_loglik", "gaussian_marginal_loglik"]

LOG_2PI = float(np.log(2.0 * np.pi))

TensorLike = Any  # a PyTensor variable, a numpy array or a Python number


def _block_diag(factors: Sequence[pt.TensorVariable]) -> pt.TensorVariable:
    return factors[0] if len(factors) == 1 else pt.linalg.block_diag(*factors)


def _scale_columns(
    matrix: pt.TensorVariable, factors: Sequence[pt.TensorVariable], sizes: Sequence[tuple[int, int]]
) -> pt.TensorVariable:
    """``matrix @ Lambda`` for the dense layout: each factor's level-by-level column chunk times its L."""
    parts, offset = [], 0
    for factor, (levels, q) in zip(factors, sizes, strict=True):
        chunk = matrix[..., offset : offset + levels * q]
        shaped = chunk.reshape((*chunk.shape[:-1], levels, q))
        parts.append(pt.matmul(shaped, factor).reshape(chunk.shape))
        offset += levels * q
    return pt.concatenate(parts, axis=-1)


UNROLL_MAX = 6


def _own_factor_unrolled(
    m_oo: pt.TensorVariable, m_oa: pt.TensorVariable | None, u_o: pt.TensorVariable, own: int
) -> tuple[pt.TensorVariable, pt.TensorVariable, list[pt.TensorVariable], list[pt.TensorVariable]]:
    """:func:`_own_factor` written out entry by entry on vectors with one entry per cluster.

    For the few effects per cluster of a typical model, the Cholesky factor and the forward substitutions
    are spelled out as element-wise operations: the graph and its gradient are plain element-wise
    arithmetic that PyTensor fuses into a few loops, which compiles and runs much faster than a batch of J
    tiny LAPACK calls. ``D = I + N_oo``, so the pivots are at least 1 and no positivity check is needed.
    """
    zero = pt.zeros(())
    chol: dict[tuple[int, int], pt.TensorVariable] = {}
    for j in range(own):
        pivot = 1.0 + m_oo[:, j, j] - sum((chol[j, k] ** 2 for k in range(j)), start=zero)
        chol[j, j] = pt.sqrt(pivot)
        for i in range(j + 1, own):
            off = m_oo[:, i, j] - sum((chol[i, k] * chol[j, k] for k in range(j)), start=zero)
            chol[i, j] = off / chol[j, j]

    def forward(rows: list[pt.TensorVariable], trailing: bool) -> list[pt.TensorVariable]:  # C^-1 rows
        def entry(i: int, k: int) -> pt.TensorVariable:
            return chol[i, k][:, None] if trailing else chol[i, k]

        solved: list[pt.TensorVariable] = []
        for i in range(own):
            rest = rows[i] - sum((entry(i, k) * solved[k] for k in range(i)), start=zero)
            solved.append(rest / entry(i, i))
        return solved

    v = forward([u_o[:, i] for i in range(own)], trailing=False)
    w = [] if m_oa is None else forward([m_oa[:, i, :] for i in range(own)], trailing=True)
    logdet = 2.0 * sum(pt.log(chol[j, j]) for j in range(own))
    return logdet, sum(value**2 for value in v), w, v


def _own_factor(
    m_oo: pt.TensorVariable, m_oa: pt.TensorVariable | None, u_o: pt.TensorVariable, own: int | TensorLike
) -> tuple[pt.TensorVariable, pt.TensorVariable, Any, Any]:
    """Integrate out the own effects of a batch of J clusters, keeping the effects they are coupled to.

    Cluster j's own effects have ``N_oo`` (own x own: the scaled cross products ``Lambda' Z_j'Z_j Lambda /
    s^2`` of its rows), ``N_oa`` (own x a: with the a effects they are coupled to, e.g. those of the
    clusters above it) and ``u_o``. With ``D = I + N_oo = C C'`` (Cholesky), ``W = C^-1 N_oa`` and
    ``v = C^-1 u_o``, block Gaussian elimination of the precision gives the cluster's own ``log|D|`` and
    ``|v|^2`` and leaves ``N_aa - W'W`` and ``u_a - W'v`` for the coupled effects (Schur complement).

    ``own`` is a number, or a symbolic one when it is known only at run time (the compiled engine, which
    serves models of any size).

    Returns
    -------
    tuple
        ``log|D|`` (J,), ``|v|^2`` (J,), W and v: for a number ``own``, the rows of W (own tensors (J, a);
        none when ``m_oa`` is None) and the entries of v (own tensors (J,)); for a symbolic one, W (J, own,
        a; None when ``m_oa`` is None) and v (J, own).
    """
    static = isinstance(own, Integral)
    if static and own <= UNROLL_MAX:
        return _own_factor_unrolled(m_oo, m_oa, u_o, own)
    factor = pt.linalg.cholesky(identity(m_oo)[None] + m_oo, lower=True)
    v = pt.linalg.solve_triangular(factor, u_o, lower=True, b_ndim=1)
    logdet = 2.0 * pt.sum(pt.log(pt.diagonal(factor, axis1=-2, axis2=-1)), axis=-1)
    w = None if m_oa is None else pt.linalg.solve_triangular(factor, m_oa, lower=True, b_ndim=2)
    if not static:
        return logdet, pt.sum(v**2, axis=-1), w, v
    rows = [] if w is None else [w[:, i, :] for i in range(own)]
    return logdet, pt.sum(v**2, axis=-1), rows, [v[:, i] for i in range(own)]


def _sum_into(values: pt.TensorVariable, index: TensorLike, n: int) -> pt.TensorVariable:
    """``out[g] = sum of values[j] over j with index[j] = g``, for g < n (rows summed into groups)."""
    return pt.inc_subtensor(pt.zeros((n, *values.shape[1:]))[index], values)


def _hierarchical_terms(
    stats: GaussianStats,
    resid_zr: pt.TensorVariable,
    chol: pt.TensorVariable,
    s2: pt.TensorVariable,
    per_cluster: bool = False,
) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """Log-determinant of M and ``|C^-1 u|^2`` for one factor or a chain of nested factors.

    M is the precision of the standardised random effects given y. Ordering the effects cluster by cluster
    from the lowest factor up, it is block diagonal over the lowest clusters apart from their ancestors'
    effects (one cluster per higher factor), so the effects are integrated out one level at a time
    (:func:`_own_factor`): the lowest clusters first, their Schur complements and reduced vectors summed
    into their parent clusters, and so on up to the top factor, whose clusters are independent. This is the
    exact Cholesky factorisation of M in that order (no fill-in), so the result equals the dense
    computation; one grouping factor is the one-level case. With ``per_cluster`` each top-level cluster's
    share (its own terms and its descendants'), shape (J_0,) each; they sum to the totals.
    """
    zz = pt.as_tensor_variable(stats.zz)
    m = pt.matmul(pt.matmul(chol.T[None, :, :], zz), chol[None, :, :]) / s2  # Lambda' Z_j'Z_j Lambda / s^2
    u = pt.matmul(resid_zr, chol)  # row j: (Lambda' Z_j'r_j)'
    d = sum(stats.level_effects)
    logdet, quad = pt.zeros(()), pt.zeros(())
    for level in reversed(range(len(stats.level_effects))):
        own = stats.level_effects[level]
        anc = d - own
        m_oa = m[:, anc:, :anc] if level else None
        level_logdet, level_quad, w, v = _own_factor(m[:, anc:, anc:], m_oa, u[:, anc:], own)
        if per_cluster:  # this level's clusters, with what their descendants carried up
            logdet, quad = logdet + level_logdet, quad + level_quad
        else:
            logdet, quad = logdet + pt.sum(level_logdet), quad + pt.sum(level_quad)
        if level and isinstance(own, Integral):
            schur = m[:, :anc, :anc] - sum(row[:, :, None] * row[:, None, :] for row in w)
            reduced = u[:, :anc] - sum(row * value[:, None] for row, value in zip(w, v, strict=True))
        elif level:  # sizes known at run time: W and v as matrices
            w_t = pt.swapaxes(w, -1, -2)
            schur = m[:, :anc, :anc] - pt.matmul(w_t, w)
            reduced = u[:, :anc] - pt.matmul(w_t, v[:, :, None])[:, :, 0]
        if level:
            parent, n_parent = stats.parents[level - 1], stats.level_sizes[level - 1]
            m, u = _sum_into(schur, parent, n_parent), _sum_into(reduced, parent, n_parent)
            if per_cluster:
                logdet, quad = _sum_into(logdet, parent, n_parent), _sum_into(quad, parent, n_parent)
        d = anc
    return logdet, quad


def _crossed_terms(
    stats: GaussianStats,
    resid_zr: pt.TensorVariable,
    beta: pt.TensorVariable | None,
    factors: Sequence[pt.TensorVariable],
    s2: pt.TensorVariable,
) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """Log-determinant of M and ``|C^-1 u|^2`` for crossed factors, one integrated out cluster by cluster.

    Ordering first the effects of the factor with the most of them (e.g. subjects), cluster by cluster, then
    the others' Q_r effects (e.g. items), M's first block is block diagonal over the clusters: each cluster's
    effects are integrated out (:func:`_own_factor`, coupled to all Q_r others), and the Schur complement
    left for the others, ``I + N_rr - sum_j W_j'W_j``, is one dense Q_r x Q_r matrix. Its Cholesky factor
    completes M's exactly, at O(J q Q_r^2 + Q_r^3) instead of O((J q + Q_r)^3).
    """
    own_lam = _block_diag([factors[k] for k in stats.columns])
    rest_lambda = getattr(stats, "rest_lambda", None)
    if rest_lambda is None:
        rest_factors = [factors[k] for k in stats.rest]
        rest_sizes = [stats.sizes[k] for k in stats.rest]

        def scale(matrix: pt.TensorVariable) -> pt.TensorVariable:  # matrix @ Lambda_r, block by block
            return _scale_columns(matrix, rest_factors, rest_sizes)

    else:  # the compiled engine: Lambda_r as one dense matrix, its size known at run time only

        def scale(matrix: pt.TensorVariable) -> pt.TensorVariable:
            return pt.matmul(matrix, rest_lambda)

    zz, cross = pt.as_tensor_variable(stats.zz), pt.as_tensor_variable(stats.cross)
    rest_zz = pt.as_tensor_variable(stats.rest_zz)
    m_oo = pt.matmul(pt.matmul(own_lam.T[None, :, :], zz), own_lam[None, :, :]) / s2
    m_oa = pt.matmul(own_lam.T[None, :, :], scale(cross)) / s2
    m_aa = scale(scale(rest_zz).T) / s2
    rest_r = pt.as_tensor_variable(stats.rest_zy)
    if beta is not None:
        rest_r = rest_r - pt.dot(pt.as_tensor_variable(stats.rest_zx), beta)
    own = stats.level_effects[0]
    logdet, quad, w, v = _own_factor(m_oo, m_oa, pt.matmul(resid_zr, own_lam), own)
    if isinstance(own, Integral):
        schur = identity(m_aa, 0) + m_aa - sum(pt.dot(row.T, row) for row in w)
        reduced = scale(rest_r) - sum(pt.dot(value, row) for row, value in zip(w, v, strict=True))
    else:  # W (J, own, Q_r) and v (J, own) as arrays
        schur = identity(m_aa, 0) + m_aa - pt.tensordot(w, w, axes=[[0, 1], [0, 1]])
        reduced = scale(rest_r) - pt.tensordot(w, v, axes=[[0, 1], [0, 1]])
    factor = pt.linalg.cholesky(schur, lower=True)
    solved = pt.linalg.solve_triangular(factor, reduced, lower=True, b_ndim=1)
    logdet_rest = 2.0 * pt.sum(pt.log(pt.diagonal(factor)))
    return pt.sum(logdet) + logdet_rest, pt.sum(quad) + pt.sum(solved**2)


def _dense_terms(
    stats: GaussianStats,
    resid_zr: pt.TensorVariable,
    factors: Sequence[pt.TensorVariable],
    s2: pt.TensorVariable,
) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """Log-determinant of M and ``|C^-1 u|^2`` with M one dense Q x Q matrix."""
    zz = pt.as_tensor_variable(stats.zz)
    zz_lambda = _scale_columns(zz, factors, stats.sizes)  # Z'Z Lambda
    inner = _scale_columns(zz_lambda.T, factors, stats.sizes)  # Lambda' Z'Z Lambda
    m = identity(zz, 0) + inner / s2
    factor = pt.linalg.cholesky(m, lower=True)
    u = _scale_columns(resid_zr, factors, stats.sizes)
    v = pt.linalg.solve_triangular(factor, u, lower=True, b_ndim=1)
    logdet = 2.0 * pt.sum(pt.log(pt.diagonal(factor)))
    return logdet, pt.sum(v**2)


def gaussian_marginal_loglik(
    stats: GaussianStats,
    beta: TensorLike,
    sigma: TensorLike,
    covs: Sequence[TensorLike] | None = None,
    *,
    chols: Sequence[TensorLike] | None = None,
) -> pt.TensorVariable:
    """Log-density of y under ``N(X beta, Z G Z' + sigma^2 I)``, random effects integrated out.

    Parameters
    ----------
    stats
        Cross products from :func:`pymlsem.mlm.stats.gaussian_stats`.
    beta
        Fixed effects, shape (p,), in the order of the design's ``fixed_names``.
    sigma
        Residual standard deviation.
    covs
        One covariance matrix per random block (q_k x q_k, in the block's ``names`` order; diagonal for an
        uncorrelated ``||`` block). Give either ``covs`` or ``chols``.
    chols
        Lower Cholesky factors of those covariances (e.g. from ``pm.LKJCholeskyCov``), used as given.

    Returns
    -------
    TensorVariable
        Scalar log-likelihood; ``-inf`` when a covariance is not positive definite or ``sigma <= 0``.

    Raises
    ------
    ValueError
        When neither or both of ``covs`` and ``chols`` are given, or their number does not match the blocks.
    """
    factors, ok, s2, resid_zr = _prepare(stats, beta, sigma, covs, chols)
    rr = _residual_square(stats, beta if stats.n_fixed else None)
    if stats.hierarchical:
        lam = _block_diag([factors[k] for k in stats.columns])
        logdet_m, shrink = _hierarchical_terms(stats, resid_zr, lam, s2)
    elif stats.layout == "crossed":
        logdet_m, shrink = _crossed_terms(stats, resid_zr, beta if stats.n_fixed else None, factors, s2)
    else:
        logdet_m, shrink = _dense_terms(stats, resid_zr, factors, s2)
    return pt.switch(ok, _density(stats.nobs, s2, logdet_m, rr, shrink), -np.inf)


def gaussian_cluster_marginal_loglik(
    stats: GaussianStats,
    clusters: Any,
    beta: TensorLike,
    sigma: TensorLike,
    covs: Sequence[TensorLike] | None = None,
    *,
    chols: Sequence[TensorLike] | None = None,
) -> pt.TensorVariable:
    """The marginal log-density of each top-level cluster's responses (one grouping factor or nested ones).

    The terms whose sum is :func:`gaussian_marginal_loglik`: the top-level clusters are independent given
    the parameters, and each one's share of ``log|M|`` and of the quadratic form is its own and its
    descendants' (:func:`_hierarchical_terms` with ``per_cluster``).

    Parameters
    ----------
    stats
        Cross products of the ``"clustered"`` or ``"nested"`` layout.
    clusters
        Per top-level cluster, in the order of the top factor's levels: ``nobs`` (J,) rows, ``yy`` (J,),
        ``xy`` (J, p), ``xx`` (J, p, p) (``y'y``, ``X'y`` and ``X'X`` of its rows).
    beta, sigma, covs, chols
        As in :func:`gaussian_marginal_loglik`.

    Returns
    -------
    TensorVariable
        Shape (J,); all ``-inf`` when a covariance is not positive definite or ``sigma <= 0``.

    Raises
    ------
    ValueError
        Crossed grouping factors (their clusters are not independent), or the arguments of
        :func:`gaussian_marginal_loglik` do not match.
    """
    if not stats.hierarchical:
        raise ValueError("per-cluster values need one grouping factor or nested ones, not crossed factors")
    factors, ok, s2, resid_zr = _prepare(stats, beta, sigma, covs, chols)
    lam = _block_diag([factors[k] for k in stats.columns])
    logdet_m, shrink = _hierarchical_terms(stats, resid_zr, lam, s2, per_cluster=True)
    rr = _residual_square(clusters, beta if stats.n_fixed else None)
    return pt.switch(ok, _density(pt.as_tensor_variable(clusters.nobs), s2, logdet_m, rr, shrink), -np.inf)


def _prepare(stats, beta, sigma, covs, chols) -> tuple[list, pt.TensorVariable, pt.TensorVariable, Any]:
    """The blocks' Cholesky factors, whether the parameters are valid, ``sigma^2`` and ``Z'(y - X beta)``."""
    if (covs is None) == (chols is None):
        raise ValueError("give exactly one of covs and chols")
    given = covs if covs is not None else chols
    if len(given) != len(stats.sizes):
        raise ValueError(f"{len(given)} covariance matrices for {len(stats.sizes)} random blocks")
    ok = pt.as_tensor_variable(np.True_)
    factors = []
    for matrix in given:
        if covs is not None:
            factor, _, positive = guarded_cholesky(matrix)
            ok = ok & positive
        else:
            factor = pt.as_tensor_variable(matrix)
        factors.append(factor)

    sigma = pt.as_tensor_variable(sigma)
    ok = ok & (sigma > 0)
    s2 = pt.switch(sigma > 0, sigma**2, 1.0)
    resid_zr = pt.as_tensor_variable(stats.zy)
    if stats.n_fixed:
        resid_zr = resid_zr - pt.dot(pt.as_tensor_variable(stats.zx), pt.as_tensor_variable(beta))
    return factors, ok, s2, resid_zr


def _residual_square(products: Any, beta: TensorLike | None) -> pt.TensorVariable:
    """``r'r = y'y - 2 beta'X'y + beta'X'X beta`` from the products (``yy``, ``xy``, ``xx``), batched over
    their leading axes; ``y'y`` when ``beta`` is None (no fixed effects, y ~ 0 + ...: r = y)."""
    yy = pt.as_tensor_variable(products.yy)
    if beta is None:
        return yy
    beta = pt.as_tensor_variable(beta)
    xy, xx = pt.as_tensor_variable(products.xy), pt.as_tensor_variable(products.xx)
    return yy - 2.0 * pt.dot(xy, beta) + pt.sum(pt.dot(xx, beta) * beta, axis=-1)


def _density(n: TensorLike, s2, logdet_m, rr, shrink) -> pt.TensorVariable:
    """``-1/2 [n log 2pi s^2 + log|M| + r'r / s^2 - |C^-1 Lambda'Z'r|^2 / s^4]`` (module docstring)."""
    return -0.5 * (n * LOG_2PI + n * pt.log(s2) + logdet_m + rr / s2 - shrink / s2**2)
