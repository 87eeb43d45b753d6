"""Log-likelihoods of SEMs fitted to data with missing values, per cluster, per row and in total.

The full-information densities of :mod:`pymlsem.build.missing` (the ones the model samples with), evaluated
under every draw's implied moments by the engine's kernels (:mod:`pymlsem.engine.kernels.incomplete`, the
terms the ``sem1_fiml`` and ``sem2_fiml`` families sample with, compiled once per machine and tested against
the PyTensor expressions):

- two levels: the log-density of each cluster's observed values (statistics with the patterns split by
  cluster, :func:`~pymlsem.data.missing_stats.two_level_missing_stats` with ``by_cluster=True``);
- one level: the log-density of each row's observed values (every row its own pattern);
- the log-likelihood of all the data, from the model's own statistics.

Clusters are processed in blocks, so memory stays bounded whatever the number of clusters. A cluster or
row without an observed value has log-likelihood 0.
"""

from __future__ import annotations

from itertools import pairwise
from time import perf_counter
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pymlsem.build.vectorized import as_input
from pymlsem.data.missing_stats import (
    MissingSingleLevelStats,
    MissingTwoLevelStats,
    single_level_missing_stats,
    two_level_missing_stats,
)
from pymlsem.engine.kernels.incomplete import pattern_loglik_draws, two_level_loglik_draws
from pymlsem.workflow.loglik import ImpliedMoments, implied_moments

if TYPE_CHECKING:
    from pymlsem.api import SEM

__all__ = [
    "TWO_LEVEL_ARRAYS",
    "compile_incomplete_checks",
    "in_stats_order",
    "loglik_draws",
    "missing_loglik_at",
    "missing_stats_of",
    "missing_total_loglik",
    "missing_unit_loglik",
]

#: Rows per block of the pointwise statistics.
_BLOCK_ROWS = 20_000

_SINGLE_ARRAYS = {"pattern_observed": 2, "pattern_counts": 1, "pattern_means": 2, "pattern_scatter": 3}
#: the statistics of two-level incomplete data the compiled densities take, with their numbers of dimensions
TWO_LEVEL_ARRAYS = {
    **_SINGLE_ARRAYS,
    "cluster_pattern_counts": 2,
    "cluster_pattern_sums": 3,
    "cluster_observed": 2,
    "cluster_values": 2,
}


def _likelihood_stats(spec: SEM) -> MissingSingleLevelStats | MissingTwoLevelStats:
    """The model's full-information statistics (computed here for a model fitted by the latent method)."""
    if spec.likelihood_stats is not None:
        return spec.likelihood_stats
    return missing_stats_of(spec, spec.data)


def missing_stats_of(
    spec: SEM, frame: pd.DataFrame, *, by_unit: bool = False
) -> MissingSingleLevelStats | MissingTwoLevelStats:
    """Full-information statistics of a data frame of the model's variables (and cluster column).

    Parameters
    ----------
    spec
        The SEM: its variables, cluster column and each variable's levels.
    frame
        Data with the model's columns, e.g. a replicated data set.
    by_unit
        Patterns split by cluster (two levels) or one per row (one level): the statistics of the
        pointwise log-likelihoods.

    Returns
    -------
    MissingSingleLevelStats or MissingTwoLevelStats
    """
    if spec.cluster is None:
        return single_level_missing_stats(frame, spec.observed, by_row=by_unit)
    levels = {"within_only": spec.partable.within_only, "between_only": spec.partable.between_only}
    return two_level_missing_stats(frame, spec.observed, spec.cluster, **levels, by_cluster=by_unit)


def _moments(spec: SEM, rows: np.ndarray) -> tuple[dict, dict]:
    """Implied means and covariances per level and draw, in the order of the statistics' variables."""
    return in_stats_order(spec, implied_moments(spec, np.atleast_2d(rows)))


def in_stats_order(spec: SEM, moments: ImpliedMoments) -> tuple[dict, dict]:
    """Implied moments (:func:`pymlsem.workflow.loglik.implied_moments`) as :func:`loglik_draws` takes them:
    ``(mean, cov)``, level -> (S, p) and (S, p, p), in the order of the statistics' variables."""
    order = np.array([moments.variables.index(v) for v in spec.observed], dtype=np.int64)
    mean = {level: m[:, order] for level, m in moments.mean.items()}
    cov = {level: c[:, order[:, None], order[None, :]] for level, c in moments.cov.items()}
    return mean, cov


def loglik_draws(
    moments: tuple[dict, dict], stats: MissingSingleLevelStats | MissingTwoLevelStats, per_unit: bool
) -> np.ndarray:
    """The full-information log-likelihood at every draw's moments.

    Parameters
    ----------
    moments
        ``(mean, cov)``: level (1, and 2 for two-level statistics) -> means (S, p) and covariances
        (S, p, p) in the order of the statistics' variables.
    stats
        Statistics of incomplete data (with patterns by cluster or by row for ``per_unit``).
    per_unit
        Each cluster's or pattern's value instead of the total.

    Returns
    -------
    numpy.ndarray
        Shape (S, units) per unit, (S,) in total; ``-inf`` where a covariance is not positive definite.
    """
    mean, cov = moments
    if isinstance(stats, MissingTwoLevelStats):
        index = [as_input(stats.within_index, "int64"), as_input(stats.between_index, "int64")]
        arrays = [as_input(getattr(stats, name)) for name in TWO_LEVEL_ARRAYS]
        levels = [as_input(values[level]) for level in (1, 2) for values in (mean, cov)]
        values = two_level_loglik_draws(*levels, *index, *arrays, per_unit)
        return values if per_unit else values[:, 0]
    arrays = [as_input(getattr(stats, name)) for name in _SINGLE_ARRAYS]
    patterns = pattern_loglik_draws(as_input(mean[1]), as_input(cov[1]), *arrays)
    return patterns if per_unit else patterns.sum(axis=1)


def missing_loglik_at(mean: np.ndarray, cov: np.ndarray, stats: MissingSingleLevelStats) -> float:
    """The full-information log-likelihood of one-level incomplete data at given means and covariances
    (e.g. the saturated model's), by the model's own density."""
    moments = ({1: np.asarray(mean)[None]}, {1: np.asarray(cov)[None]})
    return float(loglik_draws(moments, stats, per_unit=False)[0])


def missing_total_loglik(
    spec: SEM, rows: np.ndarray, stats: MissingSingleLevelStats | MissingTwoLevelStats | None = None
) -> np.ndarray:
    """Log-likelihood of all the data (missing values integrated out) for a batch of row values.

    Parameters
    ----------
    spec
        A SEM with missing values.
    rows
        Shape (n_draws, n_rows): every parameter-table row's value per draw.
    stats
        Statistics of other data of the model's variables (e.g. a replicated data set); by default the
        model's own.

    Returns
    -------
    numpy.ndarray
        Shape (n_draws,): the model's own likelihood term, ``-inf`` where a covariance is not positive
        definite.
    """
    stats = _likelihood_stats(spec) if stats is None else stats
    return loglik_draws(_moments(spec, rows), stats, per_unit=False)


def _blocks(sizes: np.ndarray) -> list[slice]:
    """Consecutive units grouped into blocks of about :data:`_BLOCK_ROWS` rows."""
    ends = np.cumsum(sizes)
    bounds = np.searchsorted(ends, np.arange(_BLOCK_ROWS, ends[-1], _BLOCK_ROWS), side="right")
    bounds = np.unique(np.concatenate([[0], bounds, [sizes.size]]))
    return [slice(int(a), int(b)) for a, b in pairwise(bounds) if b > a]


def missing_unit_loglik(spec: SEM, rows: np.ndarray) -> np.ndarray:
    """Log-likelihood of each cluster's (two levels) or row's (one level) observed values, per draw.

    Parameters
    ----------
    spec
        A SEM with missing values.
    rows
        Shape (n_draws, n_rows).

    Returns
    -------
    numpy.ndarray
        Shape (n_draws, units): clusters in the order of ``spec.stats.cluster_ids``, or the data's rows;
        they sum to :func:`missing_total_loglik` (a unit without an observed value has 0).
    """
    moments = _moments(spec, rows)
    frame = spec.data
    if spec.cluster is None:
        labels = np.arange(len(frame))
        codes = labels
    else:
        labels = np.asarray(spec.stats.cluster_ids)
        codes = np.searchsorted(labels, frame[spec.cluster].to_numpy())
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(labels.size + 1))
    seen = frame.loc[:, list(spec.observed)].notna().to_numpy().any(axis=1)
    out = np.zeros((moments[1][1].shape[0], labels.size))
    for block in _blocks(np.diff(starts)):
        members = order[starts[block.start] : starts[block.stop]]
        members = members[seen[members]]  # the statistics leave out rows without an observed value
        if not members.size:
            continue
        part = missing_stats_of(spec, frame.iloc[members], by_unit=True)
        where = np.searchsorted(labels, part.cluster_ids) if spec.cluster is not None else members
        out[:, where] = loglik_draws(moments, part, per_unit=True)
    return out


def compile_incomplete_checks() -> str:
    """Compile (or load from numba's disk cache) the densities above, for ``python -m pymlsem warmup``.

    numba compiles a function at its first call, for the types of that call, so each is called once on a
    tiny incomplete data set (two variables, two clusters) through the path every model's check takes.

    Returns
    -------
    str
        A line saying how long it took.
    """
    start = perf_counter()
    frame = pd.DataFrame({"a": [0.1, np.nan, 0.3, 0.4], "b": [1.0, 0.2, np.nan, 0.5], "g": [1, 1, 2, 2]})
    moments = ({1: np.zeros((1, 2)), 2: np.zeros((1, 2))}, {1: np.eye(2)[None], 2: np.eye(2)[None]})
    for by_unit in (False, True):
        loglik_draws(moments, single_level_missing_stats(frame, ["a", "b"], by_row=by_unit), per_unit=by_unit)
        loglik_draws(
            moments, two_level_missing_stats(frame, ["a", "b"], "g", by_cluster=by_unit), per_unit=by_unit
        )
    return f"pymlsem: post-fit checks of incomplete data ready ({perf_counter() - start:.1f} s)"
