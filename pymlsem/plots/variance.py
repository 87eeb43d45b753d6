"""A mixed model's variance partition as a plot: each part's share of the total variance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pymlsem.plots._common import finish, pyplot

__all__ = ["plot_variance_partition"]


def plot_variance_partition(table: pd.DataFrame, prob: float = 0.95, path: str | Path | None = None) -> Any:
    """Each part's share of the total variance, posterior mean as a bar with its central interval.

    Parameters
    ----------
    table
        ``fit.variance_shares(prob)`` of a mixed-model fit: ``component``, ``mean`` and the interval's two
        quantile columns (the last two of ``component, type, mean, sd, q.., q..``).
    prob
        Probability of the interval (for the axis label).
    path
        Where to save the figure (format from the suffix); not saved if None.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = pyplot()
    lo, hi = table.columns[4], table.columns[5]
    position = np.arange(len(table))
    figure, axes = plt.subplots(figsize=(1.2 * len(table) + 2.0, 3.2))
    colors = ["0.6"] + [f"C{k}" for k in range(len(table) - 2)] + ["0.85"]
    axes.bar(position, table["mean"], color=colors, edgecolor="0.3", linewidth=0.6)
    # clipped at 0: a mean and a quantile of (nearly) equal draws may differ in their last bit
    errors = np.clip(np.vstack([table["mean"] - table[lo], table[hi] - table["mean"]]), 0.0, None)
    axes.errorbar(position, table["mean"], yerr=errors, fmt="none", ecolor="0.2", capsize=3, linewidth=1)
    for x, value in zip(position, table["mean"], strict=True):
        axes.annotate(f"{value:.2f}", (x, value), xytext=(4, 2), textcoords="offset points", fontsize=8)
    axes.set_xticks(position, table["component"].astype(str))
    axes.set_ylim(0.0, 1.0)
    axes.set_ylabel(f"share of the total variance\n(posterior mean, {prob:.0%} interval)")
    return finish(figure, path)
