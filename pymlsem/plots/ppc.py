"""Posterior predictive check: the observed data's density against replicated data sets' densities."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from pymlsem.exceptions import PymlsemError
from pymlsem.plots._common import as_names, check_positive_integer, finish, pyplot
from pymlsem.results.posterior import SAMPLE_DIMS, group
from pymlsem.workflow.predictive import spread_positions
from pymlsem.workflow.protocol import Fitted

ArrayOrMapping = Any  # array-like, xarray object, or a mapping name -> array-like


def _replicate_matrix(replicates: Any) -> np.ndarray:
    """Replicates as (S, n): chain/draw (or ``sample``) dims stacked, the other dims flattened."""
    if isinstance(replicates, xr.DataArray):
        sample = [d for d in replicates.dims if d in (*SAMPLE_DIMS, "sample")]
        if sample:
            values = np.asarray(replicates.transpose(*sample, ...).values, dtype=float)
            size = math.prod(replicates.sizes[d] for d in sample)
            return values.reshape(size, -1)
    values = np.asarray(replicates, dtype=float)
    return values.reshape(1, -1) if values.ndim == 1 else values.reshape(-1, values.shape[-1])


def _pairs(observed: ArrayOrMapping, replicates: ArrayOrMapping) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (observed values, replicates (S, n)), without missing observations or NaN replicates."""
    if isinstance(observed, Mapping | xr.Dataset):
        names = [str(name) for name in (observed.data_vars if isinstance(observed, xr.Dataset) else observed)]
        missing = [name for name in names if name not in replicates]
        if missing:
            raise PymlsemError(f"no replicates of {missing}")
        raw = {name: (observed[name], replicates[name]) for name in names}
    else:
        raw = {"y": (observed, replicates)}
    out = {}
    for name, (obs, reps) in raw.items():
        obs = np.asarray(obs, dtype=float).reshape(-1)
        reps = _replicate_matrix(reps)
        if reps.shape[1] != obs.size:
            raise PymlsemError(
                f"{name}: {obs.size} observed values but replicated data sets of {reps.shape[1]} values"
            )
        seen = ~np.isnan(obs)
        reps = reps[:, seen]
        out[name] = (obs[seen], reps[~np.isnan(reps).any(axis=1)])
    return out


def _is_discrete(*arrays: np.ndarray) -> bool:
    return all(np.array_equal(a, np.round(a)) for a in arrays)


def _density(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kernel density estimates of each row of ``values``: (grid, density), both (rows, grid points)."""
    from arviz_stats.base import array_stats

    grid, density, _ = array_stats.kde(values, grid_len=256)
    return np.atleast_2d(grid), np.atleast_2d(density)


def _frequencies(values: np.ndarray, support: np.ndarray) -> np.ndarray:
    """Relative frequency of each value in ``support``, per row of ``values``."""
    rows, size = values.shape[0], support.size
    where = np.searchsorted(support, values) + size * np.arange(rows)[:, None]
    return np.bincount(where.ravel(), minlength=rows * size).reshape(rows, size) / values.shape[1]


def plot_ppc(
    observed: ArrayOrMapping,
    replicates: ArrayOrMapping,
    *,
    num_replicates: int = 50,
    path: str | Path | None = None,
) -> Any:
    """Density of the observed data over the densities of replicated data sets, one panel per variable.

    Continuous data: kernel density estimates (replicates thin and light, the observed data black, the
    replicates' pointwise mean dashed). Integer data (counts, 0/1): relative frequencies of each value.
    Missing observed values are left out (with the replicates at the same positions), as are replicated
    data sets with a NaN (draws whose implied covariance was not positive semi-definite).

    Parameters
    ----------
    observed
        Observed values, shape (n,) (or any shape, flattened), or a mapping / Dataset of such arrays by
        variable name.
    replicates
        Replicated data sets: an array whose last axes match ``observed`` (shape (S, n), or (chain, draw,
        n)), a DataArray with dims ``chain``/``draw`` (or ``sample``) and the observation dims, or a
        mapping / Dataset of those with the names of ``observed``.
    num_replicates
        How many replicated data sets to draw (spread evenly over all of them).
    path
        Where to save the figure as an image (format from the suffix); not saved if None.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ImportError
        matplotlib is not installed.
    PymlsemError
        Replicates whose size does not match the observed data, a variable without replicates, no
        replicated data set without NaN, or ``num_replicates`` not a positive integer.
    """
    plt = pyplot()
    check_positive_integer("num_replicates", num_replicates)
    pairs = _pairs(observed, replicates)
    ncols = min(3, len(pairs))
    nrows = math.ceil(len(pairs) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
    for ax in axes.ravel()[len(pairs) :]:
        ax.set_axis_off()
    for ax, (name, (obs, reps)) in zip(axes.ravel(), pairs.items(), strict=False):
        if reps.shape[0] == 0:
            raise PymlsemError(f"{name}: every replicated data set has a NaN")
        shown = reps[spread_positions(reps.shape[0], num_replicates)]
        if _is_discrete(obs, shown):
            support = np.unique(np.concatenate([obs, shown.ravel()]))
            freq = _frequencies(shown, support)
            for row in freq:
                ax.plot(support, row, drawstyle="steps-mid", color="C0", alpha=0.3, linewidth=0.8)
            ax.plot(support, freq.mean(axis=0), drawstyle="steps-mid", color="C1", linestyle="--")
            ax.plot(support, _frequencies(obs[None, :], support)[0], drawstyle="steps-mid", color="black")
            ax.set_ylabel("relative frequency", fontsize=8)
        else:
            grid, density = _density(shown)
            for x, d in zip(grid, density, strict=True):
                ax.plot(x, d, color="C0", alpha=0.3, linewidth=0.8)
            common = np.linspace(grid.min(), grid.max(), 256)
            mean = np.mean(
                [np.interp(common, x, d, left=0, right=0) for x, d in zip(grid, density, strict=True)], axis=0
            )
            ax.plot(common, mean, color="C1", linestyle="--")
            obs_grid, obs_density = _density(obs[None, :])
            ax.plot(obs_grid[0], obs_density[0], color="black", linewidth=1.5)
            ax.set_yticks([])
        ax.set_title(name, fontsize=10)
    handles = [
        plt.Line2D([], [], color="black", linewidth=1.5, label="observed"),
        plt.Line2D([], [], color="C0", alpha=0.5, label=f"replicated ({shown.shape[0]})"),
        plt.Line2D([], [], color="C1", linestyle="--", label="replicated mean"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 if nrows == 1 else 0.03, 1, 1))
    return finish(fig, path)


def plot_fit_ppc(
    fit: Fitted,
    var_names: str | Sequence[str] | None = None,
    *,
    num_replicates: int = 50,
    path: str | Path | None = None,
) -> Any:
    """:func:`plot_ppc` of the replicated data stored by ``fit.posterior_predictive()``.

    Parameters
    ----------
    fit
        A fitted SEM or mixed model whose ``idata`` has a ``posterior_predictive`` group (and an
        ``observed_data`` group, or raw data on the model).
    var_names
        Variables to show: SEM observed variables (by default all but the exogenous covariates, which the
        replicates hold at their observed values); for mixed models the response ``"y"``.
    num_replicates
        How many replicated data sets to draw.
    path
        Where to save the figure as an image (format from the suffix); not saved if None.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ImportError
        matplotlib is not installed.
    PymlsemError
        No ``posterior_predictive`` group (run ``fit.posterior_predictive()`` first), or an unknown variable.
    """
    pyplot()
    replicated = group(fit.idata, "posterior_predictive")
    if replicated is None:
        raise PymlsemError("the fit has no posterior predictive draws: run fit.posterior_predictive() first")
    available = [str(name) for name in replicated.data_vars]
    names = as_names(var_names) or fit.replicated_variables(available)
    unknown = [name for name in names if name not in available]
    if unknown:
        raise PymlsemError(f"no replicated variable(s) {unknown}; choose among {available}")
    observed = group(fit.idata, "observed_data")
    if observed is None or any(name not in observed for name in names):
        observed = fit.observed_values(names)
    return plot_ppc(
        {name: np.asarray(observed[name]) for name in names},
        {name: replicated[name] for name in names},
        num_replicates=num_replicates,
        path=path,
    )
