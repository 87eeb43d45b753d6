"""predict(), fitted() and coef() of mixed fits against lme4's at its ML estimates.

A stand-in posterior sits at lme4's estimates (data/reference/lme4/predictions.R). For the Gaussian model
the cluster effects are drawn from their conditional distribution given those estimates, whose mean is
lme4's conditional mode: the predictions' means match lme4's within their Monte Carlo error. For the
binomial model the stand-in's cluster effects are lme4's conditional modes, so the match is exact.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from reference import REFERENCE
from tolerances import bonferroni_z

from pymlsem.exceptions import DataError, ModelSpecificationError
from pymlsem.mlm.api import mixed_model
from pymlsem.mlm.fit import MixedFit
from tests.mlm.test_mixed_loglik import lme4_estimates

DATA = REFERENCE / "data"
LME4 = REFERENCE / "lme4"
PREDICTIONS = pd.read_csv(LME4 / "predictions.csv")
CHAINS, DRAWS = 2, 1000
SLEEP_NEW = pd.DataFrame({"Days": [0, 4.5, 12, 3], "Subject": [308, 309, 372, 999]})
CBPP_NEW = pd.DataFrame({"period": ["1", "4", "2"], "herd": ["1", "15", "7"]})


def _reference(model: str, rows: str, re: str, type_: str) -> np.ndarray:
    table = PREDICTIONS[(PREDICTIONS.model == model) & (PREDICTIONS.rows == rows) & (PREDICTIONS.re == re)]
    assert (table.type == type_).all() and len(table)
    return table.sort_values("row")["value"].to_numpy()


def _posterior(beta, extra: dict) -> SimpleNamespace:
    shape = (CHAINS, DRAWS)
    variables = {"fixef": (("chain", "draw", "term"), np.broadcast_to(beta, (*shape, beta.size))), **extra}
    return SimpleNamespace(posterior=xr.Dataset(variables))


@pytest.fixture(scope="module")
def sleep_fit() -> MixedFit:
    spec = mixed_model("Reaction ~ Days + (Days | Subject)", pd.read_csv(DATA / "sleepstudy.csv"))
    beta, sigma, (cov,) = lme4_estimates("sleepstudy_ml", spec.design)
    sd = np.sqrt(np.diag(cov))
    shape = (CHAINS, DRAWS)
    idata = _posterior(
        beta,
        {
            "sigma": (("chain", "draw"), np.full(shape, sigma)),
            "sd__Subject": (("chain", "draw", "e"), np.broadcast_to(sd, (*shape, 2))),
            "corr__Subject": (
                ("chain", "draw", "e", "f"),
                np.broadcast_to(cov / np.outer(sd, sd), (*shape, 2, 2)),
            ),
        },
    )
    return MixedFit(spec, idata, sampler="none", chains=CHAINS, draws=DRAWS, tune=0)


@pytest.fixture(scope="module")
def cbpp_fit() -> MixedFit:
    data = pd.read_csv(DATA / "cbpp.csv").astype({"period": str, "herd": str})
    spec = mixed_model("cbind(incidence, size - incidence) ~ period + (1 | herd)", data, "binomial")
    beta, _, (cov,) = lme4_estimates("cbpp_binomial", spec.design)
    modes = pd.read_csv(LME4 / "cbpp_ranef.csv", dtype={"herd": str}).set_index("herd")["value"]
    u = modes.loc[list(spec.design.blocks[0].levels)].to_numpy()
    shape = (CHAINS, DRAWS)
    idata = _posterior(
        beta,
        {
            "sd__herd": (("chain", "draw", "e"), np.full((*shape, 1), np.sqrt(cov[0, 0]))),
            "u__herd": (("chain", "draw", "level", "e"), np.broadcast_to(u[:, None], (*shape, u.size, 1))),
        },
    )
    return MixedFit(spec, idata, sampler="none", chains=CHAINS, draws=DRAWS, tune=0)


def _check_within_mc_error(table: pd.DataFrame, reference: np.ndarray) -> None:
    """Means of DRAWS x CHAINS conditional draws: within z (Bonferroni over the rows) Monte Carlo SEs."""
    se = table["sd"].to_numpy() / np.sqrt(CHAINS * DRAWS)
    z = np.abs(table["mean"].to_numpy() - reference) / np.maximum(se, 1e-12)
    assert z.max() <= bonferroni_z(len(reference)), z.max()


def test_fitted_and_predict_match_lme4_on_sleepstudy(sleep_fit) -> None:
    fitted = sleep_fit.fitted()
    assert list(fitted.index) == list(range(180))
    _check_within_mc_error(fitted, _reference("sleepstudy", "fitted", "conditional", "response"))
    new = sleep_fit.predict(SLEEP_NEW, allow_new_levels=True)
    _check_within_mc_error(new, _reference("sleepstudy", "new", "conditional", "response"))
    population = sleep_fit.predict(SLEEP_NEW, re_form="~0")
    np.testing.assert_allclose(population["mean"], _reference("sleepstudy", "new", "population", "response"))
    assert (population["sd"] < 1e-9).all()  # the fixed effects are one point here


def test_coef_matches_lme4_on_sleepstudy(sleep_fit) -> None:
    (table,) = sleep_fit.coef().values()
    reference = pd.read_csv(LME4 / "sleepstudy_coef.csv", dtype={"Subject": str}).set_index("Subject")
    assert list(table.columns) == ["(Intercept)", "Days"]
    # conditional SDs of the subjects' effects are about 12 (intercept) and 2.3 (slope): 2,000 draws put
    # the means within 4 x 12 / sqrt(2000) = 1.1 and 0.2 of lme4's conditional modes
    difference = (table - reference.loc[table.index]).abs()
    assert difference["(Intercept)"].max() < 1.1 and difference["Days"].max() < 0.2


def test_predict_matches_lme4_for_a_binomial_model(cbpp_fit) -> None:
    fitted = cbpp_fit.fitted()
    np.testing.assert_allclose(
        fitted["mean"], _reference("cbpp", "fitted", "conditional", "response"), rtol=1e-6
    )
    link = cbpp_fit.predict(CBPP_NEW, type="link")
    np.testing.assert_allclose(link["mean"], _reference("cbpp", "new", "conditional", "link"), rtol=1e-6)
    population = cbpp_fit.predict(CBPP_NEW, re_form="~0")
    np.testing.assert_allclose(
        population["mean"], _reference("cbpp", "new", "population", "response"), rtol=1e-6
    )


def test_bad_prediction_requests_are_explained(sleep_fit) -> None:
    with pytest.raises(DataError, match="allow_new_levels=True"):
        sleep_fit.predict(SLEEP_NEW)  # subject 999 is new
    with pytest.raises(DataError, match="cannot evaluate"):
        sleep_fit.predict(SLEEP_NEW.drop(columns="Days"))
    with pytest.raises(DataError, match="no column 'Subject'"):
        sleep_fit.predict(SLEEP_NEW.drop(columns="Subject"))
    with pytest.raises(ModelSpecificationError, match="re_form"):
        sleep_fit.predict(re_form="~(1 | Subject)")
    with pytest.raises(ModelSpecificationError, match="'link' or 'response'"):
        sleep_fit.predict(type="probability")
