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
  variance difference when that is larger; each posterior mean must lie within four such scales plus
  Monte Carlo error of its complete-data mean. Dropping the incomplete rows instead would lose about 30%
  of the rows, and imputing cluster means (a bug this test caught) shrinks the within factor variance by
  several scales.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from reference import SEED, data

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
def fits() -> dict[str, pd.DataFrame]:
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
        table = fit.parameter_estimates()
        out[name] = table[table.free].reset_index(drop=True)
    return out


def test_no_listwise_deletion_and_the_likelihood_is_full_information() -> None:
    spec = pymlsem.SEM(SEED, _with_missing(data("Demo.twolevel")), cluster="cluster")
    assert spec.method == "marginal" and spec.missing and spec.nobs == 2500
    latent = pymlsem.SEM(SEED, _with_missing(data("Demo.twolevel")), cluster="cluster", method="latent")
    # y1..y3 predict nothing and have no residual covariance: their missing values are left out, not sampled
    assert not [v for v in latent.pymc_model.free_RVs if v.name.startswith("missing_")]


def test_fiml_and_latent_builders_agree(fits) -> None:
    fiml, latent = fits["fiml"], fits["latent"]
    sd = np.sqrt((fiml["sd"] ** 2 + latent["sd"] ** 2) / 2)
    mcse = np.sqrt(fiml["sd"] ** 2 / fiml["ess_bulk"] + latent["sd"] ** 2 / latent["ess_bulk"])
    gap = (fiml["mean"] - latent["mean"]).abs()
    assert (gap < 0.25 * sd + 4 * mcse).all(), pd.DataFrame({"gap": gap, "sd": sd, "mcse": mcse})
    assert np.allclose(fiml["sd"], latent["sd"], rtol=0.3)


@pytest.mark.parametrize("name", ["fiml", "latent"])
def test_estimates_stay_close_to_the_complete_data_fit(fits, name) -> None:
    full, part = fits["complete"], fits[name]
    fraction = _with_missing(data("Demo.twolevel"))[["y1", "y2", "y3"]].isna().to_numpy().mean()
    floor = full["sd"] * np.sqrt(fraction / (1 - fraction))
    extra = np.maximum(np.sqrt(np.clip(part["sd"] ** 2 - full["sd"] ** 2, 0.0, None)), floor)
    mcse = np.sqrt(full["sd"] ** 2 / full["ess_bulk"] + part["sd"] ** 2 / part["ess_bulk"])
    gap = (part["mean"] - full["mean"]).abs()
    assert (gap < 4 * extra + 4 * mcse).all(), pd.DataFrame({"gap": gap, "extra": extra, "mcse": mcse})
    # losing 12% of the outcomes costs precision, never gains it beyond Monte Carlo noise
    assert (part["sd"] > 0.9 * full["sd"]).all()
