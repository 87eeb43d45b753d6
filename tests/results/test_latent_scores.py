"""Latent scores (:mod:`pymlsem.results.latent_scores`) against textbook factor scores and brute force.

No sampling: stand-in posteriors whose every draw sits at lavaan's estimates.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from reference import HS, REFERENCE_FITS, data, lavaan_estimates

import pymlsem
from pymlsem.exceptions import DataError, ModelSpecificationError
from pymlsem.results.fit import SEMFit
from pymlsem.results.implied import implied_moment_draws
from pymlsem.results.latent_scores import (
    between_conditional,
    latent_scores,
    single_level_conditional,
)

N_MC = 4000  # draws at one parameter value for the Monte Carlo checks


def _fit_at(spec: pymlsem.SEM, rows: np.ndarray, chains: int = 2, draws: int = 3) -> SEMFit:
    """A fit whose posterior repeats one parameter vector (taken from table rows)."""
    built = spec.built
    first_row = [int(np.flatnonzero(built.row_param == i)[0]) for i in range(len(built.free))]
    values = np.broadcast_to(rows[first_row], (chains, draws, len(first_row)))
    parameters = xr.DataArray(
        values,
        dims=("chain", "draw", "parameter"),
        coords={"chain": np.arange(chains), "draw": np.arange(draws)},
    )
    idata = SimpleNamespace(posterior={"parameters": parameters})
    return SEMFit(spec, idata, sampler="stand-in", chains=chains, draws=draws, tune=0, timings=None)


def _spec_and_rows(key: str) -> tuple[pymlsem.SEM, np.ndarray]:
    model, dataset, cluster, prefix = REFERENCE_FITS[key]
    spec = pymlsem.SEM(model, data(dataset), cluster=cluster)
    return spec, np.asarray(spec.rows_from_estimates(lavaan_estimates(prefix)), dtype=float)


@pytest.fixture(scope="module")
def hs() -> tuple[pymlsem.SEM, np.ndarray]:
    return _spec_and_rows("hs_cfa")


@pytest.fixture(scope="module")
def seed() -> tuple[pymlsem.SEM, np.ndarray]:
    return _spec_and_rows("seed")


def _thomson_scores(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Regression (Thomson) factor scores ``Psi L' Sigma^-1 (y - mu)`` of the HS CFA and their covariance."""
    est = lavaan_estimates("hs_cfa")
    factors, items = ["visual", "textual", "speed"], [f"x{i}" for i in range(1, 10)]

    def value(lhs: str, op: str, rhs: str) -> float:
        hit = est[(est.lhs == lhs) & (est.op == op) & (est.rhs.fillna("") == rhs)]
        if hit.empty and op == "~~":
            hit = est[(est.lhs == rhs) & (est.op == op) & (est.rhs == lhs)]
        return float(hit.est.iloc[0]) if not hit.empty else 0.0

    lam = np.array([[value(f, "=~", x) for f in factors] for x in items])
    psi = np.array([[value(f, "~~", g) for g in factors] for f in factors])
    theta = np.diag([value(x, "~~", x) for x in items])
    nu = np.array([value(x, "~1", "") for x in items])
    sigma = lam @ psi @ lam.T + theta
    gain = psi @ lam.T @ np.linalg.inv(sigma)
    scores = (frame[items].to_numpy() - nu) @ gain.T
    return scores, psi - gain @ lam @ psi


def _cluster_brute_force(spec: pymlsem.SEM, rows: np.ndarray, j: int, target: str) -> tuple:
    """Mean and covariance of [fb, fw of every row] given all of cluster j's data, from its stacked moments.

    The stacked vector is the within-varying variables of every row of the cluster, then its between-only
    values, then the between factor and the within factor of every row.
    """
    moments = implied_moment_draws(_fit_at(spec, rows, chains=1, draws=1))
    within, between = moments[1], moments[2]
    wv, bv = list(within.variables), list(between.variables)
    w_obs, b_obs = list(within.observed), list(between.observed)
    b_only = [v for v in b_obs if v not in w_obs]
    frame = spec.data[spec.data[spec.cluster] == spec.stats.cluster_ids[j]]
    n = len(frame)
    fw = [v for v in wv if v not in w_obs]
    # Every element is (kind, row, variable): kind "w" a row's observed or within factor, "b" a between one.
    elements = [("y", i, v) for i in range(n) for v in w_obs] + [("z", -1, v) for v in b_only]
    n_data = len(elements)
    elements += [("fb", -1, target)] + [("fw", i, v) for i in range(n) for v in fw]

    def within_part(e):  # the variable's within part (None if it has none)
        return (e[1], e[2]) if e[0] in ("y", "fw") else None

    def between_part(e):  # the variable's between part (None if it has none)
        return e[2] if e[0] in ("z", "fb") or (e[0] == "y" and e[2] in bv) else None

    k = len(elements)
    cov, mean = np.zeros((k, k)), np.zeros(k)
    for a, ea in enumerate(elements):
        wa, ba = within_part(ea), between_part(ea)
        mean[a] = (within.mean[0, wv.index(wa[1])] if wa else 0) + (
            between.mean[0, bv.index(ba)] if ba else 0
        )
        for b, eb in enumerate(elements):
            wb, bb = within_part(eb), between_part(eb)
            if wa and wb and wa[0] == wb[0]:
                cov[a, b] += within.cov[0, wv.index(wa[1]), wv.index(wb[1])]
            if ba and bb:
                cov[a, b] += between.cov[0, bv.index(ba), bv.index(bb)]
    values = np.concatenate([frame[w_obs].to_numpy().ravel(), frame[b_only].iloc[0].to_numpy()])
    d, t = slice(0, n_data), slice(n_data, k)
    gain = cov[t, d] @ np.linalg.inv(cov[d, d])
    return mean[t] + gain @ (values - mean[d]), cov[t, t] - gain @ cov[d, t], frame.index.to_numpy()


def test_single_level_means_are_thomson_factor_scores(hs) -> None:
    spec, rows = hs
    moments = implied_moment_draws(_fit_at(spec, rows))[1]
    values = spec.data[list(moments.observed)].to_numpy()
    conditional = single_level_conditional(moments, values)
    scores, cov = _thomson_scores(spec.data)
    assert conditional.names == ("visual", "textual", "speed")
    np.testing.assert_allclose(conditional.mean[4], scores, atol=1e-8)
    np.testing.assert_allclose(conditional.cov[4, 0], cov, atol=1e-10)


def test_between_conditional_equals_conditioning_on_all_rows(seed) -> None:
    spec, rows = seed
    moments = implied_moment_draws(_fit_at(spec, rows))
    conditional = between_conditional(moments[1], moments[2], spec.stats, ["fb"])
    for j in (0, 57):
        mean, cov, _ = _cluster_brute_force(spec, rows, j, "fb")
        np.testing.assert_allclose(conditional.mean[2, j], mean[:1], atol=1e-10)
        np.testing.assert_allclose(conditional.cov[2, conditional.group[j]], cov[:1, :1], atol=1e-10)


def test_single_level_draws_have_the_conditional_moments(hs) -> None:
    spec, rows = hs
    draws = latent_scores(_fit_at(spec, rows, chains=2, draws=N_MC // 2), 1, seed=1)
    scores, cov = _thomson_scores(spec.data)
    sample = draws.isel(row=[0, 100]).stack(s=("chain", "draw")).transpose("s", "row", "latent").to_numpy()
    se = np.sqrt(np.diag(cov) / N_MC)
    assert np.all(np.abs(sample.mean(axis=0) - scores[[0, 100]]) < 4.5 * se)
    for r in range(2):
        np.testing.assert_allclose(np.cov(sample[:, r].T), cov, atol=4.5 * np.sqrt(2 / N_MC) * cov.max())


def test_two_level_draws_have_the_joint_conditional_moments(seed) -> None:
    """Between draws, and within draws made through drawn cluster effects, match the brute-force moments."""
    spec, rows = seed
    fit = _fit_at(spec, rows, chains=1, draws=N_MC)
    j = 3
    mean, cov, row_labels = _cluster_brute_force(spec, rows, j, "fb")
    between = latent_scores(fit, 2, seed=2).isel(cluster=j).sel(latent="fb").to_numpy().ravel()
    assert abs(between.mean() - mean[0]) < 4.5 * np.sqrt(cov[0, 0] / N_MC)
    assert abs(between.var() / cov[0, 0] - 1) < 4.5 * np.sqrt(2 / N_MC)
    within = latent_scores(fit, 1, seed=3).sel(row=row_labels[:2], latent="fw").to_numpy()[0]  # (draw, 2)
    sd = np.sqrt(np.diag(cov)[1:3])
    assert np.all(np.abs(within.mean(axis=0) - mean[1:3]) < 4.5 * sd / np.sqrt(N_MC))
    np.testing.assert_allclose(np.cov(within.T), cov[1:3, 1:3], atol=4.5 * np.sqrt(2 / N_MC) * sd.max() ** 2)


def test_shapes_coordinates_and_subsampling(seed, hs) -> None:
    spec, rows = seed
    fit = _fit_at(spec, rows, chains=2, draws=50)
    between = fit.latent_scores(level=2)
    assert between.dims == ("chain", "draw", "cluster", "latent")
    assert between.shape == (2, 50, spec.n_clusters, 1)
    np.testing.assert_array_equal(between["cluster"], spec.stats.cluster_ids)
    assert list(between["latent"].values) == ["fb"]
    xr.testing.assert_equal(between, fit.latent_scores(level=2))  # seeded
    parts = fit.latent_scores(level=2, n_draws=10, include_observed=True)
    assert parts.shape == (2, 5, spec.n_clusters, 6)
    assert list(parts["draw"].values) == [0, 12, 24, 37, 49]
    # a between-only variable's between part is its observed cluster value
    w1 = spec.stats.cluster_means[:, list(spec.stats.variables).index("w1")]
    np.testing.assert_allclose(
        parts.sel(latent="w1").to_numpy(), np.broadcast_to(w1, (2, 5, w1.size)), atol=1e-8
    )
    within = fit.latent_scores(level=1, n_draws=4)
    assert within.dims == ("chain", "draw", "row", "latent")
    assert within.shape == (2, 2, spec.nobs, 1)
    np.testing.assert_array_equal(within["row"], spec.data.index)
    single = _fit_at(*hs).latent_scores()
    assert single.shape == (2, 3, hs[0].nobs, 3)


def test_errors(seed, hs) -> None:
    fit = _fit_at(*seed)
    for level in (0, 3, "2", True):
        with pytest.raises(ModelSpecificationError, match="level must be"):
            fit.latent_scores(level=level)
    with pytest.raises(ModelSpecificationError, match="two-level"):
        _fit_at(*hs).latent_scores(level=2)
    with pytest.raises(ModelSpecificationError, match="include_observed"):
        fit.latent_scores(level=1, include_observed=True)
    with pytest.raises(ModelSpecificationError, match="n_draws"):
        fit.latent_scores(level=2, n_draws=0)
    frame = data("HolzingerSwineford1939")[[f"x{i}" for i in range(1, 10)]]
    summary = pymlsem.SEM(HS, sample_cov=frame.cov(), sample_nobs=len(frame))
    with pytest.raises(DataError, match="raw data"):
        latent_scores(SimpleNamespace(model=summary), 1)
