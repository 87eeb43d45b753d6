"""The latent class engine family (:mod:`pymlsem.engine.latent_class`) against each model's own PyMC graph:
log-density, gradient and constrained values at random points, for single-level and multilevel models
with binary, ordinal and continuous items and missing answers. The family is called through its compiled
C callbacks (what nutpie calls; compiled by the suite's warm-up, loaded from the disk cache)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytest
from graphs import AS_WRITTEN

from pymlsem.datasets.designs import multilevel_latent_classes
from pymlsem.engine.compiled import load_family
from pymlsem.engine.latent_class import bind
from pymlsem.engine.run import family_user_data
from pymlsem.latent_class.data import lca_data
from pymlsem.latent_class.model import LCAStructure, build_lca_model, parameter_names
from tests.engine.test_engine import engine_at

STRUCTURES = {
    "single level, 2 classes": (2, 1, False),
    "multilevel, 3 classes, 2 cluster classes": (3, 2, True),
    "multilevel, 2 classes, 3 cluster classes": (2, 3, True),
    "multilevel, 1 class": (1, 2, True),
}


def _frame() -> pd.DataFrame:
    """12 clusters of 4: four binary items, one with three categories, a continuous item; answers missing."""
    frame = multilevel_latent_classes(seed=3, n_clusters=12, cluster_size=4).data.copy()
    rng = np.random.default_rng(5)
    frame["c1"] = rng.normal(2.0, 3.0, size=len(frame))
    frame.loc[[3, 17], "c1"] = np.nan
    frame.loc[[5, 6], "y2"] = np.nan
    frame.loc[9, "y5"] = np.nan
    return frame


def _model_functions(model):
    with pytensor.config.change_flags(mode=AS_WRITTEN):  # Python thunks: nothing compiled, no C thunks
        logp, dlogp = model.compile_logp(), model.compile_dlogp()
        values = model.replace_rvs_by_values(model.free_RVs)  # the transforms' backward of the point
        constrained = model.compile_fn(values, inputs=model.value_vars, point_fn=True)
    return logp, dlogp, constrained


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_family_equals_the_models_own_graph(name: str) -> None:
    k, m, multilevel = STRUCTURES[name]
    data = lca_data(_frame(), ["y1", "y2", "y3", "y4", "y5", "c1"], "cluster" if multilevel else None, ["c1"])
    structure = LCAStructure(k, m, multilevel)
    model = build_lca_model(data, structure)
    binding = bind(data, structure)
    family = load_family("lca")
    _arrays, user_data = family_user_data(binding, family)  # the arrays must outlive every call
    logp, dlogp, constrained = _model_functions(model)
    with pytensor.config.change_flags(mode=AS_WRITTEN):
        initial = model.initial_point()
    names = [value.name for value in model.value_vars]
    assert binding.n_dim == sum(initial[n].size for n in names)
    rng = np.random.default_rng(len(name))
    for _ in range(3):
        x = rng.normal(0.0, 1.5, size=binding.n_dim)
        point, start = {}, 0
        for n in names:
            point[n] = x[start : start + initial[n].size].reshape(initial[n].shape)
            start += initial[n].size
        value, grad, expanded = engine_at(family, user_data, binding.n_dim + binding.n_derived, x)
        np.testing.assert_allclose(value, logp(point), rtol=1e-12)
        np.testing.assert_allclose(grad, dlogp(point), rtol=1e-9, atol=1e-10)
        np.testing.assert_array_equal(expanded[: x.size], x)
        values = dict(zip([rv.name for rv in model.free_RVs], constrained(point), strict=True))
        flat = np.concatenate([np.ravel(values[n]) for n in parameter_names(data, structure)])
        np.testing.assert_allclose(expanded[x.size :], flat, rtol=1e-12)
