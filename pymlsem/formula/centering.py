"""Centering choices of multilevel modelling, as new columns of a copy of the data.

For a level-1 predictor ``x`` measured on rows nested in clusters ``j``:

==================  ===============================  ===========================================
helper              new column (default suffix)      value
==================  ===============================  ===========================================
``center_grand``    ``x_cgm`` (grand-mean centered)  ``x_ij - mean(x)``
``center_within``   ``x_cwc`` (centered within       ``x_ij - mean_j(x)``, the within-cluster
                    cluster, group-mean centering)   deviation
``cluster_means``   ``x_cm`` (cluster mean)          ``mean_j(x)``, a level-2 predictor
==================  ===============================  ===========================================

So ``x_cwc + x_cm == x`` row by row. Grand-mean centering only moves the intercept; within-cluster
centering removes the between-cluster part of ``x``, which the cluster mean then carries as a level-2
predictor (``y ~ x_cwc + x_cm + (1 | g)`` separates the within and between slopes).

Missing values are skipped in the means (pandas' ``skipna``); a row whose ``x`` is missing gets a missing
centered value, and so does every row of a cluster without any observed ``x`` or with a missing cluster
label. Each helper warns with the number of such rows. The input ``DataFrame`` is never modified.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pandas as pd

from pymlsem.exceptions import DataError

__all__ = ["center_grand", "center_within", "cluster_means"]


def _columns(data: pd.DataFrame, columns: str | Sequence[str]) -> list[str]:
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    names = [columns] if isinstance(columns, str) else list(columns)
    if not names:
        raise DataError("give at least one column to center")
    missing = [name for name in names if name not in data.columns]
    if missing:
        raise DataError(f"unknown column(s) {missing}; the data have {list(data.columns)}")
    text = [name for name in names if not pd.api.types.is_numeric_dtype(data[name])]
    if text:
        raise DataError(f"column(s) {text} are not numeric and cannot be centered")
    return names


def _group(data: pd.DataFrame, group: str) -> pd.Series:
    if not isinstance(group, str) or group not in data.columns:
        raise DataError(f"unknown cluster column {group!r}; the data have {list(data.columns)}")
    labels = data[group]
    if labels.isna().all():
        raise DataError(f"the cluster column {group!r} has no observed labels")
    return labels


def _output(
    kind: str, data: pd.DataFrame, names: list[str], new: dict[str, pd.Series], labels: pd.Series | None
) -> pd.DataFrame:
    taken = [name for name in new if name in data.columns]
    if taken:
        raise DataError(f"the data already have column(s) {taken}; choose another suffix= or drop them first")
    unlabelled = labels.isna() if labels is not None else pd.Series(False, index=data.index)
    counts = {name: int((data[name].isna() | unlabelled).sum()) for name in names}
    counts = {name: n for name, n in counts.items() if n}
    if counts:
        detail = ", ".join(f"{name}: {n}" for name, n in counts.items())
        warnings.warn(
            f"{kind}: rows with a missing value or cluster label were skipped in the means ({detail})",
            UserWarning,
            stacklevel=3,
        )
    return data.assign(**new)


def _cluster_mean(data: pd.DataFrame, name: str, labels: pd.Series) -> pd.Series:
    # groupby(dropna=True) leaves rows with a missing label as NaN; skipna means per cluster
    return data[name].astype(float).groupby(labels, dropna=True).transform("mean")


def center_grand(data: pd.DataFrame, columns: str | Sequence[str], *, suffix: str = "_cgm") -> pd.DataFrame:
    """Grand-mean centering: ``x - mean(x)`` over all rows.

    Parameters
    ----------
    data
        The data (not modified).
    columns
        A numeric column name or a list of them.
    suffix
        Appended to each column name to name the new column (``x`` -> ``x_cgm``).

    Returns
    -------
    pandas.DataFrame
        A copy of ``data`` with one new column per centered column.

    Raises
    ------
    DataError
        An unknown or non-numeric column, or a new column name already in ``data``.

    Warns
    -----
    UserWarning
        With the number of rows per column whose value is missing (skipped in the mean; their centered
        value is missing too).
    """
    names = _columns(data, columns)
    new = {f"{name}{suffix}": data[name].astype(float) - data[name].mean(skipna=True) for name in names}
    return _output("center_grand", data, names, new, None)


def center_within(
    data: pd.DataFrame, columns: str | Sequence[str], group: str, *, suffix: str = "_cwc"
) -> pd.DataFrame:
    """Centering within cluster (group-mean centering): ``x - mean of x in the row's cluster``.

    Parameters
    ----------
    data
        The data (not modified).
    columns
        A numeric column name or a list of them.
    group
        The column naming each row's cluster.
    suffix
        Appended to each column name to name the new column (``x`` -> ``x_cwc``).

    Returns
    -------
    pandas.DataFrame
        A copy of ``data`` with one new column per centered column; its mean is 0 in every cluster.

    Raises
    ------
    DataError
        An unknown or non-numeric column, an unknown cluster column or one without labels, or a new column
        name already in ``data``.

    Warns
    -----
    UserWarning
        With the number of rows per column with a missing value or cluster label (skipped in the means;
        their centered value is missing).
    """
    names = _columns(data, columns)
    labels = _group(data, group)
    new = {f"{name}{suffix}": data[name].astype(float) - _cluster_mean(data, name, labels) for name in names}
    return _output("center_within", data, names, new, labels)


def cluster_means(
    data: pd.DataFrame, columns: str | Sequence[str], group: str, *, suffix: str = "_cm"
) -> pd.DataFrame:
    """The mean of each column in the row's cluster, to use as a level-2 predictor.

    Parameters
    ----------
    data
        The data (not modified).
    columns
        A numeric column name or a list of them.
    group
        The column naming each row's cluster.
    suffix
        Appended to each column name to name the new column (``x`` -> ``x_cm``).

    Returns
    -------
    pandas.DataFrame
        A copy of ``data`` with one new column per column: the cluster mean, repeated on every row of the
        cluster (missing values skipped in the mean).

    Raises
    ------
    DataError
        An unknown or non-numeric column, an unknown cluster column or one without labels, or a new column
        name already in ``data``.

    Warns
    -----
    UserWarning
        With the number of rows per column with a missing value or cluster label (skipped in the means;
        a row with a missing label gets no cluster mean).
    """
    names = _columns(data, columns)
    labels = _group(data, group)
    new = {f"{name}{suffix}": _cluster_mean(data, name, labels) for name in names}
    return _output("cluster_means", data, names, new, labels)
