"""Pointwise log-likelihood of mixed models, per cluster or per observation (see :mod:`.pointwise`).

Gaussian models (either method) use the parameters only, the random effects integrated out as in
:mod:`pymlsem.mlm.loglik`: with ``Lambda`` the block diagonal of the Cholesky factors of the block
covariances, ``r = y - X b``, ``M = I + Lambda' Z'Z Lambda / s^2`` and ``A = Lambda M^-1 Lambda'``,

* per cluster j of the top grouping factor (one factor, or factors nested in one another): ``-1/2 [n_j log
  2pi s^2 + log|M_j| + r_j'r_j / s^2 - |C_j^-1 Lambda' Z_j'r_j|^2 / s^4]``, M_j the precision of the
  effects of cluster j and of the clusters nested in it; their sum over clusters is the marginal
  log-likelihood. These values and the total are the model's own expressions (``gaussian_cluster_marginal_
  loglik`` and ``gaussian_marginal_loglik`` of :mod:`pymlsem.mlm.loglik`) vectorized over draws
  (:mod:`pymlsem.build.vectorized`);
* per observation: ``V^-1 = (I - Z A Z' / s^2) / s^2`` gives ``c_i = (V^-1)_ii`` and ``g_i = (V^-1 r)_i``,
  and ``log p(y_i | y_-i) = -1/2 log 2pi + 1/2 log c_i - g_i^2 / (2 c_i)``, the leave-one-out conditional of
  a multivariate normal (these do not sum to the log-likelihood). Nested factors need only the block of
  ``M^-1`` of each row's chain of clusters (factored level by level, :mod:`pymlsem.mlm.nested`); crossed
  factors need one dense factorisation of M per draw.

Non-Gaussian models give ``log p(y_i | u, theta)`` per observation, evaluated by PyMC from the sampled
random effects; leaving out a whole cluster would need the random effects integrated out, which has no
closed form there.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pytensor.tensor as pt
import scipy.linalg

from pymlsem.build.loglik import LOG_2PI
from pymlsem.build.rewrites import compile_mode
from pymlsem.build.vectorized import batched_function
from pymlsem.diagnostics.dic import DIC, dic
from pymlsem.exceptions import ModelSpecificationError
from pymlsem.mlm.families import LINEAR_PREDICTOR
from pymlsem.mlm.loglik import gaussian_cluster_marginal_loglik, gaussian_marginal_loglik
from pymlsem.mlm.nested import lambda_and_rhs, nested_solve
from pymlsem.mlm.parameters import block_covariance_draws
from pymlsem.mlm.predict import linear_predictor_draws
from pymlsem.mlm.ranef import block_factors
from pymlsem.mlm.stats import GaussianStats, gaussian_stats, grouping_hierarchy, sparse_z
from pymlsem.results.posterior import draw_chunks, stacked_draws

if TYPE_CHECKING:
    from pymlsem.mlm.model import BuiltMixedModel

__all__ = [
    "clustered",
    "gaussian_cluster_loglik",
    "gaussian_observation_loglik",
    "gaussian_theta_draws",
    "gaussian_total_loglik",
    "glmm_observation_loglik",
    "is_gaussian",
]


def is_gaussian(spec: BuiltMixedModel) -> bool:
    """Whether the mixed model's family is Gaussian."""
    return getattr(spec, "family", "gaussian") == "gaussian"


def clustered(spec: BuiltMixedModel) -> bool:
    """One grouping factor, or factors nested in one another: the top factor's clusters are independent."""
    return bool(spec.design.blocks) and grouping_hierarchy(spec.design) is not None


def gaussian_theta_draws(
    spec: BuiltMixedModel, posterior: Any
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
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


def _top_cluster_products(design, codes: np.ndarray, n_levels: int) -> dict[str, np.ndarray]:
    """Row count, ``y'y``, ``X'y`` and ``X'X`` of each cluster of the top grouping factor."""
    x, y = design.x, design.y
    xy = np.zeros((n_levels, x.shape[1]))
    xx = np.zeros((n_levels, x.shape[1], x.shape[1]))
    np.add.at(xy, codes, x * y[:, None])
    np.add.at(xx, codes, x[:, :, None] * x[:, None, :])
    return {
        "nobs": np.bincount(codes, minlength=n_levels).astype(float),
        "yy": np.bincount(codes, weights=y**2, minlength=n_levels),
        "xy": xy,
        "xx": xx,
    }


def _draw_terms(stats: GaussianStats, covs: list[np.ndarray], beta: np.ndarray, s2: np.ndarray):
    """``Lambda``, the level-by-level factorisation of M and its right-hand side for a batch of draws."""
    lam, rhs = lambda_and_rhs(stats, beta, s2, block_factors(covs))
    return lam, nested_solve(stats, lam, s2, rhs)


def gaussian_cluster_loglik(
    spec: BuiltMixedModel, beta: np.ndarray, sigma: np.ndarray, covs: list[np.ndarray]
) -> np.ndarray:
    """Marginal log-density of each top-level cluster's responses, per draw (one or nested factors).

    Parameters
    ----------
    spec
        A Gaussian mixed model whose grouping factors are one factor or nest in one another.
    beta, sigma, covs
        Per-draw parameters, see :func:`gaussian_theta_draws`.

    Returns
    -------
    numpy.ndarray
        Shape (S, J), clusters in the order of the top grouping factor's levels (the factor with the
        fewest levels); they sum to the marginal log-likelihood (lme4's ``logLik`` at the same parameters).
        The model's own :func:`pymlsem.mlm.loglik.gaussian_cluster_marginal_loglik`, vectorized over draws.

    Raises
    ------
    ModelSpecificationError
        Crossed grouping factors (their clusters are not independent units).
    """
    design = spec.design
    hierarchy = grouping_hierarchy(design)
    if hierarchy is None:
        groups = sorted({block.group for block in design.blocks})
        raise ModelSpecificationError(
            f"the model has several grouping factors ({', '.join(groups)}), crossed in the data; "
            "leave-one-cluster-out needs independent clusters, which one grouping factor or nested ones "
            "give: use unit='observation'"
        )
    stats = gaussian_stats(design)
    clusters = SimpleNamespace(**_top_cluster_products(design, hierarchy.codes[0], hierarchy.n_levels[0]))
    beta_in, sigma_in, cov_in = _parameter_inputs(spec)
    value = gaussian_cluster_marginal_loglik(stats, clusters, beta_in, sigma_in, cov_in)
    return _evaluate([value], beta_in, sigma_in, cov_in, (beta, sigma, covs), clusters.nobs.size, stats)


def _parameter_inputs(
    spec: BuiltMixedModel,
) -> tuple[pt.TensorVariable, pt.TensorVariable, list[pt.TensorVariable]]:
    """Symbolic fixed effects, residual SD and block covariances of one draw."""
    covs = [pt.matrix(f"cov_{k}") for k in range(len(spec.design.blocks))]
    return pt.vector("beta"), pt.scalar("sigma"), covs


def _evaluate(outputs, beta_in, sigma_in, cov_in, draws, width: int, stats: GaussianStats) -> np.ndarray:
    """``outputs`` (an expression of one draw's parameters) for every draw, in chunks of draws."""
    function = batched_function([beta_in, sigma_in, *cov_in], outputs, batched=[beta_in, sigma_in, *cov_in])
    beta, sigma, covs = draws
    sigma = np.asarray(sigma, dtype=float).reshape(-1)
    beta = np.atleast_2d(beta).reshape(sigma.size, -1)
    out = np.empty((sigma.size, width)) if width else np.empty(sigma.size)
    for part in draw_chunks(sigma.size, np.size(stats.zz) * 4):
        out[part] = function(beta[part], sigma[part], *[c[part] for c in covs])[0]
    return out


def _dense_lambda(spec: BuiltMixedModel, factors: list[np.ndarray], s: int) -> np.ndarray:
    return scipy.linalg.block_diag(
        *[
            np.kron(np.eye(block.n_levels), factor[s])
            for block, factor in zip(spec.design.blocks, factors, strict=True)
        ]
    )


def gaussian_observation_loglik(
    spec: BuiltMixedModel, beta: np.ndarray, sigma: np.ndarray, covs: list[np.ndarray]
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
    if clustered(spec):
        stats = gaussian_stats(design)
        codes = grouping_hierarchy(design).codes[-1]  # each row's lowest cluster
        z = np.hstack([design.blocks[k].z for k in stats.columns])
        d = z.shape[1]
        for part in draw_chunks(s2.size, n_obs * (d * d + d + 2) + stats.zz.shape[0] * d * d * 6):
            lam, solve = _draw_terms(stats, [c[part] for c in covs], beta[part], s2[part])
            effects = solve.lowest_chains(solve.mean())  # per lowest cluster, its chain's E[v | y]
            chain_cov = solve.chain_covariance()
            t = np.einsum("sab,nb->sna", np.swapaxes(lam, -1, -2), z)  # Lambda' z_i
            quad = np.einsum("sna,snab,snb->sn", t, chain_cov[:, codes], t)
            fitted = np.einsum("sna,sna->sn", t, effects[:, codes])  # z_i Lambda E[v | y]
            resid = design.y[None] - beta[part] @ design.x.T
            s2p = s2[part][:, None]
            c = (1.0 - quad / s2p) / s2p
            g = (resid - fitted) / s2p
            out[part] = -0.5 * LOG_2PI + 0.5 * np.log(c) - 0.5 * g**2 / c
        return out
    stats = gaussian_stats(design, "dense")
    zmat = sparse_z(design)
    factors = block_factors(covs)
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
    spec: BuiltMixedModel, beta: np.ndarray, sigma: np.ndarray, covs: list[np.ndarray]
) -> np.ndarray:
    """Marginal log-likelihood of all the responses, per draw (any grouping structure): the model's own
    :func:`pymlsem.mlm.loglik.gaussian_marginal_loglik`, vectorized over draws.

    Returns
    -------
    numpy.ndarray
        Shape (S,).
    """
    stats = gaussian_stats(spec.design)
    beta_in, sigma_in, cov_in = _parameter_inputs(spec)
    value = gaussian_marginal_loglik(stats, beta_in, sigma_in, cov_in)
    return _evaluate([value], beta_in, sigma_in, cov_in, (beta, sigma, covs), 0, stats)


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
    return names, pytensor.function(inputs, logp, on_unused_input="ignore", mode=compile_mode())


def linear_predictor_logp(model: Any) -> tuple[list[str], Any]:
    """The elementwise log-density of a GLMM's response given its linear predictor, as a function.

    The model's own observed variable, with its linear predictor (the graph variable named
    :data:`pymlsem.mlm.families.LINEAR_PREDICTOR`) made an input: the inputs are the free random variables
    (constrained scale; only the family's parameters are used), then the linear predictor.
    """
    import pymc as pm
    import pytensor
    from pytensor.graph.replace import graph_replace
    from pytensor.graph.traversal import ancestors

    response = model["y"]
    (eta,) = {v for v in ancestors([response]) if v.name == LINEAR_PREDICTOR}
    given = eta.type(name=LINEAR_PREDICTOR)
    logp = pm.logp(graph_replace(response, {eta: given}, strict=False), model.rvs_to_values[response])
    inputs = [rv.type(name=rv.name) for rv in model.free_RVs]
    logp = graph_replace(logp, dict(zip(model.free_RVs, inputs, strict=True)), strict=False)
    names = [rv.name for rv in model.free_RVs]
    return names, pytensor.function([*inputs, given], logp, on_unused_input="ignore", mode=compile_mode())


def glmm_observation_loglik(fit: Any) -> np.ndarray:
    """``log p(y_i | u, theta)`` of every row and draw of a fitted non-Gaussian (or no-random-term) model."""
    names, function = observed_logp_function(fit.spec.model)
    draws = [stacked_draws(fit.idata.posterior, name) for name in names]
    return np.stack([function(*[d[i] for d in draws]) for i in range(draws[0].shape[0])])


def glmm_dic(fit: Any) -> DIC:
    """DIC of a non-Gaussian mixed model, conditional on the random effects (as MCMCglmm's).

    ``Dbar`` is the posterior mean of ``-2 log p(y | eta, phi)`` (``eta`` each row's linear predictor with
    its cluster effects, ``phi`` the family's parameters: theta, cut-points); the plug-in deviance is at
    the posterior mean of ``eta`` and of the family's free variables. ``eta`` is linear in the fixed and
    cluster effects, so the plug-in does not depend on how those are parameterised (non-centered).
    ``pD`` counts the cluster effects too (conditional DIC), so it is much larger than with the random
    effects integrated out.

    Returns
    -------
    DIC
        ``dic``, ``dbar``, ``dhat``, ``pd``.
    """
    values = glmm_observation_loglik(fit).sum(axis=1)
    names, function = linear_predictor_logp(fit.spec.model)
    means = [stacked_draws(fit.idata.posterior, name).mean(axis=0) for name in names]
    eta = linear_predictor_draws(fit).mean(axis=(0, 1))
    at_mean = float(np.sum(function(*means, eta)))
    return dic(lambda value: value, values, at_mean)
