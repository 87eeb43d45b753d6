"""``log Phi(x)``, the standard normal log-CDF of the probit terms, as one PyTensor scalar operation.

The probit likelihood of ordered indicators (:mod:`pymlsem.build.categorical`) needs ``log Phi`` accurate
far in both tails and with a finite gradient. :data:`log_ndtr` is one elementwise operation whose machine
code is :func:`log_ndtr_scalar`, the numba function the hand-written IRT kernel calls too
(:mod:`pymlsem.engine.kernels.irt`): the graphs compiled by PyTensor's numba backend (the engine families and
every sampled per-model graph) and the kernel compute the same numbers with the same code. Its derivative is
written from its value, ``phi(x) / Phi(x) = exp(-x^2 / 2 - log Phi(x)) / sqrt(2 pi)``, one exponential. The
Python implementation (PyTensor's other backends, the ``impl`` of the operation) is scipy's
``special.log_ndtr``, and JAX's ``jax.scipy.special.log_ndtr`` by the same name for the JAX samplers.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from pytensor.link.numba.dispatch.scalar import register_scalar_funcify, scalar_op_cache_key
from pytensor.scalar.basic import UnaryScalarOp, upgrade_to_float_no_complex
from pytensor.scalar.basic import exp as scalar_exp
from pytensor.tensor.elemwise import Elemwise
from scipy import special

__all__ = ["LogNdtr", "log_ndtr", "log_ndtr_scalar"]

_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
#: below this, ``log Phi(x)`` by its asymptotic series (``erfc`` underflows near -38)
_FAR_TAIL = -36.0


@numba.njit(cache=False)
def log_ndtr_scalar(x: float) -> float:
    """``log Phi(x)`` of one number: ``log(erfc(-x / sqrt 2) / 2)`` below -1, ``log1p(-erfc(x / sqrt 2) /
    2)`` above, and the asymptotic series beyond -36 (relative error under 1e-12 against scipy)."""
    if x < _FAR_TAIL:
        r = 1.0 / (x * x)
        series = 1.0 - r * (1.0 - r * (3.0 - r * (15.0 - r * (105.0 - r * 945.0))))
        return -0.5 * x * x - math.log(-x) - _LOG_SQRT_2PI + math.log(series)
    if x < -1.0:
        return math.log(0.5 * math.erfc(-x / _SQRT2))
    return math.log1p(-0.5 * math.erfc(x / _SQRT2))


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
