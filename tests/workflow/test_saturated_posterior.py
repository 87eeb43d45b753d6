"""The saturated model's posterior (``fit.sample_statistics(bayesian=True)``) against lavaan's h1 moments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from reference import HS, LAVAAN, SEED, data
from tolerances import check_close, mcse, mle_allowance

import pymlsem
from pymlsem.results.implied import implied_moment_draws
from pymlsem.workflow.saturated_posterior import saturated_model, saturated_posterior


def test_saturated_model_frees_every_moment_of_each_level() -> None:
    spec = pymlsem.SEM(SEED, data("Demo.twolevel"), cluster="cluster")
    saturated = pymlsem.SEM(saturated_model(spec), spec.data, cluster="cluster")
    # lavaan's h1 for this model: 21 within and 15 between (co)variances, 5 between means, 3 within-only means
    assert len(saturated.built.free) == 21 + 15 + 5 + 3
    assert saturated.partable.observed == spec.partable.observed
    assert not any(saturated.partable.exogenous.values())  # every covariate's moments are free


def test_single_level_saturated_model() -> None:
    spec = pymlsem.SEM(HS, data("HolzingerSwineford1939"))
    saturated = pymlsem.SEM(saturated_model(spec), spec.data)
    assert len(saturated.built.free) == 9 * 10 // 2 + 9


def test_summary_statistics_input_is_refused() -> None:
    frame = data("HolzingerSwineford1939")
    names = [f"x{i}" for i in range(1, 10)]
    spec = pymlsem.SEM(HS, sample_cov=frame[names].cov(), sample_mean=frame[names].mean(), sample_nobs=301)
    with pytest.raises(pymlsem.DataError, match="raw data"):
        saturated_posterior(spec)


@pytest.mark.sampling
def test_saturated_posterior_matches_lavaans_h1_moments() -> None:
    spec = pymlsem.SEM(SEED, data("Demo.twolevel"), cluster="cluster")
    chains, draws = 2, 400
    result = saturated_posterior(spec, draws=draws, tune=400, chains=chains, random_seed=3)
    table = result.table.set_index(["level", "lhs", "rhs"])
    assert (result.fit.parameter_estimates().query("free").r_hat < 1.05).all()
    moments = implied_moment_draws(result.fit)
    estimates, references, units, labels = [], [], [], []
    for level, kind, n in [(1, "within", spec.nobs), (2, "between", spec.n_clusters)]:
        lavaan = pd.read_csv(LAVAAN / f"demo_twolevel_h1_{kind}_cov.csv", index_col=0)
        names = list(result.cov[level].index)
        upper = np.triu_indices(len(names))
        estimates.append(moments[level].observed_cov[:, upper[0], upper[1]].reshape(chains, draws, -1))
        references += [lavaan.loc[names[i], names[j]] for i, j in zip(*upper, strict=True)]
        labels += [f"{names[i]}~~{names[j]}@{level}" for i, j in zip(*upper, strict=True)]
        units += [n] * len(upper[0])
    moment_draws = xr.DataArray(np.concatenate(estimates, axis=-1), dims=("chain", "draw", "moment"))
    # the table summarises the same draws
    np.testing.assert_allclose(
        [table.loc[(int(label[-1]), *label[:-2].split("~~")), "mean"] for label in labels],
        moment_draws.mean(("chain", "draw")),
    )
    # posterior means against lavaan's ML moments (tests/tolerances.py): K_MLE / sqrt(n) posterior SDs (the
    # posterior SD standing in for the SE), n = 2,500 rows within and 200 clusters between; z = 3.7 over
    # the 36 moments, about 0.3 SD within and 1 SD between. The total covariance in place of the pooled
    # within one (y1: 3.0 against 2.0) or a between covariance of the raw cluster means (the within part
    # divided by the cluster size added: +0.16 on y1~~y1@2, 1.4 tolerances) fails.
    check_close(
        moment_draws.mean(("chain", "draw")),
        references,
        mcse(moment_draws),
        mle_allowance(moment_draws.std(("chain", "draw")), np.asarray(units)),
        labels=labels,
    )
    np.testing.assert_allclose(result.cov[1].to_numpy(), result.cov[1].to_numpy().T)
