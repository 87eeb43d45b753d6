"""The saturated model's posterior (``fit.sample_statistics(bayesian=True)``) against lavaan's h1 moments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from reference import HS, LAVAAN, SEED, data

import pymlsem
from pymlsem.workflow.saturated_posterior import saturated_posterior, saturated_syntax


def test_saturated_syntax_frees_every_moment_of_each_level() -> None:
    spec = pymlsem.SEM(SEED, data("Demo.twolevel"), cluster="cluster")
    saturated = pymlsem.SEM(saturated_syntax(spec), spec.data, cluster="cluster")
    # lavaan's h1 for this model: 21 within and 15 between (co)variances, 5 between means, 3 within-only means
    assert len(saturated.built.free) == 21 + 15 + 5 + 3
    assert saturated.partable.observed == spec.partable.observed
    assert not any(saturated.partable.exogenous.values())  # every covariate's moments are free


def test_single_level_saturated_syntax() -> None:
    spec = pymlsem.SEM(HS, data("HolzingerSwineford1939"))
    saturated = pymlsem.SEM(saturated_syntax(spec), spec.data)
    assert len(saturated.built.free) == 9 * 10 // 2 + 9


def test_summary_statistics_input_is_refused() -> None:
    frame = data("HolzingerSwineford1939")
    names = [f"x{i}" for i in range(1, 10)]
    spec = pymlsem.SEM(HS, sample_cov=frame[names].cov(), sample_mean=frame[names].mean(), sample_nobs=301)
    with pytest.raises(pymlsem.DataError, match="raw data"):
        saturated_posterior(spec)


@pytest.mark.sampling
def test_saturated_posterior_brackets_lavaans_h1_moments() -> None:
    spec = pymlsem.SEM(SEED, data("Demo.twolevel"), cluster="cluster")
    result = saturated_posterior(spec, draws=400, tune=400, chains=2, random_seed=3)
    table = result.table.set_index(["level", "lhs", "rhs"])
    assert (result.fit.parameter_estimates().query("free").r_hat < 1.05).all()
    for level, kind in [(1, "within"), (2, "between")]:
        lavaan = pd.read_csv(LAVAAN / f"demo_twolevel_h1_{kind}_cov.csv", index_col=0)
        names = list(result.cov[level].index)
        for i, a in enumerate(names):
            for b in names[i:]:
                row = table.loc[(level, a, b)]
                value = lavaan.loc[a, b]
                # the ML estimate lies inside the central 95% interval; within (2,500 rows) the posterior mean
                # is also within 0.5 posterior SD of it (priors are weak, the likelihood sharp)
                assert row["q2.5"] < value < row["q97.5"], (level, a, b, value, dict(row))
                if level == 1:
                    assert abs(row["mean"] - value) < 0.5 * row["sd"] + 1e-3, (a, b, value, dict(row))
    np.testing.assert_allclose(result.cov[1].to_numpy(), result.cov[1].to_numpy().T)
