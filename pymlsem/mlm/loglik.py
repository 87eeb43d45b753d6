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
* Several grouping factors, crossed or nested (``layout="dense"``): M is formed as one dense Q x Q matrix,
  Q = sum over factors of levels x effects. This is exact but costs O(Q^3) per evaluation: fine for a few
  thousand random effects, a documented fallback until a sparse Cholesky is wired in.

Covariances are factored by Cholesky, with triangular solves only (no explicit inverse); a covariance that
is not positive definite, or a residual SD that is not positive, gives ``-inf``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytensor.tensor as pt

from pymlsem.build.loglik import _cholesky
from pymlsem.mlm.stats import GaussianStats

__all__ = ["gaussian_marginal_loglik"]

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


def _unrolled_cholesky_terms(
    m: pt.TensorVariable, u: pt.TensorVariable, q: int
) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """Log-determinant of a batch of q x q positive definite M and ``|C^-1 u|^2``, written out entry by entry.

    For the few effects per cluster of a typical model (q <= :data:`UNROLL_MAX`), the Cholesky factor and the
    forward substitution are spelled out as element-wise operations on length-J vectors (one entry per
    cluster). The graph and its gradient are then plain element-wise arithmetic that PyTensor fuses into a
    few loops, which compiles and runs much faster than a batch of J tiny LAPACK calls. M = I + PSD, so the
    pivots are at least 1 and no positivity check is needed.
    """
    chol: dict[tuple[int, int], pt.TensorVariable] = {}
    for j in range(q):
        pivot = m[:, j, j] - sum((chol[j, k] ** 2 for k in range(j)), start=pt.zeros(()))
        chol[j, j] = pt.sqrt(pivot)
        for i in range(j + 1, q):
            off = m[:, i, j] - sum((chol[i, k] * chol[j, k] for k in range(j)), start=pt.zeros(()))
            chol[i, j] = off / chol[j, j]
    solved: list[pt.TensorVariable] = []
    for i in range(q):
        rest = u[:, i] - sum((chol[i, k] * solved[k] for k in range(i)), start=pt.zeros(()))
        solved.append(rest / chol[i, i])
    logdet = 2.0 * sum(pt.sum(pt.log(chol[j, j])) for j in range(q))
    return logdet, sum(pt.sum(v**2) for v in solved)


UNROLL_MAX = 6


def _clustered_terms(
    stats: GaussianStats, resid_zr: pt.TensorVariable, chol: pt.TensorVariable, s2: pt.TensorVariable
) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """Log-determinant of M and ``|C^-1 u|^2``, batched over clusters."""
    zz = pt.as_tensor_variable(stats.zz)
    q = sum(effects for _, effects in stats.sizes)  # all blocks of the one grouping factor side by side
    m = pt.eye(q)[None, :, :] + pt.matmul(pt.matmul(chol.T[None, :, :], zz), chol[None, :, :]) / s2
    u = pt.matmul(resid_zr, chol)  # row j: (L' Z_j' r_j)'
    if q <= UNROLL_MAX:
        return _unrolled_cholesky_terms(m, u, q)
    factor = pt.linalg.cholesky(m, lower=True)
    v = pt.linalg.solve_triangular(factor, u, lower=True, b_ndim=1)
    logdet = 2.0 * pt.sum(pt.log(pt.diagonal(factor, axis1=-2, axis2=-1)))
    return logdet, pt.sum(v**2)


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
    m = pt.eye(zz.shape[0]) + inner / s2
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
    if (covs is None) == (chols is None):
        raise ValueError("give exactly one of covs and chols")
    given = covs if covs is not None else chols
    if len(given) != len(stats.sizes):
        raise ValueError(f"{len(given)} covariance matrices for {len(stats.sizes)} random blocks")
    ok = pt.as_tensor_variable(np.True_)
    factors = []
    for matrix in given:
        if covs is not None:
            factor, _, positive = _cholesky(matrix)
            ok = ok & positive
        else:
            factor = pt.as_tensor_variable(matrix)
        factors.append(factor)

    sigma = pt.as_tensor_variable(sigma)
    ok = ok & (sigma > 0)
    s2 = pt.switch(sigma > 0, sigma**2, 1.0)
    if stats.n_fixed:
        beta = pt.as_tensor_variable(beta)
        xy, xx = pt.as_tensor_variable(stats.xy), pt.as_tensor_variable(stats.xx)
        rr = stats.yy - 2.0 * pt.dot(beta, xy) + pt.dot(beta, pt.dot(xx, beta))
        resid_zr = pt.as_tensor_variable(stats.zy) - pt.dot(pt.as_tensor_variable(stats.zx), beta)
    else:  # no fixed effects (y ~ 0 + ...): r = y
        rr = pt.as_tensor_variable(stats.yy)
        resid_zr = pt.as_tensor_variable(stats.zy)

    if stats.layout == "clustered":
        logdet_m, shrink = _clustered_terms(stats, resid_zr, _block_diag(factors), s2)
    else:
        logdet_m, shrink = _dense_terms(stats, resid_zr, factors, s2)
    n = stats.nobs
    value = -0.5 * (n * LOG_2PI + n * pt.log(s2) + logdet_m + rr / s2 - shrink / s2**2)
    return pt.switch(ok, value, -np.inf)
