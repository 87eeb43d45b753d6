"""Statistics of incomplete numeric data for the full-information (missing = "ml") normal log-likelihoods.

The log-likelihoods of :mod:`pymlsem.build.missing` depend on incomplete data only through the statistics
computed here, once, in numpy. A *missingness pattern* is the set of variables observed in a row; rows are
grouped by pattern.

Single level
------------
Per pattern k (observed variables ``o_k``): the number of rows ``N_k``, the mean of their observed values and
their scatter around it. Rows whose values are all missing carry no information and are dropped. The
log-likelihood is a sum over patterns of the complete-data formula applied to ``Sigma[o_k, o_k]``.

Two levels
----------
The within-varying variables (all but the between-only ones) of each row may be missing in any pattern; the
between-only variables have one value per cluster (a cluster's non-missing values must agree), which may be
missing. The patterns are those of the within-varying variables of each row (between-only columns are never
part of a pattern). Kept:

- per pattern: count, mean and scatter of the observed values over all rows of that pattern (for the
  within part ``sum_i r_i' Sigma_W[o_i, o_i]^-1 r_i``, with ``r_i`` the deviations from the implied mean);
- per (cluster, pattern): the number of rows and the sum of their observed values (zero elsewhere), shape
  (J, K) and (J, K, p);
- per cluster: which variables are observed at least once, and the between-only values (zero if missing).

So the cost of the log-likelihood grows with the number of clusters and patterns, not with N. The
derivation of the density is in :mod:`pymlsem.build.missing`. Rows with no observed within-varying value
are dropped (their cluster is kept when its between-only values are observed); clusters with no observed
value at all are dropped.

All arrays are float64 (masks as 0/1) and can be wrapped as ``pm.Data``: the ``arrays()`` methods name the
ones the log-likelihoods read. Missing values are NaN; infinite values are an error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pymlsem.data.stats import (
    check_between_only,
    cluster_codes,
    group_sums,
    numeric_block,
    per_cluster_scatter,
    split_variables,
    variable_names,
)
from pymlsem.exceptions import DataError

__all__ = [
    "MissingSingleLevelStats",
    "MissingTwoLevelStats",
    "has_missing",
    "one_data_set",
    "single_level_missing_stats",
    "single_level_missing_stats_batch",
    "two_level_missing_stats",
    "two_level_missing_stats_batch",
]

# Most variables whose missingness pattern fits in one int64 key (see _patterns).
_MAX_BITS = 62


@dataclass(frozen=True)
class MissingSingleLevelStats:
    """Statistics of N independent rows with missing values, by missingness pattern.

    Attributes
    ----------
    variables
        Variable names, in the order of every (p,) and (p, p) array.
    nobs
        Number of rows with at least one observed value.
    n_values
        Number of observed values (0-d float array).
    pattern_observed
        Shape (K, p), 1.0 where the pattern observes the variable, else 0.0.
    pattern_counts
        Number of rows of each pattern, shape (K,).
    pattern_means
        Mean of each pattern's observed values, shape (K, p), 0.0 for its missing variables.
    pattern_scatter
        Scatter of each pattern's rows around its mean, shape (K, p, p), 0.0 outside its observed block.
    """

    variables: tuple[str, ...]
    nobs: int
    n_values: np.ndarray
    pattern_observed: np.ndarray
    pattern_counts: np.ndarray
    pattern_means: np.ndarray
    pattern_scatter: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """Return the arrays :func:`pymlsem.build.missing.single_level_missing_loglik` reads, by name."""
        return _pattern_arrays(self)


@dataclass(frozen=True)
class MissingTwoLevelStats:
    """Statistics of two-level data with missing values (see the module docstring).

    Attributes
    ----------
    variables
        All observed model variables, in the order used by every (p,) and (p, p) array.
    within_only, between_only
        The variables without a between part / without a within part.
    cluster
        Name of the cluster column.
    nobs, nclusters
        Number of rows with an observed within-varying value, and of clusters with an observed value.
    within_index
        Positions in ``variables`` of the within-varying variables (all but ``between_only``), int.
    between_index
        Positions in ``variables`` of the between-varying variables (all but ``within_only``), int.
    n_values
        Number of observed values: within-varying values of the rows plus between-only values of the
        clusters (0-d float array).
    pattern_observed
        Shape (K, p), 1.0 where the pattern observes the variable (always 0.0 for between-only ones).
    pattern_counts
        Number of rows of each pattern, shape (K,).
    pattern_means
        Mean of each pattern's observed values over all its rows, shape (K, p), 0.0 where unobserved.
    pattern_scatter
        Scatter of each pattern's rows around that mean, shape (K, p, p), 0.0 outside the observed block.
    cluster_ids
        Cluster labels, sorted, shape (J,).
    cluster_sizes
        Number of kept rows of each cluster, shape (J,).
    cluster_pattern_counts
        Rows of each pattern in each cluster, shape (J, K).
    cluster_pattern_sums
        Sum of those rows' values (0.0 where unobserved), shape (J, K, p).
    cluster_observed
        Shape (J, p), 1.0 where the cluster has an observed value of the variable (in some row, or its
        between-only value).
    cluster_values
        Between-only values of each cluster, shape (J, p), 0.0 elsewhere and where missing.
    """

    variables: tuple[str, ...]
    within_only: tuple[str, ...]
    between_only: tuple[str, ...]
    cluster: str
    nobs: int
    nclusters: int
    within_index: np.ndarray
    between_index: np.ndarray
    n_values: np.ndarray
    pattern_observed: np.ndarray
    pattern_counts: np.ndarray
    pattern_means: np.ndarray
    pattern_scatter: np.ndarray
    cluster_ids: np.ndarray
    cluster_sizes: np.ndarray
    cluster_pattern_counts: np.ndarray
    cluster_pattern_sums: np.ndarray
    cluster_observed: np.ndarray
    cluster_values: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """Return the arrays :func:`pymlsem.build.missing.two_level_missing_loglik` reads, by name.

        Their shapes depend on the numbers of patterns K and clusters J (leading dimensions, and the
        second dimension of the (cluster, pattern) arrays); the last dimension is fixed by the model.
        """
        return {
            **_pattern_arrays(self),
            "cluster_pattern_counts": self.cluster_pattern_counts,
            "cluster_pattern_sums": self.cluster_pattern_sums,
            "cluster_observed": self.cluster_observed,
            "cluster_values": self.cluster_values,
        }


def _pattern_arrays(stats: MissingSingleLevelStats | MissingTwoLevelStats) -> dict[str, np.ndarray]:
    """The per-pattern arrays that both missing-data log-likelihoods read, by name."""
    return {
        "n_values": stats.n_values,
        "pattern_observed": stats.pattern_observed,
        "pattern_counts": stats.pattern_counts,
        "pattern_means": stats.pattern_means,
        "pattern_scatter": stats.pattern_scatter,
    }


def has_missing(data: pd.DataFrame, variables: Sequence[str]) -> bool:
    """Whether any of the named columns of ``data`` has a missing value."""
    return bool(data.loc[:, list(variables)].isna().to_numpy().any())


def _patterns(observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a boolean (N, p) mask, most observed first, and the pattern index of each row.

    Ties are in lexicographic order of the masks (first variable first, unobserved before observed). Up to
    62 variables a row's mask is read as one integer (first variable the highest bit), whose numeric order
    is that lexicographic order, so finding the patterns is one sort of N integers.
    """
    nvar = observed.shape[1]
    if nvar <= _MAX_BITS:
        keys = np.zeros(observed.shape[0], dtype=np.int64)
        for column in observed.T:  # the first variable ends up as the highest bit
            keys = 2 * keys + column
        distinct, inverse = np.unique(keys, return_inverse=True)
        masks = ((distinct[:, None] >> np.arange(nvar - 1, -1, -1)) & 1).astype(bool)
    else:
        masks, inverse = np.unique(observed, axis=0, return_inverse=True)
    order = np.lexsort((np.arange(masks.shape[0]), -masks.sum(axis=1)))  # most observed first, stable
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return masks[order], rank[np.asarray(inverse).reshape(-1)]


def _pattern_moments(
    filled: np.ndarray, masks: np.ndarray, pattern: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts (K,), means (..., K, p) and scatters (..., K, p, p) of zero-filled rows (..., N, p) per
    pattern (the patterns of one size together); leading axes are data sets with the same patterns."""
    n_patterns = masks.shape[0]
    counts = np.bincount(pattern, minlength=n_patterns).astype(np.float64)
    means = group_sums(pattern, n_patterns, filled) / counts[:, None]
    centered = (filled - means[..., pattern, :]) * masks[pattern]
    return counts, means, per_cluster_scatter(centered, pattern, n_patterns)


def _by_cluster(
    masks: np.ndarray, pattern: np.ndarray, row_cluster: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The patterns split by cluster: one pattern per (cluster, pattern) pair, cluster by cluster."""
    cells, refined = np.unique(row_cluster * masks.shape[0] + pattern, return_inverse=True)
    return masks[cells % masks.shape[0]], np.asarray(refined).reshape(-1)


def single_level_missing_stats(
    data: pd.DataFrame, variables: Sequence[str], *, by_row: bool = False
) -> MissingSingleLevelStats:
    """Compute the statistics of single-level data with missing values.

    Parameters
    ----------
    data
        One row per observation; missing values as NaN.
    variables
        The observed model variables, in model order.
    by_row
        Make every row (with an observed value) its own pattern, in row order: the statistics whose
        per-pattern log-likelihoods are the rows' (pointwise log-likelihood).

    Returns
    -------
    MissingSingleLevelStats

    Raises
    ------
    DataError
        Missing or non-numeric columns, infinite values, or fewer than two rows with an observed value.
    """
    names = variable_names(variables)
    values = numeric_block(data, names, allow_missing=True)
    observed = np.isfinite(values)
    keep = observed.any(axis=1)
    values, observed = values[keep], observed[keep]
    if values.shape[0] < 2:
        raise DataError(
            f"at least two rows with an observed value are needed, the data have {values.shape[0]}"
        )
    masks, pattern = (observed, np.arange(observed.shape[0])) if by_row else _patterns(observed)
    counts, means, scatter = _pattern_moments(np.where(observed, values, 0.0), masks, pattern)
    return MissingSingleLevelStats(
        variables=names,
        nobs=int(values.shape[0]),
        n_values=np.asarray(float(observed.sum())),
        pattern_observed=masks.astype(np.float64),
        pattern_counts=counts,
        pattern_means=means,
        pattern_scatter=scatter,
    )


def single_level_missing_stats_batch(values: np.ndarray, variables: Sequence[str]) -> MissingSingleLevelStats:
    """The statistics of R data sets with the same missing values at once (e.g. replicated data sets).

    Parameters
    ----------
    values
        Shape (R, N, p), NaN where missing, the same cells in every data set; columns in ``variables`` order.
    variables
        The observed model variables.

    Returns
    -------
    MissingSingleLevelStats
        As :func:`single_level_missing_stats` gives for each data set, with a leading axis R on
        ``pattern_means`` (R, K, p) and ``pattern_scatter`` (R, K, p, p).

    Raises
    ------
    DataError
        When the data sets' missing values differ, or fewer than two rows have an observed value.
    """
    names = variable_names(variables)
    values = np.asarray(values, dtype=np.float64)
    observed = _same_cells(values)
    keep = observed.any(axis=1)
    if keep.sum() < 2:
        raise DataError(f"at least two rows with an observed value are needed, the data have {keep.sum()}")
    masks, pattern = _patterns(observed[keep])
    counts, means, scatter = _pattern_moments(np.where(observed, values, 0.0)[:, keep], masks, pattern)
    return MissingSingleLevelStats(
        variables=names,
        nobs=int(keep.sum()),
        n_values=np.asarray(float(observed.sum())),
        pattern_observed=masks.astype(np.float64),
        pattern_counts=counts,
        pattern_means=means,
        pattern_scatter=scatter,
    )


def _same_cells(values: np.ndarray) -> np.ndarray:
    """The observed cells (N, p) of data sets (R, N, p) that must share their missing values."""
    observed = np.isfinite(values[0])
    if not np.array_equal(np.isfinite(values), np.broadcast_to(observed, values.shape)):
        raise DataError("the data sets have missing values in different cells")
    return observed


def one_data_set(
    stats: MissingSingleLevelStats | MissingTwoLevelStats, r: int
) -> MissingSingleLevelStats | MissingTwoLevelStats:
    """Data set ``r`` of statistics computed for many at once (:func:`single_level_missing_stats_batch`,
    :func:`two_level_missing_stats_batch`)."""
    batched = ("pattern_means", "pattern_scatter", "cluster_pattern_sums", "cluster_values")
    return dataclasses.replace(
        stats, **{name: getattr(stats, name)[r] for name in batched if hasattr(stats, name)}
    )


def _between_values(
    values: np.ndarray, observed: np.ndarray, codes: np.ndarray, nclusters: int, columns: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster, the first observed value of each column in ``columns`` (values (..., N, p), observed
    cells (N, p)): shape (..., J, p), 0.0 elsewhere and where a cluster has none; and where it has one."""
    out = np.zeros((*values.shape[:-2], nclusters, values.shape[-1]))
    seen = np.zeros((nclusters, values.shape[-1]), dtype=bool)
    for column in columns.tolist():
        rows = np.flatnonzero(observed[:, column])
        clusters, first = np.unique(codes[rows], return_index=True)
        out[..., clusters, column] = values[..., rows[first], column]
        seen[clusters, column] = True
    return out, seen


def two_level_missing_stats(
    data: pd.DataFrame,
    variables: Sequence[str],
    cluster: str,
    *,
    within_only: Sequence[str] = (),
    between_only: Sequence[str] = (),
    by_cluster: bool = False,
) -> MissingTwoLevelStats:
    """Compute the statistics of two-level data with missing values.

    Parameters
    ----------
    data
        One row per level-1 unit, with a cluster column; missing values as NaN.
    variables
        All observed model variables, in model order.
    cluster
        Name of the cluster column (no missing values).
    within_only
        Variables with no between part.
    between_only
        Variables with no within part: the non-missing values of a cluster must agree; a cluster may have
        none.
    by_cluster
        Split every pattern by cluster (the patterns ordered by cluster), so that each pattern's rows lie
        in one cluster: the statistics whose per-cluster log-likelihoods are the clusters' (pointwise
        log-likelihood).

    Returns
    -------
    MissingTwoLevelStats

    Raises
    ------
    DataError
        A missing cluster column or variable, non-numeric columns, infinite values, missing cluster labels,
        a between-only variable that varies within a cluster, or no observed within-varying value.
    """
    names = variable_names(variables)
    values = numeric_block(data, names, allow_missing=True)
    codes, labels = cluster_codes(data, cluster)
    return _two_level_missing(
        values, np.isfinite(values), codes, labels, names, cluster, within_only, between_only, by_cluster
    )


def two_level_missing_stats_batch(
    values: np.ndarray,
    variables: Sequence[str],
    clusters: pd.Series,
    *,
    within_only: Sequence[str] = (),
    between_only: Sequence[str] = (),
) -> MissingTwoLevelStats:
    """The statistics of R two-level data sets with the same clusters and missing values at once (e.g.
    replicated data sets).

    Parameters
    ----------
    values
        Shape (R, N, p), NaN where missing, the same cells in every data set; columns in ``variables``
        order.
    variables
        All observed model variables.
    clusters
        The cluster of each row (N,), named as the cluster column.
    within_only, between_only
        As for :func:`two_level_missing_stats`.

    Returns
    -------
    MissingTwoLevelStats
        As :func:`two_level_missing_stats` gives for each data set, with a leading axis R on
        ``pattern_means`` (R, K, p), ``pattern_scatter`` (R, K, p, p), ``cluster_pattern_sums`` (R, J, K, p)
        and ``cluster_values`` (R, J, p) (:func:`one_data_set` takes one out).

    Raises
    ------
    DataError
        When the data sets' missing values differ, and as :func:`two_level_missing_stats`.
    """
    names = variable_names(variables)
    values = np.asarray(values, dtype=np.float64)
    observed = _same_cells(values)
    codes, labels = cluster_codes(clusters.to_frame(), clusters.name)
    return _two_level_missing(
        values, observed, codes, labels, names, clusters.name, within_only, between_only, False
    )


def _two_level_missing(
    values: np.ndarray,
    observed: np.ndarray,
    codes: np.ndarray,
    labels: np.ndarray,
    names: tuple[str, ...],
    cluster: str,
    within_only: Sequence[str],
    between_only: Sequence[str],
    by_cluster: bool,
) -> MissingTwoLevelStats:
    """The statistics of data sets (..., N, p) with the observed cells (N, p) and clusters ``codes``."""
    w_only, b_only = split_variables(names, within_only, between_only)
    check_between_only(values, codes, labels, names, b_only)
    nvar = len(names)
    within_index = np.array([k for k, v in enumerate(names) if v not in b_only], dtype=np.int64)
    between_index = np.array([k for k, v in enumerate(names) if v not in w_only], dtype=np.int64)
    only_between = np.array([k for k, v in enumerate(names) if v in b_only], dtype=np.int64)
    is_within = np.zeros(nvar, dtype=bool)
    is_within[within_index] = True

    cluster_values, cluster_z = _between_values(values, observed, codes, labels.size, only_between)
    observed = observed & is_within
    keep = observed.any(axis=1)
    if not keep.any():
        raise DataError("no observed value of a within-varying variable")
    filled = np.where(observed, values, 0.0)[..., keep, :]
    observed, row_cluster = observed[keep], codes[keep]

    cluster_observed = cluster_z | (group_sums(row_cluster, labels.size, observed) > 0)
    kept_clusters = np.flatnonzero(cluster_observed.any(axis=1))
    remap = np.full(labels.size, -1, dtype=np.int64)
    remap[kept_clusters] = np.arange(kept_clusters.size)
    row_cluster = remap[row_cluster]
    nclusters = int(kept_clusters.size)

    masks, pattern = _patterns(observed)
    if by_cluster:
        masks, pattern = _by_cluster(masks, pattern, row_cluster)
    n_patterns = masks.shape[0]
    counts, means, scatter = _pattern_moments(filled, masks, pattern)
    cell = row_cluster * n_patterns + pattern
    cell_counts = np.bincount(cell, minlength=nclusters * n_patterns).astype(np.float64)
    cell_sums = group_sums(cell, nclusters * n_patterns, filled)
    n_values = float(observed.sum() + cluster_z[kept_clusters].sum())
    return MissingTwoLevelStats(
        variables=names,
        within_only=w_only,
        between_only=b_only,
        cluster=cluster,
        nobs=int(filled.shape[-2]),
        nclusters=nclusters,
        within_index=within_index,
        between_index=between_index,
        n_values=np.asarray(n_values),
        pattern_observed=masks.astype(np.float64),
        pattern_counts=counts,
        pattern_means=means,
        pattern_scatter=scatter,
        cluster_ids=labels[kept_clusters],
        cluster_sizes=np.bincount(row_cluster, minlength=nclusters).astype(np.float64),
        cluster_pattern_counts=cell_counts.reshape(nclusters, n_patterns),
        cluster_pattern_sums=cell_sums.reshape(*filled.shape[:-2], nclusters, n_patterns, nvar),
        cluster_observed=cluster_observed[kept_clusters].astype(np.float64),
        cluster_values=cluster_values[..., kept_clusters, :],
    )
