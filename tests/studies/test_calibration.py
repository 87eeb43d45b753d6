"""Simulation-based calibration: the ranks of a calibrated posterior are uniform, those of a posterior that
is too narrow or shifted are not, and a study gives the same ranks for the same seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pymlsem.exceptions import ModelSpecificationError, PriorError
from pymlsem.studies import Calibration, sbc, sem_sbc
from pymlsem.studies.calibration import ranks_of

FIT = {"draws": 250, "tune": 250, "chains": 2}


def _regression_data(n: int = 60, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": 0.5 * x + rng.normal(size=n)})


def _calibration(truth: np.ndarray, posterior: np.ndarray, n_ranks: int = 19) -> Calibration:
    """Ranks of ``truth[i]`` among ``posterior[i]`` (one parameter)."""
    rows = [
        {
            "replicate": i,
            "parameter": "theta",
            "truth": t,
            **{"rank": ranks_of({"theta": t}, {"theta": d}, n_ranks)["theta"]},
        }
        for i, (t, d) in enumerate(zip(truth, posterior, strict=True))
    ]
    return Calibration(pd.DataFrame(rows), pd.DataFrame(), n_ranks)


def test_the_uniformity_test_tells_a_calibrated_posterior_from_a_narrow_or_shifted_one() -> None:
    """The exact posterior of a normal mean with known variance (prior N(0, 1), one observation with SD 1:
    posterior N(y / 2, 1 / 2)) gives uniform ranks; a posterior half as wide (U-shaped ranks) or shifted by
    half an SD (sloped ranks) does not, with 400 replicates."""
    rng = np.random.default_rng(7)
    theta = rng.standard_normal(400)
    y = theta + rng.standard_normal(400)
    noise = rng.standard_normal((400, 99))
    exact = y[:, None] / 2 + np.sqrt(0.5) * noise
    narrow = y[:, None] / 2 + 0.5 * np.sqrt(0.5) * noise
    shifted = exact + 0.5 * np.sqrt(0.5)
    assert _calibration(theta, exact, 99).uniformity(bins=10).loc["theta", "p_value"] > 0.01
    assert _calibration(theta, narrow, 99).uniformity(bins=10).loc["theta", "p_value"] < 1e-6
    assert _calibration(theta, shifted, 99).uniformity(bins=10).loc["theta", "p_value"] < 1e-6


@pytest.mark.sampling
def test_a_regressions_ranks_are_uniform_and_reproducible() -> None:
    """40 replicates of ``y ~ x`` drawn from its prior and fitted by NUTS with the same (pinned) priors:
    every parameter's ranks pass the chi-squared test (Bonferroni over the three parameters at 0.001; a
    calibrated posterior fails with probability 0.001). Three replicates again with the same seed: the same
    ranks."""
    data = _regression_data()
    calibration = sem_sbc("y ~ x", data, nsim=40, n_ranks=19, random_seed=11, **FIT)
    assert set(calibration.ranks["parameter"]) == {"y~x", "y~~y", "y~1"}
    assert calibration.ranks["rank"].between(0, 19).all() and len(calibration.ranks) == 3 * 40
    uniformity = calibration.uniformity(bins=4)
    assert (uniformity["p_bonferroni"] > 0.001).all(), uniformity
    assert (calibration.fits["max_r_hat"] < 1.05).all()
    again = sem_sbc("y ~ x", data, nsim=3, n_ranks=19, random_seed=11, **FIT)
    first = calibration.ranks[calibration.ranks["replicate"] < 3].reset_index(drop=True)
    pd.testing.assert_frame_equal(again.ranks, first)


def test_mixed_models_whose_prior_follows_the_response_are_refused_before_any_fit() -> None:
    rng = np.random.default_rng(2)
    data = pd.DataFrame({"x1": rng.normal(size=60), "g": np.repeat(np.arange(6), 10)})
    data["y"] = rng.normal(size=60)
    data["yb"] = (data["y"] > 0).astype(int)
    with pytest.raises(PriorError, match="scaled to the response's SD"):
        sbc("y ~ x1 + (1 | g)", data, "gaussian", nsim=5)
    with pytest.raises(PriorError, match="fixef:\\(Intercept\\)"):
        sbc("yb ~ x1 + (1 | g)", data, "bernoulli", nsim=5)
    with pytest.raises(ModelSpecificationError, match="not the ordinal family"):
        sbc(
            "rating ~ x1 + (1 | g)",
            data.assign(rating=np.digitize(data["y"], [-0.5, 0.5])),
            "ordinal",
            nsim=5,
        )
    with pytest.raises(ModelSpecificationError, match="nsim"):
        sem_sbc("y ~ x1", data, nsim=1)
    with pytest.raises(ModelSpecificationError, match="n_ranks"):
        sem_sbc("y ~ x1", data, nsim=5, n_ranks=0)


@pytest.mark.sampling
def test_a_glmm_replicate_ranks_its_fixed_effects_and_sds() -> None:
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"x1": rng.normal(size=120), "g": np.repeat(np.arange(12), 10)})
    data["yb"] = rng.integers(0, 2, 120)
    before = data.copy()
    calibration = sbc(
        "yb ~ x1 + (1 | g)",
        data,
        "bernoulli",
        priors={"fixef:(Intercept)": "normal(0, 1.5)"},
        nsim=2,
        n_ranks=19,
        random_seed=5,
        **FIT,
    )
    assert set(calibration.ranks["parameter"]) == {"fixef[(Intercept)]", "fixef[x1]", "sd[g:(Intercept)]"}
    assert calibration.ranks["rank"].between(0, 19).all()
    assert list(calibration.fits["replicate"]) == [0, 1]
    pd.testing.assert_frame_equal(data, before)  # the caller's data are not changed
