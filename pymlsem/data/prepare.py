"""Checks on a user's data frame before anything is built: columns, types, missing values.

The caller's data frame is never modified: every function works on a copy of the columns it needs.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pymlsem.data.stats import SingleLevelStats, TwoLevelStats, level_moments
from pymlsem.exceptions import DataError


def as_pandas(data: object) -> object:
    """``data`` as a pandas DataFrame when it is another eager data frame (polars, PyArrow, ... through
    narwhals); anything else unchanged (:func:`check_frame` then says what is wrong)."""
    if isinstance(data, pd.DataFrame):
        return data
    import narwhals as nw  # here: pandas frames, the common case, do without its 0.1 s of import

    try:
        frame = nw.from_native(data, eager_only=True)
    except TypeError:
        return data
    return frame.to_pandas()


def check_frame(data: object) -> None:
    """Raise a :class:`DataError` unless ``data`` is a pandas data frame with unique column names."""
    if not isinstance(data, pd.DataFrame):
        hint = ""
        if isinstance(data, np.ndarray):
            hint = " (wrap it: pandas.DataFrame(array, columns=[...names the model uses...]))"
        raise DataError(
            f"data must be a data frame (pandas, polars, PyArrow, ...), got {type(data).__name__}{hint}"
        )
    duplicated = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
    if duplicated:
        raise DataError(
            f"data has several columns named {', '.join(map(repr, duplicated))}: a variable must be one "
            "column; rename or drop the duplicates"
        )


def absent_columns(data: pd.DataFrame, names: Sequence[str]) -> list[str]:
    """The ``names`` that are not columns of ``data``, each quoted with the closest column as a hint."""
    columns = [str(c) for c in data.columns]
    hints = []
    for name in (n for n in names if n not in columns):
        close = difflib.get_close_matches(name, columns, n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return hints


def check_columns(data: pd.DataFrame, variables: Sequence[str], cluster: str | None) -> None:
    """Raise a :class:`DataError` unless ``data`` is a data frame with ``variables`` and ``cluster``."""
    check_frame(data)
    columns = [str(c) for c in data.columns]
    hints = absent_columns(data, variables)
    if hints:
        raise DataError(
            f"the model uses variable(s) not in the data: {', '.join(hints)}. "
            "Check the spelling in the model string, or add the column(s) to the data."
        )
    if cluster is not None and not isinstance(cluster, str):
        raise DataError(f"cluster must be the name of one column (a string), not {cluster!r}")
    if cluster is not None and cluster in variables:
        raise DataError(
            f"the cluster column {cluster!r} is also a variable of the model; clusters are given by a column "
            "of labels that the model does not use"
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
