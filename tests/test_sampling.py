"""Posteriors from NUTS against lavaan, INLAvaan and known truth (these tests sample).

Tolerances follow ``tests/tolerances.py``: ``z * sqrt(mcse^2 + allowance^2)``, ``z`` Bonferroni over the
rows compared. Against lavaan's MLE the allowance is ``K_MLE / sqrt(n)`` SEs with n = 2,500 rows for
within-level and n = 200 clusters for between-level parameters; the between-level residual variance of y1
is near zero (lavaan: 0.058, SE 0.047), where a posterior mean and an MLE differ by design (the expansion
in 1 / sqrt(n) fails at the boundary), so it is compared with INLAvaan's posterior (same priors) instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from reference import BOOK_MODELS, HS, MEDIATION, ONE_FACTOR, SEED, data, inlavaan_posterior, lavaan_estimates
from tolerances import SAMPLE_DIMS, check_close, mcse, mle_allowance

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
    # the setting: 4 chains x 1000 draws; blavaan's priors as they are, as INLAvaan's reference uses
    return pymlsem.sem(
        SEED,
        data("Demo.twolevel"),
        cluster="cluster",
        priors="blavaan",
        random_seed=11,
        **{**FIT, "chains": 4},
    )


def test_seed_model_converges(seed_fit) -> None:
    estimates = seed_fit.parameter_estimates()
    free = estimates[estimates.free]
    assert len(free) == 20
    # margins (40,000 draws): the slowest parameter, y1~~y1@between, has a bulk ESS of about 800 in 4,000
    # draws, the others 1,300 or more; no divergence in 40,000 draws
    assert free.r_hat.max() <= 1.01
    assert free.ess_bulk.min() >= 400
    assert seed_fit.divergences() == 0


def _draws(fit, rows: pd.Series):
    """The draws of the free parameters of the given parameter-table rows, in their order."""
    return fit.idata.posterior["parameters"].isel(parameter=fit.model.built.row_param[rows.to_numpy()])


def _labels(merged: pd.DataFrame) -> list[str]:
    return [f"{r.lhs}{r.op}{r.rhs}@{r.level}" for r in merged.itertuples()]


def test_seed_model_means_match_lavaan(seed_fit) -> None:
    lavaan = lavaan_estimates("demo_twolevel").rename(columns={"est": "mean_ref"})
    merged = _merge(seed_fit.parameter_estimates(), lavaan, ["lhs", "op", "rhs", "level"])
    assert len(merged) == 20
    near_zero = (merged.lhs == "y1") & (merged.op == "~~") & (merged.level == 2)
    checked = merged[~near_zero]
    # posterior mean against the MLE: K_MLE / sqrt(n) SEs, n = 2,500 rows (0.08 SE) or 200 clusters
    # (0.28 SE); with z = 3.5 for 19 rows the tolerance is about 0.3 SE within and 1 SE between. A within
    # loading 20% off (4.5 SE), a within variance reported as an SD (fw~~fw: 0.74 against 0.55, 4.8 SE) or
    # a between loading 20% off (2.8 SE) fails.
    n = np.where(checked.level == 1, seed_fit.model.nobs, seed_fit.model.n_clusters)
    check_close(
        checked["mean"],
        checked.mean_ref,
        mcse(_draws(seed_fit, checked.index_row)),
        mle_allowance(checked.se, n),
        labels=_labels(checked),
    )


def test_seed_model_matches_inlavaan_posterior(seed_fit) -> None:
    merged = _merge(seed_fit.parameter_estimates(), inlavaan_posterior(), ["lhs", "op", "rhs", "level"])
    assert len(merged) == 20
    draws = _draws(seed_fit, merged.index_row)
    near_zero = ((merged.lhs == "y1") & (merged.op == "~~") & (merged.level == 2)).to_numpy()
    # INLAvaan approximates the same posterior (same priors), to about 0.1 posterior SD in the means and 5%
    # in the SDs for these nearly normal posteriors; its table is rounded to 0.001 (0.0005 added). The
    # between variance of y1 sits near zero, where the posterior is most skewed and the approximation least
    # accurate (its SD 0.037 against 0.044 from NUTS): 0.25 SD for that mean and 25% for that SD. z over
    # the 40 comparisons (means and SDs) is 3.7: about 0.4 SD for a mean and 20% for an SD, so a mean off
    # by half a posterior SD, or an SD off by 25%, fails.
    allowance = np.where(near_zero, 0.25, 0.1) * merged.sd_ref + 0.0005
    check_close(merged["mean"], merged.mean_ref, mcse(draws), allowance, labels=_labels(merged), m=40)
    allowance = np.where(near_zero, 0.25, 0.05) * merged.sd_ref + 0.0005
    check_close(merged["sd"], merged.sd_ref, mcse(draws, "sd"), allowance, labels=_labels(merged), m=40)


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
    assert refit.model.n_clusters == 150
    before, after = (_intercept_y1_between(fit) for fit in (seed_fit, refit))
    # The shift is 1 plus what dropping 50 of the 200 clusters moves the posterior: efficient estimates from
    # nested data sets differ by about sqrt(sd_after^2 - sd_before^2) (Hausman; about 0.04 here), plus the
    # Monte Carlo error of both means; one comparison. A refit that kept the old data (shift 0) fails.
    check_close(
        after["mean"] - before["mean"],
        1.0,
        np.hypot(after.mcse, before.mcse),
        np.sqrt(after.sd**2 - before.sd**2),
    )


def _intercept_y1_between(fit) -> pd.Series:
    """Posterior mean, SD and MCSE of the mean of y1's between-level intercept."""
    estimates = fit.parameter_estimates()
    rows = estimates[(estimates.lhs == "y1") & (estimates.op == "~1") & (estimates.level == 2)]
    assert len(rows) == 1
    (draws_mcse,) = mcse(_draws(fit, rows.index.to_series()))
    return pd.Series({"mean": rows["mean"].iloc[0], "sd": rows["sd"].iloc[0], "mcse": draws_mcse})


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
    # N = 301: the posteriors of the speed factor's loadings are right-skewed (skewness up to 1.1), so compare
    # the posterior medians, nearer the MLE than the means (x9: 0.42 against 0.71 SE with 40,000 draws).
    # Allowance K_MLE / sqrt(301) = 0.23 SE, z = 3.6 for 30 rows: about 0.85 SE. A loading 20% off (1.1 SE
    # for visual=~x2, 3.4 SE for textual=~x5) or a residual variance given as an SD (x1: 0.74 against 0.55,
    # 1.7 SE) fails.
    _check_medians_at_lavaan(fit, fit.parameter_estimates(), "hs_cfa", 30)


def _check_medians_at_lavaan(fit, estimates: pd.DataFrame, prefix: str, n_free: int) -> None:
    """A single-level fit's posterior medians against lavaan's MLE (``prefix``'s estimates), within
    ``K_MLE / sqrt(N)`` SEs and Monte Carlo error."""
    lavaan = lavaan_estimates(prefix).assign(level=1).rename(columns={"est": "mean_ref"})
    merged = _merge(estimates, lavaan, ["lhs", "op", "rhs", "level"])
    assert len(merged) == n_free
    draws = _draws(fit, merged.index_row)
    check_close(
        draws.median(SAMPLE_DIMS),
        merged.mean_ref,
        mcse(draws, "median"),
        mle_allowance(merged.se, fit.model.nobs),
        labels=_labels(merged),
    )


def test_std_lv_one_factor_model_samples_well_and_matches_lavaan() -> None:
    """One factor for HolzingerSwineford1939's nine tests with std_lv=True (lavaan's std.lv): the loadings
    are not ratios to the weak marker x1's, so NUTS samples them well (bulk ESS 2,200 on seeds 1-4, where
    the marker version gave 196-390 and R-hat up to 1.026); every chain on the positive side; posterior
    medians at lavaan's std.lv MLE within the allowance of the CFA test above (about 0.85 SE for 27 rows)."""
    frame = data("HolzingerSwineford1939")
    fit = pymlsem.cfa(ONE_FACTOR, frame, std_lv=True, random_seed=3, **{**FIT, "chains": 4})
    estimates = fit.parameter_estimates()
    free = estimates[estimates.free]
    assert len(free) == 27 and free.r_hat.max() <= 1.01 and free.ess_bulk.min() >= 400
    loadings = fit.idata.posterior["parameters"].sel(parameter=[f"g=~x{k}" for k in range(1, 10)])
    assert (loadings.mean("draw") > 0).all()  # each chain's mean of each loading
    _check_medians_at_lavaan(fit, estimates, "std_lv_hs_one_factor", 27)


def test_defined_parameters_match_lavaan_mediation() -> None:
    fit = pymlsem.sem(MEDIATION, data("PoliticalDemocracy"), random_seed=5, **FIT)
    estimates = fit.parameter_estimates().set_index("lhs")
    assert (estimates.loc[["indirect", "total"], "op"] == ":=").all()
    # the defined parameters are evaluated draw by draw: a wrong expression or label fails here exactly
    primary = fit.idata.posterior["parameters"]
    a, b, c = (primary.sel(parameter=name) for name in ("a", "b", "c"))
    defined = fit.idata.posterior["defined"].sel(defined_parameter=["indirect", "total"])
    np.testing.assert_allclose(defined.sel(defined_parameter="indirect"), a * b, rtol=1e-10)
    np.testing.assert_allclose(defined.sel(defined_parameter="total"), c + a * b, rtol=1e-10)
    # posterior means against lavaan: N = 75, allowance K_MLE / sqrt(75) = 0.46 SE, z = 2.8 for the two
    # (40,000 draws put both means within 0.05 SE of the MLE); a total without the indirect part (3.5 SE)
    # or an indirect effect through c instead of a (2.5 SE) fails
    lavaan = lavaan_estimates("poldem_mediation").set_index("lhs").loc[["indirect", "total"]]
    check_close(
        defined.mean(SAMPLE_DIMS),
        lavaan.est,
        mcse(defined),
        mle_allowance(lavaan.se, len(data("PoliticalDemocracy"))),
        labels=lavaan.index,
    )


def test_book_model_10_4_recovers_loadings_equal_across_levels() -> None:
    model, model_type = BOOK_MODELS["10.4"]
    truth = {"a": 0.9, "b": 0.7, "c": 1.2, "d": 0.8, "e": 1.1, "g": 0.6, "h": 1.0, "i": 0.75, "j": 1.3}
    frame = simulate(model, truth, n_clusters=150, cluster_size=12, model_type=model_type, seed=7)
    fit = pymlsem.sem(model, frame, cluster="cluster", random_seed=8, **FIT)
    draws = fit.idata.posterior["parameters"].sel(parameter=list(truth))
    # truth against the posterior: the data set's sampling error is about one posterior SD (0.03-0.07),
    # z = 3.3 for the 9 labels; a loading 20% off (0.12-0.26, 3 to 5 SDs) fails
    check_close(
        draws.mean(SAMPLE_DIMS), list(truth.values()), mcse(draws), draws.std(SAMPLE_DIMS), labels=list(truth)
    )


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


def _wide_sleepstudy() -> pd.DataFrame:
    """lme4's sleepstudy, one row per subject and one column per day (r0..r9)."""
    wide = data("sleepstudy").pivot(index="Subject", columns="Days", values="Reaction")
    return wide.set_axis([f"r{day}" for day in wide.columns], axis=1).reset_index(drop=True)


GROWTH = (
    "i =~ "
    + " + ".join(f"1*r{d}" for d in range(10))
    + "\n s =~ "
    + " + ".join(f"{d}*r{d}" for d in range(10))
)


def test_growth_default_priors_follow_the_datas_units() -> None:
    """The linear growth model on wide sleepstudy (18 subjects, reaction times ~300 ms).

    blavaan's priors as they are (normal(0,10) on the latent means) pulled i~1 to 32.5 with i~~i 12,000,
    where lavaan has 250.5 and 829, and nothing warned. The defaults in the data's units put the posterior
    means of i~1 and s~1 within 0.5 posterior SD of lavaan's estimates (the posterior of a mean is nearly
    the likelihood's here: they differ by ~0.02 SD). On the data times 100 plus 250 the posterior is the
    transformed one: means of i/s, their variances and covariance within both Monte Carlo errors and
    0.05 posterior SD (a shift changes only the intercept priors' widths, by the data's rms), z over 5.
    """
    wide = _wide_sleepstudy()
    fit = pymlsem.growth(GROWTH, wide, random_seed=1, **FIT)
    table = fit.parameter_estimates()
    rows = table[table.lhs.isin(["i", "s"]) & table.op.isin(["~1", "~~"])]
    lavaan = lavaan_estimates("sleepstudy_growth").assign(rhs=lambda t: t.rhs.fillna(""))
    merged = rows.merge(lavaan, on=["lhs", "op", "rhs"])
    means = merged[merged.op == "~1"]
    assert len(means) == 2 and (np.abs(means["mean"] - means.est) <= 0.5 * means["sd"]).all(), means
    shifted = pymlsem.growth(GROWTH, wide * 100 + 250, random_seed=2, **FIT)
    shifted_rows = shifted.parameter_estimates().loc[rows.index]
    scale = np.where(rows.op == "~1", 100.0, 1e4)
    shift = np.where((rows.op == "~1") & (rows.lhs == "i"), 250.0, 0.0)
    errors = np.hypot(
        mcse(_draws(fit, rows.index.to_series())), mcse(_draws(shifted, rows.index.to_series())) / scale
    )
    check_close(
        (shifted_rows["mean"] - shift) / scale,
        rows["mean"],
        errors,
        0.05 * rows["sd"],
        labels=[f"{r.lhs}{r.op}{r.rhs}" for r in rows.itertuples()],
    )
