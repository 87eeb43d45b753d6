"""A mixed model's variance partition per posterior draw: ICC and R-squared.

As Nakagawa, Johnson and Schielzeth (2017) define them and R's performance package reports them
(``icc()``, ``r2_nakagawa()``), on the latent (link) scale:

- the fixed effects' variance ``var(X beta)`` over the rows of the data;
- each grouping factor's random-effect variance ``mean_i z_i' Sigma z_i`` (Johnson 2014: a random slope's
  variance at the observed covariate values; for a random intercept, its variance);
- the distribution-specific (residual) variance: ``sigma^2`` for Gaussian models (Student-t:
  ``sigma^2 nu / (nu - 2)``, infinite for ``nu <= 2``), ``pi^2 / 3`` for the
  logit link and 1 for the probit link (binomial, bernoulli, ordinal), and for counts with a log link the
  lognormal approximation ``log(1 + 1 / lambda)`` (negative binomial: ``log(1 + 1 / lambda + 1 / theta)``)
  with ``lambda = exp(mean(X beta) + sum of the random variances / 2)``.

The adjusted ICC of a grouping factor is its variance over the sum of the random and residual variances;
the conditional ICC adds the fixed effects' variance to the denominator. The marginal R-squared is the
fixed effects' share of the total, the conditional one the fixed and random effects' share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from pymlsem.exceptions import ModelSpecificationError
from pymlsem.mlm.predict import linear_predictor_draws, response_mean
from pymlsem.results.posterior import SAMPLE_DIMS, summarize_draws

if TYPE_CHECKING:
    from pymlsem.mlm.fit import MixedFit

__all__ = [
    "VariancePartition",
    "bayes_r2_table",
    "icc_table",
    "r_squared_table",
    "variance_partition",
    "variance_shares_table",
]

_LATENT_RESIDUAL = {"logit": np.pi**2 / 3, "probit": 1.0}


@dataclass(frozen=True)
class VariancePartition:
    """Variances on the latent scale per draw, each shape (chain, draw).

    Attributes
    ----------
    fixed
        ``var(X beta)`` over the rows.
    random
        Each grouping factor's random-effect variance, in formula order.
    residual
        The distribution-specific variance.
    """

    fixed: np.ndarray
    random: dict[str, np.ndarray]
    residual: np.ndarray

    @property
    def total(self) -> np.ndarray:
        """The sum of the fixed, random and residual variances."""
        return self.fixed + sum(self.random.values()) + self.residual


def variance_partition(fit: MixedFit) -> VariancePartition:
    """The fixed, random and residual variances of a fitted mixed model, per draw.

    Raises
    ------
    ModelSpecificationError
        A model without random effects.
    """
    spec, posterior = fit.spec, fit.idata.posterior
    design = spec.design
    if not design.blocks:
        raise ModelSpecificationError("the model has no random effects, so it has no ICC")
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    linear = np.zeros((*shape, 0))
    if design.fixed_names:
        beta = posterior["fixef"].transpose(*SAMPLE_DIMS, "term").values
        linear = np.einsum("cdp,np->cdn", beta, design.x)
    fixed = linear.var(axis=-1, ddof=1) if linear.shape[-1] > 1 else np.zeros(shape)
    random: dict[str, np.ndarray] = {}
    for block, label in zip(design.blocks, spec.labels, strict=True):
        sd = posterior[f"sd__{label}"].transpose(*SAMPLE_DIMS, ...).values.reshape(*shape, block.q)
        corr = np.broadcast_to(np.eye(block.q), (*shape, block.q, block.q))
        if block.correlated and block.q > 1:
            corr = posterior[f"corr__{label}"].transpose(*SAMPLE_DIMS, ...).values
        cov = corr * sd[..., :, None] * sd[..., None, :]
        cross = block.z.T @ block.z / block.z.shape[0]  # mean over rows of z_i z_i'
        random[block.group] = random.get(block.group, 0.0) + np.einsum("cdab,ab->cd", cov, cross)
    residual = _residual_variance(fit, linear, sum(random.values()), shape)
    return VariancePartition(fixed, random, residual)


def _residual_variance(fit: MixedFit, linear: np.ndarray, random: np.ndarray, shape) -> np.ndarray:
    spec, posterior = fit.spec, fit.idata.posterior
    if spec.family == "gaussian":
        return posterior["sigma"].transpose(*SAMPLE_DIMS).values ** 2
    if spec.family == "student":  # the t distribution's variance (infinite for nu <= 2)
        sigma, nu = (posterior[name].transpose(*SAMPLE_DIMS).values for name in ("sigma", "nu"))
        return np.where(nu > 2, sigma**2 * nu / np.maximum(nu - 2, 1e-12), np.inf)
    link = spec.response.link
    if link in _LATENT_RESIDUAL:
        return np.full(shape, _LATENT_RESIDUAL[link])
    if link == "log":  # Poisson, negative binomial: the lognormal approximation
        mean = linear.mean(axis=-1) if linear.shape[-1] else np.zeros(shape)
        inverse = 1.0 / np.exp(mean + random / 2.0)
        if spec.family == "negbinomial":
            inverse = inverse + 1.0 / posterior["theta"].transpose(*SAMPLE_DIMS).values
        return np.log1p(inverse)
    raise ModelSpecificationError(f"no distribution-specific variance for the {link} link")


def _summary(values: dict[tuple[str, str], np.ndarray], prob: float, first: str, second: str) -> pd.DataFrame:
    keys = list(values)
    draws = xr.DataArray(
        np.stack(list(values.values()), axis=-1),
        dims=(*SAMPLE_DIMS, "row"),
        coords={"row": np.arange(len(keys))},
    )
    table = summarize_draws(draws, prob).reset_index(drop=True)
    labels = pd.DataFrame(keys, columns=[first, second])
    return pd.concat([labels, table], axis=1)


def icc_table(fit: MixedFit, prob: float = 0.95) -> pd.DataFrame:
    """Adjusted and conditional ICC of each grouping factor (and of all together when there are several).

    Returns
    -------
    pandas.DataFrame
        Columns ``group, type`` (``"adjusted"`` or ``"conditional"``), ``mean, sd``, the interval,
        ``r_hat, ess_bulk, ess_tail``.
    """
    parts = variance_partition(fit)
    random_total = sum(parts.random.values())
    groups = dict(parts.random)
    if len(groups) > 1:
        groups["all"] = random_total
    values = {}
    for kind, denominator in (
        ("adjusted", random_total + parts.residual),
        ("conditional", parts.total),
    ):
        for group, variance in groups.items():
            values[(group, kind)] = variance / denominator
    return _summary(values, prob, "group", "type")


def variance_shares_table(fit: MixedFit, prob: float = 0.95) -> pd.DataFrame:
    """Each part's share of the total variance: the fixed effects, each grouping factor and the residual.

    The shares sum to 1 in every draw: a grouping factor's share is its conditional ICC, the fixed effects'
    the marginal R-squared.

    Returns
    -------
    pandas.DataFrame
        Columns ``component`` (``"fixed"``, each grouping factor, ``"residual"``), ``type``
        (``"share"``), ``mean, sd``, the interval, ``r_hat, ess_bulk, ess_tail``.
    """
    parts = variance_partition(fit)
    components = {"fixed": parts.fixed, **parts.random, "residual": parts.residual}
    values = {(name, "share"): variance / parts.total for name, variance in components.items()}
    return _summary(values, prob, "component", "type")


def r_squared_table(fit: MixedFit, prob: float = 0.95) -> pd.DataFrame:
    """Marginal (fixed effects) and conditional (fixed and random effects) R-squared.

    Returns
    -------
    pandas.DataFrame
        Columns ``response, type`` (``"marginal"``, ``"conditional"``), ``mean, sd``, the interval,
        ``r_hat, ess_bulk, ess_tail``.
    """
    parts = variance_partition(fit)
    explained = parts.fixed + sum(parts.random.values())
    response = fit.spec.design.response
    values = {
        (response, "marginal"): parts.fixed / parts.total,
        (response, "conditional"): explained / parts.total,
    }
    return _summary(values, prob, "response", "type")


def bayes_r2_table(fit: MixedFit, prob: float = 0.95) -> pd.DataFrame:
    """Gelman, Goodrich, Gabry and Vehtari's (2019) Bayesian R-squared, as brms's ``bayes_R2``.

    Per draw, ``var(mu) / (var(mu) + var(y - mu))`` over the rows, ``mu`` each row's expected response
    with its cluster effects (a binomial model's success probability against the observed proportion).

    Returns
    -------
    pandas.DataFrame
        One row (``response``), columns ``mean, sd``, the interval, ``r_hat, ess_bulk, ess_tail``.
    """
    spec = fit.spec
    if spec.family == "ordinal":
        raise ModelSpecificationError("an ordinal model's response is a category: no Bayesian R-squared")
    mu = response_mean(spec, linear_predictor_draws(fit))
    y = spec.design.y
    if spec.response is not None and spec.response.trials is not None:
        y = spec.response.y / spec.response.trials
    explained = mu.var(axis=-1, ddof=1)
    residual = (y - mu).var(axis=-1, ddof=1)
    return _summary(
        {(spec.design.response, "bayes"): explained / (explained + residual)}, prob, "response", "type"
    )
