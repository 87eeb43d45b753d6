"""Nested and crossed grouping factors integrated out without a dense factorisation, against brute force.

No sampling. On small simulated designs (nested: unequal cluster sizes, two and three levels, random slopes
at either level; crossed: random pairs of levels), at random parameter values:

* the log-likelihood of the ``"nested"`` and ``"crossed"`` layouts equals scipy's multivariate normal
  log-density with ``V = Z G Z' + s^2 I`` built densely, and the dense layout's graph; its gradient equals
  the dense graph's gradient;
* nesting is read from the data (unique class labels without ``/``), and crossed factors are not nested;
* cluster effects, pointwise log-likelihoods (per school and per observation) and the PyMC model's
  log-density agree with their dense counterparts;
* the method follows the grouping factors (large crossed designs are sampled), and the tools built for
  the marginal layout still work on a latent crossed fit.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.linalg
import xarray as xr
from scipy.stats import multivariate_normal

from pymlsem.formula import MixedDesign, mixed_design
from pymlsem.mlm import gaussian_marginal_loglik, gaussian_stats
from pymlsem.mlm.fit import MixedFit
from pymlsem.mlm.model import CROSSED_COST_MAX, build_mixed_model, choose_method, crossed_cost
from pymlsem.mlm.nested import lambda_and_rhs, nested_solve
from pymlsem.mlm.ranef import block_factors, conditional_effects
from pymlsem.mlm.sampling import model_cache_key
from pymlsem.mlm.stats import grouping_hierarchy, sparse_z
from pymlsem.workflow.mixed_loglik import (
    gaussian_cluster_loglik,
    gaussian_observation_loglik,
    gaussian_total_loglik,
)
from pymlsem.workflow.pointwise import mixed_default_unit, mixed_fit_pointwise
from tests.mlm.test_mixed_loglik import random_cov, simulated_data
from tests.mlm.test_mixed_ranef import closed_form, flat_effects
from tests.mlm.test_mixed_ranef import test_conditional_draws_have_the_conditional_covariance as check_draws
from tests.mlm.test_mixed_ranef import test_conditional_means_are_the_blups as check_means

MODE = "FAST_COMPILE"
RTOL = 1e-9


def _nested_data(seed: int = 11) -> pd.DataFrame:
    """Students in groups in classes in schools, every size unequal; labels restart within their parent."""
    rng = np.random.default_rng(seed)
    rows = []
    for school in range(5):
        for klass in range(rng.integers(1, 4)):
            for group in range(rng.integers(1, 4)):
                rows += [(school, klass, group)] * int(rng.integers(1, 5))
    school, klass, group = np.array(rows).T
    n = school.size
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "w": rng.normal(size=n),
            "school": [f"s{v}" for v in school],
            "class": [f"c{v}" for v in klass],
            "group": [f"g{v}" for v in group],
            "class_id": [f"s{s}c{c}" for s, c in zip(school, klass, strict=True)],
        }
    )


def _parameters(design: MixedDesign, seed: int = 3) -> tuple[np.ndarray, float, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    beta = rng.normal(size=len(design.fixed_names))
    covs = [random_cov(block.q, rng) for block in design.blocks]
    covs = [c if b.correlated else np.diag(np.diag(c)) for c, b in zip(covs, design.blocks, strict=True)]
    return beta, 0.8, covs


def _marginal_cov(design: MixedDesign, sigma: float, covs: list[np.ndarray]) -> np.ndarray:
    """``V = Z G Z' + sigma^2 I``, densely."""
    z = sparse_z(design).toarray()
    g = scipy.linalg.block_diag(
        *[np.kron(np.eye(b.n_levels), c) for b, c in zip(design.blocks, covs, strict=True)]
    )
    return z @ g @ z.T + sigma**2 * np.eye(design.nobs)


NESTED = {
    "two levels": "y ~ x + (1 | school/class)",
    "slope below": "y ~ x + (1 | school) + (1 + x | school:class)",
    "slopes at both": "y ~ x + (1 + x | school) + (1 + x | school:class)",
    "uncorrelated": "y ~ x + (1 + x || school/class)",
    "two blocks below": "y ~ x * w + (1 | school) + (1 | school:class) + (0 + w | school:class)",
    "three levels": "y ~ x + (1 | school/class/group)",
    "three levels, slope below": "y ~ x + (1 | school) + (1 | school:class) + (1 + x | school:class:group)",
    "batched (d = 7)": "y ~ x * w + (1 + x + w | school) + (1 + x + w + x:w | school:class)",
    "no fixed effects": "y ~ 0 + (1 | school/class)",
}

CROSSED = {
    "two factors": "y ~ x + (1 + x | g) + (1 | h)",
    "largest second": "y ~ 0 + x + (1 | g) + (1 + w | h)",
    "two blocks of the largest": "y ~ x + (1 | g) + (1 + x + w | h) + (0 + w | g)",
    "no fixed effects": "y ~ 0 + (1 | g) + (1 | h)",
    "batched (q = 7)": "y ~ x * w + (1 + x + w + x:w | g) + (0 + x + w + x:w | g) + (1 | h)",
}


@pytest.mark.parametrize(
    ("formula", "layout"),
    [(formula, "nested") for formula in NESTED.values()]
    + [(formula, "crossed") for formula in CROSSED.values()],
    ids=[f"nested, {name}" for name in NESTED] + [f"crossed, {name}" for name in CROSSED],
)
def test_loglik_equals_the_dense_multivariate_normal(formula: str, layout: str) -> None:
    design = mixed_design(formula, _nested_data() if layout == "nested" else simulated_data())
    beta, sigma, covs = _parameters(design)
    stats = gaussian_stats(design)
    assert stats.layout == layout
    value = float(gaussian_marginal_loglik(stats, beta, sigma, covs).eval(mode=MODE))
    brute = multivariate_normal(design.x @ beta, _marginal_cov(design, sigma, covs)).logpdf(design.y)
    np.testing.assert_allclose(value, brute, rtol=RTOL)
    dense = gaussian_marginal_loglik(gaussian_stats(design, "dense"), beta, sigma, covs).eval(mode=MODE)
    np.testing.assert_allclose(value, dense, rtol=RTOL)
    chols = [np.linalg.cholesky(c) for c in covs]
    given = gaussian_marginal_loglik(stats, beta, sigma, chols=chols).eval(mode=MODE)
    np.testing.assert_allclose(given, value, rtol=1e-12)


@pytest.mark.parametrize(
    "formula", [NESTED["slopes at both"], NESTED["three levels, slope below"], NESTED["batched (d = 7)"]]
)
def test_nested_gradient_equals_the_dense_gradient(formula: str) -> None:
    _check_gradient(mixed_design(formula, _nested_data()), None)


def _check_gradient(design: MixedDesign, layout: str | None) -> None:
    """pytensor.grad of the log-likelihood in every parameter equals the dense layout's."""
    beta_value, sigma_value, covs = _parameters(design, seed=8)
    beta, sigma = pt.vector("beta"), pt.scalar("sigma")
    chols = [pt.matrix(f"chol{k}") for k in range(len(covs))]
    inputs = [beta, sigma, *chols]
    values = [beta_value, sigma_value, *[np.linalg.cholesky(c) for c in covs]]
    gradients = []
    for which in (layout, "dense"):
        loglik = gaussian_marginal_loglik(gaussian_stats(design, which), beta, sigma, chols=chols)
        function = pytensor.function(inputs, pt.grad(loglik, inputs), mode=MODE)
        gradients.append(function(*values))
    for nested, dense in zip(*gradients, strict=True):
        np.testing.assert_allclose(nested, dense, rtol=1e-8, atol=1e-10 * np.abs(dense).max())


@pytest.mark.parametrize("formula", [CROSSED["two blocks of the largest"], CROSSED["batched (q = 7)"]])
def test_crossed_gradient_equals_the_dense_gradient(formula: str) -> None:
    design = mixed_design(formula, simulated_data())
    _check_gradient(design, "crossed")


def test_nesting_is_read_from_the_data() -> None:
    data = _nested_data()
    # unique class labels: nested without the / syntax, whatever the order of the terms
    design = mixed_design("y ~ x + (1 | class_id) + (1 + x | school)", data)
    hierarchy = grouping_hierarchy(design)
    assert hierarchy.factors == ("school", "class_id")
    assert hierarchy.blocks == ((1,), (0,))
    stats = gaussian_stats(design)
    assert stats.layout == "nested" and stats.columns == (1, 0) and stats.level_effects == (2, 1)
    beta, sigma, covs = _parameters(design)
    brute = multivariate_normal(design.x @ beta, _marginal_cov(design, sigma, covs)).logpdf(design.y)
    np.testing.assert_allclose(
        gaussian_marginal_loglik(stats, beta, sigma, covs).eval(mode=MODE), brute, rtol=RTOL
    )
    # class labels that restart in every school: class "c0" spans schools, so school and class are crossed
    crossed = mixed_design("y ~ x + (1 | school) + (1 | class)", data)
    assert grouping_hierarchy(crossed) is None
    assert gaussian_stats(crossed).layout == "crossed"
    with pytest.raises(ValueError, match="does not fit"):
        gaussian_stats(crossed, "nested")


def _large_crossed(seed: int = 6) -> pd.DataFrame:
    """400 subjects and 160 items, each row a random pair."""
    rng = np.random.default_rng(seed)
    n = 3000
    subject = np.concatenate([np.arange(400), rng.integers(0, 400, n - 400)])
    item = np.concatenate([np.arange(160), rng.integers(0, 160, n - 160)])
    return pd.DataFrame({"y": rng.normal(size=n), "subject": subject.astype(str), "item": item.astype(str)})


def test_method_is_chosen_from_the_grouping_factors() -> None:
    nested = mixed_design(NESTED["three levels"], _nested_data())
    assert choose_method(nested) == ("marginal", "marginal (nested Woodbury)")
    single = mixed_design("y ~ x + (1 + x | school)", _nested_data())
    assert choose_method(single) == ("marginal", "marginal (Woodbury per cluster)")
    crossed = mixed_design("y ~ x + (1 | g) + (1 | h)", simulated_data())
    assert choose_method(crossed) == ("marginal", "marginal (crossed factors, partial Woodbury)")
    assert build_mixed_model(crossed).likelihood == "marginal (crossed factors, partial Woodbury)"
    assert build_mixed_model(crossed, method="latent").likelihood == "latent"
    # 400 subjects integrated out one by one, each coupled to 160 items: too costly, so sampled
    large = mixed_design("y ~ 1 + (1 | subject) + (1 | item)", _large_crossed())
    assert crossed_cost(large) == 400 * 160**2 + 160**3 > CROSSED_COST_MAX
    assert choose_method(large) == ("latent", "latent (crossed factors)")
    spec = build_mixed_model(large)
    assert spec.method == "latent" and spec.likelihood == "latent (crossed factors)"
    forced = build_mixed_model(large, method="marginal")
    assert forced.likelihood == "marginal (crossed factors, partial Woodbury)"
    assert build_mixed_model(nested).likelihood == "marginal (nested Woodbury)"
    dense = build_mixed_model(nested, method="marginal", layout="dense")
    assert dense.likelihood == "marginal (dense Cholesky)"


@pytest.mark.parametrize(
    ("formula", "data", "extra"),
    [
        (NESTED["three levels, slope below"], _nested_data, "stats__parent1"),
        (CROSSED["two blocks of the largest"], simulated_data, "stats__cross"),
    ],
    ids=["nested", "crossed"],
)
def test_compiled_model_density_equals_the_dense_layouts(formula: str, data, extra: str) -> None:
    """The PyMC model (statistics, parent maps, cross products as pm.Data) has the dense layout's density."""
    design = mixed_design(formula, data())
    spec = build_mixed_model(design)
    dense = build_mixed_model(design, method="marginal", layout="dense")
    point = {name: np.asarray(value) + 0.1 for name, value in spec.model.initial_point().items()}
    value = spec.model.compile_logp(mode=MODE)(point)
    np.testing.assert_allclose(value, dense.model.compile_logp(mode=MODE)(point), rtol=RTOL)
    # the parent maps and cross products are data: a refit on new data of the same shapes swaps them
    assert any(var.name == extra for var in spec.model.data_vars)


def testmodel_cache_key_tells_nested_from_crossed() -> None:
    """Same formula, levels and rows: nested and crossed data must not share a compiled model."""
    data = _nested_data()
    nested = build_mixed_model(mixed_design("y ~ x + (1 | school) + (1 | class_id)", data), method="marginal")
    shuffled = data.assign(class_id=data["class_id"].sample(frac=1.0, random_state=1).to_numpy())
    design = mixed_design("y ~ x + (1 | school) + (1 | class_id)", shuffled)
    assert grouping_hierarchy(design) is None
    crossed = build_mixed_model(design, method="marginal")
    assert model_cache_key(nested) != model_cache_key(crossed)
    # the latent graph does not depend on how the method was chosen (a refit passes method= explicitly)
    large = mixed_design("y ~ 1 + (1 | subject) + (1 | item)", _large_crossed())
    assert model_cache_key(build_mixed_model(large)) == model_cache_key(
        build_mixed_model(large, method="latent")
    )


# ------------------------------------------------------------------------ cluster effects, pointwise
@pytest.mark.parametrize("formula", [NESTED["slope below"], NESTED["three levels, slope below"]])
def test_conditional_effects_are_the_blups(formula: str) -> None:
    design = mixed_design(formula, _nested_data())
    beta, sigma, covs = _parameters(design)
    stats = gaussian_stats(design)
    ours = flat_effects(conditional_effects(stats, beta[None], np.array([sigma]), [c[None] for c in covs]))[0]
    mean, cov = closed_form(design, beta, sigma, covs)
    np.testing.assert_allclose(ours, mean, rtol=1e-8, atol=1e-10 * np.abs(mean).max())
    # the chain covariance of each lowest cluster is the matching block of Cov(u | y), up to Lambda
    lam, rhs = lambda_and_rhs(stats, beta[None], np.array([sigma**2]), block_factors([c[None] for c in covs]))
    chain = nested_solve(stats, lam, np.array([sigma**2]), rhs).chain_covariance()[0]
    lam = lam[0]
    hierarchy = grouping_hierarchy(design)
    offsets = np.cumsum([0] + [n * q for n, q in stats.sizes])
    lowest = hierarchy.codes[-1]
    for row in (0, design.nobs - 1):
        index = []  # positions in Z's columns of this row's chain of effects, in the order of stats.columns
        for k in stats.columns:
            q = stats.sizes[k][1]
            index += list(offsets[k] + design.blocks[k].codes[row] * q + np.arange(q))
        expected = cov[np.ix_(index, index)]
        np.testing.assert_allclose(lam @ chain[lowest[row]] @ lam.T, expected, rtol=1e-8, atol=1e-12)


def test_conditional_draws_have_the_conditional_covariance() -> None:
    design = mixed_design(NESTED["three levels"], _nested_data())
    check_draws(lambda: (design, *_parameters(design)))


@pytest.mark.parametrize("formula", [CROSSED["two factors"], CROSSED["two blocks of the largest"]])
def test_crossed_conditional_effects(formula: str) -> None:
    """Means (BLUPs) and draws of the crossed layout, and the dense layout's means."""
    design = mixed_design(formula, simulated_data())
    assert gaussian_stats(design).layout == "crossed"
    check_means(lambda: (design, *_parameters(design)))
    check_draws(lambda: (design, *_parameters(design)))
    beta, sigma, covs = _parameters(design)
    dense = conditional_effects(
        gaussian_stats(design, "dense"), beta[None], np.array([sigma]), [c[None] for c in covs]
    )
    mean, _ = closed_form(design, beta, sigma, covs)
    np.testing.assert_allclose(flat_effects(dense)[0], mean, rtol=1e-8, atol=1e-10 * np.abs(mean).max())


@pytest.mark.parametrize("formula", [CROSSED["two factors"], CROSSED["batched (q = 7)"]])
def test_crossed_total_loglik(formula: str) -> None:
    design = mixed_design(formula, simulated_data())
    spec = build_mixed_model(design, method="marginal")
    beta, sigma, covs = _draws(design)
    total = gaussian_total_loglik(spec, beta, sigma, covs)
    for s in range(2):
        cov = _marginal_cov(design, sigma[s], [c[s] for c in covs])
        full = multivariate_normal(design.x @ beta[s], cov).logpdf(design.y)
        np.testing.assert_allclose(total[s], full, rtol=RTOL)


def _draws(design: MixedDesign, n: int = 2) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(9)
    beta = rng.normal(size=(n, len(design.fixed_names)))
    sigma = np.array([0.7, 1.3])[:n]
    covs = [np.stack([random_cov(block.q, rng) for _ in range(n)]) for block in design.blocks]
    return beta, sigma, covs


@pytest.mark.parametrize(
    "formula",
    [
        NESTED["slopes at both"],
        NESTED["three levels, slope below"],
        NESTED["batched (d = 7)"],  # seven effects in each chain of clusters
        NESTED["no fixed effects"],
    ],
)
def test_pointwise_loglik_of_nested_factors(formula: str) -> None:
    design = mixed_design(formula, _nested_data())
    spec = build_mixed_model(design)
    assert mixed_default_unit(spec) == "cluster"
    beta, sigma, covs = _draws(design)
    per_school = gaussian_cluster_loglik(spec, beta, sigma, covs)
    per_row = gaussian_observation_loglik(spec, beta, sigma, covs)
    total = gaussian_total_loglik(spec, beta, sigma, covs)
    school = grouping_hierarchy(design).codes[0]
    for s in range(2):
        cov = _marginal_cov(design, sigma[s], [c[s] for c in covs])
        mean = design.x @ beta[s]
        full = multivariate_normal(mean, cov).logpdf(design.y)
        np.testing.assert_allclose(total[s], full, rtol=RTOL)
        np.testing.assert_allclose(per_school[s].sum(), full, rtol=RTOL)
        for j in (0, 3):
            rows = np.flatnonzero(school == j)
            own = multivariate_normal(mean[rows], cov[np.ix_(rows, rows)]).logpdf(design.y[rows])
            np.testing.assert_allclose(per_school[s, j], own, rtol=RTOL)
        for i in (0, 9, design.nobs - 1):
            keep = np.delete(np.arange(design.nobs), i)
            rest = multivariate_normal(mean[keep], cov[np.ix_(keep, keep)]).logpdf(design.y[keep])
            np.testing.assert_allclose(per_row[s, i], full - rest, rtol=RTOL)


def test_latent_crossed_fit_has_ranef_pointwise_loglik_and_dic() -> None:
    """A crossed model sampled with explicit effects: the tools that read parameters still work."""
    design = mixed_design("y ~ x + (1 | g) + (1 | h)", simulated_data())
    spec = build_mixed_model(design, method="latent")
    # each row's level is data, as the design matrices are: a reused compiled model gets the new data's
    names = {var.name for var in spec.model.data_vars}
    assert {"codes__g", "codes__h", "z_design__g", "z_design__h"} <= names
    rng = np.random.default_rng(2)
    shape = (2, 5)
    posterior = xr.Dataset(
        {
            "fixef": (("chain", "draw", "term"), rng.normal(size=(*shape, 2))),
            "sigma": (("chain", "draw"), rng.uniform(0.8, 1.2, size=shape)),
            **{
                f"sd__{label}": (("chain", "draw", f"{label}__effect"), rng.uniform(0.3, 0.6, (*shape, 1)))
                for label in spec.labels
            },
            **{
                f"u__{label}": (
                    ("chain", "draw", f"{label}__level", f"{label}__effect"),
                    rng.normal(size=(*shape, b.n_levels, 1)),
                )
                for label, b in zip(spec.labels, design.blocks, strict=True)
            },
        }
    )
    fit = MixedFit(spec, SimpleNamespace(posterior=posterior), sampler="nutpie", chains=2, draws=5, tune=0)
    assert fit.method == "latent"
    effects = fit.ranef()
    assert set(effects) == {"g", "h"}
    np.testing.assert_allclose(
        effects["h"].to_numpy()[:, 0], posterior["u__h"].mean(("chain", "draw")).values[:, 0]
    )
    assert mixed_default_unit(spec) == "observation"
    assert mixed_fit_pointwise(fit, "observation").values.shape == (10, design.nobs)
    assert np.isfinite(fit.dic().dic)
