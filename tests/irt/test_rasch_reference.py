"""The 1PL model (``pymlsem.irt(discrimination="common")``) against lme4's Rasch model of the public VerbAgg
data (316 persons, 24 binary items): ``glmer(y ~ 0 + item + (1 | id), family = binomial, nAGQ = 25)``,
maximum likelihood with the person effect integrated by adaptive Gauss-Hermite quadrature
(tests/data/reference/lme4/verbagg_rasch.R). The two models are the same: glmer's person SD is the common
discrimination ``a`` and its item coefficients are the intercepts ``d_k``."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from graphs import python_thunks
from reference import REFERENCE
from scipy import stats
from tolerances import check_close, mcse, mle_allowance, stack_draws

import pymlsem
from pymlsem.exceptions import ConvergenceWarning, ModelSpecificationError
from pymlsem.irt.data import irt_data
from pymlsem.irt.model import IRTStructure, build_irt_model

LME4 = REFERENCE / "lme4"


def _verbagg() -> tuple[pd.DataFrame, pd.DataFrame, float, float]:
    """The answers (one row per person), glmer's item coefficients with SEs, person SD and log-likelihood."""
    wide = pd.read_csv(REFERENCE / "data" / "VerbAgg_r2_wide.csv")
    fixef = pd.read_csv(LME4 / "verbagg_rasch_fixef.csv")
    sd = float(pd.read_csv(LME4 / "verbagg_rasch_varcorr.csv")["sdcor"].iloc[0])
    loglik = float(pd.read_csv(LME4 / "verbagg_rasch_loglik.csv")["logLik"].iloc[0])
    return wide, fixef, sd, loglik


@pytest.mark.parametrize("n_nodes, tolerance", [(61, 1e-6), (41, 1e-4)])
def test_integrated_log_likelihood_equals_glmers_quadrature(n_nodes: int, tolerance: float) -> None:
    """At glmer's estimates the model's log-likelihood (its potential, the trait integrated on the grid) is
    glmer's maximized log-likelihood, -4036.905: within 1e-6 at the default 61 grid points (measured 2e-11;
    41 points: 3e-6, 31 points: 3e-3). A discrimination applied to only some items, an intercept on the
    wrong item or the probit link would move it by tens to hundreds."""
    wide, fixef, sd, loglik = _verbagg()
    data = irt_data(wide, list(fixef["term"]))
    model = build_irt_model(data, IRTStructure(n_nodes, False, common_discrimination=True))
    assert model["discrimination"].ndim == 0  # one discrimination, not one per item
    point = {"discrimination_log__": np.log(sd), "intercept": fixef["est"].to_numpy()}
    with python_thunks():
        value = model.compile_logp()(point)
    # the priors: log-normal discrimination (with its log transform's Jacobian), normal intercepts
    prior = stats.lognorm(1.0).logpdf(sd) + np.log(sd) + stats.norm(0, 5).logpdf(point["intercept"]).sum()
    assert float(value) - prior == pytest.approx(loglik, abs=tolerance)


def test_an_unknown_discrimination_is_refused() -> None:
    wide, fixef, _, _ = _verbagg()
    with pytest.raises(ModelSpecificationError, match="discrimination must be 'item'"):
        pymlsem.irt(wide, list(fixef["term"]), discrimination="rasch")


@pytest.mark.sampling
def test_1pl_posterior_agrees_with_glmer() -> None:
    """Posterior means of the 24 intercepts and the common discrimination against glmer's ML estimates and
    SEs: the allowance for a posterior mean against an MLE from 316 persons (``K_MLE / sqrt(n)`` SEs,
    tests/tolerances.py; the person SD's SE is taken as its posterior SD, glmer printing none) plus Monte
    Carlo error. A probit link would shrink every coefficient by about 1.7 (d's SEs are 0.15-0.17, the
    values up to 3.5 in size), an item's intercept read from another column moves it by 0.2-2."""
    wide, fixef, sd, _ = _verbagg()
    items = list(fixef["term"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit = pymlsem.irt(
            wide,
            items,
            discrimination="common",
            draws=1000,
            tune=1000,
            chains=4,  # two judge R-hat <= 1.01 by chance (tests/irt/test_irt.py's 2PL test)
            random_seed=11,
            progressbar=False,
        )
    posterior = fit.idata.posterior
    parts = [posterior["intercept"].isel(binary_item=k) for k in range(len(items))]
    parts.append(posterior["discrimination"])
    draws = stack_draws(parts)
    se = np.append(fixef["se"].to_numpy(), float(posterior["discrimination"].std()))
    check_close(
        draws.mean(("chain", "draw")),
        np.append(fixef["est"].to_numpy(), sd),
        mcse(draws),
        mle_allowance(se, len(wide)),
        labels=[*items, "a"],
    )
    table = fit.item_parameters()
    a_rows = table[table["parameter"] == "a"]
    assert len(a_rows) == len(items) and np.allclose(a_rows["mean"], a_rows["mean"].iloc[0])
    assert "1PL" in fit.summary() and fit.grid_error() < 1e-3
