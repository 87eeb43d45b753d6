"""Standardized solutions, R-squared and ICCs (:mod:`pymlsem.results.standardized`).

Without sampling, a stand-in posterior whose every draw sits at lavaan's estimates must give lavaan's
``standardizedSolution()`` (the seed model) or the identities a standardized solution obeys (single-level
reference models). One sampling test runs the fit methods on a real posterior.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from reference import LAVAAN, MEDIATION, REFERENCE_FITS, SEED, data, lavaan_estimates
from tolerances import check_close, mcse, mle_allowance

import pymlsem
from pymlsem.exceptions import ModelSpecificationError, PymlsemError
from pymlsem.results.fit import SEMFit
from pymlsem.results.standardized import fit_standardized_draws, icc, r_squared, standardized_solution

KEY = ["lhs", "op", "rhs", "level"]


def _fit_at(spec: pymlsem.SEM, rows: np.ndarray, chains: int = 2, draws: int = 3) -> SEMFit:
    """A fit whose posterior repeats one parameter vector (taken from table rows)."""
    built = spec.built
    first_row = [int(np.flatnonzero(built.row_param == i)[0]) for i in range(len(built.free))]
    values = np.broadcast_to(rows[first_row], (chains, draws, len(first_row)))
    parameters = xr.DataArray(values, dims=("chain", "draw", "parameter"))
    idata = SimpleNamespace(posterior={"parameters": parameters})
    return SEMFit(spec, idata, sampler="none", chains=chains, draws=draws, tune=0, timings=None)


def _reference_fit(name: str, model: str | None = None, prefix: str | None = None) -> SEMFit:
    """A stand-in fit at lavaan's estimates of one of the reference fits."""
    default_model, dataset, cluster, default_prefix = REFERENCE_FITS[name]
    spec = pymlsem.SEM(model or default_model, data(dataset), cluster=cluster)
    rows = np.asarray(spec.rows_from_estimates(lavaan_estimates(prefix or default_prefix)), dtype=float)
    return _fit_at(spec, rows)


@pytest.fixture(scope="module")
def seed() -> SEMFit:
    return _reference_fit("seed")


@pytest.fixture(scope="module")
def lavaan_std() -> pd.DataFrame:
    """lavaan's std.all solution of the seed model, with the level of each row (same row order as the
    estimates file, which has the level column)."""
    std = pd.read_csv(LAVAAN / "demo_twolevel_standardized.csv")
    estimates = lavaan_estimates("demo_twolevel")
    assert (std[["lhs", "op"]].to_numpy() == estimates[["lhs", "op"]].to_numpy()).all()
    return std.assign(rhs=std.rhs.fillna(""), level=estimates.level.to_numpy())


def _est(frame: pd.DataFrame, lhs: str, op: str, rhs: str = "", level: int = 1) -> float:
    where = (frame.lhs == lhs) & (frame.op == op) & (frame.rhs.fillna("") == rhs)
    rows = frame[where & (frame.level == level)] if "level" in frame else frame[where]
    assert len(rows) == 1, (lhs, op, rhs, level)
    return float(rows.iloc[0]["est"] if "est" in rows else rows.iloc[0]["est.std"])


def _latent_variance(estimates: pd.DataFrame, factor: str, covariates: list[str], level: int) -> float:
    """Implied variance of a factor regressed on fixed.x covariates: psi + b' Sigma_x b, by hand."""
    b = np.array([_est(estimates, factor, "~", x, level) for x in covariates])
    sigma = np.array(
        [[_est(estimates, min(u, v), "~~", max(u, v), level) for v in covariates] for u in covariates]
    )
    return _est(estimates, factor, "~~", factor, level) + b @ sigma @ b


# ---------------------------------------------------------------------------------------------------------
# standardized solutions against lavaan
# ---------------------------------------------------------------------------------------------------------


def test_std_all_equals_lavaan_standardized_solution(seed, lavaan_std) -> None:
    ours = seed.standardized_solution()
    assert len(ours) == len(lavaan_std) == len(seed.model.partable.table)
    merged = ours.astype({"level": int}).merge(lavaan_std, on=KEY, suffixes=("", "_lavaan"))
    assert len(merged) == len(ours)
    np.testing.assert_allclose(merged["est.std"], merged["est.std_lavaan"], rtol=0, atol=1e-8)


def test_std_lv_by_hand_from_lavaan_estimates(seed) -> None:
    """std.lv scales the factors only: loadings times the factor SD, paths to a factor over its SD, the
    factor's residual variance over its implied variance; observed-variable rows keep their raw values."""
    estimates = lavaan_estimates("demo_twolevel")
    std_lv = seed.standardized_solution(type="std.lv").astype({"level": int})
    factors = {1: ("fw", ["x1", "x2", "x3"]), 2: ("fb", ["w1", "w2"])}
    for level, (factor, covariates) in factors.items():
        variance = _latent_variance(estimates, factor, covariates, level)
        for y in ("y1", "y2", "y3"):
            expected = _est(estimates, factor, "=~", y, level) * np.sqrt(variance)
            assert _est(std_lv, factor, "=~", y, level) == pytest.approx(expected, abs=1e-10)
            expected = _est(estimates, y, "~~", y, level)
            assert _est(std_lv, y, "~~", y, level) == pytest.approx(expected, abs=1e-12)
        for x in covariates:
            expected = _est(estimates, factor, "~", x, level) / np.sqrt(variance)
            assert _est(std_lv, factor, "~", x, level) == pytest.approx(expected, abs=1e-10)
        expected = _est(estimates, factor, "~~", factor, level) / variance
        assert _est(std_lv, factor, "~~", factor, level) == pytest.approx(expected, abs=1e-10)
    assert _est(std_lv, "x1", "~~", "x2") == pytest.approx(_est(estimates, "x1", "~~", "x2"), abs=1e-12)


def test_std_nox_leaves_the_covariates_raw(seed) -> None:
    """std.nox: rows without an exogenous covariate as in std.all, rows of the covariates as in std.lv."""
    std_all, std_lv, std_nox = (seed.standardized_solution(type=t) for t in ("std.all", "std.lv", "std.nox"))
    exogenous = {"x1", "x2", "x3", "w1", "w2"}
    has_x = std_all.lhs.isin(exogenous) | std_all.rhs.isin(exogenous)
    assert has_x.sum() == 19  # 5 paths, 9 (co)variances, 5 means
    np.testing.assert_allclose(std_nox["est.std"][~has_x], std_all["est.std"][~has_x], atol=1e-12)
    np.testing.assert_allclose(std_nox["est.std"][has_x], std_lv["est.std"][has_x], atol=1e-12)
    assert not np.allclose(std_nox["est.std"][has_x], std_all["est.std"][has_x])


@pytest.mark.parametrize("name", ["hs_cfa", "poldem"])
def test_single_level_identities(name: str) -> None:
    fit = _reference_fit(name)
    std = fit.standardized_solution()
    table = fit.model.partable.table
    latent = set(fit.model.partable.latent[1])
    loadings = std[std.op == "=~"]
    assert loadings.rhs.is_unique  # every indicator measures one factor
    for indicator, loading in zip(loadings.rhs, loadings["est.std"], strict=True):
        residual = _est(std, indicator, "~~", indicator)
        assert loading**2 + residual == pytest.approx(1.0, abs=1e-10)
    covariances = std[(std.op == "~~") & (std.lhs != std.rhs)]
    assert len(covariances) > 0
    assert np.all(np.abs(covariances["est.std"]) <= 1)
    variances = std[(std.op == "~~") & (std.lhs == std.rhs) & std.lhs.isin(latent)]
    exogenous_factors = set(variances.lhs) - set(table.loc[table.op == "~", "lhs"])
    for factor in exogenous_factors:
        assert _est(std, factor, "~~", factor) == pytest.approx(1.0, abs=1e-12)
    r2 = fit.r_squared()
    assert set(r2.variable) == set(loadings.rhs) | set(table.loc[table.op == "~", "lhs"])
    for row in r2.itertuples():
        assert row.r2 == pytest.approx(1 - _est(std, row.variable, "~~", row.variable), abs=1e-12)
        assert 0 < row.r2 < 1


def test_single_regression_r_squared_is_the_squared_standardized_path() -> None:
    fit = _reference_fit("poldem")
    std = fit.standardized_solution()
    r2 = fit.r_squared().set_index("variable")
    assert r2.loc["dem60", "r2"] == pytest.approx(_est(std, "dem60", "~", "ind60") ** 2, abs=1e-10)


def test_factor_correlations_by_hand() -> None:
    fit = _reference_fit("hs_cfa")
    estimates = lavaan_estimates("hs_cfa")
    std = fit.standardized_solution()
    for a, b in [("visual", "textual"), ("visual", "speed"), ("textual", "speed")]:
        cov = _est(estimates, a, "~~", b)
        expected = cov / np.sqrt(_est(estimates, a, "~~", a) * _est(estimates, b, "~~", b))
        assert _est(std, a, "~~", b) == pytest.approx(expected, abs=1e-10)


def test_defined_parameters_use_the_standardized_labels() -> None:
    fit = _reference_fit("poldem", model=MEDIATION, prefix="poldem_mediation")
    std = fit.standardized_solution()
    a, b, c = (
        _est(std, lhs, "~", rhs) for lhs, rhs in [("dem60", "ind60"), ("dem65", "dem60"), ("dem65", "ind60")]
    )
    defined = std[std.op == ":="].set_index("lhs")
    assert list(defined.index) == ["indirect", "total"]
    assert defined.loc["indirect", "est.std"] == pytest.approx(a * b, abs=1e-12)
    assert defined.loc["total", "est.std"] == pytest.approx(c + a * b, abs=1e-12)
    assert defined["level"].isna().all()


# ---------------------------------------------------------------------------------------------------------
# R-squared and ICCs of the two-level seed model
# ---------------------------------------------------------------------------------------------------------


def test_two_level_r_squared_from_the_implied_moments(seed) -> None:
    r2 = seed.r_squared()
    assert list(zip(r2.variable, r2.level, strict=True)) == [
        ("y1", 1), ("y2", 1), ("y3", 1), ("fw", 1), ("y1", 2), ("y2", 2), ("y3", 2), ("fb", 2)
    ]  # fmt: skip
    estimates = lavaan_estimates("demo_twolevel")
    for level, kind in [(1, "within"), (2, "between")]:
        implied = pd.read_csv(LAVAAN / f"demo_twolevel_implied_{kind}_cov.csv", index_col=0)
        for y in ("y1", "y2", "y3"):
            expected = 1 - _est(estimates, y, "~~", y, level) / implied.loc[y, y]
            got = r2.loc[(r2.variable == y) & (r2.level == level), "r2"].item()
            assert got == pytest.approx(expected, abs=1e-10)


def test_observed_icc_equals_implied_between_share(seed) -> None:
    result = icc(seed)
    observed = result[result.kind == "observed"]
    assert list(observed.within) == list(observed.between) == ["y1", "y2", "y3"]
    within = pd.read_csv(LAVAAN / "demo_twolevel_implied_within_cov.csv", index_col=0)
    between = pd.read_csv(LAVAAN / "demo_twolevel_implied_between_cov.csv", index_col=0)
    for row in observed.itertuples():
        expected = between.loc[row.within, row.within] / (
            within.loc[row.within, row.within] + between.loc[row.within, row.within]
        )
        assert row.icc == pytest.approx(expected, abs=1e-10)


def test_factor_icc_from_the_implied_factor_variances(seed) -> None:
    estimates = lavaan_estimates("demo_twolevel")
    latent = seed.icc()
    latent = latent[latent.kind == "latent"]
    assert list(zip(latent.within, latent.between, strict=True)) == [("fw", "fb")]
    var_w = _latent_variance(estimates, "fw", ["x1", "x2", "x3"], 1)
    var_b = _latent_variance(estimates, "fb", ["w1", "w2"], 2)
    assert latent.icc.item() == pytest.approx(var_b / (var_w + var_b), abs=1e-10)
    assert not latent.equal_loadings.item()  # the seed model's loadings differ across levels


def test_factor_icc_flags_equal_loadings() -> None:
    model = """
    level: 1
        fw =~ y1 + a*y2 + b*y3
    level: 2
        fb =~ y1 + a*y2 + b*y3
    """
    spec = pymlsem.SEM(model, data("Demo.twolevel"), cluster="cluster")
    rows = spec.fixed_row_values()
    rows[np.isnan(rows)] = 0.5
    latent = _fit_at(spec, rows).icc()
    latent = latent[latent.kind == "latent"]
    assert latent.equal_loadings.tolist() == [True]
    assert latent.icc.item() == pytest.approx(0.5, abs=1e-12)  # both factor variances 0.5


def test_no_factor_icc_without_matching_factors() -> None:
    fit = _reference_fit("m2")
    result = fit.icc()
    assert set(result.kind) == {"observed"}
    assert list(result.within) == [f"y{i}" for i in range(1, 7)]
    assert result.icc.between(0, 1).all()


# ---------------------------------------------------------------------------------------------------------
# errors and summaries
# ---------------------------------------------------------------------------------------------------------


def test_unknown_type_is_our_error(seed) -> None:
    with pytest.raises(PymlsemError, match=r"std\.all"):
        seed.standardized_solution(type="std.ov")
    with pytest.raises(PymlsemError, match="prob"):
        standardized_solution(seed, prob=95)


def test_icc_needs_a_two_level_model() -> None:
    with pytest.raises(ModelSpecificationError, match="two-level model"):
        _reference_fit("hs_cfa").icc()


def test_summary_columns(seed) -> None:
    std = seed.standardized_solution(prob=0.9)
    assert list(std.columns) == [
        "lhs", "op", "rhs", "level", "label", "est.std", "sd", "q5", "q95", "r_hat", "ess_bulk", "ess_tail"
    ]  # fmt: skip
    assert list(r_squared(seed).columns[:3]) == ["variable", "level", "r2"]
    assert list(icc(seed).columns[:5]) == ["kind", "within", "between", "equal_loadings", "icc"]


# ---------------------------------------------------------------------------------------------------------
# a real posterior
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.sampling
def test_posterior_standardized_results(lavaan_std) -> None:
    fit = pymlsem.sem(
        SEED,
        data("Demo.twolevel"),
        cluster="cluster",
        chains=2,
        draws=300,
        tune=300,
        random_seed=5,
        progressbar=False,
    )
    n_rows = len(fit.model.partable.table)
    std = fit.standardized_solution()
    r2, iccs = fit.r_squared(), fit.icc()
    assert (len(std), len(r2), len(iccs)) == (n_rows, 8, 4)
    for frame, column in [(std, "est.std"), (r2, "r2"), (iccs, "icc")]:
        assert frame[column].notna().all()
        assert np.all(frame["q2.5"] <= frame[column])
        assert np.all(frame[column] <= frame["q97.5"])
    free = fit.model.built.row_param >= 0
    assert np.all(std["sd"][free] > 0) and std.r_hat[free].notna().all()
    assert np.all(std["sd"][~free & ~std.lhs.isin(["fw", "fb"])] == 0)  # fixed rows not about a factor
    assert r2.r2.between(0, 1).all() and iccs.icc.between(0, 1).all()
    merged = std.astype({"level": int}).reset_index(names="row")
    merged = merged.merge(lavaan_std, on=KEY, suffixes=("", "_lavaan"))
    assert len(merged) == n_rows
    # rows lavaan fixes (the covariates' moments, zero intercepts) are constants of the posterior too
    fixed = (merged["se"] == 0).to_numpy()
    assert (merged["sd"][fixed] == 0).all()
    np.testing.assert_allclose(merged["est.std"][fixed], merged["est.std_lavaan"][fixed], atol=1e-3)
    # the others against lavaan's std.all (tests/tolerances.py): K_MLE / sqrt(n) lavaan SEs, n = 2,500 rows
    # or 200 clusters, z = 3.5 for the 22 rows: about 0.3 SE within, 1 SE between. A standardized loading
    # that divides by the variance instead of the SD of the indicator (fw=~y1: 0.50 against 0.71, 13 SE) or
    # uses the total instead of the level's variance (3 SE and more) fails.
    varying = merged[~fixed]
    draws = fit_standardized_draws(fit, "std.all")[:, varying.row.to_numpy()]
    draws = xr.DataArray(draws.reshape(2, 300, -1), dims=("chain", "draw", "row"))
    np.testing.assert_allclose(draws.mean(("chain", "draw")), varying["est.std"])  # the same draws
    check_close(
        varying["est.std"],
        varying["est.std_lavaan"],
        mcse(draws),
        mle_allowance(varying["se"], np.where(varying.level == 1, fit.model.nobs, fit.model.n_clusters)),
        labels=[f"{r.lhs}{r.op}{r.rhs}@{r.level}" for r in varying.itertuples()],
    )
