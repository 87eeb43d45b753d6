"""Mixed models' ICC and R-squared (Nakagawa et al. 2017) against R's performance package and known truth.

R's performance computes the variance partition of an ML fit; evaluated at lme4's ML estimates (a stand-in
posterior of that one point), ours must give its numbers (data/reference/performance/variance_partition.R).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from reference import REFERENCE
from tolerances import SAMPLE_DIMS, check_truth

import pymlsem
from pymlsem.exceptions import ModelSpecificationError
from pymlsem.mlm.api import mixed_model
from pymlsem.mlm.fit import MixedFit
from pymlsem.mlm.variance import variance_partition
from tests.mlm.test_mixed_loglik import lme4_estimates

DATA = REFERENCE / "data"
PERFORMANCE = pd.read_csv(REFERENCE / "performance" / "variance_partition.csv").set_index(
    ["model", "quantity"]
)


def load_case_data(name: str) -> pd.DataFrame:
    frame = pd.read_csv(DATA / f"{name}.csv")
    if name == "cbpp":
        return frame.assign(period=frame["period"].astype(str), herd=frame["herd"].astype(str))
    if name == "grouseticks":
        return frame.assign(YEAR=frame["YEAR"].astype(str), BROOD=frame["BROOD"].astype(str))
    return frame


#: performance's model -> (data, formula, family, lme4 reference file)
CASES = {
    "sleepstudy_rs": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", "gaussian", "sleepstudy_ml"),
    "reading_ri": ("reading_public", "geread ~ gevocab + (1 | school)", "gaussian", "reading_public_ri_ml"),
    "cbpp_binomial": (
        "cbpp",
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "binomial",
        "cbpp_binomial",
    ),
    "grouseticks_poisson": (
        "grouseticks",
        "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)",
        "poisson",
        "grouseticks_poisson",
    ),
}


def _at_lme4_estimates(case: str) -> MixedFit:
    """A fit whose posterior is lme4's ML estimates (2 chains x 3 identical draws)."""
    data_name, formula, family, reference = CASES[case]
    spec = mixed_model(formula, load_case_data(data_name), family)
    beta, sigma, covs = lme4_estimates(reference, spec.design)
    shape = (2, 3)
    variables = {"fixef": (("chain", "draw", "term"), np.broadcast_to(beta, (*shape, beta.size)))}
    if family == "gaussian":
        variables["sigma"] = (("chain", "draw"), np.full(shape, sigma))
    for label, cov in zip(spec.labels, covs, strict=True):
        sd = np.sqrt(np.diag(cov))
        variables[f"sd__{label}"] = (("chain", "draw", f"e_{label}"), np.broadcast_to(sd, (*shape, sd.size)))
        if sd.size > 1:
            corr = np.broadcast_to(cov / np.outer(sd, sd), (*shape, sd.size, sd.size))
            variables[f"corr__{label}"] = (("chain", "draw", f"e_{label}", f"f_{label}"), corr)
    posterior = xr.Dataset(variables)
    return MixedFit(spec, SimpleNamespace(posterior=posterior), sampler="none", chains=2, draws=3, tune=0)


@pytest.mark.parametrize("case", list(CASES))
def test_variance_partition_matches_performance_at_lme4_estimates(case: str) -> None:
    """var(X beta), the random variances (a random slope's at the observed Days: mean z' Sigma z) and, for
    the Gaussian and logit models, the ICCs and R-squared equal performance's. For counts performance
    takes lambda from a refitted null model (here: from the model, exp(mean(X beta) + random / 2)), so only
    the fixed and random variances are compared there."""
    fit = _at_lme4_estimates(case)
    parts = variance_partition(fit)
    expected = PERFORMANCE.loc[case, "value"]
    # glmer's optimum, refitted by the R script, agrees with the lme4 reference file's to about 1e-5
    rel = 1e-6 if CASES[case][2] == "gaussian" else 1e-4
    assert parts.fixed[0, 0] == pytest.approx(expected["var_fixed"], rel=rel)
    assert sum(parts.random.values())[0, 0] == pytest.approx(expected["var_random"], rel=rel)
    if case == "grouseticks_poisson":
        return
    assert parts.residual[0, 0] == pytest.approx(expected["var_distribution"], rel=rel)
    icc = fit.icc().set_index(["group", "type"])["mean"]
    (group,) = parts.random
    assert icc[(group, "adjusted")] == pytest.approx(expected["icc_adjusted"], rel=rel)
    assert icc[(group, "conditional")] == pytest.approx(expected["icc_conditional"], rel=rel)
    r2 = fit.r_squared().set_index("type")["mean"]
    assert r2["marginal"] == pytest.approx(expected["r2_marginal"], rel=rel)
    assert r2["conditional"] == pytest.approx(expected["r2_conditional"], rel=rel)


def test_icc_with_several_grouping_factors_and_counts() -> None:
    """Two grouping factors: one adjusted ICC each and one for both; the Poisson residual variance is the
    lognormal approximation log(1 + 1 / lambda) at lambda = exp(mean(X beta) + sum of the variances / 2)."""
    fit = _at_lme4_estimates("grouseticks_poisson")
    parts = variance_partition(fit)
    table = fit.icc().set_index(["group", "type"])["mean"]
    assert set(table.index) == {
        (g, t) for g in ("BROOD", "LOCATION", "all") for t in ("adjusted", "conditional")
    }
    random = 0.592364535103423 + 0.329639399786292  # lme4's variances (reference file)
    beta = fit.idata.posterior["fixef"].values[0, 0]
    lam = np.exp(np.mean(fit.spec.design.x @ beta) + random / 2)
    assert parts.residual[0, 0] == pytest.approx(np.log1p(1 / lam), rel=1e-12)
    assert table[("BROOD", "adjusted")] == pytest.approx(0.592364535103423 / (random + np.log1p(1 / lam)))
    assert table[("all", "adjusted")] == pytest.approx(
        table[("BROOD", "adjusted")] + table[("LOCATION", "adjusted")]
    )


def test_a_model_without_random_effects_has_no_icc() -> None:
    fit = _at_lme4_estimates("reading_ri")
    fit.spec = SimpleNamespace(design=SimpleNamespace(blocks=()), labels=())
    with pytest.raises(ModelSpecificationError, match="no random effects"):
        fit.icc()


@pytest.mark.sampling
def test_icc_and_r_squared_recover_the_truth() -> None:
    """Simulated random-intercept data (100 groups of 20, group variance 1, residual variance 3, slope 0.5
    on a standard normal x): the posterior means of the adjusted ICC (0.25), the conditional ICC and both
    R-squared are within the posterior SD of the truth (check_truth: Bonferroni over the four)."""
    rng = np.random.default_rng(7)
    groups, size = 100, 20
    g = np.repeat(np.arange(groups), size)
    x = rng.normal(size=groups * size)
    y = 1.0 + 0.5 * x + rng.normal(0, 1.0, groups)[g] + rng.normal(0, np.sqrt(3.0), groups * size)
    data = pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})
    fit = pymlsem.mixed("y ~ x + (1 | g)", data, random_seed=3, progressbar=False)
    fixed = 0.25 * x.var(ddof=1)
    total = fixed + 1.0 + 3.0
    truth = [0.25, 1.0 / total, fixed / total, (fixed + 1.0) / total]
    parts = variance_partition(fit)
    draws = xr.DataArray(
        np.stack(
            [
                parts.random["g"] / (parts.random["g"] + parts.residual),
                parts.random["g"] / parts.total,
                parts.fixed / parts.total,
                (parts.fixed + parts.random["g"]) / parts.total,
            ],
            axis=-1,
        ),
        dims=(*SAMPLE_DIMS, "quantity"),
    )
    check_truth(draws, truth, labels=["icc adjusted", "icc conditional", "r2 marginal", "r2 conditional"])
    icc = fit.icc().set_index(["group", "type"])
    np.testing.assert_allclose(icc.loc[("g", "adjusted"), "mean"], float(draws[..., 0].mean()))
    # Gelman et al.'s R-squared measures the same share with the realised cluster effects: with 100 groups
    # it lies within 0.03 of Nakagawa's conditional one (the realised effects' variance is within ~15% of
    # the estimated variance component, which moves the share by about 0.02)
    bayes = fit.bayes_r2()
    conditional = fit.r_squared().set_index("type").loc["conditional", "mean"]
    assert list(bayes["type"]) == ["bayes"] and abs(bayes["mean"].iloc[0] - conditional) < 0.03


@pytest.mark.parametrize("case", ["sleepstudy_rs", "cbpp_binomial", "grouseticks_poisson"])
def test_variance_shares_sum_to_one_and_are_performances_r2_and_icc(case: str) -> None:
    """The variance partition's shares: the fixed effects' is performance's marginal R-squared, a grouping
    factor's its conditional ICC (one factor; with two, each its own), the residual's the rest; the plot's
    bars are the shares' posterior means."""
    fit = _at_lme4_estimates(case)
    shares = fit.variance_shares().set_index("component")["mean"]
    parts = variance_partition(fit)
    assert list(shares.index) == ["fixed", *parts.random, "residual"]
    assert shares.sum() == pytest.approx(1.0, rel=1e-12)
    if case != "grouseticks_poisson":  # performance's lambda differs for counts (see above)
        expected = PERFORMANCE.loc[case, "value"]
        (group,) = parts.random
        assert shares["fixed"] == pytest.approx(expected["r2_marginal"], rel=1e-4)
        assert shares[group] == pytest.approx(expected["icc_conditional"], rel=1e-4)
    else:
        conditional = fit.icc().set_index(["group", "type"])["mean"]
        for group in parts.random:
            assert shares[group] == pytest.approx(conditional[(group, "conditional")], rel=1e-12)
    figure = fit.plot_variance_partition()
    heights = [bar.get_height() for bar in figure.axes[0].patches]
    np.testing.assert_allclose(heights, shares.to_numpy(), rtol=1e-12)
    assert [tick.get_text() for tick in figure.axes[0].get_xticklabels()] == list(shares.index)
