"""Pointwise log-likelihood of mixed models, per cluster or per observation (see :mod:`.pointwise`).

Gaussian models (either method) use the parameters only, the random effects integrated out as in
:mod:`pymlsem.mlm.loglik`: with ``Lambda`` the block diagonal of the Cholesky factors of the block
covariances, ``r = y - X b``, ``M = I + Lambda' Z'Z Lambda / s^2`` and ``A = Lambda M^-1 Lambda'``,

* per cluster j (one grouping factor): ``-1/2 [n_j log 2pi s^2 + log|M_j| + r_j'r_j / s^2
  - |C_j^-1 Lambda' Z_j'r_j|^2 / s^4]``, whose sum over clusters is the marginal log-likelihood;
* per observation: ``V^-1 = (I - Z A Z' / s^2) / s^2`` gives ``c_i = (V^-1)_ii`` and ``g_i = (V^-1 r)_i``,
  and ``log p(y_i | y_-i) = -1/2 log 2pi + 1/2 log c_i - g_i^2 / (2 c_i)``, the leave-one-out conditional of
  a multivariate normal (these do not sum to the log-likelihood).

Non-Gaussian models give ``log p(y_i | u, theta)`` per observation, evaluated by PyMC from the sampled
random effects; leaving out a whole cluster would need the random effects integrated out, which has no
closed form there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.linalg

from pymlsem.diagnostics.mixed import block_covariance_draws
from pymlsem.exceptions import ModelSpecificationError
from pymlsem.mlm.ranef import _block_factors
from pymlsem.mlm.stats import gaussian_stats, sparse_z
from pymlsem.workflow.pointwise import LOG_2PI, Pointwise, _chunks, _logdet, safe_cholesky, stacked_draws

if TYPE_CHECKING:
    from pymlsem.mlm.model import MixedModel

__all__ = [
    "gaussian_cluster_loglik",
    "gaussian_observation_loglik",
    "gaussian_theta_draws",
    "gaussian_total_loglik",
    "mixed_default_unit",
    "mixed_fit_pointwise",
]


def _is_gaussian(spec: MixedModel) -> bool:
    return getattr(spec, "family", "gaussian") == "gaussian"


def _clustered(spec: MixedModel) -> bool:
    return len({block.group for block in spec.design.blocks}) == 1


def mixed_default_unit(spec: MixedModel) -> str:
    """``"cluster"`` for a Gaussian model with one grouping factor, ``"observation"`` otherwise."""
    return "cluster" if _is_gaussian(spec) and _clustered(spec) else "observation"


def gaussian_theta_draws(spec: MixedModel, posterior: Any) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Fixed effects (S, p), residual SDs (S,) and block covariances (S, q_k, q_k) of every draw.

    Parameters
    ----------
    spec
        A Gaussian mixed model.
    posterior
        Its posterior (``fixef``, ``sigma``, ``sd__<label>``, ``corr__<label>``).
    """
    sigma = stacked_draws(posterior, "sigma").reshape(-1)
    if spec.design.fixed_names:
        beta = stacked_draws(posterior, "fixef").reshape(sigma.size, -1)
    else:
        beta = np.zeros((sigma.size, 0))
    covs = [c.reshape(sigma.size, *c.shape[2:]) for c in block_covariance_draws(posterior, spec)]
    return beta, sigma, covs


def _lambda_clustered(covs: list[np.ndarray]) -> np.ndarray:
    """Block diagonal (S, q, q) of the blocks' Cholesky factors (all blocks of the one grouping factor)."""
    factors = _block_factors(covs)
    q = sum(f.shape[-1] for f in factors)
    lam = np.zeros((factors[0].shape[0], q, q))
    offset = 0
    for factor in factors:
        width = factor.shape[-1]
        lam[:, offset : offset + width, offset : offset + width] = factor
        offset += width
    return lam


def _per_cluster(spec: MixedModel) -> dict[str, np.ndarray]:
    design = spec.design
    stats = gaussian_stats(design)
    codes = design.blocks[0].codes
    n_levels = design.blocks[0].n_levels
    x, y = design.x, design.y
    xy = np.zeros((n_levels, x.shape[1]))
    xx = np.zeros((n_levels, x.shape[1], x.shape[1]))
    np.add.at(xy, codes, x * y[:, None])
    np.add.at(xx, codes, x[:, :, None] * x[:, None, :])
    return {
        "n": np.bincount(codes, minlength=n_levels).astype(float),
        "yy": np.bincount(codes, weights=y**2, minlength=n_levels),
        "xy": xy,
        "xx": xx,
        "zz": stats.zz,
        "zy": stats.zy,
        "zx": stats.zx,
    }


def _cluster_terms(
    parts: dict[str, np.ndarray], beta: np.ndarray, s2: np.ndarray, lam: np.ndarray
) -> tuple[np.ndarray, ...]:
    """r'r, Z'r, M and its Cholesky factor per draw and cluster."""
    rr = (
        parts["yy"][None]
        - 2.0 * np.einsum("jp,sp->sj", parts["xy"], beta)
        + np.einsum("sp,jpq,sq->sj", beta, parts["xx"], beta)
    )
    zr = parts["zy"][None] - np.einsum("jqp,sp->sjq", parts["zx"], beta)
    lam_t = np.swapaxes(lam, -1, -2)[:, None]
    m = np.eye(lam.shape[-1]) + lam_t @ parts["zz"][None] @ lam[:, None] / s2[:, None, None, None]
    return rr, zr, m, np.linalg.cholesky(m)


def gaussian_cluster_loglik(
    spec: MixedModel, beta: np.ndarray, sigma: np.ndarray, covs: list[np.ndarray]
) -> np.ndarray:
    """Marginal log-density of each cluster's responses, per draw (one grouping factor).

    Parameters
    ----------
    spec
        A Gaussian mixed model whose random blocks share one grouping factor.
    beta, sigma, covs
        Per-draw parameters, see :func:`gaussian_theta_draws`.

    Returns
    -------
    numpy.ndarray
        Shape (S, J), clusters in the order of the grouping factor's levels; they sum to the marginal
        log-likelihood (lme4's ``logLik`` at the same parameters).

    Raises
    ------
    ModelSpecificationError
        Several grouping factors (their clusters are not independent units).
    """
    if not _clustered(spec):
        groups = sorted({block.group for block in spec.design.blocks})
        raise ModelSpecificationError(
            f"the model has several grouping factors ({', '.join(groups)}); leave-one-cluster-out needs "
            "independent clusters, which one grouping factor gives: use unit='observation'"
        )
    parts = _per_cluster(spec)
    beta = np.atleast_2d(beta)
    s2 = np.asarray(sigma, dtype=float).reshape(-1) ** 2
    q = parts["zz"].shape[-1]
    out = np.empty((s2.size, parts["n"].size))
    for part in _chunks(s2.size, parts["n"].size * q * q * 3):
        lam = _lambda_clustered([c[part] for c in covs])
        rr, zr, _, chol = _cluster_terms(parts, beta[part], s2[part], lam)
        u = np.einsum("sba,sjb->sja", lam, zr)
        v = np.linalg.solve(chol, u[..., None])[..., 0]
        n = parts["n"][None]
        s2p = s2[part][:, None]
        out[part] = -0.5 * (
            n * LOG_2PI + n * np.log(s2p) + _logdet(chol) + rr / s2p - np.sum(v**2, axis=-1) / s2p**2
        )
    return out


def _dense_lambda(spec: MixedModel, factors: list[np.ndarray], s: int) -> np.ndarray:
    return scipy.linalg.block_diag(
        *[
            np.kron(np.eye(block.n_levels), factor[s])
            for block, factor in zip(spec.design.blocks, factors, strict=True)
        ]
    )


def gaussian_observation_loglik(
    spec: MixedModel, beta: np.ndarray, sigma: np.ndarray, covs: list[np.ndarray]
) -> np.ndarray:
    """``log p(y_i | y_-i)`` of every observation, random effects integrated out, per draw.

    Parameters
    ----------
    spec
        A Gaussian mixed model (any grouping structure; several grouping factors cost one dense
        factorisation of size Q, the number of random effects, per draw).
    beta, sigma, covs
        Per-draw parameters, see :func:`gaussian_theta_draws`.

    Returns
    -------
    numpy.ndarray
        Shape (S, N), rows in the design's order.
    """
    design = spec.design
    beta = np.atleast_2d(beta)
    s2 = np.asarray(sigma, dtype=float).reshape(-1) ** 2
    n_obs = design.nobs
    out = np.empty((s2.size, n_obs))
    if _clustered(spec):
        parts = _per_cluster(spec)
        codes = design.blocks[0].codes
        z = np.hstack([block.z for block in design.blocks])
        q = z.shape[1]
        for part in _chunks(s2.size, n_obs * q * q + parts["n"].size * q * q * 3):
            lam = _lambda_clustered([c[part] for c in covs])
            _, zr, m, chol = _cluster_terms(parts, beta[part], s2[part], lam)
            inv_m = np.linalg.solve(m, np.broadcast_to(np.eye(q), m.shape))
            a = lam[:, None] @ inv_m @ np.swapaxes(lam, -1, -2)[:, None]
            a_zr = np.einsum("sjab,sjb->sja", a, zr)
            quad = np.einsum("na,snab,nb->sn", z, a[:, codes], z)
            resid = design.y[None] - beta[part] @ design.x.T
            s2p = s2[part][:, None]
            c = (1.0 - quad / s2p) / s2p
            g = (resid - np.einsum("na,sna->sn", z, a_zr[:, codes]) / s2p) / s2p
            out[part] = -0.5 * LOG_2PI + 0.5 * np.log(c) - 0.5 * g**2 / c
        return out
    stats = gaussian_stats(design)
    zmat = sparse_z(design)
    factors = _block_factors(covs)
    for s in range(s2.size):
        lam = _dense_lambda(spec, factors, s)
        m = np.eye(lam.shape[0]) + lam.T @ stats.zz @ lam / s2[s]
        chol = np.linalg.cholesky(m)
        a = lam @ scipy.linalg.cho_solve((chol, True), lam.T)
        zr = stats.zy - stats.zx @ beta[s] if stats.n_fixed else stats.zy
        za = np.asarray(zmat @ a)
        quad = np.asarray(zmat.multiply(za).sum(axis=1)).reshape(-1)
        resid = design.y - design.x @ beta[s]
        c = (1.0 - quad / s2[s]) / s2[s]
        g = (resid - za @ zr / s2[s]) / s2[s]
        out[s] = -0.5 * LOG_2PI + 0.5 * np.log(c) - 0.5 * g**2 / c
    return out


def gaussian_total_loglik(
    spec: MixedModel, beta: np.ndarray, sigma: np.ndarray, covs: list[np.ndarray]
) -> np.ndarray:
    """Marginal log-likelihood of all the responses, per draw (any grouping structure).

    Returns
    -------
    numpy.ndarray
        Shape (S,).
    """
    if _clustered(spec):
        return gaussian_cluster_loglik(spec, beta, sigma, covs).sum(axis=1)
    design = spec.design
    stats = gaussian_stats(design)
    beta = np.atleast_2d(beta)
    s2 = np.asarray(sigma, dtype=float).reshape(-1) ** 2
    factors = _block_factors(covs)
    out = np.empty(s2.size)
    n = design.nobs
    for s in range(s2.size):
        lam = _dense_lambda(spec, factors, s)
        m = np.eye(lam.shape[0]) + lam.T @ stats.zz @ lam / s2[s]
        chol, ok = safe_cholesky(m)
        zr = stats.zy - stats.zx @ beta[s] if stats.n_fixed else stats.zy
        rr = stats.yy - 2.0 * beta[s] @ stats.xy + beta[s] @ stats.xx @ beta[s] if stats.n_fixed else stats.yy
        v = scipy.linalg.solve_triangular(chol, lam.T @ zr, lower=True)
        value = -0.5 * (n * LOG_2PI + n * np.log(s2[s]) + _logdet(chol) + rr / s2[s] - v @ v / s2[s] ** 2)
        out[s] = value if ok else -np.inf
    return out


def observed_logp_function(model: Any, name: str = "y") -> tuple[list[str], Any]:
    """Compile the elementwise log-density of an observed variable as a function of the free variables.

    The inputs are the free random variables on their own (constrained) scale, as the posterior stores
    them; transformed value variables are replaced by the forward transform of those inputs. (PyMC's
    ``compute_log_likelihood`` does the same but refuses models with initial values, such as the ordinal
    model's cut-points.)

    Parameters
    ----------
    model
        The PyMC model.
    name
        The observed variable.

    Returns
    -------
    tuple
        The names of the inputs (free random variables, in order) and the compiled function.
    """
    import pytensor
    from pytensor.graph.replace import graph_replace

    logp = model.logp(vars=[model[name]], sum=False)[0]
    names, inputs, replace = [], [], {}
    for rv in model.free_RVs:
        value = rv.type()
        value.name = rv.name
        transform = model.rvs_to_transforms.get(rv)
        replace[model.rvs_to_values[rv]] = (
            value if transform is None else transform.forward(value, *rv.owner.inputs)
        )
        names.append(rv.name)
        inputs.append(value)
    logp = graph_replace(logp, replace, strict=False)
    return names, pytensor.function(inputs, logp, on_unused_input="ignore")


def _glmm_observation_loglik(fit: Any) -> np.ndarray:
    names, function = observed_logp_function(fit.spec.model)
    draws = [stacked_draws(fit.idata.posterior, name) for name in names]
    return np.stack([function(*[d[i] for d in draws]) for i in range(draws[0].shape[0])])


def mixed_fit_pointwise(fit: Any, unit: str) -> Pointwise:
    """Pointwise log-likelihood of a fitted mixed model (see the module docstring).

    Parameters
    ----------
    fit
        A :class:`~pymlsem.mlm.fit.MixedFit`.
    unit
        ``"cluster"`` (Gaussian models with one grouping factor) or ``"observation"``.

    Returns
    -------
    Pointwise

    Raises
    ------
    ModelSpecificationError
        ``unit="cluster"`` for a non-Gaussian model or a model with several grouping factors.
    """
    spec = fit.spec
    design = spec.design
    if not _is_gaussian(spec):
        if unit == "cluster":
            raise ModelSpecificationError(
                f"leave-one-cluster-out needs the random effects integrated out, which has no closed form "
                f"for family={spec.family!r}; use unit='observation' (given the sampled random effects)"
            )
        return Pointwise(_glmm_observation_loglik(fit), unit, np.arange(design.nobs), True)
    beta, sigma, covs = gaussian_theta_draws(spec, fit.idata.posterior)
    if unit == "cluster":
        values = gaussian_cluster_loglik(spec, beta, sigma, covs)
        return Pointwise(values, unit, np.asarray(design.blocks[0].levels), True)
    values = gaussian_observation_loglik(spec, beta, sigma, covs)
    return Pointwise(values, unit, np.arange(design.nobs), False)
