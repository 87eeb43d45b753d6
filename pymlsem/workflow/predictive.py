"""Posterior and prior predictive draws: replicated data sets stored in the fit's ArviZ DataTree.

SEM
    Models with random slopes or ordered indicators (latent builder) are replicated given each draw's latent
    variables (:func:`pymlsem.workflow.conditional.latent_replicates`; ordered variables as category codes).
    Each replicated data set has the observed data's rows and cluster structure: the same number of rows, the
    same cluster of each row, and the exogenous covariates held at their observed values (lavaan's fixed.x, as
    blavaan's ``postdata`` and the PPP of :mod:`pymlsem.workflow.replicate` do); the other variables are drawn
    from their conditional distribution given the covariates at one posterior (or prior) draw of the implied
    moments. Two levels: one between-level vector per cluster (given the cluster's between-level covariates)
    and one within-level vector per row (given the row's within-level covariates), added up. Groups:
    ``posterior_predictive`` / ``prior_predictive`` with one variable per observed variable, dims
    ``(chain, draw, observation)`` (a ``cluster`` coordinate on ``observation`` for two-level models), and
    ``observed_data`` with the data.
Mixed models
    The response ``y`` is replicated for the design's rows. ``random_effects="fitted"`` (default) keeps each
    draw's cluster effects (for marginal Gaussian fits, drawn from their conditional distribution given the
    draw, :mod:`pymlsem.mlm.ranef`); ``"new"`` draws new effects for the same clusters from ``N(0, G)``.

``n_draws`` posterior draws are used, spread evenly over each chain (rounded up to a multiple of the number of
chains); the ``draw`` coordinate keeps the posterior's draw numbers.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from pymlsem.data.stats import TwoLevelStats
from pymlsem.exceptions import DataError, PymlsemError
from pymlsem.mlm.ranef import block_factors, conditional_effects
from pymlsem.mlm.stats import gaussian_stats
from pymlsem.results.implied import draws_rows
from pymlsem.results.posterior import stacked_draws
from pymlsem.sample import is_integer
from pymlsem.workflow.conditional import latent_replicates, observed_values
from pymlsem.workflow.loglik import ImpliedMoments, implied_moments
from pymlsem.workflow.mixed_loglik import gaussian_theta_draws
from pymlsem.workflow.replicate import (
    check_covariate_levels,
    conditional_regression,
    psd_factor,
    variable_positions,
)

if TYPE_CHECKING:
    from pymlsem.api import SEM
    from pymlsem.mlm.model import BuiltMixedModel
    from pymlsem.workflow.protocol import Fitted

__all__ = [
    "mixed_prior_predictive",
    "mixed_replicated_data",
    "posterior_predictive",
    "replicate_rows",
    "sem_prior_predictive",
    "sem_replicated_data",
    "spread_positions",
]

RANDOM_EFFECTS = ("fitted", "new")


# ------------------------------------------------------------------------------------------------- SEM
def replicate_rows(spec: SEM, moments: ImpliedMoments, rng: np.random.Generator) -> np.ndarray:
    """Draw one replicated data set (row by row) per draw of implied moments.

    Parameters
    ----------
    spec
        The model; its data give the rows, the cluster of each row and the covariates' values.
    moments
        Implied moments of S draws (:func:`pymlsem.workflow.loglik.implied_moments`).
    rng
        Random generator.

    Returns
    -------
    numpy.ndarray
        Shape (S, N, p), variables in ``spec.stats.variables`` order; NaN for a draw whose implied
        residual covariance is not positive semi-definite, and where the data have a missing value (the
        replicates keep the data's missingness, as its full-information likelihood does).

    Raises
    ------
    DataError
        A model with exogenous covariates fitted to summary statistics (no covariate values to hold).
    ModelSpecificationError
        A two-level model with an exogenous covariate that has parts at both levels.
    """
    exo = spec.partable.exogenous
    if isinstance(spec.stats, TwoLevelStats):
        out = _two_level_rows(spec, moments, rng, exo.get(1, []), exo.get(2, []))
    else:
        out = _single_level_rows(spec, moments, rng, exo.get(1, []))
    if getattr(spec, "missing", False):  # the data's missing values stay missing in every replicate
        out[:, spec.data[list(spec.stats.variables)].isna().to_numpy()] = np.nan
    return out


def _single_level_rows(spec: SEM, moments: ImpliedMoments, rng: np.random.Generator, exo: list) -> np.ndarray:
    stats = spec.stats
    variables = tuple(stats.variables)
    data = getattr(spec, "data", None)
    x = variable_positions(variables, exo)
    y = np.array([k for k in range(len(variables)) if k not in set(x.tolist())], dtype=np.int64)
    if data is None:
        if x.size:
            raise DataError(
                "the model has exogenous covariates but was fitted to summary statistics: replicated data "
                "hold the covariates at their observed values, so fit the model to the raw data"
            )
        values = np.zeros((int(stats.nobs), 0))
    else:
        values = data[list(variables)].to_numpy(dtype=float)
    nobs, size = int(stats.nobs), moments.size
    intercept, slopes, resid = conditional_regression(moments.mean[1], moments.cov[1], y, x)
    factor, ok = _factor(resid)
    out = np.empty((size, nobs, len(variables)))
    out[:, :, x] = values[:, x]
    out[:, :, y] = (
        intercept[:, None, :]
        + np.einsum("sqk,nk->snq", slopes, values[:, x])
        + np.einsum("sqr,snr->snq", factor, rng.standard_normal((size, nobs, y.size)))
    )
    out[~ok] = np.nan
    return out


def _factor(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Factors of a batch of covariances and whether each is positive semi-definite (to rounding)."""
    cov = (cov + np.swapaxes(cov, -1, -2)) / 2
    if cov.shape[-1] == 0:
        return cov, np.ones(cov.shape[0], dtype=bool)
    smallest = np.linalg.eigvalsh(cov)[..., 0]
    scale = np.maximum(np.abs(np.diagonal(cov, axis1=-2, axis2=-1)).max(axis=-1), 1e-300)
    return psd_factor(cov), smallest >= -1e-8 * scale


def _two_level_rows(
    spec: SEM, moments: ImpliedMoments, rng: np.random.Generator, exo_within: list, exo_between: list
) -> np.ndarray:
    stats: TwoLevelStats = spec.stats
    check_covariate_levels(stats, exo_within, exo_between)
    variables = tuple(stats.variables)
    data = spec.data
    values = data[list(variables)].to_numpy(dtype=float)
    codes = pd.factorize(data[spec.cluster], sort=True)[0]
    p, size, nobs = len(variables), moments.size, values.shape[0]
    within = np.asarray(stats.within_index, dtype=np.int64)
    between = np.array([k for k in range(p) if variables[k] not in stats.within_only], dtype=np.int64)
    x_w, x_b = variable_positions(variables, exo_within), variable_positions(variables, exo_between)
    y_w = np.array([k for k in within if k not in set(x_w.tolist())], dtype=np.int64)
    y_b = np.array([k for k in between if k not in set(x_b.tolist())], dtype=np.int64)
    cluster_values = np.asarray(stats.cluster_means, dtype=float)

    a_w, b_w, psi_w = conditional_regression(moments.mean[1], moments.cov[1], y_w, x_w)
    f_w, ok_w = _factor(psi_w)
    a_b, b_b, psi_b = conditional_regression(moments.mean[2], moments.cov[2], y_b, x_b)
    f_b, ok_b = _factor(psi_b)
    effects = (
        a_b[:, None, :]
        + np.einsum("sqk,jk->sjq", b_b, cluster_values[:, x_b])
        + np.einsum("sqr,sjr->sjq", f_b, rng.standard_normal((size, cluster_values.shape[0], y_b.size)))
    )
    out = np.zeros((size, nobs, p))
    out[:, :, y_w] = (
        a_w[:, None, :]
        + np.einsum("sqk,nk->snq", b_w, values[:, x_w])
        + np.einsum("sqr,snr->snq", f_w, rng.standard_normal((size, nobs, y_w.size)))
    )
    out[:, :, y_b] += effects[:, codes, :]
    out[:, :, x_w] = values[:, x_w]
    out[:, :, x_b] = values[:, x_b]
    out[~(ok_w & ok_b)] = np.nan
    return out


def _sem_dataset(spec: SEM, replicates: np.ndarray, chain: np.ndarray, draw: np.ndarray) -> xr.Dataset:
    """Replicates (chain * draw, N, p) as one variable per observed variable."""
    shape = (chain.size, draw.size, replicates.shape[1])
    coords = _observation_coords(spec, replicates.shape[1])
    coords.update({"chain": chain, "draw": draw})
    return xr.Dataset(
        {
            name: (("chain", "draw", "observation"), replicates[:, :, k].reshape(shape))
            for k, name in enumerate(spec.stats.variables)
        },
        coords=coords,
    )


def _observation_coords(spec: SEM, nobs: int) -> dict[str, Any]:
    coords: dict[str, Any] = {"observation": np.arange(nobs)}
    data = getattr(spec, "data", None)
    if spec.cluster is not None and data is not None:
        coords["cluster"] = ("observation", data[spec.cluster].to_numpy())
    return coords


def _sem_observed(spec: SEM) -> xr.Dataset | None:
    data = getattr(spec, "data", None)
    if data is None:
        return None
    coords = _observation_coords(spec, len(data))
    return xr.Dataset(
        {name: ("observation", observed_values(spec, name)) for name in spec.stats.variables},
        coords=coords,
    )


@contextlib.contextmanager
def _quiet_pymc() -> Iterator[None]:
    """Silence PyMC's "Sampling: [...]" log line and its note that potentials are ignored (expected here:
    the SEM's likelihood is a potential, and forward sampling replaces it by the replicates)."""
    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Potential.*")
            yield
    finally:
        logger.setLevel(level)


def _seeds(seed: int | None) -> tuple[int, np.random.Generator]:
    if seed is not None and (not is_integer(seed) or seed < 0):
        raise PymlsemError(f"seed must be None or a non-negative integer, not {seed!r}")
    sequence = np.random.SeedSequence(seed)
    pymc_seed, numpy_seed = sequence.spawn(2)
    return int(pymc_seed.generate_state(1)[0]), np.random.default_rng(numpy_seed)


def sem_prior_predictive(spec: SEM, n_draws: int = 500, seed: int | None = None) -> xr.DataTree:
    """Prior predictive draws of a SEM: parameters from their priors, then replicated data sets.

    The parameters are drawn from their priors as PyMC does (``pm.sample_prior_predictive``); inequality
    constraints (``a < b``) are not applied to them. Draws at which the implied covariance is not positive
    semi-definite (possible when free covariances have independent priors) give NaN data, with a warning.

    Parameters
    ----------
    spec
        The model.
    n_draws
        Number of prior draws.
    seed
        Random seed.

    Returns
    -------
    xarray.DataTree
        Groups ``prior`` (the parameters, with ``parameters`` on lavaan's scale), ``prior_predictive``
        and, for raw data, ``observed_data``.
    """
    import pymc as pm

    _check_draws(n_draws)
    pymc_seed, rng = _seeds(seed)
    model = spec.pymc_model
    names = [rv.name for rv in model.free_RVs] + ["parameters"]
    if "defined" in model.named_vars:
        names.append("defined")
    with _quiet_pymc():
        tree = pm.sample_prior_predictive(draws=n_draws, model=model, var_names=names, random_seed=pymc_seed)
    prior = tree["prior"].to_dataset()
    rows = draws_rows(spec, prior)
    replicates = replicate_rows(spec, implied_moments(spec, rows), rng)
    bad = int(np.isnan(replicates).any(axis=(1, 2)).sum())
    if bad:
        warnings.warn(
            f"{bad} of {n_draws} prior draws imply a covariance matrix that is not positive semi-definite; "
            "their replicated data are NaN",
            UserWarning,
            stacklevel=2,
        )
    groups = {
        "prior": prior,
        "prior_predictive": _sem_dataset(spec, replicates, prior["chain"].values, prior["draw"].values),
    }
    observed = _sem_observed(spec)
    if observed is not None:
        groups["observed_data"] = observed
    return xr.DataTree.from_dict(groups)


# ----------------------------------------------------------------------------------------------- mixed
def _mixed_response(spec: BuiltMixedModel) -> np.ndarray:
    response = getattr(spec, "response", None)
    return spec.design.y if response is None else response.y


def _mixed_observed(spec: BuiltMixedModel) -> xr.Dataset:
    return xr.Dataset({"y": ("observation", _mixed_response(spec))}, coords={"observation": _obs(spec)})


def _obs(spec: BuiltMixedModel) -> np.ndarray:
    return np.arange(spec.design.nobs)


def _new_effects(covs: list[np.ndarray], spec: BuiltMixedModel, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for factor, block in zip(block_factors(covs), spec.design.blocks, strict=True):
        noise = rng.standard_normal((factor.shape[0], block.n_levels, block.q))
        out.append(np.einsum("sab,sjb->sja", factor, noise))
    return out


def _gaussian_replicates(
    spec: BuiltMixedModel, posterior: xr.Dataset, random_effects: str, rng: np.random.Generator
) -> np.ndarray:
    """Replicated responses (S, N) of a Gaussian mixed model from a (selected) posterior."""
    beta, sigma, covs = gaussian_theta_draws(spec, posterior)
    if random_effects == "new":
        effects = _new_effects(covs, spec, rng)
    elif all(f"u__{label}" in posterior for label in spec.labels):
        effects = [stacked_draws(posterior, f"u__{label}") for label in spec.labels]
    else:
        effects = conditional_effects(gaussian_stats(spec.design), beta, sigma, covs, rng)
    design = spec.design
    mean = beta @ design.x.T
    for block, u in zip(design.blocks, effects, strict=True):
        mean = mean + np.einsum("nq,snq->sn", block.z, u[:, block.codes, :])
    return mean + sigma[:, None] * rng.standard_normal(mean.shape)


def _pymc_replicates(
    spec: BuiltMixedModel, posterior: xr.Dataset, random_effects: str, seed: int
) -> np.ndarray:
    import pymc as pm

    sample_vars = ["y"]
    if random_effects == "new":
        sample_vars += [f"z__{label}" for label in spec.labels]
    # every other parameter keeps its posterior draws (the prior pm.Data are not in the trace, which PyMC
    # would otherwise take for changed data)
    freeze = [rv.name for rv in spec.model.free_RVs if rv.name not in sample_vars]
    with _quiet_pymc():
        tree = pm.sample_posterior_predictive(
            posterior,
            model=spec.model,
            var_names=["y"],
            sample_vars=sample_vars,
            freeze_vars=freeze or None,
            random_seed=seed,
            progressbar=False,
        )
    return stacked_draws(tree["posterior_predictive"].to_dataset(), "y")


def _mixed_dataset(
    values: np.ndarray, chain: np.ndarray, draw: np.ndarray, spec: BuiltMixedModel
) -> xr.Dataset:
    shape = (chain.size, draw.size, values.shape[-1])
    return xr.Dataset(
        {"y": (("chain", "draw", "observation"), values.reshape(shape))},
        coords={"chain": chain, "draw": draw, "observation": _obs(spec)},
    )


def mixed_prior_predictive(spec: BuiltMixedModel, n_draws: int = 500, seed: int | None = None) -> xr.DataTree:
    """Prior predictive draws of a mixed model: parameters from their priors, then responses.

    New cluster effects are drawn for the design's clusters at each prior draw.

    Parameters
    ----------
    spec
        The built model (:func:`pymlsem.mixed_model`).
    n_draws
        Number of prior draws.
    seed
        Random seed.

    Returns
    -------
    xarray.DataTree
        Groups ``prior``, ``prior_predictive`` (variable ``y``, dims ``(chain, draw, observation)``) and
        ``observed_data``.
    """
    import pymc as pm

    _check_draws(n_draws)
    pymc_seed, rng = _seeds(seed)
    with _quiet_pymc():
        tree = pm.sample_prior_predictive(draws=n_draws, model=spec.model, random_seed=pymc_seed)
    prior = tree["prior"].to_dataset()
    chain, draw = prior["chain"].values, prior["draw"].values
    if "prior_predictive" in tree.children and "y" in tree["prior_predictive"]:  # an observed y (latent)
        values = stacked_draws(tree["prior_predictive"].to_dataset(), "y")
    else:
        values = _gaussian_replicates(spec, prior, "new", rng)
    return xr.DataTree.from_dict(
        {
            "prior": prior,
            "prior_predictive": _mixed_dataset(values, chain, draw, spec),
            "observed_data": _mixed_observed(spec),
        }
    )


# ------------------------------------------------------------------------------------------ both kinds
def _check_draws(n_draws: int | None) -> None:
    if n_draws is not None and (isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 1):
        raise PymlsemError(f"n_draws must be a positive integer (or None for all draws), not {n_draws!r}")


def spread_positions(total: int, wanted: int) -> np.ndarray:
    """``wanted`` positions spread evenly over ``range(total)``, first and last included.

    Parameters
    ----------
    total
        Number of positions to choose from.
    wanted
        How many to choose; all of them when ``wanted >= total``.

    Returns
    -------
    numpy.ndarray
        Sorted distinct int64 positions (fewer than ``wanted`` when rounding makes two equal).
    """
    return np.unique(np.linspace(0, total - 1, min(wanted, total)).round().astype(np.int64))


def select_draws(posterior: xr.Dataset, n_draws: int | None) -> xr.Dataset:
    """About ``n_draws`` posterior draws, spread evenly over each chain (all of them for ``None``).

    Parameters
    ----------
    posterior
        The posterior.
    n_draws
        How many draws in all; rounded up to a multiple of the number of chains.

    Returns
    -------
    xarray.Dataset
        The selected draws, with their original ``draw`` coordinates.
    """
    _check_draws(n_draws)
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    if n_draws is None or n_draws >= chains * draws:
        return posterior
    return posterior.isel(draw=spread_positions(draws, math.ceil(n_draws / chains)))


def posterior_predictive(
    fit: Fitted, n_draws: int | None = 500, seed: int | None = None, *, random_effects: str = "fitted"
) -> xr.DataTree:
    """Replicated data sets from the posterior, stored as the ``posterior_predictive`` group of ``fit.idata``.

    Parameters
    ----------
    fit
        A fitted SEM or mixed model.
    n_draws
        Number of posterior draws to replicate from (spread over the chains; ``None``: all).
    seed
        Random seed.
    random_effects
        Mixed models only: ``"fitted"`` (each draw's cluster effects) or ``"new"`` (new effects for the
        same clusters).

    Returns
    -------
    xarray.DataTree
        ``fit.idata`` with ``posterior_predictive`` and ``observed_data`` groups (replacing earlier ones).

    Raises
    ------
    PymlsemError
        A bad ``n_draws`` or ``random_effects``.
    """
    if random_effects not in RANDOM_EFFECTS:
        raise PymlsemError(f"random_effects must be 'fitted' or 'new', not {random_effects!r}")
    posterior = select_draws(fit.idata.posterior.to_dataset(), n_draws)
    replicated, observed = fit.replicated_data(posterior, seed, random_effects)
    fit.idata["posterior_predictive"] = replicated
    if observed is not None:
        fit.idata["observed_data"] = observed
    return fit.idata


def sem_replicated_data(
    spec: SEM, posterior: xr.Dataset, seed: int | None
) -> tuple[xr.Dataset, xr.Dataset | None]:
    """A SEM's replicated data sets, one per draw of ``posterior``, and its observed data (None for a fit to
    summary statistics); see the module docstring."""
    _, rng = _seeds(seed)
    if spec.has_closed_form:
        rows = draws_rows(spec, posterior)
        replicates = replicate_rows(spec, implied_moments(spec, rows), rng)
    else:  # random slopes, ordered indicators: given each draw's latent variables
        replicates = latent_replicates(spec, posterior, rng)
    chain, draw = posterior["chain"].values, posterior["draw"].values
    return _sem_dataset(spec, replicates, chain, draw), _sem_observed(spec)


def mixed_replicated_data(
    spec: BuiltMixedModel, posterior: xr.Dataset, seed: int | None, random_effects: str
) -> tuple[xr.Dataset, xr.Dataset]:
    """A mixed model's replicated responses, one per draw of ``posterior``, with ``random_effects``
    ``"fitted"`` or ``"new"``, and its observed responses; see the module docstring."""
    pymc_seed, rng = _seeds(seed)
    if spec.family == "gaussian":
        values = _gaussian_replicates(spec, posterior, random_effects, rng)
    else:
        values = _pymc_replicates(spec, posterior, random_effects, pymc_seed)
    chain, draw = posterior["chain"].values, posterior["draw"].values
    return _mixed_dataset(values, chain, draw, spec), _mixed_observed(spec)
