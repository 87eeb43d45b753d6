"""Pointwise log-likelihood of a fitted SEM or mixed model, per cluster or per observation.

What one "point" is, and whether the points add up to the log-likelihood of all the data:

=========================  ===============  ==========================================================
model                      unit             value per unit (one per posterior draw)
=========================  ===============  ==========================================================
single-level SEM (raw)     ``observation``  ``log N(y_i | mu, Sigma)``; the rows are independent, so
                                            the values sum to the log-likelihood
two-level SEM              ``cluster``      the exact log-density of all rows of cluster j (latent
                           (default)        variables of both levels integrated out); clusters are
                                            independent, so the values sum to the log-likelihood
two-level SEM              ``observation``  ``log p(y_ij | other rows of cluster j)``: rows of one cluster
                                            are dependent, so there is no per-row factorisation of the
                                            joint density; these leave-one-out conditionals do **not**
                                            sum to the log-likelihood, but they are exactly the terms
                                            PSIS-LOO needs for leaving one row out (Bürkner, Gabry and
                                            Vehtari 2021, non-factorised normal models)
Gaussian mixed model       ``cluster``      the marginal density of cluster j's responses (random
                           (default)        effects integrated out); one grouping factor only
Gaussian mixed model       ``observation``  ``log p(y_i | y_-i)`` with the random effects integrated
                                            out, as for the two-level SEM (both methods, marginal and
                                            latent, give the same values)
non-Gaussian mixed model   ``observation``  ``log p(y_i | u, theta)`` given the sampled random effects
SEM with random slopes or  ``cluster`` or    the row's or cluster's likelihood terms given the sampled
ordered indicators         ``observation``  latent variables (:mod:`pymlsem.workflow.conditional`)
=========================  ===============  ==========================================================

With missing values (SEMs), a cluster's or row's value is the density of its observed values (the
full-information likelihood; :mod:`pymlsem.workflow.incomplete`), and ``observation`` is not available
for two-level models.

Everything is computed from the posterior draws of the parameters in batches of draws; the SEM's per-draw
moments come from :mod:`pymlsem.results.implied`. A SEM's per-cluster and per-row values come from the
engine's kernels (:mod:`pymlsem.engine.kernels.pointwise`, compiled once per machine), tested against the
model's own expressions (:func:`pymlsem.build.loglik.two_level_cluster_loglik`, and
:func:`pymlsem.build.loglik.single_level_loglik` of one row); the leave-one-row-out conditionals of a
two-level model have no counterpart in the model and are computed here. A covariance that is not positive
definite at a draw gives ``-inf`` for that draw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from pymlsem.build.loglik import (
    single_level_fixed_x_loglik,
    two_level_fixed_x_loglik,
)
from pymlsem.build.vectorized import as_input
from pymlsem.data.stats import TwoLevelStats
from pymlsem.engine.kernels.pointwise import cluster_loglik_draws, row_loglik_draws
from pymlsem.engine.kernels.saturated import compile_objective
from pymlsem.exceptions import DataError, ModelSpecificationError, PymlsemError
from pymlsem.mlm.stats import grouping_hierarchy
from pymlsem.results.implied import row_value_draws
from pymlsem.results.posterior import SAMPLE_DIMS, draw_chunks
from pymlsem.workflow.conditional import latent_pointwise_values
from pymlsem.workflow.incomplete import missing_total_loglik, missing_unit_loglik
from pymlsem.workflow.loglik import batch_of, compile_densities, implied_moments, model_loglik
from pymlsem.workflow.mixed_loglik import (
    clustered,
    gaussian_cluster_loglik,
    gaussian_observation_loglik,
    gaussian_theta_draws,
    glmm_observation_loglik,
    is_gaussian,
)

if TYPE_CHECKING:
    from pymlsem.api import SEM
    from pymlsem.mlm.model import BuiltMixedModel
    from pymlsem.workflow.protocol import Fitted

__all__ = [
    "UNITS",
    "Pointwise",
    "add_log_likelihood",
    "compile_model_checks",
    "fixed_x_constant",
    "mixed_default_unit",
    "mixed_fit_pointwise",
    "pointwise_log_likelihood",
    "sem_fit_pointwise",
    "sem_pointwise_loglik",
    "sem_total_loglik",
]

UNITS = ("cluster", "observation")
LOG_2PI = float(np.log(2.0 * np.pi))
#: Name of the variable of the ``log_likelihood`` group (one variable: ArviZ sums the group).
LOGLIK_VAR = "loglik"


@dataclass(frozen=True)
class Pointwise:
    """Pointwise log-likelihood values.

    Attributes
    ----------
    values
        Shape (n_draws, n_units).
    unit
        ``"cluster"`` or ``"observation"``.
    labels
        Coordinate of each unit (cluster ids or row numbers).
    factorizes
        Whether the values sum to the log-likelihood of all the data (False for the leave-one-out
        conditionals of dependent rows).
    """

    values: np.ndarray
    unit: str
    labels: np.ndarray
    factorizes: bool


# --------------------------------------------------------------------------------------------- helpers
def safe_cholesky(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower Cholesky factors of a batch of matrices and which of them are positive definite.

    Parameters
    ----------
    cov
        Shape (..., k, k).

    Returns
    -------
    tuple of numpy.ndarray
        The factors (the identity where a matrix is not positive definite) and a boolean array of the
        batch shape.
    """
    cov = np.asarray(cov, dtype=float)
    batch, k = cov.shape[:-2], cov.shape[-1]
    try:
        return np.linalg.cholesky(cov), np.ones(batch, dtype=bool)
    except np.linalg.LinAlgError:
        flat = cov.reshape(-1, k, k)
        chol = np.empty_like(flat)
        ok = np.ones(flat.shape[0], dtype=bool)
        for i, matrix in enumerate(flat):
            try:
                chol[i] = np.linalg.cholesky(matrix)
            except np.linalg.LinAlgError:
                chol[i], ok[i] = np.eye(k), False
        return chol.reshape(cov.shape), ok.reshape(batch)


def _logdet(chol: np.ndarray) -> np.ndarray:
    return 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)


def _inverse_from_cholesky(chol: np.ndarray) -> np.ndarray:
    k = chol.shape[-1]
    inv_chol = np.linalg.solve(chol, np.broadcast_to(np.eye(k), chol.shape))
    return np.swapaxes(inv_chol, -1, -2) @ inv_chol


def _mvn_logpdf(resid: np.ndarray, chol: np.ndarray) -> np.ndarray:
    """``log N(resid | 0, L L')`` for residuals (S, R, k) and factors (S, k, k): shape (S, R)."""
    k = chol.shape[-1]
    if k == 0:
        return np.zeros(resid.shape[:2])
    inv_chol = np.linalg.solve(chol, np.broadcast_to(np.eye(k), chol.shape))
    z = np.einsum("sab,srb->sra", inv_chol, resid)
    return -0.5 * (k * LOG_2PI + _logdet(chol)[:, None] + np.sum(z**2, axis=-1))


# ------------------------------------------------------------------------------------------------- SEM
def _check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise PymlsemError(f"unknown unit {unit!r}; choose 'cluster' or 'observation'")


def _raw_data(spec: SEM) -> pd.DataFrame:
    data = getattr(spec, "data", None)
    if data is None:
        raise DataError(
            "the model was fitted to summary statistics (sample_cov), so there are no rows to give a "
            "log-likelihood each; fit it to the raw data (data=...) for a pointwise log-likelihood"
        )
    return data


def sem_pointwise_loglik(spec: SEM, rows: np.ndarray, unit: str | None = None) -> Pointwise:
    """Pointwise log-likelihood of a SEM's data for a batch of parameter-table row values.

    Parameters
    ----------
    spec
        The SEM (for ``unit="observation"`` built from raw data).
    rows
        Shape (n_draws, n_rows), see :func:`~pymlsem.results.implied.sem_rows`.
    unit
        ``"cluster"`` (two-level models only; the default there) or ``"observation"``; see the module
        docstring for what each means.

    Returns
    -------
    Pointwise
        The values are the density of all the model's observed variables (exogenous covariates
        included; lavaan's fixed.x constant is not subtracted, see :func:`fixed_x_constant`).

    Raises
    ------
    ModelSpecificationError
        ``unit="cluster"`` for a single-level model.
    DataError
        ``unit="observation"`` for a model fitted to summary statistics.
    """
    two_level = spec.partable.n_levels == 2
    unit = unit or ("cluster" if two_level else "observation")
    _check_unit(unit)
    rows = np.atleast_2d(rows)
    incomplete = getattr(spec, "missing", False)
    if not two_level:
        if unit == "cluster":
            raise ModelSpecificationError(
                "unit='cluster' needs a two-level model (level: blocks and cluster=); this model has one "
                "level, so its rows are the units: use unit='observation'"
            )
        data = _raw_data(spec)
        values = missing_unit_loglik(spec, rows) if incomplete else _single_level_rows(spec, rows, data)
        return Pointwise(values, unit, np.arange(len(data)), True)
    stats = spec.stats
    if unit == "cluster":
        values = missing_unit_loglik(spec, rows) if incomplete else _two_level_clusters(spec, rows)
        return Pointwise(values, unit, np.asarray(stats.cluster_ids), True)
    if incomplete:
        raise DataError(
            "unit='observation' of a two-level model with missing values (the leave-one-row-out "
            "conditionals of incomplete clusters) is not available; use unit='cluster'"
        )
    data = _raw_data(spec)
    values = _two_level_rows(spec, rows, data)
    return Pointwise(values, unit, np.arange(len(data)), False)


def _single_level_rows(spec: SEM, rows: np.ndarray, data: pd.DataFrame) -> np.ndarray:
    variables = list(spec.stats.variables)
    y = as_input(data[variables].to_numpy(dtype=float))
    out = np.empty((rows.shape[0], y.shape[0]))
    for part in draw_chunks(rows.shape[0], y.size + len(variables) ** 2):
        moments = implied_moments(spec, rows[part])
        mean, cov = moments.mean[1], moments.cov[1]
        if not spec.meanstructure:  # the rows' mean is the sample mean
            mean = np.broadcast_to(np.asarray(spec.stats.mean, dtype=float), mean.shape)
        out[part] = row_loglik_draws(as_input(mean), as_input(cov), y)
    return out


#: the statistics of :func:`pymlsem.engine.kernels.pointwise.cluster_loglik_draws`, in order, and their dtypes
_CLUSTER_STATS = {
    "within_index": "int64",
    "cluster_group": "int64",
    "cluster_sizes": "float64",
    "cluster_means": "float64",
    "cluster_within_scatter": "float64",
    "group_sizes": "float64",
}


def _cluster_arrays(stats: object) -> list[np.ndarray]:
    return [as_input(getattr(stats, name), dtype) for name, dtype in _CLUSTER_STATS.items()]


def compile_model_checks() -> str:
    """Compile (or load from the disk cache) the numba-compiled densities of the post-fit checks.

    Run by ``python -m pymlsem warmup`` beside the engine families, so that the first LOO, PPP or fit
    measure of a model does not compile them (~35 s on a 2-core machine with empty caches, ~20 s of it the
    two-level saturated model of incomplete data).

    Returns
    -------
    str
        A line saying how long it took.
    """
    start = time.perf_counter()
    compile_densities()
    # numba compiles at the first call: one call each on a tiny example (two variables, one cluster)
    mean, cov = np.zeros((1, 2)), np.eye(2)[None]
    cluster = SimpleNamespace(
        within_index=[0, 1],
        cluster_group=[0],
        cluster_sizes=[2.0],
        cluster_means=np.zeros((1, 2)),
        cluster_within_scatter=np.eye(2)[None],
        group_sizes=[2.0],
    )
    cluster_loglik_draws(mean, cov, mean, cov, *_cluster_arrays(cluster))
    row_loglik_draws(mean, cov, np.zeros((1, 2)))
    compile_objective()  # the two-level saturated model of incomplete data
    return f"pymlsem: post-fit model checks ready ({time.perf_counter() - start:.1f} s)"


def _two_level_clusters(spec: SEM, rows: np.ndarray) -> np.ndarray:
    """:func:`pymlsem.build.loglik.two_level_cluster_loglik` for every draw: shape (S, clusters)."""
    stats: TwoLevelStats = spec.stats
    arrays = _cluster_arrays(stats)
    p, n_clusters = len(stats.variables), np.size(stats.cluster_sizes)
    out = np.empty((rows.shape[0], n_clusters))
    for part in draw_chunks(rows.shape[0], n_clusters * p + np.size(stats.group_sizes) * p * p):
        moments = implied_moments(spec, rows[part])
        levels = (moments.mean[1], moments.cov[1], moments.mean[2], moments.cov[2])
        out[part] = cluster_loglik_draws(*(as_input(m) for m in levels), *arrays)
    return out


def _two_level_rows(spec: SEM, rows: np.ndarray, data: pd.DataFrame) -> np.ndarray:
    """``log p(y_ij | y_kj, k != i)`` for every row (see the module docstring).

    Given the other ``m = n_j - 1`` rows of the cluster, their mean over the within-varying variables and
    the cluster's between-only values ``o`` are sufficient; ``o`` has covariance ``Sigma_B + Sigma_W / m``
    (Sigma_W zero for between-only variables) and covariance ``Sigma_B[w, :]`` with the row, whose own
    covariance is ``Sigma_W[w, w] + Sigma_B[w, w]``. The row's conditional normal follows.
    """
    stats: TwoLevelStats = spec.stats
    variables = list(stats.variables)
    y = data[variables].to_numpy(dtype=float)
    codes = pd.factorize(data[spec.cluster], sort=True)[0]
    index = np.asarray(stats.within_index, dtype=np.int64)
    between_only = np.array([variables.index(v) for v in stats.between_only], dtype=np.int64)
    sizes = np.asarray(stats.cluster_sizes, dtype=float)[codes]
    cluster_means = np.asarray(stats.cluster_means, dtype=float)[codes]
    p = len(variables)
    out = np.empty((rows.shape[0], y.shape[0]))
    for part in draw_chunks(rows.shape[0], y.size + np.unique(sizes).size * p * p):
        moments = implied_moments(spec, rows[part])
        mu_w, sigma_w, mu_b, sigma_b = moments.mean[1], moments.cov[1], moments.mean[2], moments.cov[2]
        mu = mu_w + mu_b
        var_y = (sigma_w + sigma_b)[:, index][:, :, index]
        for n in np.unique(sizes):
            members = np.flatnonzero(sizes == n)
            m = n - 1.0
            other = cluster_means[members].copy()
            if m > 0:
                keep = np.arange(p)
                other[:, index] = (n * cluster_means[members][:, index] - y[members][:, index]) / m
                var_o = sigma_b + sigma_w / m
            else:  # a cluster of one row: only its between-only values are known
                keep = between_only
                var_o = sigma_b[:, keep][:, :, keep]
            other = other[:, keep]
            resid = y[members][None, :, index] - mu[:, None, index]
            cond_cov, ok = var_y, np.ones(var_y.shape[0], dtype=bool)
            if keep.size:
                cov_yo = sigma_b[:, index][:, :, keep]
                chol_o, ok = safe_cholesky(var_o)
                gain = np.swapaxes(_inverse_from_cholesky(chol_o) @ np.swapaxes(cov_yo, -1, -2), -1, -2)
                cond_cov = var_y - gain @ np.swapaxes(cov_yo, -1, -2)
                resid = resid - np.einsum("sab,srb->sra", gain, other[None] - mu[:, None, keep])
            chol, ok_c = safe_cholesky(cond_cov)
            values = _mvn_logpdf(resid, chol)
            out[part, members] = np.where((ok & ok_c)[:, None], values, -np.inf)
    return out


def sem_total_loglik(spec: SEM, rows: np.ndarray) -> np.ndarray:
    """Log-likelihood of all the data from the sufficient statistics, for a batch of row values.

    Equal to ``spec.log_likelihood(estimates, fixed_x=False)`` at the same values (the density of
    :func:`pymlsem.workflow.loglik.model_loglik`); works for models fitted to summary statistics too.

    Parameters
    ----------
    spec
        The SEM.
    rows
        Shape (n_draws, n_rows).

    Returns
    -------
    numpy.ndarray
        Shape (n_draws,); ``-inf`` where a covariance is not positive definite.
    """
    rows = np.atleast_2d(rows)
    if getattr(spec, "missing", False):
        return missing_total_loglik(spec, rows)
    batch = batch_of(spec.stats)
    p = len(spec.stats.variables)
    groups = np.size(getattr(spec.stats, "group_sizes", 1))
    out = np.empty(rows.shape[0])
    for part in draw_chunks(rows.shape[0], 4 * (groups + 2) * p * p):
        moments = implied_moments(spec, rows[part])
        out[part] = model_loglik(moments, batch, meanstructure=spec.meanstructure)
    return out


def fixed_x_constant(spec: SEM) -> float:
    """The constant lavaan subtracts from the log-likelihood under ``fixed.x`` (0 without covariates).

    ``lavaan logl = sem_total_loglik - fixed_x_constant``; see :mod:`pymlsem.build.loglik`.
    """
    exo = spec.partable.exogenous
    if spec.partable.n_levels == 2:
        return two_level_fixed_x_loglik(spec.stats, exo.get(1, []), exo.get(2, []))
    return single_level_fixed_x_loglik(spec.stats, exo.get(1, []))


# ------------------------------------------------------------------------------------------ both kinds
def pointwise_log_likelihood(fit: Fitted, unit: str | None = None) -> Pointwise:
    """Pointwise log-likelihood of every posterior draw of a fitted SEM or mixed model.

    Parameters
    ----------
    fit
        A :class:`~pymlsem.results.fit.SEMFit` or :class:`~pymlsem.mlm.fit.MixedFit`.
    unit
        ``"cluster"`` or ``"observation"`` (see the module docstring); the default is the fit's
        (``fit.default_unit()``: ``"cluster"`` for two-level SEMs and Gaussian models with one grouping
        factor or nested ones).

    Returns
    -------
    Pointwise
        ``values`` of shape (chain * draw, n_units), draws stacked chain by chain.
    """
    unit = unit or fit.default_unit()
    _check_unit(unit)
    return fit.pointwise_log_likelihood(unit)


def sem_fit_pointwise(fit: Any, unit: str) -> Pointwise:
    """Pointwise log-likelihood of a fitted SEM (see the module docstring).

    Parameters
    ----------
    fit
        A :class:`~pymlsem.results.fit.SEMFit`.
    unit
        ``"cluster"`` (two-level models) or ``"observation"``.
    """
    spec = fit.model
    if not spec.has_closed_form:  # random slopes, ordered indicators: given the latent variables
        if unit == "cluster" and spec.cluster is None:
            raise ModelSpecificationError("unit='cluster' needs a two-level model: use unit='observation'")
        labels = np.asarray(spec.raw.cluster_ids) if unit == "cluster" else np.arange(spec.nobs)
        return Pointwise(latent_pointwise_values(fit, unit), unit, labels, True)
    rows = row_value_draws(fit)
    return sem_pointwise_loglik(spec, rows, unit)


def add_log_likelihood(fit: Fitted, unit: str | None = None) -> xr.DataTree:
    """Add (or replace) the ``log_likelihood`` group of ``fit.idata``.

    The group holds one variable, ``loglik``, with dims ``(chain, draw, cluster)`` or
    ``(chain, draw, observation)``; its attribute ``unit`` says which, and ``factorizes`` whether the
    values sum to the log-likelihood of all the data. Nothing is recomputed when the group already holds
    the requested unit.

    Parameters
    ----------
    fit
        A fitted SEM or mixed model.
    unit
        ``"cluster"`` or ``"observation"``; the default is the fit's (``fit.default_unit()``).

    Returns
    -------
    xarray.DataTree
        ``fit.idata``, with the group added.
    """
    unit = unit or fit.default_unit()
    existing = fit.idata.get("log_likelihood") if hasattr(fit.idata, "get") else None
    if existing is not None and LOGLIK_VAR in existing and existing[LOGLIK_VAR].attrs.get("unit") == unit:
        return fit.idata
    point = pointwise_log_likelihood(fit, unit)
    posterior = fit.idata.posterior
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    array = xr.DataArray(
        point.values.reshape(chains, draws, -1),
        dims=(*SAMPLE_DIMS, unit),
        coords={
            **{dim: posterior.coords[dim].values for dim in SAMPLE_DIMS if dim in posterior.coords},
            unit: point.labels,
        },
        attrs={"unit": unit, "factorizes": int(point.factorizes)},
    )
    fit.idata["log_likelihood"] = xr.Dataset({LOGLIK_VAR: array})
    return fit.idata


def mixed_default_unit(spec: BuiltMixedModel) -> str:
    """``"cluster"`` for a Gaussian model with one or nested grouping factors, else ``"observation"``."""
    return "cluster" if is_gaussian(spec) and clustered(spec) else "observation"


def mixed_fit_pointwise(fit: Any, unit: str) -> Pointwise:
    """Pointwise log-likelihood of a fitted mixed model (see the module docstring).

    Parameters
    ----------
    fit
        A :class:`~pymlsem.mlm.fit.MixedFit`.
    unit
        ``"cluster"`` (Gaussian models with one grouping factor or nested ones: clusters of the top factor)
        or ``"observation"``.

    Returns
    -------
    Pointwise

    Raises
    ------
    ModelSpecificationError
        ``unit="cluster"`` for a non-Gaussian model or a model with crossed grouping factors.
    """
    spec = fit.spec
    design = spec.design
    if not design.blocks:  # a regression: each row's density, independent given the parameters
        if unit == "cluster":
            raise ModelSpecificationError("the model has no grouping factor: use unit='observation'")
        return Pointwise(glmm_observation_loglik(fit), unit, np.arange(design.nobs), True)
    if not is_gaussian(spec):
        if unit == "cluster":
            raise ModelSpecificationError(
                f"leave-one-cluster-out needs the random effects integrated out, which has no closed form "
                f"for family={spec.family!r}; use unit='observation' (given the sampled random effects)"
            )
        return Pointwise(glmm_observation_loglik(fit), unit, np.arange(design.nobs), True)
    beta, sigma, covs = gaussian_theta_draws(spec, fit.idata.posterior)
    if unit == "cluster":
        values = gaussian_cluster_loglik(spec, beta, sigma, covs)
        top = grouping_hierarchy(design).blocks[0][0]  # a block of the top grouping factor
        return Pointwise(values, unit, np.asarray(design.blocks[top].levels), True)
    values = gaussian_observation_loglik(spec, beta, sigma, covs)
    return Pointwise(values, unit, np.arange(design.nobs), False)
