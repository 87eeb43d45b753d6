"""parameter_estimates() and summary() layout, on a synthetic posterior (no sampling)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from reference import SEED, data

import pymlsem
from pymlsem.results.fit import SEMFit
from pymlsem.sample import Timings

CONTRACT_COLUMNS = ["lhs", "op", "rhs", "level", "label", "free", "mean", "sd", "q2.5", "q97.5", "r_hat",
                    "ess_bulk", "ess_tail", "prior"]  # fmt: skip


def fake_fit(spec: pymlsem.SEM, seed: int = 0) -> SEMFit:
    """A fit whose posterior draws are normal around 0.5 for every free parameter."""
    rng = np.random.default_rng(seed)
    names = [p.name for p in spec.built.free]
    posterior = xr.Dataset(
        {
            "parameters": (
                ("chain", "draw", "parameter"),
                0.5 + 0.1 * rng.standard_normal((2, 200, len(names))),
            )
        },
        coords={"chain": [0, 1], "draw": np.arange(200), "parameter": names},
    )
    if spec.built.defined:
        posterior["defined"] = (("chain", "draw", "defined_parameter"), rng.standard_normal((2, 200, 1)))
        posterior = posterior.assign_coords(defined_parameter=spec.built.defined)
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((2, 200), dtype=bool))})
    idata = xr.DataTree.from_dict({"posterior": posterior, "sample_stats": stats})
    return SEMFit(
        spec, idata, sampler="nutpie", chains=2, draws=200, tune=200, timings=Timings(0.1, 1, 2, 3, False)
    )


@pytest.fixture(scope="module")
def seed_fit() -> SEMFit:
    return fake_fit(pymlsem.SEM(SEED, data("Demo.twolevel"), cluster="cluster"))


def test_parameter_estimates_follow_the_contract(seed_fit) -> None:
    table = seed_fit.parameter_estimates()
    assert list(table.columns) == CONTRACT_COLUMNS
    assert len(table) == len(seed_fit.model.partable.table)
    fixed = table[~table.free]
    assert fixed["sd"].isna().all() and (fixed["prior"] == "").all()
    marker = table[(table.lhs == "fw") & (table.op == "=~") & (table.rhs == "y1")].iloc[0]
    assert marker["mean"] == 1.0 and not marker["free"]
    exo = table[(table.lhs == "w1") & (table.op == "~~") & (table.rhs == "w1")].iloc[0]
    assert exo["mean"] == pytest.approx(0.870022096093673, abs=1e-12)  # lavaan's fixed.x value
    free = table[table.free]
    assert free["mean"].between(0.4, 0.6).all() and (free["prior"] != "").all()


def test_summary_sections_per_level(seed_fit) -> None:
    text = seed_fit.summary()
    within, between = text.split("Level 2 [between]:")
    for part in ("Latent Variables:", "Regressions:", "Covariances:", "Intercepts:", "Variances:"):
        assert part in within and part in between
    assert "  fw =~" in within and "  fb =~" in between
    assert "Number of clusters [cluster]" in text and "2500" in text
    marker_line = next(
        line for line in within.splitlines() if line.strip().startswith("y1") and "1.000" in line
    )
    assert "normal" not in marker_line  # fixed values: no SD, no prior


def test_labels_and_defined_parameters_are_shown() -> None:
    model = "visual =~ x1 + a*x2 + x3\n textual =~ x4 + b*x5 + x6\n speed =~ x7 + x8 + x9\n ab := a*b"
    fit = fake_fit(pymlsem.SEM(model, data("HolzingerSwineford1939")))
    text = fit.summary()
    assert "x2 (a)" in text and "Defined Parameters:" in text
    table = fit.parameter_estimates()
    defined = table[table.op == ":="].iloc[0]
    assert defined["lhs"] == "ab" and defined["rhs"] == "a*b" and defined["free"]
