"""Normal log-likelihoods from sufficient statistics, as PyTensor expressions.

Every function takes model-implied moments (PyTensor tensors or numpy arrays) and a statistics object from
:mod:`pymlsem.data.stats` whose arrays may be numpy arrays or ``pm.Data`` containers (see
:func:`stats_as_data`); no data shape is baked into the graph, so a compiled model can be given another data
set's statistics with ``pm.set_data``. Covariances are factored by Cholesky and used through triangular
solves; a covariance that is not positive definite gives ``-inf`` (never NaN or an exception).

Two-level density
-----------------
Cluster j has n_j rows. Its within-varying values ``y_ij`` (all variables except the between-only ones) and
its between-only values ``z_j`` are jointly normal with ``E = mu_w + mu_b`` and covariance
``I_{n_j} (x) Sigma_W + J_{n_j} (x) Sigma_B`` (for the y part; ``z_j`` enters once, through ``Sigma_B``).
Writing the rows as within-cluster contrasts plus the cluster mean (an orthogonal Helmert transform), the
contrasts (n_j - 1 degrees of freedom, covariance Sigma_W) are independent of the cluster-mean vector
``(ybar_j, z_j)``, whose covariance is ``C_j = Sigma_B + Sigma_W / n_j``. So the log-density of all the
data is, exactly::

    -1/2 (N - J) [p_w log 2pi + log|Sigma_W|] - 1/2 tr(Sigma_W^-1 S_PW)
    -1/2 sum_g m_g [p log 2pi + log|C_g| + p_w log n_g] - 1/2 sum_g tr(C_g^-1 [B_g + m_g d_g d_g'])

with S_PW the pooled within scatter, and for each distinct cluster size n_g: m_g clusters, d_g the mean of
their cluster means minus ``mu_w + mu_b``, B_g the scatter of their cluster means. (p_w log n_g is the
Jacobian between ``ybar_j`` and the orthonormal contrast ``sqrt(n_j) ybar_j``.)

lavaan's convention (checked against lavaan 0.6-14 on Demo.twolevel to 1e-12)
----------------------------------------------------------------------------
* lavaan's ``logl`` for two-level data (``lav_mvnorm_cluster_loglik_samplestats_2l``) is this exact joint
  density, with lavaan's moments mapped as follows (``lav_mvnorm_cluster_implied22l``): the within-level
  implied covariance over the within variables (both-level and within-only) padded with zeros for the
  between-only ones is ``sigma_w``; the between-level implied covariance (both-level and between-only
  variables) padded with zeros for the within-only ones is ``sigma_b``; the mean of every variable is the sum
  of its within-level implied mean (zero for between-only variables) and its between-level implied mean
  (zero for within-only variables). Note that lavaan's within-level implied means of both-level variables
  need not be zero (e.g. ``fw ~ x`` gives them ``lambda * gamma * mean(x)``), so pass them in ``mu_w``.
* With ``fixed.x = TRUE`` lavaan then subtracts a constant, ``YLp[[2]]$loglik.x``
  (``lav_samplestats_cluster_patterns``): the saturated normal log-likelihood of the level-1 exogenous
  covariates from their total ML covariance over all N rows (ignoring the clustering), plus that of the
  level-2 exogenous covariates from the ML covariance of their J cluster means. Single-level lavaan likewise
  subtracts the exogenous covariates' log-likelihood at their sample moments. :func:`two_level_fixed_x_loglik`
  and :func:`single_level_fixed_x_loglik` return these constants; ``lavaan logl = loglik - constant``. When
  the level-1 covariates are within-only (as in Demo.twolevel) this equals the log-likelihood of y given the
  covariates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

from pymlsem.data.stats import SingleLevelStats, TwoLevelStats, level_moments
from pymlsem.exceptions import DataError

__all__ = [
    "guarded_cholesky",
    "or_minus_inf",
    "single_level_fixed_x_loglik",
    "single_level_loglik",
    "stats_as_data",
    "trace_solve",
    "two_level_cluster_loglik",
    "two_level_fixed_x_loglik",
    "two_level_loglik",
]

LOG_2PI = float(np.log(2.0 * np.pi))

TensorLike = Any  # a PyTensor variable, a numpy array or a Python number


def identity(x: TensorLike, axis: int = -1) -> pt.TensorVariable:
    """The identity matrix of ``x``'s size along ``axis``, of static size where that size is known.

    ``pt.eye`` of a symbolic size (``x.shape[-1]``) infers it by rewriting the whole graph above ``x``:
    ~0.1 s per call in a model's graph, most of building a marginal SEM.
    """
    x = pt.as_tensor_variable(x)
    size = x.type.shape[axis]
    return pt.eye(x.shape[axis] if size is None else size)


def guarded_cholesky(cov: TensorLike) -> tuple[pt.TensorVariable, pt.TensorVariable, pt.TensorVariable]:
    """Return the lower Cholesky factor (batched over leading axes), log-determinant and a PD flag."""
    cov = pt.as_tensor_variable(cov)
    # NaN where not positive definite; no gradient flows through this trial factor.
    trial = pt.linalg.cholesky(disconnected_grad(cov), lower=True, on_error="nan")
    positive = pt.all(pt.diagonal(trial, axis1=-2, axis2=-1) > 0, axis=-1)
    # Factor the identity instead where that failed, so that neither the value nor the gradient is NaN
    safe = pt.switch(positive[..., None, None], cov, identity(cov))
    chol = pt.linalg.cholesky(safe, lower=True, on_error="nan")
    logdet = 2.0 * pt.log(pt.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
    return chol, logdet, positive


def trace_solve(chol: TensorLike, scatter: TensorLike) -> pt.TensorVariable:
    """Return ``tr(Sigma^-1 T)`` for ``Sigma = L L'`` and symmetric T, batched over leading axes."""
    half = pt.linalg.solve_triangular(chol, scatter, lower=True, b_ndim=2)  # L^-1 T
    full = pt.linalg.solve_triangular(chol, pt.swapaxes(half, -1, -2), lower=True, b_ndim=2)  # L^-1 T L^-T
    return pt.diagonal(full, axis1=-2, axis2=-1).sum(axis=-1)


def or_minus_inf(value: pt.TensorVariable, ok: pt.TensorVariable) -> pt.TensorVariable:
    """``value`` where ``ok``, ``-inf`` elsewhere (a covariance that is not positive definite)."""
    return pt.switch(ok, value, -np.inf)


def single_level_loglik(
    mu: TensorLike | None, sigma: TensorLike, stats: SingleLevelStats
) -> pt.TensorVariable:
    """Multivariate normal log-likelihood of N rows from their mean and ML covariance.

    ``-N/2 [p log 2pi + log|Sigma| + tr(Sigma^-1 S) + (ybar - mu)' Sigma^-1 (ybar - mu)]``.

    Parameters
    ----------
    mu
        Implied mean, shape (p,), or None for a covariance-only model (the mean term is then dropped).
    sigma
        Implied covariance, shape (p, p), in ``stats.variables`` order.
    stats
        Sufficient statistics; ``nobs``, ``mean`` and ``cov`` may be ``pm.Data`` containers.

    Returns
    -------
    TensorVariable
        Scalar log-likelihood; ``-inf`` when ``sigma`` is not positive definite.

    Raises
    ------
    DataError
        When ``mu`` is given but the statistics have no mean (covariance-only summary data).
    """
    chol, logdet, ok = guarded_cholesky(sigma)
    cov = pt.as_tensor_variable(stats.cov)
    nvar = cov.shape[-1]
    quad = trace_solve(chol, cov)
    if mu is not None:
        if stats.mean is None:
            raise DataError("the statistics have no means: fit the model without a mean structure")
        dev = pt.as_tensor_variable(stats.mean) - mu
        z = pt.linalg.solve_triangular(chol, dev, lower=True, b_ndim=1)
        quad = quad + pt.sum(z**2)
    value = -0.5 * pt.as_tensor_variable(stats.nobs) * (nvar * LOG_2PI + logdet + quad)
    return or_minus_inf(value, ok)


def index_array(index: TensorLike) -> TensorLike:
    """Positions as an int64 numpy array, or as they are when symbolic (an input of the compiled engine)."""
    if isinstance(index, pt.Variable):
        return index
    return np.asarray(index, dtype=np.int64)


def _submatrix(matrix: TensorLike, index: np.ndarray) -> pt.TensorVariable:
    matrix = pt.as_tensor_variable(matrix)
    return matrix[index][:, index]


def two_level_loglik(
    mu_w: TensorLike, sigma_w: TensorLike, mu_b: TensorLike, sigma_b: TensorLike, stats: TwoLevelStats
) -> pt.TensorVariable:
    """Exact normal log-likelihood of two-level data from sufficient statistics.

    The density is described in the module docstring; its cost depends on the number of distinct cluster
    sizes (one batched Cholesky over them), not on N or the number of clusters.

    Parameters
    ----------
    mu_w, mu_b
        Within- and between-level implied means, shape (p,) each, in ``stats.variables`` order; the mean of
        each variable is ``mu_w + mu_b`` (lavaan: within-only means in ``mu_w``, between-only in ``mu_b``;
        zeros where a level has no part).
    sigma_w
        Within covariance, shape (p, p), zero rows/columns for between-only variables.
    sigma_b
        Between covariance, shape (p, p), zero rows/columns for within-only variables.
    stats
        Two-level statistics; the arrays named by :meth:`TwoLevelStats.arrays` may be ``pm.Data`` containers.

    Returns
    -------
    TensorVariable
        Scalar log-likelihood; ``-inf`` when ``sigma_w`` (over the within-varying variables) or any
        ``sigma_b + sigma_w / n_g`` is not positive definite.
    """
    index = index_array(stats.within_index)
    n_within = index.shape[0]
    sigma_w = pt.as_tensor_variable(sigma_w)
    sigma_b = pt.as_tensor_variable(sigma_b)
    sizes = pt.as_tensor_variable(stats.group_sizes)
    counts = pt.as_tensor_variable(stats.group_counts)
    means = pt.as_tensor_variable(stats.group_means)
    nvar = means.shape[-1]

    chol_w, logdet_w, ok_w = guarded_cholesky(_submatrix(sigma_w, index))
    within_dof = pt.sum(counts * (sizes - 1.0))
    within = -0.5 * (within_dof * (n_within * LOG_2PI + logdet_w) + trace_solve(chol_w, stats.within_scatter))

    cov_b = sigma_b[None, :, :] + sigma_w[None, :, :] / sizes[:, None, None]
    chol_b, logdet_b, ok_b = guarded_cholesky(cov_b)
    dev = means - (pt.as_tensor_variable(mu_w) + pt.as_tensor_variable(mu_b))[None, :]
    scatter = pt.as_tensor_variable(stats.group_scatter) + counts[:, None, None] * (
        dev[:, :, None] * dev[:, None, :]
    )
    between = -0.5 * pt.sum(
        counts * (nvar * LOG_2PI + logdet_b + n_within * pt.log(sizes)) + trace_solve(chol_b, scatter)
    )
    return or_minus_inf(within + between, ok_w & pt.all(ok_b))


def two_level_cluster_loglik(
    mu_w: TensorLike, sigma_w: TensorLike, mu_b: TensorLike, sigma_b: TensorLike, stats: TwoLevelStats
) -> pt.TensorVariable:
    """Per-cluster contributions to :func:`two_level_loglik` (for leave-one-cluster-out LOO).

    Parameters
    ----------
    mu_w, sigma_w, mu_b, sigma_b
        As in :func:`two_level_loglik`.
    stats
        Two-level statistics; the arrays named by :meth:`TwoLevelStats.cluster_arrays` may be ``pm.Data``.

    Returns
    -------
    TensorVariable
        Shape (J,), the exact log-density of each cluster's rows, in ``stats.cluster_ids`` order; they sum to
        :func:`two_level_loglik`. All ``-inf`` when a covariance is not positive definite.
    """
    index = index_array(stats.within_index)
    n_within = index.shape[0]
    sigma_w = pt.as_tensor_variable(sigma_w)
    sigma_b = pt.as_tensor_variable(sigma_b)
    sizes = pt.as_tensor_variable(stats.cluster_sizes)
    means = pt.as_tensor_variable(stats.cluster_means)
    group_sizes = pt.as_tensor_variable(stats.group_sizes)
    nvar = means.shape[-1]

    chol_w, logdet_w, ok_w = guarded_cholesky(_submatrix(sigma_w, index))
    within_scatter = pt.as_tensor_variable(stats.cluster_within_scatter)
    within = -0.5 * ((sizes - 1.0) * (n_within * LOG_2PI + logdet_w) + trace_solve(chol_w, within_scatter))

    chol_g, logdet_g, ok_g = guarded_cholesky(
        sigma_b[None, :, :] + sigma_w[None, :, :] / group_sizes[:, None, None]
    )
    group = pt.as_tensor_variable(stats.cluster_group)
    dev = means - (pt.as_tensor_variable(mu_w) + pt.as_tensor_variable(mu_b))[None, :]
    z = pt.linalg.solve_triangular(chol_g[group], dev, lower=True, b_ndim=1)
    between = -0.5 * (nvar * LOG_2PI + logdet_g[group] + n_within * pt.log(sizes) + pt.sum(z**2, axis=-1))
    return or_minus_inf(within + between, ok_w & pt.all(ok_g))


def _h1_loglik(nobs: float, cov: np.ndarray) -> float:
    """Saturated normal log-likelihood of ``nobs`` rows with ML covariance ``cov`` (mean at sample mean)."""
    k = cov.shape[0]
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        raise DataError("the exogenous covariates' sample covariance is not positive definite")
    return float(-0.5 * nobs * (k * LOG_2PI + logdet + k))


def _positions(variables: Sequence[str], names: Sequence[str]) -> list[int]:
    unknown = [v for v in names if v not in variables]
    if unknown:
        raise DataError(f"exogenous covariates not among the statistics' variables: {', '.join(unknown)}")
    return [list(variables).index(v) for v in names]


def single_level_fixed_x_loglik(stats: SingleLevelStats, exogenous: Sequence[str]) -> float:
    """Return the constant lavaan subtracts from the single-level log-likelihood under ``fixed.x``.

    The saturated normal log-likelihood of the exogenous covariates at their sample mean and ML covariance.

    Parameters
    ----------
    stats
        Single-level statistics with numpy arrays.
    exogenous
        Names of the fixed.x covariates (0.0 when empty).

    Returns
    -------
    float
    """
    if not exogenous:
        return 0.0
    idx = _positions(stats.variables, exogenous)
    return _h1_loglik(float(stats.nobs), np.asarray(stats.cov)[np.ix_(idx, idx)])


def two_level_fixed_x_loglik(
    stats: TwoLevelStats, within: Sequence[str] = (), between: Sequence[str] = ()
) -> float:
    """Return the constant lavaan subtracts from the two-level log-likelihood under ``fixed.x``.

    lavaan's ``loglik.x``: the saturated normal log-likelihood of the level-1 exogenous covariates from
    their total ML covariance over all N rows (the clustering ignored), plus that of the level-2 exogenous
    covariates from the ML covariance of their J cluster means.

    Parameters
    ----------
    stats
        Two-level statistics with numpy arrays.
    within
        Exogenous covariates of the level-1 model.
    between
        Exogenous covariates of the level-2 model.

    Returns
    -------
    float
    """
    moments = level_moments(stats)
    total, of_means = moments.total_cov, moments.means_cov
    value = 0.0
    if within:
        idx = _positions(stats.variables, within)
        value += _h1_loglik(float(stats.nobs), total[np.ix_(idx, idx)])
    if between:
        idx = _positions(stats.variables, between)
        value += _h1_loglik(float(stats.nclusters), of_means[np.ix_(idx, idx)])
    return value


def stats_as_data(stats: SingleLevelStats | TwoLevelStats, prefix: str = "") -> Any:
    """Wrap the likelihood's data arrays in ``pm.Data`` containers (inside a model context).

    Parameters
    ----------
    stats
        Statistics with numpy arrays.
    prefix
        Prepended to each attribute name to form the container names; swap data later with
        ``pm.set_data({prefix + name: array for name, array in new_stats.arrays().items()})``.

    Returns
    -------
    SingleLevelStats or TwoLevelStats
        A copy whose :meth:`arrays` attributes are ``pm.Data`` containers (same type as ``stats``).
    """
    import pymc as pm

    containers = {name: pm.Data(prefix + name, value) for name, value in stats.arrays().items()}
    return dataclasses.replace(stats, **containers)
