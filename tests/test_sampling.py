"""Posteriors from NUTS against lavaan, INLAvaan and known truth (these tests sample).

Tolerances: with 2,500 rows the posterior mean of a within-level parameter is within a small fraction of
lavaan's standard error of the MLE (we allow 0.25 SE); between-level parameters rest on 200 clusters, so
their posteriors are a little skewed and we allow 0.5 SE; the between-level residual variance of y1 is
near zero (lavaan: 0.058, SE 0.047), where a posterior mean and an MLE differ by design, so it is compared
with INLAvaan's posterior (same priors) instead. Posterior SDs are compared with INLAvaan's within 15%.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from reference import BOOK_MODELS, HS, MEDIATION, SEED, data, inlavaan_posterior, lavaan_estimates

import pymlsem
from pymlsem.simulate import simulate

pytestmark = pytest.mark.sampling
FIT = {"draws": 1000, "tune": 1000, "chains": 2, "progressbar": False}


def _merge(estimates: pd.DataFrame, reference: pd.DataFrame, on: list[str]) -> pd.DataFrame:
    ours = estimates[estimates.free & (estimates.op != ":=")].copy()
    ours["index_row"] = ours.index
    ours["level"] = ours["level"].astype(int)
    reference = reference.assign(rhs=reference.rhs.fillna(""))
    return ours.merge(reference, on=on, suffixes=("", "_ref"))


@pytest.fixture(scope="module")
def seed_fit():
    # the setting: 4 chains x 1000 draws
    return pymlsem.sem(SEED, data("Demo.twolevel"), cluster="cluster", random_seed=11, **{**FIT, "chains": 4})


def test_seed_model_converges(seed_fit) -> None:
    estimates = seed_fit.parameter_estimates()
    free = estimates[estimates.free]
    assert len(free) == 20
    assert free.r_hat.max() <= 1.01
    assert free.ess_bulk.min() >= 400
    assert seed_fit.divergences() == 0


def test_seed_model_means_match_lavaan(seed_fit) -> None:
    lavaan = lavaan_estimates("demo_twolevel").rename(columns={"est": "mean_ref"})
    merged = _merge(seed_fit.parameter_estimates(), lavaan, ["lhs", "op", "rhs", "level"])
    assert len(merged) == 20
    near_zero = (merged.lhs == "y1") & (merged.op == "~~") & (merged.level == 2)
    checked = merged[~near_zero]
    allowed = np.where(checked.level == 1, 0.25, 0.5) * checked.se
    assert np.all(np.abs(checked["mean"] - checked.mean_ref) <= allowed), checked[
        ["lhs", "op", "rhs", "mean", "mean_ref", "se"]
    ]


def test_seed_model_matches_inlavaan_posterior(seed_fit) -> None:
    merged = _merge(seed_fit.parameter_estimates(), inlavaan_posterior(), ["lhs", "op", "rhs", "level"])
    assert len(merged) == 20
    # means within a third of a posterior SD of INLAvaan's, the near-zero variance included
    assert np.all(np.abs(merged["mean"] - merged["mean_ref"]) <= 0.35 * merged["sd_ref"])
    # SDs within 15%, except the between-level variance of y1: it sits near zero, where INLAvaan's
    # Laplace approximation is least accurate (its SD there is 0.037 against 0.044 from NUTS)
    near_zero = (merged.lhs == "y1") & (merged.op == "~~") & (merged.level == 2)
    np.testing.assert_allclose(merged["sd"][~near_zero], merged["sd_ref"][~near_zero], rtol=0.15)


def test_seed_summary_reads_like_blavaan(seed_fit) -> None:
    text = seed_fit.summary()
    for part in (
        "Level 1 [within]:",
        "Level 2 [between]:",
        "Latent Variables:",
        "Regressions:",
        "Intercepts:",
        "Variances:",
        "Number of clusters [cluster]",
        "200",
        "normal(0,10)",
        "gamma(1,0.5)[sd]",
        "NUTS (nutpie)",
        "PPP (chi-square",
        "Marginal log-likelihood",
    ):
        assert part in text
    assert str(seed_fit) == text


def test_refit_on_new_data_reuses_the_compiled_model(seed_fit) -> None:
    shifted = data("Demo.twolevel").assign(y1=lambda d: d.y1 + 1.0)
    shifted = shifted[shifted.cluster <= 150]  # other cluster sizes and counts
    refit = pymlsem.sem(SEED, shifted, cluster="cluster", random_seed=12, **FIT)
    assert refit.timings.reused_compiled
    before = seed_fit.parameter_estimates().set_index(["lhs", "op", "rhs", "level"])["mean"]
    after = refit.parameter_estimates().set_index(["lhs", "op", "rhs", "level"])["mean"]
    assert after[("y1", "~1", "", 2)] - before[("y1", "~1", "", 2)] == pytest.approx(1.0, abs=0.2)
    assert refit.model.n_clusters == 150


def test_cfa_from_summary_statistics_matches_lavaan() -> None:
    frame = data("HolzingerSwineford1939")
    names = [f"x{i}" for i in range(1, 10)]
    fit = pymlsem.cfa(
        HS,
        sample_cov=frame[names].cov(),
        sample_mean=frame[names].mean(),
        sample_nobs=len(frame),
        random_seed=3,
        **FIT,
    )
    lavaan = lavaan_estimates("hs_cfa").assign(level=1).rename(columns={"est": "mean_ref"})
    merged = _merge(fit.parameter_estimates(), lavaan, ["lhs", "op", "rhs", "level"])
    assert len(merged) == 30
    # N = 301: the posteriors of the speed factor's loadings are right-skewed (their means lie ~0.6 SE
    # above the MLE), so compare the posterior median, which tracks the MLE, within half an SE
    medians = fit.idata.posterior["parameters"].median(("chain", "draw")).to_series()
    names = [p.name for p in fit.model.built.free]
    merged["median"] = [medians[names[i]] for i in fit.model.built.row_param[merged.index_row]]
    assert np.all(np.abs(merged["median"] - merged.mean_ref) <= 0.5 * merged.se)


def test_defined_parameters_match_lavaan_mediation() -> None:
    fit = pymlsem.sem(MEDIATION, data("PoliticalDemocracy"), random_seed=5, **FIT)
    estimates = fit.parameter_estimates().set_index("lhs")
    lavaan = lavaan_estimates("poldem_mediation").set_index("lhs")
    for name in ("indirect", "total"):
        assert estimates.loc[name, "op"] == ":="
        # N = 75: the posterior of a product is right-skewed; its median is the better match to the MLE
        draws = fit.idata.posterior["defined"].sel(defined_parameter=name)
        assert abs(float(draws.median()) - lavaan.loc[name, "est"]) <= 0.35 * lavaan.loc[name, "se"]


def test_book_model_10_4_recovers_loadings_equal_across_levels() -> None:
    model, model_type = BOOK_MODELS["10.4"]
    truth = {"a": 0.9, "b": 0.7, "c": 1.2, "d": 0.8, "e": 1.1, "g": 0.6, "h": 1.0, "i": 0.75, "j": 1.3}
    frame = simulate(model, truth, n_clusters=150, cluster_size=12, model_type=model_type, seed=7)
    fit = pymlsem.sem(model, frame, cluster="cluster", random_seed=8, **FIT)
    draws = fit.idata.posterior["parameters"]
    for label, value in truth.items():
        d = draws.sel(parameter=label)
        assert abs(float(d.mean()) - value) <= 3 * float(d.std()), label


@pytest.mark.parametrize("number", ["10.5", "10.6"])
def test_book_chapter_10_models_sample(number: str) -> None:
    """Structural paths at both levels (10.5) and the growth model (10.6) fit end to end on data simulated
    from them, and converge (10.3 is 10.4 without the equality labels, sampled above)."""
    model, model_type = BOOK_MODELS[number]
    frame = simulate(model, n_clusters=100, cluster_size=10, model_type=model_type, seed=3)
    fit = pymlsem.SEM(model, frame, cluster="cluster", model_type=model_type).fit(
        draws=500, tune=500, chains=2, random_seed=4, progressbar=False
    )
    estimates = fit.parameter_estimates()
    free = estimates[estimates.free]
    assert free.r_hat.max() < 1.05
    assert fit.divergences() <= 5
