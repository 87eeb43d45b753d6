"""Missing values of modelled variables stay in the likelihood (no listwise deletion), in both builders.

The seed model on Demo.twolevel with about 12% of y1..y3 missing at random (more often where x1 is high: the
missingness depends on an observed covariate, so it is MAR, not MCAR, and listwise deletion would be biased
in general). Checks:

* full-information marginal (``method="marginal"``) and latent (``method="latent"``) posteriors agree;
* both stay close to the complete-data posterior: the efficient estimators with and without the missing
  values differ by about ``sqrt(var_missing - var_complete)`` (Hausman's argument). That difference of
  posterior variances is too noisy to use directly when little information is lost (Monte Carlo error of
  the SDs), so the scale is ``sd_complete * sqrt(f / (1 - f))`` with ``f`` the fraction of missing
  outcome cells (the variance inflation when a fraction f of the informative cells is lost), or the
  variance difference when that is larger; that scale is the allowance of tests/tolerances.py, with the
  Monte Carlo errors of both means, z Bonferroni over the 20 parameters. Dropping the incomplete rows
  instead would lose about 30% of the rows, and imputing cluster means (a bug this test caught) shrinks
  the within factor variance by several scales.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from reference import SEED, data
from tolerances import SAMPLE_DIMS, bonferroni_z, check_close, check_same_posterior, mcse

import pymlsem

pytestmark = pytest.mark.sampling
FIT = {"draws": 800, "tune": 800, "chains": 2, "progressbar": False, "random_seed": 7}


def _with_missing(frame: pd.DataFrame, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = frame.copy()
    prob = 0.06 + 0.12 * (out["x1"] > out["x1"].median())  # MAR: depends on the observed x1
    for name in ("y1", "y2", "y3"):
        out.loc[rng.random(len(out)) < prob, name] = np.nan
    return out


@pytest.fixture(scope="module")
def fits() -> dict[str, xr.DataArray]:
    """The posterior draws of the free parameters, by fit."""
    complete = data("Demo.twolevel")
    incomplete = _with_missing(complete)
    assert 0.08 < incomplete[["y1", "y2", "y3"]].isna().to_numpy().mean() < 0.16
    out = {}
    for name, frame, method in (
        ("complete", complete, "marginal"),
        ("fiml", incomplete, "marginal"),
        ("latent", incomplete, "latent"),
    ):
        fit = pymlsem.sem(SEED, frame, cluster="cluster", method=method, **FIT)
        assert fit.model.nobs == 2500  # no row dropped
        assert fit.divergences() == 0
        out[name] = fit.idata.posterior["parameters"]
    assert all((d.parameter.values == out["complete"].parameter.values).all() for d in out.values())
    return out


def test_no_listwise_deletion_and_the_likelihood_is_full_information() -> None:
    spec = pymlsem.SEM(SEED, _with_missing(data("Demo.twolevel")), cluster="cluster")
    assert spec.method == "marginal" and spec.missing and spec.nobs == 2500
    latent = pymlsem.SEM(SEED, _with_missing(data("Demo.twolevel")), cluster="cluster", method="latent")
    # y1..y3 predict nothing and have no residual covariance: their missing values are left out, not sampled
    assert not [v for v in latent.pymc_model.free_RVs if v.name.startswith("missing_")]


def test_fiml_and_latent_builders_agree(fits) -> None:
    # the same likelihood and priors: the same posterior, so Monte Carlo error only (no allowance); z over
    # the 40 comparisons (means and SDs). A latent builder that dropped the incomplete rows or imputed
    # cluster means moves the within variances by several posterior SDs and fails.
    check_same_posterior(fits["latent"], fits["fiml"], labels=fits["fiml"].parameter.values)


@pytest.mark.parametrize("name", ["fiml", "latent"])
def test_estimates_stay_close_to_the_complete_data_fit(fits, name) -> None:
    full, part = fits["complete"], fits[name]
    fraction = _with_missing(data("Demo.twolevel"))[["y1", "y2", "y3"]].isna().to_numpy().mean()
    full_sd, part_sd = full.std(SAMPLE_DIMS).to_numpy(), part.std(SAMPLE_DIMS).to_numpy()
    floor = full_sd * np.sqrt(fraction / (1 - fraction))
    extra = np.maximum(np.sqrt(np.clip(part_sd**2 - full_sd**2, 0.0, None)), floor)
    check_close(
        part.mean(SAMPLE_DIMS),
        full.mean(SAMPLE_DIMS),
        np.hypot(mcse(full), mcse(part)),
        extra,
        labels=full.parameter.values,
        m=2 * len(full_sd),
    )
    # losing 12% of the outcomes costs precision, never gains it beyond Monte Carlo noise (one-sided)
    sd_error = np.hypot(mcse(full, "sd"), mcse(part, "sd"))
    assert (full_sd - part_sd <= bonferroni_z(2 * len(full_sd)) * sd_error).all(), (
        full_sd,
        part_sd,
        sd_error,
    )
