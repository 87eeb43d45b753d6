"""MCMCglmm's prior forms (``prior={"B", "R", "G"}``): the built model's prior draws against closed forms.

No sampling of a posterior: ``pm.draw`` draws from the prior of the PyMC model that ``mixed_model`` builds,
and each parameter's prior draws are compared with the distribution MCMCglmm's documentation gives for that
prior (Kolmogorov-Smirnov tests at a small level, or moments within Monte Carlo error).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from reference import REFERENCE
from scipy import stats
from test_mixed_model import check_sleepstudy_against_lme4

from pymlsem.exceptions import PriorError
from pymlsem.mlm.api import mixed_model

SLEEP = pd.read_csv(REFERENCE / "data" / "sleepstudy.csv")
N_DRAWS = 4000


def _prior_draws(spec, names: list[str]) -> list[np.ndarray]:
    variables = [spec.model[name] for name in names]
    return pm.draw(variables, draws=N_DRAWS, random_seed=11, mode="FAST_COMPILE")


def _ks_ok(sample: np.ndarray, cdf) -> bool:
    # p > 0.001: a correct prior fails this about once in a thousand runs (the seed is fixed anyway)
    return stats.kstest(sample, cdf).pvalue > 1e-3


def test_r_prior_is_inverse_gamma_on_the_residual_variance() -> None:
    spec = mixed_model("Reaction ~ Days + (1 | Subject)", SLEEP, prior={"R": {"V": 2.0, "nu": 5}})
    (sigma,) = _prior_draws(spec, ["sigma"])
    assert _ks_ok(sigma**2, stats.invgamma(a=2.5, scale=5.0).cdf)


def test_g_prior_on_a_variance_is_inverse_gamma() -> None:
    spec = mixed_model("Reaction ~ Days + (1 | Subject)", SLEEP, prior={"G": {"G1": {"V": 3.0, "nu": 4}}})
    (sd,) = _prior_draws(spec, ["sd__Subject"])
    assert _ks_ok(sd[:, 0] ** 2, stats.invgamma(a=2.0, scale=6.0).cdf)


def test_g_prior_on_a_covariance_is_mcmcglmms_inverse_wishart() -> None:
    v = np.array([[1.0, 0.3], [0.3, 2.0]])
    nu = 6.0
    spec = mixed_model("Reaction ~ Days + (Days | Subject)", SLEEP, prior={"G": {"G1": {"V": v, "nu": nu}}})
    sd, corr = _prior_draws(spec, ["sd__Subject", "corr__Subject"])
    cov = corr * sd[:, :, None] * sd[:, None, :]
    # IW(scale = nu V, df = nu): E[G] = nu V / (nu - q - 1), and each variance is
    # InverseGamma((nu - q + 1) / 2, nu V_ii / 2)
    reference = stats.invwishart(df=nu, scale=nu * v).rvs(size=N_DRAWS, random_state=3)
    np.testing.assert_allclose(np.median(cov, axis=0), np.median(reference, axis=0), rtol=0.1, atol=0.03)
    for i in range(2):
        assert _ks_ok(cov[:, i, i], stats.invgamma(a=(nu - 1) / 2, scale=nu * v[i, i] / 2).cdf)
    # the correlation's distribution matches too (two-sample KS against scipy's inverse-Wishart draws)
    ref_corr = reference[:, 0, 1] / np.sqrt(reference[:, 0, 0] * reference[:, 1, 1])
    assert stats.ks_2samp(corr[:, 0, 1], ref_corr).pvalue > 1e-3


def test_parameter_expanded_prior_gives_a_half_cauchy_sd() -> None:
    prior = {"G": {"G1": {"V": 1, "nu": 1, "alpha.mu": 0, "alpha.V": 25}}}
    spec = mixed_model("Reaction ~ Days + (1 | Subject)", SLEEP, prior=prior)
    (sd,) = _prior_draws(spec, ["sd__Subject"])
    assert _ks_ok(sd[:, 0], stats.halfcauchy(scale=5.0).cdf)


def test_b_prior_is_multivariate_normal_on_the_data_scale() -> None:
    mu, cov = np.array([250.0, 10.0]), np.array([[100.0, 5.0], [5.0, 4.0]])
    spec = mixed_model("Reaction ~ Days + (1 | Subject)", SLEEP, prior={"B": {"mu": mu, "V": cov}})
    (fixef,) = _prior_draws(spec, ["fixef"])
    z = (fixef.mean(axis=0) - mu) / np.sqrt(np.diag(cov) / N_DRAWS)
    assert np.abs(z).max() < 4
    np.testing.assert_allclose(np.cov(fixef.T), cov, rtol=0.1, atol=0.5)


def test_glmm_takes_b_and_g_priors() -> None:
    cbpp = pd.read_csv(REFERENCE / "data" / "cbpp.csv").astype({"period": str, "herd": str})
    prior = {"B": {"mu": 0, "V": 4}, "G": {"G1": {"V": 1, "nu": 3}}}
    spec = mixed_model(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, "binomial", prior=prior
    )
    fixef, sd = _prior_draws(spec, ["fixef", "sd__herd"])
    assert fixef.shape == (N_DRAWS, 4)
    np.testing.assert_allclose(fixef.std(axis=0), 2.0, rtol=0.1)
    assert _ks_ok(sd[:, 0] ** 2, stats.invgamma(a=1.5, scale=1.5).cdf)


@pytest.mark.parametrize(
    ("prior", "message"),
    [
        ({"Q": {}}, "unknown key"),
        ({"G": {"G2": {"V": 1, "nu": 1}}}, "G1 = \\(\\(Intercept\\) \\+ Days \\| Subject\\)"),
        ({"G": {"G1": {"V": 1}}}, "give both V and nu"),
        ({"G": {"G1": {"V": [[1, 2], [2, 1]], "nu": 3}}}, "positive definite"),
        ({"G": {"G1": {"V": np.eye(3), "nu": 3}}}, "2 x 2"),
        ({"G": {"G1": {"V": np.eye(2), "nu": 0.5}}}, "nu must exceed 1"),
        ({"G": {"G1": {"V": 1, "nu": 2, "alpha.mu": 0}}}, "both alpha.mu and alpha.V"),
        ({"B": {"mu": [1, 2, 3], "V": 1}}, "expected 2 values"),
        ({"R": {"V": 1, "nu": 0}}, "nu must be positive"),
    ],
)
def test_bad_priors_are_our_errors(prior: dict, message: str) -> None:
    with pytest.raises(PriorError, match=message):
        mixed_model("Reaction ~ Days + (Days | Subject)", SLEEP, prior=prior)


def test_r_prior_is_refused_for_non_gaussian_families() -> None:
    cbpp = pd.read_csv(REFERENCE / "data" / "cbpp.csv")
    with pytest.raises(PriorError, match=r"for family=.gaussian. only"):
        mixed_model(
            "cbind(incidence, size - incidence) ~ period + (1 | herd)",
            cbpp,
            "binomial",
            prior={"R": {"V": 1, "nu": 0.002}},
        )


@pytest.mark.sampling
def test_book_style_prior_fit_agrees_with_lme4() -> None:
    """The book's parameter-expanded G prior and weak R prior: fixed effects stay at lme4's (180 rows)."""
    from pymlsem.mlm.api import mixed

    prior = {
        "R": {"V": 1, "nu": 0.002},
        "G": {"G1": {"V": np.eye(2), "nu": 2, "alpha.mu": [0, 0], "alpha.V": np.diag([1000.0, 1000.0])}},
    }
    fit = mixed(
        "Reaction ~ Days + (Days | Subject)",
        SLEEP,
        prior=prior,
        draws=500,
        tune=500,
        chains=2,
        random_seed=5,
        progressbar=False,
    )
    # MCMCglmm's B prior has variance 1e10: the fit must agree with lme4 as the default priors' does
    check_sleepstudy_against_lme4(fit)
