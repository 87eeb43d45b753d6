"""Sufficient statistics of a Gaussian mixed model for the integrated log-likelihood.

Given ``r = y - X b``, the integrated log-likelihood (see :mod:`pymlsem.mlm.loglik`) needs only cross
products of y, X and the random-effects design Z, so they are computed once here and the log-likelihood's
cost does not depend on the number of rows. Which products depends on how the grouping factors relate in
the data (:func:`grouping_hierarchy`):

* One grouping factor (``layout="clustered"``): per-cluster products ``Z_j'Z_j``, ``Z_j'y_j``, ``Z_j'X_j``
  with the blocks' columns side by side.
* Nested grouping factors (``layout="nested"``, e.g. ``(1 | school/class)``): every level of a lower factor
  lies in one level of the factor above it, so each cluster of the lowest factor sees exactly one level of
  every factor. The same per-cluster products are taken over the lowest factor's clusters, with the columns
  of *all* factors side by side, top level first, plus the map from each cluster to its parent cluster one
  level up.
* Crossed factors (``layout="crossed"``): the per-cluster products of the factor with the most random
  effects (as ``"clustered"``), its clusters' products with the other factors' columns ``Z_j'Z_rest``, and
  the dense products of those other columns (``Z_rest'Z_rest``, ``Z_rest'y``, ``Z_rest'X``).
* Any factors (``layout="dense"``, on request): the products of the full sparse Z, stored dense, with Z's
  columns ordered block by block, and within a block level by level (the reference for the others).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from pymlsem.formula.design import MixedDesign

__all__ = [
    "LAYOUTS",
    "GaussianStats",
    "GroupingHierarchy",
    "crossed_split",
    "gaussian_stats",
    "grouping_hierarchy",
    "sparse_z",
]

#: the layouts of :class:`GaussianStats`, with how the random effects are integrated out in each
LAYOUTS = {
    "clustered": "Woodbury per cluster",
    "nested": "nested Woodbury",
    "dense": "dense Cholesky",
    "crossed": "crossed factors, partial Woodbury",
}


@dataclasses.dataclass(frozen=True, eq=False)
class GroupingHierarchy:
    """Grouping factors that nest in one another, as found in the data.

    Attributes
    ----------
    factors
        The grouping factors, top level (fewest levels) first.
    blocks
        For each factor, the indices of its random blocks (formula order).
    codes
        For each factor, the level of each row.
    n_levels
        For each factor, its number of levels.
    parents
        For each factor below the top, the level of the factor above of each of its levels (so
        ``parents[l - 1][codes[l]] == codes[l - 1]`` row by row).
    """

    factors: tuple[str, ...]
    blocks: tuple[tuple[int, ...], ...]
    codes: tuple[np.ndarray, ...]
    n_levels: tuple[int, ...]
    parents: tuple[np.ndarray, ...]


def _parent_map(child: np.ndarray, n_child: int, parent: np.ndarray) -> np.ndarray | None:
    """The parent level of each child level, or None when some child level spans several parents."""
    mapping = np.zeros(n_child, dtype=np.int64)
    mapping[child] = parent
    return mapping if np.array_equal(mapping[child], parent) else None


def grouping_hierarchy(design: MixedDesign) -> GroupingHierarchy | None:
    """The grouping factors as a chain of nested factors, or None when some are crossed.

    Nesting is read from the data, not from the formula: ``(1 | school) + (1 | class)`` is nested when
    every class lies in one school, and ``(1 | school/class)`` always is. Factors are ordered by their
    number of levels; each one must nest in the one above it. One grouping factor is a chain of one.

    Parameters
    ----------
    design
        A design with at least one random block.

    Returns
    -------
    GroupingHierarchy or None
    """
    order: dict[str, list[int]] = {}
    for k, block in enumerate(design.blocks):
        order.setdefault(block.group, []).append(k)
    factors = sorted(
        order, key=lambda group: design.blocks[order[group][0]].n_levels
    )  # stable: ties keep order
    codes = tuple(design.blocks[order[f][0]].codes for f in factors)
    n_levels = tuple(design.blocks[order[f][0]].n_levels for f in factors)
    parents = []
    for level in range(1, len(factors)):
        mapping = _parent_map(codes[level], n_levels[level], codes[level - 1])
        if mapping is None:
            return None
        parents.append(mapping)
    return GroupingHierarchy(
        tuple(factors), tuple(tuple(order[f]) for f in factors), codes, n_levels, tuple(parents)
    )


@dataclasses.dataclass(frozen=True, eq=False)
class GaussianStats:
    """Cross products of a Gaussian mixed model.

    Attributes
    ----------
    layout
        ``"clustered"`` (one grouping factor), ``"nested"`` (a chain of nested factors), ``"dense"`` or
        ``"crossed"`` (crossed factors); see :data:`LAYOUTS`.
    nobs
        Number of rows.
    n_fixed
        Number of fixed effects p (may be 0).
    yy, xy, xx
        ``y'y`` (scalar), ``X'y`` (p,), ``X'X`` (p, p).
    zz, zy, zx
        Clustered and nested: ``Z_j'Z_j`` (J, d, d), ``Z_j'y_j`` (J, d), ``Z_j'X_j`` (J, d, p) over the J
        clusters of the lowest factor, with d the number of effects of all factors, columns in the order of
        ``columns``. Crossed: the same over the clusters of the factor integrated out cluster by cluster,
        with that factor's columns only. Dense: ``Z'Z`` (Q, Q), ``Z'y`` (Q,), ``Z'X`` (Q, p) with Q = sum
        of levels times effects over the blocks, in formula order.
    sizes
        For each block (formula order), ``(n_levels, q)``.
    groups
        For each block, the name of its grouping factor.
    columns
        Clustered, nested and crossed: the blocks in the order of the columns of ``zz`` (top-level factor
        first).
    level_effects
        Clustered and nested: the number of effects of each factor (all its blocks), top level first.
    level_sizes
        Clustered and nested: the number of clusters of each factor, top level first.
    parents
        Nested: for each factor below the top, the parent cluster of each of its clusters.
    rest
        Crossed: the blocks of the other factors (formula order), whose Q_r columns (block by block, level
        by level) are kept dense.
    cross, rest_zz, rest_zy, rest_zx
        Crossed: ``Z_j'Z_rest`` (J, q, Q_r) per cluster, ``Z_rest'Z_rest`` (Q_r, Q_r), ``Z_rest'y`` (Q_r,),
        ``Z_rest'X`` (Q_r, p).

    The arrays (and ``nobs``) may be replaced by ``pm.Data`` containers with ``dataclasses.replace`` (as
    :func:`pymlsem.mlm.model.build_mixed_model` does); ``n_fixed``, ``sizes``, ``layout`` and the
    ``level_*`` tuples are static.
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
    columns: tuple[int, ...] = ()
    level_effects: tuple[int, ...] = ()
    level_sizes: tuple[int, ...] = ()
    parents: tuple[np.ndarray, ...] = ()
    rest: tuple[int, ...] = ()
    cross: np.ndarray | None = None
    rest_zz: np.ndarray | None = None
    rest_zy: np.ndarray | None = None
    rest_zx: np.ndarray | None = None

    @property
    def hierarchical(self) -> bool:
        """True for the clustered and nested layouts (random effects integrated out level by level)."""
        return self.layout in ("clustered", "nested")


def _per_cluster(
    z: np.ndarray, codes: np.ndarray, n_levels: int, y: np.ndarray, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q, p = z.shape[1], x.shape[1]
    zz = np.zeros((n_levels, q, q))
    zy = np.zeros((n_levels, q))
    zx = np.zeros((n_levels, q, p))
    np.add.at(zz, codes, z[:, :, None] * z[:, None, :])
    np.add.at(zy, codes, z * y[:, None])
    np.add.at(zx, codes, z[:, :, None] * x[:, None, :])
    return zz, zy, zx


def sparse_z(design: MixedDesign, blocks: tuple[int, ...] | None = None) -> sp.csr_matrix:
    """The random-effects design matrix (n, Q): block by block, level by level, effect by effect.

    ``blocks`` picks some of the blocks (all by default), in the order given.
    """
    parts = []
    for k in range(len(design.blocks)) if blocks is None else blocks:
        block = design.blocks[k]
        n, q = block.z.shape
        rows = np.repeat(np.arange(n), q)
        cols = (block.codes[:, None] * q + np.arange(q)[None, :]).reshape(-1)
        parts.append(sp.csr_matrix((block.z.reshape(-1), (rows, cols)), shape=(n, block.n_levels * q)))
    return sp.hstack(parts, format="csr")


def _common_products(design: MixedDesign) -> dict:
    """The fields of :class:`GaussianStats` that every layout shares (rows, y'y, X'y, X'X, block sizes)."""
    y, x = design.y, design.x
    return {
        "nobs": int(y.shape[0]),
        "n_fixed": int(x.shape[1]),
        "yy": float(y @ y),
        "xy": x.T @ y,
        "xx": x.T @ x,
        "sizes": tuple((block.n_levels, block.q) for block in design.blocks),
        "groups": tuple(block.group for block in design.blocks),
    }


def crossed_split(design: MixedDesign) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The blocks of the factor with the most random effects (levels x effects) and those of the others.

    The first are integrated out cluster by cluster in the ``"crossed"`` layout; the others' Q_r effects
    stay together in one dense matrix of size Q_r.
    """
    effects: dict[str, int] = {}
    for block in design.blocks:
        effects[block.group] = effects.get(block.group, 0) + block.n_levels * block.q
    largest = max(effects, key=effects.__getitem__)
    own = tuple(k for k, block in enumerate(design.blocks) if block.group == largest)
    return own, tuple(k for k in range(len(design.blocks)) if k not in own)


def _crossed_stats(design: MixedDesign, common: dict) -> GaussianStats:
    own, rest = crossed_split(design)
    y, x = design.y, design.x
    block = design.blocks[own[0]]
    z = np.hstack([design.blocks[k].z for k in own])
    zz, zy, zx = _per_cluster(z, block.codes, block.n_levels, y, x)
    z_rest = sparse_z(design, rest)
    # Z_j'Z_rest for every cluster j at once: rows of Z_rest scaled by each own column, summed by cluster
    by_cluster = sp.csr_matrix(
        (np.ones(block.codes.size), (block.codes, np.arange(block.codes.size))),
        shape=(block.n_levels, y.size),
    )
    cross = np.stack(
        [np.asarray((by_cluster @ z_rest.multiply(z[:, [c]])).todense()) for c in range(z.shape[1])], axis=1
    )
    return GaussianStats(
        layout="crossed",
        zz=zz,
        zy=zy,
        zx=zx,
        columns=own,
        level_effects=(z.shape[1],),
        level_sizes=(block.n_levels,),
        rest=rest,
        cross=cross,
        rest_zz=np.asarray((z_rest.T @ z_rest).toarray()),
        rest_zy=np.asarray(z_rest.T @ y),
        rest_zx=np.asarray(z_rest.T @ x),
        **common,
    )


def gaussian_stats(design: MixedDesign, layout: str | None = None) -> GaussianStats:
    """Compute the cross products that :func:`pymlsem.mlm.loglik.gaussian_marginal_loglik` needs.

    Parameters
    ----------
    design
        A design from :func:`pymlsem.formula.mixed_design` with at least one random block.
    layout
        ``None`` (default): ``"clustered"`` for one grouping factor, ``"nested"`` when the factors nest in
        one another in the data, ``"crossed"`` otherwise (:func:`crossed_split` says which factor is
        integrated out cluster by cluster). ``"dense"`` forces the dense layout for any design (exact, but
        O(Q^3) per evaluation: the reference for the others).

    Returns
    -------
    GaussianStats

    Raises
    ------
    ValueError
        When the design has no random blocks, or the layout asked for does not fit the grouping factors.
    """
    if not design.blocks:
        raise ValueError("the design has no random-effect blocks")
    y, x = design.y, design.x
    hierarchy = grouping_hierarchy(design)
    automatic = "crossed" if hierarchy is None else ("clustered" if len(hierarchy.factors) == 1 else "nested")
    if layout is not None and layout != automatic and layout != "dense":
        raise ValueError(f"layout={layout!r} does not fit these grouping factors (they give {automatic!r})")
    layout = layout or automatic
    common = _common_products(design)
    if layout == "crossed":
        return _crossed_stats(design, common)
    if layout == "dense":
        z = sparse_z(design)
        return GaussianStats(
            layout=layout,
            zz=np.asarray((z.T @ z).toarray()),
            zy=np.asarray(z.T @ y),
            zx=np.asarray(z.T @ x),
            **common,
        )
    columns = tuple(k for blocks in hierarchy.blocks for k in blocks)
    z = np.hstack([design.blocks[k].z for k in columns])
    zz, zy, zx = _per_cluster(z, hierarchy.codes[-1], hierarchy.n_levels[-1], y, x)
    return GaussianStats(
        layout=layout,
        zz=zz,
        zy=zy,
        zx=zx,
        columns=columns,
        level_effects=tuple(sum(design.blocks[k].q for k in blocks) for blocks in hierarchy.blocks),
        level_sizes=hierarchy.n_levels,
        parents=hierarchy.parents,
        **common,
    )
