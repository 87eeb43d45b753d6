"""Simulated designs with known truth (pymlsem.datasets.designs): models build, data have the moments
the data-generating process implies. No sampling."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy.stats import multivariate_normal, norm

from pymlsem.datasets import designs
from pymlsem.datasets.designs import Design, observed_centering_estimates
from pymlsem.exceptions import ModelSpecificationError
from pymlsem.partable import ParTable, build_partable
from pymlsem.syntax import parse_model

FACTORIES: dict[str, Callable[..., Design]] = {
    "random_slope_cross_level": designs.random_slope_cross_level,
    "latent_centering": designs.latent_centering,
    "two_level_irt": designs.two_level_irt,
    "two_level_ordinal_cfa": designs.two_level_ordinal_cfa,
    "mediation_111": designs.mediation_111,
    "mediation_211": designs.mediation_211,
    "mediation_221": designs.mediation_221,
}


def _build(design: Design) -> ParTable:
    ordered = design.n_categories if design.ordered else None
    return build_partable(parse_model(design.model), data_columns=design.data.columns, ordered=ordered)


@pytest.fixture(scope="module", params=list(FACTORIES))
def design(request: pytest.FixtureRequest) -> Design:
    return FACTORIES[request.param](seed=11)


def _cluster_ols_slopes(data: pd.DataFrame, y: str, xs: list[str]) -> np.ndarray:
    """Per-cluster OLS slopes of ``y`` on ``xs`` (with a cluster intercept), shape (n_clusters, len(xs))."""
    centred = data[[y, *xs]] - data.groupby("cluster")[[y, *xs]].transform("mean")
    centred["cluster"] = data["cluster"]
    out = []
    for _, g in centred.groupby("cluster", sort=True):
        x = g[xs].to_numpy()
        out.append(np.linalg.solve(x.T @ x, x.T @ g[y].to_numpy()))
    return np.array(out)


# ----------------------------------------------------------------------------------------------------
# every design


def test_model_builds_with_the_data(design: Design) -> None:
    pt = _build(design)
    assert pt.n_levels == 2
    observed = {v for vs in pt.observed.values() for v in vs}
    assert observed <= set(design.data.columns) - {design.cluster}


def test_truth_names_are_labels_or_defined_parameters(design: Design) -> None:
    pt = _build(design)
    names = (set(pt.table["label"]) - {""}) | {str(s.lhs) for s in pt.defined}
    assert set(design.truth) <= names, sorted(set(design.truth) - names)
    assert all(isinstance(v, float) and np.isfinite(v) for v in design.truth.values())


def test_data_shape_and_clusters(design: Design) -> None:
    data = design.data
    assert design.cluster in data.columns
    assert not data.isna().any().any()
    clusters = data[design.cluster]
    assert clusters.min() == 1
    assert clusters.nunique() == clusters.max()
    pt = _build(design)
    for v in pt.between_only:
        assert (data.groupby(design.cluster)[v].nunique() == 1).all(), v
    for v in design.ordered:
        assert pd.api.types.is_integer_dtype(data[v])
        assert set(data[v].unique()) == set(range(design.n_categories[v]))


def test_reproducible_with_a_seed() -> None:
    for factory in FACTORIES.values():
        a, b, c = factory(seed=3), factory(seed=3), factory(seed=4)
        pd.testing.assert_frame_equal(a.data, b.data)
        assert a.model == b.model and a.truth == b.truth
        assert not a.data.equals(c.data)


def test_cluster_sizes() -> None:
    d = designs.random_slope_cross_level(n_clusters=4, cluster_size=[2, 3, 5, 7], seed=1)
    assert d.data.groupby("cluster").size().tolist() == [2, 3, 5, 7]
    d = designs.mediation_221(n_clusters=30, cluster_size=6, seed=1)
    assert d.data.shape[0] == 180 and d.data["cluster"].nunique() == 30
    with pytest.raises(ValueError, match="entries for 4 clusters"):
        designs.latent_centering(n_clusters=4, cluster_size=[5, 5])
    irt = designs.two_level_irt(seed=1)
    sizes = irt.data.groupby("cluster").size()
    assert len(sizes) == 95 and sizes.between(10, 24).all() and 1300 < sizes.sum() < 1900
    assert irt.data.shape[1] == 31 and len(irt.ordered) == 30


def test_defaults_and_truth_values() -> None:
    d = designs.latent_centering()
    assert d.truth["contextual"] == pytest.approx(d.truth["bb"] - d.truth["bw"])
    assert d.truth["s2xb"] / (d.truth["s2xb"] + d.truth["s2xw"]) == pytest.approx(0.2)
    m = designs.mediation_111()
    assert m.truth["ind"] == pytest.approx(m.truth["ma"] * m.truth["mb"] + m.truth["cab"])
    assert m.truth["total"] == pytest.approx(m.truth["ind"] + m.truth["cp"])
    assert m.truth["cab"] / np.sqrt(m.truth["va"] * m.truth["vb"]) > 0.5
    r = designs.random_slope_cross_level()
    assert r.formula == "y ~ x*w + (1 + x | cluster)"


def test_irt_truth_on_both_parametrisations() -> None:
    d = designs.two_level_irt(n_items=5, tau2=0.3, seed=0)
    t = d.truth
    assert t["l1"] == 1.0
    for k in range(1, 6):  # a_k = l_k sqrt(psi_w), b_k = th_k / a_k
        assert t[f"a{k}"] == pytest.approx(t[f"l{k}"] * np.sqrt(t["psi_w"]))
        assert t[f"b{k}"] == pytest.approx(t[f"th{k}"] / t[f"a{k}"])
    assert t["psi_b"] / t["psi_w"] == pytest.approx(0.3)
    assert t["trait_icc"] == pytest.approx(0.3 / 1.3)
    unit = designs.two_level_irt(n_items=5, tau2=0.3, seed=0, scale="unit")
    assert unit.truth["psi_b"] == pytest.approx(0.3)
    assert all(unit.truth[f"l{k}"] == pytest.approx(t[f"a{k}"]) for k in range(1, 6))
    pd.testing.assert_frame_equal(unit.data, d.data)


def test_irt_unit_scale_builds() -> None:
    """With scale="unit" the between factor is scaled through loadings shared (by label) with the
    unit-variance within factor: the scale check counts that equality constraint."""
    _build(designs.two_level_irt(n_items=4, seed=0, scale="unit"))


def test_a_factor_with_free_loadings_and_variance_still_needs_a_scale() -> None:
    with pytest.raises(ModelSpecificationError, match="no scale"):
        build_partable(parse_model("f =~ NA*y1 + a*y2 + b*y3"))


def test_observed_centering_returns_estimates() -> None:
    est = observed_centering_estimates(designs.latent_centering(seed=0))
    assert set(est) == {"bw", "bb", "contextual"}
    assert est["contextual"] == pytest.approx(est["bb"] - est["bw"])


# ----------------------------------------------------------------------------------------------------
# moments implied by each data-generating process


def test_random_slope_per_cluster_slopes() -> None:
    d = designs.random_slope_cross_level(n_clusters=2000, cluster_size=25, seed=5)
    t = d.truth
    slopes = _cluster_ols_slopes(d.data, "y", ["x"])[:, 0]
    w = d.data.groupby("cluster")["w"].first().to_numpy()
    sxx = (d.data["x"] - d.data.groupby("cluster")["x"].transform("mean")).pow(2).groupby(d.data["cluster"])
    sampling = t["s2e"] / sxx.sum().to_numpy()
    n = len(slopes)
    # mean slope: g10 + g11 * mean(w)
    expected_mean = t["g10"] + t["g11"] * w.mean()
    sd = np.sqrt(t["g11"] ** 2 + t["tau11"] + sampling.mean())
    assert abs(slopes.mean() - expected_mean) < 4 * sd / np.sqrt(n)
    # slopes on w: intercept g10, coefficient g11, residual variance tau11 + sampling variance
    design_matrix = np.column_stack([np.ones(n), w])
    coef, *_ = np.linalg.lstsq(design_matrix, slopes, rcond=None)
    resid = slopes - design_matrix @ coef
    v = t["tau11"] + sampling.mean()
    assert abs(coef[0] - t["g10"]) < 4 * np.sqrt(v / n)
    assert abs(coef[1] - t["g11"]) < 4 * np.sqrt(v / n / w.var())
    assert abs(resid.var() - v) < 4 * v * np.sqrt(2 / n) * 1.5
    # random intercepts: cluster means of y - slope*x
    centred_int = d.data.groupby("cluster")["y"].mean().to_numpy() - t["g01"] * w
    assert abs(centred_int.mean() - t["g00"]) < 0.05


def test_random_slope_center_x() -> None:
    d = designs.random_slope_cross_level(n_clusters=20, seed=1, center_x=True)
    assert np.allclose(d.data.groupby("cluster")["x"].mean(), 0.0)


def test_latent_centering_observed_means_bias() -> None:
    small = designs.latent_centering(n_clusters=2000, cluster_size=5, seed=7)
    t = small.truth
    est = observed_centering_estimates(small)
    reliability = t["s2xb"] / (t["s2xb"] + t["s2xw"] / 5)
    expected = reliability * t["contextual"]  # Lüdtke et al. (2008): attenuation by the reliability
    assert abs(est["bw"] - t["bw"]) < 0.05  # the within estimate is unbiased
    assert abs(est["contextual"] - expected) < 0.08
    assert est["contextual"] - t["contextual"] < -0.1  # biased toward 0 (bb toward bw)
    large = designs.latent_centering(n_clusters=400, cluster_size=200, seed=7)
    est_large = observed_centering_estimates(large)
    assert abs(est_large["contextual"] - t["contextual"]) < 0.08
    # x: ICC and mean as designed
    x = small.data.groupby("cluster")["x"]
    between = x.mean().var() - x.var().mean() / 5
    assert abs(between - t["s2xb"]) < 0.04
    assert abs(small.data["x"].mean() - t["mux"]) < 0.05


def test_irt_item_proportions() -> None:
    d = designs.two_level_irt(n_clusters=400, seed=2, scale="unit")
    t = d.truth
    cluster = d.data["cluster"]
    n_rows = len(d.data)
    for k, item in enumerate(d.ordered, start=1):
        lam, tau = t[f"l{k}"], t[f"th{k}"]
        p = norm.cdf(-tau / np.sqrt(1 + lam**2 * (1 + t["psi_b"])))
        # cluster-robust standard error of the proportion
        totals = (d.data[item] - p).groupby(cluster).sum().to_numpy()
        se = np.sqrt((totals**2).sum()) / n_rows
        z = (d.data[item].mean() - p) / se
        assert abs(z) < 4.5, (item, d.data[item].mean(), p)


def test_irt_between_trait_variance() -> None:
    """Sum scores of two different students of one school covary by sum_kl [Phi2(c_k, c_l; rho_kl) -
    p_k p_l], with c_k = -tau_k / s_k, rho_kl = lambda_k lambda_l tau2 / (s_k s_l) and
    s_k^2 = 1 + lambda_k^2 (1 + tau2): the school part of the trait."""
    d = designs.two_level_irt(n_items=20, n_clusters=400, seed=3, scale="unit")
    t = d.truth
    n_items = len(d.ordered)
    lam = np.array([t[f"l{k}"] for k in range(1, n_items + 1)])
    s = np.sqrt(1 + lam**2 * (1 + t["psi_b"]))
    c = -np.array([t[f"th{k}"] for k in range(1, n_items + 1)]) / s
    p = norm.cdf(c)
    expected = 0.0
    for k in range(n_items):
        for j in range(k, n_items):
            rho = lam[k] * lam[j] * t["psi_b"] / (s[k] * s[j])
            both = multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]]).cdf([c[k], c[j]])
            expected += (1 if j == k else 2) * (both - p[k] * p[j])
    dev = d.data[list(d.ordered)].sum(axis=1) - p.sum()
    by_cluster = dev.groupby(d.data["cluster"])
    pair_sums = (by_cluster.sum() ** 2 - (dev**2).groupby(d.data["cluster"]).sum()).to_numpy()
    sizes = by_cluster.size().to_numpy()
    pairs = sizes * (sizes - 1)
    estimate = pair_sums.sum() / pairs.sum()
    se = np.sqrt(((pair_sums - estimate * pairs) ** 2).sum()) / pairs.sum()
    assert abs(estimate - expected) < 4 * se, (estimate, expected, se)
    assert expected > 6 * se  # the check sees the school variance


def test_ordinal_cfa_category_proportions() -> None:
    d = designs.two_level_ordinal_cfa(n_clusters=400, seed=2)
    t = d.truth
    cluster = d.data["cluster"]
    for k, item in enumerate(d.ordered, start=1):
        sd = np.sqrt(t[f"lw{k}"] ** 2 + t[f"lb{k}"] ** 2 + t[f"thb{k}"] + 1.0)
        cuts = np.array([t[f"th{k}_{c}"] for c in (1, 2, 3)]) / sd
        probs = np.diff(np.concatenate([[0.0], norm.cdf(cuts), [1.0]]))
        for c, p in enumerate(probs):
            hit = (d.data[item] == c).astype(float)
            se = np.sqrt(((hit - p).groupby(cluster).sum() ** 2).sum()) / len(hit)
            assert abs(hit.mean() - p) < 4.5 * se, (item, c)
    # between loadings default to sqrt(0.4) times the within loadings
    assert t["lb1"] / t["lw1"] == pytest.approx(np.sqrt(0.4))


def test_mediation_111_random_paths() -> None:
    d = designs.mediation_111(n_clusters=2000, cluster_size=40, seed=9)
    t = d.truth
    a_hat = _cluster_ols_slopes(d.data, "m", ["x"])[:, 0]
    b_hat = _cluster_ols_slopes(d.data, "y", ["m", "x"])
    n = len(a_hat)
    assert abs(a_hat.mean() - t["ma"]) < 4 * np.sqrt(a_hat.var() / n)
    assert abs(b_hat[:, 0].mean() - t["mb"]) < 4 * np.sqrt(b_hat[:, 0].var() / n)
    assert abs(b_hat[:, 1].mean() - t["cp"]) < 4 * np.sqrt(b_hat[:, 1].var() / n)
    cov = np.cov(a_hat, b_hat[:, 0])[0, 1]
    se = np.sqrt((a_hat.var() * b_hat[:, 0].var() + cov**2) / n)
    assert abs(cov - t["cab"]) < 4 * se
    assert cov > 0.05  # clearly nonzero
    # x is centred within clusters; m and y have correlated random intercepts
    assert np.allclose(d.data.groupby("cluster")["x"].mean(), 0.0)
    means = d.data.groupby("cluster")[["m", "y"]].mean()
    assert abs(means["m"].var() - t["vdm"] - t["s2m"] / 40) < 0.05


def test_mediation_211_paths() -> None:
    d = designs.mediation_211(n_clusters=3000, cluster_size=10, seed=4)
    t = d.truth
    means = d.data.groupby("cluster")[["m", "x"]].mean()
    a_hat = np.polyfit(means["x"], means["m"], 1)[0]
    assert abs(a_hat - t["a"]) < 0.05
    bw_hat = _cluster_ols_slopes(d.data, "y", ["m"])[:, 0]
    within = d.data[["y", "m"]] - d.data.groupby("cluster")[["y", "m"]].transform("mean")
    pooled = (within["y"] * within["m"]).sum() / (within["m"] ** 2).sum()
    assert abs(pooled - t["bw"]) < 0.03
    assert np.isfinite(bw_hat).all()


def test_mediation_221_paths() -> None:
    d = designs.mediation_221(n_clusters=3000, cluster_size=10, seed=4)
    t = d.truth
    means = d.data.groupby("cluster")[["y", "m", "x"]].mean()
    x = np.column_stack([np.ones(len(means)), means["m"], means["x"]])
    coef, *_ = np.linalg.lstsq(x, means["y"].to_numpy(), rcond=None)
    assert abs(coef[1] - t["b"]) < 0.05 and abs(coef[2] - t["cp"]) < 0.05
    a_hat = np.polyfit(means["x"], means["m"], 1)[0]
    assert abs(a_hat - t["a"]) < 0.05
    assert abs(a_hat * coef[1] - t["ind"]) < 0.05
