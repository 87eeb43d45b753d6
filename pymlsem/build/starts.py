"""Starting values of the free parameters, in the spirit of lavaan's "simple" start values.

NUTS chains start near these values (with PyMC's usual jitter), which keeps them away from the
degenerate regions of factor models (loadings of the wrong sign with a vanishing factor variance).
A user's ``start()`` always wins.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pymlsem.data.stats import SingleLevelStats, TwoLevelStats, level_moments


def observed_moments(stats: SingleLevelStats | TwoLevelStats) -> dict[int, tuple[dict, dict]]:
    """Rough per-level variances and means of the observed variables, by level then name."""
    names = list(stats.variables)
    if isinstance(stats, TwoLevelStats):
        moments = level_moments(stats)
        grand = dict(zip(names, moments.total_mean, strict=True))
        within = np.diag(moments.total_cov) - np.diag(moments.means_cov)
        return {
            1: (dict(zip(names, within, strict=True)), grand),
            2: (dict(zip(names, np.diag(moments.means_cov), strict=True)), grand),
        }
    mean = stats.mean if stats.mean is not None else np.zeros(len(names))
    return {1: (dict(zip(names, np.diag(stats.cov), strict=True)), dict(zip(names, mean, strict=True)))}


def start_values(
    table: pd.DataFrame, stats: SingleLevelStats | TwoLevelStats, latent: set[str]
) -> np.ndarray:
    """A start value (lavaan's scale) for every row of the table; NaN for rows that need none.

    Loadings 1, regressions 0, intercepts at the sample means, observed (residual) variances at half
    the variable's variance at that level, latent variances at half the variance of their first
    indicator, covariances 0.
    """
    moments = observed_moments(stats)
    first_indicator = {}
    for row in table.itertuples(index=False):
        if row.op == "=~":
            first_indicator.setdefault((row.lhs, int(row.level)), row.rhs)
    starts = np.full(len(table), np.nan)
    for r, row in enumerate(table.itertuples(index=False)):
        level = int(row.level)
        variances, means = moments.get(level, ({}, {}))
        if not np.isnan(row.start):
            starts[r] = row.start
        elif row.op == "=~":
            starts[r] = 1.0
        elif row.op == "~~" and row.lhs == row.rhs:
            name = first_indicator.get((row.lhs, level), row.lhs) if row.lhs in latent else row.lhs
            starts[r] = max(0.5 * float(variances.get(name, 1.0)), 0.05)
        elif row.op == "~1" and row.lhs not in latent:
            starts[r] = float(means.get(row.lhs, 0.0))
        else:
            starts[r] = 0.0
    return starts
