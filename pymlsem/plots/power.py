"""Power curves of simulation studies (:func:`pymlsem.power_curve`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from pymlsem.plots._common import finish, pyplot

__all__ = ["plot_power_curve"]


def plot_power_curve(table: pd.DataFrame, target: float = 0.8, path: Any = None) -> Any:
    """Power against the number of clusters, with its intervals and a line at ``target``.

    Parameters
    ----------
    table
        :attr:`pymlsem.studies.power.PowerCurve.table` (``clusters``, ``power``, ``lower``, ``upper``).
    target
        The power to reach (a dashed line).
    path
        Save the figure there when given.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(5.0, 3.5))
    axes.errorbar(
        table["clusters"],
        table["power"],
        yerr=[table["power"] - table["lower"], table["upper"] - table["power"]],
        marker="o",
        capsize=3,
    )
    axes.axhline(target, color="0.4", linestyle="--", linewidth=0.8)
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("number of clusters")
    axes.set_ylabel("power (95% interval excludes 0)")
    return finish(figure, path)
