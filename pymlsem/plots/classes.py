"""Class profiles of latent class models (:func:`pymlsem.lca`): each class's probability of every item's
highest category (a binary item's "yes"), with its posterior interval."""

from __future__ import annotations

from typing import Any

import numpy as np

from pymlsem.plots._common import finish, pyplot

__all__ = ["plot_class_profiles"]


def plot_class_profiles(fit: Any, prob: float = 0.95, path: Any = None) -> Any:
    """One line per class over the categorical items: the posterior mean probability of each item's highest
    category in the class, with the central ``prob`` interval; the legend gives the classes' overall
    proportions.

    Parameters
    ----------
    fit
        A latent class fit (:class:`pymlsem.latent_class.fit.LCAFit`).
    prob
        Mass of the intervals.
    path
        Save the figure there when given.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = pyplot()
    table = fit.item_probabilities(prob)
    highest = table.groupby("item", sort=False)["category"].transform(lambda c: c.iloc[-1])
    table = table[table["category"] == highest]
    lower, upper = (c for c in table.columns if c.startswith("q"))
    proportions = fit.class_proportions(prob)
    overall = proportions[(proportions["level"] == 1) & proportions["cluster_class"].isna()]
    items = list(dict.fromkeys(table["item"]))
    figure, axes = plt.subplots(figsize=(max(4.0, 0.7 * len(items) + 2.0), 3.5))
    for k, rows in table.groupby("class"):
        share = float(overall.loc[overall["class"] == k, "mean"].iloc[0])
        x = np.arange(len(rows)) + 0.06 * (k - 1)
        axes.errorbar(
            x,
            rows["mean"],
            yerr=[rows["mean"] - rows[lower], rows[upper] - rows["mean"]],
            marker="o",
            capsize=3,
            label=f"class {k} ({share:.0%})",
        )
    axes.set_xticks(np.arange(len(items)), items)
    axes.set_ylim(-0.02, 1.02)
    axes.set_ylabel("P(highest category | class)")
    axes.legend(frameon=False)
    return finish(figure, path)
