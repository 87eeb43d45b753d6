"""Posterior predictive p-value (PPP) of a SEM from the likelihood-ratio (chi-square) discrepancy.

As blavaan computes it (``postpred``; for two-level models ``pp_twolevel``): for each posterior draw
``theta`` of a subset, one data set ``y_rep`` of the observed data's size and structure is drawn from the
model at ``theta`` (:mod:`pymlsem.workflow.replicate`), and the discrepancy

    D(y, theta) = 2 [log L_h1(y) - log L(theta; y)]

is computed for the observed and for the replicated data, where ``L_h1`` is the saturated model's maximised
likelihood (:mod:`pymlsem.workflow.saturated`; for two levels its EM is refitted to every replicate, starting
at the moments the replicate was drawn from). The PPP is the share of draws with
``D(y_rep, theta) > D(y, theta)``: near 0.5 when the data look like the model's own replicates, near 0 when
the model misses structure in the data.

With missing values the replicates keep the data's missing values and the likelihood is the full-information
one. For a single-level model without exogenous covariates the discrepancy is still the chi-square: the
saturated model of incomplete data is estimated by EM for the data and for every replicate
(:mod:`pymlsem.workflow.saturated_missing`), as blavaan does; the replicates of a chunk of draws are drawn,
summarised and fitted at once (they share the data's missingness patterns). Otherwise (two levels, or fixed.x
covariates) it is the deviance ``D(y, theta) = -2 log L(theta; y)``, its replicates too drawn and summarised
a chunk at once.

Models with random slopes or ordered indicators (the latent builder) have no implied moments: the
discrepancy is the deviance given the draw's latent variables, ``D(y, theta, eta) = -2 log p(y | theta,
eta)``, a realized discrepancy in the sense of Gelman, Meng and Stern (1996), with replicates drawn given
the same latent variables (:mod:`pymlsem.workflow.conditional`). It checks each unit's data against the
model given its latent values (residual variances, thresholds, conditional means), not the latent
variables' own distribution, so it is less sensitive to misfit at the latent level than the chi-square.

At the ML estimates ``D(y, theta)`` is lavaan's chi-square test statistic. The exogenous covariates'
log-likelihood (lavaan's fixed.x constant) is the same in both terms and cancels. Everything is numpy,
batched over draws: no graph is compiled.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pymlsem.data.missing_stats import (
    MissingSingleLevelStats,
    MissingTwoLevelStats,
    one_data_set,
    single_level_missing_stats_batch,
    two_level_missing_stats_batch,
)
from pymlsem.data.stats import TwoLevelStats
from pymlsem.exceptions import ControlError, PymlsemError
from pymlsem.results.implied import row_value_draws
from pymlsem.workflow.conditional import latent_deviances
from pymlsem.workflow.incomplete import in_stats_order, loglik_draws, missing_total_loglik
from pymlsem.workflow.loglik import (
    ImpliedMoments,
    SingleLevelBatch,
    TwoLevelBatch,
    batch_of,
    implied_moments,
    model_loglik,
)
from pymlsem.workflow.predictive import replicate_rows, spread_positions
from pymlsem.workflow.replicate import simulate_replicates
from pymlsem.workflow.saturated import LAVAAN_TOL, check_saturated, single_level_h1_loglik, two_level_h1
from pymlsem.workflow.saturated_missing import missing_h1, missing_h1_moments, two_level_missing_h1

if TYPE_CHECKING:
    from pymlsem.api import SEM
    from pymlsem.results.fit import SEMFit

__all__ = ["PPPResult", "chisq_discrepancy", "posterior_predictive_pvalue", "ppp_from_rows"]

#: Number of numbers (draws x clusters x variables) simulated at once, to bound memory.
_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class PPPResult:
    """A posterior predictive p-value and the discrepancies behind it.

    Attributes
    ----------
    ppp
        Share of the used draws with ``replicated > observed``.
    observed
        ``D(y, theta)`` per used draw: the chi-square discrepancy of the observed data.
    replicated
        ``D(y_rep, theta)`` per used draw.
    draws
        Positions of the used draws among the posterior draws stacked chain by chain.
    seed
        The seed of the replicated data.
    excluded
        Draws left out because a discrepancy was not finite (an implied covariance matrix that is not
        positive definite).
    discrepancy
        ``"chi-square"`` (the likelihood ratio against the saturated model), ``"deviance"``
        (``-2 log L(theta; y)``, for data with missing values) or ``"deviance given latent variables"``
        (random slopes, ordered indicators).
    """

    ppp: float
    observed: np.ndarray
    replicated: np.ndarray
    draws: np.ndarray
    seed: int | None
    excluded: int = 0
    discrepancy: str = "chi-square"

    @property
    def n_draws(self) -> int:
        """Number of draws the PPP is computed from."""
        return int(self.observed.size)

    def __float__(self) -> float:
        return float(self.ppp)

    def __repr__(self) -> str:
        return f"PPPResult(ppp={self.ppp:.3f}, n_draws={self.n_draws}, excluded={self.excluded})"


def _h1_loglik(
    batch: SingleLevelBatch | TwoLevelBatch, tol: float, drawn_from: ImpliedMoments | None = None
) -> np.ndarray:
    """The saturated log-likelihood of each data set; two levels, the EM starts from the moments the
    replicates were drawn from (``drawn_from``), where given."""
    if isinstance(batch, TwoLevelBatch):
        start = None
        if drawn_from is not None:
            start = (drawn_from.mean[1], drawn_from.cov[1], drawn_from.mean[2], drawn_from.cov[2])
        return two_level_h1(batch, tol=tol, start=start).loglik
    return single_level_h1_loglik(batch)


def chisq_discrepancy(spec: SEM, rows: np.ndarray, *, tol: float = LAVAAN_TOL) -> np.ndarray:
    """The chi-square discrepancy ``2 [log L_h1(y) - log L(theta; y)]`` of the observed data per draw.

    Parameters
    ----------
    spec
        The model and its data.
    rows
        Shape (S, n_rows): parameter-table row values per draw (see
        :func:`pymlsem.results.implied.row_value_draws`), or one vector.
    tol
        Two-level saturated model's EM tolerance.

    Returns
    -------
    numpy.ndarray
        Shape (S,); at the ML estimates, lavaan's chi-square statistic.

    Raises
    ------
    DataError
        When the saturated model of the data is undefined.
    """
    if getattr(spec, "missing", False) and _saturated_of_incomplete_data(spec):
        return 2.0 * (
            missing_h1(spec.likelihood_stats).loglik - missing_total_loglik(spec, np.atleast_2d(rows))
        )
    if getattr(spec, "missing", False) and spec.cluster is not None:  # of the observed data only
        spec.check_closed_form("the chi-square discrepancy")
        saturated = two_level_missing_h1(spec.likelihood_stats).loglik
        return 2.0 * (saturated - missing_total_loglik(spec, np.atleast_2d(rows)))
    saturated = _observed_saturated(spec, tol)  # checks the data first
    return _complete_data_chisq(spec, implied_moments(spec, rows), saturated)


def _observed_saturated(spec: SEM, tol: float) -> float:
    """The saturated log-likelihood of the observed (complete) data."""
    spec.check_complete("the chi-square discrepancy (PPP)")
    saturated = _h1_loglik(batch_of(spec.stats), tol)
    check_saturated(saturated)
    return float(saturated[0])


def _complete_data_chisq(spec: SEM, moments: ImpliedMoments, saturated: float) -> np.ndarray:
    """The chi-square discrepancy of the observed (complete) data under each draw's implied moments."""
    loglik = model_loglik(moments, batch_of(spec.stats), meanstructure=spec.meanstructure)
    return 2.0 * (saturated - loglik)


def _chunk_size(spec: SEM) -> int:
    stats = spec.stats
    per_draw = len(stats.variables) * (stats.nclusters if isinstance(stats, TwoLevelStats) else 1)
    return max(1, _CHUNK_ELEMENTS // max(per_draw, 1))


def ppp_from_rows(spec: SEM, rows: np.ndarray, *, seed: int | None = 0, tol: float = LAVAAN_TOL) -> PPPResult:
    """Posterior predictive p-value from given parameter draws (one replicated data set per draw).

    Parameters
    ----------
    spec
        The model and its data.
    rows
        Shape (S, n_rows): parameter-table row values per draw.
    seed
        Seed of the replicated data.
    tol
        Two-level saturated model's EM tolerance (the same for observed and replicated data).

    Returns
    -------
    PPPResult
        With ``draws`` = 0..S-1.

    Warns
    -----
    UserWarning
        When some draws give a non-finite discrepancy; they are left out.
    """
    rows = np.atleast_2d(np.asarray(rows, dtype=float))
    rng = np.random.default_rng(seed)
    if getattr(spec, "missing", False):
        spec.check_closed_form("the posterior predictive p-value")
        if _saturated_of_incomplete_data(spec):
            observed, replicated = _missing_chisq_discrepancies(spec, rows, rng)
            return _result(observed, replicated, seed, "chi-square")
        observed, replicated = _deviances(spec, rows, rng)
        return _result(observed, replicated, seed, "deviance")
    observed, replicated = _chisq_discrepancies(spec, rows, rng, tol)
    return _result(observed, replicated, seed, "chi-square")


def _result(observed: np.ndarray, replicated: np.ndarray, seed: int | None, discrepancy: str) -> PPPResult:
    """The PPP of the draws with two finite discrepancies (``draws`` counts from 0); warns of the others."""
    finite = np.isfinite(observed) & np.isfinite(replicated)
    excluded = int((~finite).sum())
    if excluded:
        warnings.warn(
            f"{excluded} of {finite.size} posterior draws gave a non-finite discrepancy (an implied "
            "covariance matrix that is not positive definite) and were left out of the PPP",
            UserWarning,
            stacklevel=2,
        )
    if not finite.any():
        raise PymlsemError("no posterior draw gave a finite discrepancy: the PPP is undefined")
    ppp = float(np.mean(replicated[finite] > observed[finite]))
    draws = np.arange(observed.size)[finite]
    return PPPResult(ppp, observed[finite], replicated[finite], draws, seed, excluded, discrepancy)


def _chisq_discrepancies(
    spec: SEM, rows: np.ndarray, rng: np.random.Generator, tol: float
) -> tuple[np.ndarray, np.ndarray]:
    """The chi-square discrepancies of the observed data and of one replicate per draw."""
    saturated = _observed_saturated(spec, tol)
    observed = np.empty(rows.shape[0])
    replicated = np.empty(rows.shape[0])
    step = _chunk_size(spec)
    for start in range(0, rows.shape[0], step):
        part = slice(start, start + step)
        moments = implied_moments(spec, rows[part])
        observed[part] = _complete_data_chisq(spec, moments, saturated)
        batch = simulate_replicates(spec, moments, rng)
        loglik = model_loglik(moments, batch, meanstructure=spec.meanstructure)
        replicated[part] = 2.0 * (_h1_loglik(batch, tol, drawn_from=moments) - loglik)
    return observed, replicated


def _saturated_of_incomplete_data(spec: SEM) -> bool:
    """Whether the chi-square of incomplete data is computed: one level and no exogenous covariates."""
    return spec.cluster is None and not any(spec.partable.exogenous.values())


@dataclass(frozen=True)
class _Replicates:
    """Replicated data sets of a chunk of draws, with the data's missing values, at once."""

    positions: np.ndarray  # the draws' positions among the rows (those whose replicate could be drawn)
    mean: dict[int, np.ndarray]  # level -> (R, p) implied means, in the order of the statistics' variables
    cov: dict[int, np.ndarray]  # level -> (R, p, p)
    stats: MissingSingleLevelStats | MissingTwoLevelStats  # with a leading axis R (see one_data_set)

    def loglik(self, r: int, mean: np.ndarray | None = None, cov: np.ndarray | None = None) -> np.ndarray:
        """Full-information log-likelihood of replicate ``r`` at each of the one-level moments (S, p) and
        (S, p, p); by default at the moments it was drawn from."""
        if mean is None:
            one = slice(r, r + 1)
            moments = ({k: m[one] for k, m in self.mean.items()}, {k: c[one] for k, c in self.cov.items()})
        else:
            moments = ({1: mean}, {1: cov})
        return loglik_draws(moments, one_data_set(self.stats, r), per_unit=False)


def _incomplete_replicates(spec: SEM, rows: np.ndarray, rng: np.random.Generator):
    """One replicate per draw, with the data's missing values, the draws in chunks of bounded memory: each
    chunk's replicates drawn and summarised at once (they share the data's missingness patterns)."""
    variables = list(spec.stats.variables)
    order = np.array([variables.index(v) for v in spec.observed], dtype=np.int64)
    present = spec.data[list(spec.observed)].notna().to_numpy()
    step = max(1, _CHUNK_ELEMENTS // present.size)
    for start in range(0, rows.shape[0], step):
        positions = np.arange(start, min(start + step, rows.shape[0]))
        moments = implied_moments(spec, rows[positions])
        values = replicate_rows(spec, moments, rng)[:, :, order]
        drawn = np.isfinite(values[:, present]).all(axis=1)  # NaN: an implied covariance not PSD
        if not drawn.any():
            continue
        if spec.cluster is None:
            stats = single_level_missing_stats_batch(values[drawn], spec.observed)
        else:
            levels = {"within_only": spec.partable.within_only, "between_only": spec.partable.between_only}
            clusters = spec.data[spec.cluster]
            stats = two_level_missing_stats_batch(values[drawn], spec.observed, clusters, **levels)
        mean, cov = in_stats_order(spec, moments)
        yield _Replicates(
            positions[drawn],
            {level: m[drawn] for level, m in mean.items()},
            {level: c[drawn] for level, c in cov.items()},
            stats,
        )


def _missing_chisq_discrepancies(
    spec: SEM, rows: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The chi-square of incomplete data, ``2 [log L_h1 - log L(theta)]``, observed and one replicate per
    draw, the saturated model refitted by EM to every replicate (all of a chunk at once, each starting at
    the moments it was drawn from)."""
    observed = chisq_discrepancy(spec, rows)
    replicated = np.full(rows.shape[0], np.nan)
    for chunk in _incomplete_replicates(spec, rows, rng):
        stats = chunk.stats
        mean, cov, _ = missing_h1_moments(
            stats.pattern_observed,
            stats.pattern_counts,
            stats.pattern_means,
            stats.pattern_scatter,
            start=(chunk.mean[1], chunk.cov[1]),
        )
        for r, s in enumerate(chunk.positions):
            model, saturated = chunk.loglik(
                r, np.stack([chunk.mean[1][r], mean[r]]), np.stack([chunk.cov[1][r], cov[r]])
            )
            replicated[s] = 2.0 * (saturated - model)
    return observed, replicated


def _deviances(spec: SEM, rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``-2 log L(theta; y)`` of the observed data and of one replicate per draw, missing values kept.

    The saturated model of incomplete data (blavaan refits it by EM to every replicate) is not computed,
    so the discrepancy is the deviance itself; the replicates have the data's missing values
    (:func:`pymlsem.workflow.predictive.replicate_rows`) and the full-information likelihood.
    """
    observed = -2.0 * missing_total_loglik(spec, rows)
    replicated = np.full(rows.shape[0], np.nan)
    for chunk in _incomplete_replicates(spec, rows, rng):
        for r, s in enumerate(chunk.positions):
            replicated[s] = -2.0 * chunk.loglik(r)[0]
    return observed, replicated


def posterior_predictive_pvalue(
    fit: SEMFit, n_draws: int = 1000, *, seed: int | None = 0, tol: float = LAVAAN_TOL
) -> PPPResult:
    """Posterior predictive p-value of a fitted SEM from the chi-square discrepancy (blavaan's PPP).

    Parameters
    ----------
    fit
        A fitted SEM (single- or two-level).
    n_draws
        Use this many posterior draws, evenly spaced over the chains (all when there are fewer); one
        replicated data set is drawn per draw.
    seed
        Seed of the replicated data.
    tol
        Two-level saturated model's EM tolerance (lavaan's 1e-4 by default).

    Returns
    -------
    PPPResult
        ``float(result)`` is the PPP; ``result.draws`` indexes the posterior draws stacked chain by chain.

    Raises
    ------
    PymlsemError
        When ``n_draws`` is not a positive integer, or no draw gives a finite discrepancy.
    """
    if isinstance(n_draws, bool) or not isinstance(n_draws, int | np.integer) or n_draws < 1:
        raise ControlError(f"n_draws must be a positive integer, not {n_draws!r}")
    if not fit.model.has_closed_form:
        posterior = fit.idata.posterior
        chosen = spread_positions(posterior.sizes["chain"] * posterior.sizes["draw"], int(n_draws))
        rng = np.random.default_rng(seed)
        observed, replicated = latent_deviances(fit.model, posterior, rng, positions=chosen)
        result = _result(observed, replicated, seed, "deviance given latent variables")
    else:
        rows = row_value_draws(fit)
        chosen = spread_positions(rows.shape[0], int(n_draws))
        result = ppp_from_rows(fit.model, rows[chosen], seed=seed, tol=tol)
    return dataclasses.replace(result, draws=chosen[result.draws])
