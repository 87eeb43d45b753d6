"""The IRT engine family (:mod:`pymlsem.engine.irt`) against each model's own PyMC graph: log-density,
gradient and constrained values at random points, with and without clusters, binary and ordinal items
(graded response), missing answers and several grid sizes. The family is called through its compiled C
callbacks (what nutpie calls; compiled by the suite's warm-up, loaded from the disk cache)."""

from __future__ import annotations

import numpy as np
import pytensor
import pytest
from graphs import AS_WRITTEN

from pymlsem.datasets.designs import two_level_irt
from pymlsem.engine.compiled import load_family
from pymlsem.engine.irt import bind
from pymlsem.engine.run import family_user_data
from pymlsem.irt.data import irt_data
from pymlsem.irt.model import IRTStructure, build_irt_model, parameter_names
from tests.engine.test_engine import engine_at

BINARY = [f"y{k}" for k in range(1, 7)]
MIXED = ["y1", "o1", "y2", "o2", "y3", "o3"]
STRUCTURES = {
    "binary, single level, 21 points": (BINARY, 21, False),
    "binary, two levels, 61 points": (BINARY, 61, True),
    "binary, two levels, 15 points": (BINARY, 15, True),
    "binary and ordinal, two levels, 61 points": (MIXED, 61, True),
    "ordinal, single level, 31 points": (["o1", "o2", "o3"], 31, False),
}


def _frame():
    """12 clusters of 4 persons, six binary items and three ordinal ones (3, 5 and 3 categories), some
    answers missing."""
    frame = two_level_irt(n_items=6, n_clusters=12, cluster_size=4, seed=3, link="logit").data.copy()
    rng = np.random.default_rng(2)
    for name, count in (("o1", 3), ("o2", 5), ("o3", 3)):
        frame[name] = rng.integers(0, count, len(frame))
    frame.loc[[2, 7], "o2"] = np.nan
    frame.loc[[5, 6], "y2"] = np.nan
    frame.loc[[9, 30], "y5"] = np.nan
    frame.loc[30, "y1"] = np.nan
    return frame


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_family_equals_the_models_own_graph(name: str) -> None:
    items, n_nodes, multilevel = STRUCTURES[name]
    data = irt_data(_frame(), items, "cluster" if multilevel else None)
    structure = IRTStructure(n_nodes, multilevel)
    model = build_irt_model(data, structure)
    binding = bind(data, structure)
    family = load_family("irt")
    _arrays, user_data = family_user_data(binding, family)  # the arrays must outlive every call
    with pytensor.config.change_flags(mode=AS_WRITTEN):  # Python thunks: nothing compiled, no C thunks
        logp, dlogp = model.compile_logp(), model.compile_dlogp()
        values = model.replace_rvs_by_values(model.free_RVs)
        constrained = model.compile_fn(values, inputs=model.value_vars, point_fn=True)
        initial = model.initial_point()
    names = [value.name for value in model.value_vars]
    assert binding.n_dim == sum(initial[n].size for n in names)
    rng = np.random.default_rng(len(name))
    for _ in range(3):
        x = rng.normal(0.0, 1.0, size=binding.n_dim)
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
