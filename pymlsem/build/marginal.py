"""The marginal (integrated-likelihood) PyMC model of a single- or two-level SEM.

Latent variables at both levels are integrated out: the likelihood is the normal likelihood of the
data's sufficient statistics given the model-implied moments (see :mod:`pymlsem.build.loglik`). The
sufficient statistics, the sample moments of the exogenous covariates and the prior hyperparameters
are ``pm.Data``, so one compiled model serves new data and new priors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from pymlsem.build.loglik import single_level_loglik, stats_as_data, two_level_loglik
from pymlsem.build.missing import single_level_missing_loglik, two_level_missing_loglik
from pymlsem.build.node_traces import without_node_traces
from pymlsem.build.parameters import FreeParameter
from pymlsem.build.ram import LevelLayout, place_moments
from pymlsem.build.table_values import EXO_DATA, add_parameters
from pymlsem.data.missing_stats import MissingSingleLevelStats, MissingTwoLevelStats
from pymlsem.exceptions import ModelSpecificationError
from pymlsem.partable import ParTable

STATS_PREFIX = "stats__"
__all__ = [
    "EXO_DATA",
    "MarginalModel",
    "build_marginal_model",
    "global_moments",
    "loglik_from_rows",
    "stats_data_values",
]


@dataclass
class MarginalModel:
    """A built PyMC model and what is needed to read its posterior.

    Attributes
    ----------
    model
        The PyMC model.
    free
        The free parameters, in the order of the ``parameters`` deterministic.
    row_param
        For each table row, the index into ``free`` of its parameter, or -1 for a fixed row.
    defined
        Names of the defined (``:=``) parameters, in the order of the ``defined`` deterministic.
    layouts
        RAM layout of each level.
    """

    model: pm.Model
    free: list[FreeParameter]
    row_param: np.ndarray
    defined: list[str]
    layouts: dict[int, LevelLayout]


@without_node_traces
def build_marginal_model(
    partable: ParTable,
    stats,
    exo_values: np.ndarray,
    *,
    priors: Mapping[str, str] | None = None,
    meanstructure: bool = True,
    likelihood_stats=None,
    default_priors: str = "scaled",
) -> MarginalModel:
    """Build the PyMC model of ``partable`` for data summarised by ``stats``.

    Parameters
    ----------
    partable
        The parameter table.
    stats
        :class:`~pymlsem.data.stats.SingleLevelStats` or :class:`~pymlsem.data.stats.TwoLevelStats`.
    exo_values
        Values of the ``exo`` rows of the table (sample moments of exogenous covariates), in table order
        of those rows.
    priors
        User priors by class or parameter name.
    meanstructure
        Single-level only: whether the data's means enter the likelihood.
    likelihood_stats
        Statistics of incomplete data (:mod:`pymlsem.data.missing_stats`) when some values are missing:
        the likelihood is then the exact full-information one (:mod:`pymlsem.build.missing`), while
        ``stats`` (of completed data) only gives start values.
    default_priors
        ``"scaled"`` (the default priors in the data's units) or ``"blavaan"``; see :mod:`pymlsem.priors`.
    """
    _refuse_latent_only_features(partable)
    layouts = {
        level: LevelLayout.from_table(partable.table, level, partable.observed[level], partable.latent[level])
        for level in range(1, partable.n_levels + 1)
    }
    with pm.Model() as model:
        stats_data = stats_as_data(likelihood_stats or stats, prefix=STATS_PREFIX)
        values = add_parameters(partable, stats, exo_values, priors=priors, default_priors=default_priors)
        loglik = loglik_from_rows(layouts, values.rows, stats_data, meanstructure=meanstructure)
        pm.Potential("loglik", loglik)
    return MarginalModel(model, values.free, values.row_param, values.defined, layouts)


def loglik_from_rows(
    layouts: dict[int, LevelLayout], rows: pt.TensorVariable, stats, *, meanstructure: bool = True
) -> pt.TensorVariable:
    """Log-likelihood of the data summarised by ``stats`` given the values of all table rows.

    Parameters
    ----------
    layouts
        RAM layout per level (from :class:`LevelLayout`).
    rows
        Vector with the value of every row of the parameter table (lavaan's scale).
    stats
        Sufficient statistics (numpy arrays or ``pm.Data``).
    meanstructure
        Single-level only: whether the means enter the likelihood.
    """
    if len(layouts) == 2:
        mu_w, sigma_w = global_moments(layouts[1], rows, stats.variables)
        mu_b, sigma_b = global_moments(layouts[2], rows, stats.variables)
        if isinstance(stats, MissingTwoLevelStats):
            return two_level_missing_loglik(mu_w, sigma_w, mu_b, sigma_b, stats)
        return two_level_loglik(mu_w, sigma_w, mu_b, sigma_b, stats)
    mu, sigma = global_moments(layouts[1], rows, stats.variables)
    if isinstance(stats, MissingSingleLevelStats):
        return single_level_missing_loglik(mu, sigma, stats)
    return single_level_loglik(mu if meanstructure else None, sigma, stats)


def stats_data_values(stats) -> dict[str, np.ndarray]:
    """The ``pm.Data`` values of a statistics object, by data-variable name (for swapping data)."""
    return {STATS_PREFIX + name: np.asarray(value) for name, value in stats.arrays().items()}


def global_moments(layout: LevelLayout, rows: pt.TensorVariable, variables) -> tuple:
    """Implied mean and covariance of one level, placed in the order of ``variables`` (zeros elsewhere)."""
    mean, cov = layout.implied(rows)
    variables = list(variables)
    where = np.array([variables.index(v) for v in layout.observed], dtype=np.int64)
    return place_moments(mean, cov, where, len(variables))


def _refuse_latent_only_features(partable: ParTable) -> None:
    """Random slopes and ordered indicators have no closed-form likelihood here: say which builder fits."""
    slopes, ordered = partable.random_slopes, partable.ordered_variables
    if slopes:
        raise ModelSpecificationError(
            f"random slope(s) {', '.join(slopes)} need the explicit latent-variable builder: "
            "fit with method='latent'"
        )
    if ordered:
        raise ModelSpecificationError(
            f"ordered indicator(s) {', '.join(ordered)} need the explicit latent-variable builder: "
            "fit with method='latent'"
        )
