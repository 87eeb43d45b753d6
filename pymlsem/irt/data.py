"""An IRT model's data as arrays: each answer's category, which items each row answered (its missingness
pattern) and each row's cluster.

The items are read as :func:`pymlsem.latent_class.data.lca_data` reads categorical items (sorted codes, or
an ordered Categorical's order): a binary item's second category is the answer 1, an ordinal item's
categories are 0, 1, ..., C-1 in their order. A missing answer contributes nothing to its row (missing at
random); a row with every item missing is an error, not silently dropped. The caller's data frame is never
modified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pymlsem.latent_class.data import lca_data

__all__ = ["IRTData", "irt_data"]


@dataclass(frozen=True)
class IRTData:
    """The arrays an IRT model reads.

    Attributes
    ----------
    items
        The items, in the order of ``items=``.
    categories
        Each item's categories (``categories[k][c]`` is code ``c`` of item ``k``).
    codes
        int64 array (rows, items): each answer's category code, -1 where missing.
    pattern
        int64 array: each row's missingness pattern 0..P-1.
    pattern_observed
        float64 array (patterns, items): 1 where the pattern's rows answered the item.
    cluster
        int64 array: each row's cluster 0..J-1 (all 0 without clusters).
    cluster_labels
        The clusters' labels, sorted (None without clusters).
    index
        The data frame's row index.
    """

    items: tuple[str, ...]
    categories: tuple[tuple, ...]
    codes: np.ndarray
    pattern: np.ndarray
    pattern_observed: np.ndarray
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

    @property
    def n_categories(self) -> np.ndarray:
        """int64 array: each item's number of categories."""
        return np.array([len(c) for c in self.categories], dtype=np.int64)

    @property
    def binary(self) -> tuple[str, ...]:
        """The binary items, in order."""
        return tuple(i for i, c in zip(self.items, self.categories, strict=True) if len(c) == 2)

    def ordinal_groups(self) -> dict[int, tuple[str, ...]]:
        """The items with three or more categories by their number of categories (increasing)."""
        counts = dict(zip(self.items, self.n_categories.tolist(), strict=True))
        return {c: tuple(i for i in self.items if counts[i] == c) for c in sorted(set(counts.values()) - {2})}

    @property
    def observed(self) -> np.ndarray:
        """float64 array (rows, items): 1 where the row answered the item."""
        return self.pattern_observed[self.pattern]

    def arrays(self) -> dict[str, np.ndarray]:
        """The data by the names of the model's ``pm.Data`` variables: the binary items' positions among the
        items, their answers (1 for the answer 1) and their patterns' observed items; each ordinal group's
        positions and answers one-hot (rows x items x C flattened, zeros where missing); each row's pattern
        and cluster."""
        position = {item: k for k, item in enumerate(self.items)}
        binary = np.array([position[i] for i in self.binary], dtype=np.int64)
        out = {
            "binary_index": binary,
            "binary_responses": (self.codes[:, binary] == 1).astype(np.float64),
            "binary_pattern_observed": self.pattern_observed[:, binary],
            "pattern": self.pattern,
        }
        for count, names in self.ordinal_groups().items():
            index = np.array([position[i] for i in names], dtype=np.int64)
            one_hot = (self.codes[:, index, None] == np.arange(count)).astype(np.float64)
            out[f"index_c{count}"] = index
            out[f"one_hot_c{count}"] = one_hot.reshape(self.n_rows, -1)
        return out | {"cluster_index": self.cluster}


def irt_data(data: pd.DataFrame, items: Sequence[str], cluster: str | None = None) -> IRTData:
    """Check the data of an IRT model and lay it out as arrays.

    Parameters
    ----------
    data
        One row per person (not modified).
    items
        The binary and ordinal items.
    cluster
        The column of cluster labels, or None for a single-level model.

    Returns
    -------
    IRTData

    Raises
    ------
    DataError
        What :func:`pymlsem.latent_class.data.lca_data` refuses: a missing column, an item named twice,
        fewer than two items, fractional codes, an item with fewer than two or more than 20 categories, a
        row with every item missing, missing cluster labels.
    """
    checked = lca_data(data, items, cluster, model="an IRT model")
    codes = np.full((checked.n_rows, len(checked.items)), -1, dtype=np.int64)
    categories: dict[str, tuple] = {}
    for group in checked.groups:
        count = group.n_categories
        for h, name in enumerate(group.items):
            block = group.one_hot[:, h * count : (h + 1) * count]
            column = checked.items.index(name)
            codes[:, column] = np.where(block.any(axis=1), block.argmax(axis=1), -1)
            categories[name] = group.categories[h]
    patterns, pattern = np.unique(codes >= 0, axis=0, return_inverse=True)
    return IRTData(
        items=checked.items,
        categories=tuple(categories[name] for name in checked.items),
        codes=codes,
        pattern=pattern.reshape(-1).astype(np.int64),
        pattern_observed=patterns.astype(np.float64),
        cluster=checked.cluster,
        cluster_labels=checked.cluster_labels,
        index=checked.index,
    )
