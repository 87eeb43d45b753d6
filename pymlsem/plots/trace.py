"""Trace and density of each parameter, as MCMCglmm's ``plot(model$Sol)``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import gaussian_kde

from pymlsem.plots._common import finish, fit_draws, pyplot


def plot_trace_density(
    fit: Any, var_names: str | Sequence[str] | None = None, path: str | Path | None = None
) -> Any:
    """Trace (left) and density (right) of each parameter, as MCMCglmm's ``plot(model$Sol)``.

    Parameters
    ----------
    fit
        A fitted SEM (:class:`~pymlsem.results.fit.SEMFit`) or mixed model
        (:class:`~pymlsem.mlm.fit.MixedFit`).
    var_names
        SEM: names of free or defined parameters as the summary shows them (``"fw=~y2@within"``, a label,
        or ``"fw=~y2"`` when that names one parameter); all free parameters by default. Mixed model: names
        among the fixed effects (``Sol``: ``"(Intercept)"``, ``"Days"``) and variance components (``VCV``:
        ``"(Intercept):(Intercept).Subject"``, ``"units"``); the fixed effects by default.
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
        An unknown (or, for a two-level SEM, ambiguous) name in ``var_names``.
    """
    plt = pyplot()
    draws = fit_draws(fit, var_names)
    names = [str(name) for name in draws["parameter"].values]
    values = draws.transpose("parameter", "chain", "draw").values
    iterations = getattr(fit, "tune", 0) + 1 + np.arange(values.shape[2]) * getattr(fit, "thin", 1)
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
    return finish(fig, path)
