"""Posterior draws of a fitted SEM's parameter-table rows and model-implied moments, in numpy.

Everything downstream of a fit that needs the model's moments per posterior draw (standardized solutions,
R-squared, intraclass correlations, fit indices, posterior predictive checks) starts here. The RAM algebra
is the one of :mod:`pymlsem.build.ram`, written for a batch of draws with numpy instead of PyTensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pymlsem.build.ram import LevelLayout

if TYPE_CHECKING:
    from pymlsem.results.fit import SEMFit

__all__ = ["LevelMoments", "implied_moment_draws", "ram_moment_draws", "row_value_draws"]


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
    from pymlsem.workflow.pointwise import sem_rows

    parameters = fit.idata.posterior["parameters"]
    return sem_rows(fit.model, parameters.stack(sample=("chain", "draw")).transpose("sample", "parameter"))


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
    total_effects
        Shape (n_draws, k, k): ``(I - A)^-1``.
    a, s
        The RAM matrices per draw (directed paths ``A[target, source]`` and (co)variances ``S``).
    """

    variables: tuple[str, ...]
    observed: tuple[str, ...]
    mean: np.ndarray
    cov: np.ndarray
    total_effects: np.ndarray
    a: np.ndarray
    s: np.ndarray

    @property
    def observed_mean(self) -> np.ndarray:
        """(n_draws, p) implied means of the observed variables."""
        return self.mean[:, : len(self.observed)]

    @property
    def observed_cov(self) -> np.ndarray:
        """(n_draws, p, p) implied covariances of the observed variables."""
        p = len(self.observed)
        return self.cov[:, :p, :p]


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
    n, k = rows.shape[0], len(layout.variables)
    a = np.zeros((n, k * k))
    s = np.zeros((n, k * k))
    m = np.zeros((n, k))
    a[:, layout.a_index] = rows[:, layout.a_rows]
    s[:, layout.s_index] = rows[:, layout.s_rows]
    m[:, layout.m_index] = rows[:, layout.m_rows]
    a, s = a.reshape(n, k, k), s.reshape(n, k, k)
    total = np.linalg.inv(np.eye(k)[None, :, :] - a)
    mean = np.einsum("nij,nj->ni", total, m)
    cov = total @ s @ np.swapaxes(total, -1, -2)
    return LevelMoments(layout.variables, layout.observed, mean, cov, total, a, s)


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
