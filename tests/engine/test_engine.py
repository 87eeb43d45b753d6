"""The compiled engine families against each model's own PyMC graph (no sampling).

For every model of the corpus, the family's machine code (the C callbacks nutpie calls) gives the same
log-density and gradient as the per-model PyMC graph at random points, to 1e-8 relative, and its expanded
values give the per-model deterministics (``parameters``, ``defined``). The corpus covers every family
(single and two levels, complete and incomplete data) and every prior family. Models the families cannot
express as data are refused with a reason. The ``_anyprior`` variants the suite does not compile
(tests/engine/compiled_families.py says why) are checked through their graph, evaluated by PyTensor.
"""

from __future__ import annotations

import ctypes
import functools
import zlib

import numpy as np
import pandas as pd
import pytensor
import pytest
from graphs import dlogp_function, python_thunks
from reference import BOOK_MODELS, HS, M2, MEDIATION, POLDEM, RANDOM_SLOPE, SEED, data, random_slope_data

import pymlsem
from pymlsem.datasets.designs import two_level_irt, two_level_ordinal_cfa
from pymlsem.engine.compiled import family_inputs, load_family
from pymlsem.engine.families import MODULES
from pymlsem.engine.glmm import FAMILIES as GLMM_FAMILIES
from pymlsem.engine.latent import FAMILIES as LATENT_FAMILIES
from pymlsem.engine.mixed import FAMILIES as MIXED_FAMILIES
from pymlsem.engine.run import engine_binding, nutpie_model, per_model_posterior
from pymlsem.engine.sem import FAMILIES
from pymlsem.engine.starts import initial_point_function
from pymlsem.priors import FAMILIES as PRIOR_FAMILIES
from pymlsem.simulate import simulate
from tests.engine.compiled_families import COMPILED

HS_NAMES = [f"x{i}" for i in range(1, 10)]
SIX = "level: 1\n fw =~ y1+y2+y3+y4+y5+y6\nlevel: 2\n fb =~ y1+y2+y3+y4+y5+y6"
SEED_PRIORS = {
    "lambda": "normal(1,2)",
    "fw~x1@within": "student_t(3,0,2)",
    "fb~w1@between": "cauchy(0,2)",
    "fw~x2@within": "uniform(-5,5)",
    "theta": "gamma(2,1)[var]",
    "fw~~fw@within": "lognormal(0,1)[prec]",
    "fb~~fb@between": "halfnormal(2)",
    "y1~1@between": "normal(0,5)",
}

#: small simulated data sets with ordered indicators (two-level ordinal CFA; binary items of a 2PL model)
ORDINAL = two_level_ordinal_cfa(n_clusters=30, cluster_size=8, seed=1)
IRT = two_level_irt(n_items=6, n_clusters=20, seed=2)
IRT_ITEMS = list(IRT.ordered)

#: name -> (model, data name or simulated design, cluster, keyword arguments of SEM)
CORPUS = {
    "seed": (SEED, "Demo.twolevel", "cluster", {}),
    "seed_residual_covariance": (SEED + "\n    y1 ~~ y2", None, "cluster", {}),
    "m2": (M2, "Demo.twolevel", "cluster", {}),
    "six_indicators": (SIX, "Demo.twolevel", "cluster", {}),
    "seed_priors": (SEED, "Demo.twolevel", "cluster", {"priors": SEED_PRIORS}),
    "equal_across_levels": (
        "level: 1\n fw =~ y1 + a*y2 + b*y3\n fw ~ x1\nlevel: 2\n fb =~ y1 + a*y2 + b*y3\n fb ~ w1",
        "Demo.twolevel",
        "cluster",
        {},
    ),
    "latent_centering": ("level: 1\n y1 ~ x1\nlevel: 2\n y1 ~ x1", "Demo.twolevel", "cluster", {}),
    "within_and_between_covariates": (
        "level: 1\n y1 ~ x1 + x2\nlevel: 2\n y1 ~ w1 + w2",
        "Demo.twolevel",
        "cluster",
        {},
    ),
    "between_covariances": (
        "level: 1\n fw =~ y1 + y2 + y3\nlevel: 2\n y1 ~~ y2\n y2 ~~ y3\n y1 ~~ y3",
        "Demo.twolevel",
        "cluster",
        {},
    ),
    "two_level_defined": (
        "level: 1\n fw =~ y1 + y2 + y3\n fw ~ a*x1\nlevel: 2\n fb =~ y1 + y2 + y3\n fb ~ b*w1\n"
        " ratio := a/b\n both := exp(a) + b",
        "Demo.twolevel",
        "cluster",
        {},
    ),
    "two_level_path": (
        "level: 1\n y2 ~ y1 + x1\n y3 ~ y2 + x2\nlevel: 2\n y2 ~ y1 + w1\n y3 ~ y2",
        "Demo.twolevel",
        "cluster",
        {},
    ),
    "book_10_3": (*BOOK_MODELS["10.3"][:1], "book_10_3", "cluster", {}),
    "book_10_4": (*BOOK_MODELS["10.4"][:1], "book_10_4", "cluster", {}),
    "book_10_5": (*BOOK_MODELS["10.5"][:1], "book_10_5", "cluster", {}),
    "book_10_6_growth": (*BOOK_MODELS["10.6"][:1], "book_10_6", "cluster", {"model_type": "growth"}),
    "hs_cfa": (HS, "HolzingerSwineford1939", None, {"model_type": "cfa"}),
    "hs_sem_orthogonal": (HS + "; visual ~~ 0*speed", "HolzingerSwineford1939", None, {}),
    "hs_std_lv": (
        "visual =~ NA*x1 + x2 + x3; textual =~ NA*x4 + x5 + x6; visual ~~ 1*visual; textual ~~ 1*textual",
        "HolzingerSwineford1939",
        None,
        {"model_type": "cfa"},
    ),
    "hs_tied_labels": (
        "visual =~ x1 + a*x2 + x3; textual =~ x4 + b*x5 + x6; a == b",
        "HolzingerSwineford1939",
        None,
        {"model_type": "cfa"},
    ),
    "hs_summary_statistics": (HS, "hs_summary", None, {"model_type": "cfa"}),
    "hs_covariance_only": (HS, "hs_covariance", None, {"model_type": "cfa"}),
    "poldem": (POLDEM, "PoliticalDemocracy", None, {}),
    "poldem_variance_priors": (
        POLDEM,
        "PoliticalDemocracy",
        None,
        {"priors": {"theta": "inv_gamma(2,1)[var]", "psi": "exponential(1)[sd]", "rho": "beta(2,2)"}},
    ),
    "mediation_defined": (MEDIATION, "PoliticalDemocracy", None, {}),
    "regression_fixed_x": ("y1 ~ x1 + x2 + x3", "Demo.twolevel", None, {}),
    "growth_single_level": (
        "i =~ 1*y1 + 1*y2 + 1*y3\n s =~ 0*y1 + 1*y2 + 2*y3",
        "Demo.twolevel",
        None,
        {"model_type": "growth"},
    ),
    "nonrecursive": ("y1 ~ y2 + x1\n y2 ~ y1 + x2", "Demo.twolevel", None, {}),
    "seed_missing_values": (SEED, "demo_missing", "cluster", {}),
    "two_level_missing_values": (
        "level: 1\n fw =~ y1 + y2 + y3 + y5\n fw ~ x1\n y1 ~~ y2\n"
        "level: 2\n fb =~ y1 + y2 + y3 + y5\n fb ~ w1",
        "demo_missing",
        "cluster",
        {},
    ),
    "hs_missing_values": (HS, "hs_missing", None, {"model_type": "cfa"}),
    "hs_missing_student_t": (
        HS,
        "hs_missing",
        None,
        {"model_type": "cfa", "priors": {"lambda": "student_t(3,0,5)"}},
    ),
    "seed_missing_cauchy": (SEED, "demo_missing", "cluster", {"priors": {"fb~w1@between": "cauchy(0,2)"}}),
    "poldem_missing_values": (POLDEM, "poldem_missing", None, {}),
    "halft_halfcauchy_priors": (
        "visual =~ x1 + x2 + x3; speed =~ x7 + x8 + x9",
        "HolzingerSwineford1939",
        None,
        {"model_type": "cfa", "priors": {"theta": "halft(3,2)[sd]", "psi": "halfcauchy(1)[sd]"}},
    ),
    # the latent builder (method="latent"): explicit latent variables of every unit
    "latent_random_slope": (RANDOM_SLOPE, "random_slope", "cluster", {}),
    "latent_random_slope_missing": (RANDOM_SLOPE, "random_slope_missing", "cluster", {}),
    "latent_random_slope_priors": (
        RANDOM_SLOPE,
        "random_slope",
        "cluster",
        {"priors": {"s~w@between": "cauchy(0,2)", "theta": "gamma(2,1)[var]", "rho": "beta(2,2)"}},
    ),
    "latent_seed": (SEED, "Demo.twolevel", "cluster", {"method": "latent"}),
    "latent_seed_residual_covariance": (SEED + "\n    y1 ~~ y2", None, "cluster", {"method": "latent"}),
    "latent_seed_signed_sd_priors": (  # the between SDs signed under the extensions of these priors
        SEED,
        "Demo.twolevel",
        "cluster",
        {"method": "latent", "priors": {"theta": "halft(3,2)[sd]", "psi": "exponential(1)[sd]"}},
    ),
    "latent_centering_explicit": (
        "level: 1\n y1 ~ x1\nlevel: 2\n y1 ~ x1",
        "Demo.twolevel",
        "cluster",
        {"method": "latent"},
    ),
    "latent_two_level_path": (
        "level: 1\n y1 ~ x2\n y2 ~ y1 + x1\n y3 ~ y2 + x2\nlevel: 2\n y2 ~ y1 + w1\n y3 ~ y2",
        "Demo.twolevel",
        "cluster",
        {"method": "latent"},
    ),
    "latent_hs_cfa": (HS, "HolzingerSwineford1939", None, {"model_type": "cfa", "method": "latent"}),
    "latent_hs_priors": (
        HS,
        "HolzingerSwineford1939",
        None,
        {
            "model_type": "cfa",
            "method": "latent",
            "priors": {"lambda": "student_t(3,0,5)", "psi": "halfnormal(2)[sd]"},
        },
    ),
    "latent_hs_missing_values": (HS, "hs_missing", None, {"model_type": "cfa", "method": "latent"}),
    "latent_mediation_defined": (MEDIATION, "PoliticalDemocracy", None, {"method": "latent"}),
    "latent_ordinal_two_level": (ORDINAL.model, "ordinal_cfa", "cluster", {"ordered": list(ORDINAL.ordered)}),
    "latent_ordinal_two_level_logit_priors": (
        ORDINAL.model,
        "ordinal_cfa",
        "cluster",
        {"ordered": list(ORDINAL.ordered), "link": "logit", "priors": {"lambda": "student_t(3,0,2)"}},
    ),
    "latent_irt_two_level_logit": (IRT.model, "irt", "cluster", {"ordered": IRT_ITEMS, "link": "logit"}),
    "latent_binary_missing_values": (
        "f =~ " + " + ".join(IRT_ITEMS),
        "irt_missing",
        None,
        {"ordered": IRT_ITEMS, "link": "logit", "priors": {"tau": "student_t(3,0,2)"}},
    ),
    "latent_binary_logit": (
        "f =~ " + " + ".join(IRT_ITEMS),
        "irt",
        None,
        {"ordered": IRT_ITEMS, "link": "logit"},
    ),
    "latent_between_outcome": (
        "level: 1\n fw =~ y1 + y2 + y3\n fw ~ x1\nlevel: 2\n fb =~ y1 + y2 + y3\n w1 ~ fb + w2",
        "Demo.twolevel",
        "cluster",
        {"method": "latent"},
    ),
}


#: data sets with missing values: source, columns, every how many rows a value is missing
_MISSING = {
    "demo_missing": ("Demo.twolevel", ["y1", "y2", "y3", "y5"], 9),
    "hs_missing": ("HolzingerSwineford1939", ["x2", "x5", "x9"], 7),
    "poldem_missing": ("PoliticalDemocracy", ["y1", "y6", "x2"], 6),
}


def _frame(name: str, model: str, model_type: str):
    if name == "ordinal_cfa":
        return ORDINAL.data
    if name.startswith("irt"):
        frame = IRT.data.copy()
        if name.endswith("_missing"):
            frame.loc[frame.index[::7], "y1"] = np.nan
        return frame
    if name.startswith("random_slope"):
        frame = random_slope_data()
        if name.endswith("_missing"):
            frame.loc[frame.index[::9], "y"] = np.nan
        return frame
    if name.startswith("book_"):
        return simulate(model, {}, n_clusters=60, cluster_size=8, model_type=model_type, seed=11)
    if name in _MISSING:
        source, columns, every = _MISSING[name]
        frame = data(source).copy()
        for offset, column in enumerate(columns):
            frame.loc[frame.index[offset::every], column] = np.nan
        return frame
    return data(name)


def corpus_spec(name: str) -> pymlsem.SEM:
    model, source, cluster, kwargs = CORPUS[name]
    kwargs = dict(kwargs)
    if source == "hs_summary" or source == "hs_covariance":
        frame = data("HolzingerSwineford1939")[HS_NAMES]
        kwargs.update(sample_cov=frame.cov(), sample_nobs=len(frame))
        if source == "hs_summary":
            kwargs["sample_mean"] = frame.mean()
        return pymlsem.SEM(model, None, **kwargs)
    if source is None:
        source = "Demo.twolevel"
    frame = _frame(source, model, kwargs.get("model_type", "sem"))
    return pymlsem.SEM(model, frame, cluster, **kwargs)


def engine_at(family, user_data, n_expanded: int, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The family's C callbacks at ``x`` with a model's ``user_data`` (:func:`family_user_data`):
    log-density, gradient and the ``n_expanded`` expanded values (through ctypes)."""
    doubles = ctypes.POINTER(ctypes.c_double)
    x = np.ascontiguousarray(x, dtype=float)
    grad, logp = np.empty_like(x), np.empty(())
    expanded = np.empty(n_expanded)
    user = user_data.ctypes.data
    code = family.logp.ctypes(
        x.size, x.ctypes.data_as(doubles), grad.ctypes.data_as(doubles), logp.ctypes.data_as(doubles), user
    )
    assert code == 0 or (code == 4 and not np.isfinite(logp))  # 4: a log-density of -inf, for nutpie
    code = family.expand.ctypes(
        x.size, expanded.size, x.ctypes.data_as(doubles), expanded.ctypes.data_as(doubles), user
    )
    assert code == 0
    return float(logp), grad, expanded


@functools.cache
def graph_function(family: str):
    """A family's graph (log-density, gradient, expanded values) evaluated by PyTensor, not compiled."""
    x, inputs, logp, expanded = MODULES[family].family_graph(family)
    outputs = [logp, pytensor.grad(logp, x), expanded]
    with python_thunks():
        return pytensor.function([x, *inputs], outputs, on_unused_input="ignore")


def graph_at(binding, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The family's graph at ``x``, with the model's arrays as its inputs (the callbacks' arithmetic)."""
    arrays = [np.asarray(binding.data[name], dtype=dtype) for name, dtype, _ in family_inputs(binding.family)]
    logp, grad, expanded = graph_function(binding.family)(np.asarray(x, dtype=float), *arrays)
    return float(logp), np.asarray(grad), np.asarray(expanded)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_engine_equals_the_models_own_graph(name: str) -> None:
    spec = corpus_spec(name)
    model = spec.pymc_model
    names = ["parameters", *(n for n in ("defined", "between", "within", "latent") if n in model.named_vars)]
    deterministics = _point_function(model, [model[n] for n in names])
    constrained = _point_function(model, model.free_RVs)
    for point, rebuilt in _engine_points(spec, model, name):
        for deterministic, values in zip(names, deterministics(point), strict=True):
            rebuilt_values = rebuilt[deterministic].values[0, 0]
            np.testing.assert_allclose(rebuilt_values, values, rtol=1e-10, atol=1e-12)
        for rv, rv_values in zip(model.free_RVs, constrained(point), strict=True):
            np.testing.assert_allclose(rebuilt[rv.name].values[0, 0], rv_values, rtol=1e-10)


def _engine_points(spec, model, name: str, n_points: int = 3):
    """At random points near the initial point: the engine's log-density and gradient equal the model's
    own (asserted); yields each point and the per-model posterior rebuilt from the expanded values."""
    binding, why = engine_binding(spec)
    assert binding is not None, why
    if binding.family in COMPILED:
        family = load_family(binding.family)
        compiled = nutpie_model(binding, family, model)
        engine = functools.partial(engine_at, family, compiled.user_data, compiled.n_expanded)
    else:
        engine = functools.partial(graph_at, binding)
    with python_thunks():
        logp = model.compile_logp()
        start = model.initial_point()
    dlogp = dlogp_function(model)
    names = [v.name for v in model.value_vars]
    sizes = [start[n].size for n in names]
    # the same points in every process (Python's hash of a string changes between processes): the own
    # graph's probit Bernoulli, p = Phi(eta), loses digits of log(1 - p) far in the tails, where the kernel
    # does not, and points drawn anew in each run reached such a place now and then (7e-7 relative)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for _ in range(n_points):
        x = np.concatenate([start[n].ravel() for n in names]) + rng.normal(0.0, 0.4, sum(sizes))
        parts = np.split(x, np.cumsum(sizes)[:-1])
        point = {n: v.reshape(start[n].shape) for n, v in zip(names, parts, strict=True)}
        value, grad, expanded = engine(x)
        assert value == pytest.approx(float(logp(point)), rel=1e-8)
        expected_grad = dlogp(point)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-8, atol=1e-8 * np.abs(expected_grad).max())
        yield point, per_model_posterior(binding, spec, _as_posterior(expanded, binding))


def _point_function(model, outputs):
    """``outputs`` (in terms of the model's random variables) as a function of a point of value variables."""
    replaced = model.replace_rvs_by_values(outputs)
    with python_thunks():
        return model.compile_fn(replaced, inputs=model.value_vars, on_unused_input="ignore")


def _as_posterior(expanded: np.ndarray, binding):
    import xarray as xr

    k = binding.n_dim
    return xr.Dataset(
        {
            "engine_values": (("chain", "draw", "v"), expanded[None, None, :k]),
            "engine_derived": (("chain", "draw", "r"), expanded[None, None, k:]),
        },
        coords={"chain": [0], "draw": [0]},
    )


def test_the_corpus_covers_every_engine_family_and_every_prior_family() -> None:
    families, priors = set(), set()
    for name in CORPUS:
        spec = corpus_spec(name)
        binding, _ = engine_binding(spec)
        families.add(binding.family)
        priors |= {p.prior.family for p in spec.built.free}
    assert families == set(FAMILIES) | set(LATENT_FAMILIES)
    assert priors == set(PRIOR_FAMILIES)


@pytest.mark.parametrize(
    ("model", "kwargs", "reason"),
    [
        ("visual =~ x1 + a*x2 + x3; textual =~ x4 + b*x5 + x6; a == 2*b", {}, "constraints"),
        ("visual =~ x1 + a*x2 + x3; textual =~ x4 + b*x5 + x6; a < b", {}, "constraints"),
        (HS, {"method": "latent", "centered": True}, "centered"),
    ],
)
def test_models_the_families_cannot_express_say_why(model: str, kwargs: dict, reason: str) -> None:
    spec = pymlsem.SEM(model, data("HolzingerSwineford1939"), model_type="cfa", **kwargs)
    binding, why = engine_binding(spec)
    assert binding is None
    assert reason in why


#: Gaussian mixed models of the ``mixed`` families: name -> (formula, data name, keyword arguments)
MIXED_CORPUS = {
    "sleepstudy_correlated_slope": ("Reaction ~ Days + (Days | Subject)", "sleepstudy", {}),
    "sleepstudy_intercept_only": ("Reaction ~ Days + (1 | Subject)", "sleepstudy", {}),
    "sleepstudy_uncorrelated": ("Reaction ~ Days + (Days || Subject)", "sleepstudy", {}),
    "sleepstudy_two_blocks": ("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", "sleepstudy", {}),
    "sleepstudy_no_fixed_effects": ("Reaction ~ 0 + (1 | Subject)", "sleepstudy", {}),
    "sleepstudy_term_priors": (
        "Reaction ~ Days + (Days | Subject)",
        "sleepstudy",
        {
            "priors": {
                "fixef:Days": "student_t(3,10,5)",
                "sd:Subject": "halfcauchy(20)",
                "sigma": "exponential(1)",
                "lkj_eta": 4.0,
            }
        },
    ),
    "reading_correlated_slope": ("geread ~ gevocab + (1 + gevocab | school)", "reading_public", {}),
    "simulated_four_correlated_effects": ("y ~ x1 + x2 + (1 + x1 + x2 + x3 | g)", "simulated", {}),
    "simulated_three_and_one": ("y ~ x1 + x2 + x3 + (1 + x1 + x2 | g) + (0 + x3 | g)", "simulated", {}),
    "simulated_two_and_one": ("y ~ x1 + x2 + (1 + x1 | g) + (0 + x2 | g)", "simulated", {}),
    "nested_intercepts": ("y ~ x1 + (1 | school/class)", "simulated", {}),
    "nested_slope_above": ("y ~ x1 + (1 + x1 | school) + (1 | class)", "simulated", {}),
    "nested_slopes_both": ("y ~ x1 + x2 + (x1 || class) + (1 + x2 | school)", "simulated", {}),
    "nested_three_correlated": ("y ~ x1 + x2 + (1 + x1 + x2 | school) + (1 | class)", "simulated", {}),
    "nested_priors": (
        "y ~ x1 + (1 | school/class)",
        "simulated",
        {"priors": {"sd": "gamma(2,2)", "fixef": "student_t(4,0,2)"}},
    ),
    "crossed_intercepts": ("y ~ x1 + (1 | g) + (1 | school)", "simulated", {}),
    "crossed_slope_and_intercept": (
        "y ~ x1 + x2 + (1 + x1 | g) + (1 | school) + (0 + x2 | school)",
        "simulated",
        {},
    ),
    "crossed_three_correlated": ("y ~ x1 + x2 + (1 + x1 + x2 | g) + (1 | school)", "simulated", {}),
    "crossed_priors": ("y ~ x1 + (x1 || g) + (1 | class)", "simulated", {"priors": {"sd": "exponential(1)"}}),
    "glmm_cbpp_logit": (
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "cbpp",
        {"family": "binomial"},
    ),
    "glmm_cbpp_probit": (
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "cbpp",
        {"family": "binomial", "link": "probit"},
    ),
    "glmm_bernoulli_correlated_slope": ("yb ~ x1 + (1 + x1 | g)", "simulated", {"family": "bernoulli"}),
    "glmm_bernoulli_three_correlated": (
        "yb ~ x1 + x2 + (1 + x1 + x2 | g)",
        "simulated",
        {"family": "bernoulli"},
    ),
    "glmm_bernoulli_probit_nested": (
        "yb ~ x2 + (1 | school/class)",
        "simulated",
        {"family": "bernoulli", "link": "probit"},
    ),
    "glmm_cbpp_term_prior": (
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "cbpp",
        {"family": "binomial", "priors": {"fixef:period": "student_t(3,0,1)"}},
    ),
    # MCMCglmm's parameter-expanded prior on a variance: a half-t SD, the per-block SD prior (here
    # MCMCglmm's half-Cauchy with scale 1; the book's alpha.V = 1000 starts the SD at 31.6 on the logit
    # scale, where the per-model graph's binomial density loses precision: tests/mlm/test_mcmcglmm_prior.py
    # samples that one)
    "glmm_cbpp_expanded_prior": (
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "cbpp",
        {"family": "binomial", "prior": {"G": {"G1": {"V": 1, "nu": 1, "alpha.mu": 0, "alpha.V": 1}}}},
    ),
    "sleepstudy_expanded_prior": (
        "Reaction ~ Days + (1 | Subject)",
        "sleepstudy",
        {"prior": {"G": {"G1": {"V": 2.0, "nu": 1, "alpha.mu": 0, "alpha.V": 625.0}}}},
    ),
    # MCMCglmm's B (diagonal), R and G on one variance: priors of single parameters (mlm/mcmcglmm_prior.py)
    "sleepstudy_mcmcglmm_prior": (
        "Reaction ~ Days + (1 | Subject)",
        "sleepstudy",
        {
            "prior": {
                "B": {"mu": [250.0, 10.0], "V": [1e4, 100.0]},
                "R": {"V": 1, "nu": 0.002},
                "G": {"G1": {"V": 1, "nu": 0.002}},
            }
        },
    ),
    "glmm_cbpp_mcmcglmm_prior": (
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "cbpp",
        {"family": "binomial", "prior": {"B": {"mu": 0, "V": 100}, "G": {"G1": {"V": 1, "nu": 1}}}},
    ),
    # MCMCglmm's G entries on covariance matrices: the Bartlett decomposition (with |alpha| when expanded)
    "sleepstudy_expanded_covariance": (
        "Reaction ~ Days + (1 + Days | Subject)",
        "sleepstudy",
        {
            "prior": {
                "R": {"V": 1, "nu": 0.002},
                "G": {"G1": {"V": np.eye(2), "nu": 2, "alpha.mu": [0, 0], "alpha.V": np.eye(2) * 1000}},
            }
        },
    ),
    "reading_inverse_wishart": (
        "geread ~ gevocab + (1 + gevocab | school)",
        "reading_public",
        {"prior": {"G": {"G1": {"V": [[2.0, 0.3], [0.3, 0.5]], "nu": 3.5}}}},
    ),
    "simulated_three_inverse_wishart_and_one": (
        "y ~ x1 + x2 + (1 + x1 + x2 | g) + (0 + x3 | g)",
        "simulated",
        {"prior": {"G": {"G1": {"V": np.eye(3), "nu": 3}, "G2": {"V": 1, "nu": 1}}}},
    ),
    "simulated_three_expanded": (
        "y ~ x1 + x2 + (1 + x1 + x2 | g)",
        "simulated",
        {
            "prior": {
                "G": {
                    "G1": {"V": np.diag([1.0, 0.5, 2.0]), "nu": 3, "alpha.mu": 0, "alpha.V": [4.0, 1.0, 9.0]}
                }
            }
        },
    ),
    "nested_expanded_covariance": (
        "y ~ x1 + (1 + x1 | school) + (1 | class)",
        "simulated",
        {"prior": {"G": {"G1": {"V": np.eye(2), "nu": 2, "alpha.mu": [0, 0], "alpha.V": np.eye(2) * 4}}}},
    ),
    "crossed_inverse_wishart": (
        "y ~ x1 + (1 + x1 | g) + (1 | school)",
        "simulated",
        {"prior": {"G": {"G1": {"V": np.eye(2), "nu": 2}, "G2": {"V": 1, "nu": 0.002}}}},
    ),
    "glmm_bernoulli_expanded_covariance": (
        "yb ~ x1 + (1 + x1 | g)",
        "simulated",
        {
            "family": "bernoulli",
            "prior": {"G": {"G1": {"V": np.eye(2), "nu": 2, "alpha.mu": [0, 0], "alpha.V": np.eye(2)}}},
        },
    ),
    "glmm_ordinal_inverse_wishart": (
        "rating ~ x1 + x2 + (1 + x1 + x2 | g)",
        "simulated",
        {"family": "ordinal", "prior": {"G": {"G1": {"V": np.eye(3) * 0.5, "nu": 4}}}},
    ),
    # SD priors on the variance ([var]) or the precision ([prec])
    "reading_variance_prior": (
        "geread ~ gevocab + (1 + gevocab | school)",
        "reading_public",
        {"priors": {"sd:school": "inv_gamma(2,1)[var]", "sigma": "inv_gamma(3,2)[var]"}},
    ),
    "nested_precision_priors": (
        "y ~ x1 + (1 | school/class)",
        "simulated",
        {"priors": {"sd": "gamma(2,1)[prec]", "sigma": "gamma(3,1)[prec]"}},
    ),
    "crossed_variance_priors": (
        "y ~ x1 + (1 + x1 | g) + (1 | school)",
        "simulated",
        {"priors": {"sd:g": "inv_gamma(3,2)[var]", "sd": "lognormal(0,1)[var]"}},
    ),
    "glmm_poisson_variance_prior": (
        "count ~ x1 + (1 + x1 | g)",
        "simulated",
        {"family": "poisson", "priors": {"sd": "inv_gamma(2,1)[var]"}},
    ),
    "glmm_student_precision_prior": (
        "y ~ x1 + (1 | g)",
        "simulated",
        {"family": "student", "priors": {"sigma": "gamma(2,1)[prec]"}},
    ),
    "glmm_bernoulli_probit_priors": (
        "yb ~ x1 + (1 | g)",
        "simulated",
        {"family": "bernoulli", "link": "probit", "priors": {"fixef": "cauchy(0,2)", "sd": "lognormal(0,1)"}},
    ),
    "glmm_poisson_crossed": (
        "TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)",
        "grouseticks",
        {"family": "poisson"},
    ),
    "glmm_poisson_offset_priors": (
        "count ~ x1 + x2 + (x1 || g)",
        "simulated",
        {"family": "poisson", "offset": "exposure", "priors": {"sd": "exponential(2)", "lkj_eta": 3.0}},
    ),
    "glmm_negbinomial_slope": ("count ~ x1 + (1 + x1 | g)", "simulated", {"family": "negbinomial"}),
    "glmm_negbinomial_priors": (
        "count ~ x1 + (1 | school/class)",
        "simulated",
        {"family": "negbinomial", "offset": "exposure", "priors": {"overdispersion": "exponential(1)"}},
    ),
    "glmm_student_crossed": ("y ~ x1 + (1 + x1 | g) + (1 | school)", "simulated", {"family": "student"}),
    "glmm_student_priors": (
        "y ~ x1 + x2 + (x2 || g)",
        "simulated",
        {"family": "student", "priors": {"sigma": "halfcauchy(2)", "nu": "exponential(0.1)"}},
    ),
    "glmm_ordinal_slope": ("rating ~ x1 + x2 + (1 + x1 | g)", "simulated", {"family": "ordinal"}),
    "glmm_ordinal_probit_crossed": (
        "rating ~ x1 + (1 | g) + (1 | school)",
        "simulated",
        {"family": "ordinal", "link": "probit"},
    ),
    "glmm_ordinal_priors": (
        "rating ~ x1 + (1 | school/class)",
        "simulated",
        {"family": "ordinal", "priors": {"cutpoints": "student_t(3,0,4)", "sd": "exponential(1)"}},
    ),
    "glmm_ordinal_probit_priors": (
        "rating ~ x1 + x2 + (1 + x1 | g)",
        "simulated",
        {"family": "ordinal", "link": "probit", "priors": {"fixef": "normal(0,2)", "sd": "halft(3,1)"}},
    ),
    # formulas without random terms: a GLMM family with no effects
    "glm_poisson_offset": ("count ~ x1 + x2", "simulated", {"family": "poisson", "offset": "exposure"}),
    "glm_bernoulli_probit": ("yb ~ x1 + x2", "simulated", {"family": "bernoulli", "link": "probit"}),
    "glm_negbinomial": ("count ~ x1", "simulated", {"family": "negbinomial"}),
    "glm_student_priors": (
        "y ~ x1 + x2",
        "simulated",
        {"family": "student", "priors": {"nu": "exponential(0.1)"}},
    ),
    "glm_ordinal": ("rating ~ x1 + x2", "simulated", {"family": "ordinal"}),
    # Gaussian models that sample their random effects, or have none
    "gaussian_regression": ("Reaction ~ Days", "sleepstudy", {}),
    "gaussian_regression_variance_prior": (
        "y ~ x1 + x2",
        "simulated",
        {"priors": {"sigma": "invgamma(1,1)[var]"}},
    ),
    "gaussian_latent_correlated_slope": (
        "Reaction ~ Days + (Days | Subject)",
        "sleepstudy",
        {"method": "latent"},
    ),
    "gaussian_latent_crossed_priors": (
        "y ~ x1 + (1 | g) + (1 | class)",
        "simulated",
        {"method": "latent", "priors": {"sd": "exponential(1)", "sigma": "halfcauchy(1)"}},
    ),
}


#: the engine family of each model of the mixed corpus
MIXED_FAMILY = {
    "sleepstudy_correlated_slope": "mixed1_q2",
    "sleepstudy_intercept_only": "mixed1_q1",
    "sleepstudy_uncorrelated": "mixed1_q2",
    "sleepstudy_two_blocks": "mixed1_q2",
    "sleepstudy_no_fixed_effects": "mixed1_q1",
    "sleepstudy_term_priors": "mixed1_q2",
    "reading_correlated_slope": "mixed1_q2",
    "simulated_four_correlated_effects": "mixed1",
    "simulated_three_and_one": "mixed1",
    "simulated_two_and_one": "mixed1",
    "nested_intercepts": "mixed2",
    "nested_slope_above": "mixed2",
    "nested_slopes_both": "mixed2",
    "nested_three_correlated": "mixed2",
    "nested_priors": "mixed2",
    "crossed_intercepts": "mixed_crossed",
    "crossed_slope_and_intercept": "mixed_crossed",
    "crossed_three_correlated": "mixed_crossed",
    "crossed_priors": "mixed_crossed",
    "glmm_cbpp_logit": "glmm_binomial_logit",
    "glmm_cbpp_probit": "glmm_binomial_probit",
    "glmm_cbpp_term_prior": "glmm_binomial_logit",
    "glmm_cbpp_expanded_prior": "glmm_binomial_logit",
    "sleepstudy_expanded_prior": "mixed1_q1",
    "sleepstudy_mcmcglmm_prior": "mixed1_q1",
    "glmm_cbpp_mcmcglmm_prior": "glmm_binomial_logit",
    "sleepstudy_expanded_covariance": "mixed1_q2",
    "reading_inverse_wishart": "mixed1_q2",
    "simulated_three_inverse_wishart_and_one": "mixed1",
    "simulated_three_expanded": "mixed1",
    "nested_expanded_covariance": "mixed2",
    "crossed_inverse_wishart": "mixed_crossed",
    "glmm_bernoulli_expanded_covariance": "glmm_binomial_logit",
    "glmm_ordinal_inverse_wishart": "glmm_ordinal_logit",
    "reading_variance_prior": "mixed1_q2",
    "nested_precision_priors": "mixed2",
    "crossed_variance_priors": "mixed_crossed",
    "glmm_poisson_variance_prior": "glmm_poisson",
    "glmm_student_precision_prior": "glmm_student",
    "glmm_bernoulli_correlated_slope": "glmm_binomial_logit",
    "glmm_bernoulli_three_correlated": "glmm_binomial_logit",
    "glmm_bernoulli_probit_nested": "glmm_binomial_probit",
    "glmm_poisson_crossed": "glmm_poisson",
    "glmm_poisson_offset_priors": "glmm_poisson",
    "glmm_negbinomial_slope": "glmm_negbinomial",
    "glmm_negbinomial_priors": "glmm_negbinomial",
    "glmm_student_crossed": "glmm_student",
    "glmm_student_priors": "glmm_student",
    "glmm_ordinal_slope": "glmm_ordinal_logit",
    "glmm_ordinal_probit_crossed": "glmm_ordinal_probit",
    "glmm_ordinal_priors": "glmm_ordinal_logit",
    "glmm_bernoulli_probit_priors": "glmm_binomial_probit",
    "glmm_ordinal_probit_priors": "glmm_ordinal_probit",
    "glm_poisson_offset": "glmm_poisson",
    "glm_bernoulli_probit": "glmm_binomial_probit",
    "glm_negbinomial": "glmm_negbinomial",
    "glm_student_priors": "glmm_student",
    "glm_ordinal": "glmm_ordinal_logit",
    "gaussian_regression": "glmm_gaussian",
    "gaussian_regression_variance_prior": "glmm_gaussian",
    "gaussian_latent_correlated_slope": "glmm_gaussian",
    "gaussian_latent_crossed_priors": "glmm_gaussian",
}


def _mixed_frame(name: str):
    if name != "simulated":
        return data(name)
    rng = np.random.default_rng(4)
    n, groups = 300, 25
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["x1", "x2", "x3"])
    frame["g"] = rng.integers(0, groups, n)
    frame["class"] = rng.integers(0, 3 * groups, n)  # three classes per school, classes nested in schools
    frame["school"] = frame["class"] // 3
    effects = rng.normal(size=(groups, 4))
    design = np.column_stack([np.ones(n), frame[["x1", "x2", "x3"]].to_numpy()])
    noise = rng.normal(size=n) + rng.normal(size=3 * groups)[frame["class"]]
    frame["y"] = design @ [1.0, 0.5, -0.3, 0.2] + (design * effects[frame["g"]]).sum(1) + noise
    frame["yb"] = (frame["y"] > frame["y"].median()).astype(int)
    frame["exposure"] = np.log(rng.uniform(1.0, 3.0, n))
    frame["count"] = rng.poisson(np.exp(0.3 * frame["x1"] + frame["exposure"]))
    frame["rating"] = np.digitize(frame["y"], np.quantile(frame["y"], [0.15, 0.5, 0.8]))  # 4 categories
    return frame


def test_the_mixed_corpus_covers_every_mixed_and_glmm_family() -> None:
    assert set(MIXED_FAMILY.values()) == set(MIXED_FAMILIES) | set(GLMM_FAMILIES)


@pytest.mark.parametrize("name", sorted(MIXED_CORPUS))
def test_mixed_engine_equals_the_models_own_graph(name: str) -> None:
    formula, source, kwargs = MIXED_CORPUS[name]
    spec = pymlsem.mixed_model(formula, _mixed_frame(source), **kwargs)
    assert engine_binding(spec)[0].family == MIXED_FAMILY[name]
    model = spec.model
    named = [*model.deterministics, *model.free_RVs]
    evaluate = _point_function(model, named)
    for point, rebuilt in _engine_points(spec, model, name):
        assert set(rebuilt.data_vars) == {v.name for v in named}
        for var, expected in zip(named, evaluate(point), strict=True):
            np.testing.assert_allclose(rebuilt[var.name].values[0, 0], expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("formula", "kwargs", "reason"),
    [
        (
            "geread ~ gevocab + (1 + gevocab | school)",
            {
                "family": "ordinal",
                "prior": {"G": {"G1": {"V": np.eye(2), "nu": 2, "alpha.mu": [1, 0], "alpha.V": np.eye(2)}}},
            },
            "asymmetric parameter expansion",
        ),
        (
            "geread ~ gevocab + (1 | school)",
            {"prior": {"R": {"V": 1, "nu": 0.002}, "B": {"mu": 0, "V": [[1e4, 10], [10, 1e4]]}}},
            "correlated fixed effects",
        ),
    ],
)
def test_mixed_models_the_family_cannot_express_say_why(formula: str, kwargs: dict, reason: str) -> None:
    frame = data("reading_public")
    if kwargs.get("family") == "ordinal":
        frame = frame.assign(geread=pd.cut(frame["geread"], 4, labels=False))
    spec = pymlsem.mixed_model(formula, frame, **kwargs)
    binding, why = engine_binding(spec)
    assert binding is None
    assert reason in why


@pytest.mark.parametrize(
    "name",
    [
        "seed",
        "latent_ordinal_two_level_logit_priors",
        "glmm_bernoulli_correlated_slope",
        "sleepstudy_correlated_slope",
        "crossed_three_correlated",
        "glmm_ordinal_slope",
    ],
)
def test_the_chains_start_where_pymcs_initial_point_puts_them(name: str) -> None:
    """The engine's starting points (PyMC's initial point function compiled without C) are PyMC's
    jittered initial points as nutpie's own compiler draws them, value for value, for every seed."""
    from pymc.initial_point import make_initial_point_fn

    if name in CORPUS:
        model = corpus_spec(name).pymc_model
    else:
        formula, source, kwargs = MIXED_CORPUS[name]
        model = pymlsem.mixed_model(formula, _mixed_frame(source), **kwargs).model
    pymcs = make_initial_point_fn(
        model=model, default_strategy="support_point", jitter_rvs=set(model.free_RVs), return_transformed=True
    )
    ours = initial_point_function(model)
    assert ours is initial_point_function(model)  # compiled once per model
    for seed in (0, 7, 2**40 + 3, [5, 1]):
        expected, got = pymcs(seed), ours(seed)
        assert list(got) == list(expected)
        for key, value in expected.items():
            np.testing.assert_array_equal(got[key], value)
    assert not np.array_equal(ours(1)[model.value_vars[0].name], ours(2)[model.value_vars[0].name])
