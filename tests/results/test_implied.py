"""Posterior-draw moments in numpy (:mod:`pymlsem.results.implied`) against lavaan's implied moments.

No sampling: a stand-in posterior whose every draw sits at lavaan's estimates (or at a perturbation of them).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr
from reference import LAVAAN, REFERENCE_FITS, data, lavaan_estimates

import pymlsem
from pymlsem.build.marginal import global_moments
from pymlsem.results.implied import implied_moment_draws, ram_moment_draws, row_value_draws


def _fit_at(spec: pymlsem.SEM, rows: np.ndarray, chains: int = 2, draws: int = 3) -> SimpleNamespace:
    """A fit-like object whose posterior repeats one parameter vector (taken from table rows)."""
    built = spec.built
    first_row = [int(np.flatnonzero(built.row_param == i)[0]) for i in range(len(built.free))]
    values = np.broadcast_to(rows[first_row], (chains, draws, len(first_row)))
    parameters = xr.DataArray(values, dims=("chain", "draw", "parameter"))
    return SimpleNamespace(model=spec, idata=SimpleNamespace(posterior={"parameters": parameters}))


@pytest.fixture(scope="module")
def seed() -> tuple[pymlsem.SEM, np.ndarray]:
    model, dataset, cluster, prefix = REFERENCE_FITS["seed"]
    spec = pymlsem.SEM(model, data(dataset), cluster=cluster)
    rows = np.asarray(spec.rows_from_estimates(lavaan_estimates(prefix)), dtype=float)
    return spec, rows


@pytest.mark.parametrize("level,kind", [(1, "within"), (2, "between")])
def test_implied_moment_draws_equal_lavaan(seed, level: int, kind: str) -> None:
    spec, rows = seed
    moments = implied_moment_draws(_fit_at(spec, rows))[level]
    assert moments.mean.shape[0] == 6  # 2 chains x 3 draws
    lavaan_cov = pd.read_csv(LAVAAN / f"demo_twolevel_implied_{kind}_cov.csv", index_col=0)
    lavaan_mean = pd.read_csv(LAVAAN / f"demo_twolevel_implied_{kind}_mean.csv", index_col=0)
    where = [moments.observed.index(v) for v in lavaan_cov.columns if v in moments.observed]
    names = [moments.observed[i] for i in where]
    np.testing.assert_allclose(
        moments.observed_cov[3][np.ix_(where, where)], lavaan_cov.loc[names, names].to_numpy(), atol=1e-10
    )
    np.testing.assert_allclose(
        moments.observed_mean[3][where], lavaan_mean[names].to_numpy().ravel(), atol=1e-10
    )


def test_moments_follow_each_draw_like_the_pytensor_path(seed) -> None:
    """Different draws give the moments the model's own (PyTensor) RAM code gives for each."""
    spec, rows = seed
    rng = np.random.default_rng(1)
    batch = rows[None, :] * (1 + 0.1 * rng.standard_normal((4, rows.size)))
    batch[:, np.isnan(rows)] = np.nan
    for layout in spec.built.layouts.values():
        moments = ram_moment_draws(layout, batch)
        row_vector = pt.vector("rows")
        evaluate = pytensor.function(
            [row_vector], global_moments(layout, row_vector, spec.stats.variables), mode="FAST_COMPILE"
        )
        where = [list(spec.stats.variables).index(v) for v in layout.observed]
        for n in range(4):
            mean, cov = evaluate(batch[n])
            np.testing.assert_allclose(moments.observed_cov[n], cov[np.ix_(where, where)], rtol=1e-10)
            np.testing.assert_allclose(moments.observed_mean[n], mean[where], rtol=1e-10, atol=1e-12)


def test_row_value_draws_keep_fixed_rows(seed) -> None:
    spec, rows = seed
    draws = row_value_draws(_fit_at(spec, rows))
    fixed = spec.built.row_param < 0
    np.testing.assert_allclose(
        draws[:, fixed], np.broadcast_to(spec.fixed_row_values()[fixed], (6, fixed.sum()))
    )
    np.testing.assert_allclose(draws[0], rows, equal_nan=True)
