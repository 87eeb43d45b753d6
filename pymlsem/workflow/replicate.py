"""Replicated data sets from a model's implied moments, drawn directly as sufficient statistics.

A posterior predictive check needs, for each posterior draw, a data set of the same size and structure as
the observed one, drawn from the model at that draw. The likelihood and the saturated model only read the
data's sufficient statistics (:mod:`pymlsem.data.stats`), so the replicates are drawn as those statistics,
from their exact sampling distribution: the cost does not grow with the number of rows.

Structure kept from the observed data: the number of rows, the cluster sizes (two levels), and the values of
the exogenous covariates, which are held at their observed values (lavaan's ``fixed.x``, as blavaan's
``postdata`` does): the other variables are drawn from their conditional distribution given them. Write the
rows of one level as ``y = a + B x + e`` with ``e ~ N(0, Psi)`` (the conditional mean and covariance of the
level's implied moments). Then, with ``X_c`` the covariates' deviations from their cluster means (single
level: from the grand mean), ``U = X_c' E`` is matrix normal with row covariance ``X_c' X_c`` and column
covariance ``Psi``, the residual scatter is ``U' (X_c' X_c)^-1 U`` plus an independent Wishart matrix on
``N - J - k`` degrees of freedom (single level ``N - 1 - k``), and the cluster means of ``e`` are
independent ``N(0, Psi / n_j)``. Two levels, each cluster's between-level values are drawn given its
observed between-level covariates and added to the cluster means of the variables shared by both levels.

A covariate that is exogenous at one level but also has a part at the other level is not supported (blavaan
refuses the same case).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pymlsem.data.stats import SingleLevelStats, TwoLevelStats, group_moments
from pymlsem.exceptions import DataError, ModelSpecificationError
from pymlsem.workflow.loglik import ImpliedMoments, SingleLevelBatch, TwoLevelBatch

if TYPE_CHECKING:
    from pymlsem.api import SEM

__all__ = [
    "check_covariate_levels",
    "conditional_regression",
    "psd_factor",
    "simulate_replicates",
    "variable_positions",
]


def simulate_replicates(
    spec: SEM, moments: ImpliedMoments, rng: np.random.Generator
) -> SingleLevelBatch | TwoLevelBatch:
    """Draw one replicated data set per draw of implied moments, as sufficient statistics.

    Parameters
    ----------
    spec
        The model (its statistics give the data's size, cluster sizes and covariate values).
    moments
        Implied moments of S draws (:func:`pymlsem.workflow.loglik.implied_moments`).
    rng
        Random generator.

    Returns
    -------
    SingleLevelBatch or TwoLevelBatch
        S data sets: data set s is drawn from draw s.

    Raises
    ------
    ModelSpecificationError
        When an exogenous covariate also has a part at the other level.
    DataError
        When the covariates' within (or sample) scatter is singular.
    """
    stats = spec.stats
    exo = spec.partable.exogenous
    if isinstance(stats, TwoLevelStats):
        return _two_level(stats, exo.get(1, []), exo.get(2, []), moments, rng)
    return _single_level(stats, exo.get(1, []), moments, rng)


def variable_positions(variables: tuple[str, ...], names: list[str]) -> np.ndarray:
    """Positions of ``names`` in ``variables``."""
    return np.array([variables.index(v) for v in names], dtype=np.int64)


def psd_factor(cov: np.ndarray) -> np.ndarray:
    """A batch of factors ``F`` with ``F F' = cov`` (negative eigenvalues of rounding size set to 0)."""
    values, vectors = np.linalg.eigh((cov + np.swapaxes(cov, -1, -2)) / 2)
    return vectors * np.sqrt(np.clip(values, 0.0, None))[..., None, :]


def conditional_regression(mean: np.ndarray, cov: np.ndarray, y: np.ndarray, x: np.ndarray) -> tuple:
    """Intercept ``a``, slopes ``B`` and residual covariance ``Psi`` of ``y`` given ``x``, per draw."""
    if x.size == 0:
        return mean[:, y], np.zeros((mean.shape[0], y.size, 0)), cov[:, y[:, None], y[None, :]]
    sxx = cov[:, x[:, None], x[None, :]]
    sxy = cov[:, x[:, None], y[None, :]]
    slopes = np.swapaxes(np.linalg.solve(sxx, sxy), -1, -2)  # (S, q, k)
    intercept = mean[:, y] - np.einsum("sqk,sk->sq", slopes, mean[:, x])
    resid = cov[:, y[:, None], y[None, :]] - slopes @ sxy
    return intercept, slopes, resid


def _wishart_identity(dof: int, dim: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` draws of a Wishart(dof, I_dim) matrix (Bartlett's decomposition when dof >= dim)."""
    if dof <= 0 or dim == 0:
        return np.zeros((size, dim, dim))
    if dof < dim:
        z = rng.standard_normal((size, dof, dim))
        return np.swapaxes(z, -1, -2) @ z
    lower = np.tril(rng.standard_normal((size, dim, dim)), k=-1)
    chi = np.sqrt(rng.chisquare(dof - np.arange(dim), size=(size, dim)))
    lower[:, np.arange(dim), np.arange(dim)] = chi
    return lower @ np.swapaxes(lower, -1, -2)


def _scatter(
    slopes: np.ndarray,
    resid_factor: np.ndarray,
    x_scatter: np.ndarray,
    dof: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Centered scatter of ``(x, y)`` rows (x first) with ``y = a + B x + e``, x's scatter fixed.

    Parameters
    ----------
    slopes
        (S, q, k) ``B``.
    resid_factor
        (S, q, q) a factor ``L`` with ``L L' = Psi``.
    x_scatter
        (k, k) the covariates' observed centered scatter.
    dof
        Degrees of freedom of the residual scatter before the covariates are projected out.
    rng
        Random generator.
    """
    size, q, k = slopes.shape
    out = np.zeros((size, k + q, k + q))
    out[:, :k, :k] = x_scatter
    if k == 0:
        out[:, k:, k:] = (
            resid_factor @ _wishart_identity(dof, q, size, rng) @ np.swapaxes(resid_factor, -1, -2)
        )
        return out
    try:
        x_factor = np.linalg.cholesky(x_scatter)
    except np.linalg.LinAlgError:
        raise DataError(
            "the exogenous covariates' scatter is singular (a covariate without variation within "
            "clusters?): replicated data cannot be drawn with the covariates held fixed"
        ) from None
    g = rng.standard_normal((size, k, q))
    u = x_factor @ g @ np.swapaxes(resid_factor, -1, -2)  # X_c' E, (S, k, q)
    inner = np.swapaxes(g, -1, -2) @ g + _wishart_identity(dof - k, q, size, rng)
    bu = slopes @ u
    yx = slopes @ x_scatter + np.swapaxes(u, -1, -2)
    out[:, k:, :k] = yx
    out[:, :k, k:] = np.swapaxes(yx, -1, -2)
    out[:, k:, k:] = (
        slopes @ x_scatter @ np.swapaxes(slopes, -1, -2)
        + bu
        + np.swapaxes(bu, -1, -2)
        + resid_factor @ inner @ np.swapaxes(resid_factor, -1, -2)
    )
    return out


def _single_level(
    stats: SingleLevelStats, exo: list[str], moments: ImpliedMoments, rng: np.random.Generator
) -> SingleLevelBatch:
    variables = tuple(stats.variables)
    x = variable_positions(variables, exo)
    y = np.array([k for k in range(len(variables)) if k not in set(x.tolist())], dtype=np.int64)
    nobs, size = int(stats.nobs), moments.size
    mean, cov = moments.mean[1], moments.cov[1]
    intercept, slopes, resid = conditional_regression(mean, cov, y, x)
    factor = psd_factor(resid)
    obs_cov = np.asarray(stats.cov, dtype=float)
    scatter = _scatter(slopes, factor, obs_cov[np.ix_(x, x)] * nobs, nobs - 1, rng)
    order = np.concatenate([x, y])
    out_cov = np.empty((size, len(variables), len(variables)))
    out_cov[:, order[:, None], order[None, :]] = scatter / nobs
    out_mean = None
    if stats.mean is not None:
        x_mean = np.asarray(stats.mean, dtype=float)[x]
        noise = np.einsum("sqr,sr->sq", factor, rng.standard_normal((size, y.size))) / np.sqrt(nobs)
        out_mean = np.empty((size, len(variables)))
        out_mean[:, x] = x_mean
        out_mean[:, y] = intercept + np.einsum("sqk,k->sq", slopes, x_mean) + noise
    return SingleLevelBatch(variables, nobs, out_mean, out_cov)


def _two_level(
    stats: TwoLevelStats,
    exo_within: list[str],
    exo_between: list[str],
    moments: ImpliedMoments,
    rng: np.random.Generator,
) -> TwoLevelBatch:
    variables = tuple(stats.variables)
    check_covariate_levels(stats, exo_within, exo_between)
    p, size = len(variables), moments.size
    within = np.asarray(stats.within_index, dtype=np.int64)
    between = np.array([k for k in range(p) if variables[k] not in stats.within_only], dtype=np.int64)
    x_w, x_b = variable_positions(variables, exo_within), variable_positions(variables, exo_between)
    y_w = np.array([k for k in within if k not in set(x_w.tolist())], dtype=np.int64)
    y_b = np.array([k for k in between if k not in set(x_b.tolist())], dtype=np.int64)
    observed_means = np.asarray(stats.cluster_means, dtype=float)  # (J, p)
    sizes = np.asarray(stats.cluster_sizes, dtype=float)

    # within level: cluster means of the within parts, and the pooled within scatter
    a_w, b_w, psi_w = conditional_regression(moments.mean[1], moments.cov[1], y_w, x_w)
    f_w = psd_factor(psi_w)
    noise = rng.standard_normal((size, sizes.size, y_w.size)) / np.sqrt(sizes)[:, None]
    means = np.zeros((size, sizes.size, p))
    means[:, :, x_w] = observed_means[:, x_w]
    means[:, :, y_w] = (
        a_w[:, None, :]
        + np.einsum("sqk,jk->sjq", b_w, observed_means[:, x_w])
        + np.einsum("sqr,sjr->sjq", f_w, noise)
    )
    local = {int(k): i for i, k in enumerate(within)}
    x_local = np.array([local[int(k)] for k in x_w], dtype=np.int64)
    x_scatter = np.asarray(stats.within_scatter, dtype=float)[np.ix_(x_local, x_local)]
    scatter = _scatter(b_w, f_w, x_scatter, int(stats.nobs) - int(stats.nclusters), rng)
    order = np.array([local[int(k)] for k in np.concatenate([x_w, y_w])], dtype=np.int64)
    within_scatter = np.empty((size, within.size, within.size))
    within_scatter[:, order[:, None], order[None, :]] = scatter

    # between level: each cluster's between values given its observed between-level covariates
    a_b, b_b, psi_b = conditional_regression(moments.mean[2], moments.cov[2], y_b, x_b)
    f_b = psd_factor(psi_b)
    effects = (
        a_b[:, None, :]
        + np.einsum("sqk,jk->sjq", b_b, observed_means[:, x_b])
        + np.einsum("sqr,sjr->sjq", f_b, rng.standard_normal((size, sizes.size, y_b.size)))
    )
    means[:, :, y_b] += effects
    means[:, :, x_b] = observed_means[:, x_b]
    return _group(stats, within_scatter, means)


def check_covariate_levels(stats: TwoLevelStats, exo_within: list[str], exo_between: list[str]) -> None:
    """Refuse exogenous covariates with parts at both levels (replicates hold covariates fixed)."""
    shared = [v for v in exo_within if v not in stats.within_only] + [
        v for v in exo_between if v not in stats.between_only
    ]
    if shared:
        raise ModelSpecificationError(
            f"exogenous covariate(s) {', '.join(sorted(set(shared)))} have parts at both levels: posterior "
            "predictive replicates that hold them fixed are not available (make each covariate "
            "within-only or between-only, e.g. with a cluster-mean-centered copy)"
        )


def _group(stats: TwoLevelStats, within_scatter: np.ndarray, means: np.ndarray) -> TwoLevelBatch:
    """Per-size-group means and scatter of the replicated cluster means."""
    group = np.asarray(stats.cluster_group, dtype=np.int64)
    group_means, group_scatter = group_moments(means, group, len(stats.group_counts))
    return TwoLevelBatch.from_stats(stats, within_scatter, group_means, group_scatter)
