"""GLMM families: response checks, model structure, likelihood wiring, and a few small sampling runs."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytest
from reference import REFERENCE
from scipy import stats
from scipy.special import expit
from tolerances import SAMPLE_DIMS, check_close, check_truth, mcse, mle_allowance, stack_draws

import pymlsem.mlm.api as api
from pymlsem.exceptions import DataError, ModelSpecificationError, PriorError
from pymlsem.mlm.api import mixed, mixed_model
from pymlsem.mlm.glmm_fit import GLMMFit
from pymlsem.mlm.predict import linear_predictor_draws
from pymlsem.workflow.pointwise import pointwise_log_likelihood

MODE = "FAST_COMPILE"
LME4 = REFERENCE / "lme4"
DATA = REFERENCE / "data"


def _cbpp() -> pd.DataFrame:
    data = pd.read_csv(DATA / "cbpp.csv")
    return data.assign(period=data["period"].astype(str), herd=data["herd"].astype(str))


def _grouseticks() -> pd.DataFrame:
    data = pd.read_csv(DATA / "grouseticks.csv")
    return data.assign(YEAR=data["YEAR"].astype(str), BROOD=data["BROOD"].astype(str))


def _simulated(seed: int = 1, groups: int = 20, size: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = groups * size
    data = pd.DataFrame({"g": np.repeat([f"g{k}" for k in range(groups)], size), "x": rng.normal(size=n)})
    data["count"] = rng.poisson(np.exp(0.5 + 0.3 * data["x"]))
    data["code"] = rng.integers(1, 5, n)
    data["binary"] = (data["x"] + rng.normal(size=n) > 0).astype(int)
    data["exposure"] = rng.uniform(1.0, 3.0, n)
    return data


def _logp_at_initial_point(model: pm.Model) -> float:
    return float(model.compile_logp(mode=MODE)(model.initial_point()))


def _observed_logp(model: pm.Model, point: dict[str, np.ndarray]) -> float:
    """Log-likelihood of ``y`` with the free variables replaced by ``point`` (others at the initial point)."""
    start = model.initial_point()
    replace = {}
    for rv in model.free_RVs:
        value = point.get(rv.name)
        if value is None:
            value = start[model.rvs_to_values[rv].name]
            transform = model.rvs_to_transforms.get(rv)
            if transform is not None:
                raw = pytensor.tensor.as_tensor_variable(value)
                value = transform.backward(raw).eval(mode="FAST_COMPILE")
        replace[rv] = pytensor.tensor.as_tensor_variable(np.asarray(value, dtype=float))
    logp = pm.logp(model["y"], model["y_obs"]).sum()
    (expr,) = pytensor.graph.replace.graph_replace([logp], replace, strict=False)
    return float(expr.eval(mode=MODE))


# --- response checks: DataError / ModelSpecificationError before anything is compiled -----------------


@pytest.fixture
def no_sampling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the sampler was reached")

    monkeypatch.setattr(api, "sample_mixed", refuse)


@pytest.mark.parametrize(
    ("change", "family", "match"),
    [
        ({"count": -1}, "poisson", "negative"),
        ({"count": 1.5}, "poisson", "non-integer"),
        ({"count": 2.5}, "negbinomial", "non-integer"),
        ({"binary": 2}, "bernoulli", "0/1"),
    ],
)
def test_bad_response_values_raise_data_error(no_sampling, change, family, match) -> None:
    data = _simulated()
    column, value = next(iter(change.items()))
    data[column] = data[column].astype(float)
    data.loc[3, column] = value
    with pytest.raises(DataError, match=match):
        mixed(f"{column} ~ x + (1 | g)", data, family, progressbar=False)


def test_binomial_successes_above_trials(no_sampling) -> None:
    data = _cbpp()
    data.loc[5, "incidence"] = data.loc[5, "size"] + 1
    with pytest.raises(DataError, match="more successes than trials"):
        mixed("incidence ~ period + (1 | herd)", data, "binomial", trials="size", progressbar=False)
    with pytest.raises(DataError, match="negative"):  # failures = size - incidence < 0
        mixed("cbind(incidence, size - incidence) ~ period + (1 | herd)", data, "binomial")


def test_binomial_non_integer_and_missing_trials(no_sampling) -> None:
    data = _cbpp()
    with pytest.raises(DataError, match="non-integer"):
        mixed("incidence ~ period + (1 | herd)", data, "binomial", trials=data["size"] + 0.5)
    with pytest.raises(ModelSpecificationError, match="number of trials"):
        mixed("incidence ~ period + (1 | herd)", data, "binomial")
    with pytest.raises(ModelSpecificationError, match="family='binomial'"):
        mixed("cbind(incidence, size - incidence) ~ period + (1 | herd)", data, "poisson")


def test_ordinal_needs_three_ordered_categories(no_sampling) -> None:
    data = _simulated()
    with pytest.raises(DataError, match="bernoulli"):
        mixed("binary ~ x + (1 | g)", data, "ordinal")
    data["label"] = pd.Categorical(np.array(["a", "b", "c"])[data["code"] % 3])
    with pytest.raises(DataError, match="unordered"):
        mixed("label ~ x + (1 | g)", data, "ordinal")
    with pytest.raises(DataError, match="ordered pandas Categorical"):
        mixed("label ~ x + (1 | g)", data.assign(label=data["label"].astype(str)), "ordinal")


def test_family_link_and_method_are_checked() -> None:
    data = _simulated()
    with pytest.raises(ModelSpecificationError, match="unknown family"):
        mixed_model("count ~ x + (1 | g)", data, "gamma")
    with pytest.raises(ModelSpecificationError, match="link"):
        mixed_model("count ~ x + (1 | g)", data, "poisson", link="logit")
    with pytest.raises(ModelSpecificationError, match="latent"):
        mixed_model("count ~ x + (1 | g)", data, "poisson", method="marginal")
    with pytest.raises(DataError, match="offset 'g' must be numeric"):
        mixed_model("count ~ x + offset(g) + (1 | g)", data, "poisson")
    with pytest.raises(ModelSpecificationError, match="non-Gaussian"):
        mixed_model("count ~ x + (1 | g)", data, offset="exposure")
    with pytest.raises(PriorError, match="unknown priors"):
        mixed_model("count ~ x + (1 | g)", data, "poisson", priors={"cutpoints": "normal(0,1)"})


# --- model structure ---------------------------------------------------------------------------------

FAMILY_CASES = {
    "binomial": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", _cbpp, {}),
    "bernoulli_probit": ("binary ~ x + (1 | g)", _simulated, {"link": "probit"}),
    "bernoulli": ("binary ~ x + (x | g)", _simulated, {}),
    "poisson": ("TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)", _grouseticks, {}),
    "negbinomial": ("count ~ x + offset(log(exposure)) + (1 | g)", _simulated, {}),
    "ordinal": ("code ~ x + (1 | g)", _simulated, {}),
    "ordinal_probit": ("code ~ x + (1 | g)", _simulated, {"link": "probit"}),
}


@pytest.mark.parametrize("case", list(FAMILY_CASES))
def test_logp_is_finite_at_the_initial_point(case: str) -> None:
    formula, data, kwargs = FAMILY_CASES[case]
    family = case.split("_")[0]
    spec = mixed_model(formula, data(), family, **kwargs)
    assert spec.family == family and spec.method == "latent"
    assert np.isfinite(_logp_at_initial_point(spec.model))
    names = {rv.name for rv in spec.model.free_RVs}
    assert {f"z__{label}" for label in spec.labels} <= names
    assert ("overdispersion_std" in names) == (family == "negbinomial")
    assert ("cutpoints" in names) == (family == "ordinal")
    assert "sigma" not in spec.model.named_vars


def test_ordinal_cutpoints_are_ordered_and_labelled() -> None:
    data = _simulated()
    data["rating"] = pd.Categorical(
        np.array(["low", "mid", "high"])[data["code"] % 3], categories=["low", "mid", "high"], ordered=True
    )
    spec = mixed_model("rating ~ x + (1 | g)", data, "ordinal")
    model = spec.model
    assert list(model.coords["cutpoint"]) == ["low|mid", "mid|high"]
    assert spec.design.fixed_names == ("x",)  # the cut-points carry the intercept
    np.testing.assert_array_equal(spec.response.y, data["code"].to_numpy() % 3)
    transform = model.rvs_to_transforms[model["cutpoints"]]
    assert isinstance(transform, pm.distributions.transforms.Ordered)
    # any unconstrained value maps to increasing cut-points
    raw = np.random.default_rng(0).normal(size=(5, 2)) * 3
    values = transform.backward(pytensor.tensor.as_tensor_variable(raw)).eval(mode="FAST_COMPILE")
    assert np.all(np.diff(values, axis=-1) > 0)


def test_ordinal_integer_codes_keep_their_order() -> None:
    data = _simulated()
    data["score"] = np.array([1, 2, 5, 9])[data["code"] - 1]
    spec = mixed_model("score ~ x + (1 | g)", data, "ordinal")
    assert list(spec.model.coords["cutpoint"]) == ["1|2", "2|5", "5|9"]
    np.testing.assert_array_equal(spec.response.y, data["code"].to_numpy() - 1)


def test_cbind_and_trials_give_the_same_model() -> None:
    data = _cbpp()
    by_cbind = mixed_model("cbind(incidence, size - incidence) ~ period + (1 | herd)", data, "binomial")
    by_trials = mixed_model("incidence ~ period + (1 | herd)", data, "binomial", trials="size")
    np.testing.assert_array_equal(by_cbind.response.trials, data["size"].to_numpy())
    assert by_cbind.design.fixed_names == ("(Intercept)", "period2", "period3", "period4")
    assert _logp_at_initial_point(by_cbind.model) == pytest.approx(_logp_at_initial_point(by_trials.model))


def test_offset_in_formula_equals_offset_argument() -> None:
    data = _simulated()
    in_formula = mixed_model("count ~ x + offset(log(exposure)) + (1 | g)", data, "poisson")
    as_argument = mixed_model("count ~ x + (1 | g)", data, "poisson", offset=np.log(data["exposure"]))
    np.testing.assert_allclose(in_formula.response.offset, np.log(data["exposure"]))
    point = {"intercept_std": 0.2, "fixef_std": np.array([0.3])}
    with_offset = _observed_logp(in_formula.model, point)
    assert with_offset == pytest.approx(_observed_logp(as_argument.model, point))
    without = mixed_model("count ~ x + (1 | g)", data, "poisson")
    assert with_offset != pytest.approx(_observed_logp(without.model, point))


def test_missing_trials_drop_the_row_with_a_warning() -> None:
    data = _cbpp()
    data.loc[4, "size"] = np.nan
    data.index = data.index + 100
    before = data.copy()
    with pytest.warns(UserWarning, match="1 of 56 rows"):
        spec = mixed_model("incidence ~ period + (1 | herd)", data, "binomial", trials="size")
    pd.testing.assert_frame_equal(data, before)  # the caller's data are not modified
    assert spec.design.nobs == 55 and 104 not in spec.design.rows and 105 in spec.design.rows
    assert spec.design.response == "incidence"


def test_binomial_loglik_at_lme4_fixed_effects() -> None:
    data = _cbpp()
    spec = mixed_model("cbind(incidence, size - incidence) ~ period + (1 | herd)", data, "binomial")
    beta = pd.read_csv(LME4 / "cbpp_binomial_fixef.csv").set_index("term").loc[list(spec.design.fixed_names)]
    beta = beta["est"].to_numpy()
    model = spec.model
    # intercept at the predictors' means = logit(pooled proportion) + t, slope_k = t_k / sd(x_k)
    pooled = data["incidence"].sum() / data["size"].sum()
    center = np.log(pooled / (1 - pooled))
    x_sd = spec.design.x.std(axis=0, ddof=1)
    centred_intercept = beta[0] + spec.design.x[:, 1:].mean(axis=0) @ beta[1:]
    point = {
        "intercept_std": np.array(centred_intercept - center),
        "fixef_std": beta[1:] * x_sd[1:],
        "z__herd": np.zeros((15, 1)),
    }
    expected = stats.binom(data["size"], expit(spec.design.x @ beta)).logpmf(data["incidence"]).sum()
    assert _observed_logp(model, point) == pytest.approx(expected, rel=1e-9)


def test_negbinomial_loglik_matches_scipy() -> None:
    data = _simulated()
    spec = mixed_model("count ~ x + (1 | g)", data, "negbinomial", offset="exposure")
    model = spec.model
    point = {"intercept_std": np.array(0.1), "fixef_std": np.array([0.2]), "overdispersion_std": 0.5}
    point["z__g"] = np.zeros((20, 1))
    eta = np.asarray(
        pytensor.graph.replace.graph_replace(
            [model["fixef"]],
            {
                model[k]: pytensor.tensor.as_tensor_variable(np.asarray(v))
                for k, v in point.items()
                if k != "z__g"
            },
            strict=False,
        )[0].eval(mode=MODE)
    )
    mu = np.exp(spec.design.x @ eta + data["exposure"].to_numpy())
    theta = 1 / 0.5**2
    expected = stats.nbinom(theta, theta / (theta + mu)).logpmf(data["count"]).sum()
    assert _observed_logp(model, point) == pytest.approx(expected, rel=1e-9)


# --- sampling ----------------------------------------------------------------------------------------

SMALL = {"draws": 500, "tune": 500, "chains": 2, "progressbar": False}


@pytest.fixture(scope="module")
def cbpp_fit() -> GLMMFit:
    return mixed(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        _cbpp(),
        "binomial",
        random_seed=3,
        **SMALL,
    )


# Tolerances (tests/tolerances.py): posterior against lme4's Laplace ML fit, allowance K_MLE / sqrt(n) with
# n the independent units behind a parameter; 40,000 draws put every fixed effect of both models within 0.1
# SE of lme4's, and each group SD within 0.5 of its posterior SDs.


def check_fixef_against_glmer(
    fit: GLMMFit, name: str, n: float | Callable[[pd.Index], np.ndarray], *, m: int | None = None
) -> None:
    """The posterior means of ``fit``'s fixed effects against glmer's (reference/lme4/<name>_fixef.csv, in the
    fit's order): within z sqrt(mcse^2 + allowance^2), z over ``m`` comparisons (default: the fixed
    effects), the allowance that of an MLE from ``n`` independent units (a number, or one per fixed effect
    from a function of their names)."""
    reference = pd.read_csv(LME4 / f"{name}_fixef.csv").set_index("term")
    table = fit.fixef()
    check_close(
        table["mean"],
        reference["est"],
        mcse(fit.idata.posterior["fixef"]),
        mle_allowance(reference["se"], n(table.index) if callable(n) else n),
        labels=table.index,
        m=m,
    )


def cbpp_units(terms: pd.Index) -> np.ndarray:
    """The units behind cbpp's fixed effects: the intercept rests on the 15 herds; the period effects are
    contrasts within herds, whose logit likelihood rests on the 99 cases."""
    return np.where(terms == "(Intercept)", 15, 99)


@pytest.mark.sampling
def test_cbpp_fixed_effects_match_lme4(cbpp_fit: GLMMFit) -> None:
    assert isinstance(cbpp_fit, GLMMFit)
    reference = pd.read_csv(LME4 / "cbpp_binomial_fixef.csv").set_index("term")
    table = cbpp_fit.fixef()
    assert list(table.index) == list(reference.index)
    assert (table["r_hat"] < 1.05).all()
    # the intercept rests on the 15 herds (allowance 1 SE); the period effects are contrasts within herds,
    # whose logit likelihood rests on the 99 cases (0.4 SE). A probit fit (effects 40% smaller: 1.3 to 2.4
    # SE) or a flipped response (cbind(size - incidence, incidence)) fails.
    check_fixef_against_glmer(cbpp_fit, "cbpp_binomial", cbpp_units)


@pytest.mark.sampling
def test_cbpp_herd_sd_close_to_lme4(cbpp_fit: GLMMFit) -> None:
    # 15 herds: the posterior of the herd SD is wide (posterior SD about 0.2) and right-skewed, and lme4's
    # Laplace ML estimate is biased low; allowance K_MLE / sqrt(15) posterior SDs for the posterior median:
    # the tolerance is about 0.55, so only a gross error (a herd SD of 0 or twice lme4's) fails.
    reference = pd.read_csv(LME4 / "cbpp_binomial_varcorr.csv")["sdcor"].iloc[0]
    assert list(cbpp_fit.varcorr()["grp"]) == ["herd"]
    draws = cbpp_fit.idata.posterior["sd__herd"].squeeze(drop=True)
    check_close(
        float(draws.median()),
        reference,
        mcse(draws, "median"),
        mle_allowance(float(draws.std()), 15),
        labels=["herd"],
    )


@pytest.mark.sampling
def test_cbpp_conditional_dic_counts_the_herds(cbpp_fit: GLMMFit) -> None:
    """The conditional DIC's pD lies between the 4 fixed effects and those plus the 15 herd effects (which
    the herd SD of about 0.6 shrinks, so they count less than one each)."""
    result = cbpp_fit.dic()
    assert 4 < result.pd < 4 + 15 and result.dic == pytest.approx(result.dbar + result.pd)


@pytest.mark.sampling
def test_ordinal_wine_matches_clmm() -> None:
    """The wine data of R's ordinal package (72 ratings in 5 categories by 9 judges): ``clmm``'s cumulative
    logit model with a random intercept per judge (adaptive Gauss-Hermite; tests/data/reference/ordinal/
    wine_clmm.R). Posterior means of the cut-points and fixed effects within K_MLE / sqrt(72) standard
    errors of clmm's estimates plus Monte Carlo error (a probit link, 1/1.7 of every value, misses by
    more), the judge SD's median within K_MLE / sqrt(9) posterior SDs. Through the ordinal engine family."""
    data = pd.read_csv(REFERENCE / "data" / "wine.csv").astype({"judge": str})
    fit = mixed("rating ~ temp + contact + (1 | judge)", data, "ordinal", random_seed=2, **SMALL)
    reference = pd.read_csv(REFERENCE / "ordinal" / "wine_clmm_fixef.csv").set_index("term")
    table = pd.concat([fit.family_params(), fit.fixef()])
    assert (
        list(table.index) == list(reference.index) == ["1|2", "2|3", "3|4", "4|5", "tempwarm", "contactyes"]
    )
    posterior = fit.idata.posterior
    check_close(
        table["mean"],
        reference["est"],
        np.concatenate([mcse(posterior["cutpoints"]), mcse(posterior["fixef"])]),
        mle_allowance(reference["se"], 72),
        labels=table.index,
        m=7,
    )
    sd = posterior["sd__judge"]
    clmm = pd.read_csv(REFERENCE / "ordinal" / "wine_clmm_varcorr.csv")["sdcor"].iloc[0]
    check_close(sd.median(SAMPLE_DIMS), clmm, mcse(sd, "median"), mle_allowance(sd.std(SAMPLE_DIMS), 9), m=7)


@pytest.mark.sampling
def test_ordinal_recovers_simulated_parameters() -> None:
    rng = np.random.default_rng(11)
    groups, size = 30, 20
    cutpoints, slope, group_sd = np.array([-1.0, 0.3, 1.5]), 0.8, 0.7
    g = np.repeat(np.arange(groups), size)
    x = rng.normal(size=groups * size)
    eta = slope * x + rng.normal(0, group_sd, groups)[g]
    latent = eta + rng.logistic(size=groups * size)
    data = pd.DataFrame({"y": np.searchsorted(cutpoints, latent), "x": x, "g": g.astype(str)})
    fit = mixed("y ~ x + (1 | g)", data, "ordinal", random_seed=5, **SMALL)
    posterior = fit.idata.posterior
    cuts = posterior["cutpoints"]
    parts = [cuts.isel({cuts.dims[-1]: k}) for k in range(3)] + [posterior["fixef"], posterior["sd__g"]]
    # truth within z (3.1 for 5) posterior SDs: cutpoints or a slope of the wrong sign, or a slope 40% off,
    # fail; a probit link (every value 1/1.7 of the logit's) moves each by less than z posterior SDs with
    # 600 rows and 30 groups, so this test cannot tell the links apart
    check_truth(
        stack_draws(parts), [*cutpoints, slope, group_sd], labels=["cut1", "cut2", "cut3", "x", "sd g"]
    )
    # the cut-points in family_params() and in both summaries, named by the categories they separate
    table = fit.family_params()
    assert list(table.index) == ["0|1", "1|2", "2|3"]
    np.testing.assert_allclose(table["mean"], cuts.mean(("chain", "draw")).values)
    text = fit.summary(style="lme4")
    assert "Bayesian generalized linear mixed model" in text and "Family: ordinal  ( logit )" in text
    assert "Family parameters:" in text and "Family parameters:" in fit.summary()


@pytest.mark.sampling
def test_grouseticks_poisson_matches_lme4() -> None:
    # BROOD has 118 small levels: the default target_accept=0.8 leaves a few divergences, 0.95 none
    fit = mixed(
        "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)",
        _grouseticks(),
        "poisson",
        random_seed=3,
        target_accept=0.95,
        **SMALL,
    )
    assert int(fit.idata.sample_stats["diverging"].sum()) == 0
    reference = pd.read_csv(LME4 / "grouseticks_poisson_fixef.csv").set_index("term")
    table = fit.fixef()
    assert list(table.index) == list(reference.index)
    # HEIGHT is a property of the 63 locations, YEAR of the 118 broods: allowance K_MLE / sqrt(63) = 0.5 SE
    # for every fixed effect, z over the 6 comparisons of this test; a sign error or a HEIGHT effect
    # unscaled (its raw units differ by the SD of HEIGHT, about 40) fails
    check_fixef_against_glmer(fit, "grouseticks_poisson", 63, m=6)
    varcorr = fit.varcorr().set_index("grp")
    sds = pd.read_csv(LME4 / "grouseticks_poisson_varcorr.csv").set_index("grp")["sdcor"]
    assert list(varcorr.index) == list(sds.index) == ["BROOD", "LOCATION"]
    draws = stack_draws([fit.idata.posterior[f"sd__{label}"] for label in fit.spec.labels])
    check_close(
        draws.median(SAMPLE_DIMS),
        sds,
        mcse(draws, "median"),
        mle_allowance(draws.std(SAMPLE_DIMS), [118, 63]),
        labels=sds.index,
        m=6,
    )


@pytest.mark.sampling
def test_grouseticks_observation_level_effect_matches_glmer() -> None:
    """(1 | INDEX), one level per row: the standard overdispersion term of a Poisson GLMM. glmer's INDEX SD
    is 0.54; the posterior median of the SD within K_MLE / sqrt(403) posterior SDs plus Monte Carlo error,
    and the fixed effects as in the model without it (z over 5). A Gaussian model refuses such a factor."""
    data = _grouseticks().astype({"INDEX": str})
    formula = "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)"
    fit = mixed(formula, data, "poisson", random_seed=3, target_accept=0.95, **SMALL)
    check_fixef_against_glmer(fit, "grouseticks_olre", 63, m=5)
    sd = fit.idata.posterior["sd__INDEX"]
    glmer = pd.read_csv(LME4 / "grouseticks_olre_varcorr.csv").set_index("grp").loc["INDEX", "sdcor"]
    check_close(
        sd.median(SAMPLE_DIMS), glmer, mcse(sd, "median"), mle_allowance(sd.std(SAMPLE_DIMS), 403), m=5
    )
    with pytest.raises(ModelSpecificationError, match="as many levels as rows"):
        mixed("TICKS ~ YEAR + (1 | INDEX)", data)


@pytest.mark.parametrize(
    ("family", "formula", "moved"),
    [
        (
            "poisson",
            "TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)",
            "TICKS ~ scale(YEAR) + (1 | BROOD) + (1 | LOCATION)",
        ),
        ("gaussian", "Reaction ~ Days + (Days | Subject)", "Reaction ~ Day100 + (Days | Subject)"),
    ],
)
def test_default_priors_do_not_depend_on_where_a_predictor_is_centred(family, formula, moved) -> None:
    """The default intercept prior sits at the predictors' means (brms), so shifting or rescaling a
    predictor gives the same model: equal log-densities at every point of the sampler's space. (With the
    prior at x = 0, grouseticks' YEAR (95-97) put the intercept ~40 prior SDs away and did not converge.)"""
    name = "grouseticks" if family == "poisson" else "sleepstudy"
    data = pd.read_csv(DATA / f"{name}.csv")
    data = data.assign(Day100=data["Days"] + 100.0) if family == "gaussian" else data
    first, second = mixed_model(formula, data, family).model, mixed_model(moved, data, family).model
    rng = np.random.default_rng(3)
    start = first.initial_point()
    logp_first, logp_second = (m.compile_logp(mode="FAST_COMPILE") for m in (first, second))
    for _ in range(3):
        point = {k: v + 0.3 * rng.normal(size=np.shape(v)) for k, v in start.items()}
        assert logp_first(point) == pytest.approx(logp_second(point), rel=1e-12)


def _prior_draw_fit(spec, repeat: int = 4) -> GLMMFit:
    """A fit whose posterior is one prior draw of every variable, repeated (no sampling)."""
    with spec.model:
        prior = pm.sample_prior_predictive(draws=1, random_seed=2, compile_kwargs={"mode": MODE})
    posterior = prior.prior.to_dataset().isel(draw=np.zeros(repeat, dtype=int))
    posterior = posterior.assign_coords(draw=np.arange(repeat))
    if "cutpoints" in posterior:  # forward sampling ignores the ordered transform
        posterior["cutpoints"] = posterior["cutpoints"].copy(
            data=np.sort(posterior["cutpoints"].values, axis=-1)
        )
    return GLMMFit(spec, SimpleNamespace(posterior=posterior), sampler="none", chains=1, draws=repeat, tune=0)


@pytest.mark.parametrize("family", ["binomial", "ordinal", "negbinomial"])
def test_glmm_dic_is_conditional_on_the_random_effects(family: str) -> None:
    """At one draw repeated, pD is 0 and both deviances are -2 x the sum of the pointwise values (the
    linear predictor fed to the graph's own likelihood equals the sampled one); for the binomial model
    they equal scipy's binomial deviance at that draw's linear predictor."""
    if family == "binomial":
        formula, data = "cbind(incidence, size - incidence) ~ period + (1 | herd)", _cbpp()
    else:
        formula, data = ("code" if family == "ordinal" else "count") + " ~ x + (1 | g)", _simulated()
    fit = _prior_draw_fit(mixed_model(formula, data, family))
    result = fit.dic()
    values = pointwise_log_likelihood(fit, "observation").values
    assert result.pd == pytest.approx(0.0, abs=1e-8)
    assert result.dbar == pytest.approx(-2.0 * values[0].sum(), rel=1e-10)
    assert result.dhat == pytest.approx(result.dbar, rel=1e-10)
    if family == "binomial":
        eta = linear_predictor_draws(fit)[0, 0]
        response = fit.spec.response
        deviance = -2.0 * stats.binom.logpmf(response.y, response.trials, expit(eta)).sum()
        assert result.dhat == pytest.approx(deviance, rel=1e-10)


def test_waic_at_one_draw_is_the_log_likelihood() -> None:
    """At one draw repeated, WAIC's penalty is 0 and its elpd the log-likelihood (the sum of the pointwise
    values), unit by unit."""
    fit = _prior_draw_fit(mixed_model("count ~ x + (1 | g)", _simulated(), "poisson"))
    result = fit.waic()
    values = pointwise_log_likelihood(fit, "observation").values[0]
    assert result.unit == "observation" and result.p == pytest.approx(0.0, abs=1e-10)
    np.testing.assert_allclose(result.pointwise, values, rtol=1e-12)
    assert result.waic == pytest.approx(-2.0 * values.sum())


def test_student_t_density_is_scipys() -> None:
    """family="student": each row's log-likelihood at a prior draw is scipy's t density at the draw's
    linear predictor, scale and degrees of freedom; priors on the data's scale, as a Gaussian model's."""
    data = _simulated().assign(y=lambda d: 50 + 10 * d["x"])
    fit = _prior_draw_fit(mixed_model("y ~ x + (1 | g)", data, "student"))
    values = pointwise_log_likelihood(fit, "observation").values[0]
    posterior = fit.idata.posterior
    eta = linear_predictor_draws(fit)[0, 0]
    sigma, nu = float(posterior["sigma"].values[0, 0]), float(posterior["nu"].values[0, 0])
    np.testing.assert_allclose(values, stats.t.logpdf(data["y"], nu, loc=eta, scale=sigma), rtol=1e-10)
    assert set(fit.family_params().index) == {"sigma", "nu"}


@pytest.mark.sampling
def test_student_t_resists_outliers() -> None:
    """Chapter 12's robust model: a random-intercept model with t(3) errors and six gross outliers (+30).
    The Student-t model recovers the slope (truth within z posterior SDs) with a posterior SD under half
    the Gaussian model's, whose residual variance the outliers inflate; nu is small."""
    rng = np.random.default_rng(5)
    groups, size = 30, 20
    g = np.repeat(np.arange(groups), size)
    x = rng.normal(size=groups * size)
    y = 2.0 + 0.5 * x + rng.normal(0.0, 1.0, groups)[g] + 0.8 * rng.standard_t(3, groups * size)
    y[:6] += 30.0
    data = pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})
    robust = mixed("y ~ x + (1 | g)", data, "student", random_seed=1, **SMALL)
    gaussian = mixed("y ~ x + (1 | g)", data, random_seed=1, **SMALL)
    slope = robust.idata.posterior["fixef"].sel(term="x")
    check_truth(stack_draws([slope]), [0.5], labels=["x"])
    assert float(slope.std()) < 0.5 * float(gaussian.fixef().loc["x", "sd"])
    assert float(robust.idata.posterior["nu"].median()) < 5
