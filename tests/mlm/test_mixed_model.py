"""The PyMC mixed model and its fit object: wiring checked at lme4's estimates, summaries on known draws."""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytest
import xarray as xr
from reference import REFERENCE
from scipy.stats import gamma, invgamma, kstest, norm
from tolerances import LMM_FIXEF_ALLOWANCE, check_close, mcse, mle_allowance

from pymlsem.exceptions import DataError, ModelSpecificationError, PriorError
from pymlsem.mlm.api import mixed, mixed_model
from pymlsem.mlm.fit import MixedFit
from pymlsem.mlm.model import BuiltMixedModel
from tests.mlm.test_mixed_loglik import CASES, DATA, LME4, MODE, lme4_estimates


def _data(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / f"{CASES[name][0]}.csv")


def _standardised_point(spec: BuiltMixedModel, name: str) -> dict[str, np.ndarray]:
    """lme4's ML estimates expressed as values of the model's standardised random variables."""
    design = spec.design
    beta, sigma, covs = lme4_estimates(name, design)
    y_sd = design.y.std(ddof=1)
    x_sd = design.x.std(axis=0, ddof=1)
    point = {
        # the default intercept prior is on the intercept at the predictors' means (intercept_shift)
        "intercept_std": np.array(
            (beta[0] + design.x[:, 1:].mean(axis=0) @ beta[1:] - design.y.mean()) / y_sd
        ),
        "fixef_std": beta[1:] * x_sd[1:] / y_sd,
        "sigma_std": np.array(sigma / y_sd),
    }
    for block, label, cov in zip(design.blocks, spec.labels, covs, strict=True):
        sd = np.sqrt(np.diag(cov))
        z_sd = block.z.std(axis=0, ddof=1)
        scale = np.where(np.array(block.names) == "(Intercept)", y_sd, y_sd / np.where(z_sd > 0, z_sd, 1.0))
        point[f"sd_std__{label}"] = sd / scale
        if block.correlated and block.q > 1:
            point[f"corr_chol__{label}"] = np.linalg.cholesky(cov / np.outer(sd, sd))
    return point


def _evaluate_at(spec: BuiltMixedModel, expression, point: dict[str, np.ndarray]) -> float:
    replace = {rv: pytensor.tensor.as_tensor_variable(point[rv.name]) for rv in spec.model.free_RVs}
    (value,) = pytensor.graph.replace.graph_replace([expression], replace, strict=False)
    return float(value.eval(mode=MODE))


@pytest.mark.parametrize("name", ["sleepstudy_ml", "sleepstudy_uncorrelated_ml", "reading_public_rs_ml"])
def test_marginal_model_potential_is_lme4_loglik(name: str) -> None:
    spec = mixed_model(CASES[name][1], _data(name))
    (potential,) = spec.model.potentials
    expected = pd.read_csv(LME4 / f"{name}_loglik.csv")["logLik"].iloc[0]
    value = _evaluate_at(spec, potential, _standardised_point(spec, name))
    np.testing.assert_allclose(value, expected, rtol=1e-9)


def test_latent_model_mean_at_zero_effects() -> None:
    name = "sleepstudy_ml"
    spec = mixed_model(CASES[name][1], _data(name), method="latent")
    point = _standardised_point(spec, name)
    point["z__Subject"] = np.zeros((18, 2))
    logp = pm.logp(spec.model["y"], spec.design.y).sum()
    replace = {rv: pytensor.tensor.as_tensor_variable(point[rv.name]) for rv in spec.model.free_RVs}
    (expr,) = pytensor.graph.replace.graph_replace([logp], replace, strict=False)
    beta, sigma, _ = lme4_estimates(name, spec.design)
    expected = norm(spec.design.x @ beta, sigma).logpdf(spec.design.y).sum()
    np.testing.assert_allclose(float(expr.eval(mode=MODE)), expected, rtol=1e-9)


def test_model_variables_and_coords() -> None:
    spec = mixed_model("Reaction ~ Days + (Days | Subject)", _data("sleepstudy_ml"))
    model = spec.model
    assert list(model.coords["term"]) == ["(Intercept)", "Days"]
    assert list(model.coords["Subject__effect"]) == ["(Intercept)", "Days"]
    assert {"fixef", "sigma", "sd__Subject", "corr__Subject"} <= set(model.named_vars)
    uncorrelated = mixed_model("Reaction ~ Days + (Days || Subject)", _data("sleepstudy_ml"))
    assert "corr__Subject" not in uncorrelated.model.named_vars


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"family": "gamma"}, ModelSpecificationError, "family"),
        ({"family": "poisson"}, DataError, "non-integer"),
        ({"method": "laplace"}, ModelSpecificationError, "unknown method"),
        ({"priors": {"slopes": "normal(0,1)"}}, PriorError, "unknown priors"),
        ({"priors": {"sd": "normal(0,1)"}}, PriorError, "positive"),
        ({"priors": {"lkj_eta": -1}}, PriorError, "lkj_eta"),
    ],
)
def test_model_errors(kwargs: dict, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        mixed_model("Reaction ~ Days + (Days | Subject)", _data("sleepstudy_ml"), **kwargs)


def test_a_model_without_random_effects_is_a_regression_built_as_itself() -> None:
    spec = mixed_model("Reaction ~ Days", _data("sleepstudy_ml"))
    assert spec.method == "latent" and spec.likelihood.startswith("no random effects")
    assert {rv.name for rv in spec.model.free_RVs} == {"intercept_std", "fixef_std", "sigma_std"}


def _fake_fit(spec: BuiltMixedModel, rng: np.random.Generator, chains: int = 2, draws: int = 50) -> MixedFit:
    """A fit whose posterior is random draws of the right shapes (no sampling)."""
    design = spec.design
    posterior = {
        "fixef": xr.DataArray(
            rng.normal(size=(chains, draws, len(design.fixed_names))),
            dims=("chain", "draw", "term"),
            coords={"term": list(design.fixed_names)},
        ),
        "sigma": xr.DataArray(rng.gamma(5.0, size=(chains, draws)), dims=("chain", "draw")),
    }
    for block, label in zip(design.blocks, spec.labels, strict=True):
        dim = f"{label}__effect"
        posterior[f"sd__{label}"] = xr.DataArray(
            rng.gamma(5.0, size=(chains, draws, block.q)), dims=("chain", "draw", dim)
        )
        if block.correlated and block.q > 1:
            corr = np.broadcast_to(np.eye(block.q), (chains, draws, block.q, block.q)).copy()
            corr[..., 0, 1] = corr[..., 1, 0] = rng.uniform(-1, 1, size=(chains, draws))
            posterior[f"corr__{label}"] = xr.DataArray(corr, dims=("chain", "draw", dim, f"{dim}_"))
    idata = types.SimpleNamespace(posterior=xr.Dataset(posterior))
    return MixedFit(spec, idata, sampler="none", chains=chains, draws=draws, tune=0)


@pytest.mark.parametrize("name", ["sleepstudy_ml", "sleepstudy_uncorrelated_ml", "reading_public_ri_ml"])
def test_varcorr_has_lme4_layout(name: str) -> None:
    spec = mixed_model(CASES[name][1], _data(name))
    fit = _fake_fit(spec, np.random.default_rng(0))
    table = fit.varcorr()
    expected = pd.read_csv(LME4 / f"{name}_varcorr.csv")
    pd.testing.assert_frame_equal(
        table[["grp", "var1", "var2"]], expected[["grp", "var1", "var2"]], check_dtype=False
    )
    assert {"vcov", "sdcor", "q2.5", "q97.5", "r_hat", "ess_bulk", "ess_tail"} <= set(table.columns)


def test_varcorr_values_are_posterior_means() -> None:
    spec = mixed_model("Reaction ~ Days + (Days | Subject)", _data("sleepstudy_ml"))
    fit = _fake_fit(spec, np.random.default_rng(1))
    table = fit.varcorr()
    post = fit.idata.posterior
    sd, corr, sigma = post["sd__Subject"].values, post["corr__Subject"].values, post["sigma"].values
    np.testing.assert_allclose(
        table["sdcor"], [sd[..., 0].mean(), sd[..., 1].mean(), corr[..., 0, 1].mean(), sigma.mean()]
    )
    np.testing.assert_allclose(
        table["vcov"],
        [
            (sd[..., 0] ** 2).mean(),
            (sd[..., 1] ** 2).mean(),
            (corr[..., 0, 1] * sd[..., 0] * sd[..., 1]).mean(),
            (sigma**2).mean(),
        ],
    )
    np.testing.assert_allclose(table["q97.5"].iloc[-1], np.quantile(sigma, 0.975))


def test_fixef_summary_and_pmcmc() -> None:
    spec = mixed_model("Reaction ~ Days + (Days | Subject)", _data("sleepstudy_ml"))
    fit = _fake_fit(spec, np.random.default_rng(2))
    table = fit.fixef()
    draws = fit.idata.posterior["fixef"].values
    assert list(table.index) == ["(Intercept)", "Days"]
    np.testing.assert_allclose(table["mean"], draws.mean(axis=(0, 1)))
    share = (draws > 0).mean(axis=(0, 1))
    np.testing.assert_allclose(table["pmcmc"], 2 * np.minimum(share, 1 - share))
    assert {"sd", "q2.5", "q97.5", "ess_bulk", "r_hat"} <= set(table.columns)


def fit_sleepstudy(**settings: Any) -> MixedFit:
    """``Reaction ~ Days + (Days | Subject)`` fitted to sleepstudy by :func:`pymlsem.mixed` with
    ``settings`` (sampler settings, priors), without a progress bar."""
    return mixed("Reaction ~ Days + (Days | Subject)", _data("sleepstudy_ml"), progressbar=False, **settings)


@pytest.mark.sampling
def test_sleepstudy_posterior_near_lme4() -> None:
    fit = fit_sleepstudy(draws=500, tune=500, chains=2, random_seed=11)
    check_sleepstudy_against_lme4(fit)
    # seconds per stage, as an SEM fit has them: the stages add up to at most the whole
    timings = fit.timings
    assert timings.total >= timings.build + timings.compile + timings.sampling
    assert min(timings.build, timings.compile) >= 0 and timings.sampling > 0


def check_sleepstudy_against_lme4(fit: MixedFit) -> None:
    """``Reaction ~ Days + (Days | Subject)`` with weak priors against lme4's ML fit (tests/tolerances.py).

    Fixed effects within z sqrt(mcse^2 + (0.1 SE)^2) of lme4's (about 0.3 SE), the residual SD's posterior
    median within K_MLE / sqrt(180) posterior SDs (about 1.4) of lme4's 25.59, z over the 3: Days 20% off
    (1.4 SE), a residual SD 20% off or the residual variance in place of the SD fails.
    """
    table = fit.fixef()
    lme4 = pd.read_csv(REFERENCE / "lme4" / "sleepstudy_ml_fixef.csv").set_index("term")
    assert list(table.index) == list(lme4.index)
    assert np.all(table["r_hat"] < 1.05)
    sigma = fit.idata.posterior["sigma"]
    check_close(
        [*table["mean"], float(sigma.median())],
        [*lme4["est"], 25.59],
        [*mcse(fit.idata.posterior["fixef"]), *mcse(sigma, "median")],
        [*(LMM_FIXEF_ALLOWANCE * lme4["se"]), *mle_allowance(float(sigma.std()), 180)],
        labels=[*table.index, "Residual"],
    )


@pytest.mark.parametrize(
    ("formula", "groups"),
    [
        ("y ~ x + (1 | g) + (0 + x | g)", ["g", "g.1", "Residual"]),
        ("y ~ x + (1 + x || g) + (1 | h)", ["g", "g.1", "h", "Residual"]),
        ("y ~ x + (1 | g/h)", ["g", "g:h", "Residual"]),
    ],
)
def test_varcorr_groups_follow_lme4(formula: str, groups: list[str]) -> None:
    rng = np.random.default_rng(5)
    data = pd.DataFrame(
        {
            "y": rng.normal(size=40),
            "x": rng.normal(size=40),
            "g": rng.choice(list("abcd"), 40),
            "h": rng.choice(list("uv"), 40),
        }
    )
    spec = mixed_model(formula, data)
    assert list(_fake_fit(spec, rng).varcorr()["grp"]) == groups


@pytest.mark.sampling
def test_mcmcglmm_controls_thin_the_stored_draws() -> None:
    fit = fit_sleepstudy(nitt=700, burnin=200, thin=5, chains=2, random_seed=1)
    assert fit.idata.posterior.sizes["draw"] == 100 and fit.thin == 5
    assert "Iterations = 201:696" in fit.summary() and "Thinning interval  = 5" in fit.summary()


# --- per-term priors (data scale) -------------------------------------------------------------------


def test_per_term_priors_are_on_the_data_scale() -> None:
    sleep = pd.read_csv(REFERENCE / "data" / "sleepstudy.csv")
    spec = mixed_model(
        "Reaction ~ Days + (Days | Subject)",
        sleep,
        priors={"fixef:Days": "normal(10,2)", "sd:Subject": "halfnormal(30)"},
    )
    fixef, sd = pm.draw(
        [spec.model["fixef"], spec.model["sd__Subject"]], draws=4000, random_seed=2, mode="FAST_COMPILE"
    )
    days = fixef[:, list(spec.design.fixed_names).index("Days")]
    assert abs(days.mean() - 10) < 4 * 2 / np.sqrt(4000)
    assert abs(days.std() - 2) < 0.1
    # halfnormal(30): mean 30 sqrt(2 / pi) for both effects of the block, whatever the units of Days
    np.testing.assert_allclose(sd.mean(axis=0), 30 * np.sqrt(2 / np.pi), rtol=0.05)


def test_sd_priors_on_the_variance_or_the_precision() -> None:
    """blavaan's suffixes on an SD's prior: the variance (or precision) carries the prior as written."""
    sleep = pd.read_csv(REFERENCE / "data" / "sleepstudy.csv")
    spec = mixed_model(
        "Reaction ~ Days + (1 | Subject)",
        sleep,
        priors={"sd:Subject": "inv_gamma(3,2000)[var]", "sigma": "gamma(2,1)[prec]"},
    )
    assert {"var__Subject", "tau_std"} <= {v.name for v in spec.model.free_RVs}
    # chains start where the SD is half its unit, not at the prior's mode (MCMCglmm's inv_gamma(0.001,
    # 0.001) on a variance has its mode near 0.001: a residual SD of 25 would start at 0.03)
    start = spec.model.initial_point()
    y_sd = sleep["Reaction"].std()
    np.testing.assert_allclose(np.exp(start["var__Subject_log__"]), (0.5 * y_sd) ** 2)
    np.testing.assert_allclose(np.exp(start["tau_std_log__"]), 0.5**-2)
    sd, sigma = pm.draw(
        [spec.model["sd__Subject"], spec.model["sigma"]], draws=4000, random_seed=2, mode="FAST_COMPILE"
    )
    assert kstest(sd[:, 0] ** 2, invgamma(a=3, scale=2000).cdf).pvalue > 1e-3
    assert kstest((sigma / y_sd) ** -2, gamma(a=2, scale=1).cdf).pvalue > 1e-3
    with pytest.raises(PriorError, match=r"suffix \[var\] is not supported"):
        mixed_model(
            "Reaction ~ Days + (1 | Subject)",
            sleep.assign(Reaction=sleep["Reaction"].round().astype(int)),
            family="negbinomial",
            priors={"overdispersion": "gamma(1,1)[var]"},
        )


@pytest.mark.parametrize(
    ("priors", "message"),
    [
        ({"fixef:Weeks": "normal(0,1)"}, "no fixed-effect term 'Weeks'"),
        ({"sd:School": "halfnormal(1)"}, "no random block 'School'"),
        ({"sd:Subject": "normal(0,1)"}, "positive values"),
    ],
)
def test_per_term_prior_errors(priors: dict, message: str) -> None:
    sleep = pd.read_csv(REFERENCE / "data" / "sleepstudy.csv")
    with pytest.raises(PriorError, match=message):
        mixed_model("Reaction ~ Days + (Days | Subject)", sleep, priors=priors)


# --- formulas without random terms: Bayesian regressions ----------------------------------------------


@pytest.mark.sampling
def test_a_formula_without_random_terms_is_a_regression() -> None:
    """The book's fixed-effects model with cluster dummies: Reaction ~ Days + Subject on sleepstudy. The
    posterior means follow OLS (numpy's least squares) within 0.1 posterior SD plus Monte Carlo error (the
    default priors are weak against 180 rows), pD counts the 20 parameters, LOO is per row."""
    data = pd.read_csv(DATA / "sleepstudy.csv").astype({"Subject": str})
    fit = mixed(
        "Reaction ~ Days + Subject", data, random_seed=4, draws=500, tune=500, chains=2, progressbar=False
    )
    assert fit.method == "no random effects (a Bayesian regression)" and fit.ranef() == {}
    x = fit.spec.design.x
    ols, *_ = np.linalg.lstsq(x, data["Reaction"].to_numpy(), rcond=None)
    table = fit.fixef()
    check_close(
        table["mean"],
        ols,
        mcse(fit.idata.posterior["fixef"]),
        LMM_FIXEF_ALLOWANCE * table["sd"],
        labels=table.index,
    )
    assert abs(fit.dic().pd - 20) < 2  # 19 coefficients and sigma
    assert fit.loo().n_data_points == 180
    assert "Bayesian linear model" in fit.summary(style="lme4") and "groups:" not in fit.summary(style="lme4")
    with pytest.raises(ModelSpecificationError, match="nothing to integrate"):
        mixed_model("Reaction ~ Days", data, method="marginal")


@pytest.mark.sampling
def test_a_poisson_formula_without_random_terms_matches_the_mle() -> None:
    """A Poisson regression: posterior means within K_MLE / sqrt(n) SEs (plus Monte Carlo error) of the
    maximum-likelihood estimates found by scipy from scipy's Poisson log-pmf."""
    from scipy import optimize, stats

    rng = np.random.default_rng(3)
    data = pd.DataFrame({"x": rng.normal(size=300), "g": rng.choice(list("abc"), 300)})
    data["count"] = rng.poisson(np.exp(0.5 + 0.4 * data["x"]))
    fit = mixed(
        "count ~ x + g", data, "poisson", random_seed=1, draws=500, tune=500, chains=2, progressbar=False
    )
    x, y = fit.spec.design.x, data["count"].to_numpy()
    result = optimize.minimize(lambda b: -stats.poisson.logpmf(y, np.exp(x @ b)).sum(), np.zeros(x.shape[1]))
    se = np.sqrt(np.diag(result.hess_inv))
    table = fit.fixef()
    check_close(
        table["mean"],
        result.x,
        mcse(fit.idata.posterior["fixef"]),
        mle_allowance(se, 300),
        labels=table.index,
    )
    assert len(fit.varcorr()) == 0 and "(none)" in fit.summary(style="lme4")
