"""Item characteristic curves of IRT models (:func:`pymlsem.irt`): each item's probability of the answer 1
over the trait, with its posterior band."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from pymlsem.plots._common import finish, pyplot

__all__ = ["plot_item_curves"]

#: at most this many draws make the bands
_MAX_DRAWS = 1000


def plot_item_curves(fit: Any, items: list[str] | None = None, prob: float = 0.95, path: Any = None) -> Any:
    """One curve per item: ``P(y = 1 | theta) = logistic(a theta + d)`` from -4 to 4 (the trait's within SD
    is 1), the posterior mean of the probability with the central ``prob`` band over the draws; a dotted
    line marks each item's difficulty (posterior mean of ``b``).

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
    """
    plt = pyplot()
    names = list(fit.data.items)
    chosen = names if items is None else list(items)
    unknown = [i for i in chosen if i not in names]
    if unknown:
        raise ValueError(f"items {unknown} are not in the model; its items are {names}")
    columns = [names.index(i) for i in chosen]
    a = fit.idata.posterior["discrimination"].values.reshape(-1, len(names))[:, columns]
    d = fit.idata.posterior["intercept"].values.reshape(-1, len(names))[:, columns]
    keep = np.linspace(0, len(a) - 1, min(len(a), _MAX_DRAWS)).astype(int)
    a, d = a[keep], d[keep]
    theta = np.linspace(-4.0, 4.0, 161)
    curves = expit(a[:, :, None] * theta + d[:, :, None])  # draws x items x trait
    tail = 100 * (1 - prob) / 2
    lower, upper = np.percentile(curves, [tail, 100 - tail], axis=0)
    figure, axes = plt.subplots(figsize=(6.0, 4.0))
    for h, item in enumerate(chosen):
        (line,) = axes.plot(theta, curves[:, h].mean(0), label=item)
        axes.fill_between(theta, lower[h], upper[h], color=line.get_color(), alpha=0.2, linewidth=0)
        axes.axvline(float((-d[:, h] / a[:, h]).mean()), color=line.get_color(), linestyle=":", linewidth=0.8)
    axes.set_xlabel("trait (within SD = 1)")
    axes.set_ylabel("P(answer 1 | trait)")
    axes.set_ylim(-0.02, 1.02)
    if len(chosen) <= 12:
        axes.legend(frameon=False, fontsize="small")
    return finish(figure, path)
