"""SEM engine families written by hand as numba kernels: one module per family, their shared steps in
:mod:`pymlsem.engine.kernels.parts`. Each kernel computes its family graph's log-density and gradient over the
same inputs (:mod:`pymlsem.engine.sem`), compiles in seconds instead of minutes, and is tested against the
graph (tests/engine/test_kernels.py).

The kernels' functions are compiled with :data:`internal`: for calls from compiled code only (other kernel
functions, the families' C callbacks, the cached post-fit functions). Calling one from Python crashes the
interpreter; call it through :func:`callable_from_python` (the tests and benchmarks do).
"""

from __future__ import annotations

from typing import Any

import numba

__all__ = ["callable_from_python", "internal"]

#: numba's decorator for a kernel function: without the CPython and C wrappers that only a call from Python
#: needs, whose machine code numba would emit for every function (a family's first compile ~10% shorter;
#: docs/design-decisions.md, "The kernels' steps inlined")
internal = numba.njit(cache=False, no_cpython_wrapper=True, no_cfunc_wrapper=True)


def callable_from_python(function: Any) -> Any:
    """A numba function that Python can call, which calls the :data:`internal` kernel function ``function``
    with the same arguments and returns what it returns."""

    @numba.njit(cache=False)
    def call(*args):
        return function(*args)

    return call
