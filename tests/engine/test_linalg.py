"""The kernels' loop-written matrix helpers (pymlsem.engine.kernels.linalg) against NumPy, called through
:func:`pymlsem.engine.kernels.callable_from_python` (they are compiled for calls from compiled code only)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from pymlsem.engine.kernels import callable_from_python
from pymlsem.engine.kernels import linalg as compiled_only

#: the helpers as Python calls them
linalg = SimpleNamespace(
    **{name: callable_from_python(getattr(compiled_only, name)) for name in compiled_only.__all__}
)


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_products_equal_numpys(rng) -> None:
    a, b, c = rng.normal(size=(4, 3)), rng.normal(size=(3, 5)), rng.normal(size=(6, 3))
    u, v, w = rng.normal(size=3), rng.normal(size=4), rng.normal(size=3)
    np.testing.assert_allclose(linalg.matmul(a, b), a @ b, rtol=1e-13)
    np.testing.assert_allclose(linalg.matmul_tn(c, c), c.T @ c, rtol=1e-13)
    np.testing.assert_allclose(linalg.matmul_nt(a, c), a @ c.T, rtol=1e-13)
    np.testing.assert_allclose(linalg.matvec(a, u), a @ u, rtol=1e-13)
    np.testing.assert_allclose(linalg.vecmat(v, a), v @ a, rtol=1e-13)
    np.testing.assert_allclose(linalg.outer(u, v), np.outer(u, v), rtol=1e-13)
    assert linalg.dot(u, w) == pytest.approx(u @ w, rel=1e-13)


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 8, 1663])
def test_sums_in_partial_sums_cover_every_element(rng, size) -> None:
    # four partial sums, then the elements left over: every length, whole groups of four or not
    u, v = rng.normal(size=size), rng.normal(size=size)
    assert linalg.dot(u, v) == pytest.approx(u @ v, rel=1e-12, abs=1e-12)
    assert linalg.vector_sum(u) == pytest.approx(u.sum(), rel=1e-12, abs=1e-12)
    assert linalg.dot(u[::2], v[::2]) == pytest.approx(u[::2] @ v[::2], rel=1e-12, abs=1e-12)  # strided


def test_inverse_pivots_and_marks_a_singular_matrix(rng) -> None:
    a = rng.normal(size=(5, 5))
    np.testing.assert_allclose(linalg.inverse(a), np.linalg.inv(a), rtol=1e-10, atol=1e-12)
    needs_pivot = np.array([[0.0, 2.0, 1.0], [1.0, 0.0, 3.0], [4.0, 1.0, 0.0]])  # zero diagonal
    np.testing.assert_allclose(linalg.inverse(needs_pivot) @ needs_pivot, np.eye(3), atol=1e-14)
    assert linalg.inverse(np.zeros((0, 0))).shape == (0, 0)
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    assert np.isnan(linalg.inverse(singular)).all()
