"""Sufficient statistics of a Gaussian mixed model for the integrated log-likelihood.

Given ``r = y - X b``, the integrated log-likelihood (see :mod:`pymlsem.mlm.loglik`) needs only cross
products of y, X and the random-effects design Z, so they are computed once here and the log-likelihood's
cost does not depend on the number of rows.

* One grouping factor (every block has the same grouping factor): per-cluster products
  ``Z_j'Z_j``, ``Z_j'y_j``, ``Z_j'X_j`` with the blocks' columns side by side (``layout="clustered"``).
* Several grouping factors (crossed or nested): the products of the full sparse Z, stored dense, with
  Z's columns ordered factor by factor, and within a factor level by level (``layout="dense"``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from pymlsem.formula.design import MixedDesign

__all__ = ["GaussianStats", "gaussian_stats"]


@dataclasses.dataclass(frozen=True, eq=False)
class GaussianStats:
    """Cross products of a Gaussian mixed model.

    Attributes
    ----------
    layout
        ``"clustered"`` (one grouping factor) or ``"dense"`` (several).
    nobs
        Number of rows.
    n_fixed
        Number of fixed effects p (may be 0).
    yy, xy, xx
        ``y'y`` (scalar), ``X'y`` (p,), ``X'X`` (p, p).
    zz, zy, zx
        Clustered: ``Z_j'Z_j`` (J, q, q), ``Z_j'y_j`` (J, q), ``Z_j'X_j`` (J, q, p), with q the total number
        of effects per cluster. Dense: ``Z'Z`` (Q, Q), ``Z'y`` (Q,), ``Z'X`` (Q, p) with Q = sum of
        levels times effects over the factors.
    sizes
        For each block, ``(n_levels, q)``.
    groups
        For each block, the name of its grouping factor.

    The arrays (and ``nobs``) may be replaced by ``pm.Data`` containers with ``dataclasses.replace`` (as
    :func:`pymlsem.mlm.model.build_mixed_model` does); ``n_fixed``, ``sizes`` and ``layout`` are static.
    """

    layout: str
    nobs: int
    n_fixed: int
    yy: float
    xy: np.ndarray
    xx: np.ndarray
    zz: np.ndarray
    zy: np.ndarray
    zx: np.ndarray
    sizes: tuple[tuple[int, int], ...]
    groups: tuple[str, ...]


def _clustered(design: MixedDesign) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    codes = design.blocks[0].codes
    n_levels = design.blocks[0].n_levels
    z = np.hstack([block.z for block in design.blocks])
    q, p = z.shape[1], design.x.shape[1]
    zz = np.zeros((n_levels, q, q))
    zy = np.zeros((n_levels, q))
    zx = np.zeros((n_levels, q, p))
    np.add.at(zz, codes, z[:, :, None] * z[:, None, :])
    np.add.at(zy, codes, z * design.y[:, None])
    np.add.at(zx, codes, z[:, :, None] * design.x[:, None, :])
    return zz, zy, zx


def sparse_z(design: MixedDesign) -> sp.csr_matrix:
    """The full random-effects design matrix (n, Q): factor by factor, level by level, effect by effect."""
    parts = []
    for block in design.blocks:
        n, q = block.z.shape
        rows = np.repeat(np.arange(n), q)
        cols = (block.codes[:, None] * q + np.arange(q)[None, :]).reshape(-1)
        parts.append(sp.csr_matrix((block.z.reshape(-1), (rows, cols)), shape=(n, block.n_levels * q)))
    return sp.hstack(parts, format="csr")


def gaussian_stats(design: MixedDesign) -> GaussianStats:
    """Compute the cross products that :func:`pymlsem.mlm.loglik.gaussian_marginal_loglik` needs.

    Parameters
    ----------
    design
        A design from :func:`pymlsem.formula.mixed_design` with at least one random block.

    Returns
    -------
    GaussianStats
        Clustered layout when every block has the same grouping factor, dense layout otherwise.

    Raises
    ------
    ValueError
        When the design has no random blocks.
    """
    if not design.blocks:
        raise ValueError("the design has no random-effect blocks")
    y, x = design.y, design.x
    groups = tuple(block.group for block in design.blocks)
    sizes = tuple((block.n_levels, block.q) for block in design.blocks)
    if len(set(groups)) == 1:
        layout = "clustered"
        zz, zy, zx = _clustered(design)
    else:
        layout = "dense"
        z = sparse_z(design)
        zz = np.asarray((z.T @ z).toarray())
        zy = np.asarray(z.T @ y)
        zx = np.asarray(z.T @ x)
    return GaussianStats(
        layout=layout,
        nobs=int(y.shape[0]),
        n_fixed=int(x.shape[1]),
        yy=float(y @ y),
        xy=x.T @ y,
        xx=x.T @ x,
        zz=zz,
        zy=zy,
        zx=zx,
        sizes=sizes,
        groups=groups,
    )
