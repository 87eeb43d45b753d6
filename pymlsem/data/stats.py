"""Sufficient statistics of complete numeric data for the normal log-likelihoods.

Single level: the number of rows, the mean vector and the ML covariance (divided by N).

Two levels: the likelihood of clustered normal data depends on the data only through

- the pooled within-cluster scatter ``sum_j sum_i (y_ij - ybar_j)(y_ij - ybar_j)'`` over the variables that
  vary within clusters, and
- per distinct cluster size ``n_g``: the number of clusters of that size, the mean of their cluster means, and
  the scatter of their cluster means around that mean (over all variables).

So the cost of evaluating it depends on the number of distinct cluster sizes only, not on N or on the number
of clusters. Per-cluster means, sizes and within scatters are kept too, for per-cluster contributions
(leave-one-cluster-out cross-validation).

All arrays are numpy float64 and can be wrapped as ``pm.Data``: :meth:`SingleLevelStats.arrays` and
:meth:`TwoLevelStats.arrays` name the ones the log-likelihood reads.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pymlsem.exceptions import DataError

__all__ = [
    "SingleLevelStats",
    "TwoLevelStats",
    "fill_by_cluster_means",
    "single_level_stats",
    "stats_from_summary",
    "two_level_stats",
]

# Relative tolerance used to decide that a between-only variable varies within a cluster.
_CONSTANT_RTOL = 1e-10


@dataclass(frozen=True)
class SingleLevelStats:
    """Sufficient statistics of N independent rows.

    Attributes
    ----------
    variables
        Variable names, in the order of the rows/columns of ``mean`` and ``cov``.
    nobs
        Number of rows N.
    mean
        Sample mean, shape (p,), or None when only a covariance matrix is known (no mean structure).
    cov
        ML sample covariance (divided by N), shape (p, p).
    """

    variables: tuple[str, ...]
    nobs: int
    mean: np.ndarray | None
    cov: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """Return the arrays the log-likelihood reads, by attribute name (``nobs`` as a 0-d float array)."""
        out = {"nobs": np.asarray(float(self.nobs)), "cov": self.cov}
        if self.mean is not None:
            out["mean"] = self.mean
        return out


@dataclass(frozen=True)
class TwoLevelStats:
    """Sufficient statistics of two-level (clustered) data.

    Attributes
    ----------
    variables
        All observed model variables, in the order used by every (p,) and (p, p) array.
    within_only, between_only
        The variables without a between part / without a within part (subsets of ``variables``).
    cluster
        Name of the cluster column.
    nobs, nclusters
        Number of rows N and of clusters J.
    within_index
        Positions in ``variables`` of the variables that vary within clusters (all but ``between_only``),
        shape (p_w,), int.
    within_scatter
        Pooled within-cluster scatter over those variables, shape (p_w, p_w).
    group_sizes
        The distinct cluster sizes n_g, shape (G,), float.
    group_counts
        Number of clusters of each size, shape (G,), float.
    group_means
        Mean of the cluster means of the clusters of each size, shape (G, p).
    group_scatter
        Scatter of those cluster means around ``group_means``, shape (G, p, p).
    cluster_ids
        Cluster labels, sorted, shape (J,).
    cluster_sizes
        Size of each cluster, shape (J,), float.
    cluster_means
        Mean of each cluster over all variables, shape (J, p).
    cluster_within_scatter
        Within-cluster scatter of each cluster, shape (J, p_w, p_w).
    cluster_group
        Index into the size groups of each cluster, shape (J,), int.
    """

    variables: tuple[str, ...]
    within_only: tuple[str, ...]
    between_only: tuple[str, ...]
    cluster: str
    nobs: int
    nclusters: int
    within_index: np.ndarray
    within_scatter: np.ndarray
    group_sizes: np.ndarray
    group_counts: np.ndarray
    group_means: np.ndarray
    group_scatter: np.ndarray
    cluster_ids: np.ndarray
    cluster_sizes: np.ndarray
    cluster_means: np.ndarray
    cluster_within_scatter: np.ndarray
    cluster_group: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """Return the arrays :func:`pymlsem.build.loglik.two_level_loglik` reads, by attribute name.

        Their leading dimension (the number of size groups) changes from one data set to another; the
        trailing dimensions are fixed by the model.
        """
        return {
            "within_scatter": self.within_scatter,
            "group_sizes": self.group_sizes,
            "group_counts": self.group_counts,
            "group_means": self.group_means,
            "group_scatter": self.group_scatter,
        }

    def cluster_arrays(self) -> dict[str, np.ndarray]:
        """Return the per-cluster arrays read by :func:`pymlsem.build.loglik.two_level_cluster_loglik`."""
        return {
            "cluster_sizes": self.cluster_sizes,
            "cluster_means": self.cluster_means,
            "cluster_within_scatter": self.cluster_within_scatter,
            "cluster_group": self.cluster_group,
            "group_sizes": self.group_sizes,
        }


def variable_names(variables: Sequence[str], what: str = "variables") -> tuple[str, ...]:
    names = (variables,) if isinstance(variables, str) else tuple(variables)
    if not names:
        raise DataError(f"no {what} given")
    duplicated = sorted({v for v in names if names.count(v) > 1})
    if duplicated:
        raise DataError(f"{what} listed more than once: {', '.join(duplicated)}")
    return names


def numeric_block(
    data: pd.DataFrame, variables: tuple[str, ...], *, allow_missing: bool = False
) -> np.ndarray:
    """Return the named columns as a float64 array, checking presence, type and completeness.

    With ``allow_missing`` missing values stay as NaN (only infinite values are refused).
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    missing = [v for v in variables if v not in data.columns]
    if missing:
        raise DataError(f"variables not found in the data: {', '.join(missing)}")
    non_numeric = [
        v
        for v in variables
        if not pd.api.types.is_numeric_dtype(data[v].dtype) or pd.api.types.is_bool_dtype(data[v].dtype)
    ]
    if non_numeric:
        raise DataError(f"non-numeric variables: {', '.join(non_numeric)}")
    values = data.loc[:, list(variables)].to_numpy(dtype=np.float64, na_value=np.nan)
    if allow_missing:
        infinite = [v for v, bad in zip(variables, np.isinf(values).any(axis=0), strict=True) if bad]
        if infinite:
            raise DataError(f"infinite values in: {', '.join(infinite)}")
        return values
    bad = [v for v, ok in zip(variables, np.isfinite(values).all(axis=0), strict=True) if not ok]
    if bad:
        raise DataError(f"missing or infinite values in: {', '.join(bad)} (delete incomplete rows first)")
    return values


def cluster_codes(data: pd.DataFrame, cluster: str) -> tuple[np.ndarray, np.ndarray]:
    """Cluster of each row as 0..J-1 and the cluster labels (sorted); the column must be complete."""
    if cluster not in getattr(data, "columns", ()):
        raise DataError(f"cluster column {cluster!r} not found in the data")
    if data[cluster].isna().any():
        raise DataError(f"cluster column {cluster!r} has missing values")
    codes, labels = pd.factorize(data[cluster], sort=True)
    return np.asarray(codes, dtype=np.int64), np.asarray(labels)


def single_level_stats(data: pd.DataFrame, variables: Sequence[str]) -> SingleLevelStats:
    """Compute the single-level sufficient statistics of complete data.

    Parameters
    ----------
    data
        One row per observation.
    variables
        The observed model variables, in model order.

    Returns
    -------
    SingleLevelStats
        N, the mean and the ML covariance (divided by N).

    Raises
    ------
    DataError
        Missing, non-numeric or incomplete columns, or fewer than two rows.
    """
    names = variable_names(variables)
    y = numeric_block(data, names)
    nobs = y.shape[0]
    if nobs < 2:
        raise DataError(f"at least two rows are needed, the data have {nobs}")
    mean = y.mean(axis=0)
    centered = y - mean
    return SingleLevelStats(names, nobs, mean, centered.T @ centered / nobs)


def _summary_matrix(sample_cov: Any, variables: Sequence[str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
    if isinstance(sample_cov, pd.DataFrame):
        if list(sample_cov.index) != list(sample_cov.columns):
            raise DataError("sample_cov must have the same row and column names, in the same order")
        names = (
            variable_names(variables)
            if variables is not None
            else variable_names([str(c) for c in sample_cov.columns])
        )
        missing = [v for v in names if v not in sample_cov.columns]
        if missing:
            raise DataError(f"variables not found in sample_cov: {', '.join(missing)}")
        return sample_cov.loc[list(names), list(names)].to_numpy(dtype=np.float64), names
    if variables is None:
        raise DataError("variables must be given when sample_cov is an array without names")
    names = variable_names(variables)
    cov = np.asarray(sample_cov, dtype=np.float64)
    if cov.shape != (len(names), len(names)):
        raise DataError(f"sample_cov has shape {cov.shape}, expected {(len(names), len(names))} for {names}")
    return cov, names


def _summary_mean(sample_mean: Any, names: tuple[str, ...]) -> np.ndarray:
    if isinstance(sample_mean, dict):
        sample_mean = pd.Series(sample_mean)
    if isinstance(sample_mean, pd.Series):
        missing = [v for v in names if v not in sample_mean.index]
        if missing:
            raise DataError(f"variables not found in sample_mean: {', '.join(missing)}")
        mean = sample_mean.loc[list(names)].to_numpy(dtype=np.float64)
    else:
        mean = np.asarray(sample_mean, dtype=np.float64).reshape(-1)
        if mean.shape != (len(names),):
            raise DataError(f"sample_mean has {mean.size} values, expected {len(names)} for {names}")
    if not np.isfinite(mean).all():
        raise DataError("sample_mean has missing or infinite values")
    return mean


def stats_from_summary(
    sample_cov: pd.DataFrame | np.ndarray,
    sample_mean: pd.Series | dict[str, float] | np.ndarray | None,
    sample_nobs: int,
    variables: Sequence[str] | None = None,
) -> SingleLevelStats:
    """Build single-level statistics from a covariance matrix (and means) instead of raw data.

    As lavaan's ``sample.cov`` with ``sample.cov.rescale = TRUE``: the given matrix is the usual unbiased
    covariance (divided by N - 1) and is rescaled by (N - 1) / N.

    Parameters
    ----------
    sample_cov
        Unbiased covariance matrix: a DataFrame with variable names as index and columns, or an array (then
        ``variables`` names its rows and columns).
    sample_mean
        Means (Series or dict by name, or an array in ``variables`` order), or None for a model without mean
        structure.
    sample_nobs
        Number of observations N (at least 2).
    variables
        The model's observed variables, in model order. With a DataFrame, selects and reorders its rows and
        columns; defaults to all of them.

    Returns
    -------
    SingleLevelStats

    Raises
    ------
    DataError
        Mismatched shapes or names, a non-symmetric or non-positive-definite matrix, or a bad N.
    """
    cov, names = _summary_matrix(sample_cov, variables)
    if isinstance(sample_nobs, bool) or not float(sample_nobs).is_integer() or sample_nobs < 2:
        raise DataError(f"sample_nobs must be an integer of at least 2, not {sample_nobs!r}")
    nobs = int(sample_nobs)
    if not np.isfinite(cov).all():
        raise DataError("sample_cov has missing or infinite values")
    if not np.allclose(cov, cov.T, rtol=1e-8, atol=1e-12):
        raise DataError("sample_cov is not symmetric")
    cov = (cov + cov.T) / 2
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise DataError("sample_cov is not positive definite") from None
    mean = None if sample_mean is None else _summary_mean(sample_mean, names)
    return SingleLevelStats(names, nobs, mean, cov * (nobs - 1) / nobs)


def check_between_only(
    y: np.ndarray,
    codes: np.ndarray,
    labels: np.ndarray,
    names: tuple[str, ...],
    between_only: tuple[str, ...],
) -> None:
    """Raise DataError naming the first between-only variable that varies within a cluster.

    ``y`` is (..., N, p): leading axes are data sets with the same clusters; missing values are ignored.
    """
    by_cluster = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(codes[by_cluster]) != 0])
    present = codes[by_cluster[starts]]  # the clusters with rows, in code order
    for name in between_only:
        column = y[..., by_cluster, names.index(name)]
        high = np.fmax.reduceat(column, starts, axis=-1)  # NaN where a cluster's values are all missing
        low = np.fmin.reduceat(column, starts, axis=-1)
        scale = np.maximum(np.abs(high), np.abs(low))
        varying = (high - low > _CONSTANT_RTOL * np.maximum(scale, 1.0)).reshape(-1, starts.size).any(axis=0)
        if varying.any():
            label = labels[present[np.flatnonzero(varying)[0]]]
            label = label.item() if isinstance(label, np.generic) else label
            raise DataError(
                f"between-only variable {name!r} varies within cluster {label!r} "
                f"({int(varying.sum())} cluster(s) in all); a between-level variable must be constant within "
                "each cluster"
            )


def split_variables(
    names: tuple[str, ...], within_only: Sequence[str], between_only: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    w_only = tuple(within_only)
    b_only = tuple(between_only)
    unknown = [v for v in (*w_only, *b_only) if v not in names]
    if unknown:
        raise DataError(f"within/between-only variables not among the model variables: {', '.join(unknown)}")
    both = sorted(set(w_only) & set(b_only))
    if both:
        raise DataError(f"variables cannot be both within-only and between-only: {', '.join(both)}")
    return w_only, b_only


def two_level_stats(
    data: pd.DataFrame,
    variables: Sequence[str],
    cluster: str,
    *,
    within_only: Sequence[str] = (),
    between_only: Sequence[str] = (),
) -> TwoLevelStats:
    """Compute the two-level sufficient statistics of complete clustered data.

    Parameters
    ----------
    data
        One row per level-1 unit, with a cluster column.
    variables
        All observed model variables, in model order.
    cluster
        Name of the cluster column.
    within_only
        Variables with no between part (only recorded here; their cluster means are kept like any other).
    between_only
        Variables with no within part; they must be constant within every cluster.

    Returns
    -------
    TwoLevelStats

    Raises
    ------
    DataError
        A missing cluster column or variable, non-numeric or incomplete data, a between-only variable that
        varies within a cluster, or clusters that all have a single row.

    Warns
    -----
    UserWarning
        When some (not all) clusters have a single row.
    """
    names = variable_names(variables)
    w_only, b_only = split_variables(names, within_only, between_only)
    if cluster not in getattr(data, "columns", ()):
        raise DataError(f"cluster column {cluster!r} not found in the data")
    y = numeric_block(data, names)
    codes, labels = cluster_codes(data, cluster)
    sizes = np.bincount(codes).astype(np.float64)
    if np.all(sizes == 1):
        raise DataError(
            f"every cluster of {cluster!r} has a single row: within- and between-cluster variation "
            "cannot be separated"
        )
    singletons = int(np.sum(sizes == 1))
    if singletons:
        warnings.warn(f"{singletons} cluster(s) of {cluster!r} have a single row", UserWarning, stacklevel=2)
    check_between_only(y, codes, labels, names, b_only)

    within_index = np.array([k for k, v in enumerate(names) if v not in b_only], dtype=np.int64)
    cluster_means = group_sums(codes, labels.size, y) / sizes[:, None]
    deviations = (y - cluster_means[codes])[:, within_index]
    cluster_within_scatter = per_cluster_scatter(deviations, codes, labels.size)

    group_sizes, cluster_group = np.unique(sizes, return_inverse=True)
    group_counts = np.bincount(cluster_group).astype(np.float64)
    group_means, group_scatter = group_moments(cluster_means, cluster_group, group_sizes.size)

    return TwoLevelStats(
        variables=names,
        within_only=w_only,
        between_only=b_only,
        cluster=cluster,
        nobs=int(y.shape[0]),
        nclusters=int(labels.size),
        within_index=within_index,
        within_scatter=deviations.T @ deviations,
        group_sizes=group_sizes,
        group_counts=group_counts,
        group_means=group_means,
        group_scatter=group_scatter,
        cluster_ids=labels,
        cluster_sizes=sizes,
        cluster_means=cluster_means,
        cluster_within_scatter=cluster_within_scatter,
        cluster_group=cluster_group.astype(np.int64),
    )


def group_moments(
    cluster_means: np.ndarray, cluster_group: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scatter of the cluster means within each cluster-size group.

    Parameters
    ----------
    cluster_means
        Shape (..., J, p): cluster means, with optional leading batch axes (e.g. replicated data sets).
    cluster_group
        Shape (J,): the size group of each cluster.
    n_groups
        Number of size groups G.

    Returns
    -------
    tuple of numpy.ndarray
        Group means (..., G, p) and scatter of the cluster means around them (..., G, p, p).
    """
    batch, p = cluster_means.shape[:-2], cluster_means.shape[-1]
    group_means = np.zeros((*batch, n_groups, p))
    group_scatter = np.zeros((*batch, n_groups, p, p))
    for g in range(n_groups):
        members = cluster_means[..., cluster_group == g, :]
        group_means[..., g, :] = members.mean(axis=-2)
        centered = members - group_means[..., g, None, :]
        group_scatter[..., g, :, :] = np.swapaxes(centered, -1, -2) @ centered
    return group_means, group_scatter


def group_sums(codes: np.ndarray, n_groups: int, values: np.ndarray) -> np.ndarray:
    """Column sums of the rows of ``values`` (..., N, k) per group code 0..n_groups-1, shape
    (..., n_groups, k): leading axes are data sets with the same groups (e.g. replicates).

    One ``np.bincount`` per column: the rows of a group are added in row order (as ``np.add.at`` does).
    """
    columns = np.moveaxis(values, -2, 0).reshape(values.shape[-2], -1)
    out = np.empty((n_groups, columns.shape[1]))
    for k, column in enumerate(columns.T):
        out[:, k] = np.bincount(codes, weights=column, minlength=n_groups)
    return np.moveaxis(out.reshape(n_groups, *values.shape[:-2], values.shape[-1]), 0, -2)


def per_cluster_scatter(deviations: np.ndarray, codes: np.ndarray, nclusters: int) -> np.ndarray:
    """Return the (..., J, q, q) scatter of ``deviations`` (..., N, q) rows per cluster code (zero for an
    empty cluster); leading axes are data sets with the same clusters.

    The clusters of each distinct size are multiplied in one batched product (see :func:`blocks_by_size`),
    each as ``block.T @ block`` of its rows.
    """
    q = deviations.shape[-1]
    out = np.zeros((*deviations.shape[:-2], nclusters, q, q))
    for members, block in blocks_by_size(deviations, codes, nclusters):
        out[..., members, :, :] = np.swapaxes(block, -1, -2) @ block
    return out


def cluster_nanmeans(values: np.ndarray, codes: np.ndarray, nclusters: int) -> np.ndarray:
    """Mean of the non-missing values of each column within each cluster.

    Each cluster's column is summed as numpy sums one array (``pandas.Series.mean`` per cluster gives the
    same numbers); the clusters of one size are summed together (see :func:`blocks_by_size`).

    Parameters
    ----------
    values
        Shape (N, k), NaN where missing.
    codes
        Cluster of each row, 0..nclusters-1.
    nclusters
        Number of clusters J.

    Returns
    -------
    numpy.ndarray
        Shape (J, k); NaN where a cluster has no observed value of the column.
    """
    out = np.full((nclusters, values.shape[1]), np.nan)
    for members, block in blocks_by_size(values, codes, nclusters):
        observed = ~np.isnan(block)
        # (clusters, columns, rows): each cluster's column contiguous, reduced by numpy's pairwise sum
        sums = np.ascontiguousarray(np.swapaxes(np.where(observed, block, 0.0), 1, 2)).sum(axis=-1)
        with np.errstate(invalid="ignore"):
            out[members] = sums / observed.sum(axis=1)
    return out


def blocks_by_size(
    values: np.ndarray, codes: np.ndarray, nclusters: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The rows of ``values`` stacked cluster by cluster, one array per distinct cluster size.

    Parameters
    ----------
    values
        Shape (..., N, k): leading axes are data sets with the same clusters.
    codes
        Cluster of each row, 0..nclusters-1.
    nclusters
        Number of clusters J (empty clusters are skipped).

    Yields
    ------
    tuple of numpy.ndarray
        For each distinct size n (ascending): the indices of the clusters of that size (ascending), shape
        (J_n,), and their rows, shape (..., J_n, n, k), each cluster's rows in row order. The rows are
        sorted by cluster once, so the cost is linear in N plus one step per distinct size.
    """
    sizes = np.bincount(codes, minlength=nclusters)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    by_cluster = np.argsort(codes, kind="stable")  # row indices, cluster by cluster, each in row order
    distinct, size_group = np.unique(sizes, return_inverse=True)
    by_size = np.argsort(size_group, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(size_group, minlength=distinct.size))])
    for g, size in enumerate(distinct.tolist()):
        if size == 0:
            continue
        members = by_size[bounds[g] : bounds[g + 1]]
        rows = by_cluster[(starts[members, None] + np.arange(size)).reshape(-1)]
        yield members, values[..., rows, :].reshape(*values.shape[:-2], members.size, size, values.shape[-1])


@dataclass(frozen=True)
class LevelMoments:
    """ML moments of two-level data: over all N rows, and over the J cluster means.

    Attributes
    ----------
    total_mean, total_cov
        Mean and covariance (divided by N) of all rows, ignoring the clustering.
    means_mean, means_cov
        Mean and covariance (divided by J) of the cluster means.
    """

    total_mean: np.ndarray
    total_cov: np.ndarray
    means_mean: np.ndarray
    means_cov: np.ndarray


def level_moments(stats: TwoLevelStats) -> LevelMoments:
    """Total and cluster-mean moments of two-level data, from its sufficient statistics."""
    sizes, counts = stats.group_sizes, stats.group_counts
    means, scatter = stats.group_means, stats.group_scatter
    nvar = means.shape[1]
    grand = (sizes * counts) @ means / stats.nobs
    total = np.zeros((nvar, nvar))
    total[np.ix_(stats.within_index, stats.within_index)] = stats.within_scatter
    dev = means - grand
    total += np.einsum("g,gkl->kl", sizes, scatter) + np.einsum("g,gk,gl->kl", sizes * counts, dev, dev)
    mean_of_means = counts @ means / stats.nclusters
    dev = means - mean_of_means
    between = scatter.sum(axis=0) + np.einsum("g,gk,gl->kl", counts, dev, dev)
    return LevelMoments(grand, total / stats.nobs, mean_of_means, between / stats.nclusters)


def fill_by_cluster_means(frame: pd.DataFrame, variables: list[str], cluster: str | None) -> pd.DataFrame:
    """``frame`` with missing values filled (start values only): a new frame, or ``frame`` itself when none
    of ``variables`` has a missing value.

    A missing value takes the mean of its variable's observed values in its cluster, or, where the cluster
    has none (or there are no clusters), over all rows. The cluster means come from one pass over the rows
    sorted by cluster (:func:`cluster_nanmeans`), not from a loop over the clusters.
    """
    values = frame[variables].to_numpy(dtype=np.float64)
    missing = np.isnan(values)
    if not missing.any():
        return frame
    out = frame.copy()
    if cluster is not None:
        codes, labels = pd.factorize(out[cluster])
        means = cluster_nanmeans(values, codes, len(labels))
        out[variables] = np.where(missing, means[codes], values)
    return out.fillna(out[variables].mean())
