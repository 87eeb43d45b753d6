"""MCMCglmm's prior forms (``prior={"B", "R", "G"}``): the built model's prior draws against closed forms.

No sampling of a posterior: ``pm.draw`` draws from the prior of the PyMC model that ``mixed_model`` builds,
and each parameter's prior draws are compared with the distribution MCMCglmm's documentation gives for that
prior (Kolmogorov-Smirnov tests at a small level, or moments within Monte Carlo error).
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from reference import REFERENCE
from scipy import integrate, stats
from tolerances import check_close

from pymlsem.engine.run import engine_binding
from pymlsem.exceptions import PriorError
from pymlsem.mlm.api import mixed, mixed_model
from pymlsem.mlm.mcmcglmm_prior import SdCorrelationFactor, expanded_log_density
from pymlsem.priors import Prior
from tests.mlm.test_mixed_families import cbpp_units, check_fixef_against_glmer
from tests.mlm.test_mixed_model import check_sleepstudy_against_lme4, fit_sleepstudy

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


def _expanded_by_definition(v: np.ndarray, nu: float, alpha_v: np.ndarray, seed: int = 5) -> np.ndarray:
    """Draws of G = diag(alpha) G* diag(alpha), G* ~ IW(nu V, nu), alpha ~ N(0, alpha.V), as MCMCglmm
    defines the expanded prior (with the signs of alpha)."""
    rng = np.random.default_rng(seed)
    g_star = (
        stats.invwishart(df=nu, scale=nu * v).rvs(size=N_DRAWS, random_state=rng).reshape(N_DRAWS, *v.shape)
    )
    alpha = rng.multivariate_normal(np.zeros(v.shape[0]), alpha_v, size=N_DRAWS)
    return alpha[:, :, None] * g_star * alpha[:, None, :]


def test_parameter_expanded_priors_are_sampled_as_mcmcglmm_defines_them() -> None:
    """The forms NUTS samples (a half-t SD; a covariance's Cholesky factor with alpha integrated out) give the
    G of MCMCglmm's definition
    (alpha's signs included): two-sample KS on each SD and on the correlation against draws made as
    MCMCglmm defines the prior. Dropping |alpha|'s sign where V is not diagonal would change the
    correlation's distribution; such priors keep alpha as written."""
    variance = {"V": 2.0, "nu": 3, "alpha.mu": 0, "alpha.V": 4.0}
    spec = mixed_model("Reaction ~ Days + (1 | Subject)", SLEEP, prior={"G": {"G1": variance}})
    # a half-t prior on the SD (the per-block SD prior), which the Gaussian engine family samples
    sd_rv = spec.model["sd__Subject"]
    assert sd_rv in spec.model.free_RVs and spec.priors["sd:Subject"] == Prior("halft", (3.0, np.sqrt(8.0)))
    binding, why = engine_binding(spec)
    assert binding is not None and binding.family == "mixed1_q1", why
    (sd,) = _prior_draws(spec, ["sd__Subject"])
    reference = _expanded_by_definition(np.array([[2.0]]), 3.0, np.array([[4.0]]))
    assert stats.ks_2samp(sd[:, 0], np.sqrt(reference[:, 0, 0])).pvalue > 1e-3
    v, alpha_v = np.diag([1.0, 0.5]), np.diag([4.0, 1.0])
    prior = {"G": {"G1": {"V": v, "nu": 4, "alpha.mu": [0, 0], "alpha.V": alpha_v}}}
    spec = mixed_model("Reaction ~ Days + (Days | Subject)", SLEEP, prior=prior)
    sd, corr = _prior_draws(spec, ["sd__Subject", "corr__Subject"])
    reference = _expanded_by_definition(v, 4.0, alpha_v)
    ref_sd = np.sqrt(np.diagonal(reference, axis1=1, axis2=2))
    for i in range(2):
        assert stats.ks_2samp(sd[:, i], ref_sd[:, i]).pvalue > 1e-3
    ref_corr = reference[:, 0, 1] / (ref_sd[:, 0] * ref_sd[:, 1])
    assert stats.ks_2samp(corr[:, 0, 1], ref_corr).pvalue > 1e-3
    # a non-diagonal V: alpha keeps its sign (a normal prior), as written
    prior["G"]["G1"]["V"] = np.array([[1.0, 0.4], [0.4, 0.5]])
    spec = mixed_model("Reaction ~ Days + (Days | Subject)", SLEEP, prior=prior)
    assert spec.model.rvs_to_transforms.get(spec.model["alpha__Subject"]) is None


@pytest.mark.parametrize(
    ("v", "nu", "alpha_v", "factor"),
    [
        ([1.0, 1.0], 2.0, [1000.0, 1000.0], [[0.3, 0.0], [-0.05, 0.19]]),  # the book's prior, reading's G
        ([1.0, 0.5], 4.0, [4.0, 1.0], [[1.2, 0.0], [0.4, 0.6]]),
    ],
)
def test_expanded_density_is_the_integral_over_alpha(v, nu, alpha_v, factor) -> None:
    """The closed form of a symmetric expansion (alpha integrated out) equals the integral over alpha of
    the inverse-Wishart density of diag(alpha)^-1 G diag(alpha)^-1 times |alpha_1 alpha_2|^-3 and alpha's
    normal density, by quadrature (scipy), with the Jacobian of G = L L' added."""
    v, alpha_v, factor = np.diag(v), np.diag(alpha_v), np.array(factor)
    g = factor @ factor.T
    wishart = stats.invwishart(df=nu, scale=nu * v)
    normal = stats.multivariate_normal(np.zeros(2), alpha_v)

    def integrand(a2: float, a1: float) -> float:
        scale = np.diag([1.0 / a1, 1.0 / a2])
        return wishart.pdf(scale @ g @ scale) * abs(a1 * a2) ** -3 * normal.pdf([a1, a2])

    # the integrand is even in each alpha: four times the positive quadrant
    density = 4.0 * integrate.dblquad(integrand, 0, np.inf, 0, np.inf, epsabs=1e-15, epsrel=1e-10)[0]
    jacobian = np.log(4.0) + np.log(factor[0, 0] ** 2 * factor[1, 1])  # 2^q prod_i L_ii^(q - i)
    closed = expanded_log_density(
        pt.as_tensor(factor), nu, pt.as_tensor(nu * np.diag(v)), pt.as_tensor(1.0 / np.diag(alpha_v))
    ).eval()
    np.testing.assert_allclose(closed, np.log(density) + jacobian, rtol=1e-6)


@pytest.mark.parametrize("q", [2, 3])
def test_sd_correlation_factor_jacobian_is_the_determinant_of_its_derivative(q: int) -> None:
    """The log-Jacobian of ``SdCorrelationFactor`` (log SDs and correlation values to the packed Cholesky
    factor) equals log |det| of the transform's derivative by central differences, and forward inverts
    backward."""
    transform = SdCorrelationFactor(q)
    point = np.random.default_rng(q).normal(scale=0.7, size=q * (q + 1) // 2)
    value = pt.vector("value")
    backward = pytensor.function([value], transform.backward(value))
    step = 1e-6
    derivative = np.column_stack(
        [(backward(point + step * e) - backward(point - step * e)) / (2 * step) for e in np.eye(point.size)]
    )
    _, log_det = np.linalg.slogdet(derivative)
    np.testing.assert_allclose(transform.log_jac_det(pt.as_tensor(point)).eval(), log_det, rtol=1e-6)
    np.testing.assert_allclose(transform.forward(pt.as_tensor(backward(point))).eval(), point, atol=1e-10)


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


def test_priors_of_single_parameters_are_pymlsems_own_and_served_by_the_engine() -> None:
    """A diagonal B, R and a G entry on one variance are priors of single parameters: pymlsem's priors=
    entries (so the engine families take them as data); B with correlations stays as written."""
    prior = {
        "B": {"mu": [250.0, 10.0], "V": [1e4, 100.0]},
        "R": {"V": 1, "nu": 0.002},
        "G": {"G1": {"V": 2.0, "nu": 0.5}},
    }
    spec = mixed_model("Reaction ~ Days + (1 | Subject)", SLEEP, prior=prior)
    y_sd = SLEEP["Reaction"].std()
    assert spec.priors["fixef:(Intercept)"] == Prior("normal", (250.0, 100.0))
    assert spec.priors["fixef:Days"] == Prior("normal", (10.0, 10.0))
    assert spec.priors["sd:Subject"] == Prior("inv_gamma", (0.25, 0.5), scale="var")
    sigma = spec.priors["sigma"]
    assert sigma.family == "inv_gamma" and sigma.scale == "var"
    np.testing.assert_allclose(sigma.args, (0.001, 0.001 / y_sd**2), rtol=1e-12)
    assert {v.name for v in spec.model.free_RVs} == {
        "fixef___Intercept_",
        "fixef__Days",
        "sigma2_std",
        "var__Subject",
    }
    binding, why = engine_binding(spec)
    assert binding is not None and binding.family == "mixed1_q1", why
    correlated = {"B": {"mu": 0, "V": [[1e4, 10.0], [10.0, 100.0]]}}
    spec = mixed_model("Reaction ~ Days + (1 | Subject)", SLEEP, prior=correlated)
    assert "fixef:Days" not in spec.priors and "correlated fixed effects" in engine_binding(spec)[1]


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
    prior = {
        "R": {"V": 1, "nu": 0.002},
        "G": {"G1": {"V": np.eye(2), "nu": 2, "alpha.mu": [0, 0], "alpha.V": np.diag([1000.0, 1000.0])}},
    }
    fit = fit_sleepstudy(prior=prior, draws=500, tune=500, chains=2, random_seed=5)
    # MCMCglmm's B prior has variance 1e10: the fit must agree with lme4 as the default priors' does
    check_sleepstudy_against_lme4(fit)


@pytest.mark.sampling
def test_expanded_prior_posterior_matches_mcmcglmm_without_divergences() -> None:
    """The book's parameter-expanded G prior on ``geread ~ gevocab + (1 + gevocab | school)``: MCMCglmm's
    posterior means (reference/mcmcglmm/reading_random_slope.R, 1000 draws) of the fixed effects, the G
    matrix and the residual variance, within z times both Monte Carlo errors (the priors are the same: no
    other allowance), and no divergence. Sampled as written (alpha with its signs) NUTS gave 41 divergences
    in 4000 draws, with |alpha| 0-15; with alpha integrated out and G sampled through its SDs and
    correlations none in 40 seeds (benchmarks/README.md, session 26)."""
    reading = pd.read_csv(REFERENCE / "data" / "reading_public.csv")
    prior = {
        "R": {"V": 1, "nu": 0.002},
        "G": {"G1": {"V": np.eye(2), "nu": 2, "alpha.mu": [0, 0], "alpha.V": np.eye(2) * 1000}},
    }
    fit = mixed(
        "geread ~ gevocab + (1 + gevocab | school)", reading, prior=prior, random_seed=1, progressbar=False
    )
    assert int(fit.idata.sample_stats.diverging.sum()) == 0
    posterior = fit.idata.posterior
    sd, corr = posterior["sd__school"].values, posterior["corr__school"].values[..., 0, 1]
    draws = {
        "(Intercept)": posterior["fixef"].values[..., 0],
        "gevocab": posterior["fixef"].values[..., 1],
        "(Intercept):(Intercept).school": sd[..., 0] ** 2,
        "gevocab:(Intercept).school": corr * sd[..., 0] * sd[..., 1],
        "gevocab:gevocab.school": sd[..., 1] ** 2,
        "units": posterior["sigma"].values ** 2,
    }
    reference = pd.read_csv(REFERENCE / "mcmcglmm" / "reading_random_slope_posterior.csv").set_index("name")
    reference = reference.loc[list(draws)]
    ours = np.array([value.mean() for value in draws.values()])
    our_mcse = np.array([float(az.mcse(value, method="mean")) for value in draws.values()])
    their_mcse = reference["sd"] / np.sqrt(reference["ess"])
    check_close(ours, reference["mean"], np.hypot(our_mcse, their_mcse), 0.0, labels=list(draws))


@pytest.mark.sampling
def test_expanded_prior_on_a_variance_samples_without_divergences() -> None:
    """The book's expanded prior on a binomial random intercept (cbpp; V = 1, nu = 0.002, alpha.V = 1000):
    sampled as written, 496 of 4000 draws diverged; as the half-t SD it is, none (at most 0.1% allowed),
    with the fixed effects at glmer's (reference/lme4, the allowance of the default priors' test)."""
    cbpp = pd.read_csv(REFERENCE / "data" / "cbpp.csv").astype({"period": str, "herd": str})
    prior = {"G": {"G1": {"V": 1, "nu": 0.002, "alpha.mu": 0, "alpha.V": 1000}}}
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    binding, why = engine_binding(mixed_model(formula, cbpp, "binomial", prior=prior))
    assert binding is not None and binding.family == "glmm_binomial_logit", why  # no compile of its own
    fit = mixed(formula, cbpp, "binomial", prior=prior, random_seed=1, progressbar=False)
    assert int(fit.idata.sample_stats.diverging.sum()) <= 4
    check_fixef_against_glmer(fit, "cbpp_binomial", cbpp_units)  # as test_mixed_families' default-prior check
