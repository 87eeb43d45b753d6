"""Ordered (binary/ordinal) indicators: parameter table, threshold priors, likelihood, data codes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import special, stats

from pymlsem.build.categorical import (
    BoundedOrdered,
    category_loglik,
    increasing_initial_values,
    interval_loglik,
    ordinal_loglik,
    ordinal_probabilities,
)
from pymlsem.build.log_ndtr import SMALLEST_FACTOR, erfcx_scalar, log_ndtr, log_ndtr_scalar, ndtr_factors
from pymlsem.build.parameters import collect_free_parameters, make_random_variables, parameter_class
from pymlsem.data.categorical import category_counts, ordinal_codes
from pymlsem.exceptions import DataError, ModelSpecificationError, PriorError
from pymlsem.partable import build_partable
from pymlsem.priors import DEFAULT_PRIORS, resolve_prior
from pymlsem.syntax import parse_model

CFA = "f =~ y1 + y2 + y3 + y4"
TWO_LEVEL = """
level: 1
    fw =~ y1 + y2 + y3
level: 2
    fb =~ y1 + y2 + y3 + w
"""


def _row(table: pd.DataFrame, lhs: str, op: str, rhs: str = "", level: int = 1) -> pd.Series:
    hit = table[(table.lhs == lhs) & (table.op == op) & (table.rhs == rhs) & (table.level == level)]
    assert len(hit) == 1, (lhs, op, rhs, level)
    return hit.iloc[0]


def _is_fixed(row: pd.Series, value: float) -> bool:
    return int(row.free) == 0 and float(row.value) == value


# --------------------------------------------------------------------------------------------------
# parameter table
# --------------------------------------------------------------------------------------------------


def test_single_level_ordered_cfa_rows() -> None:
    pt_ = build_partable(parse_model(CFA), ordered={"y1": 4, "y2": 2})
    t = pt_.table
    assert pt_.ordered == {"y1": 4, "y2": 2}
    assert pt_.meanstructure  # ordered variables bring a mean structure (thresholds, intercepts)
    th = t[t.op == "|"]
    assert list(zip(th.lhs, th.rhs, strict=True)) == [("y1", "t1"), ("y1", "t2"), ("y1", "t3"), ("y2", "t1")]
    assert (th.level == 1).all() and (th.free > 0).all() and (th.user == 0).all()
    # thresholds come first among the defaults (lavaan's order), right after the user rows
    assert list(t.op[:4]) == ["=~"] * 4 and list(t.op[4:8]) == ["|"] * 4
    for v in ("y1", "y2"):
        assert _is_fixed(_row(t, v, "~~", v), 1.0)
        assert _is_fixed(_row(t, v, "~1"), 0.0)
    for v in ("y3", "y4"):  # continuous indicators keep free variances and intercepts
        assert _row(t, v, "~~", v).free > 0 and _row(t, v, "~1").free > 0
    free = t.free[t.free > 0]
    assert list(free) == list(range(1, len(free) + 1))
    assert list(t.id) == list(range(1, len(t) + 1))


def test_two_level_thresholds_are_between_parameters() -> None:
    pt_ = build_partable(parse_model(TWO_LEVEL), ordered={"y1": 3, "y2": 2, "w": 2})
    t = pt_.table
    th = t[t.op == "|"]
    assert list(zip(th.lhs, th.rhs, th.level, strict=True)) == [
        ("y1", "t1", 2), ("y1", "t2", 2), ("y2", "t1", 2), ("w", "t1", 2),
    ]  # fmt: skip
    for v in ("y1", "y2"):
        assert _is_fixed(_row(t, v, "~~", v, level=1), 1.0)  # theta parameterization at level 1
        assert _row(t, v, "~~", v, level=2).free > 0  # between variance stays free
        assert _is_fixed(_row(t, v, "~1", level=1), 0.0) and _is_fixed(_row(t, v, "~1", level=2), 0.0)
    # w is observed only at level 2: its only residual variance is the unit one
    assert _is_fixed(_row(t, "w", "~~", "w", level=2), 1.0)
    assert _is_fixed(_row(t, "w", "~1", level=2), 0.0)
    assert _row(t, "y3", "~~", "y3", level=2).free > 0 and _row(t, "y3", "~1", level=2).free > 0
    free = t.free[t.free > 0]
    assert list(free) == list(range(1, len(free) + 1))


def test_within_only_ordered_variable_keeps_thresholds_at_level_1() -> None:
    model = "level: 1\nfw =~ y1 + y2 + u\nlevel: 2\nfb =~ y1 + y2"
    t = build_partable(parse_model(model), ordered={"u": 3}).table
    th = t[t.op == "|"]
    assert list(th.lhs) == ["u", "u"] and (th.level == 1).all()
    assert _is_fixed(_row(t, "u", "~~", "u", level=1), 1.0)


def test_user_thresholds_keep_their_modifiers() -> None:
    model = CFA + "\ny1 | a*t1 + 0*t2 + start(1)*t3\ny1 ~~ y1"
    pt_ = build_partable(parse_model(model), ordered={"y1": 4})
    t = pt_.table
    th = t[t.op == "|"]
    assert list(th.rhs) == ["t1", "t2", "t3"] and (th.user == 1).all()
    assert _row(t, "y1", "|", "t1").label == "a"
    assert _is_fixed(_row(t, "y1", "|", "t2"), 0.0)
    assert _row(t, "y1", "|", "t3").start == 1.0
    assert _row(t, "y1", "~~", "y1").free > 0  # a user-written variance stays as written


def test_threshold_statements_alone_make_a_variable_ordered() -> None:
    pt_ = build_partable(parse_model(CFA + "\ny3 | t1 + t2"))
    assert pt_.ordered == {"y3": 3}
    assert _is_fixed(_row(pt_.table, "y3", "~~", "y3"), 1.0)


@pytest.mark.parametrize(
    ("model", "ordered", "error", "message"),
    [
        (CFA, {"y9": 3}, ModelSpecificationError, "not an observed variable"),
        (CFA, {"f": 3}, ModelSpecificationError, "latent variable"),
        (CFA, {"y1": 1}, ModelSpecificationError, "at least 2 categories"),
        (CFA, {"y1": 2.5}, ModelSpecificationError, "integer"),
        (CFA, ["y1"], ModelSpecificationError, "category_counts"),
        ("f =~ y1 + y2 + y3\nf ~ x", {"x": 3}, ModelSpecificationError, "only a predictor"),
        (CFA + "\ny1 | t1 + t2", {"y1": 4}, ModelSpecificationError, "3 threshold"),
        (CFA + "\ny1 | t1 + t3", None, ModelSpecificationError, "without gaps"),
        (TWO_LEVEL + "\nlevel: 1\ny1 | t1", {"y1": 2}, ModelSpecificationError, "level: 2"),
    ],
)
def test_ordered_errors(model: str, ordered, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        build_partable(parse_model(model), ordered=ordered)


def test_ordered_refuses_meanstructure_false() -> None:
    with pytest.raises(ModelSpecificationError, match="mean structure"):
        build_partable(parse_model(CFA), ordered={"y1": 3}, meanstructure=False)


# --------------------------------------------------------------------------------------------------
# priors and random variables
# --------------------------------------------------------------------------------------------------


def _random_variables(model: str, ordered: dict, starts: bool = True):
    pt_ = build_partable(parse_model(model), ordered=ordered)
    latent = {v for vs in pt_.latent.values() for v in vs}
    free = collect_free_parameters(pt_.table, latent, two_level=pt_.n_levels == 2)
    with pm.Model() as m:
        values = make_random_variables(free, np.zeros(len(pt_.table)) if starts else None)
    return pt_, free, m, values


def test_threshold_class_and_default_prior() -> None:
    assert parameter_class("y1", "|", "t1", set()) == "tau"
    assert DEFAULT_PRIORS["tau"] == "normal(0,1.5)"
    assert str(resolve_prior("tau")) == "normal(0,1.5)"
    with pytest.raises(PriorError):
        resolve_prior("tau", priors={"tau": "gamma(1,1)"})


@pytest.mark.filterwarnings("ignore:Numba will use object mode")
def test_threshold_variables_are_increasing_vectors() -> None:
    _, free, m, values = _random_variables(CFA, {"y1": 5, "y2": 2})
    tau = [p for p in free if p.pclass == "tau"]
    assert {p.variable for p in tau} == {("thresholds_y1", "threshold_y1"), ("thresholds_y2", "threshold_y2")}
    assert m.coords["threshold_y1"] == ("t1", "t2", "t3", "t4")
    assert isinstance(m.rvs_to_transforms[m["thresholds_y1"]], type(pm.distributions.transforms.ordered))
    assert "thresholds_y1__mu" in m.named_vars and "thresholds_y1__sigma" in m.named_vars
    assert all(values[p.name].ndim == 0 for p in tau)  # one scalar per threshold parameter
    start = m.initial_point()
    (expr,) = m.replace_rvs_by_values([pt.stack([values[f"y1|t{j}"] for j in range(1, 5)])])
    f = pytensor.function(m.value_vars, expr, on_unused_input="ignore", mode="FAST_COMPILE")
    point = f(**{v.name: start[v.name] for v in m.value_vars})
    assert np.all(np.diff(point) > 0)
    draws = pm.draw(m["thresholds_y1"], draws=500, random_seed=1, mode="FAST_COMPILE")
    assert draws.shape == (500, 4) and np.all(np.diff(draws, axis=-1) > 0)
    assert abs(draws.std() - 1.5) < 0.15  # sorted N(0, 1.5) draws
    assert np.isfinite(m.compile_logp(mode="FAST_COMPILE")(start))


@pytest.mark.filterwarnings("ignore:Numba will use object mode")
def test_fixed_thresholds_bound_the_free_ones() -> None:
    model = CFA + "\ny1 | t1 + 0*t2 + t3 + t4 + 2*t5 + t6"
    _, free, m, _ = _random_variables(model, {"y1": 7})
    bounds = {p.rhs: p.bounds for p in free if p.pclass == "tau"}
    assert bounds == {"t1": (-np.inf, 0.0), "t3": (0.0, 2.0), "t4": (0.0, 2.0), "t6": (2.0, np.inf)}
    assert m.coords["threshold_y1"] == ("t1", "t3", "t4", "t6")
    draws = pm.draw(m["thresholds_y1"], draws=300, random_seed=2, mode="FAST_COMPILE")
    assert np.all(draws[:, 0] < 0) and np.all((draws[:, 1:3] > 0) & (draws[:, 1:3] < 2))
    assert np.all(draws[:, 1] < draws[:, 2]) and np.all(draws[:, 3] > 2)
    logp = m.compile_logp(mode="FAST_COMPILE")(m.initial_point())
    assert np.isfinite(logp)


@pytest.mark.parametrize("bounds", [[(-np.inf, np.inf)] * 3, [(-1.0, 2.0)] * 2 + [(2.0, np.inf)],
                                    [(-np.inf, 1.0)] * 2 + [(1.0, 3.0)]])  # fmt: skip
def test_bounded_ordered_transform_is_consistent(bounds: list) -> None:
    v = pt.dvector("v")
    transform = BoundedOrdered(bounds)
    x = transform.backward(v)
    jac = pytensor.gradient.jacobian(x, v)
    f = pytensor.function([v], [x, transform.log_jac_det(v), pt.log(pt.abs(pt.linalg.det(jac))),
                                transform.forward(x)], mode="FAST_COMPILE")  # fmt: skip
    value = np.random.default_rng(0).normal(size=len(bounds))
    xs, log_det, log_det_autodiff, back = f(value)
    assert np.all(np.diff(xs) > 0)
    assert all(lo < xi < hi for xi, (lo, hi) in zip(xs, bounds, strict=True))
    np.testing.assert_allclose(log_det, log_det_autodiff, rtol=1e-10)
    np.testing.assert_allclose(back, value, rtol=1e-10)


def test_initial_values_are_increasing() -> None:
    assert list(increasing_initial_values([0.0, 0.0, 0.0], [(-np.inf, np.inf)] * 3)) == [-1.0, 0.0, 1.0]
    assert list(increasing_initial_values([-2.0, 0.5], [(-np.inf, np.inf)] * 2)) == [-2.0, 0.5]
    values = increasing_initial_values(None, [(0.0, 3.0)] * 2 + [(3.0, np.inf)])
    np.testing.assert_allclose(values, [1.0, 2.0, 3.5])


def test_threshold_equality_labels_are_refused() -> None:
    model = CFA + "\ny1 | a*t1\ny2 | a*t1"
    with pytest.raises(ModelSpecificationError, match="thresholds"):
        _random_variables(model, {})


def test_threshold_prior_families_must_agree() -> None:
    model = CFA + '\ny1 | prior("student_t(3,0,1)")*t1 + t2'
    with pytest.raises(PriorError, match="one family"):
        _random_variables(model, {})


def test_unsorted_fixed_thresholds_are_refused() -> None:
    with pytest.raises(ModelSpecificationError, match="increase"):
        _random_variables(CFA + "\ny1 | 1*t1 + 0*t2 + t3", {})


# --------------------------------------------------------------------------------------------------
# likelihood
# --------------------------------------------------------------------------------------------------


def _reference_loglik(eta: np.ndarray, tau: np.ndarray, codes: np.ndarray, dist) -> float:
    """sum log(F(upper) - F(lower)) with scipy, on the side of the distribution that keeps precision."""
    ext = np.concatenate([[-np.inf], tau, [np.inf]])
    ok = codes >= 0
    lower, upper = ext[codes[ok]] - eta[ok], ext[codes[ok] + 1] - eta[ok]
    p = np.where(lower + upper > 0, dist.sf(lower) - dist.sf(upper), dist.cdf(upper) - dist.cdf(lower))
    return float(np.sum(np.log(p)))


@pytest.mark.parametrize(("link", "dist"), [("probit", stats.norm), ("logit", stats.logistic)])
@pytest.mark.parametrize("tau", [np.array([0.3]), np.array([-1.0, 0.2, 1.5])])
def test_ordinal_loglik_matches_scipy(link: str, dist, tau: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    eta = 2.0 * rng.normal(size=200)
    codes = rng.integers(-1, len(tau) + 1, size=200)
    assert (codes == -1).any()
    e = pt.dvector("eta")
    f = pytensor.function([e], ordinal_loglik(e, pt.as_tensor(tau), codes, link=link), mode="FAST_COMPILE")
    assert f(eta) == pytest.approx(_reference_loglik(eta, tau, codes, dist), abs=1e-10, rel=1e-12)
    probs = ordinal_probabilities(eta, tau, link)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-12)
    ok = codes >= 0
    assert np.log(probs[ok, codes[ok]]).sum() == pytest.approx(f(eta), abs=1e-9)


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_binary_is_the_bernoulli_model(link: str) -> None:
    cdf = stats.norm.cdf if link == "probit" else stats.logistic.cdf
    eta = np.array([-1.2, 0.4, 2.0, -0.3])
    codes = np.array([1, 0, 1, -1])
    e = pt.dvector("eta")
    f = pytensor.function([e], ordinal_loglik(e, np.array([0.25]), codes, link=link), mode="FAST_COMPILE")
    p1 = cdf(eta[:3] - 0.25)
    expected = np.sum(codes[:3] * np.log(p1) + (1 - codes[:3]) * np.log1p(-p1))
    assert f(eta) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("link", "dist"), [("probit", stats.norm), ("logit", stats.logistic)])
def test_every_category_in_one_pass_equals_scipy(link: str, dist) -> None:
    # answers of a 4-category item at linear predictors from -60 to 60: the one-pass form (the latent
    # families' and, for middle categories, every model's own graph's) against scipy's probabilities
    # wherever scipy holds them in a double, and its value and gradient finite everywhere, the stand-in
    # interval of an edge category included
    rng = np.random.default_rng(5)
    tau = np.array([-1.0, 0.2, 1.5])
    eta = np.concatenate([rng.normal(size=60) * 3, np.linspace(-60.0, 60.0, 12)])
    codes = np.tile([0, 1, 2, 3], len(eta) // 4 + 1)[: len(eta)]
    ext = np.concatenate([[tau[0]], tau, [tau[-1]]])  # an edge's missing side: its own threshold
    e = pt.dvector("eta")
    below, above = ext[codes] - e, ext[codes + 1] - e
    value = category_loglik(
        below, above, pt.as_tensor(codes == 3), pt.as_tensor((codes == 1) | (codes == 2)), link
    )
    f = pytensor.function([e], [value, pytensor.grad(value.sum(), e)], mode="NUMBA")
    got, grad = f(eta)
    assert np.all(np.isfinite(got)) and np.all(np.isfinite(grad))
    expected = np.array(
        [_reference_loglik(eta[i : i + 1], tau, codes[i : i + 1], dist) for i in range(len(eta))]
    )
    held = expected > -700.0  # scipy's difference of two CDFs underflows beyond
    assert held.sum() > 60
    # (near probability 1 scipy's log holds no digits below 1e-16: an absolute bound there)
    np.testing.assert_allclose(got[held], expected[held], rtol=1e-11, atol=1e-15)
    # the middle categories' term of the per-model graphs is the same function
    f_inside = pytensor.function([e], interval_loglik(below, above, link), mode="FAST_COMPILE")
    middle = held & (codes == 1) | held & (codes == 2)
    np.testing.assert_allclose(f_inside(eta)[middle], expected[middle], rtol=1e-11)


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE"])
def test_log_ndtr_and_its_gradient_equal_scipy_in_both_tails(mode: str) -> None:
    # the numba backend runs the kernels' function (pymlsem.build.log_ndtr), the others scipy's
    x = np.concatenate([np.linspace(-60.0, 12.0, 1441), [-36.0, -35.999, -1.0, -0.999, 0.0]])
    v = pt.dvector("x")
    value = log_ndtr(v)
    f = pytensor.function([v], [value, pytensor.grad(value.sum(), v)], mode=mode)
    got, grad = f(x)
    np.testing.assert_allclose(got, special.log_ndtr(x), rtol=1e-12, atol=1e-300)
    # d/dx log Phi = phi / Phi, from scipy's log-density and log-CDF
    np.testing.assert_allclose(grad, np.exp(stats.norm.logpdf(x) - special.log_ndtr(x)), rtol=1e-11)
    points = [-40.0, 0.5]
    assert [log_ndtr_scalar(t) for t in points] == pytest.approx(special.log_ndtr(points), rel=1e-12)


def test_erfcx_equals_scipys_everywhere() -> None:
    # the Chebyshev pieces (0 to 50, each piece's ends included), the continued fraction beyond, and below 0
    pieces = 400.0 / np.arange(8, 101) - 4.0
    x = np.concatenate(
        [np.linspace(0.0, 50.0, 100001), pieces, np.nextafter(pieces, 0.0), np.geomspace(50.0, 1e300, 2001)]
    )
    x = np.concatenate([x, -np.geomspace(1e-12, 26.0, 2001)])
    got = np.array([erfcx_scalar(t) for t in x])
    np.testing.assert_allclose(got, special.erfcx(x), rtol=2e-15)
    assert np.isnan(erfcx_scalar(np.nan)) and erfcx_scalar(np.inf) == 0.0


def test_ndtr_factors_are_phi_and_the_hazard_in_both_tails() -> None:
    x = np.concatenate([-np.geomspace(1e-9, 1e160, 801), [0.0], np.geomspace(1e-9, 8.0, 401)])
    factor, log_factor, ratio = np.array([ndtr_factors(t) for t in x]).T
    assert np.all(factor >= SMALLEST_FACTOR) and np.all(factor <= 1.0)
    # (from 0 the factor is Phi itself, whose log holds no digits below 1e-16: an absolute bound there)
    np.testing.assert_allclose(np.log(factor) + log_factor, special.log_ndtr(x), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(factor[x >= 0.0], special.ndtr(x[x >= 0.0]), rtol=3e-15)
    held = x > -30.0  # scipy's log-density minus log-CDF: digits lost beyond
    hazard = np.exp(stats.norm.logpdf(x[held]) - special.log_ndtr(x[held]))
    np.testing.assert_allclose(ratio[held], hazard, rtol=1e-12)
    far = np.abs(x) > 1e3  # phi / Phi is about -x far below
    np.testing.assert_allclose(ratio[far & (x < 0)], -x[far & (x < 0)], rtol=1e-6)


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_ordinal_loglik_gradient_is_finite_in_the_tails(link: str) -> None:
    e, th = pt.dvector("eta"), pt.dvector("tau")
    eta = np.array([-30.0, 30.0, -30.0, 30.0, -30.0, 30.0, -30.0, 30.0, -200.0, 200.0])
    codes = np.array([0, 0, 1, 1, 2, 2, 3, 3, 1, 2])
    loglik = ordinal_loglik(e, th, codes, link=link, n_categories=4)
    f = pytensor.function([e, th], [loglik, *pytensor.grad(loglik, [e, th])], mode="FAST_COMPILE")
    value, grad_eta, grad_tau = f(eta, np.array([-1.0, 0.2, 1.5]))
    assert np.isfinite(value) and np.all(np.isfinite(grad_eta)) and np.all(np.isfinite(grad_tau))
    # likely observations (low category at very negative eta) contribute almost nothing
    assert abs(grad_eta[0]) < 1e-100 if link == "probit" else abs(grad_eta[0]) < 1e-12


def test_scalar_eta_is_broadcast() -> None:
    codes = np.array([0, 1, 1, -1, 2])
    tau = np.array([-0.5, 0.5])
    e = pt.dscalar("eta")
    f = pytensor.function([e], ordinal_loglik(e, tau, codes), mode="FAST_COMPILE")
    assert f(0.3) == pytest.approx(_reference_loglik(np.full(5, 0.3), tau, codes, stats.norm), abs=1e-12)


def test_ordinal_loglik_rejects_bad_codes() -> None:
    with pytest.raises(DataError, match=r"0\.\.2"):
        ordinal_loglik(pt.dvector(), np.array([0.0, 1.0]), np.array([0, 3]))
    with pytest.raises(DataError, match="integers"):
        ordinal_loglik(pt.dvector(), np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    with pytest.raises(ModelSpecificationError, match="n_categories"):
        ordinal_loglik(pt.dvector(), pt.dvector(), np.array([0, 1]))


# --------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------


def test_ordinal_codes_of_numbers_with_missing_values() -> None:
    frame = pd.DataFrame({"y": [1.0, 3.0, np.nan, 4.0, 2.0, 3.0], "x": [0.5] * 6})
    before = frame.copy()
    col = ordinal_codes(frame, ["y"])["y"]
    assert col.codes.dtype == np.int64
    assert list(col.codes) == [0, 2, -1, 3, 1, 2]
    assert col.categories == (1, 2, 3, 4) and col.n_categories == 4 and col.n_missing == 1
    assert category_counts(frame, ["y"]) == {"y": 4}
    pd.testing.assert_frame_equal(frame, before)


def test_ordinal_codes_keep_the_order_of_an_ordered_categorical() -> None:
    levels = ["low", "mid", "high", "top"]  # "top" is never observed but is a category
    y = pd.Categorical(["mid", "low", None, "high", "mid"], categories=levels, ordered=True)
    frame = pd.DataFrame({"y": y})
    col = ordinal_codes(frame, ["y"])["y"]
    assert list(col.codes) == [1, 0, -1, 2, 1]
    assert col.categories == tuple(levels) and category_counts(frame, ["y"]) == {"y": 4}


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (pd.Categorical(["a", "b", "a"]), "reorder_categories"),
        (pd.Series(["low", "high", "low"]), "pd.Categorical"),
        (pd.Series([2.0, 2.0, np.nan]), "at least two"),
        (pd.Series([1.0, np.inf, 2.0]), "infinite"),
    ],
)
def test_ordinal_codes_errors(column, message: str) -> None:
    with pytest.raises(DataError, match=message):
        ordinal_codes(pd.DataFrame({"y": column}), ["y"])


def test_ordinal_codes_missing_column() -> None:
    with pytest.raises(DataError, match="did you mean 'y1'"):
        category_counts(pd.DataFrame({"y1": [0, 1]}), ["y_1"])
