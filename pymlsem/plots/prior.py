"""Prior against posterior density of each parameter."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from pymlsem.exceptions import PymlsemError
from pymlsem.plots._common import (
    arviz_plots,
    as_names,
    columns,
    finish,
    flat,
    group,
    is_sem,
    layout,
    select,
    sem_draws,
    sem_lookup,
    tree,
)

#: Posterior variables of a mixed model compared with their priors (``sd__<label>`` per block too).
MIXED_VARIABLES = ("fixef", "sigma", "theta")


def _variables(fit: Any) -> list[str]:
    if is_sem(fit):
        return ["parameters", *(["defined"] if fit.model.built.defined else [])]
    posterior = group(fit.idata, "posterior")
    named = fit.spec.model.named_vars
    wanted = [*MIXED_VARIABLES, *(f"sd__{label}" for label in fit.spec.labels)]
    return [name for name in wanted if name in posterior and name in named]


def prior_draws(fit: Any, n_draws: int = 1000, seed: int | None = 0) -> xr.Dataset:
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
    if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 1:
        raise PymlsemError(f"n_draws must be a positive integer, not {n_draws!r}")
    variables = _variables(fit)
    stored = group(fit.idata, "prior")
    if stored is not None and all(name in stored for name in variables):
        return stored
    cache = fit.__dict__.setdefault("_prior_draws", {})
    key = (n_draws, seed, tuple(variables))
    if key not in cache:
        import pymc as pm

        model = fit.model.pymc_model if is_sem(fit) else fit.spec.model
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Potential.*")
            result = pm.sample_prior_predictive(
                draws=n_draws,
                model=model,
                var_names=variables,
                random_seed=seed,
                compile_kwargs={"mode": "FAST_COMPILE"},
            )
        cache[key] = result["prior"].to_dataset()
    return cache[key]


def _mixed_columns(fit: Any, source: xr.Dataset, variables: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Mixed-model variables as columns: ``fixef`` by term, ``sd__<label>[effect]``, ``sigma``, ``theta``."""
    blocks = dict(zip(fit.spec.labels, fit.spec.design.blocks, strict=True))
    parts, names = [], []
    for name in variables:
        values = flat(source[name])
        if name == "fixef":
            labels = list(fit.spec.design.fixed_names)
        elif name.startswith("sd__"):
            labels = [f"{name}[{effect}]" for effect in blocks[name[4:]].names]
        else:
            labels = (
                [name] * values.shape[-1]
                if values.shape[-1] == 1
                else [f"{name}[{k}]" for k in range(values.shape[-1])]
            )
        parts.append(values)
        names += labels
    return np.concatenate(parts, axis=-1), names


def prior_posterior_draws(
    fit: Any, var_names: str | Sequence[str] | None = None, n_draws: int = 1000, seed: int | None = 0
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
    if is_sem(fit):
        posterior_cols, prior_cols = sem_draws(fit), sem_draws(fit, prior)
        _, lookup = sem_lookup(fit)
        if names is None:
            free = slice(0, len(fit.model.built.free))
            return posterior_cols.isel(parameter=free), prior_cols.isel(parameter=free)
    else:
        variables = _variables(fit)
        values, labels = _mixed_columns(fit, group(fit.idata, "posterior"), variables)
        posterior_cols = columns(values, labels)
        prior_cols = columns(*_mixed_columns(fit, prior, variables))
        lookup = {label: [i] for i, label in enumerate(labels)}
        start = 0
        for name in variables:
            width = flat(prior[name]).shape[-1]
            lookup.setdefault(name, list(range(start, start + width)))
            start += width
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
    from arviz_base.labels import NoVarLabeller

    posterior, prior = prior_posterior_draws(fit, var_names, n_draws, seed)
    collection = azp.plot_prior_posterior(
        tree(posterior=posterior, prior=prior),
        backend="matplotlib",
        labeller=NoVarLabeller(),
        **layout(posterior.sizes["parameter"]),
    )
    return finish(collection.get_viz("figure"), path)
