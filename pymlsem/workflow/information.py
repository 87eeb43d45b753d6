"""Information criteria: PSIS-LOO (ArviZ) and WAIC per cluster or per observation, model comparison, DIC.

LOO needs the pointwise log-likelihood of :mod:`pymlsem.workflow.pointwise`; for two-level SEMs and Gaussian
mixed models with one grouping factor the default unit is the cluster (leave-one-cluster-out). ``compare``
ranks fits by their expected log predictive density with ArviZ, after checking that they are fits to the
same observations: an elpd is a log-density of particular data, so fits of different variables or rows
cannot be compared.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from pymlsem.diagnostics.dic import DIC, dic
from pymlsem.exceptions import DataError, PymlsemError
from pymlsem.results.implied import row_value_draws
from pymlsem.workflow.pointwise import (
    LOGLIK_VAR,
    add_log_likelihood,
    fixed_x_constant,
    pointwise_log_likelihood,
    sem_total_loglik,
)

__all__ = ["WAIC", "compare", "data_digest", "loo", "loo_outliers", "sem_dic", "waic"]


def loo(fit: Any, unit: str | None = None, **kwargs: Any) -> Any:
    """Pareto-smoothed importance-sampling leave-one-out cross-validation (ArviZ's ``loo``).

    Parameters
    ----------
    fit
        A fitted SEM or mixed model.
    unit
        ``"cluster"`` (leave-one-cluster-out; the default for two-level SEMs and Gaussian mixed models with
        one grouping factor) or ``"observation"``; see :mod:`pymlsem.workflow.pointwise`.
    **kwargs
        Passed to :func:`arviz_stats.loo` (e.g. ``reff``).

    Returns
    -------
    arviz_stats.utils.ELPDData
        ``elpd``, ``se``, ``p`` and, per unit, ``pareto_k`` (values above ``good_k``, about 0.7, mark
        units whose estimate is unreliable).
    """
    from arviz_stats import loo as arviz_loo

    add_log_likelihood(fit, unit)
    kwargs.setdefault("pointwise", True)
    return arviz_loo(fit.idata, var_name=LOGLIK_VAR, **kwargs)


def loo_outliers(fit: Any, unit: str | None = None, **kwargs: Any) -> pd.DataFrame:
    """Each unit's leave-one-out ELPD and Pareto k, most influential first: outlying clusters or rows.

    The table the book's chapter 12 builds for robust models with other tools: a unit whose Pareto k
    exceeds ``good_k`` (about 0.7) moves the posterior so much when left out that PSIS cannot estimate its
    ELPD; with ``unit="cluster"`` these are the outlying clusters.

    Parameters
    ----------
    fit
        A fitted SEM or mixed model.
    unit
        ``"cluster"`` or ``"observation"``; the default as for :func:`loo`.
    **kwargs
        Passed to :func:`loo`.

    Returns
    -------
    pandas.DataFrame
        Indexed by the unit's label, columns ``elpd_loo`` (its ELPD), ``pareto_k`` and ``influential``
        (``pareto_k > good_k``), sorted by ``pareto_k``, largest first.
    """
    result = loo(fit, unit, **kwargs)
    labels = result.elpd_i.coords[result.elpd_i.dims[-1]].values
    table = pd.DataFrame(
        {
            "elpd_loo": np.asarray(result.elpd_i.values).ravel(),
            "pareto_k": np.asarray(result.pareto_k.values).ravel(),
        },
        index=pd.Index(labels, name=result.elpd_i.dims[-1]),
    )
    table["influential"] = table["pareto_k"] > result.good_k
    return table.sort_values("pareto_k", ascending=False)


@dataclass(frozen=True)
class WAIC:
    """The widely applicable information criterion (Watanabe 2010; Vehtari, Gelman & Gabry 2017).

    Attributes
    ----------
    elpd
        ``sum_i lppd_i - p_i``: the expected log predictive density it estimates.
    se
        Its standard error, ``sqrt(n var_i(elpd_i))``.
    p
        The effective number of parameters, ``sum_i var_s(log p(y_i | theta_s))``.
    pointwise
        ``elpd_i`` per unit.
    unit
        ``"cluster"`` or ``"observation"``.
    """

    elpd: float
    se: float
    p: float
    pointwise: np.ndarray
    unit: str

    @property
    def waic(self) -> float:
        """On the deviance scale, ``-2 elpd``."""
        return -2.0 * self.elpd


def waic(fit: Any, unit: str | None = None) -> WAIC:
    """WAIC from the pointwise log-likelihood of :mod:`pymlsem.workflow.pointwise` (ArviZ 1 has none).

    PSIS-LOO (:func:`loo`) is preferred: it estimates the same quantity and says when it fails (Pareto k);
    WAIC is here for users who report it (the book's chapters, brms's ``waic``).

    Parameters
    ----------
    fit
        A fitted SEM or mixed model.
    unit
        ``"cluster"`` or ``"observation"``; the default as for :func:`loo`.

    Returns
    -------
    WAIC
    """
    unit = unit or fit.default_unit()
    values = pointwise_log_likelihood(fit, unit).values  # (draws, units)
    lppd = logsumexp(values, axis=0) - np.log(values.shape[0])
    penalty = values.var(axis=0, ddof=1) if values.shape[0] > 1 else np.zeros(values.shape[1])
    elpd = lppd - penalty
    se = float(np.sqrt(elpd.size * elpd.var(ddof=1))) if elpd.size > 1 else float("nan")
    return WAIC(float(elpd.sum()), se, float(penalty.sum()), elpd, unit)


def data_digest(*arrays: Any) -> str:
    """A digest of the values of ``arrays`` (which data a fit models, see
    :meth:`~pymlsem.workflow.protocol.Fitted.data_identity`)."""
    sha = hashlib.sha1(usedforsecurity=False)
    for array in arrays:
        sha.update(np.ascontiguousarray(np.asarray(array, dtype=float)).tobytes())
    return sha.hexdigest()


def _check_same_data(fits: Mapping[str, Any]) -> None:
    names = list(fits)
    first = names[0]
    reference = fits[first].data_identity()
    for name in names[1:]:
        other = fits[name].data_identity()
        if other[0] != reference[0]:
            raise DataError(
                f"the fits model different variables: {first!r} models {', '.join(reference[0])} and "
                f"{name!r} models {', '.join(other[0])}. An elpd is the log-density of particular data, so "
                "only fits of the same observed variables can be compared; fit the models to the same "
                "variables (e.g. fix a path to 0 instead of dropping a variable)"
            )
        if other[1:] != reference[1:]:
            raise DataError(
                f"the fits {first!r} and {name!r} model the same variables but not the same rows "
                f"({reference[1]} and {other[1]} rows, or different values/clusters); compare fits to the "
                "same data set (the same complete rows)"
            )


def compare(
    fits: Mapping[str, Any], *, unit: str | None = None, method: str = "stacking", **kwargs: Any
) -> pd.DataFrame:
    """Compare fits by their PSIS-LOO expected log predictive density (ArviZ's ``compare``).

    Parameters
    ----------
    fits
        Model name -> fitted SEM or mixed model (at least two), all fitted to the same observations.
    unit
        ``"cluster"`` or ``"observation"`` for every fit; the default is each fit's default unit, which
        must agree.
    method
        How ArviZ weights the models: ``"stacking"``, ``"BB-pseudo-BMA"`` or ``"pseudo-BMA"``.
    **kwargs
        Passed to :func:`arviz_stats.compare` (``round_to`` defaults to ``"none"``: unrounded numbers).

    Returns
    -------
    pandas.DataFrame
        One row per fit, best first (ArviZ's columns): ``rank`` (0 is the best), ``elpd_diff`` (against the
        best), ``dse`` (its standard error), ``p_worse`` (probability of being worse than the best, normal
        approximation), ``diag_diff`` and ``diag_elpd`` (warnings about the difference and the ELPD), ``p``
        (effective number of parameters), ``elpd``, ``se`` and ``weight``.

    Raises
    ------
    PymlsemError
        Fewer than two fits, or fits whose default units differ (give ``unit=``).
    DataError
        Fits of different variables or different rows.
    """
    from arviz_stats import compare as arviz_compare

    if not isinstance(fits, Mapping) or len(fits) < 2:
        raise PymlsemError("compare needs a dict of at least two fits, e.g. {'m1': fit1, 'm2': fit2}")
    units = {name: unit or fit.default_unit() for name, fit in fits.items()}
    if len(set(units.values())) > 1:
        raise PymlsemError(
            f"the fits have different default units ({units}); give unit='cluster' or unit='observation'"
        )
    _check_same_data(fits)
    elpds = {name: loo(fit, units[name]) for name, fit in fits.items()}
    kwargs.setdefault("round_to", "none")
    return arviz_compare(elpds, method=method, **kwargs)


def sem_dic(fit: Any) -> DIC:
    """Deviance information criterion of a fitted SEM, as blavaan reports it.

    ``DIC = Dbar + pD`` with ``Dbar`` the posterior mean of the deviance ``-2 logl`` and
    ``pD = Dbar - D(theta_bar)``, ``theta_bar`` the posterior means of the parameters on lavaan's scale
    (variances and covariances). ``logl`` is lavaan's log-likelihood: the normal density of the data (latent
    variables integrated out) less the fixed.x constant of the exogenous covariates, so ``dbar`` and ``dic``
    are on blavaan's scale; ``pD`` does not depend on that constant.

    Parameters
    ----------
    fit
        A :class:`~pymlsem.results.fit.SEMFit`.

    Returns
    -------
    DIC
        ``dic``, ``dbar``, ``dhat``, ``pd``.
    """
    spec = fit.model
    rows = row_value_draws(fit)
    constant = fixed_x_constant(spec)
    values = sem_total_loglik(spec, rows) - constant
    at_mean = float(sem_total_loglik(spec, rows.mean(axis=0)[None])[0] - constant)
    # the log-likelihoods are computed in one batch; dic() only averages them
    return dic(lambda value: value, values, at_mean)
