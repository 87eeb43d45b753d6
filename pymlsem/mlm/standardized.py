"""Standardized fixed effects of a mixed model, per posterior draw (effectsize's "basic" method).

Each fixed effect is multiplied by the standard deviation of its column of the fixed-effects design matrix
(dummy columns of factors included) and, for a continuous response (Gaussian, Student-t), divided by the
standard deviation of the response: the change in the response, in its standard deviations, per standard
deviation of the predictor. This is R's ``effectsize::standardize_parameters(method = "basic")`` for lme4
and brms fits, applied to every draw. For the other families only the predictors are scaled (the response's
scale is the link's: log-odds, log-rate), as effectsize does. The intercept has no standardized value.
Standard deviations are those of the rows the model used (``n - 1`` in the denominator, as R's ``sd``); a
binomial model with trials weighs each row by its trials (as effectsize does: a row of ``k`` trials
stands for ``k`` Bernoulli rows), with the unbiased denominator of reliability weights,
``sum(w) - sum(w^2) / sum(w)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from pymlsem.results.posterior import summarize_draws

if TYPE_CHECKING:
    from pymlsem.mlm.fit import MixedFit
    from pymlsem.mlm.model import BuiltMixedModel

__all__ = ["CONTINUOUS_FAMILIES", "fixef_scales", "standardized_fixef_table"]

#: families whose response is continuous, on its own scale: standardized by its standard deviation too
CONTINUOUS_FAMILIES = ("gaussian", "student")


def fixef_scales(spec: BuiltMixedModel) -> pd.Series:
    """The factor that standardizes each fixed effect but the intercept, by lme4 term name.

    ``sd(column of X) / sd(y)`` for a continuous response, ``sd(column of X)`` otherwise; a column that is
    constant over the rows (the intercept) has none.
    """
    design, response = spec.design, spec.response
    x = np.asarray(design.x, dtype=float)
    trials = None if response is None else response.trials
    weights = np.ones(x.shape[0]) if trials is None else np.asarray(trials, dtype=float)
    scale = _weighted_sd(x, weights)
    if spec.family in CONTINUOUS_FAMILIES:
        y = np.asarray(design.y if response is None else response.y, dtype=float)
        scale = scale / _weighted_sd(y[:, None], weights)[0]
    terms = pd.Index(design.fixed_names, name="term")
    return pd.Series(scale, index=terms)[scale > 0]


def _weighted_sd(columns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each column's standard deviation with reliability weights (R's ``sd`` when the weights are 1)."""
    total = weights.sum()
    denominator = total - np.sum(weights**2) / total
    if denominator <= 0:  # one row: no spread
        return np.zeros(columns.shape[1])
    mean = weights @ columns / total
    return np.sqrt(weights @ (columns - mean) ** 2 / denominator)


def standardized_fixef_table(fit: MixedFit, prob: float = 0.95) -> pd.DataFrame:
    """Posterior summary of the standardized fixed effects (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``term`` (every fixed effect but the intercept and other constant columns), columns
        ``mean, sd``, the interval, ``r_hat, ess_bulk, ess_tail``.
    """
    scales = fixef_scales(fit.spec)
    if scales.empty:
        return pd.DataFrame(columns=["mean", "sd"], index=pd.Index([], name="term"))
    fixef = fit.idata.posterior["fixef"]
    (dim,) = [d for d in fixef.dims if d not in ("chain", "draw")]
    chosen = fixef.sel({dim: list(scales.index)})
    factor = xr.DataArray(scales.to_numpy(), coords={dim: list(scales.index)}, dims=dim)
    table = summarize_draws(chosen * factor, prob)
    table.index.name = "term"
    return table
