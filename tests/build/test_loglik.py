"""Tests of pymlsem.build.loglik against lavaan and brute-force densities (no sampling)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from scipy.stats import multivariate_normal

from pymlsem.build.loglik import (
    single_level_fixed_x_loglik,
    single_level_loglik,
    stats_as_data,
    two_level_cluster_loglik,
    two_level_fixed_x_loglik,
    two_level_loglik,
)
from pymlsem.data.stats import TwoLevelStats, single_level_stats, stats_from_summary, two_level_stats
from pymlsem.exceptions import DataError

REFERENCE = Path(__file__).parent.parent / "data" / "reference"
LAVAAN = REFERENCE / "lavaan"
DEMO_VARIABLES = ["y1", "y2", "y3", "x1", "x2", "x3", "w1", "w2"]


#: formula checks: PyTensor evaluates the graphs by Python thunks (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("uncompiled_graphs")


# --------------------------------------------------------------------------------------------- helpers
def lavaan_fitmeasure(name: str) -> float:
    table = pd.read_csv(LAVAAN / "demo_twolevel_fitmeasures.csv")
    return float(table.loc[table["measure"] == name, "value"].iloc[0])


def lavaan_moments(kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read lavaan's within/between covariances and means and pad them to all Demo variables."""
    p = len(DEMO_VARIABLES)
    out = []
    for level in ("within", "between"):
        cov = pd.read_csv(LAVAAN / f"demo_twolevel_{kind}_{level}_cov.csv", index_col=0)
        mean = pd.read_csv(LAVAAN / f"demo_twolevel_{kind}_{level}_mean.csv", index_col=0)
        assert list(cov.index) == list(cov.columns) == list(mean.columns)
        idx = [DEMO_VARIABLES.index(v) for v in cov.columns]
        full_cov, full_mean = np.zeros((p, p)), np.zeros(p)
        full_cov[np.ix_(idx, idx)] = cov.to_numpy()
        full_mean[idx] = mean.to_numpy()[0]
        out += [full_mean, full_cov]
    mu_w, sigma_w, mu_b, sigma_b = out
    return mu_w, sigma_w, mu_b, sigma_b


@pytest.fixture(scope="module")
def demo_stats() -> TwoLevelStats:
    data = pd.read_csv(REFERENCE / "data" / "Demo.twolevel.csv")
    return two_level_stats(
        data, DEMO_VARIABLES, "cluster", within_only=["x1", "x2", "x3"], between_only=["w1", "w2"]
    )


def simulated_frame(seed: int) -> pd.DataFrame:
    """Unbalanced clusters; a, b both levels; x within-only; z, v between-only; includes a singleton."""
    rng = np.random.default_rng(seed)
    sizes = np.array([1, 2, 2, 3, 4, 4, 4, 6, 7, 3])
    cluster = np.repeat(np.arange(sizes.size), sizes)
    n = cluster.size
    level2 = rng.normal(size=(sizes.size, 2))[cluster]
    return pd.DataFrame(
        {
            "z": level2[:, 0],
            "a": rng.normal(size=n) + level2[:, 0],
            "x": rng.normal(size=n),
            "b": rng.normal(size=n) + 0.5 * level2[:, 1],
            "v": level2[:, 1],
            "id": cluster,
        }
    )


SIM_VARIABLES = ["z", "a", "x", "b", "v"]
SIM_WITHIN_ONLY = ["x"]
SIM_BETWEEN_ONLY = ["z", "v"]


def simulated_stats(seed: int) -> TwoLevelStats:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return two_level_stats(
            simulated_frame(seed),
            SIM_VARIABLES,
            "id",
            within_only=SIM_WITHIN_ONLY,
            between_only=SIM_BETWEEN_ONLY,
        )


def random_moments(
    rng: np.random.Generator, variables: list[str], within_only: list[str], between_only: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random positive definite moments with lavaan's zero pattern."""
    p = len(variables)
    w = [k for k, v in enumerate(variables) if v not in between_only]
    b = [k for k, v in enumerate(variables) if v not in within_only]
    sigma_w, sigma_b = np.zeros((p, p)), np.zeros((p, p))
    a = rng.normal(size=(len(w), len(w)))
    sigma_w[np.ix_(w, w)] = a @ a.T + 0.5 * np.eye(len(w))
    a = rng.normal(size=(len(b), len(b)))
    sigma_b[np.ix_(b, b)] = 0.5 * a @ a.T + 0.2 * np.eye(len(b))
    mu_w, mu_b = np.zeros(p), np.zeros(p)
    mu_w[w] = rng.normal(size=len(w))
    mu_b[b] = rng.normal(size=len(b))
    return mu_w, sigma_w, mu_b, sigma_b


def brute_force_cluster_logpdfs(
    frame: pd.DataFrame,
    variables: list[str],
    between_only: list[str],
    cluster: str,
    moments: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """scipy logpdf of each cluster's stacked rows under I (x) Sigma_W + J (x) Sigma_B."""
    mu_w, sigma_w, mu_b, sigma_b = moments
    mu = mu_w + mu_b
    w = [k for k, v in enumerate(variables) if v not in between_only]
    z = [k for k, v in enumerate(variables) if v in between_only]
    out = []
    for _, rows in frame.groupby(cluster, sort=True):
        values = rows[variables].to_numpy()
        n = len(values)
        cov_yy = np.kron(np.eye(n), sigma_w[np.ix_(w, w)]) + np.kron(np.ones((n, n)), sigma_b[np.ix_(w, w)])
        cov_yz = np.kron(np.ones((n, 1)), sigma_b[np.ix_(w, z)])
        full = np.block([[cov_yy, cov_yz], [cov_yz.T, sigma_b[np.ix_(z, z)]]])
        point = np.concatenate([values[:, w].ravel(), values[0, z]])
        mean = np.concatenate([np.tile(mu[w], n), mu[z]])
        out.append(multivariate_normal.logpdf(point, mean, full))
    return np.array(out)


# ------------------------------------------------------------------------------------------ lavaan
@pytest.mark.parametrize(("kind", "measure"), [("implied", "logl"), ("h1", "unrestricted.logl")])
def test_two_level_matches_lavaan_logl(demo_stats: TwoLevelStats, kind: str, measure: str) -> None:
    """lavaan's logl = exact joint density - loglik.x of the fixed.x covariates (x1-x3, w1-w2)."""
    joint = float(two_level_loglik(*lavaan_moments(kind), demo_stats).eval())
    constant = two_level_fixed_x_loglik(demo_stats, within=["x1", "x2", "x3"], between=["w1", "w2"])
    assert joint - constant == pytest.approx(lavaan_fitmeasure(measure), rel=1e-9)


def test_demo_statistics_depend_on_distinct_cluster_sizes(demo_stats: TwoLevelStats) -> None:
    sizes = pd.read_csv(REFERENCE / "data" / "Demo.twolevel.csv").groupby("cluster").size()
    assert demo_stats.nobs == 2500 and demo_stats.nclusters == sizes.size
    np.testing.assert_array_equal(demo_stats.group_sizes, np.unique(sizes))
    assert demo_stats.group_scatter.shape == (np.unique(sizes).size, 8, 8)


def test_demo_fixed_x_constant_is_marginal_of_covariates(demo_stats: TwoLevelStats) -> None:
    """With within-only x's at their sample moments, lavaan's constant is the covariates' own density."""
    data = pd.read_csv(REFERENCE / "data" / "Demo.twolevel.csv")
    x = data[["x1", "x2", "x3"]].to_numpy()
    w = data.groupby("cluster")[["w1", "w2"]].first().to_numpy()
    expected = multivariate_normal.logpdf(x, x.mean(0), np.cov(x, rowvar=False, bias=True)).sum()
    expected += multivariate_normal.logpdf(w, w.mean(0), np.cov(w, rowvar=False, bias=True)).sum()
    assert two_level_fixed_x_loglik(demo_stats, ["x1", "x2", "x3"], ["w1", "w2"]) == pytest.approx(expected)
    assert two_level_fixed_x_loglik(demo_stats) == 0.0


# ------------------------------------------------------------------------------------- brute force
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_level_equals_brute_force_density(seed: int) -> None:
    frame = simulated_frame(seed)
    stats = simulated_stats(seed)
    moments = random_moments(
        np.random.default_rng(100 + seed), SIM_VARIABLES, SIM_WITHIN_ONLY, SIM_BETWEEN_ONLY
    )
    expected = brute_force_cluster_logpdfs(frame, SIM_VARIABLES, SIM_BETWEEN_ONLY, "id", moments)
    assert float(two_level_loglik(*moments, stats).eval()) == pytest.approx(expected.sum(), rel=1e-10)
    np.testing.assert_allclose(two_level_cluster_loglik(*moments, stats).eval(), expected, rtol=1e-10)


def test_two_level_without_level_specific_variables() -> None:
    frame = simulated_frame(5)
    names = ["a", "b"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        stats = two_level_stats(frame, names, "id")
    moments = random_moments(np.random.default_rng(7), names, [], [])
    expected = brute_force_cluster_logpdfs(frame, names, [], "id", moments)
    assert float(two_level_loglik(*moments, stats).eval()) == pytest.approx(expected.sum(), rel=1e-10)


@pytest.mark.parametrize("which", ["within", "between"])
def test_two_level_non_positive_definite_gives_minus_inf_and_finite_gradient(which: str) -> None:
    stats = simulated_stats(0)
    mu_w, sigma_w, mu_b, sigma_b = random_moments(
        np.random.default_rng(3), SIM_VARIABLES, SIM_WITHIN_ONLY, SIM_BETWEEN_ONLY
    )
    if which == "within":
        sigma_w[1, 1] = -1.0
    else:
        sigma_b[0, 0] = -5.0
    sw, sb = pt.matrix("sw"), pt.matrix("sb")
    value = two_level_loglik(mu_w, sw, mu_b, sb, stats)
    fn = pytensor.function([sw, sb], [value, *pt.grad(value, [sw, sb])])
    result, grad_w, grad_b = fn(sigma_w, sigma_b)
    assert result == -np.inf
    assert np.isfinite(grad_w).all() and np.isfinite(grad_b).all()
    assert (two_level_cluster_loglik(mu_w, sigma_w, mu_b, sigma_b, stats).eval() == -np.inf).all()


def test_two_level_gradient_matches_finite_differences() -> None:
    stats = simulated_stats(1)
    mu_w, sigma_w, mu_b, sigma_b = random_moments(
        np.random.default_rng(4), SIM_VARIABLES, SIM_WITHIN_ONLY, SIM_BETWEEN_ONLY
    )
    scale_w, scale_b, shift = pt.scalar("scale_w"), pt.scalar("scale_b"), pt.scalar("shift")
    value = two_level_loglik(mu_w + shift, scale_w * sigma_w, mu_b, scale_b * sigma_b, stats)
    inputs = [scale_w, scale_b, shift]
    fn = pytensor.function(inputs, [value, *pt.grad(value, inputs)])
    point = np.array([1.1, 0.9, 0.2])
    _, *grad = fn(*point)
    eps = 1e-6
    for k in range(3):
        step = np.zeros(3)
        step[k] = eps
        numeric = (fn(*(point + step))[0] - fn(*(point - step))[0]) / (2 * eps)
        assert grad[k] == pytest.approx(numeric, rel=1e-5)


def test_two_level_with_pm_data_accepts_other_data_sets() -> None:
    first, second = simulated_stats(0), simulated_stats(1)
    frame = simulated_frame(2).query("id != 7")  # drops the only cluster of size 6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        third = two_level_stats(
            frame, SIM_VARIABLES, "id", within_only=SIM_WITHIN_ONLY, between_only=SIM_BETWEEN_ONLY
        )
    assert third.group_sizes.size != first.group_sizes.size
    moments = random_moments(np.random.default_rng(5), SIM_VARIABLES, SIM_WITHIN_ONLY, SIM_BETWEEN_ONLY)
    inputs = [pt.vector("mu_w"), pt.matrix("sigma_w"), pt.vector("mu_b"), pt.matrix("sigma_b")]
    with pm.Model() as model:
        containers = stats_as_data(first, prefix="lvl_")
        fn = pytensor.function(inputs, two_level_loglik(*inputs, containers))
    for stats in (first, second, third):
        with model:
            pm.set_data({f"lvl_{name}": array for name, array in stats.arrays().items()})
        expected = float(two_level_loglik(*moments, stats).eval())
        assert fn(*moments) == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------------------------ single level
def test_single_level_equals_scipy_sum_over_rows() -> None:
    rng = np.random.default_rng(8)
    frame = pd.DataFrame(rng.normal(size=(30, 3)) @ rng.normal(size=(3, 3)), columns=["u", "v", "w"])
    stats = single_level_stats(frame, ["u", "v", "w"])
    a = rng.normal(size=(3, 3))
    sigma, mu = a @ a.T + np.eye(3), rng.normal(size=3)
    expected = multivariate_normal.logpdf(frame.to_numpy(), mu, sigma).sum()
    assert float(single_level_loglik(mu, sigma, stats).eval()) == pytest.approx(expected, rel=1e-12)


def test_single_level_covariance_only_uses_sample_mean() -> None:
    rng = np.random.default_rng(9)
    frame = pd.DataFrame(rng.normal(size=(20, 2)), columns=["u", "v"])
    stats = single_level_stats(frame, ["u", "v"])
    sigma = np.array([[1.5, 0.3], [0.3, 0.8]])
    expected = multivariate_normal.logpdf(frame.to_numpy(), stats.mean, sigma).sum()
    assert float(single_level_loglik(None, sigma, stats).eval()) == pytest.approx(expected, rel=1e-12)


def test_summary_statistics_give_the_raw_data_value() -> None:
    rng = np.random.default_rng(10)
    frame = pd.DataFrame(rng.normal(size=(50, 3)), columns=["u", "v", "w"])
    raw = single_level_stats(frame, ["u", "v", "w"])
    summary = stats_from_summary(frame.cov(), frame.mean(), 50)
    sigma, mu = np.diag([1.0, 2.0, 0.5]) + 0.1, np.array([0.1, -0.2, 0.0])
    assert float(single_level_loglik(mu, sigma, summary).eval()) == pytest.approx(
        float(single_level_loglik(mu, sigma, raw).eval()), rel=1e-12
    )
    no_mean = stats_from_summary(frame.cov(), None, 50)
    with pytest.raises(DataError, match="no means"):
        single_level_loglik(mu, sigma, no_mean)


def test_single_level_non_positive_definite_and_pm_data() -> None:
    rng = np.random.default_rng(11)
    small = single_level_stats(pd.DataFrame(rng.normal(size=(10, 2)), columns=["u", "v"]), ["u", "v"])
    large = single_level_stats(pd.DataFrame(rng.normal(size=(90, 2)), columns=["u", "v"]), ["u", "v"])
    sigma = pt.matrix("sigma")
    mu = pt.vector("mu")
    with pm.Model() as model:
        fn = pytensor.function([mu, sigma], single_level_loglik(mu, sigma, stats_as_data(small, "s_")))
    good = np.array([[1.0, 0.2], [0.2, 1.0]])
    assert fn(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]])) == -np.inf
    with model:
        pm.set_data({f"s_{k}": v for k, v in large.arrays().items()})
    expected = float(single_level_loglik(np.zeros(2), good, large).eval())
    assert fn(np.zeros(2), good) == pytest.approx(expected, rel=1e-12)


def test_single_level_fixed_x_constant() -> None:
    rng = np.random.default_rng(12)
    frame = pd.DataFrame(rng.normal(size=(40, 3)), columns=["y", "x1", "x2"])
    stats = single_level_stats(frame, ["y", "x1", "x2"])
    x = frame[["x1", "x2"]].to_numpy()
    expected = multivariate_normal.logpdf(x, x.mean(0), np.cov(x, rowvar=False, bias=True)).sum()
    assert single_level_fixed_x_loglik(stats, ["x1", "x2"]) == pytest.approx(expected, rel=1e-12)
    assert single_level_fixed_x_loglik(stats, []) == 0.0
    with pytest.raises(DataError, match="zz"):
        single_level_fixed_x_loglik(stats, ["zz"])
