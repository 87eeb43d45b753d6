"""Posterior summaries of one variable with a parameter dimension: moments, intervals, diagnostics."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats import ess, rhat

from pymlsem.exceptions import ControlError
from pymlsem.sample import is_real

SAMPLE_DIMS = ("chain", "draw")


def check_prob(prob: Any) -> None:
    """Raise :class:`~pymlsem.exceptions.ControlError` unless ``prob`` is a number between 0 and 1."""
    if not is_real(prob) or not 0 < prob < 1:
        raise ControlError(f"prob must be a number between 0 and 1 (e.g. 0.95 or 0.9), not {prob!r}")


def summarize_draws(draws: xr.DataArray, prob: float = 0.95) -> pd.DataFrame:
    """Mean, SD, equal-tailed interval, bulk/tail ESS and R-hat of each element of ``draws``.

    Parameters
    ----------
    draws
        Draws with dimensions ``chain``, ``draw`` and one parameter dimension.
    prob
        Probability of the central interval; columns are named ``q2.5``/``q97.5`` for 0.95.

    Returns
    -------
    pandas.DataFrame
        Indexed by the parameter coordinate, columns ``mean, sd, q<lo>, q<hi>, r_hat, ess_bulk, ess_tail``.
    """
    check_prob(prob)
    (dim,) = [d for d in draws.dims if d not in SAMPLE_DIMS]
    lo, hi = interval_bounds(prob)
    quantiles = draws.quantile([lo, hi], dim=SAMPLE_DIMS)
    frame = pd.DataFrame(
        {
            "mean": draws.mean(SAMPLE_DIMS).values,
            "sd": draws.std(SAMPLE_DIMS, ddof=1).values,
            quantile_name(lo): quantiles.sel(quantile=lo).values,
            quantile_name(hi): quantiles.sel(quantile=hi).values,
            "r_hat": _diagnostic(draws, rhat),
            "ess_bulk": _diagnostic(draws, ess, method="bulk"),
            "ess_tail": _diagnostic(draws, ess, method="tail"),
        },
        index=pd.Index(draws[dim].values, name=dim),
    )
    return frame


def quantile_name(q: float) -> str:
    """Column name of a quantile, lavaan/brms style: ``q2.5``, ``q97.5``."""
    return f"q{100 * q:g}"


def interval_bounds(prob: float) -> tuple[float, float]:
    """The quantiles that bound the central interval of probability ``prob``: ``(0.025, 0.975)`` for 0.95."""
    return (1 - prob) / 2, 1 - (1 - prob) / 2


def interval_names(prob: float) -> tuple[str, str]:
    """Column names of the central interval's bounds (:func:`quantile_name`): ``("q2.5", "q97.5")``."""
    lo, hi = interval_bounds(prob)
    return quantile_name(lo), quantile_name(hi)


def draw_summary(draws: np.ndarray, prob: float) -> dict[str, np.ndarray]:
    """Mean, SD and the central ``prob`` interval's bounds (named by :func:`interval_names`) of draws on
    axis 0."""
    check_prob(prob)
    lo, hi = interval_bounds(prob)
    names = interval_names(prob)
    return {
        "mean": draws.mean(0),
        "sd": draws.std(0, ddof=1),
        names[0]: np.quantile(draws, lo, axis=0),
        names[1]: np.quantile(draws, hi, axis=0),
    }


def _diagnostic(draws: xr.DataArray, func, **kwargs) -> np.ndarray:
    values = np.asarray(func(draws, **kwargs), dtype=float)
    constant = (draws.std(SAMPLE_DIMS) == 0).values
    values[constant] = np.nan
    return values


#: numbers held per batch of draws by the post-fit computations
_CHUNK_ELEMENTS = 4_000_000


def draw_chunks(n_draws: int, per_draw: int) -> Iterator[slice]:
    """Slices of draws such that one batch holds at most about :data:`_CHUNK_ELEMENTS` numbers."""
    size = max(1, _CHUNK_ELEMENTS // max(per_draw, 1))
    for start in range(0, n_draws, size):
        yield slice(start, min(start + size, n_draws))


def group(idata: Any, name: str) -> xr.Dataset | None:
    """One group of a fit's posterior object (a DataTree, or a stand-in namespace) as a Dataset."""
    if isinstance(idata, xr.DataTree):
        return idata[name].to_dataset() if name in idata.children else None
    node = getattr(idata, name, None)
    if node is None or isinstance(node, xr.Dataset):
        return node
    if isinstance(node, xr.DataTree):
        return node.to_dataset()
    return xr.Dataset(dict(node))


def columns(values: np.ndarray, names: Sequence[str]) -> xr.DataArray:
    """Draws (chain, draw, parameter) with plain integer chain/draw coordinates and the given names."""
    chains, draws = values.shape[:2]
    return xr.DataArray(
        np.asarray(values, dtype=float),
        dims=(*SAMPLE_DIMS, "parameter"),
        coords={"chain": np.arange(chains), "draw": np.arange(draws), "parameter": list(names)},
    )


def flat(data: xr.DataArray) -> np.ndarray:
    """A posterior variable as (chain, draw, k), its other dims flattened in order."""
    values = np.asarray(data.transpose(*SAMPLE_DIMS, ...).values, dtype=float)
    return values.reshape(*values.shape[:2], -1)


def stacked_draws(posterior: xr.Dataset, name: str) -> np.ndarray:
    """Draws of one posterior variable stacked chain by chain: shape (chain * draw, ...)."""
    values = np.asarray(posterior[name].transpose(*SAMPLE_DIMS, ...).values, dtype=float)
    return values.reshape(-1, *values.shape[2:])
