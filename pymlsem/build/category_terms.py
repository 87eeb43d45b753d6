"""Ordered answers' log-likelihood and its gradient in one pass: a PyTensor operation with one numba loop.

The latent engine families (:mod:`pymlsem.engine.latent`) give each answer of an ordered variable as data:
the table rows of the thresholds below and above its category and its kind (:data:`KINDS`). With
``upper = eta - tau_below`` and ``lower = eta - tau_above`` (``eta`` the mean of the answer's latent
response) an answer contributes ``log P(y = c) = log(F(upper) - F(lower))``: ``log F(-lower)`` for the
first category, ``log F(upper)`` for the last, and for a middle one the difference computed on the side
where it does not cancel (as :func:`pymlsem.build.categorical.interval_loglik`). Its derivatives are
``f(upper) / P`` in ``upper`` and ``-f(lower) / P`` in ``lower``, so ``d/d eta = (f(upper) - f(lower)) /
P``, ``d/d tau_below = -f(upper) / P`` and ``d/d tau_above = f(lower) / P``.

Written as PyTensor's elementwise terms, every answer evaluated both formulas (edge and interval) and two
log-CDFs, then gathered the thresholds and scattered their gradients in separate passes; here each answer
costs only what its kind needs, and its value and gradient come from the same loop. The per-model PyMC graph
(:func:`pymlsem.build.categorical.ordinal_loglik_matrix`) stays the specification the engine is tested
against. :func:`probit_category` is also the IRT kernel's (:mod:`pymlsem.engine.kernels.irt`).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key

from pymlsem.build.categorical import LINKS
from pymlsem.build.log_ndtr import SMALLEST_FACTOR, log_ndtr_scalar, ndtr_factors, ndtr_from_density

__all__ = ["KINDS", "CategoryTerms", "category_terms", "log1mexp_scalar", "probit_category", "probit_factors"]

#: an answer's kind: where its category sits among the variable's
KINDS = {"missing": 0, "first": 1, "last": 2, "middle": 3}
_MISSING, _FIRST, _LAST = KINDS["missing"], KINDS["first"], KINDS["last"]
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


@numba.njit(cache=False)
def log1mexp_scalar(x: float) -> float:
    """``log(1 - exp(x))`` for ``x < 0``, as PyTensor computes it."""
    if x < -0.6931471805599453:
        return math.log1p(-math.exp(x))
    return math.log(-math.expm1(x))


@numba.njit(cache=False)
def _log_expit(x: float) -> float:
    """``log F(x)`` of the logistic CDF, ``-log(1 + exp(-x))``, stable for either sign."""
    if x > 0.0:
        return -math.log1p(math.exp(-x))
    return x - math.log1p(math.exp(x))


@numba.njit(cache=False)
def probit_factors(upper: float, lower: float, first: bool, last: bool) -> tuple[float, float, float, float]:
    """``P(y = c) = Phi(upper) - Phi(lower)`` as ``factor * exp(log_factor)`` with ``upper = eta -
    tau_below``, ``lower = eta - tau_above`` (``first``: no ``tau_below``, ``Phi(upper) = 1``; ``last``:
    no ``tau_above``), and ``phi(upper) / P``, ``phi(lower) / P``: the derivatives of ``log P`` in
    ``upper`` and (negated) in ``lower``.

    A first or last category is ``Phi`` of one end (:func:`pymlsem.build.log_ndtr.ndtr_factors`). A
    middle category's difference is taken on the side where both ends are in the lower tail (``Phi`` is
    symmetric), each ``Phi`` and ``phi`` sharing one exponential; where that difference is below
    ``SMALLEST_FACTOR`` (far in the tail, or ends too close for it to hold digits) it is ``log Phi(b) +
    log(1 - Phi(a) / Phi(b))`` from ``log Phi``, as ``log_factor``. The factor is at least
    ``SMALLEST_FACTOR``.
    """
    if first:
        factor, log_factor, lower_ratio = ndtr_factors(-lower)
        return factor, log_factor, 0.0, lower_ratio
    if last:
        factor, log_factor, upper_ratio = ndtr_factors(upper)
        return factor, log_factor, upper_ratio, 0.0
    flipped = upper + lower >= 0.0
    b, a = (-lower, -upper) if flipped else (upper, lower)
    density_b, density_a = math.exp(-0.5 * b * b), math.exp(-0.5 * a * a)
    p = ndtr_from_density(b, density_b) - ndtr_from_density(a, density_a)
    if p > SMALLEST_FACTOR:
        scale = 1.0 / (_SQRT_2PI * p)
        upper_density, lower_density = (density_a, density_b) if flipped else (density_b, density_a)
        return p, 0.0, upper_density * scale, lower_density * scale
    high = log_ndtr_scalar(b)
    log_p = high + log1mexp_scalar(log_ndtr_scalar(a) - high)
    upper_ratio = math.exp(-0.5 * upper * upper - _HALF_LOG_2PI - log_p)
    lower_ratio = math.exp(-0.5 * lower * lower - _HALF_LOG_2PI - log_p)
    return 1.0, log_p, upper_ratio, lower_ratio


@numba.njit(cache=False)
def probit_category(upper: float, lower: float, first: bool, last: bool) -> tuple[float, float, float]:
    """:func:`probit_factors` with ``log P(y = c)`` in place of its two factors."""
    factor, log_factor, upper_ratio, lower_ratio = probit_factors(upper, lower, first, last)
    return math.log(factor) + log_factor, upper_ratio, lower_ratio


@numba.njit(cache=False)
def logit_category(upper: float, lower: float, first: bool, last: bool) -> tuple[float, float, float]:
    """:func:`probit_category` with the logistic CDF ``F`` (density ``F(x) F(-x)``)."""
    if first:
        log_p = _log_expit(-lower)
    elif last:
        log_p = _log_expit(upper)
    elif upper + lower < 0.0:
        high = _log_expit(upper)
        log_p = high + log1mexp_scalar(_log_expit(lower) - high)
    else:
        high = _log_expit(-lower)
        log_p = high + log1mexp_scalar(_log_expit(-upper) - high)
    upper_ratio = 0.0 if first else math.exp(_log_expit(upper) + _log_expit(-upper) - log_p)
    lower_ratio = 0.0 if last else math.exp(_log_expit(lower) + _log_expit(-lower) - log_p)
    return log_p, upper_ratio, lower_ratio


@numba.njit(cache=False)
def category_terms(eta, rows, below, above, kind, probit):
    """The answers' summed log-likelihood and its gradient in ``eta`` (answers' latent response means,
    rows x variables) and in ``rows`` (the table rows' values that ``below`` and ``above`` index).

    ``kind`` holds each answer's :data:`KINDS` code; a missing answer adds nothing, and the row index of a
    threshold an answer does not have (below the first category, above the last) is not read. Probit
    answers multiply their probabilities' factors (:func:`probit_factors`) and add the logs of the product
    only when it nears underflow: one logarithm for many answers.
    """
    n, m = eta.shape
    total, product = 0.0, 1.0  # the log-likelihood is total + log(product)
    d_eta = np.zeros((n, m))
    d_rows = np.zeros(rows.shape[0])
    for i in range(n):
        for k in range(m):
            code = kind[i, k]
            if code == _MISSING:
                continue
            first, last = code == _FIRST, code == _LAST
            upper = 0.0 if first else eta[i, k] - rows[below[i, k]]
            lower = 0.0 if last else eta[i, k] - rows[above[i, k]]
            if probit:
                factor, log_p, upper_ratio, lower_ratio = probit_factors(upper, lower, first, last)
                if product < SMALLEST_FACTOR:  # keep the product of factors in the normal numbers
                    total += math.log(product)
                    product = 1.0
                product *= factor
            else:
                log_p, upper_ratio, lower_ratio = logit_category(upper, lower, first, last)
            total += log_p
            d_eta[i, k] = upper_ratio - lower_ratio
            if not first:
                d_rows[below[i, k]] -= upper_ratio
            if not last:
                d_rows[above[i, k]] += lower_ratio
    return np.array(total + math.log(product)), d_eta, d_rows


class CategoryTerms(Op):
    """``category_terms`` as an operation: outputs the log-likelihood (a scalar) and its gradients in
    ``eta`` and ``rows``, which the log-likelihood's own gradient reads (one pass gives both)."""

    __props__ = ("link",)

    def __init__(self, link: str):
        if link not in LINKS:
            raise ValueError(f"link must be one of {', '.join(LINKS)}, not {link!r}")
        self.link = link

    def make_node(self, eta, rows, below, above, kind) -> Apply:
        eta = pt.as_tensor_variable(eta, dtype="float64")
        rows = pt.as_tensor_variable(rows, dtype="float64")
        indices = [pt.as_tensor_variable(a, dtype="int64") for a in (below, above, kind)]
        outputs = [pt.dscalar(), pt.dmatrix(), pt.dvector()]
        return Apply(self, [eta, rows, *indices], outputs)

    def perform(self, node, inputs, output_storage) -> None:
        eta, rows, below, above, kind = inputs
        results = category_terms(eta, rows, below, above, kind, self.link == "probit")
        for storage, result in zip(output_storage, results, strict=True):
            storage[0] = result

    def connection_pattern(self, node) -> list[list[bool]]:
        return [[True, True, True], [True, True, True], *([[False, False, False]] * 3)]

    def pullback(self, inputs, outputs, output_grads):
        grad, *gradient_grads = output_grads
        if not all(isinstance(g.type, DisconnectedType) for g in gradient_grads):
            # the gradient outputs' own derivatives (second derivatives) are not written
            return [grad_not_implemented(self, k, inputs[k]) for k in range(2)] + [DisconnectedType()()] * 3
        return [grad * outputs[1], grad * outputs[2], *([DisconnectedType()()] * 3)]


#: the key of the operation's compiled code in PyTensor's numba cache: the sources of this module and of the
#: normal tail's functions it calls
_SOURCE_KEY = hashlib.sha256(
    Path(__file__).read_bytes() + Path(__file__).with_name("log_ndtr.py").read_bytes()
).hexdigest()


@register_funcify_and_cache_key(CategoryTerms)
def _numba_category_terms(op, node, **kwargs):
    """PyTensor's numba backend calls :func:`category_terms` itself."""
    probit = op.link == "probit"

    @numba.njit(cache=False)
    def terms(eta, rows, below, above, kind):
        return category_terms(eta, rows, below, above, kind, probit)

    return terms, f"pymlsem.CategoryTerms({op.link}, {_SOURCE_KEY})"
