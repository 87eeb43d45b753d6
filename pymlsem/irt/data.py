"""An IRT model's data as arrays: the binary answers, which items each row answered (its missingness
pattern) and each row's cluster.

The items are read as :func:`pymlsem.latent_class.data.lca_data` reads categorical items (sorted codes, or
an ordered Categorical's order: the second category is the "correct" answer, coded 1). A missing answer
contributes nothing to its row (missing at random); a row with every item missing is an error, not silently
dropped. The caller's data frame is never modified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pymlsem.exceptions import DataError
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
        Each item's two categories (``categories[k][1]`` is coded 1).
    responses
        float64 array (rows, items): 1 for the second category, 0 for the first or a missing answer.
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
    responses: np.ndarray
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
    def observed(self) -> np.ndarray:
        """float64 array (rows, items): 1 where the row answered the item."""
        return self.pattern_observed[self.pattern]

    def arrays(self) -> dict[str, np.ndarray]:
        """The data by the names of the model's ``pm.Data`` variables."""
        return {
            "responses": self.responses,
            "pattern": self.pattern,
            "pattern_observed": self.pattern_observed,
            "cluster_index": self.cluster,
        }


def irt_data(data: pd.DataFrame, items: Sequence[str], cluster: str | None = None) -> IRTData:
    """Check the data of an IRT model and lay it out as arrays.

    Parameters
    ----------
    data
        One row per person (not modified).
    items
        The binary items.
    cluster
        The column of cluster labels, or None for a single-level model.

    Returns
    -------
    IRTData

    Raises
    ------
    DataError
        What :func:`pymlsem.latent_class.data.lca_data` refuses (a missing column, an item named twice, fewer
        than two items, fractional codes, a row with every item missing, missing cluster labels), and an
        item that does not have exactly two categories.
    """
    checked = lca_data(data, items, cluster, model="an IRT model")
    not_binary = [
        f"{name!r} ({group.n_categories} categories)"
        for group in checked.groups
        if group.n_categories != 2
        for name in group.items
    ]
    if not_binary:
        raise DataError(
            f"irt() fits binary items (the 2PL model); {', '.join(not_binary)} are not binary: recode them "
            "to two categories, or fit ordinal items with pymlsem.sem(..., ordered=[...])"
        )
    group = checked.groups[0]
    order = [group.items.index(name) for name in checked.items]
    one_hot = group.one_hot.reshape(checked.n_rows, len(group.items), 2)[:, order]
    observed = one_hot.sum(axis=2)
    patterns, pattern = np.unique(observed, axis=0, return_inverse=True)
    return IRTData(
        items=checked.items,
        categories=tuple(group.categories[k] for k in order),
        responses=one_hot[:, :, 1].copy(),
        pattern=pattern.reshape(-1).astype(np.int64),
        pattern_observed=patterns.astype(np.float64),
        cluster=checked.cluster,
        cluster_labels=checked.cluster_labels,
        index=checked.index,
    )
