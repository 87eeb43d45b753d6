"""Tests of the full-information (missing = "ml") log-likelihoods against complete-data and brute-force
densities (no sampling)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from reference import LAVAAN, SEED, data
from scipy.stats import Covariance, multivariate_normal

import pymlsem
from pymlsem.build.loglik import single_level_loglik, stats_as_data, two_level_loglik
from pymlsem.build.missing import (
    single_level_missing_loglik,
    single_level_missing_row_loglik,
    two_level_missing_cluster_loglik,
    two_level_missing_loglik,
)
from pymlsem.data.missing_stats import (
    MissingTwoLevelStats,
    has_missing,
    single_level_missing_stats,
    two_level_missing_stats,
)
from pymlsem.data.stats import single_level_stats, two_level_stats
from pymlsem.exceptions import DataError
from pymlsem.workflow.incomplete import loglik_draws, missing_stats_of, missing_total_loglik
from pymlsem.workflow.loglik import implied_moments
from pymlsem.workflow.ppp import chisq_discrepancy, ppp_from_rows
from pymlsem.workflow.predictive import replicate_rows
from pymlsem.workflow.saturated import sample_statistics
from pymlsem.workflow.saturated_missing import missing_h1, two_level_missing_h1
from pymlsem.workflow.srmr import srmr_from_rows

#: formula checks: PyTensor evaluates the graphs by Python thunks (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("uncompiled_graphs")

VARIABLES = ["y1", "y2", "y3", "x1", "x2", "x3", "w1", "w2"]
WITHIN_ONLY = ["x1", "x2", "x3"]
BETWEEN_ONLY = ["w1", "w2"]
W = [0, 1, 2, 3, 4, 5]  # within-varying positions
B = [0, 1, 2, 6, 7]  # between-varying positions
P = len(VARIABLES)


# ---------------------------------------------------------------------- helpers
def evaluate(value: pt.TensorVariable) -> float:
    return float(pytensor.function([], value, mode="FAST_COMPILE")())


def evaluate_vector(value: pt.TensorVariable) -> np.ndarray:
    return np.asarray(pytensor.function([], value, mode="FAST_COMPILE")())


def random_pd(rng: np.random.Generator, size: int, scale: float = 1.0) -> np.ndarray:
    a = rng.normal(size=(size, size))
    return scale * (a @ a.T / size + 0.5 * np.eye(size))


def moments(seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Arbitrary PD two-level moments, zero-padded as lavaan's (and loglik.py's) convention."""
    rng = np.random.default_rng(seed)
    sigma_w, sigma_b = np.zeros((P, P)), np.zeros((P, P))
    sigma_w[np.ix_(W, W)] = random_pd(rng, len(W))
    sigma_b[np.ix_(B, B)] = random_pd(rng, len(B), 0.5)
    mu_w = np.zeros(P)
    mu_w[W] = rng.normal(size=len(W))
    mu_b = np.zeros(P)
    mu_b[B] = rng.normal(size=len(B))
    return mu_w, sigma_w, mu_b, sigma_b


def two_level_missing(frame: pd.DataFrame) -> MissingTwoLevelStats:
    return two_level_missing_stats(
        frame, VARIABLES, "cluster", within_only=WITHIN_ONLY, between_only=BETWEEN_ONLY
    )


def logpdf(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> float:
    """scipy's normal log-density (the covariance given by its Cholesky factor: eigh is slow here)."""
    return float(multivariate_normal(mean, Covariance.from_cholesky(np.linalg.cholesky(cov))).logpdf(x))


def brute_force_clusters(
    frame: pd.DataFrame, mu_w: np.ndarray, sigma_w: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray
) -> dict[int, float]:
    """The joint normal log-density of all observed cells of each cluster (with an observed cell)."""
    mu = mu_w + mu_b
    out = {}
    for label, group in frame.groupby("cluster"):
        y = group[VARIABLES].to_numpy(dtype=float)
        # cells (row, variable, value); between-only values form a 'row' of their own (-1)
        cells = [(i, a, y[i, a]) for i in range(y.shape[0]) for a in W if np.isfinite(y[i, a])]
        for a in (6, 7):
            seen = y[np.isfinite(y[:, a]), a]
            if seen.size:
                cells.append((-1, a, seen[0]))
        if not cells:
            continue
        r = np.array([cell[0] for cell in cells])
        c = np.array([cell[1] for cell in cells])
        # Sigma_W is zero for between-only variables, so they get no within part
        cov = (r[:, None] == r[None, :]) * sigma_w[np.ix_(c, c)] + sigma_b[np.ix_(c, c)]
        out[label] = logpdf(np.array([cell[2] for cell in cells]), mu[c], cov)
    return out


def brute_force_two_level(
    frame: pd.DataFrame, mu_w: np.ndarray, sigma_w: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray
) -> float:
    """Sum over clusters of the joint normal log-density of all observed cells of the cluster."""
    return float(sum(brute_force_clusters(frame, mu_w, sigma_w, mu_b, sigma_b).values()))


def brute_force_rows(frame: pd.DataFrame, variables: list[str], mu, sigma) -> np.ndarray:
    """The normal log-density of each row's observed values (0 for a row without one)."""
    out = np.zeros(len(frame))
    for k, row in enumerate(frame[variables].to_numpy(dtype=float)):
        o = np.flatnonzero(np.isfinite(row))
        if o.size:
            out[k] = logpdf(row[o], mu[o], sigma[np.ix_(o, o)])
    return out


def brute_force_single_level(frame: pd.DataFrame, variables: list[str], mu, sigma) -> float:
    return float(brute_force_rows(frame, variables, mu, sigma).sum())


@pytest.fixture(scope="module")
def incomplete(demo: pd.DataFrame) -> pd.DataFrame:
    """Demo.twolevel with ~15% of y1..y3 missing, w1 missing in a few clusters, and hard cases."""
    rng = np.random.default_rng(20240601)
    frame = demo.copy()
    for name in ("y1", "y2", "y3"):
        frame.loc[rng.random(len(frame)) < 0.15, name] = np.nan
    for label in (3, 7, 11):
        frame.loc[frame.cluster == label, "w1"] = np.nan
    frame.loc[frame.cluster == 5, "y1"] = np.nan  # a both-level variable unseen in a whole cluster
    frame.loc[frame.cluster == 9, ["y1", "y2", "y3", "x1", "x2", "x3"]] = np.nan  # only w1, w2 seen
    frame.loc[frame.cluster == 13, "w2"] = np.nan
    first = frame.index[frame.cluster == 13][0]
    frame.loc[first, "w2"] = demo.loc[first, "w2"]  # w2 seen in one row of the cluster only
    frame.loc[frame.index[:3], ["y1", "y2", "y3", "x1", "x2", "x3"]] = np.nan  # rows with no within value
    return frame


# ---------------------------------------------------------------------- (a) complete data
def test_two_level_complete_data_equals_complete_loglik(demo: pd.DataFrame) -> None:
    mu_w, sigma_w, mu_b, sigma_b = moments()
    complete = two_level_stats(demo, VARIABLES, "cluster", within_only=WITHIN_ONLY, between_only=BETWEEN_ONLY)
    expected = evaluate(two_level_loglik(mu_w, sigma_w, mu_b, sigma_b, complete))
    value = evaluate(two_level_missing_loglik(mu_w, sigma_w, mu_b, sigma_b, two_level_missing(demo)))
    assert value == pytest.approx(expected, abs=1e-8)


def test_single_level_complete_data_equals_complete_loglik(demo: pd.DataFrame) -> None:
    rng = np.random.default_rng(2)
    names = VARIABLES[:6]
    mu, sigma = rng.normal(size=6), random_pd(rng, 6)
    expected = evaluate(single_level_loglik(mu, sigma, single_level_stats(demo, names)))
    value = evaluate(single_level_missing_loglik(mu, sigma, single_level_missing_stats(demo, names)))
    assert value == pytest.approx(expected, abs=1e-8)


# ---------------------------------------------------------------------- (b) brute force
@pytest.mark.parametrize("seed", [1, 2])
def test_two_level_missing_equals_brute_force(incomplete: pd.DataFrame, seed: int) -> None:
    mu_w, sigma_w, mu_b, sigma_b = moments(seed)
    value = evaluate(two_level_missing_loglik(mu_w, sigma_w, mu_b, sigma_b, two_level_missing(incomplete)))
    assert value == pytest.approx(brute_force_two_level(incomplete, mu_w, sigma_w, mu_b, sigma_b), abs=1e-8)


def test_two_level_missing_with_singular_between_covariance(incomplete: pd.DataFrame) -> None:
    """A rank-one between covariance of y1..y3 (zero between residual variances) needs no inverse."""
    mu_w, sigma_w, mu_b, sigma_b = moments(3)
    loading = np.array([1.0, 0.8, 1.2])
    sigma_b[np.ix_([0, 1, 2], [0, 1, 2])] = 0.3 * np.outer(loading, loading)
    sigma_b[np.ix_([0, 1, 2], [6, 7])] = 0.1 * loading[:, None]
    sigma_b[np.ix_([6, 7], [0, 1, 2])] = 0.1 * loading[None, :]
    assert np.linalg.matrix_rank(sigma_b[np.ix_(B, B)]) == 3
    value = evaluate(two_level_missing_loglik(mu_w, sigma_w, mu_b, sigma_b, two_level_missing(incomplete)))
    assert value == pytest.approx(brute_force_two_level(incomplete, mu_w, sigma_w, mu_b, sigma_b), abs=1e-8)


def test_two_level_missing_statistics_as_pm_data(incomplete: pd.DataFrame) -> None:
    mu_w, sigma_w, mu_b, sigma_b = moments(4)
    stats = two_level_missing(incomplete)
    with pm.Model():
        wrapped = stats_as_data(stats, prefix="stats__")
        value = evaluate(two_level_missing_loglik(mu_w, sigma_w, mu_b, sigma_b, wrapped))
    assert value == pytest.approx(brute_force_two_level(incomplete, mu_w, sigma_w, mu_b, sigma_b), abs=1e-8)


def test_single_level_missing_equals_brute_force(incomplete: pd.DataFrame) -> None:
    rng = np.random.default_rng(5)
    names = VARIABLES[:6]
    mu, sigma = rng.normal(size=6), random_pd(rng, 6)
    stats = single_level_missing_stats(incomplete, names)
    assert stats.nobs == len(incomplete) - incomplete[names].isna().all(axis=1).sum()
    value = evaluate(single_level_missing_loglik(mu, sigma, stats))
    assert value == pytest.approx(brute_force_single_level(incomplete, names, mu, sigma), abs=1e-8)
    with pytest.raises(DataError, match="mean structure"):
        single_level_missing_loglik(None, sigma, stats)


def test_cluster_values_equal_brute_force_and_add_up_to_the_total(incomplete: pd.DataFrame) -> None:
    """Patterns split by cluster give each cluster's own density; their sum is the model's likelihood."""
    mu_w, sigma_w, mu_b, sigma_b = moments(6)
    stats = two_level_missing_stats(
        incomplete, VARIABLES, "cluster", within_only=WITHIN_ONLY, between_only=BETWEEN_ONLY, by_cluster=True
    )
    pooled = two_level_missing(incomplete)
    assert stats.pattern_observed.shape[0] > pooled.pattern_observed.shape[0]
    assert ((stats.cluster_pattern_counts > 0).sum(axis=0) == 1).all()  # every pattern in one cluster
    values = evaluate_vector(two_level_missing_cluster_loglik(mu_w, sigma_w, mu_b, sigma_b, stats))
    expected = brute_force_clusters(incomplete, mu_w, sigma_w, mu_b, sigma_b)
    assert list(stats.cluster_ids) == list(expected)
    np.testing.assert_allclose(values, list(expected.values()), rtol=1e-10)
    total = evaluate(two_level_missing_loglik(mu_w, sigma_w, mu_b, sigma_b, pooled))
    assert values.sum() == pytest.approx(total, rel=1e-12)
    # the split statistics are valid statistics of the same data: same total
    assert evaluate(two_level_missing_loglik(mu_w, sigma_w, mu_b, sigma_b, stats)) == pytest.approx(
        total, rel=1e-12
    )


def test_row_values_equal_brute_force(incomplete: pd.DataFrame) -> None:
    rng = np.random.default_rng(7)
    names = VARIABLES[:6]
    mu, sigma = rng.normal(size=6), random_pd(rng, 6)
    seen = incomplete[names].notna().any(axis=1).to_numpy()
    stats = single_level_missing_stats(incomplete, names, by_row=True)
    assert stats.pattern_counts.tolist() == [1.0] * seen.sum()
    values = evaluate_vector(single_level_missing_row_loglik(mu, sigma, stats))
    np.testing.assert_allclose(values, brute_force_rows(incomplete, names, mu, sigma)[seen], rtol=1e-10)


# ---------------------------------------------------------------------- (c) -inf
def test_non_positive_definite_gives_minus_inf(incomplete: pd.DataFrame) -> None:
    mu_w, sigma_w, mu_b, sigma_b = moments(6)
    stats = two_level_missing(incomplete)
    bad_w = sigma_w.copy()
    bad_w[0, 1] = bad_w[1, 0] = 2.0 * np.sqrt(bad_w[0, 0] * bad_w[1, 1])
    assert evaluate(two_level_missing_loglik(mu_w, bad_w, mu_b, sigma_b, stats)) == -np.inf
    bad_b = sigma_b.copy()
    bad_b[6, 6] = -0.5  # w1 enters without a within part: every cluster's covariance is indefinite
    assert evaluate(two_level_missing_loglik(mu_w, sigma_w, mu_b, bad_b, stats)) == -np.inf
    names = VARIABLES[:6]
    value = single_level_missing_loglik(
        mu_w[W], bad_w[np.ix_(W, W)], single_level_missing_stats(incomplete, names)
    )
    assert evaluate(value) == -np.inf


# ---------------------------------------------------------------------- (c2) the post-fit kernels
def _draws(incomplete_block: bool = True) -> tuple[dict, dict]:
    """Three draws' moments by level: PD, an indefinite within covariance whose y-block is PD (the rows
    seeing only y fail, the others not) and an indefinite between covariance (some clusters fail)."""
    draws = [moments(seed) for seed in (11, 12, 13)]
    bad_w = draws[1][1]
    bad_w[3, 4] = bad_w[4, 3] = 2.0 * np.sqrt(bad_w[3, 3] * bad_w[4, 4])
    draws[2][3][6, 6] = -0.5
    mean = {1: np.stack([d[0] for d in draws]), 2: np.stack([d[2] for d in draws])}
    cov = {1: np.stack([d[1] for d in draws]), 2: np.stack([d[3] for d in draws])}
    return mean, cov


def test_post_fit_kernels_equal_the_models_expressions(incomplete: pd.DataFrame) -> None:
    """The post-fit checks' densities (numba kernels over draws) are the expressions the model samples
    with: in total and per cluster (two levels), in total and per row (one level), ``-inf`` included."""
    mean, cov = _draws()
    pooled = two_level_missing(incomplete)
    by_cluster = two_level_missing_stats(
        incomplete, VARIABLES, "cluster", within_only=WITHIN_ONLY, between_only=BETWEEN_ONLY, by_cluster=True
    )
    names = VARIABLES[:6]
    single = single_level_missing_stats(incomplete, names)
    by_row = single_level_missing_stats(incomplete, names, by_row=True)
    one_level = ({1: mean[1][:, :6]}, {1: cov[1][:, :6, :6]})
    got = {
        "total": loglik_draws((mean, cov), pooled, per_unit=False),
        "clusters": loglik_draws((mean, cov), by_cluster, per_unit=True),
        "single": loglik_draws(one_level, single, per_unit=False),
        "rows": loglik_draws(one_level, by_row, per_unit=True),
    }
    for s in range(3):
        level = (mean[1][s], cov[1][s], mean[2][s], cov[2][s])
        expected = {
            "total": evaluate(two_level_missing_loglik(*level, pooled)),
            "clusters": evaluate_vector(two_level_missing_cluster_loglik(*level, by_cluster)),
            "single": evaluate(single_level_missing_loglik(mean[1][s, :6], cov[1][s, :6, :6], single)),
            "rows": evaluate_vector(
                single_level_missing_row_loglik(mean[1][s, :6], cov[1][s, :6, :6], by_row)
            ),
        }
        for key, value in expected.items():
            np.testing.assert_allclose(got[key][s], value, rtol=1e-10, err_msg=f"{key}, draw {s}")
    assert np.isfinite(got["clusters"][0]).all() and np.isfinite(got["rows"][0]).all()
    assert np.isneginf(got["total"][1:]).all() and np.isneginf(got["clusters"][1]).all()
    assert np.isneginf(got["clusters"][2]).any() and not np.isneginf(got["clusters"][2]).all()
    assert np.isneginf(got["rows"][1]).all() and np.isfinite(got["rows"][2]).all()


# ---------------------------------------------------------------------- (d) gradient
def test_gradient_is_finite_and_matches_finite_differences(incomplete: pd.DataFrame) -> None:
    mu_w, sigma_w, mu_b, sigma_b = moments(7)
    stats = two_level_missing(incomplete)
    scale = pt.dscalar("scale")
    value = two_level_missing_loglik(mu_w, scale * sigma_w, mu_b, sigma_b, stats)
    fn = pytensor.function([scale], [value, pytensor.grad(value, scale)], mode="FAST_COMPILE")
    (_, grad), (up, _), (down, _) = fn(1.0), fn(1.0 + 1e-6), fn(1.0 - 1e-6)
    assert np.isfinite(grad)
    assert grad == pytest.approx((up - down) / 2e-6, rel=1e-5)
    value_at_bad, grad_at_bad = fn(-1.0)  # not positive definite
    assert value_at_bad == -np.inf and np.isfinite(grad_at_bad)


def test_gradient_of_all_moments_matches_finite_differences(incomplete: pd.DataFrame) -> None:
    """Directional derivative along a random direction of (mu_w, sigma_w, mu_b, sigma_b), padding kept."""
    rng = np.random.default_rng(8)
    point = moments(8)
    stats = two_level_missing(incomplete)
    inputs = [pt.dvector("mu_w"), pt.dmatrix("sigma_w"), pt.dvector("mu_b"), pt.dmatrix("sigma_b")]
    value = two_level_missing_loglik(*inputs, stats)
    fn = pytensor.function(inputs, [value, *pytensor.grad(value, inputs)], mode="FAST_COMPILE")
    direction = []
    for x in point:
        d = rng.normal(size=x.shape) * (x != 0)
        direction.append((d + d.T) / 2 if d.ndim == 2 else d)
    _, *grad = fn(*point)
    analytic = sum(float(np.sum(g * d)) for g, d in zip(grad, direction, strict=True))
    step = 1e-6
    up = fn(*[x + step * d for x, d in zip(point, direction, strict=True)])[0]
    down = fn(*[x - step * d for x, d in zip(point, direction, strict=True)])[0]
    assert analytic == pytest.approx((up - down) / (2 * step), rel=1e-5)


# ---------------------------------------------------------------------- (e) statistics
def test_statistics_of_complete_data(demo: pd.DataFrame) -> None:
    assert not has_missing(demo, VARIABLES)
    stats = two_level_missing(demo)
    complete = two_level_stats(demo, VARIABLES, "cluster", within_only=WITHIN_ONLY, between_only=BETWEEN_ONLY)
    assert stats.pattern_observed.shape == (1, P)
    np.testing.assert_array_equal(stats.pattern_observed[0], np.isin(np.arange(P), W))
    assert stats.pattern_counts.tolist() == [len(demo)]
    assert (stats.nobs, stats.nclusters) == (complete.nobs, complete.nclusters)
    assert float(stats.n_values) == len(demo) * len(W) + complete.nclusters * len(BETWEEN_ONLY)
    np.testing.assert_array_equal(stats.cluster_ids, complete.cluster_ids)
    np.testing.assert_array_equal(stats.cluster_pattern_counts[:, 0], complete.cluster_sizes)
    np.testing.assert_allclose(
        stats.cluster_pattern_sums[:, 0, W], complete.cluster_means[:, W] * complete.cluster_sizes[:, None]
    )
    np.testing.assert_allclose(stats.cluster_values[:, [6, 7]], complete.cluster_means[:, [6, 7]])
    np.testing.assert_array_equal(stats.cluster_observed, np.ones((complete.nclusters, P)))
    np.testing.assert_array_equal(stats.within_index, complete.within_index)
    np.testing.assert_array_equal(stats.between_index, B)

    single = single_level_missing_stats(demo, VARIABLES)
    full = single_level_stats(demo, VARIABLES)
    assert single.pattern_counts.tolist() == [len(demo)] and single.nobs == full.nobs
    np.testing.assert_allclose(single.pattern_means[0], full.mean)
    np.testing.assert_allclose(single.pattern_scatter[0] / full.nobs, full.cov, atol=1e-12)


def test_statistics_of_incomplete_data(incomplete: pd.DataFrame) -> None:
    stats = two_level_missing(incomplete)
    no_within = incomplete[VARIABLES[:6]].isna().all(axis=1)
    assert stats.nobs == len(incomplete) - no_within.sum() < len(incomplete) - 3  # those rows are dropped
    assert stats.pattern_observed[0].tolist() == [1, 1, 1, 1, 1, 1, 0, 0]  # complete pattern first
    assert stats.pattern_counts.sum() == stats.cluster_pattern_counts.sum() == stats.nobs
    j = {label: k for k, label in enumerate(stats.cluster_ids)}
    assert stats.cluster_observed[j[5], 0] == 0 and stats.cluster_observed[j[9]].tolist() == [0] * 6 + [1, 1]
    assert stats.cluster_observed[j[3], 6] == 0 and stats.cluster_values[j[3], 6] == 0
    assert stats.cluster_observed[j[13], 7] == 1
    assert stats.cluster_sizes[j[9]] == 0
    w_values = incomplete.groupby("cluster")[BETWEEN_ONLY].first().notna().to_numpy().sum()
    assert float(stats.n_values) == incomplete[VARIABLES[:6]].notna().to_numpy().sum() + w_values


def test_statistics_errors(demo: pd.DataFrame) -> None:
    frame = demo.copy()
    frame.loc[frame.index[1], "w1"] = 99.0  # varies within cluster 1
    with pytest.raises(DataError, match="varies within cluster"):
        two_level_missing(frame)
    frame = demo.copy()
    frame.loc[frame.index[0], "y1"] = np.inf
    with pytest.raises(DataError, match="infinite"):
        two_level_missing(frame)
    with pytest.raises(DataError, match="not found"):
        single_level_missing_stats(demo, ["y1", "nope"])


# --------------------------------------------------------------------------------------------------------
# the saturated model of incomplete data (EM) and the chi-square, against lavaan's missing = "ml"

HS_CFA = "visual =~ x1 + x2 + x3\n textual =~ x4 + x5 + x6\n speed =~ x7 + x8 + x9"


def _less_lavaansloglik_draws(name: str, columns: list[str]) -> pd.DataFrame:
    """A data set less the values lavaan's references remove: in 1-based row r, the first column when
    r % 7 == 0, the second when r % 11 == 3, the third when r % 13 == 5."""
    frame = data(name)
    r = np.arange(1, len(frame) + 1)
    for column, (every, at) in zip(columns, [(7, 0), (11, 3), (13, 5)], strict=True):
        frame.loc[r % every == at, column] = np.nan
    return frame


def _hs_incomplete() -> pd.DataFrame:
    """HolzingerSwineford1939 less the values lavaan's reference removes (reference/lavaan/hs_missing.R)."""
    return _less_lavaansloglik_draws("HolzingerSwineford1939", ["x1", "x5", "x9"])


def _hs_reference(name: str) -> pd.DataFrame:
    return pd.read_csv(LAVAAN / f"hs_missing_{name}.csv")


def test_saturated_model_of_incomplete_data_is_lavaans() -> None:
    """EM's means and covariances equal lavaan's sampstat.h1 within its EM tolerance, and their
    full-information log-likelihood is lavaan's unrestricted.logl; sample_statistics() returns them."""
    spec = pymlsem.SEM(HS_CFA, _hs_incomplete(), model_type="cfa")
    h1 = missing_h1(spec.likelihood_stats)
    reference = _hs_reference("h1").set_index("variable")
    names = list(spec.likelihood_stats.variables)
    np.testing.assert_allclose(h1.mean, reference.loc[names, "mean"], atol=1e-4)
    np.testing.assert_allclose(h1.cov, reference.loc[names, names], atol=1e-4)
    fit_measures = _hs_reference("fitmeasures").set_index("measure")["value"]
    assert h1.loglik == pytest.approx(fit_measures["unrestricted.logl"], rel=1e-9)
    moments = sample_statistics(spec)
    np.testing.assert_allclose(moments.cov[1].loc[names, names], h1.cov)


def test_chisq_of_incomplete_data_is_lavaans_and_its_ppp_replicates_have_the_df() -> None:
    """At lavaan's estimates the chi-square discrepancy is lavaan's test statistic (76.79, df 24). Data
    replicated there, with the data's missing values and the saturated model refitted by EM to each, have
    a discrepancy at those fixed parameters that is ~chi-square on the saturated model's free moments
    (lavaan's df + npar = 54): mean within 5 standard errors sqrt(2 dof / R), as for complete data
    (test_model_fit); a replicate without the missingness or a saturated model not refitted misses."""
    spec = pymlsem.SEM(HS_CFA, _hs_incomplete(), model_type="cfa")
    rows = np.asarray(spec.rows_from_estimates(_hs_reference("estimates")), dtype=float)[None]
    fit_measures = _hs_reference("fitmeasures").set_index("measure")["value"]
    assert chisq_discrepancy(spec, rows)[0] == pytest.approx(fit_measures["chisq"], rel=1e-7)
    # lavaan's SRMR (Bentler's, with the mean residuals) against the EM moments
    assert srmr_from_rows(spec, rows)["srmr"].iloc[0] == pytest.approx(fit_measures["srmr"], rel=1e-5)
    replicates, dof = 400, fit_measures["df"] + len(spec.built.free)
    result = ppp_from_rows(spec, np.repeat(rows, replicates, axis=0), seed=3)
    assert result.discrepancy == "chi-square" and result.n_draws == replicates and dof == 54
    assert abs(result.replicated.mean() - dof) < 5 * np.sqrt(2 * dof / replicates)
    assert result.replicated.var() == pytest.approx(2 * dof, rel=0.25)


def _draws_around(spec: pymlsem.SEM, estimates: pd.DataFrame, scales: tuple[float, ...]) -> np.ndarray:
    """Parameter-table rows at the estimates, then with every free value scaled by each of ``scales``."""
    rows = np.asarray(spec.rows_from_estimates(estimates), dtype=float)
    free = spec.built.row_param >= 0
    draws = np.repeat(rows[None], 1 + len(scales), axis=0)
    for s, scale in enumerate(scales, start=1):
        draws[s, free] *= scale
    return draws


def _replicate_frames(spec: pymlsem.SEM, draws: np.ndarray, seed: int) -> list[pd.DataFrame]:
    """The data with each draw's replicate (drawn as the PPP draws them for ``seed``) in the model's
    columns."""
    values = replicate_rows(spec, implied_moments(spec, draws), np.random.default_rng(seed))
    names = spec.stats.variables
    return [spec.data.assign(**{v: one[:, k] for k, v in enumerate(names)}) for one in values]


def test_ppp_replicates_of_incomplete_data_are_each_replicates_chisq() -> None:
    """The PPP draws and fits the replicates of a chunk of draws at once (one EM for all, each starting at
    its draw's moments): each replicate's discrepancy is the one computed replicate by replicate, from its
    own statistics, EM from the default start and full-information likelihood."""
    spec = pymlsem.SEM(HS_CFA, _hs_incomplete(), model_type="cfa")
    draws = _draws_around(spec, _hs_reference("estimates"), (1.05, 0.97))
    result = ppp_from_rows(spec, draws, seed=8)
    for s, frame in enumerate(_replicate_frames(spec, draws, seed=8)):
        stats = missing_stats_of(spec, frame)
        expected = 2 * (missing_h1(stats).loglik - missing_total_loglik(spec, draws[s : s + 1], stats)[0])
        assert result.replicated[s] == pytest.approx(expected, abs=1e-6)


def test_ppp_replicates_of_incomplete_data_with_covariates_are_each_replicates_deviance() -> None:
    """One level with fixed.x covariates (deviance discrepancy): the replicates drawn at once have the
    deviances computed replicate by replicate."""
    frame = data("PoliticalDemocracy")
    frame.loc[::7, "y1"] = np.nan
    frame.loc[3::9, "y5"] = np.nan
    model = "dem60 =~ y1 + y2 + y3 + y4\n dem65 =~ y5 + y6 + y7 + y8\n dem60 ~ x1\n dem65 ~ dem60 + x2"
    spec = pymlsem.SEM(model, frame)
    draws = np.stack(
        [np.where(spec.built.row_param >= 0, value, spec.fixed_row_values()) for value in (0.4, 0.6)]
    )
    result = ppp_from_rows(spec, draws, seed=4)
    assert result.discrepancy == "deviance"
    for s, replicate in enumerate(_replicate_frames(spec, draws, seed=4)):
        expected = -2 * missing_total_loglik(spec, draws[s : s + 1], missing_stats_of(spec, replicate))[0]
        assert result.replicated[s] == pytest.approx(expected, rel=1e-12)


def _demo_incomplete() -> pd.DataFrame:
    """Demo.twolevel less the values lavaan's reference removes (reference/lavaan/demo_twolevel_missing.R)."""
    frame = _less_lavaansloglik_draws("Demo.twolevel", ["y1", "y2", "y3"])
    frame.loc[frame.cluster == 1, ["y1", "y2", "y3"]] = np.nan
    return frame


def _demo_reference(name: str) -> pd.DataFrame:
    return pd.read_csv(LAVAAN / f"demo_twolevel_missing_{name}.csv")


def test_two_level_saturated_model_of_incomplete_data_is_lavaans() -> None:
    """The two-level h1 of incomplete data is lavaan's saturated model fitted to the end (rel.tol 1e-10):
    log-likelihood (joint, every observed value; -22073.22257) within 1e-5, means and covariances per level
    within 1e-4, in lavaan's variables, order and mean convention (within-only means at level 1, the others
    at level 2). lavaan's own h1 stops at rel.tol 1e-7: its unrestricted.logl (fixed.x) is below ours by
    less than 0.01 (0.002)."""
    spec = pymlsem.SEM(SEED, _demo_incomplete(), cluster="cluster")
    h1 = two_level_missing_h1(spec.likelihood_stats)
    tight = _demo_reference("saturated_tight").set_index("measure")["value"]
    assert h1.loglik == pytest.approx(tight["logl"], abs=1e-5)
    moments = sample_statistics(spec)
    assert moments.loglik == h1.loglik
    measures = _demo_reference("fitmeasures").set_index("measure")["value"]
    assert 0 <= moments.loglik_fixed_x - measures["unrestricted.logl"] < 0.01
    reference = _demo_reference("saturated_tight_moments")
    for level in (1, 2):
        table = reference[reference.level == level].set_index("variable")
        names = list(moments.cov[level].columns)
        assert names == list(table.index)
        np.testing.assert_allclose(moments.cov[level].to_numpy(), table.loc[names, names], atol=1e-4)
        np.testing.assert_allclose(moments.mean[level].to_numpy(), table.loc[names, "mean"], atol=1e-4)


def test_two_level_chisq_and_srmr_of_incomplete_data_are_lavaans() -> None:
    """At lavaan's estimates: the chi-square against the h1 fitted to the end is lavaan's 8.100 plus twice
    the 0.002 by which lavaan's h1 stops short (within 0.01 above); SRMR within and between are lavaan's
    within 2e-4 (from moments within 2e-3). The fit's srmr() works (it refused missing values before), and
    its PPP uses the deviance (a chi-square PPP would need the saturated model of every replicate)."""
    spec = pymlsem.SEM(SEED, _demo_incomplete(), cluster="cluster")
    rows = np.asarray(spec.rows_from_estimates(_demo_reference("estimates")), dtype=float)[None]
    measures = _demo_reference("fitmeasures").set_index("measure")["value"]
    chisq = chisq_discrepancy(spec, rows)[0]
    assert 0 <= chisq - measures["chisq"] < 0.01
    table = srmr_from_rows(spec, rows)
    assert table["srmr_within"].iloc[0] == pytest.approx(measures["srmr_within"], abs=2e-4)
    assert table["srmr_between"].iloc[0] == pytest.approx(measures["srmr_between"], abs=2e-4)


def test_two_level_ppp_replicates_of_incomplete_data_are_each_replicates_deviance() -> None:
    """Two levels (deviance discrepancy): the replicates of a chunk of draws, drawn and summarised at once,
    have the deviances computed replicate by replicate from each one's data frame (with a cluster whose
    values are all missing, and replicates of draws of other values)."""
    spec = pymlsem.SEM(SEED, _demo_incomplete(), cluster="cluster")
    draws = _draws_around(spec, _demo_reference("estimates"), (1.04, 0.98))
    result = ppp_from_rows(spec, draws, seed=6)
    assert result.discrepancy == "deviance" and np.isfinite(result.replicated).all()
    for s, replicate in enumerate(_replicate_frames(spec, draws, seed=6)):
        expected = -2 * missing_total_loglik(spec, draws[s : s + 1], missing_stats_of(spec, replicate))[0]
        assert result.replicated[s] == pytest.approx(expected, rel=1e-12)
