"""Autocorrelation and rank plots of a fit's draws (arviz_plots)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pymlsem.plots._common import (
    arviz_plots,
    check_positive_integer,
    finish,
    fit_draws,
    layout,
    no_var_labeller,
    tree,
)


def plot_autocorr(
    fit: Any,
    var_names: str | Sequence[str] | None = None,
    max_lag: int = 100,
    path: str | Path | None = None,
) -> Any:
    """Autocorrelation of each parameter's draws against the lag, one line per chain.

    Parameters
    ----------
    fit
        A fitted SEM or mixed model.
    var_names
        Parameters to show, named as for :func:`~pymlsem.plots.plot_trace_density` (same defaults).
    max_lag
        Largest lag shown, in kept draws (fewer when the chains are shorter).
    path
        Where to save the figure as an image (format from the suffix); not saved if None.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per parameter.

    Raises
    ------
    ImportError
        matplotlib is not installed.
    PymlsemError
        An unknown parameter name, or ``max_lag`` not a positive integer.
    """
    azp = arviz_plots()
    check_positive_integer("max_lag", max_lag)
    draws = fit_draws(fit, var_names)
    collection = azp.plot_autocorr(
        tree(posterior=draws),
        max_lag=min(max_lag, draws.sizes["draw"]),
        backend="matplotlib",
        labeller=no_var_labeller(),
        **layout(draws.sizes["parameter"]),
        # arviz-plots 1.3 draws its band at 1.96/sqrt(max_lag), not 1.96/sqrt(draws): left out
        visuals={"credible_interval": False},
    )
    return finish(collection.get_viz("figure"), path)


def plot_rank(fit: Any, var_names: str | Sequence[str] | None = None, path: str | Path | None = None) -> Any:
    """Rank plots: per chain, the ECDF of the draws' fractional ranks (pooled over chains) minus uniform.

    With well-mixed chains each chain's ranks are uniform and its line stays near zero; a chain that
    sits higher or lower than the others bends away. This is ArviZ 1.x's rank plot
    (:func:`arviz_plots.plot_rank`): with several chains the panels carry the p-value of a multiple-chain
    uniformity test and mark suspicious points, with one chain a simultaneous envelope.

    Parameters
    ----------
    fit
        A fitted SEM or mixed model.
    var_names
        Parameters to show, named as for :func:`~pymlsem.plots.plot_trace_density` (same defaults).
    path
        Where to save the figure as an image (format from the suffix); not saved if None.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per parameter, one line per chain.

    Raises
    ------
    ImportError
        matplotlib is not installed.
    PymlsemError
        An unknown parameter name.
    """
    azp = arviz_plots()
    draws = fit_draws(fit, var_names)
    collection = azp.plot_rank(
        tree(posterior=draws),
        method="mtc_c" if draws.sizes["chain"] > 1 else "envelope",
        backend="matplotlib",
        labeller=no_var_labeller(),
        **layout(draws.sizes["parameter"]),
    )
    return finish(collection.get_viz("figure"), path)
