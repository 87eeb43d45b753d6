"""The posterior of the saturated (unrestricted) model: the Bayesian counterpart of lavaan's ``sampstat``.

:func:`pymlsem.workflow.saturated.sample_statistics` gives the saturated model's ML moments per level. Here
the same model (every variance and covariance of each level's observed variables free, means free, the
default priors), built as statements straight into a parameter table as lavaan's
``lav_partable_unrestricted`` does (no syntax written and parsed again), is sampled, so each level's
covariance matrix and means come with posterior intervals: what the seed note's two-step approach starts
from, with its uncertainty.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pymlsem.exceptions import DataError
from pymlsem.results.implied import implied_moment_draws
from pymlsem.results.posterior import interval_bounds, quantile_name
from pymlsem.syntax import ParsedModel, Statement

if TYPE_CHECKING:
    from pymlsem.api import SEM
    from pymlsem.results.fit import SEMFit

__all__ = ["SaturatedPosterior", "saturated_model", "saturated_posterior"]


def saturated_model(spec: SEM) -> ParsedModel:
    """The saturated model over each level's observed variables of ``spec``, as the parser's statements.

    Parameters
    ----------
    spec
        A model (its levels and observed variables per level are used).

    Returns
    -------
    ParsedModel
        ``y1 ~~ y2`` for every pair and ``y ~~ y`` for every variable, per level (means are free by
        ``sem()``'s defaults); :class:`~pymlsem.api.SEM` builds its parameter table from it.
    """
    observed = spec.partable.observed
    two_level = spec.partable.n_levels == 2
    statements = []
    for level in sorted(observed):
        names = list(observed[level])
        pairs = [*combinations(names, 2), *((name, name) for name in names)]
        statements += [Statement(a, "~~", b, level if two_level else None) for a, b in pairs]
    return ParsedModel(statements, levels=tuple(sorted(observed)) if two_level else ())


@dataclass
class SaturatedPosterior:
    """Posterior summaries of the saturated model's moments per level.

    Attributes
    ----------
    fit
        The fitted saturated model (a :class:`~pymlsem.results.fit.SEMFit`).
    mean, cov
        Level -> posterior means of the level's means (Series) and covariance matrix (DataFrame).
    table
        One row per moment: ``level, lhs, rhs`` (``rhs`` empty for a mean), ``mean, sd, q<lo>, q<hi>``.
    """

    fit: Any
    mean: dict[int, pd.Series]
    cov: dict[int, pd.DataFrame]
    table: pd.DataFrame


def _summaries(values: np.ndarray, prob: float) -> dict[str, np.ndarray]:
    lo, hi = interval_bounds(prob)
    return {
        "mean": values.mean(axis=0),
        "sd": values.std(axis=0, ddof=1),
        quantile_name(lo): np.quantile(values, lo, axis=0),
        quantile_name(hi): np.quantile(values, hi, axis=0),
    }


def saturated_posterior(model: SEM | SEMFit, *, prob: float = 0.95, **fit_kwargs: Any) -> SaturatedPosterior:
    """Sample the saturated model of a model's data and summarise each level's moments.

    Parameters
    ----------
    model
        A :class:`~pymlsem.api.SEM` or a fit of one, built from raw data.
    prob
        Probability of the central posterior intervals.
    **fit_kwargs
        Passed to :meth:`~pymlsem.api.SEM.fit` (``draws``, ``tune``, ``chains``, ``sampler``, ``random_seed``,
        ...).

    Returns
    -------
    SaturatedPosterior

    Raises
    ------
    DataError
        The model was built from summary statistics (a single-level saturated posterior from ``sample_cov``
        is not implemented).
    """
    spec = getattr(model, "model", model)
    if getattr(spec, "data", None) is None:
        raise DataError(
            "the saturated posterior needs the raw data; this model was built from summary statistics"
        )
    fit_kwargs.setdefault("progressbar", False)
    # the saturated model of the same kind (the model's own class), with lavaan's sem() defaults
    saturated = type(spec)(saturated_model(spec), spec.data, cluster=spec.cluster)
    fit = saturated.fit(**fit_kwargs)
    moments = implied_moment_draws(fit)
    means: dict[int, pd.Series] = {}
    covs: dict[int, pd.DataFrame] = {}
    rows: list[dict[str, Any]] = []
    for level, level_moments in moments.items():
        names = list(level_moments.observed)
        mean_stats = _summaries(level_moments.observed_mean, prob)
        cov_stats = _summaries(level_moments.observed_cov, prob)
        means[level] = pd.Series(mean_stats["mean"], index=names, name="mean")
        covs[level] = pd.DataFrame(cov_stats["mean"], index=names, columns=names)
        for i, name in enumerate(names):
            rows.append({"level": level, "lhs": name, "rhs": "", **{k: v[i] for k, v in mean_stats.items()}})
        for i, j in zip(*np.triu_indices(len(names)), strict=True):
            stats = {k: v[i, j] for k, v in cov_stats.items()}
            rows.append({"level": level, "lhs": names[i], "rhs": names[j], **stats})
    return SaturatedPosterior(fit, means, covs, pd.DataFrame(rows))
