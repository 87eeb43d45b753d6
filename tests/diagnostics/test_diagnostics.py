"""coda/MCMCglmm-style chain diagnostics on draws with known properties (no sampling)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import norm

import pymlsem
from pymlsem.datasets import load_dataset
from pymlsem.diagnostics import (
    autocorr_array,
    autocorr_table,
    dic,
    effective_size,
    geweke_z,
    hpd_interval,
    mcmcglmm_controls,
    pmcmc,
    signif_stars,
    spectrum0_ar,
)
from pymlsem.diagnostics.controls import ControlError
from pymlsem.diagnostics.convergence import convergence_message, diagnose
from pymlsem.exceptions import ConvergenceWarning, PymlsemError


def ar1(rng: np.random.Generator, rho: float, size: tuple[int, ...]) -> np.ndarray:
    """Stationary AR(1) chains along the last axis, unit innovation variance."""
    noise = rng.normal(size=size)
    out = np.empty(size)
    out[..., 0] = noise[..., 0] / np.sqrt(1 - rho**2)
    for t in range(1, size[-1]):
        out[..., t] = rho * out[..., t - 1] + noise[..., t]
    return out


# --- HPD ---------------------------------------------------------------------------------------------


def test_hpd_small_sample_by_hand() -> None:
    # gap = round(5 * 0.6) = 3: windows [0, 3] (width 3) and [1, 10] (width 9)
    np.testing.assert_array_equal(hpd_interval([10.0, 2.0, 0.0, 3.0, 1.0], 0.6), [0.0, 3.0])


def test_hpd_of_symmetric_sample_is_close_to_equal_tailed() -> None:
    draws = np.random.default_rng(0).normal(size=(40000, 2)) * [1.0, 3.0]
    expected = np.quantile(draws, [0.025, 0.975], axis=0).T
    bounds = hpd_interval(draws)
    assert bounds.shape == (2, 2)
    np.testing.assert_allclose(bounds[0], expected[0], atol=0.05)
    np.testing.assert_allclose(bounds[1], expected[1], atol=0.15)


def test_hpd_of_skewed_sample_is_shorter_and_starts_at_the_mode() -> None:
    draws = np.random.default_rng(1).exponential(size=20000)
    lower, upper = hpd_interval(draws, 0.9)
    q_lo, q_hi = np.quantile(draws, [0.05, 0.95])
    assert upper - lower < q_hi - q_lo
    assert lower < 0.01
    np.testing.assert_allclose(upper, -np.log(0.1), rtol=0.05)  # exponential HPD: [0, -log(1 - prob)]


@pytest.mark.parametrize("prob", [0.0, 1.0, 1.5])
def test_hpd_rejects_bad_prob(prob: float) -> None:
    with pytest.raises(ValueError, match="prob"):
        hpd_interval(np.arange(10.0), prob)


# --- pMCMC -------------------------------------------------------------------------------------------


def test_pmcmc_of_draws_far_from_zero_is_one_over_n() -> None:
    rng = np.random.default_rng(2)
    draws = np.column_stack([rng.normal(50, 1, 800), rng.normal(-50, 1, 800)])
    np.testing.assert_array_equal(pmcmc(draws), [1 / 800, 1 / 800])


def test_pmcmc_is_twice_the_smaller_tail() -> None:
    draws = np.concatenate([-np.ones(30), np.ones(70)])
    np.testing.assert_allclose(pmcmc(draws), 0.6)
    np.testing.assert_allclose(pmcmc(np.concatenate([-np.ones(50), np.ones(50)])), 1.0)


@pytest.mark.parametrize(
    ("p", "stars"),
    [(0.0005, "***"), (0.001, "***"), (0.005, "**"), (0.01, "**"), (0.03, "*"), (0.07, "."), (0.5, " ")],
)
def test_signif_stars(p: float, stars: str) -> None:
    assert signif_stars(p) == stars


# --- spectral density, effective size ----------------------------------------------------------------


def test_spectrum0_of_ar1_chain() -> None:
    rho = 0.5
    chain = ar1(np.random.default_rng(3), rho, (50000,))
    np.testing.assert_allclose(spectrum0_ar(chain), 1 / (1 - rho) ** 2, rtol=0.1)


def test_spectrum0_of_white_noise_is_its_variance() -> None:
    chain = np.random.default_rng(4).normal(0, 2, 20000)
    np.testing.assert_allclose(spectrum0_ar(chain), 4.0, rtol=0.08)
    assert spectrum0_ar(np.ones(100)) == 0.0


def test_effective_size_sums_chains_and_shrinks_with_autocorrelation() -> None:
    rng = np.random.default_rng(5)
    iid = rng.normal(size=(2, 5000))
    np.testing.assert_allclose(effective_size(iid), 10000, rtol=0.1)
    rho = 0.8
    chains = ar1(rng, rho, (2, 20000))
    np.testing.assert_allclose(effective_size(chains), 40000 * (1 - rho) / (1 + rho), rtol=0.15)


# --- Geweke ------------------------------------------------------------------------------------------


def test_geweke_on_stationary_chains_is_standard_normal() -> None:
    chains = ar1(np.random.default_rng(6), 0.5, (300, 2000))
    z = np.array([geweke_z(chain) for chain in chains])
    assert abs(z.mean()) < 0.2
    assert 0.8 < z.std() < 1.25
    assert np.mean(np.abs(z) > norm.ppf(0.975)) < 0.1


def test_geweke_on_trending_chain_is_large() -> None:
    rng = np.random.default_rng(7)
    chain = np.linspace(0, 5, 2000) + rng.normal(size=2000)
    assert geweke_z(chain) < -10


def test_geweke_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError, match="first"):
        geweke_z(np.arange(100.0), first=0.6, last=0.5)


# --- autocorrelation ---------------------------------------------------------------------------------


def test_autocorr_of_ar1_is_rho_to_the_lag() -> None:
    rho, lags = 0.8, (0, 1, 2, 5, 10)
    draws = ar1(np.random.default_rng(8), rho, (2, 1, 40000)).transpose(0, 2, 1)
    acf = autocorr_array(draws, lags)
    assert acf.shape == (5, 1, 1)
    np.testing.assert_allclose(acf[:, 0, 0], rho ** np.array(lags), atol=0.04)


def test_cross_correlation_follows_r_acf_convention() -> None:
    x = np.random.default_rng(9).normal(size=5003)
    y = x[:-3]  # y[t] = x[t + 3] after alignment below
    draws = np.stack([x[3:], y], axis=-1)[None]  # par 0 = x[t + 3], par 1 = x[t]
    acf = autocorr_array(draws, (0, 3))
    # [lag, i, j] = cor(par_i[t + lag], par_j[t]): par 1 three draws later is par 0 now
    assert acf[1, 1, 0] > 0.99
    assert abs(acf[1, 0, 1]) < 0.05
    assert abs(acf[0, 0, 1]) < 0.05


def test_autocorr_averages_chains() -> None:
    rng = np.random.default_rng(10)
    draws = rng.normal(size=(3, 200, 2))
    per_chain = [autocorr_array(draws[[c]], (0, 4)) for c in range(3)]
    np.testing.assert_allclose(autocorr_array(draws, (0, 4)), np.mean(per_chain, axis=0))


def test_autocorr_rejects_lags_beyond_the_chain() -> None:
    with pytest.raises(ValueError, match="lags"):
        autocorr_array(np.zeros((1, 10, 2)), (0, 10))


def test_autocorr_table_layout() -> None:
    array = np.arange(2 * 3 * 3, dtype=float).reshape(2, 3, 3)
    table = autocorr_table(array, ["a", "b", "c"], [0, 10])
    assert isinstance(table, pd.DataFrame)
    np.testing.assert_array_equal(table.loc["Lag 10"].to_numpy(), array[1])
    assert list(table.columns) == ["a", "b", "c"]


# --- DIC ---------------------------------------------------------------------------------------------


def test_dic_of_conjugate_normal_mean() -> None:
    """y_i ~ N(mu, 1) with a flat prior: mu | y ~ N(ybar, 1/n), so pD = 1 and DIC = D(ybar) + 2."""
    rng = np.random.default_rng(11)
    y = rng.normal(1.5, 1.0, size=50)

    def loglik(mu: float) -> float:
        return float(-0.5 * np.sum((y - mu) ** 2) - 0.5 * y.size * np.log(2 * np.pi))

    draws = rng.normal(y.mean(), 1 / np.sqrt(y.size), size=20000)
    result = dic(loglik, draws, draws.mean())
    # exact identity for this model: pD = n * (population variance of the draws)
    np.testing.assert_allclose(result.pd, y.size * draws.var(), rtol=1e-8)
    np.testing.assert_allclose(result.pd, 1.0, atol=0.05)
    np.testing.assert_allclose(result.dic, -2 * norm(y.mean(), 1.0).logpdf(y).sum() + 2.0, atol=0.1)
    np.testing.assert_allclose(result.dic, result.dbar + result.pd)


def test_dic_errors() -> None:
    with pytest.raises(ValueError, match="at least one draw"):
        dic(lambda theta: 0.0, [], 0.0)
    with pytest.raises(ValueError, match="not finite"):
        dic(lambda theta: -np.inf if theta > 0 else 0.0, [1.0, -1.0], 0.0)


# --- MCMCglmm controls -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [((13000, 3000, 10), (1000, 3000, 10)), ((1000, 0, 1), (1000, 0, 1)), ((105, 0, 10), (10, 0, 10))],
)
def test_mcmcglmm_controls(args: tuple[int, int, int], expected: tuple[int, int, int]) -> None:
    assert mcmcglmm_controls(*args) == expected


def test_mcmcglmm_controls_defaults() -> None:
    assert mcmcglmm_controls() == (1000, 3000, 10)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"nitt": 100, "burnin": 100}, "smaller than nitt"),
        ({"nitt": 100, "burnin": 95, "thin": 10}, "no draw would"),
        ({"nitt": 100, "burnin": -1}, "at least 0"),
        ({"nitt": 100, "burnin": 0, "thin": 0}, "at least 1"),
        ({"nitt": 100.5}, "whole number"),
        ({"nitt": 100, "burnin": 0, "thin": True}, "whole number"),
    ],
)
def test_mcmcglmm_controls_errors(kwargs: dict, words: str) -> None:
    with pytest.raises(ControlError, match=words) as info:
        mcmcglmm_controls(**kwargs)
    assert isinstance(info.value, PymlsemError)


# --------------------------------------------------------------------------------- convergence checks
def _idata(posterior: np.ndarray, **sample_stats: np.ndarray) -> xr.DataTree:
    """A DataTree with one posterior variable ``theta`` (chain, draw, k) and given sample statistics."""
    groups = {"posterior": xr.Dataset({"theta": (("chain", "draw", "k"), posterior)})}
    if sample_stats:
        groups["sample_stats"] = xr.Dataset({k: (("chain", "draw"), v) for k, v in sample_stats.items()})
    return xr.DataTree.from_dict(groups)


def test_convergence_checks_pass_on_independent_draws() -> None:
    rng = np.random.default_rng(1)
    energy = rng.normal(size=(4, 1000))  # independent energies: E-BFMI about 2
    idata = _idata(rng.normal(size=(4, 1000, 3)), diverging=np.zeros((4, 1000), bool), energy=energy)
    table = diagnose(idata, ["theta"])
    assert list(table.index) == ["r_hat", "ess_bulk", "ess_tail", "divergent", "e_bfmi", "signs"]
    assert table["ok"].all() and convergence_message(table) is None


def test_convergence_checks_name_what_failed_and_what_to_try() -> None:
    rng = np.random.default_rng(2)
    draws = rng.normal(size=(4, 200, 3))
    draws[0, :, 1] += 3.0  # one chain elsewhere for theta[1]
    walk = np.cumsum(rng.normal(size=(4, 200)), axis=1)  # a random-walk energy: E-BFMI far below 0.3
    diverging = np.zeros((4, 200), bool)
    diverging[1, :5] = True
    table = diagnose(_idata(draws, diverging=diverging, energy=walk), ["theta"])
    assert not table.loc["r_hat", "ok"] and table.loc["r_hat", "worst"].startswith("theta[1]")
    assert table.loc["divergent", "value"] == 5 and not table.loc["divergent", "ok"]
    assert not table.loc["e_bfmi", "ok"]
    message = convergence_message(table)
    assert "r_hat" in message and "target_accept" in message and "fit.diagnose()" in message
    assert f"r_hat {table.loc['r_hat', 'value']:.3f} (threshold 1.01)" in message


def test_an_r_hat_just_above_its_threshold_is_printed_above_it() -> None:
    # four chains whose means differ slightly: R-hat a little above 1.01, which three significant digits
    # would print as the threshold itself
    rng = np.random.default_rng(5)
    draws = rng.normal(size=(4, 1000, 1)) + np.array([0.0, 0.0, 0.0, 0.3])[:, None, None]
    table = diagnose(_idata(draws), ["theta"])
    value = table.loc["r_hat", "value"]
    assert 1.01 < value < 1.015 and not table.loc["r_hat", "ok"]
    assert f"r_hat {value:.3f} (threshold 1.01)" in convergence_message(table)


def test_chains_in_different_modes_are_named_with_their_log_density_gap() -> None:
    # M2 of tests/reference.py on Demo.twolevel: three chains at a log density about 60 above the fourth's
    # (lavaan's ML estimate is in the lower mode: tests/workflow/test_model_fit.py); within-chain SD ~4
    rng = np.random.default_rng(3)
    log_density = rng.normal(-24206.0, 4.0, size=(4, 1000))
    one_mode = diagnose(_idata(rng.normal(size=(4, 1000, 2)), logp=log_density), ["theta"])
    assert one_mode.loc["modes", "ok"] and one_mode.loc["modes", "value"] < 1.0
    assert one_mode.loc["modes", "threshold"] == pytest.approx(16.0, rel=0.05)
    log_density[1] -= 60.0
    table = diagnose(_idata(rng.normal(size=(4, 1000, 2)), lp=log_density), ["theta"])  # PyMC's name
    assert not table.loc["modes", "ok"] and table.loc["modes", "value"] == pytest.approx(60.0, abs=1.0)
    assert table.loc["modes", "worst"].startswith("chain 1 at -6")
    message = convergence_message(table)
    assert "different modes" in message and "below the best chain's: chain 1 at -6" in message
    single = diagnose(_idata(rng.normal(size=(1, 1000, 2)), logp=log_density[:1]), ["theta"])
    assert "modes" not in single.index  # one chain: nothing to compare


def test_chains_that_are_mirror_images_are_named_with_what_to_do() -> None:
    # a factor of fixed variance: chains 0 and 2 settled on positive loadings, 1 and 3 on negative ones,
    # with the same log densities (what "modes" sees: nothing); theta[2] is a parameter centred on 0 and
    # theta[1] a positive one whose chains agree
    rng = np.random.default_rng(4)
    draws = rng.normal(0.0, 0.08, size=(4, 1000, 3))
    draws[:, :, 0] += np.array([0.8, -0.8, 0.8, -0.8])[:, None]
    draws[:, :, 1] += 0.5
    log_density = rng.normal(-5000.0, 4.0, size=(4, 1000))
    table = diagnose(_idata(draws, logp=log_density), ["theta"])
    assert not table.loc["signs", "ok"] and table.loc["signs", "value"] == 1
    assert table.loc["signs", "worst"] == "theta[0]" and table.loc["modes", "ok"]
    message = convergence_message(table)
    assert message.index("signs 1") < message.index("r_hat") and "mirror images" in message
    assert "fit.select_chains" in message and "marker" in message
    draws[:, :, 0] = np.abs(draws[:, :, 0])
    draws[0, :, 1] -= 1.0  # one chain at -0.5, three at +0.5 (each 6 SDs from 0)
    table = diagnose(_idata(draws, logp=log_density), ["theta"])
    assert not table.loc["signs", "ok"] and table.loc["signs", "worst"] == "theta[1]"
    # chains apart on one side of 0 are not mirror images (R-hat reports them)
    draws[0, :, 1] += 0.9  # at +0.4
    table = diagnose(_idata(draws, logp=log_density), ["theta"])
    assert table.loc["signs", "ok"] and not table.loc["r_hat", "ok"]


@pytest.mark.sampling
def test_a_short_run_warns_and_a_healthy_one_does_not() -> None:
    model, frame = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6", load_dataset("HolzingerSwineford1939")
    with pytest.warns(ConvergenceWarning, match="may not be trustworthy"):
        short = pymlsem.sem(model, frame, draws=15, tune=15, chains=2, progressbar=False, random_seed=1)
    assert "FAILED" in short.summary() and not short.diagnose()["ok"].all()
    with warnings.catch_warnings():
        # healthy: 1,300-2,600 effective draws per parameter over seeds 1-6, so the largest R-hat
        # (1.002-1.005) is far from 1.01; with 2 x 1000 draws (200-650) it passed on four seeds of six
        warnings.simplefilter("error", ConvergenceWarning)
        healthy = pymlsem.sem(model, frame, draws=2000, tune=1000, chains=4, progressbar=False, random_seed=1)
    assert healthy.diagnose()["ok"].all() and "passed" in healthy.summary()
    with pytest.warns(ConvergenceWarning):  # the mixed-model door too
        mixed = pymlsem.mixed("y1 ~ x1 + (1 | cluster)", load_dataset("Demo.twolevel"), draws=15, tune=15)
    assert "WARNING" in mixed.summary() and set(mixed.reported_variables()) >= {"fixef", "sigma"}
