"""Auto- and cross-correlations of chains at given lags, as coda's ``autocorr``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__ = ["autocorr_array", "autocorr_table"]


def _chain_acf(chain: np.ndarray, lags: Sequence[int]) -> np.ndarray:
    """R's ``acf`` of one multivariate chain (draw, par): ``[lag, i, j] = cor(x_i[t + lag], x_j[t])``."""
    n = chain.shape[0]
    centred = chain - chain.mean(axis=0)
    scale = np.sqrt(np.einsum("ti,ti->i", centred, centred) / n)
    scale = np.where(scale > 0, scale, np.nan)
    out = np.empty((len(lags), chain.shape[1], chain.shape[1]))
    for k, lag in enumerate(lags):
        cov = centred[lag:].T @ centred[: n - lag] / n
        out[k] = cov / np.outer(scale, scale)
    return out


def autocorr_array(draws: ArrayLike, lags: Sequence[int] = (0, 1, 5, 10, 50)) -> np.ndarray:
    """Auto- and cross-correlations of each chain, averaged over chains.

    Each chain is centred on its own mean and correlations use the divisor n, as R's ``acf`` (which
    coda's ``autocorr`` calls once per chain); the per-chain arrays are then averaged.

    Parameters
    ----------
    draws
        Shape (chain, draw, par).
    lags
        Lags in stored draws; lags not shorter than the chains are an error.

    Returns
    -------
    numpy.ndarray
        Shape (lag, par, par): ``[k, i, j]`` is the correlation of parameter i at draw ``t + lags[k]`` with
        parameter j at draw t (the diagonal is the autocorrelation).

    Raises
    ------
    ValueError
        Draws not three-dimensional, or a negative lag or one at least as long as the chains.
    """
    values = np.asarray(draws, dtype=float)
    if values.ndim != 3:
        raise ValueError(f"draws must have shape (chain, draw, par), not {values.shape}")
    lags = [int(lag) for lag in lags]
    n = values.shape[1]
    bad = [lag for lag in lags if not 0 <= lag < n]
    if bad:
        raise ValueError(f"lags {bad} are not in 0..{n - 1} (the chains have {n} draws)")
    return np.mean([_chain_acf(chain, lags) for chain in values], axis=0)


def autocorr_table(array: np.ndarray, names: Sequence[str], lag_labels: Sequence[int]) -> pd.DataFrame:
    """Lay an array from :func:`autocorr_array` out as a table that prints like coda's.

    Parameters
    ----------
    array
        Shape (lag, par, par).
    names
        Parameter names.
    lag_labels
        Lag of each slice, in iterations (printed as ``Lag 10``).

    Returns
    -------
    pandas.DataFrame
        Rows indexed by (``lag``, ``parameter``), one column per parameter; ``table.loc["Lag 10"]`` is the
        par x par matrix at that lag.
    """
    labels = [f"Lag {lag}" for lag in lag_labels]
    index = pd.MultiIndex.from_product([labels, list(names)], names=["lag", "parameter"])
    flat = np.asarray(array).reshape(len(labels) * len(names), len(names))
    return pd.DataFrame(flat, index=index, columns=pd.Index(list(names), name=None))
