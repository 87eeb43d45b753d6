"""The check both hand-written kernel families without a model spec (``lca``, ``irt``) run against a
model's own PyMC graph: log-density, gradient and constrained values at random points, through the family's
compiled C callbacks (what nutpie calls)."""

from __future__ import annotations

import numpy as np
from graphs import python_thunks

from pymlsem.engine.compiled import load_family
from pymlsem.engine.run import family_user_data
from tests.engine.test_engine import engine_at

__all__ = ["check_family_equals_graph"]


def check_family_equals_graph(model, binding, variables: list[str], seed: int, spread: float) -> None:
    """Three random points ``N(0, spread^2)``: the family's value equals the graph's ``logp`` to 1e-12
    relative, its gradient ``dlogp`` to 1e-9, its expanded values the point and then the constrained
    ``variables`` (the model's free variables in the family's order) to 1e-12."""
    family = load_family(binding.family)
    _arrays, user_data = family_user_data(binding, family)  # the arrays must outlive every call
    with python_thunks():  # nothing compiled
        logp, dlogp = model.compile_logp(), model.compile_dlogp()
        values = model.replace_rvs_by_values(model.free_RVs)  # the transforms' backward of the point
        constrained = model.compile_fn(values, inputs=model.value_vars, point_fn=True)
        initial = model.initial_point()
    names = [value.name for value in model.value_vars]
    assert binding.n_dim == sum(initial[n].size for n in names)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        x = rng.normal(0.0, spread, size=binding.n_dim)
        point, start = {}, 0
        for n in names:
            point[n] = x[start : start + initial[n].size].reshape(initial[n].shape)
            start += initial[n].size
        value, grad, expanded = engine_at(family, user_data, binding.n_dim + binding.n_derived, x)
        np.testing.assert_allclose(value, logp(point), rtol=1e-12)
        np.testing.assert_allclose(grad, dlogp(point), rtol=1e-9, atol=1e-10)
        np.testing.assert_array_equal(expanded[: x.size], x)
        by_name = dict(zip([rv.name for rv in model.free_RVs], constrained(point), strict=True))
        flat = np.concatenate([np.ravel(by_name[n]) for n in variables])
        np.testing.assert_allclose(expanded[x.size :], flat, rtol=1e-12)
