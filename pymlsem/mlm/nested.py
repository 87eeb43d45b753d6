"""Level-by-level integration of nested random effects, in numpy, batched over parameter draws.

The factorisation behind the marginal log-likelihood's graph (:mod:`pymlsem.mlm.loglik`) for the
``"clustered"`` and ``"nested"`` layouts of :mod:`pymlsem.mlm.stats`, for the tools that work on posterior
draws: cluster effects (:mod:`pymlsem.mlm.ranef`) and the leave-one-row-out terms of
:mod:`pymlsem.workflow.mixed_loglik`.

With ``Lambda`` the block diagonal of the block covariances' Cholesky factors, the standardised random
effects v (``u = Lambda v``) have precision ``M = I + Lambda' Z'Z Lambda / s^2`` given y. Each cluster of
the lowest factor sees one cluster of every factor above it (its ancestors), so ordered lowest clusters
first M needs no fill-in: the lowest clusters' own effects are eliminated first (Cholesky ``D = C C'`` of
their own block, ``W = C^-1 N_oa``, Schur complement ``N_aa - W'W`` summed into the parent cluster), then
their parents', up to the top factor. :func:`nested_solve` keeps every level's ``C``, ``W`` and ``C^-1 b``,
which give ``M^-1 b`` (and draws from ``N(M^-1 b, M^-1)``) by back substitution from the top down, and the
covariance of each lowest cluster's chain of effects (what a row's predictive variance needs). The
log-likelihood itself is the model's graph (:mod:`pymlsem.mlm.loglik`), not computed here.

Crossed factors (layout ``"crossed"``, :func:`crossed_solve`) are factored the same way with one level
below a single "cluster" that holds all the other factors' Q_r effects: each cluster of the largest factor
is eliminated with its coupling to all Q_r, whose Schur complement is one dense Q_r x Q_r matrix.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

from pymlsem.mlm.stats import GaussianStats

__all__ = [
    "CrossedSolve",
    "NestedSolve",
    "cluster_lambda",
    "crossed_solve",
    "lambda_and_rhs",
    "nested_solve",
    "rest_effects",
    "split_levels",
]


def _solve_lower(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``C^-1 rhs`` for lower triangular C (..., k, k) and rhs (..., k) or (..., k, m), batched."""
    if rhs.ndim == chol.ndim - 1:
        return np.linalg.solve(chol, rhs[..., None])[..., 0]
    return np.linalg.solve(chol, rhs)


def _solve_upper(chol: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``C'^-1 rhs`` for lower triangular C and rhs (..., k), batched."""
    return np.linalg.solve(np.swapaxes(chol, -1, -2), rhs[..., None])[..., 0]


def _sum_into(values: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """Sum values (S, J, ...) over the clusters that share an index: (S, n, ...)."""
    n_draws, n_clusters = values.shape[:2]
    indicator = sp.csr_matrix((np.ones(n_clusters), (index, np.arange(n_clusters))), shape=(n, n_clusters))
    flat = np.moveaxis(values, 1, 0).reshape(n_clusters, -1)
    return np.moveaxis((indicator @ flat).reshape(n, n_draws, *values.shape[2:]), 0, 1)


def cluster_lambda(stats: GaussianStats, factors: list[np.ndarray]) -> np.ndarray:
    """Block diagonal (S, d, d) of the blocks' Cholesky factors (S, q_k, q_k), in the order of the columns.

    Parameters
    ----------
    stats
        Statistics of the clustered or nested layout.
    factors
        One lower Cholesky factor per block, formula order.
    """
    ordered = [factors[k] for k in stats.columns]
    d = sum(f.shape[-1] for f in ordered)
    lam = np.zeros((ordered[0].shape[0], d, d))
    offset = 0
    for factor in ordered:
        width = factor.shape[-1]
        lam[:, offset : offset + width, offset : offset + width] = factor
        offset += width
    return lam


def lambda_and_rhs(
    stats: GaussianStats, beta: np.ndarray, s2: np.ndarray, factors: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``Lambda`` (S, d, d) and ``b = Lambda' Z_j'r_j / s^2`` per lowest cluster (S, J, d), r = y - X beta.

    For the clustered and nested layouts; ``beta`` (S, p), ``s2`` (S,), one Cholesky factor per block.
    """
    lam = cluster_lambda(stats, factors)
    zr = stats.zy[None] - np.einsum("jqp,sp->sjq", stats.zx, beta) if stats.n_fixed else stats.zy[None]
    zr = np.broadcast_to(zr, (lam.shape[0], *stats.zy.shape))
    return lam, np.einsum("sab,sja->sjb", lam, zr) / s2[:, None, None]


def split_levels(stats: GaussianStats, per_level: list[np.ndarray]) -> list[np.ndarray]:
    """Per-level arrays (S, J_l, q_l) split into per-block arrays (S, levels_k, q_k), formula order."""
    out: list[np.ndarray | None] = [None] * len(stats.sizes)
    columns = iter(stats.columns)
    for values in per_level:
        offset = 0
        while offset < values.shape[-1]:
            k = next(columns)
            width = stats.sizes[k][1]
            out[k] = values[..., offset : offset + width]
            offset += width
    return out


@dataclasses.dataclass(eq=False)
class NestedSolve:
    """The factorisation of M level by level, from :func:`nested_solve`.

    Attributes
    ----------
    stats
        The statistics it was computed from.
    chol
        Per level (top first), the Cholesky factor C of each cluster's own block, (S, J_l, q_l, q_l).
    w
        Per level, ``C^-1 N_oa`` (S, J_l, q_l, a_l), a_l the number of effects of the cluster's ancestors.
    v
        Per level, ``C^-1`` times the cluster's reduced right-hand side, (S, J_l, q_l).
    ancestors
        ``ancestors[l][m]``: the level-m cluster above each level-l cluster (m < l).
    """

    stats: GaussianStats
    chol: list[np.ndarray]
    w: list[np.ndarray]
    v: list[np.ndarray]
    ancestors: list[list[np.ndarray]]

    def _chain(self, level: int, values: list[np.ndarray]) -> np.ndarray:
        """The ancestors' values (S, J_l, a_l) of each level-l cluster, top level first."""
        return np.concatenate([values[m][:, self.ancestors[level][m]] for m in range(level)], axis=-1)

    def lowest_chains(self, values: list[np.ndarray]) -> np.ndarray:
        """Per-level values (S, J_l, q_l) gathered onto the chain of each lowest cluster, (S, J_L, d)."""
        lowest = len(values) - 1
        if not lowest:
            return values[0]
        return np.concatenate([self._chain(lowest, values), values[lowest]], axis=-1)

    def mean(self, rng: np.random.Generator | None = None) -> list[np.ndarray]:
        """``M^-1 b`` per level (S, J_l, q_l), or with ``rng`` one draw from ``N(M^-1 b, M^-1)``.

        Back substitution from the top down: a cluster's own effects given its ancestors' are normal with
        precision D and mean ``D^-1 (b_o - N_oa x_a)``, i.e. ``C'^-1 (C^-1 b_o - W x_a)``; a draw adds
        ``C'^-1 z`` with z standard normal.
        """
        out: list[np.ndarray] = []
        for level, (chol, w, v) in enumerate(zip(self.chol, self.w, self.v, strict=True)):
            rhs = v if not level else v - np.einsum("sjoa,sja->sjo", w, self._chain(level, out))
            if rng is not None:
                rhs = rhs + rng.standard_normal(rhs.shape)
            out.append(_solve_upper(chol, rhs))
        return out

    def chain_covariance(self) -> np.ndarray:
        """``M^-1`` restricted to each lowest cluster's chain of effects, (S, J_L, d, d), top level first.

        With ``K = D^-1 N_oa = C'^-1 W`` and ``S_a`` the covariance of the ancestors' effects, a cluster's
        own effects have covariance ``D^-1 + K S_a K'`` and covariance ``-K S_a`` with its ancestors'.
        """
        cov = None
        for level, (chol, w) in enumerate(zip(self.chol, self.w, strict=True)):
            own = chol.shape[-1]
            inv_chol = _solve_lower(chol, np.broadcast_to(np.eye(own), chol.shape))
            own_cov = np.swapaxes(inv_chol, -1, -2) @ inv_chol  # D^-1
            if not level:
                cov = own_cov
                continue
            above = cov[:, self.stats.parents[level - 1]]
            k = np.swapaxes(inv_chol, -1, -2) @ w  # C'^-1 W
            cross = -k @ above
            own_cov = own_cov - cross @ np.swapaxes(k, -1, -2)
            cov = np.concatenate(
                [
                    np.concatenate([above, np.swapaxes(cross, -1, -2)], axis=-1),
                    np.concatenate([cross, own_cov], axis=-1),
                ],
                axis=-2,
            )
        return cov


def nested_solve(stats: GaussianStats, lam: np.ndarray, s2: np.ndarray, b: np.ndarray) -> NestedSolve:
    """Factor ``M = I + Lambda' Z'Z Lambda / s^2`` level by level and reduce a right-hand side b.

    Parameters
    ----------
    stats
        Statistics of the clustered or nested layout (numpy arrays).
    lam
        Block diagonal of the Cholesky factors, (S, d, d) (:func:`cluster_lambda`).
    s2
        Residual variances, (S,).
    b
        Right-hand side per lowest cluster, (S, J_L, d) (e.g. ``Lambda' Z_j'r_j / s^2``).

    Returns
    -------
    NestedSolve
    """
    lam_t = np.swapaxes(lam, -1, -2)[:, None]
    m = lam_t @ stats.zz[None] @ lam[:, None] / s2[:, None, None, None]
    n_levels = len(stats.level_effects)
    chols, ws, vs = [None] * n_levels, [None] * n_levels, [None] * n_levels
    d = m.shape[-1]
    for level in reversed(range(n_levels)):
        anc = d - stats.level_effects[level]
        chol = np.linalg.cholesky(np.eye(d - anc) + m[..., anc:, anc:])
        w = _solve_lower(chol, m[..., anc:, :anc])
        v = _solve_lower(chol, b[..., anc:])
        chols[level], ws[level], vs[level] = chol, w, v
        if level:
            parent, n_parent = stats.parents[level - 1], stats.level_sizes[level - 1]
            w_t = np.swapaxes(w, -1, -2)
            m = _sum_into(m[..., :anc, :anc] - w_t @ w, parent, n_parent)
            b = _sum_into(b[..., :anc] - np.einsum("sjoa,sjo->sja", w, v), parent, n_parent)
        d = anc
    ancestors: list[list[np.ndarray]] = [[]]
    for level in range(1, n_levels):
        parent = stats.parents[level - 1]
        ancestors.append([above[parent] for above in ancestors[level - 1]] + [parent])
    return NestedSolve(stats, chols, ws, vs, ancestors)


def _scale_rest(values: np.ndarray, stats: GaussianStats, factors: list[np.ndarray]) -> np.ndarray:
    """``values @ Lambda_r`` over the last axis (the Q_r effects of the other factors), per draw.

    ``values`` (S, ..., Q_r); each rest block's chunk (levels x effects) is multiplied by its factor.
    """
    parts, offset = [], 0
    for k in stats.rest:
        levels, q = stats.sizes[k]
        chunk = values[..., offset : offset + levels * q]
        shaped = chunk.reshape(*chunk.shape[:-1], levels, q)
        scaled = np.einsum("s...na,sab->s...nb", shaped, factors[k])
        parts.append(scaled.reshape(chunk.shape))
        offset += levels * q
    return np.concatenate(parts, axis=-1)


@dataclasses.dataclass(eq=False)
class CrossedSolve:
    """M factored with the largest crossed factor first (layout ``"crossed"``), from :func:`crossed_solve`.

    Attributes
    ----------
    stats
        The statistics it was computed from.
    own_lambda
        Block diagonal of the largest factor's Cholesky factors, (S, q, q).
    chol, w, v
        Per cluster of the largest factor: the Cholesky factor C of ``I + N_oo`` (S, J, q, q),
        ``C^-1 N_or`` (S, J, q, Q_r) and ``C^-1 b_o`` (S, J, q).
    rest_chol, rest_v
        The Cholesky factor of the others' Schur complement (S, Q_r, Q_r) and its solve with their reduced
        right-hand side (S, Q_r).
    """

    stats: GaussianStats
    own_lambda: np.ndarray
    chol: np.ndarray
    w: np.ndarray
    v: np.ndarray
    rest_chol: np.ndarray
    rest_v: np.ndarray

    def mean(self, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``M^-1 b`` (or a draw from ``N(M^-1 b, M^-1)`` with ``rng``): own (S, J, q), others' (S, Q_r).

        The others' effects first (precision: the Schur complement), then each cluster's given them.
        """
        rest = self.rest_v if rng is None else self.rest_v + rng.standard_normal(self.rest_v.shape)
        rest = _solve_upper(self.rest_chol, rest)
        own = self.v - np.einsum("sjqr,sr->sjq", self.w, rest)
        if rng is not None:
            own = own + rng.standard_normal(own.shape)
        return _solve_upper(self.chol, own), rest


def crossed_solve(
    stats: GaussianStats, beta: np.ndarray, s2: np.ndarray, factors: list[np.ndarray]
) -> CrossedSolve:
    """Factor M for the ``"crossed"`` layout, with right-hand side ``b = Lambda' Z'r / s^2``.

    Parameters
    ----------
    stats
        Statistics of the crossed layout (numpy arrays).
    beta
        Fixed effects (S, p).
    s2
        Residual variances (S,).
    factors
        One lower Cholesky factor per block (S, q_k, q_k), formula order.

    Returns
    -------
    CrossedSolve
    """
    own_lambda = cluster_lambda(stats, factors)
    scale = s2[:, None, None, None]
    m_oo = np.swapaxes(own_lambda, -1, -2)[:, None] @ stats.zz[None] @ own_lambda[:, None] / scale
    m_or = _scale_rest(np.einsum("sab,jar->sjbr", own_lambda, stats.cross), stats, factors) / scale
    rest_zz = np.broadcast_to(stats.rest_zz, (s2.size, *stats.rest_zz.shape))
    m_rr = _scale_rest(np.swapaxes(_scale_rest(rest_zz, stats, factors), -1, -2), stats, factors)
    zr_own, zr_rest = stats.zy[None], stats.rest_zy[None]
    if stats.n_fixed:
        zr_own = zr_own - np.einsum("jqp,sp->sjq", stats.zx, beta)
        zr_rest = zr_rest - beta @ stats.rest_zx.T
    zr_own = np.broadcast_to(zr_own, (s2.size, *stats.zy.shape))
    b_own = np.einsum("sab,sja->sjb", own_lambda, zr_own) / s2[:, None, None]
    b_rest = _scale_rest(np.broadcast_to(zr_rest, (s2.size, stats.rest_zy.size)), stats, factors)
    chol = np.linalg.cholesky(np.eye(own_lambda.shape[-1]) + m_oo)
    w = _solve_lower(chol, m_or)
    v = _solve_lower(chol, b_own)
    schur = np.eye(m_rr.shape[-1]) + m_rr / s2[:, None, None] - np.einsum("sjqa,sjqb->sab", w, w)
    rest_chol = np.linalg.cholesky(schur)
    reduced = b_rest / s2[:, None] - np.einsum("sjqr,sjq->sr", w, v)
    return CrossedSolve(stats, own_lambda, chol, w, v, rest_chol, _solve_lower(rest_chol, reduced))


def rest_effects(stats: GaussianStats, values: np.ndarray, factors: list[np.ndarray]) -> list[np.ndarray]:
    """The other factors' standardised effects (S, Q_r) as effects ``L_k v``, per block (S, levels, q)."""
    out, offset = [], 0
    for k in stats.rest:
        levels, q = stats.sizes[k]
        chunk = values[:, offset : offset + levels * q].reshape(-1, levels, q)
        out.append(np.einsum("sab,snb->sna", factors[k], chunk))
        offset += levels * q
    return out
