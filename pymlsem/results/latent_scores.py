"""Posterior draws of a fitted SEM's latent variables (factor scores, cluster effects).

A model fitted with the integrated (marginal) likelihood has no latent variables in its posterior. Given one
posterior draw of the parameters, the latent variables are normal given the data, so a draw of them is made
for every posterior draw from that conditional distribution; together these are draws from their joint
posterior.

Single level
------------
For a row ``y`` with the joint moments of the level (``o`` observed, ``l`` latent)::

    eta | y ~ N(mu_l + C_lo C_oo^-1 (y - mu_o), C_ll - C_lo C_oo^-1 C_ol)

whose mean is the regression (Thomson) factor score.

Two levels
----------
Row ``i`` of cluster ``j`` is ``y_ij = u_ij + b_j``: ``u_ij`` the within part (within-level moments, absent
for between-only variables) and ``b_j`` the between part (between-level moments, absent for within-only
variables). The deviations ``y_ij - ybar_j = u_ij - ubar_j`` are independent of ``(ubar_j, b_j)`` and of the
between latent variables, so the between-level variables ``z_j`` (latent variables and between parts of the
observed variables) depend on the cluster's rows only through ``d_j = ybar_j`` (for a between-only variable,
its cluster value), with::

    E d = mu_W + mu_B,   Cov(d) = Sigma_B + Sigma_W / n_j,   Cov(z, d) = Cov_B(z, b)

(the within and between moments embedded in the vector of all observed variables). So ``z_j | data`` is the
normal conditional of ``[z_j, d_j]``, which depends on the cluster only through its mean and size: the gain
and covariance are computed once per draw and distinct cluster size.

Given a draw of ``b_j``, the within part of a row is known, ``u_ij = y_ij - b_j``, and the within latent
variables of the row depend on the data only through it: ``eta_ij | u_ij`` is the single-level conditional
with the within-level moments. Drawing ``b_j`` and then ``eta_ij`` gives draws from the joint posterior.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from pymlsem.build.latent import LEVEL_VALUES
from pymlsem.exceptions import DataError, ModelSpecificationError
from pymlsem.results.implied import LevelMoments, ram_moment_draws, row_value_draws
from pymlsem.workflow.predictive import spread_positions

if TYPE_CHECKING:
    from pymlsem.data.stats import TwoLevelStats
    from pymlsem.results.fit import SEMFit

__all__ = ["ConditionalMoments", "between_conditional", "latent_scores", "single_level_conditional"]


@dataclass(frozen=True)
class ConditionalMoments:
    """Conditional normal moments of some variables of a level, per draw and unit.

    Attributes
    ----------
    names
        The variables, in the order of the last axes.
    mean
        Shape (n_draws, n_units, q): conditional means per draw and unit (row or cluster).
    cov
        Shape (n_draws, n_groups, q, q): conditional covariances per draw and group of units.
    group
        Shape (n_units,): the group (index into ``cov``'s second axis) of each unit.
    """

    names: tuple[str, ...]
    mean: np.ndarray
    cov: np.ndarray
    group: np.ndarray


def _posterior_index(fit: SEMFit, n_draws: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chain and draw coordinates kept and their positions in the stacked (chain, draw) draws."""
    parameters = fit.idata.posterior["parameters"]
    n_chain, n_draw = int(parameters.sizes["chain"]), int(parameters.sizes["draw"])
    chains = np.asarray(parameters["chain"].to_numpy())
    draws = np.asarray(parameters["draw"].to_numpy())
    keep = np.arange(n_draw)
    if n_draws is not None:
        if int(n_draws) < 1:
            raise ModelSpecificationError(f"n_draws must be a positive integer, got {n_draws!r}")
        keep = spread_positions(n_draw, -(-int(n_draws) // n_chain))
    stacked = (np.arange(n_chain)[:, None] * n_draw + keep[None, :]).ravel()
    return chains, draws[keep], stacked


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """A square root ``R`` (``R R' = cov``) of a batch of symmetric PSD matrices, tolerating singular ones.

    Eigenvalues below the rounding level of their matrix (``q * eps * largest``, the threshold numpy's
    ``matrix_rank`` uses) are zero: a variable known exactly given the data (a between-only variable's
    between part) has a rounding-level conditional variance, whose square root would add ~1e-8 of noise.
    """
    values, vectors = np.linalg.eigh(cov)
    largest = np.abs(values).max(axis=-1, keepdims=True)
    noise = values.shape[-1] * np.finfo(float).eps * largest
    return vectors * np.sqrt(np.where(values > noise, values, 0.0))[..., None, :]


def _gain(cov_dd: np.ndarray, cov_dz: np.ndarray) -> np.ndarray:
    """``Cov(z, d) Cov(d)^-1`` for batches: (..., p, p) and (..., p, q) -> (..., q, p)."""
    return np.swapaxes(np.linalg.solve(cov_dd, cov_dz), -1, -2)


def _latent_positions(moments: LevelMoments) -> list[int]:
    return list(range(len(moments.observed), len(moments.variables)))


def _level_gain(moments: LevelMoments) -> np.ndarray:
    """``C_lo C_oo^-1`` of a level: shape (n_draws, n_latent, n_observed)."""
    p = len(moments.observed)
    return _gain(moments.cov[:, :p, :p], moments.cov[:, :p, p:])


def single_level_conditional(moments: LevelMoments, values: np.ndarray) -> ConditionalMoments:
    """Conditional moments of a level's latent variables given its observed values, row by row.

    Parameters
    ----------
    moments
        Joint moments of the level (observed variables first), per draw.
    values
        Shape (n_rows, p): observed values, in the order of ``moments.observed``.

    Returns
    -------
    ConditionalMoments
        One covariance group (the covariance is the same for every row).
    """
    p = len(moments.observed)
    lat = _latent_positions(moments)
    gain = _level_gain(moments)
    offset = moments.mean[:, lat] - np.einsum("sqp,sp->sq", gain, moments.mean[:, :p])
    mean = offset[:, None, :] + np.einsum("sqp,np->snq", gain, values)
    cov = moments.cov[:, lat][:, :, lat] - gain @ moments.cov[:, :p, lat]
    names = tuple(moments.variables[i] for i in lat)
    return ConditionalMoments(names, mean, cov[:, None], np.zeros(values.shape[0], dtype=int))


def between_conditional(
    within: LevelMoments, between: LevelMoments, stats: TwoLevelStats, targets: list[str]
) -> ConditionalMoments:
    """Conditional moments of between-level variables given each cluster's data.

    Parameters
    ----------
    within, between
        Joint moments of the two levels, per draw.
    stats
        The data's :class:`~pymlsem.data.stats.TwoLevelStats`.
    targets
        Names of between-level variables (latent variables, or observed ones for their between parts).

    Returns
    -------
    ConditionalMoments
        Units are the clusters (``stats.cluster_ids``), covariance groups the distinct cluster sizes.
    """
    variables = list(stats.variables)
    p = len(variables)
    n_s = within.mean.shape[0]
    iw = [variables.index(v) for v in within.observed]
    ib = [variables.index(v) for v in between.observed]
    pw, pb = len(within.observed), len(between.observed)
    tz = [between.variables.index(v) for v in targets]

    mean_d = np.zeros((n_s, p))
    mean_d[:, iw] += within.mean[:, :pw]
    mean_d[:, ib] += between.mean[:, :pb]
    sigma_w = np.zeros((n_s, p, p))
    sigma_w[:, *np.ix_(iw, iw)] = within.cov[:, :pw, :pw]
    sigma_b = np.zeros((n_s, p, p))
    sigma_b[:, *np.ix_(ib, ib)] = between.cov[:, :pb, :pb]
    cov_dz = np.zeros((n_s, p, len(tz)))
    cov_dz[:, ib, :] = between.cov[:, :pb][:, :, tz]
    cov_zz = between.cov[:, tz][:, :, tz]

    sizes = np.asarray(stats.group_sizes, dtype=float)
    cov_dd = sigma_b[:, None] + sigma_w[:, None] / sizes[None, :, None, None]  # (S, G, p, p)
    gain = _gain(cov_dd, np.broadcast_to(cov_dz[:, None], (n_s, sizes.size, p, len(tz))))  # (S, G, q, p)
    cov = cov_zz[:, None] - gain @ cov_dz[:, None]
    group = np.asarray(stats.cluster_group, dtype=int)
    offset = between.mean[:, tz][:, None, :] - np.einsum("sgqp,sp->sgq", gain, mean_d)  # (S, G, q)
    mean = np.empty((n_s, group.size, len(tz)))
    for g in range(sizes.size):
        where = np.flatnonzero(group == g)
        mean[:, where] = offset[:, g, None, :] + np.einsum(
            "sqp,jp->sjq", gain[:, g], np.asarray(stats.cluster_means)[where]
        )
    return ConditionalMoments(tuple(targets), mean, cov, group)


def _draw(conditional: ConditionalMoments, rng: np.random.Generator) -> np.ndarray:
    """One draw per posterior draw and unit from conditional normals: shape (n_draws, n_units, q)."""
    root = _psd_sqrt(conditional.cov)  # (S, G, q, q)
    noise = rng.standard_normal(conditional.mean.shape)
    out = conditional.mean.copy()
    for g in range(root.shape[1]):
        where = np.flatnonzero(conditional.group == g)
        out[:, where] += np.einsum("sab,sjb->sja", root[:, g], noise[:, where])
    return out


def latent_scores(
    fit: SEMFit,
    level: int = 1,
    *,
    seed: int | np.random.Generator | None = 0,
    n_draws: int | None = None,
    include_observed: bool = False,
) -> xr.DataArray:
    """Posterior draws of the latent variables of one level of a fitted SEM.

    For every posterior draw of the parameters, the latent variables are drawn from their conditional normal
    distribution given the data and that draw (see the module's docstring for the algebra). A model built
    with ``method="latent"`` sampled them already: its draws are returned as they are.

    Parameters
    ----------
    fit
        A SEM fitted to raw data with the integrated likelihood.
    level
        1: the within-level (or only level's) latent variables, one vector per data row; 2: the between-level
        latent variables of a two-level model, one vector per cluster.
    seed
        Seed or generator of the draws.
    n_draws
        Keep about this many posterior draws (evenly spaced within each chain); all by default.
    include_observed
        Level 2 only: also return the between parts of the between-level observed variables (the cluster
        random intercepts; a between-only variable's part is its observed cluster value).

    Returns
    -------
    xarray.DataArray
        Dims ``(chain, draw, row, latent)`` for level 1 (rows labelled by the data's index) and
        ``(chain, draw, cluster, latent)`` for level 2 (clusters labelled by their id).

    Raises
    ------
    ModelSpecificationError
        For a level the model does not have, a level without latent variables, or a bad ``n_draws``.
    DataError
        When the model was given summary statistics instead of data.
    """
    model = fit.model
    layouts = model.built.layouts
    if isinstance(level, bool) or level not in (1, 2):
        raise ModelSpecificationError(
            f"level must be 1 (within or single level) or 2 (between), got {level!r}"
        )
    if level not in layouts:
        raise ModelSpecificationError("level=2 needs a two-level model; this model has a single level")
    data = getattr(model, "data", None)
    if data is None:
        raise DataError(
            "latent scores need the raw data; this model was given summary statistics (sample_cov)"
        )
    if include_observed and level != 2:
        raise ModelSpecificationError("include_observed applies to level=2 (the between parts) only")
    layout = layouts[level]
    latents = [v for v in layout.variables if v not in layout.observed]
    if not latents and not include_observed:
        raise ModelSpecificationError(f"level {level} of the model has no latent variables")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    chains, draws, stacked = _posterior_index(fit, n_draws)
    if getattr(model, "method", "marginal") == "latent":
        targets = latents + (list(layout.observed) if include_observed else [])
        return _sampled_scores(fit, level, targets, chains, draws)
    if model.missing:
        raise DataError(
            "latent scores of the marginal model need complete rows; with missing values fit the model "
            "with method='latent', whose posterior holds the latent variables"
        )
    rows = row_value_draws(fit)[stacked]
    moments = {lvl: ram_moment_draws(lay, rows) for lvl, lay in layouts.items()}
    shape = (chains.size, draws.size)

    if len(layouts) == 1:
        values = data[list(layout.observed)].to_numpy(dtype=float)
        scores = _draw(single_level_conditional(moments[1], values), rng)
        return _as_array(scores, shape, chains, draws, "row", data.index.to_numpy(), latents)

    within, between = moments[1], moments[2]
    stats = model.stats
    both = [v for v in between.observed if v in within.observed]
    if level == 2:
        targets = latents + (list(between.observed) if include_observed else [])
        scores = _draw(between_conditional(within, between, stats, targets), rng)
        return _as_array(scores, shape, chains, draws, "cluster", np.asarray(stats.cluster_ids), targets)

    # Level 1: draw the between parts of the both-level variables, then the within latent variables per row.
    values = data[list(within.observed)].to_numpy(dtype=float)
    conditional = single_level_conditional(within, values)  # mean uses y_ij; subtract K b_j below
    position = [list(within.observed).index(v) for v in both]
    cluster_of_row = pd.Index(stats.cluster_ids).get_indexer(data[model.cluster])
    mean = conditional.mean
    if both:
        parts = _draw(between_conditional(within, between, stats, both), rng)  # (S, J, len(both))
        shift = np.einsum("sqb,sjb->sjq", _level_gain(within)[:, :, position], parts)  # (S, J, q)
        mean = mean - shift[:, cluster_of_row]
    scores = _draw(ConditionalMoments(conditional.names, mean, conditional.cov, conditional.group), rng)
    return _as_array(scores, shape, chains, draws, "row", data.index.to_numpy(), latents)


def _sampled_scores(
    fit: SEMFit, level: int, targets: list[str], chains: np.ndarray, draws: np.ndarray
) -> xr.DataArray:
    """The latent variables a latent-builder fit sampled (``within``, ``between`` or ``latent``)."""

    two_level = len(fit.model.built.layouts) == 2
    name, unit = LEVEL_VALUES[level] if two_level else ("latent", "obs")
    values = fit.idata.posterior[name].sel(chain=chains, draw=draws)
    known = list(values[f"{name}_variable"].to_numpy())
    targets = [v for v in targets if v in known]  # between-only observed values are data, not sampled
    out = values.sel({f"{name}_variable": targets}).rename({f"{name}_variable": "latent"})
    if unit == "obs":
        out = out.rename({"obs": "row"}).assign_coords(row=fit.model.data.index.to_numpy())
    return out.transpose("chain", "draw", "row" if unit == "obs" else "cluster", "latent").rename(
        "latent_scores"
    )


def _as_array(
    scores: np.ndarray,
    shape: tuple[int, int],
    chains: np.ndarray,
    draws: np.ndarray,
    unit: str,
    units: np.ndarray,
    names: list[str],
) -> xr.DataArray:
    return xr.DataArray(
        scores.reshape(*shape, *scores.shape[1:]),
        dims=("chain", "draw", unit, "latent"),
        coords={"chain": chains, "draw": draws, unit: units, "latent": list(names)},
        name="latent_scores",
    )
