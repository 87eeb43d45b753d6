"""MCMCglmm's pMCMC and R's significance stars."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["SIGNIF_LEGEND", "pmcmc", "signif_stars"]

SIGNIF_LEGEND = "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"
_CUTS = ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, "."))


def pmcmc(samples: ArrayLike) -> np.ndarray:
    """Two-sided posterior "p-value" of MCMCglmm's summary.

    ``pMCMC = 2 * max(0.5 / n, min(P(b > 0), 1 - P(b > 0)))``: twice the smaller tail proportion, floored
    at ``1 / n`` as MCMCglmm does, so draws that never cross 0 give ``1 / n`` rather than 0.

    Parameters
    ----------
    samples
        Draws, shape (n,) or (n, k) (chains pooled beforehand).

    Returns
    -------
    numpy.ndarray
        One value per parameter (a 0-d array for one-dimensional input).
    """
    values = np.asarray(samples, dtype=float)
    n = values.shape[0]
    above = (values > 0).mean(axis=0)
    return 2.0 * np.maximum(0.5 / n, np.minimum(above, 1.0 - above))


def signif_stars(p: float) -> str:
    """R's ``symnum`` code of a p-value.

    ``***`` up to 0.001, ``**`` up to 0.01, ``*`` up to 0.05, ``.`` up to 0.1, otherwise a blank (R's
    intervals are closed on the right, so 0.001, MCMCglmm's pMCMC floor for 1000 draws, gets ``***``).
    """
    if not np.isfinite(p):
        return " "
    for cut, code in _CUTS:
        if p <= cut:
            return code
    return " "
