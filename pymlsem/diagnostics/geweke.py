"""Geweke's convergence diagnostic, as coda's ``geweke.diag``."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from pymlsem.diagnostics.spectral import spectrum0_ar

__all__ = ["geweke_z"]


def geweke_z(x: ArrayLike, first: float = 0.1, last: float = 0.5) -> float:
    """Geweke z-score: difference of the means of the first and last parts of one chain.

    ``z = (mean(a) - mean(b)) / sqrt(S_a(0) / n_a + S_b(0) / n_b)`` with ``S(0)`` the spectral density at
    zero of each part (:func:`~pymlsem.diagnostics.spectral.spectrum0_ar`), as coda's ``geweke.diag``.

    Parameters
    ----------
    x
        One chain, shape (n,).
    first, last
        Fractions of the chain in the first and last windows (coda's ``frac1 = 0.1``, ``frac2 = 0.5``).

    Returns
    -------
    float
        Approximately standard normal for a stationary chain; NaN for a constant chain.

    Raises
    ------
    ValueError
        Fractions that are not positive or that overlap (``first + last > 1``).
    """
    if not (0 < first < 1 and 0 < last < 1 and first + last <= 1):
        raise ValueError(f"need 0 < first, last < 1 and first + last <= 1, not {first}, {last}")
    values = np.asarray(x, dtype=float)
    n = values.shape[0]
    # coda's windows on iterations 1..n: 1..ceiling(1 + first (n - 1)) and floor(n - last (n - 1))..n
    start = values[: int(np.ceil(1 + first * (n - 1)))]
    end = values[int(np.floor(n - last * (n - 1))) - 1 :]
    if start.shape[0] < 2 or end.shape[0] < 2:
        raise ValueError(f"a chain of {n} draws is too short for Geweke's diagnostic")
    variance = spectrum0_ar(start) / start.shape[0] + spectrum0_ar(end) / end.shape[0]
    if variance <= 0:
        return float("nan")
    return float((start.mean() - end.mean()) / np.sqrt(variance))
