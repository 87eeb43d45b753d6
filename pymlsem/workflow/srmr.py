"""Standardized root mean square residual (SRMR) per posterior draw, as lavaan defines it.

The residuals compare the model-implied moments at a draw with the saturated model's moments
(:mod:`pymlsem.workflow.saturated`: the sample moments single-level, the ML within and between moments
two-level).

Single level, lavaan's ``srmr`` (``srmr_bentler``): the residual covariances divided by the sample standard
deviations, ``(s_ij - sigma_ij) / sqrt(s_ii s_jj)``, and the residual means divided by the sample standard
deviations, ``(m_i - mu_i) / sqrt(s_ii)``; the SRMR is the root mean square of the ``p (p + 1) / 2``
covariance residuals (diagonal included) and, with a mean structure, the ``p`` mean residuals.
``srmr_nomean`` leaves the means out (lavaan's ``srmr_bentler_nomean``; lavaan's ``srmr`` of a model fitted
without a mean structure).

Two levels, lavaan's ``srmr_within`` and ``srmr_between`` (``lav_fit_srmr_twolevel``): per level, the
saturated and the implied covariance matrices are each turned into correlation matrices, and the SRMR is
the root mean square of their differences over the ``p (p + 1) / 2`` elements of the level (the diagonal
differences are 0); means are not used. ``srmr`` is their sum. A draw whose implied between-level variance of
some variable is 0 gives NaN (lavaan too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from pymlsem.data.stats import TwoLevelStats
from pymlsem.results.implied import row_value_draws
from pymlsem.results.posterior import summarize_draws
from pymlsem.workflow.loglik import implied_moments
from pymlsem.workflow.replicate import variable_positions
from pymlsem.workflow.saturated import SaturatedMoments, sample_statistics

if TYPE_CHECKING:
    from pymlsem.api import SEM
    from pymlsem.results.fit import SEMFit

__all__ = ["srmr", "srmr_draws", "srmr_from_rows"]


def _vech_rms(residuals: np.ndarray) -> np.ndarray:
    """Root mean square of the lower triangle (diagonal included) of a batch of square matrices."""
    rows, cols = np.tril_indices(residuals.shape[-1])
    return np.sqrt(np.mean(residuals[..., rows, cols] ** 2, axis=-1))


def _correlation(cov: np.ndarray) -> np.ndarray:
    """``cov2cor`` of a batch; NaN where a variance is not positive."""
    sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(sd > 0, 1.0 / sd, np.nan)
    return cov * scale[..., :, None] * scale[..., None, :]


def _bentler(
    sample_mean: np.ndarray | None, sample_cov: np.ndarray, mean: np.ndarray, cov: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Single-level SRMR with and without the mean residuals, per draw."""
    scale = 1.0 / np.sqrt(np.diag(sample_cov))
    residual = (sample_cov - cov) * scale[:, None] * scale[None, :]
    nomean = _vech_rms(residual)
    if sample_mean is None:
        return nomean, nomean
    p = scale.size
    mean_residual = (sample_mean - mean) * scale
    squares = nomean**2 * (p * (p + 1) / 2) + np.sum(mean_residual**2, axis=-1)
    return np.sqrt(squares / (p * (p + 1) / 2 + p)), nomean


def srmr_from_rows(spec: SEM, rows: np.ndarray, h1: SaturatedMoments | None = None) -> pd.DataFrame:
    """SRMR of a model at given parameter values, one row per draw.

    Parameters
    ----------
    spec
        The model and its data.
    rows
        Shape (S, n_rows): parameter-table row values per draw (or one vector), e.g. lavaan's estimates.
    h1
        The saturated moments (computed when not given).

    Returns
    -------
    pandas.DataFrame
        Two-level: columns ``srmr``, ``srmr_within``, ``srmr_between``. Single-level: ``srmr`` (with the
        mean residuals when the model has a mean structure) and ``srmr_nomean``.
    """
    h1 = sample_statistics(spec) if h1 is None else h1  # incomplete data: EM's moments where computed
    spec.check_closed_form("SRMR")
    moments = implied_moments(spec, rows)
    variables = tuple(moments.variables)
    two_level = isinstance(spec.stats, TwoLevelStats)
    levels = (1, 2) if two_level else (1,)
    where = {level: variable_positions(variables, list(h1.cov[level].columns)) for level in levels}
    implied = {level: moments.cov[level][:, at[:, None], at[None, :]] for level, at in where.items()}
    values: dict[str, np.ndarray] = {}
    if two_level:
        for level, name in ((1, "srmr_within"), (2, "srmr_between")):
            residual = _correlation(h1.cov[level].to_numpy()) - _correlation(implied[level])
            values[name] = _vech_rms(residual)
        values = {"srmr": values["srmr_within"] + values["srmr_between"], **values}
    else:
        sample_mean = h1.mean[1].to_numpy() if spec.meanstructure else None
        values["srmr"], values["srmr_nomean"] = _bentler(
            sample_mean, h1.cov[1].to_numpy(), moments.mean[1][:, where[1]], implied[1]
        )
    return pd.DataFrame(values)


def srmr_draws(fit: SEMFit) -> pd.DataFrame:
    """SRMR of a fitted SEM in every posterior draw.

    Parameters
    ----------
    fit
        A fitted SEM.

    Returns
    -------
    pandas.DataFrame
        Indexed by (chain, draw); columns as :func:`srmr_from_rows`.
    """
    parameters = fit.idata.posterior["parameters"]
    table = srmr_from_rows(fit.model, row_value_draws(fit))
    index = pd.MultiIndex.from_product(
        [parameters["chain"].values, parameters["draw"].values], names=["chain", "draw"]
    )
    table.index = index
    return table


def srmr(fit: SEMFit, prob: float = 0.95) -> pd.DataFrame:
    """Posterior summary of the SRMR of a fitted SEM (two-level: total, within and between).

    Parameters
    ----------
    fit
        A fitted SEM.
    prob
        Probability of the central posterior interval.

    Returns
    -------
    pandas.DataFrame
        One row per measure (``srmr``, ``srmr_within``, ``srmr_between``; single-level ``srmr``,
        ``srmr_nomean``), columns ``mean, sd, q<lo>, q<hi>, r_hat, ess_bulk, ess_tail``.
    """
    draws = srmr_draws(fit)
    chains = draws.index.get_level_values("chain").unique()
    values = draws.to_numpy().reshape(len(chains), -1, draws.shape[1])
    array = xr.DataArray(
        values,
        dims=("chain", "draw", "measure"),
        coords={"chain": chains, "measure": list(draws.columns)},
    )
    return summarize_draws(array, prob)
