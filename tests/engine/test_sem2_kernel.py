"""The hand-written kernel of the two-level SEM family equals the family's graph (its specification).

Every model of the engine corpus whose family is ``sem2`` is also checked through the compiled kernel against
its own PyMC graph (tests/engine/test_engine.py); here the kernel is compared with the family's PyTensor
graph directly, including where a covariance is not positive definite.
"""

from __future__ import annotations

import numpy as np
import pytest
from reference import SEED, data

import pymlsem
from pymlsem.engine.run import engine_binding
from pymlsem.engine.sem import family_inputs, segments
from pymlsem.engine.sem2_kernel import SEGMENTS, expand, logp_grad
from tests.engine.test_engine import graph_at

#: three within-level correlations: with two of them at 0.95 and one at -0.95 no covariance matrix has them
CORRELATED = """
level: 1
  y1 ~~ y2
  y1 ~~ y3
  y2 ~~ y3
level: 2
  y1 ~~ y1
  y2 ~~ y2
  y3 ~~ y3
"""


def _kernel_at(binding, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    arrays = [np.asarray(binding.data[name], dtype=dtype) for name, dtype, _ in family_inputs("sem2")]
    logp, grad = logp_grad(x, *arrays)
    (expanded,) = expand(x, *arrays)
    return float(logp), grad, expanded


def _binding(model: str):
    binding, why = engine_binding(pymlsem.SEM(model, data("Demo.twolevel"), cluster="cluster"))
    assert binding is not None and binding.family == "sem2", why
    return binding


def test_the_kernel_reads_the_familys_segments() -> None:
    assert SEGMENTS == segments("sem2")


def test_the_kernel_equals_the_family_graph() -> None:
    binding = _binding(SEED)
    rng = np.random.default_rng(3)
    for _ in range(3):
        x = rng.normal(0.0, 0.5, binding.n_dim)
        logp, grad, expanded = _kernel_at(binding, x)
        graph_logp, graph_grad, graph_expanded = graph_at(binding, x)
        assert np.isfinite(logp)
        assert logp == pytest.approx(graph_logp, rel=1e-10)
        np.testing.assert_allclose(grad, graph_grad, rtol=1e-8, atol=1e-8 * np.abs(graph_grad).max())
        np.testing.assert_allclose(expanded, graph_expanded, rtol=1e-12)


def test_a_covariance_that_is_not_positive_definite_gives_minus_infinity() -> None:
    binding = _binding(CORRELATED)
    ints, offsets = binding.data["ints"], binding.data["offsets"]
    beta = ints[offsets[2] : offsets[3]]  # the correlations' positions (beta priors)
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
