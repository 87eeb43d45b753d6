"""Normal log-likelihoods of SEM data for a batch of parameter draws and data sets at once.

The model checks (posterior predictive p-values, fit indices) evaluate the model's densities for hundreds of
posterior draws and replicated data sets. These functions take sufficient statistics with a leading batch
axis (one entry per replicated data set) and implied moments with a leading draw axis, broadcast the two,
and evaluate the sampler's own densities: :func:`pymlsem.build.loglik.single_level_loglik`'s expression
vectorized over the batch (:mod:`pymlsem.build.vectorized`), and the two-level density of the two-level
engine family's kernel (:func:`pymlsem.engine.kernels.sem2.loglik_draws`, tested against
:func:`pymlsem.build.loglik.two_level_loglik`; one numba function, a few seconds to compile where the
expression's batched form took a minute): the full joint normal density of all observed variables, no
fixed.x constant subtracted. A covariance that is not positive definite gives ``-inf``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import pytensor.tensor as pt

from pymlsem.build import loglik as build_loglik
from pymlsem.build.vectorized import batched_function, symbolic
from pymlsem.data.stats import SingleLevelStats, TwoLevelStats
from pymlsem.engine.kernels.sem2 import loglik_draws
from pymlsem.results.implied import ram_moment_draws

if TYPE_CHECKING:
    from pymlsem.api import SEM

__all__ = [
    "ImpliedMoments",
    "SingleLevelBatch",
    "TwoLevelBatch",
    "batch_of",
    "compile_densities",
    "implied_moments",
    "model_loglik",
    "single_level_loglik",
    "two_level_loglik",
]


@dataclass(frozen=True)
class SingleLevelBatch:
    """Single-level sufficient statistics of R data sets with the same number of rows.

    Attributes
    ----------
    variables
        Variable names, in the order of the last axes.
    nobs
        Number of rows N of every data set.
    mean
        Shape (R, p) sample means, or None for covariance-only data (no mean structure).
    cov
        Shape (R, p, p) ML sample covariances (divided by N).
    """

    variables: tuple[str, ...]
    nobs: int
    mean: np.ndarray | None
    cov: np.ndarray

    @property
    def size(self) -> int:
        """Number of data sets R."""
        return int(self.cov.shape[0])


@dataclass(frozen=True)
class TwoLevelBatch:
    """Two-level sufficient statistics of R data sets with the same variables and cluster sizes.

    Attributes
    ----------
    variables, within_only, between_only
        As in :class:`~pymlsem.data.stats.TwoLevelStats`.
    nobs, nclusters
        Number of rows N and of clusters J of every data set.
    within_index
        Positions of the within-varying variables (all but the between-only ones), shape (p_w,).
    group_sizes, group_counts
        The distinct cluster sizes and how many clusters have each, shape (G,), shared by all data sets.
    within_scatter
        Shape (R, p_w, p_w): pooled within-cluster scatter.
    group_means
        Shape (R, G, p): mean of the cluster means of the clusters of each size.
    group_scatter
        Shape (R, G, p, p): scatter of those cluster means around ``group_means``.
    """

    variables: tuple[str, ...]
    within_only: tuple[str, ...]
    between_only: tuple[str, ...]
    nobs: int
    nclusters: int
    within_index: np.ndarray
    group_sizes: np.ndarray
    group_counts: np.ndarray
    within_scatter: np.ndarray
    group_means: np.ndarray
    group_scatter: np.ndarray

    @property
    def size(self) -> int:
        """Number of data sets R."""
        return int(self.within_scatter.shape[0])

    @classmethod
    def from_stats(
        cls,
        stats: TwoLevelStats,
        within_scatter: np.ndarray,
        group_means: np.ndarray,
        group_scatter: np.ndarray,
    ) -> TwoLevelBatch:
        """A batch with the structure of ``stats`` (variables, cluster sizes) holding the given statistics."""
        return cls(
            tuple(stats.variables),
            tuple(stats.within_only),
            tuple(stats.between_only),
            int(stats.nobs),
            int(stats.nclusters),
            np.asarray(stats.within_index, dtype=np.int64),
            np.asarray(stats.group_sizes, dtype=float),
            np.asarray(stats.group_counts, dtype=float),
            np.asarray(within_scatter, dtype=float),
            np.asarray(group_means, dtype=float),
            np.asarray(group_scatter, dtype=float),
        )

    def take(self, index: np.ndarray) -> TwoLevelBatch:
        """The data sets at ``index`` (a boolean mask or integer positions along the batch axis)."""
        return dataclasses.replace(
            self,
            within_scatter=self.within_scatter[index],
            group_means=self.group_means[index],
            group_scatter=self.group_scatter[index],
        )


def batch_of(stats: SingleLevelStats | TwoLevelStats) -> SingleLevelBatch | TwoLevelBatch:
    """A batch holding one data set: the statistics of the observed data.

    Parameters
    ----------
    stats
        Statistics with numpy arrays (as a :class:`~pymlsem.api.SEM` holds them).

    Returns
    -------
    SingleLevelBatch or TwoLevelBatch
        With a leading batch axis of length 1.
    """
    if isinstance(stats, TwoLevelStats):
        return TwoLevelBatch.from_stats(
            stats,
            np.asarray(stats.within_scatter, dtype=float)[None],
            np.asarray(stats.group_means, dtype=float)[None],
            np.asarray(stats.group_scatter, dtype=float)[None],
        )
    mean = None if stats.mean is None else np.asarray(stats.mean, dtype=float)[None]
    return SingleLevelBatch(tuple(stats.variables), int(stats.nobs), mean, np.asarray(stats.cov, float)[None])


#: the statistics of a two-level batch that change from one data set to another
_TWO_LEVEL_DATA = ("within_scatter", "group_means", "group_scatter")


@cache
def _single_level_function(meanstructure: bool) -> Callable[..., list[np.ndarray]]:
    """:func:`pymlsem.build.loglik.single_level_loglik`, batched over moments and statistics."""
    mu, sigma = pt.vector("mu"), pt.matrix("sigma")
    stats = symbolic(nobs=0, mean=1, cov=2)
    value = build_loglik.single_level_loglik(mu if meanstructure else None, sigma, stats)
    inputs = [mu, sigma, stats.nobs, stats.mean, stats.cov]
    return batched_function(inputs, [value], batched=[mu, sigma, stats.mean, stats.cov])


def compile_densities() -> None:
    """Compile (or load from numba's disk cache) the two-level density of the model checks.

    numba compiles a function at its first call, for the types of that call, so it is called once on a tiny
    data set (two clusters of two rows), with the array types of every later call.
    """
    p = 2
    one = TwoLevelBatch(
        ("a", "b"), (), (), 4, 2, np.arange(p), np.array([2.0]), np.array([2.0]),
        np.eye(p)[None], np.zeros((1, 1, p)), np.eye(p)[None, None],
    )  # fmt: skip
    mean, cov = np.zeros((1, p)), np.eye(p)[None]
    two_level_loglik(mean, cov, mean, cov, one)


def _common(*arrays: np.ndarray) -> list[np.ndarray]:
    """The arrays broadcast to one batch length (each has 1 or that many entries along its first axis)."""
    length = max(array.shape[0] for array in arrays)
    return [np.broadcast_to(array, (length, *array.shape[1:])) for array in arrays]


def single_level_loglik(mean: np.ndarray | None, cov: np.ndarray, batch: SingleLevelBatch) -> np.ndarray:
    """Multivariate normal log-likelihood of each data set of a batch, for each parameter draw.

    The density of :func:`pymlsem.build.loglik.single_level_loglik`, evaluated by that expression.

    Parameters
    ----------
    mean
        Implied means, shape (S, p), or None to drop the mean term (covariance-only data).
    cov
        Implied covariances, shape (S, p, p).
    batch
        R data sets; R must be 1 or S.

    Returns
    -------
    numpy.ndarray
        Shape (max(S, R),): the log-likelihood of data set r under draw r (or of the single data set under
        every draw); ``-inf`` where ``cov`` is not positive definite.
    """
    cov = np.asarray(cov, dtype=float)
    meanstructure = mean is not None and batch.mean is not None
    mu = np.asarray(mean, dtype=float) if meanstructure else np.zeros(cov.shape[:-1])
    data_mean = batch.mean if meanstructure else np.zeros(batch.cov.shape[:-1])
    mu, cov, data_mean, data_cov = _common(mu, cov, data_mean, batch.cov)
    return _single_level_function(meanstructure)(mu, cov, float(batch.nobs), data_mean, data_cov)[0]


def two_level_loglik(
    mu_w: np.ndarray, sigma_w: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray, batch: TwoLevelBatch
) -> np.ndarray:
    """Exact two-level normal log-likelihood of each data set of a batch, for each parameter draw.

    The density of :func:`pymlsem.build.loglik.two_level_loglik`, evaluated by the two-level family's kernel
    (:func:`pymlsem.engine.kernels.sem2.loglik_draws`).

    Parameters
    ----------
    mu_w, mu_b
        Within- and between-level implied means, shape (S, p) each, in ``batch.variables`` order (zeros
        where a level has no part); the mean of each variable is ``mu_w + mu_b``.
    sigma_w
        Within covariance, shape (S, p, p), zero rows/columns for between-only variables.
    sigma_b
        Between covariance, shape (S, p, p), zero rows/columns for within-only variables.
    batch
        R data sets; R must be 1 or S.

    Returns
    -------
    numpy.ndarray
        Shape (max(S, R),); ``-inf`` where a covariance is not positive definite.
    """
    moments = [np.ascontiguousarray(array, dtype=float) for array in (mu_w, sigma_w, mu_b, sigma_b)]
    data = [np.ascontiguousarray(getattr(batch, name), dtype=float) for name in _TWO_LEVEL_DATA]
    return loglik_draws(
        *moments,
        np.ascontiguousarray(batch.within_index, dtype=np.int64),
        np.ascontiguousarray(batch.group_sizes, dtype=float),
        np.ascontiguousarray(batch.group_counts, dtype=float),
        *data,
    )


@dataclass(frozen=True)
class ImpliedMoments:
    """Model-implied moments of the observed variables per draw, in the order of the model's statistics.

    Attributes
    ----------
    variables
        All observed variables (``SEM.stats.variables``).
    mean, cov
        Per level (1 = within or the only level, 2 = between): shape (S, p) and (S, p, p), with zeros for
        the variables the level does not have.
    """

    variables: tuple[str, ...]
    mean: dict[int, np.ndarray]
    cov: dict[int, np.ndarray]

    @property
    def size(self) -> int:
        """Number of draws S."""
        return int(self.cov[1].shape[0])


def implied_moments(spec: SEM, rows: np.ndarray) -> ImpliedMoments:
    """Implied moments of a model for a batch of parameter-table row values.

    Parameters
    ----------
    spec
        The model.
    rows
        Shape (S, n_rows): the value of every row of the parameter table per draw, e.g. from
        :func:`pymlsem.results.implied.row_value_draws` (lavaan's scale).

    Returns
    -------
    ImpliedMoments
    """
    variables = tuple(spec.stats.variables)
    p = len(variables)
    rows = np.atleast_2d(np.asarray(rows, dtype=float))
    mean: dict[int, np.ndarray] = {}
    cov: dict[int, np.ndarray] = {}
    for level, layout in spec.built.layouts.items():
        moments = ram_moment_draws(layout, rows)
        where = np.array([variables.index(v) for v in layout.observed], dtype=np.int64)
        mean[level] = np.zeros((rows.shape[0], p))
        cov[level] = np.zeros((rows.shape[0], p, p))
        mean[level][:, where] = moments.observed_mean
        cov[level][:, where[:, None], where[None, :]] = moments.observed_cov
    return ImpliedMoments(variables, mean, cov)


def model_loglik(
    moments: ImpliedMoments, batch: SingleLevelBatch | TwoLevelBatch, *, meanstructure: bool = True
) -> np.ndarray:
    """Log-likelihood of each data set of a batch under the implied moments of each draw.

    Parameters
    ----------
    moments
        From :func:`implied_moments`.
    batch
        R data sets (R = 1 or the number of draws).
    meanstructure
        Single-level only: whether the means enter the likelihood.

    Returns
    -------
    numpy.ndarray
        Shape (max(S, R),).
    """
    if isinstance(batch, TwoLevelBatch):
        return two_level_loglik(moments.mean[1], moments.cov[1], moments.mean[2], moments.cov[2], batch)
    return single_level_loglik(moments.mean[1] if meanstructure else None, moments.cov[1], batch)
