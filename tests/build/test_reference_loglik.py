"""The likelihood is right: pymlsem's log-likelihood at lavaan's estimates equals lavaan's logl.

No sampling. This is the test that catches a wrong likelihood, a wrong default in the parameter table
or a wrong RAM moment matrix: every one of them changes the number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from reference import LAVAAN, REFERENCE_FITS, STD_LV_FITS, data, lavaan_estimates, lavaan_fitmeasure

import pymlsem
from pymlsem.build.marginal import global_moments

#: formula checks: PyTensor evaluates the graphs by Python thunks (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("uncompiled_graphs")


@pytest.fixture(scope="module", params=sorted(REFERENCE_FITS))
def reference(request):
    model, dataset, cluster, prefix = REFERENCE_FITS[request.param]
    return pymlsem.SEM(model, data(dataset), cluster=cluster), prefix


def test_loglik_at_lavaan_estimates_equals_lavaan_logl(reference) -> None:
    spec, prefix = reference
    ours = spec.log_likelihood(lavaan_estimates(prefix))
    assert ours == pytest.approx(lavaan_fitmeasure(prefix, "logl"), rel=1e-9)


def test_loglik_moves_away_from_lavaan_estimates(reference) -> None:
    """A perturbed estimate gives a lower log-likelihood (the estimates are lavaan's maximum)."""
    spec, prefix = reference
    estimates = lavaan_estimates(prefix)
    free = estimates.index[(estimates.op == "=~") & (estimates.se > 0)]
    perturbed = estimates.copy()
    perturbed.loc[free[0], "est"] += 0.05
    assert spec.log_likelihood(perturbed) < lavaan_fitmeasure(prefix, "logl") - 1e-4


@pytest.mark.parametrize("name", sorted(STD_LV_FITS))
def test_std_lv_loglik_at_lavaan_estimates_equals_lavaan_logl(name: str) -> None:
    """std_lv=True is lavaan's std.lv = TRUE: its parameters at lavaan's estimates give lavaan's logl."""
    model, dataset, cluster, model_type, prefix = STD_LV_FITS[name]
    spec = pymlsem.SEM(model, data(dataset), cluster=cluster, model_type=model_type, std_lv=True)
    assert spec.log_likelihood(lavaan_estimates(prefix)) == pytest.approx(
        lavaan_fitmeasure(prefix, "logl"), rel=1e-9
    )


@pytest.mark.parametrize("level,kind", [(1, "within"), (2, "between")])
def test_seed_model_implied_moments_equal_lavaan(level: int, kind: str) -> None:
    model, dataset, cluster, prefix = REFERENCE_FITS["seed"]
    spec = pymlsem.SEM(model, data(dataset), cluster=cluster)
    rows = spec.rows_from_estimates(lavaan_estimates(prefix))
    mean, cov = global_moments(spec.built.layouts[level], rows, spec.stats.variables)
    lavaan_cov = pd.read_csv(LAVAAN / f"{prefix}_implied_{kind}_cov.csv", index_col=0)
    lavaan_mean = pd.read_csv(LAVAAN / f"{prefix}_implied_{kind}_mean.csv", index_col=0)
    where = [list(spec.stats.variables).index(v) for v in lavaan_cov.columns]
    np.testing.assert_allclose(cov.eval()[np.ix_(where, where)], lavaan_cov.to_numpy(), atol=1e-10)
    np.testing.assert_allclose(mean.eval()[where], lavaan_mean.to_numpy().ravel(), atol=1e-10)


def test_summary_statistics_give_the_raw_data_loglik() -> None:
    """Single-level SEM from sample_cov/sample_mean/sample_nobs alone (lavaan's N-1 covariance)."""
    model, dataset, _, prefix = REFERENCE_FITS["hs_cfa"]
    frame = data(dataset)
    names = ["x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9"]
    spec = pymlsem.SEM(
        model,
        sample_cov=frame[names].cov(),
        sample_mean=frame[names].mean(),
        sample_nobs=len(frame),
    )
    ours = spec.log_likelihood(lavaan_estimates(prefix))
    assert ours == pytest.approx(lavaan_fitmeasure(prefix, "logl"), rel=1e-9)
