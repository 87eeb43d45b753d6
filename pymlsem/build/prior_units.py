"""The unit of each parameter in the data, for default priors in the data's units.

A parameter's unit is what one unit of it means in the data (see :mod:`pymlsem.priors`): for a loading
``f =~ y`` ``sd(y) / sd(f)``, for a regression ``y ~ x`` ``sd(y) / sd(x)``, for an intercept or mean of
``v`` ``rms(v) = sqrt(mean(v)^2 + sd(v)^2)``, for a variance of ``v`` ``sd(v)``; correlations and
thresholds have none (1). Observed variables' means and SDs are the data's (over both levels of a
two-level model); ordered variables have mean 0 and SD 1 (their latent response). A latent variable takes
the scale of its marker (its first indicator with a fixed non-zero loading, divided by that loading), or
the square root of its fixed variance, or 1 when it has neither (e.g. a random slope).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pymlsem.data.stats import SingleLevelStats, TwoLevelStats, level_moments

__all__ = ["parameter_units"]


def parameter_units(
    table: pd.DataFrame, stats: SingleLevelStats | TwoLevelStats, latent: set[str]
) -> np.ndarray:
    """The unit of the parameter of every row of ``table`` (1 where it has none).

    Parameters
    ----------
    table
        The parameter table.
    stats
        Sufficient statistics of the data.
    latent
        Names of the latent variables (any level).

    Returns
    -------
    numpy.ndarray
        One positive unit per row.
    """
    scales = _observed_scales(stats)
    ordered = set(table.loc[table.op == "|", "lhs"])
    for name in ordered:
        scales[name] = (0.0, 1.0)
    scale_of = _LatentScales(table, scales, latent)
    units = np.ones(len(table))
    for r, row in enumerate(table.itertuples(index=False)):
        level = int(row.level)
        if row.op in ("=~", "~"):
            target, source = (row.rhs, row.lhs) if row.op == "=~" else (row.lhs, row.rhs)
            units[r] = scale_of(target, level)[1] / scale_of(source, level)[1]
        elif row.op == "~1":
            mean, sd = scale_of(row.lhs, level)
            units[r] = np.hypot(mean, sd)
        elif row.op == "~~" and row.lhs == row.rhs:
            units[r] = scale_of(row.lhs, level)[1]
    return np.where(np.isfinite(units) & (units > 0), units, 1.0)


def _observed_scales(stats: SingleLevelStats | TwoLevelStats) -> dict[str, tuple[float, float]]:
    """Each observed variable's mean and SD over all rows."""
    if isinstance(stats, TwoLevelStats):
        moments = level_moments(stats)
        mean, cov = moments.total_mean, moments.total_cov
    else:
        cov = stats.cov
        mean = stats.mean if stats.mean is not None else np.zeros(len(stats.variables))
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return {name: (float(m), float(s)) for name, m, s in zip(stats.variables, mean, sd, strict=True)}


class _LatentScales:
    """The (mean, SD) of a variable at a level: observed from the data, latent from its marker."""

    def __init__(self, table: pd.DataFrame, observed: dict[str, tuple[float, float]], latent: set[str]):
        self.observed = observed
        self.latent = latent
        self.markers: dict[tuple[str, int], tuple[str, float]] = {}
        self.fixed_variance: dict[tuple[str, int], float] = {}
        for row in table.itertuples(index=False):
            key = (row.lhs, int(row.level))
            fixed = int(row.free) == 0 and np.isfinite(row.value) and row.value != 0
            if row.op == "=~" and fixed:
                self.markers.setdefault(key, (row.rhs, float(row.value)))
            elif row.op == "~~" and row.lhs == row.rhs and fixed and row.value > 0:
                self.fixed_variance[key] = float(row.value)
        self.cache: dict[tuple[str, int], tuple[float, float]] = {}

    def __call__(self, name: str, level: int, seen: frozenset = frozenset()) -> tuple[float, float]:
        if name not in self.latent:
            return self.observed.get(name, (0.0, 1.0))
        key = (name, level)
        if key not in self.cache:
            if key in self.markers and key not in seen:
                indicator, loading = self.markers[key]
                mean, sd = self(indicator, level, seen | {key})
                self.cache[key] = (mean / abs(loading), sd / abs(loading))
            elif key in self.fixed_variance:
                self.cache[key] = (0.0, float(np.sqrt(self.fixed_variance[key])))
            else:
                self.cache[key] = (0.0, 1.0)
        return self.cache[key]
