"""``log Phi(x)``, the standard normal log-CDF of the probit terms, as one PyTensor scalar operation, and
the scaled complementary error function the numba code computes it from.

The probit likelihood of ordered indicators (:mod:`pymlsem.build.categorical`) needs ``log Phi`` accurate
far in both tails and with a finite gradient. :data:`log_ndtr` is one elementwise operation whose machine
code is :func:`log_ndtr_scalar`, the numba function the hand-written kernels call too
(:mod:`pymlsem.build.category_terms`, :mod:`pymlsem.engine.kernels.irt`): the graphs compiled by PyTensor's
numba backend (the engine families and every sampled per-model graph) and the kernels compute the same
numbers with the same code. Its derivative is written from its value, ``phi(x) / Phi(x) = exp(-x^2 / 2 -
log Phi(x)) / sqrt(2 pi)``, one exponential. The Python implementation (PyTensor's other backends, the
``impl`` of the operation) is scipy's ``special.log_ndtr``, and JAX's ``jax.scipy.special.log_ndtr`` by
the same name for the JAX samplers.

Both tails come from the scaled complementary error function ``erfcx(x) = exp(x^2) erfc(x)``: ``Phi(x) =
exp(-x^2 / 2) erfcx(-x / sqrt 2) / 2`` for ``x < 0`` (and ``1 -`` that of ``-x`` above), so ``log Phi(x)
= -x^2 / 2 + log(erfcx(-x / sqrt 2) / 2)`` in the lower tail never underflows, and the density's
exponential ``exp(-x^2 / 2)`` is shared by the probability and its derivative. Machine code cached on disk
may call only the C library, not scipy, so :func:`erfcx_scalar` evaluates scipy's ``special.erfcx``
through piecewise Chebyshev interpolants of it in ``y = 400 / (4 + x)`` (93 unit pieces from 7 to 100,
degree :data:`DEGREE`, as S. G. Johnson's Faddeeva package evaluates it), made from scipy's values when this
module is imported, and its continued fraction beyond ``x = 50``; the relative difference from scipy is
under 2e-15 (tests/build/test_categorical.py).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.polynomial import chebyshev
from pytensor.link.numba.dispatch.scalar import register_scalar_funcify, scalar_op_cache_key
from pytensor.scalar.basic import UnaryScalarOp, upgrade_to_float_no_complex
from pytensor.scalar.basic import exp as scalar_exp
from pytensor.tensor.elemwise import Elemwise
from scipy import special

__all__ = [
    "DEGREE",
    "SMALLEST_FACTOR",
    "LogNdtr",
    "erfcx_scalar",
    "log_ndtr",
    "log_ndtr_scalar",
    "ndtr_factors",
    "ndtr_from_density",
]

_SQRT2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
#: the degree of each piece's Chebyshev interpolant of ``erfcx``
DEGREE = 6
#: ``erfcx`` on ``[0, 50]`` as a function of ``y = 400 / (4 + x)`` in ``[7.4, 100]``: one piece per unit of y
_PIECES = 100
_CONTINUED_FRACTION = 50.0  # beyond: erfcx by its continued fraction
#: the smallest factor of a probability :func:`ndtr_factors` and the probit terms give (see there)
SMALLEST_FACTOR = 1e-150


def _erfcx_on_piece(t: np.ndarray, j: int) -> np.ndarray:
    """scipy's ``erfcx`` at the ``x`` of ``y = j + (t + 1) / 2``, ``t`` in ``[-1, 1]`` (piece ``j``)."""
    return special.erfcx(400.0 / (j + (t + 1.0) / 2.0) - 4.0)


def _erfcx_pieces() -> np.ndarray:
    """The Chebyshev coefficients (pieces x (DEGREE + 1)) of scipy's ``erfcx`` in ``y`` on each ``[j, j +
    1]`` (the pieces below ``y = 7`` are never read: they are zeros)."""
    pieces = np.zeros((_PIECES, DEGREE + 1))
    for j in range(7, _PIECES):
        pieces[j] = chebyshev.chebinterpolate(_erfcx_on_piece, DEGREE, args=(j,))
    return pieces


_ERFCX_PIECES = _erfcx_pieces()


@numba.njit(cache=False)
def erfcx_scalar(x: float) -> float:
    """``erfcx(x) = exp(x^2) erfc(x)`` of one number (``2 exp(x^2) - erfcx(-x)`` below 0)."""
    if x < 0.0:
        return 2.0 * math.exp(x * x) - erfcx_scalar(-x)
    # 1 / sqrt(pi) / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...)))); NaN too (never an index below)
    if not x <= _CONTINUED_FRACTION:
        fraction = x
        for k in range(6, 0, -1):
            fraction = x + 0.5 * k / fraction
        return _INV_SQRT_PI / fraction
    y = 400.0 / (4.0 + x)
    j = min(int(y), _PIECES - 1)
    t = 2.0 * (y - j) - 1.0
    c = _ERFCX_PIECES[j]
    b1, b2 = 0.0, 0.0  # Clenshaw's recurrence
    for k in range(DEGREE, 0, -1):
        b1, b2 = 2.0 * t * b1 - b2 + c[k], b1
    return t * b1 - b2 + c[0]


@numba.njit(cache=False)
def ndtr_from_density(x: float, density: float) -> float:
    """``Phi(x)`` of one number given its density's exponential ``exp(-x^2 / 2)``: the tail beyond ``|x|``,
    ``exp(-x^2 / 2) erfcx(|x| / sqrt 2) / 2``, below 0, and 1 less that tail from 0."""
    tail = 0.5 * density * erfcx_scalar(abs(x) / _SQRT2)
    return tail if x < 0.0 else 1.0 - tail


@numba.njit(cache=False, error_model="numpy")  # x = -inf: a ratio 1 / 0 is inf, not an error
def ndtr_factors(x: float) -> tuple[float, float, float]:
    """``Phi(x)`` of one number as ``factor * exp(log_factor)``, and ``phi(x) / Phi(x)``.

    Below 0 the factor is ``erfcx(-x / sqrt 2) / 2`` and ``log_factor = -x^2 / 2`` (the exponential that
    would underflow is kept as its log); from 0 the factor is ``Phi(x)`` itself (at least 1/2) and
    ``log_factor`` is 0. The factor is at least :data:`SMALLEST_FACTOR` (far beyond, it is 1 and the log
    holds everything), so that a product of factors can be kept in the normal numbers.
    """
    if x < 0.0:
        scaled = erfcx_scalar(-x / _SQRT2)
        ratio = _SQRT_2_OVER_PI / scaled
        if scaled < 2.0 * SMALLEST_FACTOR:  # |x| beyond ~1e149
            return 1.0, -0.5 * x * x + math.log(0.5 * scaled), ratio
        return 0.5 * scaled, -0.5 * x * x, ratio
    density = math.exp(-0.5 * x * x)
    cdf = ndtr_from_density(x, density)
    return cdf, 0.0, density / (_SQRT_2PI * cdf)


@numba.njit(cache=False)
def log_ndtr_scalar(x: float) -> float:
    """``log Phi(x)`` of one number: the log of :func:`ndtr_factors` below 0, ``log1p(-exp(-x^2 / 2)
    erfcx(x / sqrt 2) / 2)`` from 0 (to full relative precision as ``Phi(x)`` nears 1)."""
    if x < 0.0:
        factor, log_factor, _ = ndtr_factors(x)
        return math.log(factor) + log_factor
    return math.log1p(-ndtr_from_density(-x, math.exp(-0.5 * x * x)))  # log(1 - Phi(-x))


class LogNdtr(UnaryScalarOp):
    """The scalar operation ``log Phi(x)``; its derivative reuses its value."""

    nfunc_spec = ("scipy.special.log_ndtr", 1, 1)

    def impl(self, x):
        return special.log_ndtr(x)

    def pullback(self, inputs, outputs, grads):
        (x,), (value,), (grad,) = inputs, outputs, grads
        return (grad * scalar_exp(-0.5 * x * x - value - np.float64(_LOG_SQRT_2PI)),)


@register_scalar_funcify(LogNdtr)
def _numba_log_ndtr(op, node, **kwargs):
    """PyTensor's numba backend compiles the operation as :func:`log_ndtr_scalar`."""
    return log_ndtr_scalar, scalar_op_cache_key(op)


#: ``log Phi`` of every element of a tensor
log_ndtr = Elemwise(LogNdtr(upgrade_to_float_no_complex, name="log_ndtr"))
