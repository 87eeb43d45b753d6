"""The hand-written kernels of the SEM and Gaussian mixed-model families equal the families' graphs (their
specification).

Every model of the engine corpus whose family has a kernel is also checked through the compiled kernel
against its own PyMC graph (tests/engine/test_engine.py); here each kernel is compared with its family's
PyTensor graph directly, on models of the corpus that take every branch (mean structure or not, missing
values, two levels), including where a covariance is not positive definite.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from graphs import python_thunks
from pymc.distributions.transforms import CholeskyCorrTransform
from pytensor.compile.mode import Mode
from reference import data

import pymlsem
from pymlsem.build.missing import two_level_missing_loglik
from pymlsem.build.rewrites import compile_mode
from pymlsem.engine import glmm, mixed
from pymlsem.engine.binding import pack
from pymlsem.engine.compiled import load_family
from pymlsem.engine.kernels import (
    callable_from_python,
    coupled,
    mixed1,
    saturated,
    sem1,
    sem1_fiml,
    sem2,
    sem2_fiml,
)
from pymlsem.engine.kernels import glmm as glmm_kernel
from pymlsem.engine.kernels.effects import spiral_index
from pymlsem.engine.kernels.priors import PRIOR_SEGMENTS, all_priors
from pymlsem.engine.priors import MAX_HYPER, PRIOR_FAMILIES, prior_logp
from pymlsem.engine.run import engine_binding, family_user_data
from pymlsem.engine.sem import KERNELS, segments
from pymlsem.workflow.incomplete import TWO_LEVEL_ARRAYS
from tests.engine.test_engine import (
    MIXED_CORPUS,
    MIXED_FAMILY,
    _mixed_frame,
    corpus_spec,
    engine_at,
    graph_at,
)

#: corpus models of each kernel's family, and the family they bind to
CASES = {
    "seed": "sem2",
    "two_level_path": "sem2",
    "hs_cfa": "sem1",
    "hs_covariance_only": "sem1",
    "regression_fixed_x": "sem1",
    "poldem_missing_values": "sem1_fiml",
    "hs_missing_values": "sem1_fiml",
    "seed_missing_values": "sem2_fiml",
    "two_level_missing_values": "sem2_fiml",
}
#: three within-level correlations: with two of them at 0.95 and one at -0.95 no covariance matrix has them
CORRELATED = "y1 ~~ y2\n y1 ~~ y3\n y2 ~~ y3"


def _kernel_at(binding, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The family's kernel at ``x``, as the engine compiled it (the warm-up's machine code: a kernel
    compiled again in each test process would cost it tens of seconds)."""
    assert binding.family in KERNELS | mixed.KERNELS | glmm.KERNELS
    family = load_family(binding.family)
    _arrays, user_data = family_user_data(binding, family)  # the arrays must outlive the calls
    return engine_at(family, user_data, binding.n_dim + binding.n_derived, x)


def _binding(spec, family: str):
    binding, why = engine_binding(spec)
    assert binding is not None and binding.family == family, why
    return binding


def _assert_kernel_equals_graph(binding, rng: np.random.Generator, n_points: int) -> None:
    """At random points: the kernel's log-density (finite), gradient and expanded values equal the graph's."""
    for _ in range(n_points):
        x = rng.normal(0.0, 0.5, binding.n_dim)
        logp, grad, expanded = _kernel_at(binding, x)
        graph_logp, graph_grad, graph_expanded = graph_at(binding, x)
        assert np.isfinite(logp)
        assert logp == pytest.approx(graph_logp, rel=1e-10)
        np.testing.assert_allclose(grad, graph_grad, rtol=1e-8, atol=1e-8 * np.abs(graph_grad).max())
        np.testing.assert_allclose(expanded, graph_expanded, rtol=1e-12)


def test_each_kernel_reads_its_familys_segments() -> None:
    modules = {"sem1": sem1, "sem1_fiml": sem1_fiml, "sem2": sem2, "sem2_fiml": sem2_fiml}
    assert set(KERNELS) == set(modules)
    for family, module in modules.items():
        assert module.SEGMENTS == segments(family)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_kernel_equals_the_family_graph(name: str) -> None:
    _assert_kernel_equals_graph(_binding(corpus_spec(name), CASES[name]), np.random.default_rng(3), 3)


def test_the_mixed_kernels_read_their_familys_segments() -> None:
    assert set(mixed.KERNELS) == {"mixed1_q1", "mixed1_q2", "mixed1", "mixed2", "mixed_crossed"}
    for family in ("mixed1_q1", "mixed1_q2", "mixed1"):
        assert mixed1.SEGMENTS == mixed._segments(family)
    assert coupled.NESTED_SEGMENTS == mixed._segments("mixed2")
    assert coupled.CROSSED_SEGMENTS == mixed._segments("mixed_crossed")


def test_the_glmm_kernel_reads_its_familys_segments_and_response_codes() -> None:
    assert glmm_kernel.RESPONSES == tuple(glmm._LIKELIHOODS)  # the response codes
    assert set(glmm.KERNELS) == set(glmm_kernel.SERVED)
    for family in glmm_kernel.SERVED:
        assert glmm_kernel.SEGMENTS == glmm._segments(family)


#: the mixed corpus's models of the kernels' families: one effect, two (correlated, uncorrelated, two
#: blocks), no fixed effects, three effects in two blocks; binomial (logit, probit) and bernoulli responses
#: with one, nested and crossed factors, Poisson and negative binomial counts, Student-t responses, ordinal
#: ratings (logit, probit)
MIXED_CASES = sorted(name for name, family in MIXED_FAMILY.items() if family in mixed.KERNELS | glmm.KERNELS)


@pytest.mark.parametrize("name", MIXED_CASES)
def test_the_mixed_and_glmm_kernels_equal_the_family_graph(name: str) -> None:
    formula, source, kwargs = MIXED_CORPUS[name]
    spec = pymlsem.mixed_model(formula, _mixed_frame(source), **kwargs)
    _assert_kernel_equals_graph(_binding(spec, MIXED_FAMILY[name]), np.random.default_rng(3), 3)


def test_the_mixed_kernel_with_a_strong_correlation_and_tiny_variances() -> None:
    """Far from the start: a correlation of 0.999, SDs of 1e-3 and 1e3 times the data's, where the
    cluster matrices are nearly singular or nearly the identity."""
    formula, source, kwargs = MIXED_CORPUS["reading_correlated_slope"]
    binding = _binding(pymlsem.mixed_model(formula, _mixed_frame(source), **kwargs), "mixed1_q2")
    rng = np.random.default_rng(8)
    sd_positions = next(v[3] for v in binding.variables if v[0].startswith("sd_std__"))
    corr_positions = next(v[3] for v in binding.variables if v[0].startswith("corr_chol__"))
    for log_sd in (np.log(1e-3), np.log(1e3)):
        x = rng.normal(0.0, 0.5, binding.n_dim)
        x[sd_positions] = log_sd
        x[corr_positions] = 22.0  # t / sqrt(1 + t^2) = 0.999
        logp, grad, expanded = _kernel_at(binding, x)
        graph_logp, graph_grad, graph_expanded = graph_at(binding, x)
        assert logp == pytest.approx(graph_logp, rel=1e-10)
        np.testing.assert_allclose(grad, graph_grad, rtol=1e-7, atol=1e-8 * np.abs(graph_grad).max())
        np.testing.assert_allclose(expanded, graph_expanded, rtol=1e-12)


def test_the_two_level_missing_kernel_with_clusters_missing_a_variable_entirely() -> None:
    """Clusters without any value of a within-varying variable (a smaller ``c``) or without their
    between-only value (an empty ``z``), the branches the corpus's data do not reach."""
    frame = data("Demo.twolevel").copy()
    clusters = frame["cluster"].unique()
    frame.loc[frame["cluster"].isin(clusters[:5]), "w1"] = np.nan
    frame.loc[frame["cluster"].isin(clusters[5:8]), "y1"] = np.nan
    frame.loc[frame.index[::7], "y2"] = np.nan
    model = "level: 1\n fw =~ y1 + y2 + y3\n fw ~ x1\nlevel: 2\n fb =~ y1 + y2 + y3\n w1 ~ fb + w2"
    binding = _binding(pymlsem.SEM(model, frame, cluster="cluster"), "sem2_fiml")
    _assert_kernel_equals_graph(binding, np.random.default_rng(5), 2)


@pytest.mark.parametrize(
    ("model", "cluster", "family"),
    [
        (f"level: 1\n {CORRELATED}\nlevel: 2\n y1 ~~ y1\n y2 ~~ y2\n y3 ~~ y3", "cluster", "sem2"),
        (CORRELATED, None, "sem1"),
        (CORRELATED, None, "sem1_fiml"),
        (f"level: 1\n {CORRELATED}\nlevel: 2\n y1 ~~ y1\n y2 ~~ y2\n y3 ~~ y3", "cluster", "sem2_fiml"),
    ],
)
def test_a_covariance_that_is_not_positive_definite_gives_minus_infinity(model, cluster, family) -> None:
    frame = data("Demo.twolevel")
    if family.endswith("_fiml"):
        frame = frame.copy()
        frame.loc[frame.index[::5], "y2"] = np.nan
    binding = _binding(pymlsem.SEM(model, frame, cluster=cluster), family)
    ints, offsets = binding.data["ints"], binding.data["offsets"]
    at = segments(family).index("prior_beta")
    beta = ints[offsets[at] : offsets[at + 1]]  # the correlations' positions (beta priors)
    assert beta.size == 3
    x = np.zeros(binding.n_dim)
    logit = np.log(0.975 / 0.025)  # correlation 2 * 0.975 - 1 = 0.95
    x[beta] = [logit, logit, -logit]
    assert graph_at(binding, x)[0] == -np.inf
    logp, grad, expanded = _kernel_at(binding, x)
    assert logp == -np.inf
    assert np.all(grad == 0.0)
    np.testing.assert_allclose(expanded, graph_at(binding, x)[2], rtol=1e-12)
    x[beta] = 0.0  # correlations 0: positive definite again
    assert np.isfinite(_kernel_at(binding, x)[0])


def _saturated_graph(stats):
    """The saturated model's negative log-likelihood and gradient at ``theta`` from the specification
    (:func:`pymlsem.build.missing.two_level_missing_loglik`), evaluated by PyTensor without compiling."""
    theta = pt.vector("theta")
    p = stats.pattern_observed.shape[1]
    within, between = np.asarray(stats.within_index), np.asarray(stats.between_index)
    cut = p + within.size * (within.size + 1) // 2

    def factor(free, n):
        rows, cols = np.tril_indices(n)
        values = pt.switch(pt.eq(rows, cols), pt.exp(free), free)
        return pt.set_subtensor(pt.zeros((n, n))[rows, cols], values)

    def placed(chol, where):
        return pt.set_subtensor(pt.zeros((p, p))[where[:, None], where[None, :]], chol @ chol.T)

    sigma_w = placed(factor(theta[p:cut], within.size), within)
    sigma_b = placed(factor(theta[cut:], between.size), between)
    arrays = SimpleNamespace(**{name: pt.as_tensor(getattr(stats, name)) for name in TWO_LEVEL_ARRAYS})
    arrays.within_index, arrays.between_index = pt.as_tensor(within), pt.as_tensor(between)
    loglik = two_level_missing_loglik(pt.zeros(p), sigma_w, theta[:p], sigma_b, arrays)
    with python_thunks():
        return pytensor.function([theta], [-loglik, -pytensor.grad(loglik, theta)]), cut


@pytest.mark.parametrize("name", ["seed_missing_values", "two_level_missing_values"])
def test_the_saturated_objective_equals_the_two_level_missing_density(name: str) -> None:
    """The kernel the two-level saturated model of incomplete data is maximised with
    (:mod:`pymlsem.engine.kernels.saturated`): value and gradient are the specification's."""
    stats = corpus_spec(name).likelihood_stats
    graph, cut = _saturated_graph(stats)
    within = np.asarray(stats.within_index, dtype=np.int64)
    between = np.asarray(stats.between_index, dtype=np.int64)
    arrays = [np.ascontiguousarray(getattr(stats, array), dtype=float) for array in TWO_LEVEL_ARRAYS]
    n_between = between.size * (between.size + 1) // 2
    rng = np.random.default_rng(7)
    for _ in range(2):
        theta = rng.normal(0.0, 0.3, cut + n_between)
        value, gradient, sigma_w, sigma_b = saturated.objective(theta, within, between, *arrays)
        expected_value, expected_gradient = graph(theta)
        assert np.isfinite(value) and value == pytest.approx(float(expected_value), rel=1e-10)
        scale = np.abs(expected_gradient).max()
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-8, atol=1e-8 * scale)
        assert np.all(np.linalg.eigvalsh(sigma_w[np.ix_(within, within)]) > 0)
        assert np.all(sigma_b[np.setdiff1d(np.arange(sigma_b.shape[0]), between)] == 0.0)


@pytest.mark.parametrize(
    "name",
    ["glmm_ordinal_probit_crossed", "glmm_cbpp_probit", "glmm_ordinal_slope", "glmm_negbinomial_slope"],
)
def test_the_glmm_kernel_with_large_random_effects(name: str) -> None:
    """Random-effect SDs of 5 (on the link scale): many rows far in the tails of the link, where PyMC's
    ordered probit switches to its scaled-complementary-error-function branches. There the graph's own
    gradient can be NaN (PyTensor differentiates the branch a switch does not take), so the kernel's is
    checked against central differences of its log-density where the graph's is not a number."""
    formula, source, kwargs = MIXED_CORPUS[name]
    binding = _binding(pymlsem.mixed_model(formula, _mixed_frame(source), **kwargs), MIXED_FAMILY[name])
    rng = np.random.default_rng(11)
    sd_positions = np.concatenate([v[3] for v in binding.variables if v[0].startswith("sd")])
    for _ in range(2):
        x = rng.normal(0.0, 0.5, binding.n_dim)
        x[sd_positions] = np.log(5.0)
        logp, grad, expanded = _kernel_at(binding, x)
        graph_logp, graph_grad, graph_expanded = graph_at(binding, x)
        assert np.isfinite(logp)
        assert logp == pytest.approx(graph_logp, rel=1e-10)
        number = np.isfinite(graph_grad)
        scale = np.abs(graph_grad[number]).max()
        np.testing.assert_allclose(grad[number], graph_grad[number], rtol=1e-7, atol=1e-8 * scale)
        for k in np.flatnonzero(~number):
            step = np.zeros(binding.n_dim)
            step[k] = 1e-6
            central = (_kernel_at(binding, x + step)[0] - _kernel_at(binding, x - step)[0]) / 2e-6
            assert grad[k] == pytest.approx(central, rel=1e-5, abs=1e-6 * scale)
        np.testing.assert_allclose(expanded, graph_expanded, rtol=1e-12)


def test_the_kernels_digamma_equals_scipys() -> None:
    from scipy.special import digamma

    points = np.geomspace(1e-3, 1e4, 400)
    digamma_kernel = callable_from_python(glmm_kernel.digamma)
    values = np.array([digamma_kernel(point) for point in points])
    np.testing.assert_allclose(values, digamma(points), rtol=1e-13, atol=1e-14)


#: valid hyperparameters of each prior family (its arguments in order), three elements each
PRIOR_HYPER = {
    "normal": [(0.3, 1.5), (-2.0, 0.2), (0.0, 10.0)],
    "student_t": [(3.0, 0.5, 2.0), (1.0, 0.0, 1.0), (30.0, -1.0, 0.3)],
    "cauchy": [(0.0, 2.5), (1.0, 0.1), (-3.0, 5.0)],
    "gamma": [(1.0, 0.5), (2.5, 3.0), (0.1, 0.1)],
    "inv_gamma": [(1.0, 1.0), (3.0, 0.5), (0.01, 0.01)],
    "lognormal": [(0.0, 1.0), (1.5, 0.3), (-2.0, 2.0)],
    "exponential": [(1.0,), (0.1,), (7.0,)],
    "halfnormal": [(1.0,), (0.3,), (25.0,)],
    "halfcauchy": [(2.5,), (0.1,), (10.0,)],
    "halft": [(3.0, 1.0), (1.0, 0.5), (40.0, 2.0)],
    "beta": [(1.0, 1.0), (2.0, 5.0), (0.5, 0.5)],
    "uniform": [(0.0, 1.0), (-3.0, 2.0), (10.0, 1000.0)],
}


def _every_prior_family() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Hyperparameters of three elements of every prior family (:data:`PRIOR_HYPER`) and each family's
    positions among them."""
    hyper = np.zeros((3 * len(PRIOR_FAMILIES), MAX_HYPER))
    positions = {}
    for f, (name, rows) in enumerate(PRIOR_HYPER.items()):
        positions[name] = np.arange(3 * f, 3 * f + 3)
        for k, args in zip(positions[name], rows, strict=True):
            hyper[k, : len(args)] = args
    return hyper, positions


def test_every_prior_family_in_the_kernels_equals_the_graphs_prior_block() -> None:
    """The kernels' priors (:mod:`pymlsem.engine.kernels.priors`) against the families' graphs'
    (:func:`pymlsem.engine.priors.prior_logp`), for every prior family: the joint log-density with the
    log-Jacobians, its gradient, the values and dvalue/dx, at points from the middle to the far tails."""
    assert tuple(PRIOR_HYPER) == PRIOR_FAMILIES
    hyper, positions = _every_prior_family()
    ints, offsets = pack({f"prior_{n}": positions[n] for n in PRIOR_FAMILIES}, PRIOR_SEGMENTS, "int64")
    x = pt.vector("x")
    logp, values = prior_logp(x, pt.as_tensor(hyper), {n: pt.as_tensor(p) for n, p in positions.items()})
    graph = pytensor.function(
        [x],
        [logp, pytensor.grad(logp, x), values, pytensor.grad(pt.sum(values), x)],
        mode=Mode(linker="py", optimizer=None),
    )
    rng = np.random.default_rng(11)
    kernel_priors = callable_from_python(all_priors)
    for scale in (0.5, 2.0, 8.0):
        point = rng.normal(0.0, scale, hyper.shape[0])
        expected = graph(point)
        got = kernel_priors(point, hyper, ints, offsets)
        assert got[0] == pytest.approx(float(expected[0]), rel=1e-12)
        for value, want in zip(got[1:], expected[1:], strict=True):
            np.testing.assert_allclose(value, want, rtol=1e-10, atol=1e-300)


@pytest.mark.parametrize("q", [2, 3, 4])
def test_correlation_blocks_read_their_values_where_pymc_puts_them(q: int) -> None:
    """``effects.spiral_index`` is PyMC's ``CholeskyCorrTransform`` fill of a block's unconstrained values
    into the strictly lower triangle (its spiral order, with a unit diagonal)."""
    m = q * (q - 1) // 2
    filled = CholeskyCorrTransform(q)._fill_triangular_spiral(pt.as_tensor(np.arange(1.0, m + 1)))
    lower = np.asarray(pytensor.function([], filled, mode=Mode(linker="py", optimizer=None))())
    index = callable_from_python(spiral_index)
    for i in range(1, q):
        for j in range(i):
            assert index(q, i, j) == lower[i - 1, j] - 1


def test_every_prior_familys_graph_compiles_with_numba() -> None:
    """The prior block of the latent builder's ``_anyprior`` graphs (:func:`pymlsem.engine.priors.prior_logp`,
    every prior family), compiled by PyTensor's numba backend in the families' mode with the positions and
    hyperparameters as inputs (as in the families), equals its evaluation as written. The suite compiles no
    ``_anyprior`` graph whole (tests/engine/compiled_families.py): this is where every prior family's graph
    code goes through numba."""
    hyper, positions = _every_prior_family()
    x, h = pt.vector("x"), pt.matrix("hyper")
    where = {name: pt.lvector(f"positions_{name}") for name in PRIOR_FAMILIES}
    logp, values = prior_logp(x, h, where)
    inputs = [x, h, *where.values()]
    outputs = [logp, pytensor.grad(logp, x), values]
    compiled = pytensor.function(inputs, outputs, mode=compile_mode("NUMBA"))  # the latent families' mode
    as_written = pytensor.function(inputs, outputs, mode=Mode(linker="py", optimizer=None))
    rng = np.random.default_rng(12)
    for scale in (0.5, 2.0, 8.0):
        point = [rng.normal(0.0, scale, hyper.shape[0]), hyper, *positions.values()]
        for got, want in zip(compiled(*point), as_written(*point), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-300)
