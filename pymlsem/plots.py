"""Plots of fitted models (matplotlib, an optional dependency: ``pip install matplotlib``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import gaussian_kde

from pymlsem.exceptions import PymlsemError

if TYPE_CHECKING:
    from pymlsem.mlm.fit import MixedFit

__all__ = ["plot_trace_density"]


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(
            "plotting needs matplotlib, which is not installed: pip install matplotlib "
            "(or pip install 'pymlsem[plots]')"
        ) from err
    return plt


def _select(fit: MixedFit, var_names: Sequence[str] | None) -> Any:
    """The draws to plot: fixed effects by default (``Sol``); any ``Sol`` or ``VCV`` column by name."""
    if var_names is None:
        draws = fit.sol_draws()
        return draws if draws.sizes["parameter"] else fit.vcv_draws()
    import xarray as xr

    both = xr.concat([fit.sol_draws(), fit.vcv_draws()], dim="parameter")
    known = [str(name) for name in both["parameter"].values]
    unknown = [name for name in var_names if name not in known]
    if unknown:
        raise PymlsemError(f"no parameter(s) {unknown} in the fit; choose among {known}")
    return both.sel(parameter=list(var_names))


def plot_trace_density(
    fit: MixedFit, var_names: Sequence[str] | None = None, path: str | Path | None = None
) -> Any:
    """Trace (left) and density (right) of each parameter, as MCMCglmm's ``plot(model$Sol)``.

    Parameters
    ----------
    fit
        A fitted mixed model.
    var_names
        Names among the fixed effects (``Sol``: ``"(Intercept)"``, ``"Days"``) and variance components
        (``VCV``: ``"(Intercept):(Intercept).Subject"``, ``"units"``); the fixed effects by default.
    path
        Where to save the figure as an image (format from the suffix, e.g. ``.png``); not saved if None.

    Returns
    -------
    matplotlib.figure.Figure
        One row per parameter; chains in separate colours, density of the pooled draws.

    Raises
    ------
    ImportError
        matplotlib is not installed.
    PymlsemError
        An unknown name in ``var_names``.
    """
    plt = _pyplot()
    draws = _select(fit, var_names)
    names = [str(name) for name in draws["parameter"].values]
    values = draws.transpose("parameter", "chain", "draw").values
    iterations = fit.tune + 1 + np.arange(values.shape[2]) * fit.thin
    fig, axes = plt.subplots(len(names), 2, figsize=(9, 2.2 * len(names)), squeeze=False)
    for (trace, density), name, chains in zip(axes, names, values, strict=True):
        for chain in chains:
            trace.plot(iterations, chain, linewidth=0.5)
        trace.set_title(f"Trace of {name}", fontsize=9)
        trace.set_xlabel("Iterations", fontsize=8)
        pooled = chains.reshape(-1)
        if np.ptp(pooled) > 0:
            grid = np.linspace(pooled.min(), pooled.max(), 200)
            density.plot(grid, gaussian_kde(pooled)(grid))
        density.plot(pooled, np.zeros_like(pooled), "|", color="black", markersize=4)
        density.set_title(f"Density of {name}", fontsize=9)
        density.set_xlabel(f"N = {pooled.size}", fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig
