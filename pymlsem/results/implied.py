"""Posterior draws of a fitted SEM's parameter-table rows and model-implied moments.

Everything downstream of a fit that needs the model's moments per posterior draw (standardized solutions,
R-squared, intraclass correlations, fit indices, posterior predictive checks) starts here. The RAM algebra
is the model's own (:mod:`pymlsem.build.ram`), vectorized over draws (:mod:`pymlsem.build.vectorized`); the
layout's index arrays are inputs, so one compiled function serves every model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import pytensor.tensor as pt
import xarray as xr

from pymlsem.build.ram import LevelLayout, implied_moments, ram_matrices
from pymlsem.build.vectorized import batched_function
from pymlsem.results.posterior import stacked_draws

if TYPE_CHECKING:
    from pymlsem.api import SEM
    from pymlsem.results.fit import SEMFit

__all__ = [
    "LevelMoments",
    "draws_rows",
    "implied_moment_draws",
    "ram_moment_draws",
    "row_value_draws",
    "sem_rows",
]


def sem_rows(spec: SEM, free: np.ndarray) -> np.ndarray:
    """Value of every row of the parameter table for a batch of free-parameter vectors.

    Parameters
    ----------
    spec
        The SEM.
    free
        Shape (n_draws, n_free): values of the ``parameters`` deterministic (lavaan's scale).

    Returns
    -------
    numpy.ndarray
        Shape (n_draws, n_rows); fixed rows (including the exogenous covariates' moments) repeat.
    """
    spec.check_closed_form("this quantity (log-likelihood, PPP, SRMR, DIC, standardized solution, ...)")
    free = np.atleast_2d(np.asarray(free, dtype=float))
    fixed = spec.fixed_row_values()
    rows = np.broadcast_to(fixed, (free.shape[0], fixed.size)).copy()
    has_param = spec.built.row_param >= 0
    rows[:, has_param] = free[:, spec.built.row_param[has_param]]
    return rows


def row_value_draws(fit: SEMFit) -> np.ndarray:
    """Value of every row of the parameter table in every posterior draw.

    Parameters
    ----------
    fit
        A fitted SEM.

    Returns
    -------
    numpy.ndarray
        Shape (n_draws, n_rows), draws stacked chain by chain; fixed rows (including the exogenous
        covariates' sample moments) repeat their value. Variances and covariances are on lavaan's scale.
    """
    return draws_rows(fit.model, fit.idata.posterior)


def draws_rows(spec: SEM, draws: xr.Dataset) -> np.ndarray:
    """Value of every row of the parameter table in every draw of a posterior or prior.

    Parameters
    ----------
    spec
        The SEM.
    draws
        Posterior (or prior, or a selection of draws) with the ``parameters`` variable, dims
        ``(chain, draw, parameter)``.

    Returns
    -------
    numpy.ndarray
        Shape (chain * draw, n_rows), draws stacked chain by chain (see :func:`sem_rows`).
    """
    return sem_rows(spec, stacked_draws(draws, "parameters"))


@dataclass(frozen=True)
class LevelMoments:
    """Moments of all variables of one level (observed first, then latent), one entry per draw.

    Attributes
    ----------
    variables
        Names, in the order of the arrays' last axes.
    observed
        The first ``len(observed)`` names: the observed variables of the level.
    mean
        Shape (n_draws, k): implied means (zeros where the model has no mean structure for a variable).
    cov
        Shape (n_draws, k, k): implied covariances.
    """

    variables: tuple[str, ...]
    observed: tuple[str, ...]
    mean: np.ndarray
    cov: np.ndarray

    @property
    def observed_mean(self) -> np.ndarray:
        """(n_draws, p) implied means of the observed variables."""
        return self.mean[:, : len(self.observed)]

    @property
    def observed_cov(self) -> np.ndarray:
        """(n_draws, p, p) implied covariances of the observed variables."""
        p = len(self.observed)
        return self.cov[:, :p, :p]


@cache
def _ram_moments_function() -> Callable[..., list[np.ndarray]]:
    """``f(rows, k, a_rows, a_index, s_rows, s_index, m_rows, m_index) -> [mean, cov]``, batched over rows."""
    rows, size = pt.vector("rows"), pt.lscalar("k")
    index = [pt.lvector(name) for name in ("a_rows", "a_index", "s_rows", "s_index", "m_rows", "m_index")]
    a, s, m = ram_matrices(rows, size, *index)
    mean, cov = implied_moments(a, s, m, size)  # every variable of the level: p = k
    return batched_function([rows, size, *index], [mean, cov], batched=[rows])


def ram_moment_draws(layout: LevelLayout, rows: np.ndarray) -> LevelMoments:
    """Implied moments of all variables of one level for a batch of row-value vectors.

    Parameters
    ----------
    layout
        Where each table row goes in the level's RAM matrices.
    rows
        Shape (n_draws, n_rows), e.g. from :func:`row_value_draws`.

    Returns
    -------
    LevelMoments
    """
    rows = np.atleast_2d(np.asarray(rows, dtype=float))
    index = (layout.a_rows, layout.a_index, layout.s_rows, layout.s_index, layout.m_rows, layout.m_index)
    mean, cov = _ram_moments_function()(rows, len(layout.variables), *index)
    return LevelMoments(layout.variables, layout.observed, mean, cov)


def implied_moment_draws(fit: SEMFit) -> dict[int, LevelMoments]:
    """Implied moments of every level of a fitted SEM, per posterior draw.

    Parameters
    ----------
    fit
        A fitted SEM.

    Returns
    -------
    dict
        Level (1 = within or the only level, 2 = between) -> :class:`LevelMoments`.
    """
    rows = row_value_draws(fit)
    return {level: ram_moment_draws(layout, rows) for level, layout in fit.model.built.layouts.items()}
