"""Highest posterior density intervals, computed as coda's ``HPDinterval``."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["hpd_interval"]


def hpd_interval(samples: ArrayLike, prob: float = 0.95) -> np.ndarray:
    """Shortest interval that holds ``round(n * prob) + 1`` of the sorted draws (coda's ``HPDinterval``).

    Parameters
    ----------
    samples
        Draws, shape (n,) or (n, k): one column per parameter (chains pooled beforehand).
    prob
        Target probability content, in (0, 1).

    Returns
    -------
    numpy.ndarray
        Shape (2,) for one parameter or (k, 2): lower and upper bounds.

    Raises
    ------
    ValueError
        ``prob`` outside (0, 1) or fewer than two draws.
    """
    if not 0 < prob < 1:
        raise ValueError(f"prob must be in (0, 1), not {prob}")
    values = np.asarray(samples, dtype=float)
    single = values.ndim == 1
    values = np.sort(values.reshape(values.shape[0], -1), axis=0)
    n = values.shape[0]
    if n < 2:
        raise ValueError("an HPD interval needs at least two draws")
    gap = max(1, min(n - 1, round(n * prob)))
    widths = values[gap:] - values[: n - gap]
    start = np.argmin(widths, axis=0)
    columns = np.arange(values.shape[1])
    bounds = np.stack([values[start, columns], values[start + gap, columns]], axis=-1)
    return bounds[0] if single else bounds
