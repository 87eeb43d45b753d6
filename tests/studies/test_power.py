"""Bayesian power analysis by simulation: the simulated data, the book's power example, reproducibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pymlsem
from pymlsem.exceptions import ConvergenceWarning, ModelSpecificationError
from pymlsem.studies.power import simulate_response

FORMULA = "y ~ x1 + (1 | cluster)"


def _book_design(clusters: int = 25) -> pd.DataFrame:
    """The book's chapter 12 design: x1 = 1..20 in each of ``clusters`` clusters."""
    return pd.DataFrame(
        {"x1": np.tile(np.arange(1, 21), clusters), "cluster": np.repeat(np.arange(clusters), 20).astype(str)}
    )


def _constant_eta_response(
    design: pd.DataFrame, family: str, intercept: float, rng: np.random.Generator
) -> np.ndarray:
    """A ``family`` response whose linear predictor is ``intercept`` on every row (no slope or variance)."""
    return simulate_response(
        FORMULA,
        design,
        fixef={"(Intercept)": intercept, "x1": 0.0},
        varcorr={"cluster": 0.0},
        family=family,
        rng=rng,
    )


def test_simulated_response_has_the_stated_moments() -> None:
    """4,000 clusters: the cluster means' variance is the intercept variance plus sigma^2 / 20, the
    within-cluster residual variance is sigma^2, the slope is the fixed effect (each within 4 standard
    errors); bernoulli and poisson responses have the family's values."""
    design = _book_design(4000)
    rng = np.random.default_rng(1)
    y = simulate_response(
        FORMULA, design, fixef={"(Intercept)": 1.0, "x1": 0.5}, varcorr={"cluster": 0.25}, sigma=1.0, rng=rng
    )
    residual = y - 0.5 * design["x1"].to_numpy()
    means = pd.Series(residual).groupby(design["cluster"]).mean()
    within = (residual - means[design["cluster"]].to_numpy()).var() * 20 / 19
    assert abs(means.mean() - 1.0) < 4 * np.sqrt((0.25 + 1 / 20) / 4000)
    assert abs(means.var() - (0.25 + 1 / 20)) < 4 * (0.25 + 1 / 20) * np.sqrt(2 / 4000)
    assert abs(within - 1.0) < 4 * np.sqrt(2 / (4000 * 19))
    slope = np.polyfit(design["x1"], y, 1)[0]
    assert abs(slope - 0.5) < 0.01
    binary = _constant_eta_response(design, "bernoulli", 0.0, rng)
    assert set(np.unique(binary)) == {0.0, 1.0} and abs(binary.mean() - 0.5) < 0.02
    counts = _constant_eta_response(design, "poisson", 1.0, rng)
    assert abs(counts.mean() - np.e) < 0.05


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fixef": {"(Intercept)": 1.0}}, "no value for \\['x1'\\]"),
        ({"varcorr": {}}, "no entry for 'cluster'"),
        ({"varcorr": {"cluster": np.eye(2)}}, "must be 1 x 1"),
        ({"family": "ordinal"}, "not family='ordinal'"),
        ({"term": "x2"}, "term 'x2' is not a fixed effect"),
        ({"nsim": 0}, "nsim must be a positive integer"),
    ],
)
def test_bad_power_studies_are_refused_before_fitting(kwargs: dict, message: str) -> None:
    arguments = {
        "fixef": {"(Intercept)": 1.0, "x1": 0.5},
        "varcorr": {"cluster": 0.25},
        "term": "x1",
        "nsim": 2,
        **kwargs,
    }
    with pytest.raises(ModelSpecificationError, match=message):
        pymlsem.power_sim(FORMULA, _book_design(), **arguments)


SHORT = {"draws": 300, "tune": 300, "chains": 2}


@pytest.mark.sampling
def test_the_books_power_example_and_a_null_effect() -> None:
    """The book's example (fixed effects 1 and 0.5, intercept variance 0.25, sigma 1, 25 clusters of 20):
    power 1, as simr reports. With the slope 0 the interval excludes 0 rarely: at most 4 of 20 replicates
    (the chance of 5 or more at the nominal 5% is 0.3%). The same seed gives the same table."""
    design = _book_design()
    common = {"varcorr": {"cluster": 0.25}, "sigma": 1.0, "term": "x1", **SHORT}
    strong = pymlsem.power_sim(
        FORMULA, design, fixef={"(Intercept)": 1.0, "x1": 0.5}, nsim=6, random_seed=1, **common
    )
    assert strong.power == 1.0 and strong.interval[0] > 0.5
    assert np.abs(strong.table["estimate"] - 0.5).max() < 0.05
    null = pymlsem.power_sim(
        FORMULA, design, fixef={"(Intercept)": 1.0, "x1": 0.0}, nsim=20, random_seed=2, **common
    )
    assert null.power <= 0.2 and list(null.table.columns) == [
        "estimate", "lower", "upper", "excludes_zero", "ess_bulk", "r_hat", "divergences", "converged", "seed"
    ]  # fmt: skip
    again = pymlsem.power_sim(
        FORMULA, design, fixef={"(Intercept)": 1.0, "x1": 0.5}, nsim=2, random_seed=1, **common
    )
    pd.testing.assert_frame_equal(again.table, strong.table.iloc[:2])


@pytest.mark.sampling
def test_replicates_that_did_not_converge_are_counted_in_one_warning() -> None:
    """Twenty draws a chain cannot reach a bulk ESS of 100 a chain: each replicate's fit fails its checks,
    the table says so, and the study gives one warning counting them, not one per fit."""
    design = _book_design()
    with pytest.warns(ConvergenceWarning) as record:
        result = pymlsem.power_sim(
            FORMULA, design, fixef={"(Intercept)": 1.0, "x1": 0.5}, varcorr={"cluster": 0.25},
            term="x1", nsim=3, random_seed=3, draws=20, tune=100, chains=2,
        )  # fmt: skip
    convergence = [w for w in record if issubclass(w.category, ConvergenceWarning)]
    assert len(convergence) == 1 and str(convergence[0].message).startswith("3 of 3 replicates")
    assert not result.table["converged"].any()


@pytest.mark.sampling
def test_replicates_on_dask_give_the_serial_table() -> None:
    """The replicates as Dask tasks on a 2-worker LocalCluster: the same table as serially, seed for seed."""
    distributed = pytest.importorskip("distributed")
    design = _book_design()
    arguments = {
        "fixef": {"(Intercept)": 1.0, "x1": 0.1},
        "varcorr": {"cluster": 0.25},
        "term": "x1",
        "nsim": 4,
        "random_seed": 7,
        **SHORT,
    }
    serial = pymlsem.power_sim(FORMULA, design, **arguments)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        distributed.Client(cluster) as client,
    ):
        parallel = pymlsem.power_sim(FORMULA, design, client=client, **arguments)
    pd.testing.assert_frame_equal(parallel.table, serial.table)


@pytest.mark.sampling
def test_power_curve_follows_the_normal_approximation() -> None:
    """A small slope (0.02): with k clusters of x1 = 1..20 the slope's SE is about sigma / sqrt(665 k), so
    the power is about Phi(d / se - 1.96) (0.21, 0.63 and 0.90 at 5, 20 and 40 clusters); each point within
    3.3 binomial SDs of it (30 replicates), rising from 5 to 40 clusters, and its plot drawn."""
    from scipy.stats import norm

    design = _book_design(40)
    curve = pymlsem.power_curve(
        FORMULA,
        design,
        along="cluster",
        clusters=[5, 20, 40],
        fixef={"(Intercept)": 1.0, "x1": 0.02},
        varcorr={"cluster": 0.25},
        term="x1",
        nsim=30,
        random_seed=3,
        **SHORT,
    )
    ratio = 0.02 * np.sqrt(665 * curve.table["clusters"].to_numpy())
    expected = norm.cdf(ratio - 1.96) + norm.cdf(-ratio - 1.96)
    sd = np.sqrt(expected * (1 - expected) / 30)
    assert (np.abs(curve.table["power"] - expected) < 3.3 * sd).all(), curve.table
    assert curve.table["power"].iloc[-1] > curve.table["power"].iloc[0]
    figure = curve.plot()
    assert len(figure.axes[0].lines) >= 2  # the curve and the 0.8 line


@pytest.mark.sampling
def test_sem_power_sim_from_a_lavaan_model() -> None:
    """A regression in lavaan syntax (y ~ b*x, b = 0.5, 200 rows): every interval excludes 0 and the
    estimates sit near 0.5; the label or the printed name selects the parameter, an unknown one is refused
    before any fit."""
    model = "y ~ b*x"
    result = pymlsem.sem_power_sim(model, {"b": 0.5}, term="b", nsim=4, n=200, random_seed=2, **SHORT)
    assert result.power == 1.0 and np.abs(result.table["estimate"] - 0.5).max() < 0.25
    by_name = pymlsem.sem_power_sim(model, {"b": 0.5}, term="y~x", nsim=1, n=200, random_seed=2, **SHORT)
    assert by_name.table["estimate"].iloc[0] == result.table["estimate"].iloc[0]
    with pytest.raises(ModelSpecificationError, match="not a free parameter"):
        pymlsem.sem_power_sim(model, {"b": 0.5}, term="c", nsim=1, n=200)


@pytest.mark.sampling
def test_sem_power_sim_with_std_lv_simulates_and_fits_the_unit_variance_factor() -> None:
    """One factor with std_lv: its first loading (0.6 here) is a free parameter of both the simulation
    and the fits, so its power can be studied; with the marker it is fixed, and the term is refused."""
    model, values = "g =~ x1 + x2 + x3", {"g=~x1": 0.6}
    result = pymlsem.sem_power_sim(
        model, values, term="g=~x1", nsim=3, n=300, std_lv=True, random_seed=4, **SHORT
    )
    assert result.power == 1.0 and np.abs(result.table["estimate"] - 0.6).max() < 0.2
    with pytest.raises(ModelSpecificationError, match="not a free parameter"):
        pymlsem.sem_power_sim(model, values, term="g=~x1", nsim=1, n=300)
