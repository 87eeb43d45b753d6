"""Model checks of fitted SEMs (pymlsem.workflow): saturated moments, SRMR, replicated data and the PPP.

Without sampling, everything is checked at lavaan's ML estimates against lavaan 0.6-14 (see
data/reference/ORIGIN.md): the saturated (h1) two-level EM, the numpy log-likelihood, the chi-square
discrepancy and the SRMR. The replicated-data simulator (sufficient statistics drawn directly) is checked
against its definition: expected moments, and a brute-force simulator of rows. The sampling tests are the
issue's discrimination check: the seed model's PPP is middling, a clearly misspecified model's near 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr
from reference import LAVAAN, M2, REFERENCE_FITS, SEED, data, lavaan_estimates, lavaan_fitmeasure

import pymlsem
from pymlsem.build.marginal import loglik_from_rows
from pymlsem.data.stats import two_level_stats
from pymlsem.exceptions import ControlError
from pymlsem.results.fit import SEMFit
from pymlsem.sample import Timings
from pymlsem.workflow import (
    chisq_discrepancy,
    implied_moments,
    model_loglik,
    ppp_from_rows,
    sample_statistics,
    simulate_replicates,
    srmr_from_rows,
    two_level_h1,
)
from pymlsem.workflow.loglik import batch_of

MISSPECIFIED = """
level: 1
    fw =~ y1 + y2 + y3 + y4 + y5 + y6
level: 2
    fb =~ y1 + y2 + y3 + y4 + y5 + y6
"""


def _spec(name: str) -> tuple[pymlsem.SEM, np.ndarray, str]:
    model, dataset, cluster, prefix = REFERENCE_FITS[name]
    spec = pymlsem.SEM(model, data(dataset), cluster=cluster)
    return spec, np.asarray(spec.rows_from_estimates(lavaan_estimates(prefix)), dtype=float), prefix


@pytest.fixture(scope="module", params=list(REFERENCE_FITS))
def reference_fit(request) -> tuple[pymlsem.SEM, np.ndarray, str]:
    return _spec(request.param)


@pytest.fixture(scope="module")
def seed() -> tuple[pymlsem.SEM, np.ndarray, str]:
    return _spec("seed")


def _fit_at(spec: pymlsem.SEM, rows: np.ndarray, chains: int = 2, draws: int = 50) -> SEMFit:
    """A fit whose every posterior draw is the parameter vector of ``rows`` (no sampling)."""
    built = spec.built
    first_row = [int(np.flatnonzero(built.row_param == i)[0]) for i in range(len(built.free))]
    values = np.broadcast_to(rows[first_row], (chains, draws, len(first_row)))
    posterior = xr.Dataset(
        {"parameters": (("chain", "draw", "parameter"), values.copy())},
        coords={
            "chain": np.arange(chains),
            "draw": np.arange(draws),
            "parameter": [p.name for p in built.free],
        },
    )
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((chains, draws), dtype=bool))})
    idata = xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats})
    timings = Timings(0.0, 0.0, 0.0, 0.0, False)
    return SEMFit(spec, idata, sampler="nutpie", chains=chains, draws=draws, tune=0, timings=timings)


# --- the saturated model ---------------------------------------------------------------------------------


def test_two_level_saturated_moments_equal_lavaan(seed) -> None:
    """lavaan's EM settings reproduce ``lavInspect(fit, "sampstat")`` and ``unrestricted.logl`` exactly."""
    spec, _, prefix = seed
    h1 = sample_statistics(spec)
    assert h1.converged and h1.iterations > 1
    assert h1.loglik_fixed_x == pytest.approx(lavaan_fitmeasure(prefix, "unrestricted.logl"), abs=1e-8)
    for level, kind in ((1, "within"), (2, "between")):
        cov = pd.read_csv(LAVAAN / f"{prefix}_h1_{kind}_cov.csv", index_col=0)
        assert list(h1.cov[level].columns) == list(cov.columns)  # lavaan's variables and order per level
        np.testing.assert_allclose(h1.cov[level].to_numpy(), cov.to_numpy(), rtol=0, atol=1e-10)
    lavaan_within = pd.read_csv(LAVAAN / f"{prefix}_h1_within_mean.csv").iloc[0]
    lavaan_between = pd.read_csv(LAVAAN / f"{prefix}_h1_between_mean.csv").iloc[0]
    # within-only (x) and between-only (w) means: lavaan's
    for name in ("x1", "x2", "x3"):
        assert h1.mean[1][name] == pytest.approx(lavaan_within[name], abs=1e-10)
    for name in ("w1", "w2"):
        assert h1.mean[2][name] == pytest.approx(lavaan_between[name], abs=1e-10)
    # shared variables: only the sum is identified; lavaan 0.6-14 split it where its EM stopped, we (as
    # lavaan >= 0.6-18) put all of it at the between level
    for name in ("y1", "y2", "y3"):
        assert h1.mean[1][name] == 0.0
        total = lavaan_within[name] + lavaan_between[name]
        assert h1.mean[2][name] == pytest.approx(total, abs=1e-10)


def test_two_level_saturated_loglik_of_m2_equals_lavaan() -> None:
    spec, _, prefix = _spec("m2")
    h1 = sample_statistics(spec)
    assert h1.loglik == pytest.approx(lavaan_fitmeasure(prefix, "unrestricted.logl"), abs=1e-8)  # no x


def test_two_level_em_reaches_the_closed_form_ml_of_balanced_data() -> None:
    """Equal cluster sizes: the saturated ML has a closed form, which the EM reaches when run to the end."""
    frame = data("Demo.twolevel")
    balanced = frame[frame.groupby("cluster").cluster.transform("size") == 10]
    stats = pymlsem.SEM(M2, balanced, cluster="cluster").stats
    result = two_level_h1(batch_of(stats), tol=1e-12)
    n, clusters = 10.0, stats.nclusters
    sigma_w = stats.within_scatter / (clusters * (n - 1))
    sigma_b = stats.group_scatter[0] / clusters - sigma_w / n
    assert result.converged[0]
    # linear EM convergence: at tol = 1e-12 on the log-likelihood the estimates are within ~1e-7
    np.testing.assert_allclose(result.sigma_w[0], sigma_w, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.sigma_b[0], sigma_b, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.mu_b[0], stats.group_means[0], rtol=0, atol=1e-12)


def test_lavaans_em_stops_short_of_the_maximum(seed) -> None:
    """lavaan's tol = 1e-4 stops the EM early: run longer, the log-likelihood rises, by little."""
    spec, _, _ = seed
    lavaan_like = sample_statistics(spec)
    converged = sample_statistics(spec, tol=1e-10)
    assert converged.iterations > lavaan_like.iterations
    assert 0 < converged.loglik - lavaan_like.loglik < 1e-3
    for level in (1, 2):
        difference = (converged.cov[level] - lavaan_like.cov[level]).abs().to_numpy().max()
        assert 0 < difference < 1e-3


def test_em_started_at_the_generating_moments_reaches_the_same_maximum(seed) -> None:
    """The PPP's replicates start their EM at the moments they were drawn from: the same maximum as from
    lavaan's start, in fewer iterations (the seed model has within-only and between-only variables)."""
    spec, rows, _ = seed
    moments = implied_moments(spec, np.repeat(rows[None], 40, axis=0))
    batch = simulate_replicates(spec, moments, np.random.default_rng(5))
    start = (moments.mean[1], moments.cov[1], moments.mean[2], moments.cov[2])
    exact_default = two_level_h1(batch, tol=1e-10)
    exact_started = two_level_h1(batch, tol=1e-10, start=start)
    assert exact_default.converged.all() and exact_started.converged.all()
    np.testing.assert_allclose(exact_started.loglik, exact_default.loglik, rtol=0, atol=1e-6)
    default, started = two_level_h1(batch), two_level_h1(batch, start=start)
    assert started.iterations.mean() < default.iterations.mean()
    for result in (default, started):  # lavaan's tol stops each within 1e-3 of the maximum
        assert np.all(np.abs(result.loglik - exact_default.loglik) < 1e-3)


@pytest.mark.parametrize("name", ["hs_cfa", "poldem"])
def test_single_level_saturated_moments_are_the_sample_moments(name: str) -> None:
    spec, _, prefix = _spec(name)
    h1 = sample_statistics(spec)
    observed = list(spec.partable.observed[1])
    frame = data(REFERENCE_FITS[name][1])[observed]
    np.testing.assert_allclose(h1.mean[1].to_numpy(), frame.mean().to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(h1.cov[1].to_numpy(), frame.cov(ddof=0).to_numpy(), rtol=1e-12)
    # no exogenous covariates: lavaan's unrestricted.logl (with or without a mean structure)
    assert h1.loglik_fixed_x == pytest.approx(lavaan_fitmeasure(prefix, "unrestricted.logl"), abs=1e-8)


# --- batched log-likelihood, discrepancy and SRMR at lavaan's estimates ---------------------------------


def test_batched_loglik_equals_the_models_loglik_at_lavaans_estimates(reference_fit) -> None:
    spec, rows, prefix = reference_fit
    value = model_loglik(implied_moments(spec, rows), batch_of(spec.stats), meanstructure=spec.meanstructure)
    assert value.shape == (1,)
    assert value[0] == pytest.approx(spec.log_likelihood(lavaan_estimates(prefix), fixed_x=False), abs=1e-8)


def test_m2_has_two_maxima_and_lavaans_default_estimate_is_the_lower() -> None:
    """lavaan's M2 with y4 as the between factor's marker converges to another maximum, 65.6 higher: the
    Bayesian chains find both (tests/diagnostics/test_diagnostics.py names such chains), lavaan's default
    start only the lower. Our likelihood equals lavaan's logl at each."""
    lower, _, prefix = _spec("m2")
    marker_y4 = M2.replace("fb =~ y1+y2+y3+y4", "fb =~ y4+y1+y2+y3")
    higher = pymlsem.SEM(marker_y4, data("Demo.twolevel"), "cluster")
    values = {}
    for spec, name in ((lower, prefix), (higher, f"{prefix}_y4")):
        values[name] = spec.log_likelihood(lavaan_estimates(name), fixed_x=False)
        assert values[name] == pytest.approx(lavaan_fitmeasure(name, "logl"), abs=1e-6)
    assert values[f"{prefix}_y4"] - values[prefix] == pytest.approx(65.64, abs=0.01)


def test_select_chains_keeps_the_chains_of_the_highest_mode(seed) -> None:
    spec, rows, _ = seed
    fit = _fit_at(spec, rows, chains=4, draws=200)
    rng = np.random.default_rng(4)
    fit.idata.posterior["parameters"] += rng.normal(0.0, 0.01, fit.idata.posterior["parameters"].shape)
    log_density = rng.normal(-3000.0, 3.0, (4, 200))
    log_density[2] -= 50.0  # chain 2 in a lower mode, its draws elsewhere
    fit.idata.posterior["parameters"][2] += 1.0
    fit.idata["sample_stats"]["logp"] = xr.DataArray(log_density, dims=("chain", "draw"))
    assert fit.diagnose().loc["modes", "worst"].startswith("chain 2 at -5")
    kept = fit.select_chains([0, 1, 3])
    assert type(kept) is SEMFit and kept.chains == 3 and fit.chains == 4
    assert kept.diagnose()["ok"].all() and kept.convergence_note() is None
    assert list(kept.idata.posterior.chain.values) == [0, 1, 3]
    np.testing.assert_array_equal(kept.idata.sample_stats["logp"].values, log_density[[0, 1, 3]])
    means = kept.parameter_estimates().query("free")["mean"].to_numpy()
    np.testing.assert_allclose(means, rows[np.asarray(spec.built.row_param) >= 0], atol=0.01)
    assert not fit.diagnose()["ok"].all()  # the fit itself is unchanged
    for chains, words in (([], "no chain"), ([0, 0], "repeated"), ([1, 7], r"no chain \[7\]")):
        with pytest.raises(ControlError, match=words):
            fit.select_chains(chains)


def test_batched_loglik_follows_each_draw_like_the_pytensor_path(seed) -> None:
    """A batch of different draws gives, draw by draw, what the model's PyTensor likelihood gives."""
    spec, rows, _ = seed
    rng = np.random.default_rng(3)
    batch = rows[None, :] * (1 + 0.05 * rng.standard_normal((4, rows.size)))
    vector = pt.vector("rows")
    evaluate = pytensor.function(
        [vector], loglik_from_rows(spec.built.layouts, vector, spec.stats), mode="FAST_COMPILE"
    )
    values = model_loglik(implied_moments(spec, batch), batch_of(spec.stats))
    expected = [float(evaluate(draw)) for draw in batch]
    np.testing.assert_allclose(values, expected, rtol=1e-10)


def test_discrepancy_at_lavaans_estimates_is_lavaans_chisq(reference_fit) -> None:
    spec, rows, prefix = reference_fit
    value = chisq_discrepancy(spec, rows)
    assert value[0] == pytest.approx(lavaan_fitmeasure(prefix, "chisq"), abs=1e-6)


def test_srmr_at_lavaans_estimates_equals_lavaans(reference_fit) -> None:
    spec, rows, prefix = reference_fit
    table = srmr_from_rows(spec, rows)
    if spec.partable.n_levels == 2:
        for measure in ("srmr", "srmr_within", "srmr_between"):
            assert table[measure].iloc[0] == pytest.approx(lavaan_fitmeasure(prefix, measure), abs=1e-10)
    else:
        nomean = lavaan_fitmeasure(prefix, "srmr_bentler_nomean")
        assert table["srmr_nomean"].iloc[0] == pytest.approx(nomean, abs=1e-10)
        # HS was fitted with meanstructure = TRUE (srmr counts the zero mean residuals), PoliticalDemocracy
        # without (srmr is the covariance part); our fits always have a mean structure
        measure = "srmr" if prefix == "hs_cfa" else "srmr_nomean"
        assert table[measure].iloc[0] == pytest.approx(lavaan_fitmeasure(prefix, "srmr"), abs=1e-10)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # R-hat of constant draws
def test_fit_methods_at_lavaans_estimates(seed) -> None:
    """fit.srmr(), fit.sample_statistics() and the cached fit.ppp() on a posterior sitting at the MLE."""
    spec, rows, prefix = seed
    fit = _fit_at(spec, rows)
    summary = fit.srmr()
    assert list(summary.index) == ["srmr", "srmr_within", "srmr_between"]
    assert summary.loc["srmr_within", "mean"] == pytest.approx(lavaan_fitmeasure(prefix, "srmr_within"))
    assert summary.loc["srmr_between", "sd"] == pytest.approx(0.0, abs=1e-12)
    assert fit.sample_statistics() is fit.sample_statistics()
    result = fit.ppp(n_draws=60)
    assert result is fit.ppp(n_draws=60)  # computed once
    assert result.n_draws == 60 and np.unique(result.draws).size == 60
    np.testing.assert_allclose(result.observed, lavaan_fitmeasure(prefix, "chisq"))
    # a point-mass posterior at the MLE: the replicates' discrepancy is ~chi-square(df + npar) = 30, far
    # above the observed 8.09 of this well-fitting model
    assert result.ppp > 0.95
    text = fit.summary()
    assert "PPP (chi-square, 100 draws)" in text


def test_ppp_is_zero_for_a_misfitting_model_at_its_mle() -> None:
    spec, rows, prefix = _spec("m2")
    result = ppp_from_rows(spec, np.repeat(rows[None], 200, axis=0), seed=1)
    assert lavaan_fitmeasure(prefix, "chisq") > 400 and result.ppp == 0.0


def test_ppp_models_covariates_with_parts_at_both_levels() -> None:
    # x1 is named at both levels: not fixed.x but split into within and between parts (latent centering),
    # so its moments are model parameters and the discrepancy is computed like any other variable's
    model = "level: 1\n fw =~ y1+y2+y3\n fw ~ x1\nlevel: 2\n fb =~ y1+y2+y3\n fb ~ x1\n"
    spec = pymlsem.SEM(model, data("Demo.twolevel"), cluster="cluster")
    assert spec.partable.exogenous == {1: [], 2: []}
    rows = np.where(spec.built.row_param >= 0, 0.5, spec.fixed_row_values())
    result = ppp_from_rows(spec, rows[None])
    assert np.all(np.isfinite(np.asarray(result.observed)))


def test_ppp_rejects_a_bad_number_of_draws(seed) -> None:
    spec, rows, _ = seed
    with pytest.raises(pymlsem.ControlError):
        _fit_at(spec, rows).ppp(n_draws=0)


# --- replicated data ---------------------------------------------------------------------------------------


def test_replicates_keep_the_cluster_structure_and_the_covariates(seed) -> None:
    spec, rows, _ = seed
    stats = spec.stats
    moments = implied_moments(spec, np.repeat(rows[None], 5, axis=0))
    batch = simulate_replicates(spec, moments, np.random.default_rng(0))
    assert batch.size == 5 and batch.nobs == stats.nobs and batch.nclusters == stats.nclusters
    np.testing.assert_array_equal(batch.group_sizes, stats.group_sizes)
    np.testing.assert_array_equal(batch.group_counts, stats.group_counts)
    names = list(stats.variables)
    x = [names.index(v) for v in ("x1", "x2", "x3")]
    w = [names.index(v) for v in ("w1", "w2")]
    x_local = [list(stats.within_index).index(k) for k in x]
    for r in range(5):  # fixed.x: the covariates' statistics are the observed ones
        np.testing.assert_allclose(
            batch.within_scatter[r][np.ix_(x_local, x_local)], stats.within_scatter[np.ix_(x_local, x_local)]
        )
        np.testing.assert_allclose(batch.group_means[r][:, x + w], stats.group_means[:, x + w], atol=1e-12)
        np.testing.assert_allclose(
            batch.group_scatter[r][:, w][:, :, w], stats.group_scatter[:, w][:, :, w], atol=1e-10
        )
    y = [names.index(v) for v in ("y1", "y2", "y3")]
    assert np.all(np.diff(batch.group_means[:, :, y], axis=0) != 0)  # the rest is drawn anew


def _z_scores(draws: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Monte Carlo z-scores of the mean of ``draws`` (first axis) against ``expected``."""
    se = draws.std(axis=0, ddof=1) / np.sqrt(draws.shape[0])
    keep = se > 1e-8 * np.abs(draws).max()
    return np.abs(draws.mean(axis=0) - expected)[keep] / se[keep]


def test_replicate_moments_match_the_implied_moments_two_level() -> None:
    """No covariates (M2): E[S_PW] = Sigma_W, E[B_g] = (m_g - 1)(Sigma_B + Sigma_W / n_g), E[mean_g] = mu."""
    spec, rows, _ = _spec("m2")
    replicates = 4000
    moments = implied_moments(spec, np.repeat(rows[None], replicates, axis=0))
    batch = simulate_replicates(spec, moments, np.random.default_rng(11))
    stats = spec.stats
    sigma_w, sigma_b = moments.cov[1][0], moments.cov[2][0]
    mu = moments.mean[1][0] + moments.mean[2][0]
    within = batch.within_scatter / (stats.nobs - stats.nclusters)
    assert _z_scores(within, sigma_w).max() < 4.5
    for g, (n, m) in enumerate(zip(stats.group_sizes, stats.group_counts, strict=True)):
        between = batch.group_scatter[:, g] / (m - 1)
        assert _z_scores(between, sigma_b + sigma_w / n).max() < 4.5
        assert _z_scores(batch.group_means[:, g], mu).max() < 4.5


def test_replicate_moments_match_the_implied_moments_single_level() -> None:
    spec, rows, _ = _spec("hs_cfa")
    replicates = 4000
    moments = implied_moments(spec, np.repeat(rows[None], replicates, axis=0))
    batch = simulate_replicates(spec, moments, np.random.default_rng(12))
    n = spec.stats.nobs
    assert _z_scores(batch.cov, moments.cov[1][0] * (n - 1) / n).max() < 4.5
    assert _z_scores(batch.mean, moments.mean[1][0]).max() < 4.5


def test_replicate_moments_with_fixed_covariates_single_level() -> None:
    """Covariates held fixed: E[mean_y] = a + B xbar, E[scatter_yx] = B S_xx, E[scatter_yy] = B S_xx B' +
    (N - 1) Psi, from the conditional distribution of y given x (single level)."""
    spec = pymlsem.SEM("dem60 =~ y1 + y2 + y3 + y4\n dem60 ~ x1 + x2", data("PoliticalDemocracy"))
    table, stats = spec.partable.table, spec.stats
    names = list(stats.variables)
    by_op = {"=~": 0.8, "~": 0.3, "~~": 1.5}
    rows = spec.fixed_row_values()
    for r, row in enumerate(table.itertuples(index=False)):
        if spec.built.row_param[r] >= 0:
            rows[r] = stats.mean[names.index(row.lhs)] if row.op == "~1" else by_op[row.op]
    moments = implied_moments(spec, np.repeat(rows[None], 4000, axis=0))
    batch = simulate_replicates(spec, moments, np.random.default_rng(13))
    x = [names.index(v) for v in ("x1", "x2")]
    y = [k for k in range(len(names)) if k not in x]
    a, b, psi = _conditional(moments.mean[1][0], moments.cov[1][0], y, x)
    n = stats.nobs
    s_xx = stats.cov[np.ix_(x, x)] * n
    scatter = batch.cov * n
    np.testing.assert_allclose(scatter[:, x][:, :, x], np.broadcast_to(s_xx, (4000, 2, 2)), rtol=1e-10)
    assert _z_scores(batch.mean[:, y], a + b @ stats.mean[x]).max() < 4.5
    assert _z_scores(scatter[:, y][:, :, x], b @ s_xx).max() < 4.5
    assert _z_scores(scatter[:, y][:, :, y], b @ s_xx @ b.T + (n - 1) * psi).max() < 4.5


def test_replicated_discrepancy_at_the_truth_is_chi_square(seed) -> None:
    """Data drawn at theta, D(y_rep, theta) is ~chi-square on the saturated model's free moments (lavaan's
    df + npar): a check of replicates, saturated EM and likelihood together."""
    spec, rows, prefix = seed
    result = ppp_from_rows(spec, np.repeat(rows[None], 2000, axis=0), seed=2)
    dof = lavaan_fitmeasure(prefix, "df") + lavaan_fitmeasure(prefix, "npar")
    se = np.sqrt(2 * dof / 2000)
    assert abs(result.replicated.mean() - dof) < 5 * se
    assert result.replicated.var() == pytest.approx(2 * dof, rel=0.15)


def _conditional(mean: np.ndarray, cov: np.ndarray, y: list[int], x: list[int]) -> tuple:
    """Intercepts, slopes and residual covariance of y given x for one set of moments."""
    slopes = cov[np.ix_(y, x)] @ np.linalg.inv(cov[np.ix_(x, x)]) if x else np.zeros((len(y), 0))
    resid = cov[np.ix_(y, y)] - slopes @ cov[np.ix_(x, y)] if x else cov[np.ix_(y, y)]
    return mean[y] - slopes @ mean[x], slopes, resid


def _replicate_rows(spec: pymlsem.SEM, moments, frame: pd.DataFrame, rng: np.random.Generator):
    """Brute force: draw every row, the covariates held at their observed values, then compute the stats."""
    names = list(spec.stats.variables)
    table = spec.partable
    both = [v for v in names if v not in table.within_only and v not in table.between_only]
    y_w = [v for v in names if v not in table.between_only and v not in table.exogenous[1]]
    y_b = [v for v in names if v not in table.within_only and v not in table.exogenous[2]]
    idx = {v: names.index(v) for v in names}
    a_w, b_w, psi_w = _conditional(
        moments.mean[1][0], moments.cov[1][0], [idx[v] for v in y_w], [idx[v] for v in table.exogenous[1]]
    )
    a_b, b_b, psi_b = _conditional(
        moments.mean[2][0], moments.cov[2][0], [idx[v] for v in y_b], [idx[v] for v in table.exogenous[2]]
    )
    clusters, codes = np.unique(frame["cluster"].to_numpy(), return_inverse=True)
    out = frame.copy()
    x_rows = frame[table.exogenous[1]].to_numpy()
    within = a_w + x_rows @ b_w.T + rng.multivariate_normal(np.zeros(len(y_w)), psi_w, size=len(frame))
    z = frame.groupby("cluster")[table.exogenous[2]].first().loc[clusters].to_numpy()
    between = a_b + z @ b_b.T + rng.multivariate_normal(np.zeros(len(y_b)), psi_b, size=clusters.size)
    out[y_w] = within
    for k, v in enumerate(y_b):
        out[v] = (out[v] if v in both else 0.0) + between[codes, k]
    return two_level_stats(
        out, names, "cluster", within_only=table.within_only, between_only=table.between_only
    )


def test_replicated_statistics_have_the_distribution_of_replicated_rows(seed) -> None:
    """The shortcut (statistics drawn directly, covariates fixed) against drawing all 2500 rows."""
    spec, rows, _ = seed
    frame = data("Demo.twolevel")
    moments = implied_moments(spec, rows[None])
    rng = np.random.default_rng(5)
    brute = [_replicate_rows(spec, moments, frame, rng) for _ in range(300)]
    many = implied_moments(spec, np.repeat(rows[None], 3000, axis=0))
    fast = simulate_replicates(spec, many, np.random.default_rng(6))

    def compare(a: np.ndarray, b: np.ndarray) -> float:
        se = np.sqrt(a.var(axis=0, ddof=1) / a.shape[0] + b.var(axis=0, ddof=1) / b.shape[0])
        keep = se > 1e-8 * np.abs(b).max()  # the fixed covariates' parts differ by rounding only
        return float((np.abs(a.mean(axis=0) - b.mean(axis=0))[keep] / se[keep]).max())

    assert compare(np.stack([s.within_scatter for s in brute]), fast.within_scatter) < 4.5
    assert compare(np.stack([s.group_means for s in brute]), fast.group_means) < 4.5
    assert compare(np.stack([s.group_scatter for s in brute]), fast.group_scatter) < 4.5
    # second moments too: the spread of the pooled within scatter of y
    y = [list(spec.stats.within_index).index(spec.stats.variables.index(v)) for v in ("y1", "y2", "y3")]
    brute_sd = np.stack([s.within_scatter for s in brute])[:, y, y].std(axis=0)
    fast_sd = fast.within_scatter[:, y, y].std(axis=0)
    np.testing.assert_allclose(brute_sd, fast_sd, rtol=0.15)  # SD of an SD estimate from 300 draws: ~4%


# --- the discrimination test (sampling) ------------------------------------------------------------


@pytest.mark.sampling
def test_ppp_discriminates_a_fitting_from_a_misspecified_two_level_model() -> None:
    frame = data("Demo.twolevel")
    settings = {"chains": 2, "draws": 300, "tune": 300, "random_seed": 1, "progressbar": False}
    fitting = pymlsem.sem(SEED, frame, cluster="cluster", **settings)
    misspecified = pymlsem.sem(MISSPECIFIED, frame, cluster="cluster", **settings)
    good, bad = fitting.ppp(), misspecified.ppp()
    assert good.n_draws == 600 and bad.n_draws == 600
    assert 0.2 < good.ppp < 0.8  # lavaan's chi-square p-value of this model is 0.62
    assert bad.ppp < 0.05  # lavaan: chi-square far in the tail
    assert f"{good.ppp:.3f}" in fitting.summary()
    # the misfit is at the within level (two factors, not one): its within SRMR says so
    assert misspecified.srmr().loc["srmr_within", "q2.5"] > fitting.srmr().loc["srmr_within", "q97.5"]
