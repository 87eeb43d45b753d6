"""A latent class model's data as arrays: the categorical items one-hot by category count, the continuous
items standardised, each row's cluster.

A categorical item (binary or ordinal) keeps its categories as :func:`pymlsem.data.categorical.ordinal_codes`
reads them (sorted numbers, or an ordered pandas Categorical's declared order). Items with the same number
of categories form one group, sampled as one array of class-specific category probabilities. A missing
entry contributes nothing to its row's likelihood (missing at random, as in multilevLCA and Mplus); a row
with every item missing carries no information about its class and is an error, not silently dropped.
Continuous items are centred and scaled by their observed mean and SD, so that one default prior fits all;
the fit reports them on the data's scale. The caller's data frame is never modified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pymlsem.data.categorical import ordinal_codes
from pymlsem.data.prepare import absent_columns, check_columns, check_frame
from pymlsem.data.stats import cluster_codes
from pymlsem.exceptions import DataError

__all__ = ["MAX_CATEGORIES", "CategoryGroup", "LCAData", "lca_data"]

#: more categories than this in an item not listed as continuous is taken for a mistake
MAX_CATEGORIES = 20


@dataclass(frozen=True)
class CategoryGroup:
    """The categorical items with ``n_categories`` categories.

    Attributes
    ----------
    n_categories
        Their number of categories C.
    items
        Their names, in the order of ``items=``.
    categories
        Each item's categories (``categories[h][c]`` is code ``c`` of item ``h``).
    one_hot
        float64 array (rows, items x C): row i's column ``h * C + c`` is 1 when item h's answer is category
        c, all of item h's columns 0 when it is missing.
    """

    n_categories: int
    items: tuple[str, ...]
    categories: tuple[tuple, ...]
    one_hot: np.ndarray


@dataclass(frozen=True)
class LCAData:
    """The arrays a latent class model reads.

    Attributes
    ----------
    items
        Every item, in the order of ``items=``.
    groups
        The categorical items by number of categories (increasing).
    continuous
        Names of the continuous items.
    values
        float64 array (rows, continuous items), standardised, 0 where missing.
    observed
        float64 array of the same shape: 1 where observed, 0 where missing.
    center, scale
        The continuous items' observed means and SDs (``data = center + scale * values``).
    cluster
        int64 array: each row's cluster 0..J-1 (all 0 without clusters).
    cluster_labels
        The clusters' labels, sorted (None without clusters).
    index
        The data frame's row index.
    """

    items: tuple[str, ...]
    groups: tuple[CategoryGroup, ...]
    continuous: tuple[str, ...]
    values: np.ndarray
    observed: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    cluster: np.ndarray
    cluster_labels: np.ndarray | None
    index: pd.Index

    @property
    def n_rows(self) -> int:
        """Number of rows (persons)."""
        return len(self.index)

    @property
    def n_clusters(self) -> int:
        """Number of clusters (1 without clusters)."""
        return 1 if self.cluster_labels is None else len(self.cluster_labels)

    def arrays(self) -> dict[str, np.ndarray]:
        """The data by the names of the model's ``pm.Data`` variables."""
        out = {f"one_hot_c{g.n_categories}": g.one_hot for g in self.groups}
        if self.continuous:
            out |= {"continuous_values": self.values, "continuous_observed": self.observed}
        return out | {"cluster_index": self.cluster}


def lca_data(
    data: pd.DataFrame,
    items: Sequence[str],
    cluster: str | None = None,
    continuous: Sequence[str] = (),
    model: str = "a latent class model",
) -> LCAData:
    """Check the data of a latent class model and lay it out as arrays.

    Parameters
    ----------
    data
        One row per person (not modified).
    items
        The class indicators.
    cluster
        The column of cluster labels, or None for a single-level model.
    continuous
        The items that are continuous (normal within a class); the others are categorical.
    model
        The model, in words, for the error messages.

    Returns
    -------
    LCAData

    Raises
    ------
    DataError
        A missing column, an item named twice, fewer than two items, a continuous item that is not in
        ``items`` or not numeric, a categorical item with fractional values, fewer than two or more than
        :data:`MAX_CATEGORIES` categories, a row with every item missing, or missing cluster labels.
    """
    if (
        isinstance(items, str)
        or not isinstance(items, Sequence)
        or not all(isinstance(i, str) for i in items)
    ):
        raise DataError(f"items must be a list of column names, not {items!r}")
    items = list(items)
    repeated = sorted({i for i in items if items.count(i) > 1})
    if repeated:
        raise DataError(f"items names {', '.join(map(repr, repeated))} more than once; name each item once")
    if len(items) < 2:
        raise DataError(f"{model} needs at least two items, got {items!r}")
    if isinstance(continuous, str):
        continuous = [continuous]
    strays = [c for c in continuous if c not in items]
    if strays:
        raise DataError(
            f"continuous names {', '.join(map(repr, strays))}, which is not in items; list every continuous "
            "item in items as well"
        )
    check_frame(data)
    absent = absent_columns(data, items)
    if absent:
        raise DataError(f"items names column(s) not in the data: {', '.join(absent)}")
    check_columns(data, items, cluster)
    categorical = [i for i in items if i not in continuous]
    for name in categorical:
        column = data[name]
        if pd.api.types.is_float_dtype(column.dtype):
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            fractional = values[np.isfinite(values) & (np.mod(values, 1) != 0)]
            if fractional.size:
                raise DataError(
                    f"item {name!r} has fractional values ({fractional[0]:g}, ...): a categorical item needs "
                    f"integer codes or an ordered Categorical; if it is a measurement, pass "
                    f"continuous=[{name!r}, ...]"
                )
    codes = ordinal_codes(data, categorical, "items=") if categorical else {}
    for name, column in codes.items():
        if column.n_categories > MAX_CATEGORIES:
            raise DataError(
                f"item {name!r} has {column.n_categories} categories; a categorical item has at most "
                f"{MAX_CATEGORIES}: if it is a measurement, pass continuous=[{name!r}, ...]"
            )
    answered = np.zeros(len(data), dtype=bool)
    for column in codes.values():
        answered |= column.codes >= 0
    values, observed, center, scale = _continuous(data, list(continuous))
    answered |= observed.any(axis=1)
    if not answered.all():
        rows = list(data.index[~answered][:5])
        raise DataError(
            f"{int((~answered).sum())} row(s) have every item missing (index {rows}); they say nothing to "
            f"{model}: drop them from the data before fitting"
        )
    groups = []
    for count in sorted({c.n_categories for c in codes.values()}):
        names = tuple(n for n, c in codes.items() if c.n_categories == count)
        one_hot = np.zeros((len(data), len(names) * count))
        for h, name in enumerate(names):
            column = codes[name].codes
            rows = np.flatnonzero(column >= 0)
            one_hot[rows, h * count + column[rows]] = 1.0
        groups.append(CategoryGroup(count, names, tuple(codes[n].categories for n in names), one_hot))
    if cluster is None:
        index, labels = np.zeros(len(data), dtype=np.int64), None
    else:
        index, labels = cluster_codes(data, cluster)
    return LCAData(
        items=tuple(items),
        groups=tuple(groups),
        continuous=tuple(continuous),
        values=values,
        observed=observed,
        center=center,
        scale=scale,
        cluster=index,
        cluster_labels=labels,
        index=data.index.copy(),
    )


def _continuous(data: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, ...]:
    """Standardised values (0 where missing), the observed mask, the means and the SDs."""
    columns = []
    for name in names:
        if not pd.api.types.is_numeric_dtype(data[name].dtype) or pd.api.types.is_bool_dtype(
            data[name].dtype
        ):
            raise DataError(f"continuous item {name!r} has dtype {data[name].dtype}; it must hold numbers")
        columns.append(data[name].to_numpy(dtype=np.float64, na_value=np.nan))
    raw = np.column_stack(columns) if columns else np.zeros((len(data), 0))
    if np.isinf(raw).any():
        raise DataError("a continuous item has infinite values; replace them (or mark them missing)")
    observed = ~np.isnan(raw)
    center = np.array([np.mean(c[~np.isnan(c)]) if (~np.isnan(c)).any() else 0.0 for c in raw.T])
    scale = np.array([np.std(c[~np.isnan(c)]) if (~np.isnan(c)).sum() > 1 else 0.0 for c in raw.T])
    flat = [n for n, s in zip(names, scale, strict=True) if not s > 0]
    if flat:
        raise DataError(
            f"continuous item(s) {', '.join(map(repr, flat))} have fewer than two distinct observed values; "
            "drop them from items"
        )
    values = np.where(observed, (raw - center) / np.where(scale > 0, scale, 1.0), 0.0)
    return values, observed.astype(np.float64), center, scale
