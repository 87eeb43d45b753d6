"""The ordered answers' one-pass operation (latent engine families) against scipy and the graphs' terms."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from graphs import AS_WRITTEN
from pytensor.gradient import NullTypeGradError
from scipy import stats

from pymlsem.build.categorical import category_loglik
from pymlsem.build.category_terms import KINDS, CategoryTerms, category_terms

TAU = np.array([-1.0, 0.2, 1.5])
DISTRIBUTIONS = {"probit": stats.norm, "logit": stats.logistic}


def _answers(eta: np.ndarray, n_columns: int = 3, seed: int = 0):
    """A 4-category item answered in every category at linear predictors ``eta`` (rows x columns), one
    answer in ten missing, and the table: a padding row, then the thresholds."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=eta.shape)
    codes[rng.random(eta.shape) < 0.1] = -1
    rows = np.concatenate([[7.0], TAU])  # row 0 is never a category's threshold
    below = np.where(codes >= 1, codes, 0)  # the table row of tau_c (row c) below category c
    above = np.where((codes >= 0) & (codes <= 2), codes + 1, 0)
    kind = np.select(
        [codes < 0, codes == 0, codes == 3],
        [KINDS["missing"], KINDS["first"], KINDS["last"]],
        KINDS["middle"],
    )
    return codes, rows, below, above, kind


def _scipy_loglik(eta: np.ndarray, codes: np.ndarray, dist) -> np.ndarray:
    """log(F(upper) - F(lower)) of each answer (0 where missing), on the side that keeps precision."""
    ext = np.concatenate([[-np.inf], TAU, [np.inf]])
    at = np.maximum(codes, 0)
    lower, upper = ext[at] - eta, ext[at + 1] - eta
    p = np.where(lower + upper > 0, dist.sf(lower) - dist.sf(upper), dist.cdf(upper) - dist.cdf(lower))
    with np.errstate(divide="ignore"):
        return np.where(codes >= 0, np.log(p), 0.0)


def _graph_terms(eta, rows, below, above, kind, link: str) -> pt.TensorVariable:
    """The same sum from the per-model graphs' elementwise terms (differentiated by PyTensor)."""
    middle, last = pt.eq(kind, KINDS["middle"]), pt.eq(kind, KINDS["last"])
    value = category_loglik(rows[below] - eta, rows[above] - eta, last, middle, link)
    return pt.sum(pt.switch(pt.neq(kind, KINDS["missing"]), value, 0.0))


@pytest.mark.parametrize("link", ["probit", "logit"])
@pytest.mark.parametrize("mode", ["NUMBA", AS_WRITTEN], ids=["numba", "as-written"])
def test_value_equals_scipy_and_gradient_equals_the_graphs(link: str, mode: str) -> None:
    # linear predictors from moderate to far in both tails, where the operation switches from differences of
    # CDFs to differences of log-CDFs; as written, the graph runs the operation's Python side (perform)
    rng = np.random.default_rng(1)
    eta = np.concatenate([3.0 * rng.normal(size=150), np.linspace(-60.0, 60.0, 30)]).reshape(60, 3)
    codes, rows, below, above, kind = _answers(eta)
    e, r = pt.dmatrix("eta"), pt.dvector("rows")
    value = CategoryTerms(link)(e, r, below, above, kind)[0]
    f = pytensor.function([e, r], [value, *pytensor.grad(value, [e, r])], mode=mode)
    got, grad_eta, grad_rows = f(eta, rows)
    expected = _scipy_loglik(eta, codes, DISTRIBUTIONS[link])
    held = expected > -700.0  # beyond, scipy's difference of two normal CDFs underflows
    assert held.sum() > 150 and (link == "logit" or (~held).any())
    assert np.isfinite(got) and np.all(np.isfinite(grad_eta)) and np.all(np.isfinite(grad_rows))
    # the answers scipy holds: each one's term through a one-answer call
    each = np.array(
        [
            category_terms(
                eta[i : i + 1], rows, below[i : i + 1], above[i : i + 1], kind[i : i + 1], link == "probit"
            )[0]
            for i in range(60)
        ]
    )
    rows_held = held.all(axis=1)
    np.testing.assert_allclose(each[rows_held], expected[rows_held].sum(axis=1), rtol=1e-11, atol=1e-14)
    reference = _graph_terms(e, r, below, above, kind, link)
    g = pytensor.function([e, r], [reference, *pytensor.grad(reference, [e, r])], mode=AS_WRITTEN)
    want, want_eta, want_rows = g(eta, rows)
    assert got == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(grad_eta, want_eta, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(grad_rows, want_rows, rtol=1e-10)
    assert grad_rows[0] == 0.0  # the padding row is never a threshold
    assert np.all(grad_eta[codes < 0] == 0.0)


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_gradient_equals_finite_differences(link: str) -> None:
    rng = np.random.default_rng(2)
    eta = rng.normal(size=(40, 2))
    _, rows, below, above, kind = _answers(eta, seed=3)
    probit = link == "probit"
    _, grad_eta, grad_rows = category_terms(eta, rows, below, above, kind, probit)
    h = 1e-6
    for i, k in [(0, 0), (5, 1), (17, 0), (33, 1)]:
        step = np.zeros_like(eta)
        step[i, k] = h
        difference = (
            category_terms(eta + step, rows, below, above, kind, probit)[0]
            - category_terms(eta - step, rows, below, above, kind, probit)[0]
        )
        assert float(difference) / (2 * h) == pytest.approx(grad_eta[i, k], rel=1e-6, abs=1e-9)
    for j in range(1, 4):
        step = np.zeros_like(rows)
        step[j] = h
        difference = (
            category_terms(eta, rows + step, below, above, kind, probit)[0]
            - category_terms(eta, rows - step, below, above, kind, probit)[0]
        )
        assert float(difference) / (2 * h) == pytest.approx(grad_rows[j], rel=1e-6)


def test_close_thresholds_agree_with_the_graphs_terms() -> None:
    # a middle category 1e-9 wide: both forms lose the same digits (a relative 1e-16 / 1e-9 of P), so they
    # agree to about 1e-7 in log P
    rows = np.array([0.3, 0.3 + 1e-9])
    eta = np.array([[0.0], [3.0], [-3.0]])
    below, above = np.zeros((3, 1), dtype=np.int64), np.ones((3, 1), dtype=np.int64)
    kind = np.full((3, 1), KINDS["middle"])
    value, grad_eta, _ = category_terms(eta, rows, below, above, kind, True)
    e = pt.dmatrix("eta")
    reference = _graph_terms(e, pt.as_tensor(rows), below, above, kind, "probit")
    want, want_eta = pytensor.function([e], [reference, pytensor.grad(reference, e)], mode=AS_WRITTEN)(eta)
    assert float(value) == pytest.approx(float(want), abs=3e-6)
    np.testing.assert_allclose(grad_eta, want_eta, rtol=1e-6)


def test_many_unlikely_answers_sum_without_underflow() -> None:
    # 4,000 answers of probability ~1e-4 to ~1e-40 each: their product underflows many times over, so the
    # operation must fold it into the sum of logs as it goes
    rng = np.random.default_rng(4)
    eta = np.concatenate([rng.uniform(-14.0, -4.0, size=(1000, 2)), rng.uniform(4.0, 14.0, size=(1000, 2))])
    codes = np.concatenate([np.full((1000, 2), 3), np.full((1000, 2), 0)])  # far from the likely category
    codes[::7, 0] = 2  # some middle ones too
    rows = np.concatenate([[7.0], TAU])
    below, above = np.maximum(codes, 1), np.minimum(codes + 1, 3)
    kind = np.select([codes == 0, codes == 3], [KINDS["first"], KINDS["last"]], KINDS["middle"])
    value, grad_eta, _ = category_terms(eta, rows, below, above, kind, True)
    expected = _scipy_loglik(eta, codes, stats.norm)
    assert expected.sum() < -1e5
    assert float(value) == pytest.approx(expected.sum(), rel=1e-13)
    assert np.all(np.isfinite(grad_eta))


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_a_nan_or_infinite_linear_predictor_is_a_value(link: str) -> None:
    # a sampler's proposal can overflow to NaN: the value is NaN, never a read outside the tables
    eta = np.array([[0.3, np.nan, -0.2], [np.nan, 1.0, np.inf]])
    rows = np.concatenate([[7.0], TAU])
    kind = np.array([[KINDS["first"], KINDS["middle"], KINDS["last"]], [KINDS["last"], KINDS["middle"], 1]])
    value, _, _ = category_terms(eta, rows, np.ones_like(kind), np.full_like(kind, 2), kind, link == "probit")
    assert np.isnan(value)
    # an infinite one gives the first category probability 0: -inf, not an error
    first = np.full((1, 1), KINDS["first"])
    value, _, _ = category_terms(np.full((1, 1), np.inf), rows, first, first, first, link == "probit")
    assert value == -np.inf


def test_second_derivatives_are_refused() -> None:
    e = pt.dmatrix("eta")
    one = np.zeros((2, 1), dtype=np.int64)
    value = CategoryTerms("probit")(e, pt.as_tensor(np.array([0.0])), one, one, one + KINDS["first"])[0]
    with pytest.raises(NullTypeGradError, match="is not implemented"):
        pytensor.grad(pytensor.grad(value, e).sum(), e)


def test_unknown_link_is_refused() -> None:
    with pytest.raises(ValueError, match="link must be"):
        CategoryTerms("cauchit")
