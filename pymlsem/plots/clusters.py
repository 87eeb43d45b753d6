"""Plots of a mixed model's clusters: a caterpillar plot of the cluster effects, per-cluster fitted lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pymlsem.exceptions import DataError, PymlsemError
from pymlsem.plots._common import finish, pyplot
from pymlsem.results.posterior import interval_names

__all__ = ["plot_caterpillar", "plot_cluster_lines"]


def plot_caterpillar(
    fit: Any,
    group: str | None = None,
    term: str = "(Intercept)",
    prob: float = 0.95,
    path: str | Path | None = None,
) -> Any:
    """Each cluster's effect with its central interval, sorted by the posterior mean (lme4's ``dotplot``).

    Parameters
    ----------
    fit
        A fitted mixed model.
    group
        The grouping factor (the first one by default).
    term
        The effect (``"(Intercept)"``, or a random slope's name).
    prob
        Probability of the intervals.
    path
        Where to save the figure (format from the suffix); not saved if None.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    PymlsemError
        An unknown grouping factor or effect.
    """
    plt = pyplot()
    table = fit.ranef(summary=True, prob=prob)
    groups = list(dict.fromkeys(table["grp"]))
    group = groups[0] if group is None else group
    if group not in groups:
        raise PymlsemError(f"no grouping factor {group!r}; the model has {groups}")
    rows = table[table["grp"] == group]
    terms = list(dict.fromkeys(rows["term"]))
    if term not in terms:
        raise PymlsemError(f"no effect {term!r} of {group!r}; its effects are {terms}")
    rows = rows[rows["term"] == term].sort_values("mean")
    lo, hi = interval_names(prob)
    position = np.arange(len(rows))
    figure, axes = plt.subplots(figsize=(5.0, max(3.0, 0.12 * len(rows) + 1.0)))
    axes.hlines(position, rows[lo], rows[hi], color="0.6", linewidth=1)
    axes.plot(rows["mean"], position, "o", markersize=3, color="C0")
    axes.axvline(0.0, color="0.3", linewidth=0.8, linestyle="--")
    axes.set_yticks(position, rows["level"].astype(str), fontsize=6 if len(rows) > 40 else 8)
    axes.set_xlabel(f"{term} | {group}: posterior mean and {prob:.0%} interval")
    return finish(figure, path)


def plot_cluster_lines(
    fit: Any,
    x: str,
    data: pd.DataFrame,
    group: str | None = None,
    path: str | Path | None = None,
) -> Any:
    """Each cluster's fitted values against a predictor, one line per cluster, over the data (chapter 6).

    Parameters
    ----------
    fit
        A fitted mixed model.
    x
        The predictor on the horizontal axis (a column of ``data``).
    data
        The data the model was fitted to (its rows are matched by index).
    group
        The grouping factor whose clusters get a line (the first one by default).
    path
        Where to save the figure; not saved if None.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    DataError
        ``x`` or the grouping factor not in ``data``.
    """
    plt = pyplot()
    blocks = fit.spec.design.blocks
    block = blocks[0] if group is None else next((b for b in blocks if b.group == group), None)
    if block is None:
        raise PymlsemError(f"no grouping factor {group!r}; the model has {[b.group for b in blocks]}")
    for name in (x, *block.columns):
        if name not in data.columns:
            raise DataError(f"data has no column {name!r}")
    fitted = fit.fitted()["mean"]
    rows = data.loc[fitted.index]
    figure, axes = plt.subplots(figsize=(6.0, 4.0))
    if fit.spec.family == "gaussian":  # other families' fitted values are on the response-mean scale
        axes.scatter(rows[x], fit.spec.design.y, s=6, color="0.7", zorder=1)
    frame = pd.DataFrame({"x": rows[x].to_numpy(), "fitted": fitted.to_numpy(), "cluster": block.codes})
    for _, part in frame.groupby("cluster"):
        part = part.sort_values("x")
        axes.plot(part["x"], part["fitted"], linewidth=0.8, alpha=0.7, zorder=2)
    axes.set_xlabel(x)
    axes.set_ylabel(f"{fit.spec.design.response} (fitted per {block.group})")
    return finish(figure, path)
