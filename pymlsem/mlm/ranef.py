"""Cluster effects of a Gaussian mixed model whose random effects were integrated out.

Given the parameters (fixed effects ``b``, residual SD ``s`` and the block covariances ``G_k = L_k L_k'``),
the random effects have a normal conditional distribution. With ``Lambda`` the block diagonal of the
``L_k`` (one copy per level), ``u = Lambda v`` and ``r = y - X b``::

    v | y  ~  N(M^-1 Lambda' Z'r / s^2,  M^-1),        M = I + Lambda' Z'Z Lambda / s^2

(the same M as in :mod:`pymlsem.mlm.loglik`). Drawing ``v`` once per posterior draw gives draws of the
cluster effects from their posterior, which is what a model that sampled them explicitly
(``method="latent"``) would give. With one grouping factor, or factors nested in one another, M is
factored level by level (:mod:`pymlsem.mlm.nested`), vectorised over clusters and draws; with crossed
factors M is one dense matrix per posterior draw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg

from pymlsem.mlm.nested import crossed_solve, lambda_and_rhs, nested_solve, rest_effects, split_levels
from pymlsem.mlm.parameters import block_covariance_draws
from pymlsem.mlm.stats import GaussianStats, gaussian_stats
from pymlsem.results.posterior import draw_chunks

if TYPE_CHECKING:
    from pymlsem.mlm.model import BuiltMixedModel

__all__ = ["conditional_effect_draws", "conditional_effects"]


def block_factors(covs: list[np.ndarray]) -> list[np.ndarray]:
    """Lower Cholesky factor of each block covariance, batched over leading axes (PSD allowed)."""
    factors = []
    for cov in covs:
        q = cov.shape[-1]
        jitter = 1e-12 * np.maximum(np.trace(cov, axis1=-2, axis2=-1), 1e-300)[..., None, None]
        factors.append(np.linalg.cholesky(cov + jitter * np.eye(q)))
    return factors


def conditional_effects(
    stats: GaussianStats,
    beta: np.ndarray,
    sigma: np.ndarray,
    covs: list[np.ndarray],
    rng: np.random.Generator | None = None,
) -> list[np.ndarray]:
    """Conditional means (``rng=None``) or one draw per parameter value of the random effects.

    Parameters
    ----------
    stats
        Cross products from :func:`pymlsem.mlm.stats.gaussian_stats` (numpy arrays).
    beta
        Fixed effects, shape (S, p) for S parameter values.
    sigma
        Residual SDs, shape (S,).
    covs
        One covariance per random block, shape (S, q_k, q_k).
    rng
        Generator for the draws; ``None`` returns the conditional means ``E[u | y, theta]``.

    Returns
    -------
    list of numpy.ndarray
        One array per block, shape (S, levels_k, q_k).
    """
    beta = np.atleast_2d(np.asarray(beta, dtype=float))
    s2 = np.asarray(sigma, dtype=float).reshape(-1) ** 2
    factors = block_factors([np.asarray(c, dtype=float) for c in covs])
    if stats.hierarchical:
        return _hierarchical(stats, beta, s2, factors, rng)
    if stats.layout == "crossed":
        return _crossed(stats, beta, s2, factors, rng)
    return _dense(stats, beta, s2, factors, rng)


def _hierarchical(stats, beta, s2, factors, rng) -> list[np.ndarray]:
    lam, rhs = lambda_and_rhs(stats, beta, s2, factors)
    standardised = nested_solve(stats, lam, s2, rhs).mean(rng)
    ends = np.cumsum(stats.level_effects)
    effects = [
        np.einsum("sab,sjb->sja", lam[:, end - v.shape[-1] : end, end - v.shape[-1] : end], v)
        for end, v in zip(ends, standardised, strict=True)
    ]
    return split_levels(stats, effects)


def _crossed(stats, beta, s2, factors, rng) -> list[np.ndarray]:
    out: list[np.ndarray] = [np.empty((s2.size, levels, q)) for levels, q in stats.sizes]
    per_draw = stats.cross.size * 3 + stats.rest_zz.size * 3
    for part in draw_chunks(s2.size, per_draw):
        solve = crossed_solve(stats, beta[part], s2[part], [f[part] for f in factors])
        own, rest = solve.mean(rng)
        own = np.einsum("sab,sjb->sja", solve.own_lambda, own)
        for k, values in zip(stats.rest, rest_effects(stats, rest, [f[part] for f in factors]), strict=True):
            out[k][part] = values
        for k, values in enumerate(split_levels(stats, [own])):
            if values is not None:
                out[k][part] = values
    return out


def _dense(stats, beta, s2, factors, rng) -> list[np.ndarray]:
    n_draws = beta.shape[0]
    out = [np.zeros((n_draws, levels, q)) for levels, q in stats.sizes]
    for s in range(n_draws):
        lam = scipy.linalg.block_diag(
            *[
                np.kron(np.eye(levels), factor[s])
                for (levels, _), factor in zip(stats.sizes, factors, strict=True)
            ]
        )
        zr = stats.zy - stats.zx @ beta[s] if stats.n_fixed else stats.zy
        m = np.eye(lam.shape[0]) + lam.T @ stats.zz @ lam / s2[s]
        chol = np.linalg.cholesky(m)
        v = scipy.linalg.cho_solve((chol, True), lam.T @ zr / s2[s])
        if rng is not None:
            v = v + scipy.linalg.solve_triangular(chol.T, rng.standard_normal(v.shape), lower=False)
        u = lam @ v
        offset = 0
        for k, (levels, q) in enumerate(stats.sizes):
            out[k][s] = u[offset : offset + levels * q].reshape(levels, q)
            offset += levels * q
    return out


def conditional_effect_draws(spec: BuiltMixedModel, posterior, seed: int | None = None) -> list[np.ndarray]:
    """Posterior draws of every random block's cluster effects for a marginal Gaussian fit.

    Parameters
    ----------
    spec
        The built model (``method="marginal"``, Gaussian).
    posterior
        Posterior with ``fixef``, ``sigma``, ``sd__<label>`` and ``corr__<label>`` (dims chain, draw, ...).
    seed
        Seed of the conditional draws.

    Returns
    -------
    list of numpy.ndarray
        One array per block, shape (chain, draw, levels, q).
    """
    covs = block_covariance_draws(posterior, spec)
    chains, draws = covs[0].shape[:2]
    flat = [c.reshape(chains * draws, *c.shape[2:]) for c in covs]
    if spec.design.fixed_names:
        beta = np.asarray(posterior["fixef"].transpose("chain", "draw", ...).values, dtype=float)
        beta = beta.reshape(chains * draws, -1)
    else:
        beta = np.zeros((chains * draws, 0))
    sigma = np.asarray(posterior["sigma"].transpose("chain", "draw").values, dtype=float).reshape(-1)
    effects = conditional_effects(gaussian_stats(spec.design), beta, sigma, flat, np.random.default_rng(seed))
    return [e.reshape(chains, draws, *e.shape[1:]) for e in effects]
