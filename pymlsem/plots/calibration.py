"""Rank histograms of a simulation-based calibration (:func:`pymlsem.studies.calibration.sem_sbc`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats

from pymlsem.plots._common import finish, pyplot

__all__ = ["plot_rank_histograms"]


def plot_rank_histograms(counts: Mapping[str, np.ndarray], replicates: int, path: Any = None) -> Any:
    """One histogram of ranks per parameter, with the band that holds 99% of a uniform bin's counts.

    Parameters
    ----------
    counts
        Per parameter, the counts of its ranks in bins of equal width
        (:meth:`pymlsem.studies.calibration.Calibration.histogram`).
    replicates
        Number of replicates (each bin's count is binomial with ``1 / bins`` of them when the ranks are
        uniform).
    path
        A file to save the figure to (optional).

    Returns
    -------
    matplotlib.figure.Figure
        A grid of histograms, four to a row.
    """
    plt = pyplot()
    columns = min(4, len(counts))
    rows = math.ceil(len(counts) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 1.9 * rows), squeeze=False)
    for ax, (name, values) in zip(axes.flat, counts.items(), strict=False):
        bins = len(values)
        low, high = stats.binom.ppf([0.005, 0.995], replicates, 1.0 / bins)
        ax.axhspan(low, high, color="0.85", zorder=0)
        ax.bar(np.arange(bins), values, width=1.0, color="C0", edgecolor="white")
        ax.axhline(replicates / bins, color="0.4", linewidth=0.8)
        ax.set_title(name, fontsize=8)
        ax.set_xticks([])
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(counts) :]:
        ax.set_visible(False)
    figure.tight_layout()
    return finish(figure, path)
