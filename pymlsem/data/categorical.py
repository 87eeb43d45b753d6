"""Ordered (binary/ordinal) columns: category codes 0..K-1 and the number of categories K.

A numeric column's categories are its sorted observed values (``1, 2, 3, 4`` -> codes ``0, 1, 2, 3``);
an ordered pandas ``Categorical`` keeps its declared categories and their order, observed or not.
Missing values get code ``-1``. The caller's data frame is never modified.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pymlsem.exceptions import DataError


@dataclass(frozen=True)
class OrdinalColumn:
    """One ordered column as category codes.

    Attributes
    ----------
    codes
        int64 array, one entry per row: 0..K-1, or -1 where the value is missing.
    categories
        The K categories in increasing order; ``codes == j`` means ``categories[j]``.
    """

    codes: np.ndarray
    categories: tuple

    @property
    def n_categories(self) -> int:
        """K, the number of categories (``ordered=`` of :func:`pymlsem.partable.build_partable`)."""
        return len(self.categories)

    @property
    def n_missing(self) -> int:
        """Number of missing entries (code -1)."""
        return int((self.codes < 0).sum())


def ordinal_codes(
    frame: pd.DataFrame, names: Sequence[str], listed_in: str = "the model (or from ordered=)"
) -> dict[str, OrdinalColumn]:
    """Category codes of the ordered columns ``names`` of ``frame``.

    Parameters
    ----------
    frame
        The data (not modified).
    names
        The ordered variables.
    listed_in
        Where the caller named them, for the message about a constant column ("drop it from ...").

    Returns
    -------
    dict
        Name -> :class:`OrdinalColumn`, in the order of ``names``.

    Raises
    ------
    DataError
        For a missing column, an unordered pandas Categorical or a column of strings (their order is
        unknown), infinite values, or fewer than two observed categories.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(frame).__name__}")
    if isinstance(names, str):
        names = [names]
    columns = [str(c) for c in frame.columns]
    out: dict[str, OrdinalColumn] = {}
    for name in names:
        if name not in columns:
            close = difflib.get_close_matches(name, columns, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(f"ordered variable {name!r} is not a column of the data{hint}")
        column = _code_column(frame[name], name)
        observed = np.unique(column.codes[column.codes >= 0])
        if observed.size < 2:
            seen = f"only the category {column.categories[observed[0]]!r}" if observed.size else "no values"
            raise DataError(
                f"ordered variable {name!r} has {seen} in the data; an ordinal variable needs at least two "
                f"observed categories: drop it from {listed_in}"
            )
        out[name] = column
    return out


def category_counts(frame: pd.DataFrame, names: Sequence[str]) -> dict[str, int]:
    """Number of categories K of each ordered column, for ``build_partable(ordered=...)``.

    Parameters
    ----------
    frame
        The data (not modified).
    names
        The ordered variables.

    Returns
    -------
    dict
        Name -> K, in the order of ``names``.

    Raises
    ------
    DataError
        As :func:`ordinal_codes`.
    """
    return {name: col.n_categories for name, col in ordinal_codes(frame, names).items()}


def _code_column(series: pd.Series, name: str) -> OrdinalColumn:
    if isinstance(series.dtype, pd.CategoricalDtype):
        if not series.cat.ordered:
            cats = ", ".join(repr(c) for c in list(series.cat.categories)[:6])
            raise DataError(
                f"column {name!r} is an unordered Categorical (categories {cats}); say their order: "
                f"data[{name!r}] = data[{name!r}].cat.reorder_categories([lowest, ..., highest], "
                "ordered=True)"
            )
        codes = series.cat.codes.to_numpy(dtype=np.int64)
        return OrdinalColumn(codes=codes, categories=tuple(series.cat.categories))
    if pd.api.types.is_bool_dtype(series.dtype):
        values = series.astype("boolean").to_numpy(dtype=np.float64, na_value=np.nan)
    elif pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        raise DataError(
            f"column {name!r} (dtype {series.dtype}) holds neither numbers nor an ordered Categorical, so "
            f"the order of its categories is unknown; convert it: data[{name!r}] = "
            f"pd.Categorical(data[{name!r}], categories=[lowest, ..., highest], ordered=True)"
        )
    if np.isinf(values).any():
        raise DataError(f"column {name!r} has infinite values; an ordinal column needs finite codes")
    missing = np.isnan(values)
    categories = np.unique(values[~missing])
    fractional = categories[np.mod(categories, 1) != 0]
    if fractional.size:
        raise DataError(
            f"column {name!r} has non-integer values ({fractional[0]:g}, ...), so "
            "it looks continuous: leave it out of ordered= and remove its thresholds (x | t1) from the model "
            "(or code its categories as integers, or as an ordered pandas Categorical)"
        )
    codes = np.full(values.shape, -1, dtype=np.int64)
    codes[~missing] = np.searchsorted(categories, values[~missing])
    return OrdinalColumn(codes=codes, categories=tuple(_plain(c) for c in categories))


def _plain(value: float) -> float | int:
    """A category as a Python number: an int when it is a whole number (``1.0`` -> ``1``)."""
    return int(value) if float(value).is_integer() else float(value)
