"""The PyMC model a SEM becomes: named, dimensioned variables, priors, constraints (no sampling)."""

from __future__ import annotations

import numpy as np
import pytensor
import pytest
from graphs import dlogp_function
from reference import BOOK_MODELS, HS, POLDEM, SEED, data

import pymlsem
from pymlsem.exceptions import ModelSpecificationError, PriorError
from pymlsem.simulate import simulate


@pytest.fixture(scope="module")
def seed_model() -> pymlsem.SEM:
    return pymlsem.SEM(SEED, data("Demo.twolevel"), cluster="cluster")


def test_free_parameters_are_named_vector_variables(seed_model) -> None:
    model = seed_model.pymc_model
    names = {rv.name for rv in model.free_RVs}
    assert names == {"loadings", "regressions", "intercepts", "residual_sds", "latent_sds"}
    assert list(model.coords["loading"]) == [
        "fw=~y2@within",
        "fw=~y3@within",
        "fb=~y2@between",
        "fb=~y3@between",
    ]
    assert len(model.coords["parameter"]) == 20  # lavaan's npar for the seed model
    assert "parameters" in model.named_vars and "loglik" in model.named_vars


def test_building_records_no_node_traces_and_leaves_the_users_on() -> None:
    # the builder's nodes carry no Python stack (reading the stacks was ~30% of a build); PyTensor's setting
    # is the user's again afterwards, so nodes a user adds to the model keep theirs (PyTensor's default is
    # 8 frames; the suite's conftest turns the traces off)
    with pytensor.config.change_flags(traceback__limit=8):
        spec = pymlsem.SEM(SEED, data("Demo.twolevel"), cluster="cluster")
        assert pytensor.config.traceback__limit == 8
        loglik = spec.pymc_model["loglik"]
        assert not loglik.owner.inputs[0].tag.trace
        assert (2.0 * loglik).tag.trace


def test_priors_blavaan_gives_blavaans_numbers() -> None:
    spec = pymlsem.SEM(SEED, data("Demo.twolevel"), cluster="cluster", priors="blavaan")
    priors = {p.name: str(p.prior) for p in spec.built.free}
    assert priors["fw=~y2@within"] == "normal(0,10)"
    assert priors["fb~w1@between"] == "normal(0,10)"
    assert priors["y1~1@between"] == "normal(0,32)"
    assert priors["y1~~y1@within"] == "gamma(1,0.5)[sd]"
    assert priors["fb~~fb@between"] == "gamma(1,0.5)[sd]"


def test_default_priors_are_blavaans_in_the_datas_units(seed_model) -> None:
    """Loadings sd(y)/sd(f) with f on its marker's scale, regressions sd(y)/sd(x), intercepts rms(y),
    variances sd(y), all from the data's total (both-level) moments."""
    frame = data("Demo.twolevel")
    sd, mean = frame.std(ddof=0), frame.mean()
    priors = {p.name: p.prior for p in seed_model.built.free}

    def check(name: str, family: str, args: tuple[float, ...]) -> None:
        assert priors[name].family == family
        np.testing.assert_allclose(priors[name].args, args, rtol=1e-9)

    check("fw=~y2@within", "normal", (0.0, 10 * sd.y2 / sd.y1))  # fw's marker is y1
    check("fb~w1@between", "normal", (0.0, 10 * sd.y1 / sd.w1))  # fb's marker is y1
    check("y1~1@between", "normal", (0.0, 32 * np.hypot(mean.y1, sd.y1)))
    check("y1~~y1@within", "gamma", (1.0, 0.5 / sd.y1))
    check("fb~~fb@between", "gamma", (1.0, 0.5 / sd.y1))


def test_priors_argument_is_checked() -> None:
    with pytest.raises(PriorError, match="'blavaan'"):
        pymlsem.SEM(SEED, data("Demo.twolevel"), cluster="cluster", priors="stan")
    with pytest.raises(PriorError, match="not float"):
        pymlsem.SEM(SEED, data("Demo.twolevel"), cluster="cluster", priors=10.0)


def test_priors_by_class_by_name_and_in_the_syntax() -> None:
    model = SEED.replace("fb ~ w1 + w2", 'fb ~ prior("normal(0,1)")*w1 + w2')
    spec = pymlsem.SEM(
        model,
        data("Demo.twolevel"),
        cluster="cluster",
        priors={"lambda": "normal(1,2)", "fw=~y3@within": "student_t(3,0,1)", "theta": "gamma(2,1)[var]"},
    )
    priors = {p.name: str(p.prior) for p in spec.built.free}
    assert priors["fb~w1@between"] == "normal(0,1)"
    assert priors["fb~w2@between"] != "normal(0,10)"  # the default in the data's units
    assert priors["fw=~y2@within"] == "normal(1,2)"
    assert priors["fw=~y3@within"] == "student_t(3,0,1)"
    assert priors["y1~~y1@within"] == "gamma(2,1)[var]"
    named = spec.pymc_model.named_vars
    assert "loadings_student_t" in named and "residual_variances" in named
    np.testing.assert_allclose(named["loadings__mu"].get_value(), [1.0, 1.0, 1.0])


def test_shared_labels_are_one_parameter() -> None:
    spec = pymlsem.SEM(POLDEM, data("PoliticalDemocracy"))
    names = [p.name for p in spec.built.free]
    assert {"a", "b", "c"} <= set(names)
    by_name = {p.name: p for p in spec.built.free}
    assert len(by_name["a"].rows) == 2
    # lavaan: 31 free rows with 3 equality constraints -> 28 parameters, plus 11 intercepts (meanstructure)
    assert len(spec.built.free) == 28 + 11


def test_defined_parameters_and_constraints_become_model_terms() -> None:
    model = "visual =~ x1 + a*x2 + x3\n textual =~ x4 + b*x5 + x6\n speed =~ x7+x8+x9\n ab := a*b\n a < 2*b"
    spec = pymlsem.SEM(model, data("HolzingerSwineford1939"))
    named = spec.pymc_model.named_vars
    assert list(spec.pymc_model.coords["defined_parameter"]) == ["ab"]
    assert "defined" in named and "constraint_0" in named


def test_equality_of_two_labels_merges_them() -> None:
    model = "visual =~ x1 + a*x2 + x3\n textual =~ x4 + b*x5 + x6\n speed =~ x7+x8+x9\n a == b"
    spec = pymlsem.SEM(model, data("HolzingerSwineford1939"))
    merged = [p for p in spec.built.free if len(p.rows) == 2]
    assert len(merged) == 1


def test_starting_values_are_near_the_data() -> None:
    spec = pymlsem.SEM(HS, data("HolzingerSwineford1939"))
    point = spec.pymc_model.initial_point()
    assert np.all(point["loadings"] == 1.0)
    means = data("HolzingerSwineford1939")[[f"x{i}" for i in range(1, 10)]].mean().to_numpy()
    np.testing.assert_allclose(point["intercepts"], means)
    assert np.isfinite(spec.pymc_model.compile_logp(mode="FAST_COMPILE")(point))


def test_unidentified_model_is_refused() -> None:
    model = "f =~ x1 + x2\n x1 ~~ x2"
    with pytest.raises(ModelSpecificationError, match="not identified"):
        pymlsem.SEM(model, data("HolzingerSwineford1939"))


@pytest.mark.parametrize("number", sorted(BOOK_MODELS))
def test_book_chapter_10_models_build_with_finite_density(number: str) -> None:
    """The book's two-level CFA (10.3), equal loadings across levels (10.4), structural paths at both
    levels (10.5) and growth model (10.6) on data simulated from each."""
    model, model_type = BOOK_MODELS[number]
    frame = simulate(model, n_clusters=60, cluster_size=8, model_type=model_type, seed=1)
    spec = pymlsem.SEM(model, frame, cluster="cluster", model_type=model_type)
    pymc_model = spec.pymc_model
    point = pymc_model.initial_point()
    assert np.isfinite(pymc_model.compile_logp(mode="FAST_COMPILE")(point))
    gradient = dlogp_function(pymc_model, mode="FAST_COMPILE")(point)
    assert np.all(np.isfinite(gradient)) and np.any(gradient != 0)


def test_simulate_lists_the_names_it_accepts() -> None:
    growth = "i =~ 1*y1 + 1*y2 + 1*y3\n s =~ 0*y1 + 1*y2 + 2*y3"
    with pytest.raises(ModelSpecificationError, match=r"'ib~1' \(did you mean 'i~1'\?\).*i~1, s~1"):
        simulate(growth, {"ib~1": 1.0}, n=50, seed=1, model_type="growth")


def test_simulate_with_std_lv_gives_the_factor_unit_variance() -> None:
    """``g =~ y1 + y2 + y3`` with the default values (free loadings 0.8, variances 1): with the marker
    (the default) y1's loading is fixed at 1, so y1 has variance 2 and the others 1.64; with ``std_lv``
    the factor's variance is fixed at 1 and y1's loading is a free 0.8 like the others (1.64 each).
    200,000 rows: the sample variances within 0.02 (their SE is about 0.006)."""
    model = "g =~ y1 + y2 + y3"
    marker = simulate(model, n=200_000, seed=3)
    np.testing.assert_allclose(marker.var().to_numpy(), [2.0, 1.64, 1.64], atol=0.02)
    scaled = simulate(model, n=200_000, std_lv=True, seed=3)
    np.testing.assert_allclose(scaled.var().to_numpy(), [1.64, 1.64, 1.64], atol=0.02)
    assert scaled["y1"].cov(scaled["y2"]) == pytest.approx(0.64, abs=0.02)
