"""Information criteria, comparison, predictive draws, prior sensitivity and refits with other priors.

Without sampling: the pointwise log-likelihoods are exact (they add up to lavaan's / lme4's log-likelihood at
their estimates; leave-one-out conditionals equal brute-force normal densities), ``log_prior`` is PyMC's prior
log-density, and a refit with new prior arguments changes only prior data (same compiled-model key).
With sampling (a few small fits shared through module fixtures): leave-one-cluster-out LOO and ``compare``,
DIC, posterior predictive draws, prior sensitivity and refits that reuse the compiled model.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytest
import xarray as xr
from reference import (
    RANDOM_SLOPE,
    REFERENCE,
    REFERENCE_FITS,
    SEED,
    data,
    lavaan_estimates,
    lavaan_fitmeasure,
    random_slope_data,
)
from scipy.stats import multivariate_normal

import pymlsem
from pymlsem.build.latent import LatentModel
from pymlsem.build.loglik import two_level_cluster_loglik
from pymlsem.engine.run import engine_binding
from pymlsem.exceptions import ControlError, DataError, ModelSpecificationError, PriorError, PymlsemError
from pymlsem.formula import mixed_design
from pymlsem.mlm.fit import MixedFit
from pymlsem.mlm.loglik import gaussian_marginal_loglik
from pymlsem.mlm.model import build_mixed_model
from pymlsem.mlm.sampling import model_cache_key
from pymlsem.mlm.stats import gaussian_stats
from pymlsem.results.fit import SEMFit
from pymlsem.sample import SamplerSettings
from pymlsem.workflow.incomplete import missing_stats_of, missing_total_loglik
from pymlsem.workflow.loglik import implied_moments
from pymlsem.workflow.mixed_loglik import (
    gaussian_cluster_loglik,
    gaussian_observation_loglik,
    gaussian_total_loglik,
)
from pymlsem.workflow.pointwise import fixed_x_constant, sem_pointwise_loglik, sem_total_loglik
from pymlsem.workflow.ppp import ppp_from_rows
from pymlsem.workflow.protocol import Fitted
from pymlsem.workflow.refit import mixed_refit_spec, sem_refit_spec
from pymlsem.workflow.sensitivity import add_log_prior
from tests.mlm.test_mixed_loglik import CASES, lme4_estimates

# y1-y6 of Demo.twolevel: two correlated factors at each level fit (PPP about 0.6); one factor per level
# (the misspecified model of the issue; lavaan rejects one within factor) does not. The seed model cannot be
# compared with it by LOO: it models other variables (y1-y3 given x1-x3, w1-w2).
TWO_FACTORS = """
level: 1
    fw1 =~ y1 + y2 + y3
    fw2 =~ y4 + y5 + y6
level: 2
    fb1 =~ y1 + y2 + y3
    fb2 =~ y4 + y5 + y6
"""
ONE_FACTOR = """
level: 1
    fw =~ y1 + y2 + y3 + y4 + y5 + y6
level: 2
    fb =~ y1 + y2 + y3 + y4 + y5 + y6
"""
SMALL = {"draws": 400, "tune": 400, "chains": 2, "progressbar": False}
CONFLICT = {"fw=~y2@within": "normal(5,0.05)"}  # the data say about 0.7-1
LME4_DATA = REFERENCE / "data"


def _spec(name: str) -> pymlsem.SEM:
    model, dataset, cluster, _ = REFERENCE_FITS[name]
    return pymlsem.SEM(model, data(dataset), cluster=cluster)


def _lavaan_rows(spec: pymlsem.SEM, name: str) -> np.ndarray:
    return spec.rows_from_estimates(lavaan_estimates(REFERENCE_FITS[name][3]))[None]


def _unfitted(spec, posterior: xr.Dataset):
    """A fit object around a given posterior (no sampling), for the functions that read one."""
    tree = xr.DataTree.from_dict({"posterior": posterior})
    if isinstance(spec, pymlsem.SEM):
        return SEMFit(spec, tree, sampler="nutpie", chains=1, draws=1, tune=0, timings=None)
    return MixedFit(spec, tree, sampler="nutpie", chains=1, draws=1, tune=0)


# ------------------------------------------------------------------------------ SEM pointwise (exact)
@pytest.mark.parametrize("name", sorted(REFERENCE_FITS))
def test_pointwise_values_sum_to_lavaan_loglik(name: str) -> None:
    spec = _spec(name)
    rows = _lavaan_rows(spec, name)
    prefix = REFERENCE_FITS[name][3]
    estimates = lavaan_estimates(prefix)
    point = sem_pointwise_loglik(spec, rows)
    assert point.unit == ("cluster" if spec.cluster else "observation")
    assert point.factorizes
    assert point.values.shape == (1, spec.n_clusters if spec.cluster else spec.nobs)
    total = spec.log_likelihood(estimates, fixed_x=False)
    assert point.values.sum() == pytest.approx(total, rel=1e-12)
    assert sem_total_loglik(spec, rows)[0] == pytest.approx(total, rel=1e-12)
    lavaan_logl = lavaan_fitmeasure(prefix, "logl")
    assert point.values.sum() - fixed_x_constant(spec) == pytest.approx(lavaan_logl, rel=1e-10)


@pytest.mark.parametrize("name", ["seed", "m2"])
def test_cluster_values_equal_the_pytensor_per_cluster_density(name: str) -> None:
    spec = _spec(name)
    rows = _lavaan_rows(spec, name)
    moments = implied_moments(spec, rows)
    expected = two_level_cluster_loglik(
        moments.mean[1][0], moments.cov[1][0], moments.mean[2][0], moments.cov[2][0], spec.stats
    ).eval(mode="FAST_COMPILE")
    np.testing.assert_allclose(sem_pointwise_loglik(spec, rows).values[0], expected, rtol=1e-12)


def test_single_level_row_values_are_each_rows_normal_density_and_minus_inf_off_the_cone() -> None:
    """Per-row values (one row's statistics through the model's density) against scipy, per draw; a draw
    whose implied covariance is not positive definite gives -inf for every row and cluster."""
    spec = _spec("hs_cfa")
    rows = _lavaan_rows(spec, "hs_cfa")
    draws = np.vstack([rows, rows * 1.05, rows])
    variance = np.flatnonzero(
        (spec.partable.table["op"] == "~~") & (spec.partable.table["lhs"] == spec.partable.table["rhs"])
    )[0]
    draws[2, variance] = -50.0  # a negative residual variance: not positive definite
    values = sem_pointwise_loglik(spec, draws).values
    moments = implied_moments(spec, draws[:2])
    y = spec.data[list(spec.stats.variables)].to_numpy(dtype=float)
    for s in range(2):
        expected = multivariate_normal(moments.mean[1][s], moments.cov[1][s]).logpdf(y)
        np.testing.assert_allclose(values[s], expected, rtol=1e-10)
    assert np.all(values[2] == -np.inf)
    two_level = _spec("seed")
    bad = _lavaan_rows(two_level, "seed").copy()
    bad[0, np.flatnonzero(two_level.partable.table["op"] == "~~")[0]] = -50.0
    assert np.all(sem_pointwise_loglik(two_level, bad).values == -np.inf)


def _cluster_density(y: np.ndarray, mu, sigma_w, sigma_b, within, between_only) -> float:
    """Brute force: the stacked within-varying values of the rows and the between-only values once."""
    k = y.shape[0]
    cov = np.kron(np.eye(k), sigma_w[np.ix_(within, within)]) + np.kron(
        np.ones((k, k)), sigma_b[np.ix_(within, within)]
    )
    values, means = [y[:, within].reshape(-1)], [np.tile(mu[within], k)]
    if between_only:
        cross = np.tile(sigma_b[np.ix_(within, between_only)], (k, 1))
        cov = np.block([[cov, cross], [cross.T, sigma_b[np.ix_(between_only, between_only)]]])
        values.append(y[0, between_only])
        means.append(mu[between_only])
    return float(multivariate_normal(np.concatenate(means), cov).logpdf(np.concatenate(values)))


def test_two_level_observation_values_are_leave_one_out_conditionals() -> None:
    spec = _spec("seed")
    rows = _lavaan_rows(spec, "seed")
    point = sem_pointwise_loglik(spec, rows, "observation")
    assert point.unit == "observation" and not point.factorizes
    assert point.values.shape == (1, spec.nobs)
    moments = implied_moments(spec, rows)
    mu = (moments.mean[1] + moments.mean[2])[0]
    sigma_w, sigma_b = moments.cov[1][0], moments.cov[2][0]
    variables = list(spec.stats.variables)
    within = list(spec.stats.within_index)
    between_only = [variables.index(v) for v in spec.stats.between_only]
    assert between_only  # w1, w2: the conditioning includes the cluster's between-only values
    values = spec.data[variables].to_numpy()
    codes = pd.factorize(spec.data["cluster"], sort=True)[0]
    for cluster in (0, 7):
        members = np.flatnonzero(codes == cluster)
        y = values[members]
        whole = _cluster_density(y, mu, sigma_w, sigma_b, within, between_only)
        for i in (0, len(members) - 1):
            rest = _cluster_density(np.delete(y, i, axis=0), mu, sigma_w, sigma_b, within, between_only)
            assert point.values[0, members[i]] == pytest.approx(whole - rest, rel=1e-10)
    # the conditionals are not a factorisation of the joint density
    assert abs(point.values.sum() - spec.log_likelihood(lavaan_estimates("demo_twolevel"), fixed_x=False)) > 1


def test_pointwise_units_that_are_not_defined_raise() -> None:
    single = _spec("hs_cfa")
    rows = _lavaan_rows(single, "hs_cfa")
    with pytest.raises(ModelSpecificationError, match="unit='observation'"):
        sem_pointwise_loglik(single, rows, "cluster")
    with pytest.raises(PymlsemError, match="unknown unit"):
        sem_pointwise_loglik(single, rows, "row")
    model, dataset, _, prefix = REFERENCE_FITS["hs_cfa"]
    frame = data(dataset)[list(single.observed)]
    summary = pymlsem.SEM(model, sample_cov=frame.cov(), sample_mean=frame.mean(), sample_nobs=len(frame))
    with pytest.raises(DataError, match="raw data"):
        sem_pointwise_loglik(summary, rows)
    # the total (DIC) needs only the statistics
    total = sem_total_loglik(summary, summary.rows_from_estimates(lavaan_estimates(prefix))[None])[0]
    assert total - fixed_x_constant(summary) == pytest.approx(lavaan_fitmeasure(prefix, "logl"), rel=1e-10)


def _with_missing(frame: pd.DataFrame, seed: int = 3) -> pd.DataFrame:
    """y1..y3 missing in about 12% of the rows, and all three in a whole cluster's rows."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for name in ("y1", "y2", "y3"):
        out.loc[rng.random(len(out)) < 0.12, name] = np.nan
    out.loc[out.cluster == out.cluster.iloc[0], ["y1", "y2", "y3"]] = np.nan
    return out


@pytest.mark.parametrize("method", ["marginal", "latent"])
def test_missing_values_cluster_values_add_up_to_the_models_likelihood(method: str) -> None:
    """With missing values, the clusters' log-densities (full information) sum to the model's likelihood."""
    incomplete = _with_missing(data("Demo.twolevel"))
    spec = pymlsem.SEM(SEED, incomplete, cluster="cluster", method=method)
    estimates = lavaan_estimates("demo_twolevel")
    rows = spec.rows_from_estimates(estimates)[None]
    point = sem_pointwise_loglik(spec, rows)
    assert point.unit == "cluster" and point.factorizes
    assert point.values.shape == (1, spec.n_clusters) and np.isfinite(point.values).all()
    marginal = pymlsem.SEM(SEED, incomplete, cluster="cluster")  # the model's own full-information graph
    total = marginal.log_likelihood(estimates, fixed_x=False)
    assert point.values.sum() == pytest.approx(total, rel=1e-12)
    assert sem_total_loglik(spec, rows)[0] == pytest.approx(total, rel=1e-12)
    # a cluster's value is its own data's likelihood, and differs from the complete data's
    complete = sem_pointwise_loglik(_spec("seed"), rows).values[0]
    untouched = incomplete.groupby("cluster")[["y1", "y2", "y3"]].apply(lambda g: g.notna().all().all())
    same = untouched.to_numpy()
    np.testing.assert_allclose(point.values[0, same], complete[same], rtol=1e-10)
    assert (point.values[0, ~same] > complete[~same]).all()  # fewer values, higher density
    with pytest.raises(DataError, match="unit='cluster'"):
        sem_pointwise_loglik(spec, rows, "observation")


def test_missing_values_row_values_single_level() -> None:
    model, dataset, _, prefix = REFERENCE_FITS["hs_cfa"]
    frame = data(dataset)
    spec_complete = pymlsem.SEM(model, frame)
    incomplete = frame.copy()
    incomplete.loc[incomplete.index[::7], "x2"] = np.nan
    incomplete.loc[incomplete.index[::11], ["x4", "x7"]] = np.nan
    spec = pymlsem.SEM(model, incomplete)
    estimates = lavaan_estimates(prefix)
    rows = spec.rows_from_estimates(estimates)[None]
    point = sem_pointwise_loglik(spec, rows)
    assert point.values.sum() == pytest.approx(spec.log_likelihood(estimates, fixed_x=False), rel=1e-12)
    complete = sem_pointwise_loglik(spec_complete, rows).values[0]
    full = incomplete[list(spec.observed)].notna().all(axis=1).to_numpy()
    np.testing.assert_allclose(point.values[0, full], complete[full], rtol=1e-10)
    assert (point.values[0, ~full] > complete[~full]).all()


def test_missing_values_predictive_draws_dic_ppp_srmr_and_what_is_refused() -> None:
    incomplete = _with_missing(data("Demo.twolevel"))
    spec = pymlsem.SEM(SEED, incomplete, cluster="cluster")
    rows = spec.rows_from_estimates(lavaan_estimates("demo_twolevel"))
    free = np.zeros(spec.built.row_param.max() + 1)
    has = spec.built.row_param >= 0
    free[spec.built.row_param[has]] = rows[has]
    posterior = xr.Dataset({"parameters": (("chain", "draw", "parameter"), np.tile(free, (1, 3, 1)))})
    fit = _unfitted(spec, posterior)
    replicated = pymlsem.workflow.posterior_predictive(fit, n_draws=None, seed=1).posterior_predictive
    for name in ("y1", "y2", "y3", "x1", "w1"):
        missing = incomplete[name].isna().to_numpy()
        values = replicated[name].values
        assert np.isnan(values[..., missing]).all() and np.isfinite(values[..., ~missing]).all()
    assert np.isfinite(pymlsem.workflow.sem_dic(fit).dic)
    assert fit.ppp(n_draws=3).discrepancy == "deviance"
    # the SRMR against the saturated model of the incomplete data, as lavaan's
    # (tests/workflow/test_missing_marginal.py)
    table = fit.srmr()
    assert np.isfinite(table["mean"]).all() and set(table.index) >= {"srmr_within", "srmr_between"}
    with pytest.raises(DataError, match="method='latent'"):
        fit.latent_scores()


def test_missing_values_replicated_deviance_has_its_expectation() -> None:
    """At fixed parameters, replicated data with the data's missing values have a deviance whose mean is
    ``D(mu) + n_values`` (``D(mu)``: the deviance of data equal to their implied means, where the quadratic
    forms vanish; each replicate's quadratic form is chi-square with n_values degrees of freedom), within 4
    standard errors ``sqrt(2 n_values / R)``. Replicates without the missingness, from other moments, or a
    deviance of the wrong statistics miss by far more."""
    incomplete = data("Demo.twolevel")
    rng = np.random.default_rng(3)
    for name in ("y1", "y2", "y3", "y4"):
        incomplete.loc[rng.random(len(incomplete)) < 0.12, name] = np.nan
    spec = pymlsem.SEM(REFERENCE_FITS["m2"][0], incomplete, cluster="cluster")
    rows = spec.rows_from_estimates(lavaan_estimates("demo_twolevel_m2"))[None]
    replicates = 300
    result = ppp_from_rows(spec, np.repeat(rows, replicates, axis=0), seed=1)
    assert result.discrepancy == "deviance" and result.n_draws == replicates
    assert result.observed[0] == pytest.approx(
        -2 * spec.log_likelihood(lavaan_estimates("demo_twolevel_m2"), fixed_x=False)
    )
    moments = implied_moments(spec, rows)
    mu = moments.mean[1][0] + moments.mean[2][0]
    at_mean = incomplete.assign(
        **{v: np.where(incomplete[v].isna(), np.nan, mu[k]) for k, v in enumerate(spec.stats.variables)}
    )
    floor = -2 * missing_total_loglik(spec, rows, missing_stats_of(spec, at_mean))[0]
    n_values = float(spec.likelihood_stats.n_values)
    assert abs(result.replicated.mean() - (floor + n_values)) < 4 * np.sqrt(2 * n_values / replicates)


# ---------------------------------------------------------------------------- mixed pointwise (exact)
@pytest.mark.parametrize("name", list(CASES))
def test_mixed_cluster_values_sum_to_lme4_loglik(name: str) -> None:
    data_name, formula = CASES[name]
    design = mixed_design(formula, pd.read_csv(LME4_DATA / f"{data_name}.csv"))
    spec = build_mixed_model(design)
    beta, sigma, covs = lme4_estimates(name, design)
    values = gaussian_cluster_loglik(spec, beta[None], np.array([sigma]), [c[None] for c in covs])
    assert values.shape == (1, design.blocks[0].n_levels)
    expected = pd.read_csv(REFERENCE / "lme4" / f"{name}_loglik.csv")["logLik"].iloc[0]
    assert values.sum() == pytest.approx(expected, rel=1e-9)
    # cluster j's value is its own marginal normal density
    members = np.flatnonzero(design.blocks[0].codes == 0)
    cov = sigma**2 * np.eye(members.size)
    for block, g in zip(design.blocks, covs, strict=True):
        cov += block.z[members] @ g @ block.z[members].T
    mean = design.x[members] @ beta
    assert values[0, 0] == pytest.approx(multivariate_normal(mean, cov).logpdf(design.y[members]), rel=1e-10)


def _crossed() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 48
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "g": rng.choice([f"g{k}" for k in range(5)], size=n),
            "h": rng.choice([f"h{k}" for k in range(4)], size=n),
        }
    )


@pytest.mark.parametrize("formula", ["y ~ x + (1 + x | g)", "y ~ x + (1 + x | g) + (1 | h)"])
def test_mixed_observation_values_are_leave_one_out_conditionals(formula: str) -> None:
    design = mixed_design(formula, _crossed())
    spec = build_mixed_model(design)
    rng = np.random.default_rng(2)
    beta = rng.normal(size=(2, len(design.fixed_names)))
    sigma = np.array([0.7, 1.3])
    covs = []
    for block in design.blocks:
        a = rng.normal(size=(2, block.q, block.q))
        covs.append(a @ np.swapaxes(a, -1, -2) + 0.2 * np.eye(block.q))
    values = gaussian_observation_loglik(spec, beta, sigma, covs)
    assert values.shape == (2, design.nobs)
    for s in range(2):
        cov = sigma[s] ** 2 * np.eye(design.nobs)
        for block, g in zip(design.blocks, covs, strict=True):
            same = block.codes[:, None] == block.codes[None, :]
            cov += same * (block.z @ g[s] @ block.z.T)
        mean = design.x @ beta[s]
        full = multivariate_normal(mean, cov).logpdf(design.y)
        for i in (0, 17):
            keep = np.delete(np.arange(design.nobs), i)
            rest = multivariate_normal(mean[keep], cov[np.ix_(keep, keep)]).logpdf(design.y[keep])
            assert values[s, i] == pytest.approx(full - rest, rel=1e-9)
        expected = gaussian_marginal_loglik(gaussian_stats(design), beta[s], sigma[s], [c[s] for c in covs])
        total = gaussian_total_loglik(spec, beta[s : s + 1], sigma[s : s + 1], [c[s : s + 1] for c in covs])
        assert total[0] == pytest.approx(float(expected.eval(mode="FAST_COMPILE")), rel=1e-10)
    if len(design.blocks) > 1:
        with pytest.raises(ModelSpecificationError, match="several grouping factors"):
            gaussian_cluster_loglik(spec, beta, sigma, covs)


# --------------------------------------------------------------------------------------- log prior
def _point_posterior(model, shift: float = 0.1) -> tuple[dict, xr.Dataset]:
    """A point away from the initial point, as (value-variable point, posterior with one draw)."""
    point = {name: np.asarray(value) + shift for name, value in model.initial_point().items()}
    values = {}
    for rv in model.free_RVs:
        value_var = model.rvs_to_values[rv]
        transform = model.rvs_to_transforms.get(rv)
        raw = point[value_var.name]
        values[rv.name] = (
            raw if transform is None else transform.backward(raw, *rv.owner.inputs).eval(mode="FAST_COMPILE")
        )
    posterior = xr.Dataset(
        {
            name: (("chain", "draw", *[f"{name}_{k}" for k in range(np.ndim(v))]), np.asarray(v)[None, None])
            for name, v in values.items()
        }
    )
    return point, posterior


def _check_log_prior(spec, model) -> None:
    point, posterior = _point_posterior(model)
    fit = _unfitted(spec, posterior)
    add_log_prior(fit)
    log_prior = fit.idata["log_prior"]
    pieces = model.compile_logp(vars=model.free_RVs, jacobian=False, sum=False, mode="FAST_COMPILE")(point)
    for rv, expected in zip(model.free_RVs, pieces, strict=True):
        if rv.name.startswith("z__"):
            assert rv.name not in log_prior  # random effects' population distribution: not a prior
            continue
        np.testing.assert_allclose(np.asarray(log_prior[rv.name].values)[0, 0], expected, rtol=1e-10)


def test_log_prior_is_the_models_prior_log_density_sem() -> None:
    spec = _spec("seed")
    _check_log_prior(spec, spec.pymc_model)


def test_log_prior_is_the_models_prior_log_density_mixed() -> None:
    frame = pd.read_csv(LME4_DATA / "sleepstudy.csv")
    spec = pymlsem.mixed_model("Reaction ~ Days + (Days | Subject)", frame, method="latent")
    _check_log_prior(spec, spec.model)


def _ordinal_data() -> pd.DataFrame:
    rng = np.random.default_rng(8)
    frame = _crossed()
    frame["rating"] = np.clip(np.round(frame.x + rng.normal(size=len(frame)) + 1.5), 0, 3).astype(int)
    frame["count"] = rng.poisson(3.0, size=len(frame))
    return frame


@pytest.mark.parametrize(
    ("formula", "family"), [("rating ~ x + (1 | g)", "ordinal"), ("count ~ x + (1 + x | g)", "poisson")]
)
def test_glmm_observation_values_are_the_models_observed_log_density(formula: str, family: str) -> None:
    """Non-Gaussian models: log p(y_i | u, theta) at the draws, as PyMC's own logp of ``y``."""
    spec = pymlsem.mixed_model(formula, _ordinal_data(), family=family)
    model = spec.model
    point, posterior = _point_posterior(model)
    fit = _unfitted(spec, posterior)
    fit.log_likelihood()
    values = fit.idata["log_likelihood"]["loglik"]
    assert values.dims == ("chain", "draw", "observation")
    expected = model.compile_logp(vars=[model["y"]], sum=False, mode="FAST_COMPILE")(point)[0]
    np.testing.assert_allclose(values.values[0, 0], expected, rtol=1e-10)
    with pytest.raises(ModelSpecificationError, match="no closed form"):
        fit.log_likelihood("cluster")


# ------------------------------------------------------------------------------ refits (no sampling)
def test_sem_refit_changes_only_prior_data() -> None:
    spec = _spec("seed")
    new = sem_refit_spec(spec, {"fw=~y2@within": "normal(1,0.5)"})
    assert new.structure_key() == spec.structure_key()  # the compiled model is found in the cache
    before, after = spec.data_values(), new.data_values()
    assert before.keys() == after.keys()
    changed = sorted(k for k in before if not np.array_equal(before[k], after[k]))
    assert changed == ["loadings__mu", "loadings__sigma"]
    loading = list(new.pymc_model.coords["loading"]).index("fw=~y2@within")
    assert after["loadings__mu"][loading] == 1.0 and after["loadings__sigma"][loading] == 0.5
    others = np.arange(after["loadings__mu"].size) != loading
    np.testing.assert_array_equal(after["loadings__mu"][others], before["loadings__mu"][others])
    assert spec.data_values()["loadings__mu"][loading] == 0.0  # the original model is untouched


def test_sem_refit_with_another_family_says_when_it_recompiles() -> None:
    spec = _spec("seed")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the engine takes prior families as data: nothing to compile
        new = sem_refit_spec(spec, {"lambda": "student_t(3,0,1)"})
    assert engine_binding(new)[0] is not None
    assert new.structure_key() != spec.structure_key()  # the per-model graph's structure did change
    constrained = pymlsem.SEM(
        SEED.replace("fb ~ w1 + w2", "fb ~ a*w1 + b*w2\n a > b"), data("Demo.twolevel"), cluster="cluster"
    )
    with pytest.warns(UserWarning, match="compiled again"):  # no engine family has inequality constraints
        sem_refit_spec(constrained, {"lambda": "student_t(3,0,1)"})


def test_a_refit_of_a_signed_between_sd_changes_only_its_prior_data() -> None:
    """The latent builder's between SDs are signed, under ``laplace(0, 1/b)`` for ``gamma(1, b)[sd]``: a
    new rate is prior data (the Laplace scale an expression of it); a new shape leaves the signed form."""
    spec = pymlsem.SEM(SEED, data("Demo.twolevel"), cluster="cluster", method="latent")
    new = sem_refit_spec(spec, {"y2~~y2@between": "gamma(1,2)[sd]"})
    assert new.structure_key() == spec.structure_key()
    before, after = spec.data_values(), new.data_values()
    changed = sorted(k for k in before if not np.array_equal(before[k], after[k]))
    assert changed == ["residual_sds_signed__beta"]
    k = list(new.pymc_model.coords["residual_sd_signed"]).index("y2~~y2@between")
    value = np.full(len(new.pymc_model.coords["residual_sd_signed"]), -0.3)
    logp = pm.logp(new.pymc_model["residual_sds_signed"], value).eval()
    assert logp[k] == pytest.approx(np.log(2.0 / 2.0) - 2.0 * 0.3)  # laplace(0, 1/2) at -0.3
    reshaped = sem_refit_spec(spec, {"y2~~y2@between": "gamma(2,2)[sd]"})
    assert reshaped.structure_key() != spec.structure_key()
    assert not next(p for p in reshaped.built.free if p.name == "y2~~y2@between").signed
    assert engine_binding(reshaped)[0] is not None


def test_sem_refit_keeps_the_builder_and_the_statistics() -> None:
    """A refit of a latent-builder model (random slope) stays a latent-builder model, and one of a model
    with missing values keeps the full-information statistics; only the changed prior moves."""
    slope = pymlsem.SEM(RANDOM_SLOPE, random_slope_data(), cluster="cluster")
    new = sem_refit_spec(slope, {"beta": "normal(0,3)"})
    assert isinstance(new.built, LatentModel) and new.method == "latent"
    assert {p.name: str(p.prior) for p in new.built.free if p.pclass == "beta"} == {
        p.name: "normal(0,3)" for p in slope.built.free if p.pclass == "beta"
    }
    incomplete = pymlsem.SEM(SEED, _with_missing(data("Demo.twolevel")), cluster="cluster")
    refit = sem_refit_spec(incomplete, {"lambda": "normal(0,2)"})
    assert refit.likelihood_stats is incomplete.likelihood_stats
    point = incomplete.pymc_model.initial_point()
    logp = incomplete.pymc_model.compile_logp(vars=incomplete.pymc_model.potentials, mode="FAST_COMPILE")
    refit_logp = refit.pymc_model.compile_logp(vars=refit.pymc_model.potentials, mode="FAST_COMPILE")
    assert refit_logp(point) == pytest.approx(logp(point), rel=1e-12)  # the same likelihood


def test_sem_refit_refuses_a_prior_written_in_the_syntax() -> None:
    model = SEED.replace("fw =~ y1 + y2 + y3", 'fw =~ y1 + prior("normal(1,1)")*y2 + y3')
    spec = pymlsem.SEM(model, data("Demo.twolevel"), cluster="cluster")
    with pytest.raises(PriorError, match="model syntax"):
        sem_refit_spec(spec, {"fw=~y2@within": "normal(0,1)"})
    with pytest.raises(PriorError, match="non-empty dict"):
        sem_refit_spec(spec, {})


def test_sampler_settings_are_checked_in_one_place_and_carried_to_a_refit() -> None:
    settings = SamplerSettings(draws=200, options={"target_accept": 0.95})
    assert settings.keywords()["target_accept"] == 0.95 and settings.thin == 1
    changed = settings.replace(draws=50, options={"cores": 1})
    assert changed.draws == 50 and dict(changed.options) == {"target_accept": 0.95, "cores": 1}
    assert settings.draws == 200 and dict(settings.options) == {"target_accept": 0.95}  # frozen
    with pytest.raises(ControlError, match="draws must be a positive integer, not 0"):
        settings.replace(draws=0)
    with pytest.raises(ControlError, match="thin must be a positive integer"):
        SamplerSettings(thin=0)
    with pytest.raises(TypeError):
        settings.options["cores"] = 2  # read-only
    spec = _spec("seed")
    options = {"target_accept": 0.9}
    fit = SEMFit(spec, None, sampler="nutpie", chains=2, draws=30, tune=20, timings=None, options=options)
    assert fit.settings == SamplerSettings(draws=30, tune=20, chains=2, options={"target_accept": 0.9})


def test_mixed_refit_changes_only_prior_data() -> None:
    frame = pd.read_csv(LME4_DATA / "sleepstudy.csv")
    spec = pymlsem.mixed_model("Reaction ~ Days + (Days | Subject)", frame)
    new = mixed_refit_spec(spec, {"fixef": "normal(0,0.5)"})
    assert model_cache_key(new) == model_cache_key(spec)
    before = {v.name: v.get_value() for v in spec.model.data_vars}
    after = {v.name: v.get_value() for v in new.model.data_vars}
    assert before.keys() == after.keys()
    assert sorted(k for k in before if not np.array_equal(before[k], after[k])) == ["fixef_std__sigma"]
    assert float(after["fixef_std__sigma"]) == 0.5
    with warnings.catch_warnings():  # another prior family: the engine's, no compile, no warning
        warnings.filterwarnings("error", message=".*compiled again")
        other = mixed_refit_spec(spec, {"fixef": "student_t(3,0,1)"})
    assert engine_binding(other)[0].family == "mixed1_q2"  # its kernel serves every prior family
    # sampled random effects: the GLMM kernel's Gaussian response serves every prior family too
    latent = pymlsem.mixed_model("Reaction ~ Days + (Days | Subject)", frame, method="latent")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*compiled again")
        other = mixed_refit_spec(latent, {"fixef": "student_t(3,0,1)"})
    assert engine_binding(other)[0].family == "glmm_gaussian"
    # a model no engine family serves (a correlated block of five effects) compiles again, and says so
    rng = np.random.default_rng(1)
    wide = frame.assign(**{f"w{k}": rng.normal(size=len(frame)) for k in range(1, 4)})
    five = pymlsem.mixed_model("Reaction ~ Days + (Days + w1 + w2 + w3 | Subject)", wide)
    assert engine_binding(five)[0] is None
    with pytest.warns(UserWarning, match="compiled again"):
        other = mixed_refit_spec(five, {"fixef": "student_t(3,0,1)"})
    assert model_cache_key(other) != model_cache_key(five)
    with pytest.raises(PriorError, match="unknown priors"):
        mixed_refit_spec(spec, {"slopes": "normal(0,1)"})


def test_both_specs_share_one_life_cycle() -> None:
    """SEM and MixedModel: built spec -> pymc_model -> with_priors() (same structure key when only prior
    arguments change, another when a family changes) -> prior_predictive(); the originals untouched."""
    frame = pd.read_csv(LME4_DATA / "sleepstudy.csv")
    sem_spec = _spec("seed")
    mixed_spec = pymlsem.MixedModel("Reaction ~ Days + (Days | Subject)", frame)
    for spec, same, other in (
        (sem_spec, {"lambda": "normal(0,3)"}, {"lambda": "student_t(3,0,1)"}),
        (mixed_spec, {"fixef": "normal(0,0.5)"}, {"fixef": "student_t(3,0,1)"}),
    ):
        assert isinstance(spec.pymc_model, pm.Model)
        before = {v.name: np.copy(v.get_value()) for v in spec.pymc_model.data_vars}
        changed = spec.with_priors(same)
        assert type(changed) is type(spec) and changed.pymc_model is not spec.pymc_model
        assert changed.structure_key() == spec.structure_key()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (a family change may say that it compiles again)
            assert spec.with_priors(other).structure_key() != spec.structure_key()
        after = {v.name: v.get_value() for v in spec.pymc_model.data_vars}
        assert all(np.array_equal(before[name], after[name]) for name in before)
        tree = spec.prior_predictive(10, seed=1)
        assert {"prior", "prior_predictive", "observed_data"} <= set(tree.children)
        # frozen: a spec (and the mixed model it built) never changes under a fit or a cache that holds it
        with pytest.raises(dataclasses.FrozenInstanceError, match="does not change"):
            spec.priors = {}
        with pytest.raises(dataclasses.FrozenInstanceError):
            del spec.built
        assert changed.with_priors(same).structure_key() == spec.structure_key()
    with pytest.raises(dataclasses.FrozenInstanceError):
        mixed_spec.built.priors = {}
    assert mixed_spec.built.family == "gaussian" and mixed_spec.build_seconds > 0
    assert pymlsem.MixedModel.from_built(mixed_spec.built).built is mixed_spec.built
    with pytest.raises(dataclasses.FrozenInstanceError):
        pymlsem.MixedModel.from_built(mixed_spec.built).build_seconds = 1.0


# ------------------------------------------------------------------ comparison input and predictive
def test_compare_refuses_fits_of_different_data() -> None:
    demo = data("Demo.twolevel")
    seed = _unfitted(pymlsem.SEM(SEED, demo, cluster="cluster"), xr.Dataset())
    one = _unfitted(pymlsem.SEM(ONE_FACTOR, demo, cluster="cluster"), xr.Dataset())
    with pytest.raises(DataError, match="different variables"):
        pymlsem.compare({"seed": seed, "one_factor": one})
    other_rows = _unfitted(pymlsem.SEM(SEED, demo.iloc[:-5], cluster="cluster"), xr.Dataset())
    with pytest.raises(DataError, match="not the same rows"):
        pymlsem.compare({"seed": seed, "fewer": other_rows})
    with pytest.raises(PymlsemError, match="at least two"):
        pymlsem.compare({"seed": seed})


def test_sem_prior_predictive_replicates_the_data_layout() -> None:
    spec = pymlsem.SEM(SEED, data("Demo.twolevel"), cluster="cluster")
    tree = spec.prior_predictive(20, seed=4)
    replicated = tree["prior_predictive"]
    assert set(replicated.data_vars) == set(spec.observed)
    assert replicated["y1"].shape == (1, 20, spec.nobs)
    np.testing.assert_array_equal(replicated["cluster"].values, spec.data["cluster"].to_numpy())
    for covariate in ("x1", "w2"):  # exogenous: held at the observed values
        np.testing.assert_array_equal(replicated[covariate].values[0, 3], spec.data[covariate].to_numpy())
    assert np.isfinite(replicated["y2"].values).all()
    assert tree["prior"]["parameters"].shape == (1, 20, len(spec.built.free))
    assert "observed_data" in tree.children


def test_mixed_prior_predictive_draws_responses() -> None:
    frame = pd.read_csv(LME4_DATA / "sleepstudy.csv")
    spec = pymlsem.MixedModel("Reaction ~ Days + (Days | Subject)", frame)
    tree = spec.prior_predictive(30, seed=1)
    y = tree["prior_predictive"]["y"]
    assert y.shape == (1, 30, len(frame)) and np.isfinite(y.values).all()
    # the priors are autoscaled to the data: prior draws are on the response's scale, not wildly off
    assert abs(float(np.median(y.values)) - frame.Reaction.mean()) < 10 * frame.Reaction.std()


# ================================================================================= with sampling
@pytest.fixture(scope="module")
def seed_fit(demo):
    return pymlsem.sem(SEED, demo, cluster="cluster", random_seed=21, **SMALL)


@pytest.fixture(scope="module")
def conflict_fit(seed_fit):
    return seed_fit.refit(CONFLICT, random_seed=22)


@pytest.fixture(scope="module")
def y1_y6_fits(demo):
    return {
        "two_factors": pymlsem.sem(TWO_FACTORS, demo, cluster="cluster", random_seed=23, **SMALL),
        "one_factor": pymlsem.sem(ONE_FACTOR, demo, cluster="cluster", random_seed=24, **SMALL),
    }


@pytest.mark.sampling
def test_leave_one_cluster_out_loo(seed_fit) -> None:
    result = seed_fit.loo()
    group = seed_fit.idata["log_likelihood"]
    assert group["loglik"].dims == ("chain", "draw", "cluster")
    assert group["loglik"].shape == (2, 400, 200)
    assert result.n_data_points == 200
    assert np.isfinite(result.elpd) and result.se > 0
    assert result.pareto_k.shape == (200,)
    assert float(result.pareto_k.max()) < 0.7  # 200 clusters of 5-15 rows: no cluster dominates
    observation = seed_fit.loo("observation")  # each row given the rest of its cluster
    assert observation.n_data_points == seed_fit.model.nobs
    assert seed_fit.idata["log_likelihood"]["loglik"].attrs["unit"] == "observation"


@pytest.mark.sampling
def test_compare_ranks_the_two_factor_model_above_the_one_factor_model(y1_y6_fits) -> None:
    table = pymlsem.compare(y1_y6_fits)
    assert list(table.index) == ["two_factors", "one_factor"]
    # the columns compare()'s docstring lists
    assert list(table.columns) == [
        "rank", "elpd_diff", "dse", "p_worse", "diag_diff", "diag_elpd", "p", "elpd", "se", "weight"
    ]  # fmt: skip
    worse = table.loc["one_factor"]
    assert worse["elpd_diff"] < -4 * worse["dse"]  # clearly worse, not within the noise
    assert table.loc["two_factors", "weight"] > 0.9
    # WAIC estimates the same elpd as PSIS-LOO: with 200 clusters and no influential one they agree to
    # well within one unit (each p is ~20 against 2,500 rows), and rank the models the same way
    waics = {name: fit.waic() for name, fit in y1_y6_fits.items()}
    for name, result in waics.items():
        assert abs(result.elpd - table.loc[name, "elpd"]) < 1.0 and abs(result.p - table.loc[name, "p"]) < 1.0
    assert waics["two_factors"].elpd > waics["one_factor"].elpd


@pytest.mark.sampling
def test_dic_and_pd(seed_fit) -> None:
    result = seed_fit.dic()
    n_free = len(seed_fit.model.built.free)
    # with 2,500 rows pD is close to the number of free parameters
    assert abs(result.pd - n_free) < 4
    assert result.dic == pytest.approx(result.dbar + result.pd)
    # the plug-in deviance is at least the deviance at lavaan's ML estimates, and close to it
    ml_deviance = -2.0 * lavaan_fitmeasure("demo_twolevel", "logl")
    assert ml_deviance - 1e-6 <= result.dhat < ml_deviance + 2


@pytest.mark.sampling
def test_posterior_predictive_draws_have_the_datas_shape(seed_fit) -> None:
    tree = seed_fit.posterior_predictive(n_draws=100, seed=5)
    replicated, observed = tree["posterior_predictive"], tree["observed_data"]
    nobs = seed_fit.model.nobs
    for name in seed_fit.model.observed:
        assert replicated[name].shape == (2, 50, nobs)
        assert observed[name].shape == (nobs,)
    assert set(replicated["draw"].values) <= set(seed_fit.idata.posterior["draw"].values)
    np.testing.assert_array_equal(replicated["x2"].values[1, 7], observed["x2"].values)
    # between-only variables are constant within clusters; the replicates look like the data
    w = replicated["w1"].values[0, 0]
    assert pd.Series(w).groupby(observed["cluster"].values).nunique().max() == 1
    y = replicated["y3"].values
    assert abs(y.mean() - float(observed["y3"].mean())) < 0.15
    assert y.std(axis=-1).mean() == pytest.approx(float(observed["y3"].std()), rel=0.1)


@pytest.mark.sampling
def test_prior_sensitivity_does_not_flag_the_default_priors(seed_fit) -> None:
    table = seed_fit.prior_sensitivity()
    assert len(table) == len(seed_fit.model.built.free)
    assert not table["flagged"].any(), table
    assert (table["likelihood"] > table["prior"]).all()
    assert "log_prior" in seed_fit.idata.children
    assert seed_fit.prior_note() is None


@pytest.mark.sampling
def test_prior_sensitivity_flags_a_conflicting_prior(conflict_fit) -> None:
    assert "prior-data conflict" not in conflict_fit.summary()  # not checked yet: the summary does not run it
    table = conflict_fit.prior_sensitivity()
    row = table.loc["fw=~y2@within"]
    assert row["prior_distribution"] == "normal(5,0.05)"
    assert row["diagnosis"] == "potential prior-data conflict"
    assert row["prior"] == table["prior"].max()
    # once found, the summary says it
    assert "WARNING: prior_sensitivity() finds a potential prior-data conflict for fw=~y2@within" in (
        conflict_fit.summary()
    )


@pytest.mark.sampling
def test_refit_reuses_the_compiled_model_and_moves_the_changed_parameter(seed_fit, conflict_fit) -> None:
    assert conflict_fit.timings.reused_compiled
    assert conflict_fit.model.structure_key() == seed_fit.model.structure_key()
    assert engine_binding(seed_fit.model)[0] is not None  # sampled through the compiled engine family
    before = seed_fit.parameter_estimates().set_index(["lhs", "op", "rhs", "level"])
    after = conflict_fit.parameter_estimates().set_index(["lhs", "op", "rhs", "level"])
    key = ("fw", "=~", "y2", 1)
    assert after.loc[key, "prior"] == "normal(5,0.05)"
    assert after.loc[key, "mean"] - before.loc[key, "mean"] > 20 * before.loc[key, "sd"]


@pytest.mark.sampling
def test_prior_grid_tabulates_how_each_posterior_moves(seed_fit) -> None:
    grid = pymlsem.prior_grid(
        seed_fit, {"tight_y2": {"fw=~y2@within": "normal(0,0.01)"}}, random_seed=25, draws=300, tune=300
    )
    assert list(grid.setting.unique()) == ["base", "tight_y2"]
    assert len(grid) == 2 * len(seed_fit.model.built.free)
    changed = grid[grid.prior_changed]
    assert list(changed.parameter) == ["fw=~y2@within"]
    # pulled from about 0.9 towards 0: the base posterior N(m, s^2) (its prior is wide) times the N(0, tau^2)
    # prior gives about N(m tau^2 / (tau^2 + s^2), 1 / (1 / s^2 + 1 / tau^2)); within 4 posterior SDs of
    # that mean (300 draws a chain: Monte Carlo error and the normal approximation), and its SD within 25%
    base_row = grid[(grid.setting == "base") & (grid.parameter == "fw=~y2@within")].iloc[0]
    m, s, tau = base_row["mean"], base_row["sd"], 0.01
    expected_mean, expected_sd = m * tau**2 / (tau**2 + s**2), (1 / s**2 + 1 / tau**2) ** -0.5
    tight = changed.iloc[0]
    assert abs(tight["mean"] - expected_mean) < 4 * expected_sd
    assert tight["sd"] == pytest.approx(expected_sd, rel=0.25)
    assert tight["shift_sd"] == pytest.approx((tight["mean"] - m) / s)
    base = grid[grid.setting == "base"]
    np.testing.assert_allclose(base["shift"], 0.0)
    np.testing.assert_allclose(base["sd_ratio"], 1.0)


@pytest.mark.sampling
def test_single_level_model_loo_refit_and_summary_statistics() -> None:
    model, dataset, _, _ = REFERENCE_FITS["hs_cfa"]
    frame = data(dataset)
    tiny = {"draws": 300, "tune": 300, "chains": 2, "progressbar": False}
    fit = pymlsem.cfa(model, frame, random_seed=28, **tiny)
    assert fit.loo().n_data_points == len(frame)  # one value per row
    # no exogenous covariates: the (empty) exo_values data are not in the compiled model, yet it is reused
    refit = fit.refit({"lambda": "normal(1,0.5)"}, random_seed=29)
    assert refit.timings.reused_compiled
    names = list(fit.model.observed)
    summary = pymlsem.cfa(
        model,
        sample_cov=frame[names].cov(),
        sample_mean=frame[names].mean(),
        sample_nobs=len(frame),
        random_seed=30,
        **tiny,
    )
    assert summary.timings.reused_compiled  # same structure as the raw-data fit
    with pytest.raises(DataError, match="raw data"):
        summary.loo()
    assert not summary.prior_sensitivity().flagged.any()  # power-scales the total log-likelihood
    assert summary.dic().pd == pytest.approx(fit.dic().pd, abs=3)
    replicated = summary.posterior_predictive(20, seed=1)["posterior_predictive"]
    assert replicated["x1"].shape == (2, 10, len(frame))


@pytest.mark.sampling
@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto")
def test_mixed_model_loo_predictive_draws_and_refit() -> None:
    frame = pd.read_csv(LME4_DATA / "sleepstudy.csv")
    fit = pymlsem.mixed(
        "Reaction ~ Days + (Days | Subject)",
        frame,
        random_seed=26,
        draws=300,
        tune=300,
        chains=2,
        progressbar=False,
    )
    result = fit.loo()
    assert result.n_data_points == 18  # leave one subject out
    assert fit.idata["log_likelihood"]["loglik"].dims == ("chain", "draw", "cluster")
    tree = fit.posterior_predictive(n_draws=60, seed=1)
    assert tree["posterior_predictive"]["y"].shape == (2, 30, len(frame))
    new = fit.posterior_predictive(n_draws=60, seed=1, random_effects="new")["posterior_predictive"]["y"]
    assert np.isfinite(new.values).all()
    refit = fit.refit({"fixef": "normal(0,0.01)"}, random_seed=27)
    # served by the same compiled engine family: nothing compiled again
    assert engine_binding(refit.spec)[0].family == engine_binding(fit.spec)[0].family == "mixed1_q2"
    assert refit.timings.reused_compiled and refit.timings.sampling > 0
    slope = fit.fixef().loc["Days", "mean"]
    assert abs(refit.fixef().loc["Days", "mean"]) < 0.1 * slope  # shrunk towards 0 by the tight prior


@pytest.mark.sampling
def test_mixed_model_spec_fits_as_mixed_does_and_both_fits_follow_the_protocol(seed_fit) -> None:
    """pymlsem.MixedModel(...).fit(...) is pymlsem.mixed(...): the same draws for the same seed; both
    kinds of fit have every member the workflow tools ask for (workflow/protocol.py)."""
    frame = pd.read_csv(LME4_DATA / "sleepstudy.csv")
    settings = {"random_seed": 5, "draws": 100, "tune": 100, "chains": 2, "progressbar": False}
    spec = pymlsem.MixedModel("Reaction ~ Days + (1 | Subject)", frame)
    fit = spec.fit(**settings, target_accept=0.9)
    direct = pymlsem.mixed("Reaction ~ Days + (1 | Subject)", frame, **settings, target_accept=0.9)
    np.testing.assert_array_equal(fit.idata.posterior["fixef"].values, direct.idata.posterior["fixef"].values)
    assert fit.spec is spec.built and fit.timings.build == spec.build_seconds
    assert fit.settings == SamplerSettings(draws=100, tune=100, chains=2, options={"target_accept": 0.9})
    for each in (fit, seed_fit):
        assert isinstance(each, Fitted)
        assert each.parameter_draws().dims == ("chain", "draw", "parameter")
        draws, lookup, default = each.parameter_columns()
        assert draws.sizes["parameter"] == each.parameter_draws().sizes["parameter"]
        assert set(default) <= set(range(draws.sizes["parameter"])) and default
        assert all(max(positions, default=0) < draws.sizes["parameter"] for positions in lookup.values())
    assert fit.default_unit() == "cluster" and seed_fit.default_unit() == "cluster"
    assert fit.parameter_priors() == {} and seed_fit.parameter_priors()["fw=~y2@within"].startswith("normal(")


def test_log_prior_function_is_compiled_once(monkeypatch) -> None:
    """add_log_prior evaluates one compiled function for all draws, not one per draw."""
    spec = _spec("hs_cfa")
    _, posterior = _point_posterior(spec.pymc_model)
    many = xr.concat([posterior] * 5, dim="draw")
    calls = []
    original = pytensor.function

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(pytensor, "function", counting)
    fit = _unfitted(spec, many)
    add_log_prior(fit)
    assert len(calls) == 1
    assert fit.idata["log_prior"]["loadings"].shape == (1, 5, 6)


@pytest.mark.sampling
def test_loo_outliers_finds_the_outlying_cluster() -> None:
    """40 clusters of 15 from a random-intercept model, one cluster moved 8 between-SDs away: leaving it
    out moves the posterior most (largest Pareto k, lowest ELPD of all clusters), as chapter 12's
    outlier tables show."""
    rng = np.random.default_rng(4)
    groups, size = 40, 15
    g = np.repeat(np.arange(groups), size)
    effects = rng.normal(0.0, 1.0, groups)
    effects[7] = 8.0
    data = pd.DataFrame({"y": effects[g] + rng.normal(0.0, 1.0, groups * size), "g": g.astype(str)})
    fit = pymlsem.mixed("y ~ 1 + (1 | g)", data, random_seed=2, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the Pareto k warning is the point here
        table = fit.loo_outliers()
    assert table.index.name == "cluster" and len(table) == groups
    assert table.index[0] == "7" and table["elpd_loo"].idxmin() == "7"
    assert list(table.columns) == ["elpd_loo", "pareto_k", "influential"]
