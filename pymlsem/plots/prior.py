"""Prior against posterior density of each parameter."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from pymlsem.plots._common import (
    arviz_plots,
    as_names,
    check_positive_integer,
    finish,
    layout,
    no_var_labeller,
    select,
    tree,
)
from pymlsem.results.posterior import group
from pymlsem.workflow.protocol import Fitted


def prior_draws(fit: Fitted, n_draws: int = 1000, seed: int | None = 0) -> xr.Dataset:
    """Draws from the priors of a fit's parameters.

    The fit's own ``prior`` group is used when it holds the variables; otherwise they are drawn with
    ``pymc.sample_prior_predictive`` from the fit's PyMC model (compiled with ``mode="FAST_COMPILE"``) and
    cached on the fit. As in PyMC's prior predictive sampling, potentials (inequality constraints, the
    integrated likelihood) are ignored.

    Parameters
    ----------
    fit
        A fitted SEM (variables ``parameters`` and ``defined``) or mixed model (``fixef``, ``sigma``,
        ``theta``, ``sd__<label>``: those in its posterior).
    n_draws
        Number of prior draws.
    seed
        Random seed.

    Returns
    -------
    xarray.Dataset
        The prior draws, dims ``(chain, draw, ...)`` as in the posterior.

    Raises
    ------
    PymlsemError
        ``n_draws`` not a positive integer.
    """
    check_positive_integer("n_draws", n_draws)
    variables = fit.prior_variables()
    stored = group(fit.idata, "prior")
    if stored is not None and all(name in stored for name in variables):
        return stored
    cache = fit.__dict__.setdefault("_prior_draws", {})
    key = (n_draws, seed, tuple(variables))
    if key not in cache:
        import pymc as pm

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Potential.*")
            result = pm.sample_prior_predictive(
                draws=n_draws,
                model=fit.pymc_model,
                var_names=variables,
                random_seed=seed,
                compile_kwargs={"mode": "FAST_COMPILE"},
            )
        cache[key] = result["prior"].to_dataset()
    return cache[key]


def prior_posterior_draws(
    fit: Fitted, var_names: str | Sequence[str] | None = None, n_draws: int = 1000, seed: int | None = 0
) -> tuple[xr.DataArray, xr.DataArray]:
    """Posterior and prior draws of the same parameters, dims ``(chain, draw, parameter)``.

    Parameters
    ----------
    fit
        A fitted SEM or mixed model.
    var_names
        SEM: free or defined parameters by name (as :func:`~pymlsem.plots.plot_trace_density`); all free
        parameters by default. Mixed model: variables (``"fixef"``, ``"sigma"``, ``"sd__<label>"``) or
        their elements (a fixed-effect term such as ``"x"``, ``"sd__g[x]"``); all of them by default.
    n_draws, seed
        Prior draws (see :func:`prior_draws`).

    Returns
    -------
    tuple of xarray.DataArray
        ``(posterior, prior)``.

    Raises
    ------
    PymlsemError
        An unknown parameter name.
    """
    names = as_names(var_names)
    prior = prior_draws(fit, n_draws, seed)
    posterior_cols, lookup, default = fit.prior_columns(group(fit.idata, "posterior"))
    prior_cols, _, _ = fit.prior_columns(prior)
    if names is None:
        return posterior_cols.isel(parameter=default), prior_cols.isel(parameter=default)
    return select(posterior_cols, names, lookup), select(prior_cols, names, lookup)


def plot_prior_posterior(
    fit: Any,
    var_names: str | Sequence[str] | None = None,
    n_draws: int = 1000,
    seed: int | None = 0,
    path: str | Path | None = None,
) -> Any:
    """Prior and posterior density of each parameter in one panel (:func:`arviz_plots.plot_prior_posterior`).

    Parameters
    ----------
    fit
        A fitted SEM or mixed model.
    var_names
        Parameters to show (see :func:`prior_posterior_draws`).
    n_draws
        Number of prior draws (when the fit has no ``prior`` group; see :func:`prior_draws`).
    seed
        Seed of the prior draws.
    path
        Where to save the figure as an image (format from the suffix); not saved if None.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per parameter, prior and posterior in two colours with a legend.

    Raises
    ------
    ImportError
        matplotlib is not installed.
    PymlsemError
        An unknown parameter name, or a bad ``n_draws``.
    """
    azp = arviz_plots()
    posterior, prior = prior_posterior_draws(fit, var_names, n_draws, seed)
    collection = azp.plot_prior_posterior(
        tree(posterior=posterior, prior=prior),
        backend="matplotlib",
        labeller=no_var_labeller(),
        **layout(posterior.sizes["parameter"]),
    )
    return finish(collection.get_viz("figure"), path)
