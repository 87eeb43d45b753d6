"""Checks on a user's data frame before anything is built: columns, types, missing values.

The caller's data frame is never modified: every function works on a copy of the columns it needs.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pymlsem.data.stats import SingleLevelStats, TwoLevelStats, level_moments
from pymlsem.exceptions import DataError


def select_model_data(
    data: pd.DataFrame, variables: Sequence[str], cluster: str | None = None
) -> pd.DataFrame:
    """The model's columns of ``data`` (and the cluster column), checked, complete cases only.

    Parameters
    ----------
    data
        The user's data frame (not modified).
    variables
        Observed variables of the model.
    cluster
        Name of the cluster column of a two-level model.

    Returns
    -------
    pandas.DataFrame
        A new frame with ``variables`` as float64 columns (and ``cluster``), rows with a missing value
        in any of them removed with a warning that counts them.

    Raises
    ------
    DataError
        When ``data`` is not a data frame, a variable or the cluster column is missing, or a
        variable is not numeric.
    """
    check_columns(data, variables, cluster)
    keep = [*variables, *([cluster] if cluster is not None else [])]
    frame = data.loc[:, keep].copy()
    for name in variables:
        if not pd.api.types.is_numeric_dtype(frame[name]) or pd.api.types.is_bool_dtype(frame[name]):
            raise DataError(
                f"column {name!r} is not numeric (dtype {frame[name].dtype}); the model needs numbers: "
                "convert it (e.g. with pd.to_numeric or category codes) before fitting"
            )
        frame[name] = frame[name].astype(np.float64)
    incomplete = frame.isna().any(axis=1)
    if incomplete.any():
        count = int(incomplete.sum())
        columns_with_na = [c for c in keep if frame[c].isna().any()]
        warnings.warn(
            f"dropped {count} of {len(frame)} rows with missing values in {', '.join(columns_with_na)} "
            "(listwise deletion; the model is fitted to the complete rows)",
            UserWarning,
            stacklevel=3,
        )
        frame = frame.loc[~incomplete]
    if len(frame) == 0:
        raise DataError("no complete rows are left: every row has a missing value in a model variable")
    return frame.reset_index(drop=True)


def check_columns(data: pd.DataFrame, variables: Sequence[str], cluster: str | None) -> None:
    """Raise a :class:`DataError` unless ``data`` is a data frame with ``variables`` and ``cluster``."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    columns = [str(c) for c in data.columns]
    missing = [v for v in variables if v not in columns]
    if missing:
        hints = []
        for name in missing:
            close = difflib.get_close_matches(name, columns, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise DataError(
            f"the model uses variable(s) not in the data: {', '.join(hints)}. "
            "Check the spelling in the model string, or add the column(s) to the data."
        )
    if cluster is not None and cluster not in columns:
        close = difflib.get_close_matches(cluster, columns, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DataError(f"the cluster column {cluster!r} is not in the data{hint}")


def exogenous_values(table: pd.DataFrame, stats: SingleLevelStats | TwoLevelStats) -> np.ndarray:
    """Sample values of the ``exo`` rows of a parameter table (lavaan's fixed.x), in row order.

    Single-level models and level-1 covariates of two-level models take the ML moments over all rows;
    level-2 (between-only) covariates take those of the cluster values. Means of a covariance-only
    summary are 0.
    """
    names = list(stats.variables)
    if isinstance(stats, TwoLevelStats):
        moments = level_moments(stats)
        by_level = {1: (moments.total_mean, moments.total_cov), 2: (moments.means_mean, moments.means_cov)}
    else:
        mean = stats.mean if stats.mean is not None else np.zeros(len(names))
        by_level = {1: (mean, stats.cov)}
    values = []
    for row in table.loc[table.exo == 1].itertuples(index=False):
        mean, cov = by_level[int(row.level)]
        if row.op == "~1":
            values.append(float(mean[names.index(row.lhs)]))
        else:
            values.append(float(cov[names.index(row.lhs), names.index(row.rhs)]))
    return np.asarray(values, dtype=float)
