r"""Full-information normal log-likelihoods of incomplete data (lavaan's ``missing = "ml"``), in PyTensor.

The functions take the same model-implied moments as their complete-data counterparts in
:mod:`pymlsem.build.loglik` and the statistics of :mod:`pymlsem.data.missing_stats`, and return the exact
joint normal log-density of all observed values (no fixed.x constant, as the complete-data functions). The
statistics' arrays may be ``pm.Data`` containers (``stats_as_data`` works on them). A covariance that is not
positive definite gives ``-inf``, never NaN or an exception, and the gradient stays finite.

Variable-length blocks are batched by padding: for a 0/1 mask ``m`` of observed variables,
``pad(A) = (m m') * A + diag(1 - m)`` is ``A[o, o]`` with identity rows and columns added, so its Cholesky
factor, log-determinant and inverse are those of ``A[o, o]`` padded with the identity (log-determinant
unchanged). All patterns, and all clusters, are then factored in one batched Cholesky each.

Single level
------------
With pattern k observing ``o_k`` in ``N_k`` rows of mean ``ybar_k`` and scatter ``S_k``::

    log L = -1/2 sum_k [N_k (|o_k| log 2pi + log|Sigma_kk|) + tr(Sigma_kk^-1 (S_k + N_k d_k d_k'))]

with ``Sigma_kk = Sigma[o_k, o_k]`` and ``d_k = ybar_k - mu[o_k]``.

Two levels
----------
Notation: W the within-varying variables (all but between-only), Z the between-only ones, B the
between-varying ones (all but within-only), ``mu = mu_w + mu_b`` and ``S = Sigma_B[B, B]``, which is never
inverted (it may be singular, e.g. with a between residual variance fixed at zero).

Cluster j has rows i with observed within-varying values ``y_i[o_i]`` (``o_i`` within W; row i has pattern
k(i)) and observed between-only values ``z_j[o_z]``. With ``b_j ~ N(0, S)`` the cluster's between vector
(over B) and independent within errors ``e_i ~ N(0, Sigma_W[W, W])``::

    y_i[o_i] = mu[o_i] + A_i b_j + e_i[o_i],        z_j[o_z] = mu[o_z] + b_j[o_z],

where ``A_i`` picks the components of ``b_j`` for ``o_i`` (zero for within-only variables). The between-only
values have no error term, so the usual Woodbury identity over all of a cluster's values (which inverts the
error covariance) does not apply; instead ``b_j`` is integrated out in two steps.

1. Given ``b_j``, the residuals ``r_i = y_i[o_i] - mu[o_i]`` have density ``N(r; A b, D)`` with
   ``D = blockdiag_i(Sigma_W[o_i, o_i])``. Let ``P_k`` be ``Sigma_W[o_k, o_k]^-1`` embedded in p x p,
   ``G_j = A' D^-1 A = (sum_k n_jk P_k)[B, B]`` and ``v_j = A' D^-1 r = (sum_k P_k (T_jk - n_jk mu))[B]``,
   with ``n_jk`` and ``T_jk`` the number and the sum of the rows of pattern k in cluster j (a linear
   combination over patterns). ``G_j`` is positive definite on ``c_j``, the variables of B and W observed in
   some row of the cluster, and zero outside it (``v_j`` too). Completing the square,
   ``(r - A b)' D^-1 (r - A b) = r' D^-1 r - v' G^-1 v + (b - bhat)' G (b - bhat)`` with
   ``bhat = G^-1 v`` on ``c_j``, so::

       N(r; A b, D) = (2 pi)^{-(n_j - |c_j|)/2} |D|^{-1/2} |G_j|^{-1/2} exp(-1/2 [r' D^-1 r - v' G^-1 v])
                      * N(bhat; b[c_j], G_j^-1)

   where ``n_j`` counts the observed values of the rows.
2. Integrating the last factor against the joint density of ``(b[c_j], z_j[o_z])`` gives the density of
   ``w_j = (bhat, z_j[o_z] - mu[o_z])`` under ``N(0, C_j)``, ``C_j = S[c_j + o_z, c_j + o_z] +
   blockdiag(G_j^-1, 0)``: a measurement of ``b[c_j]`` with error covariance ``G_j^-1`` and an exact one of
   ``b[o_z]``. With ``G_j = L L'`` (Cholesky) and ``T = blockdiag(L', I)``, ``M_j = T C_j T' =
   [[I + L' S_cc L, L' S_cz], [S_zc L, S_zz]]``, ``|M_j| = |G_j| |C_j|`` and
   ``w' C^-1 w = t' M^-1 t`` with ``t = T w = (u, z_j[o_z] - mu[o_z])``, ``u = L^-1 v`` (and
   ``v' G^-1 v = u'u``). So neither ``S`` nor ``G_j`` is inverted, only factored.

Hence, exactly, with ``n_values`` the number of all observed values::

    log L = -1/2 [ n_values log 2pi + sum_k N_k log|Sigma_W[o_k, o_k]|
                   + sum_k tr(P_k (S_k + N_k d_k d_k'))                  (= sum_i r_i' P_k(i) r_i)
                   + sum_j (log|M_j| - u_j' u_j + t_j' M_j^-1 t_j) ]

with ``S_k`` and ``d_k`` the scatter and mean deviation of all rows of pattern k. The covariance ``V_j`` of
all observed values of cluster j has ``|V_j| = |D| |G_j| |C_j|`` and is positive definite exactly when
``C_j`` (equivalently ``M_j``) is, so ``-inf`` is returned when ``Sigma_W[W, W]`` or any ``M_j`` is not
positive definite, as :func:`~pymlsem.build.loglik.two_level_loglik` does for complete data (for which this
function gives the same value). ``L`` and ``M_j`` are padded with identity blocks to a common p_B x p_B
size (``M_j``'s padding is ``diag(1 - [o_z])`` after masking ``S`` to ``c_j + o_z``), so the cost is one
batched Cholesky over the K patterns and two over the J clusters.
"""

from __future__ import annotations

import pytensor.tensor as pt

from pymlsem.build.loglik import (
    LOG_2PI,
    TensorLike,
    guarded_cholesky,
    identity,
    index_array,
    or_minus_inf,
    trace_solve,
)
from pymlsem.data.missing_stats import MissingSingleLevelStats, MissingTwoLevelStats
from pymlsem.exceptions import DataError

__all__ = [
    "single_level_missing_loglik",
    "single_level_missing_row_loglik",
    "two_level_missing_cluster_loglik",
    "two_level_missing_loglik",
]


def _outer(mask: TensorLike) -> pt.TensorVariable:
    mask = pt.as_tensor_variable(mask)
    return mask[..., :, None] * mask[..., None, :]


def _diag(vector: TensorLike) -> pt.TensorVariable:
    """Diagonal matrices from the last axis of ``vector`` (batched)."""
    vector = pt.as_tensor_variable(vector)
    return vector[..., :, None] * identity(vector)


def _inverse(chol: pt.TensorVariable) -> pt.TensorVariable:
    """Inverse of ``L L'`` from its lower Cholesky factor, batched over leading axes."""
    eye = pt.broadcast_to(identity(chol), chol.shape)
    half = pt.linalg.solve_triangular(chol, eye, lower=True, b_ndim=2)  # L^-1
    return pt.matmul(pt.swapaxes(half, -1, -2), half)


def _pattern_terms(
    mu: TensorLike, sigma: TensorLike, stats: MissingSingleLevelStats | MissingTwoLevelStats
) -> tuple[pt.TensorVariable, pt.TensorVariable, pt.TensorVariable]:
    """Per-pattern Cholesky factors, ``N_k (|o_k| log 2pi + log|Sigma_kk|) + sum_i r_i' Sigma_kk^-1 r_i``
    (shape (K,)) and positive-definiteness flags (K,)."""
    mask = pt.as_tensor_variable(stats.pattern_observed)
    counts = pt.as_tensor_variable(stats.pattern_counts)
    sigma = pt.as_tensor_variable(sigma)
    chol, logdet, ok = guarded_cholesky(_outer(mask) * sigma[None, :, :] + _diag(1.0 - mask))
    dev = (pt.as_tensor_variable(stats.pattern_means) - pt.as_tensor_variable(mu)[None, :]) * mask
    scatter = pt.as_tensor_variable(stats.pattern_scatter) + counts[:, None, None] * (
        dev[:, :, None] * dev[:, None, :]
    )
    terms = counts * (pt.sum(mask, axis=-1) * LOG_2PI + logdet) + trace_solve(chol, scatter)
    return chol, terms, ok


def _single_level_terms(
    mu: TensorLike | None, sigma: TensorLike, stats: MissingSingleLevelStats
) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """``-2`` times each pattern's log-likelihood (K,) and whether each is defined (K,)."""
    if mu is None:
        raise DataError("incomplete data need a mean structure: fit the model with meanstructure=True")
    sigma = pt.as_tensor_variable(sigma)
    _, terms, ok = _pattern_terms(mu, sigma, stats)
    return terms, ok & guarded_cholesky(sigma)[2]


def single_level_missing_loglik(
    mu: TensorLike | None, sigma: TensorLike, stats: MissingSingleLevelStats
) -> pt.TensorVariable:
    """Normal log-likelihood of rows with missing values, from their per-pattern statistics.

    The exact log-density of all observed values (see the module docstring); equal to
    :func:`~pymlsem.build.loglik.single_level_loglik` for complete data.

    Parameters
    ----------
    mu
        Implied mean, shape (p,). Incomplete data need a mean structure: None raises :class:`DataError`.
    sigma
        Implied covariance, shape (p, p), in ``stats.variables`` order.
    stats
        Pattern statistics; the arrays of :meth:`MissingSingleLevelStats.arrays` may be ``pm.Data``.

    Returns
    -------
    TensorVariable
        Scalar log-likelihood; ``-inf`` when ``sigma`` is not positive definite.

    Raises
    ------
    DataError
        When ``mu`` is None.
    """
    terms, ok = _single_level_terms(mu, sigma, stats)
    return or_minus_inf(-0.5 * pt.sum(terms), pt.all(ok))


def single_level_missing_row_loglik(
    mu: TensorLike | None, sigma: TensorLike, stats: MissingSingleLevelStats
) -> pt.TensorVariable:
    """Log-likelihood of each pattern's rows: of each row, for the statistics of one row per pattern.

    The terms whose sum is :func:`single_level_missing_loglik`; with the statistics of
    ``single_level_missing_stats(..., by_row=True)`` (every row its own pattern) they are the rows'
    log-densities.

    Returns
    -------
    TensorVariable
        Shape (K,); ``-inf`` where ``sigma`` or the pattern's block of it is not positive definite.
    """
    terms, ok = _single_level_terms(mu, sigma, stats)
    return or_minus_inf(-0.5 * terms, ok)


def two_level_missing_loglik(
    mu_w: TensorLike,
    sigma_w: TensorLike,
    mu_b: TensorLike,
    sigma_b: TensorLike,
    stats: MissingTwoLevelStats,
) -> pt.TensorVariable:
    """Exact normal log-likelihood of two-level data with missing values.

    The density is derived in the module docstring; the cost is one batched Cholesky over the K
    missingness patterns and two over the J clusters (p_B x p_B each). Equal to
    :func:`~pymlsem.build.loglik.two_level_loglik` for complete data.

    Parameters
    ----------
    mu_w, mu_b
        Within- and between-level implied means, shape (p,) each, in ``stats.variables`` order (the mean
        of each variable is ``mu_w + mu_b``).
    sigma_w
        Within covariance, shape (p, p); only its within-varying block (``stats.within_index``) is read.
    sigma_b
        Between covariance, shape (p, p); only its between-varying block (``stats.between_index``) is read
        (the within-only rows and columns are zero by convention). It may be singular.
    stats
        Statistics of the incomplete data; the arrays of :meth:`MissingTwoLevelStats.arrays` may be
        ``pm.Data`` containers (the index arrays may be symbolic too: the compiled engine's inputs).

    Returns
    -------
    TensorVariable
        Scalar log-likelihood; ``-inf`` when ``sigma_w`` (over the within-varying variables) or the
        covariance of some cluster's observed values is not positive definite.
    """
    pattern_terms, cluster_terms, ok_all, ok_clusters = _two_level_terms(mu_w, sigma_w, mu_b, sigma_b, stats)
    value = -0.5 * (pt.sum(pattern_terms) + pt.sum(cluster_terms))
    return or_minus_inf(value, ok_all & pt.all(ok_clusters))


def two_level_missing_cluster_loglik(
    mu_w: TensorLike,
    sigma_w: TensorLike,
    mu_b: TensorLike,
    sigma_b: TensorLike,
    stats: MissingTwoLevelStats,
) -> pt.TensorVariable:
    """Log-likelihood of each cluster's observed values, for statistics whose patterns are by cluster.

    The terms whose sum is :func:`two_level_missing_loglik`, grouped by cluster: with the statistics of
    ``two_level_missing_stats(..., by_cluster=True)`` every pattern's rows lie in one cluster, so its
    within term belongs to that cluster (the pattern's column of ``cluster_pattern_counts``).

    Returns
    -------
    TensorVariable
        Shape (J,); ``-inf`` where ``sigma_w``, a pattern's block of it or the covariance of the
        cluster's observed values is not positive definite.
    """
    pattern_terms, cluster_terms, ok_all, ok_clusters = _two_level_terms(mu_w, sigma_w, mu_b, sigma_b, stats)
    members = pt.gt(pt.as_tensor_variable(stats.cluster_pattern_counts), 0.0)  # (J, K)
    value = -0.5 * (pt.dot(members, pattern_terms) + cluster_terms)
    return or_minus_inf(value, ok_all & ok_clusters)


def _two_level_terms(
    mu_w: TensorLike,
    sigma_w: TensorLike,
    mu_b: TensorLike,
    sigma_b: TensorLike,
    stats: MissingTwoLevelStats,
) -> tuple[pt.TensorVariable, pt.TensorVariable, pt.TensorVariable, pt.TensorVariable]:
    """``-2`` times the log-likelihood in per-pattern (K,) and per-cluster (J,) terms, and PD flags.

    Returns the pattern terms, the cluster terms, whether ``Sigma_W`` and every pattern's block are
    positive definite (scalar), and whether each cluster's ``G_j`` and ``M_j`` are (J,).
    """
    within = index_array(stats.within_index)
    between = index_array(stats.between_index)
    nvar = pt.as_tensor_variable(stats.pattern_means).shape[-1]
    is_within = pt.set_subtensor(pt.zeros(nvar)[within], 1.0)
    mu = pt.as_tensor_variable(mu_w) + pt.as_tensor_variable(mu_b)
    sigma_w = pt.as_tensor_variable(sigma_w)
    sigma_b = pt.as_tensor_variable(sigma_b)
    ok_w = guarded_cholesky(sigma_w[within][:, within])[2]

    # Within part: every row against its pattern's block of Sigma_W
    chol_k, pattern_terms, ok_k = _pattern_terms(mu, sigma_w, stats)
    precision = _inverse(chol_k) * _outer(stats.pattern_observed)  # P_k, zero outside o_k

    # Between part: G_j and v_j as linear combinations over patterns
    counts = pt.as_tensor_variable(stats.cluster_pattern_counts)  # (J, K)
    sums = pt.as_tensor_variable(stats.cluster_pattern_sums)  # (J, K, p)
    n_clusters, n_patterns = counts.shape[0], counts.shape[1]
    gram = pt.dot(counts, precision.reshape((n_patterns, nvar * nvar))).reshape((n_clusters, nvar, nvar))
    # sum_k P_k T_jk, with P_k symmetric: (J, K p) @ (K p, p)
    weighted = pt.dot(sums.reshape((n_clusters, n_patterns * nvar)), precision.reshape((-1, nvar)))
    v = (weighted - pt.dot(gram, mu))[:, between]
    gram = gram[:, between][:, :, between]

    observed = pt.as_tensor_variable(stats.cluster_observed)[:, between]  # c_j and o_z, (J, p_B)
    seen = observed * is_within[between]  # c_j
    only_between = observed * (1.0 - is_within[between])  # o_z
    chol_g, _, ok_g = guarded_cholesky(gram + _diag(1.0 - seen))  # G_j = L L', identity outside c_j
    u = pt.linalg.solve_triangular(chol_g, v, lower=True, b_ndim=1)  # L^-1 v, zero outside c_j
    z_dev = (pt.as_tensor_variable(stats.cluster_values)[:, between] - mu[between][None, :]) * only_between
    masked_b = _outer(observed) * sigma_b[between][:, between][None, :, :]
    scaled = pt.matmul(pt.matmul(pt.swapaxes(chol_g, -1, -2), masked_b), chol_g)
    chol_m, logdet_m, ok_m = guarded_cholesky(scaled + _diag(1.0 - only_between))  # M_j
    z = pt.linalg.solve_triangular(chol_m, u + z_dev, lower=True, b_ndim=1)
    # the between-only values' share of n_values log 2pi, then the cluster's quadratic form
    cluster_terms = (
        pt.sum(only_between, axis=-1) * LOG_2PI + logdet_m - pt.sum(u**2, axis=-1) + pt.sum(z**2, axis=-1)
    )
    return pattern_terms, cluster_terms, ok_w & pt.all(ok_k), ok_g & ok_m
