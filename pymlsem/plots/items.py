"""Item characteristic curves of IRT models (:func:`pymlsem.irt`): each item's probability of the answer 1
(an ordinal item's expected score as a share of its range) over the trait, with its posterior band."""

from __future__ import annotations

from typing import Any

import numpy as np

from pymlsem.plots._common import finish, pyplot

__all__ = ["plot_item_curves"]


def plot_item_curves(fit: Any, items: list[str] | None = None, prob: float = 0.95, path: Any = None) -> Any:
    """One curve per item from -4 to 4 (the trait's within SD is 1): a binary item's
    ``P(y = 1 | theta) = logistic(a theta + d)``, an ordinal item's expected score divided by C - 1
    (:meth:`pymlsem.IRTFit.item_curves`), the posterior mean with the central ``prob`` band over the draws;
    a dotted line marks each binary item's difficulty (posterior mean of ``b``).

    Parameters
    ----------
    fit
        An IRT fit (:class:`pymlsem.irt.fit.IRTFit`).
    items
        The items to draw (all by default).
    prob
        Mass of the bands.
    path
        Save the figure there when given.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    PymlsemError
        An item that is not in the model (:meth:`pymlsem.IRTFit.item_curves`).
    """
    plt = pyplot()
    chosen = list(fit.data.items) if items is None else list(items)
    theta = np.linspace(-4.0, 4.0, 161)
    curves = fit.item_curves(theta, items=chosen)  # draws x items x trait
    tail = 100 * (1 - prob) / 2
    lower, upper = np.percentile(curves, [tail, 100 - tail], axis=0)
    difficulty = fit.item_parameters().query("parameter == 'b'").set_index("item")["mean"]
    figure, axes = plt.subplots(figsize=(6.0, 4.0))
    for h, item in enumerate(chosen):
        (line,) = axes.plot(theta, curves[:, h].mean(0), label=item)
        axes.fill_between(theta, lower[h], upper[h], color=line.get_color(), alpha=0.2, linewidth=0)
        if item in difficulty.index:
            axes.axvline(difficulty[item], color=line.get_color(), linestyle=":", linewidth=0.8)
    axes.set_xlabel("trait (within SD = 1)")
    axes.set_ylabel("P(answer 1), or expected score / (C - 1)")
    axes.set_ylim(-0.02, 1.02)
    if len(chosen) <= 12:
        axes.legend(frameon=False, fontsize="small")
    return finish(figure, path)
