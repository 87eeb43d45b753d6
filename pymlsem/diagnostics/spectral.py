"""Spectral density at frequency zero from an AR fit (coda's ``spectrum0.ar``) and coda's effective size."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["effective_size", "spectrum0_ar"]


def _autocovariance(x: np.ndarray, max_lag: int) -> np.ndarray:
    centred = x - x.mean()
    n = centred.shape[0]
    return np.array([centred[lag:] @ centred[: n - lag] / n for lag in range(max_lag + 1)])


def spectrum0_ar(x: ArrayLike) -> float:
    """Spectral density at zero of one chain, from an autoregressive model as coda's ``spectrum0.ar``.

    The AR order is chosen by AIC among ``0 .. min(n - 1, floor(10 log10 n))`` with Yule-Walker estimates
    (R's ``ar.yw``, Levinson-Durbin); the density is ``var_pred / (1 - sum(ar))^2``.

    Parameters
    ----------
    x
        One chain, shape (n,).

    Returns
    -------
    float
        The spectral density at zero (``var(x)`` for white noise); 0 for a constant chain.
    """
    values = np.asarray(x, dtype=float)
    n = values.shape[0]
    order_max = int(min(n - 1, np.floor(10 * np.log10(n))))
    acov = _autocovariance(values, order_max)
    if acov[0] <= 0:
        return 0.0
    coefs = [np.zeros(0)]
    variances = [acov[0]]
    phi = np.zeros(0)
    for k in range(1, order_max + 1):
        reflection = (acov[k] - phi @ acov[k - 1 : 0 : -1]) / variances[-1]
        phi = np.append(phi - reflection * phi[::-1], reflection)
        coefs.append(phi)
        variances.append(variances[-1] * (1 - reflection**2))
    aic = n * np.log(np.maximum(variances, np.finfo(float).tiny)) + 2 * np.arange(order_max + 1)
    order = int(np.argmin(aic))
    var_pred = variances[order] * n / (n - (order + 1))
    return float(var_pred / (1.0 - coefs[order].sum()) ** 2)


def effective_size(chains: ArrayLike) -> float:
    """coda's ``effectiveSize``: ``n var(x) / spectrum0(x)`` per chain, summed over chains.

    Parameters
    ----------
    chains
        Draws of one parameter, shape (chain, draw) or (draw,).

    Returns
    -------
    float
        Effective number of independent draws (0 for a constant parameter).
    """
    values = np.atleast_2d(np.asarray(chains, dtype=float))
    total = 0.0
    for chain in values:
        spec = spectrum0_ar(chain)
        if spec > 0:
            total += chain.shape[0] * chain.var(ddof=1) / spec
    return total
