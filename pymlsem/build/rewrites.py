"""PyTensor graph rewrites that keep our gradients compilable to machine code, and the modes that apply them.

The gradient of a batched Cholesky factorisation (``Blockwise(Cholesky)``, used per cluster size in the
two-level SEM likelihood and per cluster in the mixed-model likelihood) contains
``Blockwise(AllocDiag)``. ``AllocDiag`` is a symbolic op (an ``OpFromGraph``) that PyTensor inlines when it
stands alone, but not inside a ``Blockwise``; the numba backend then runs that node in Python object mode,
once per gradient evaluation, which made sampling several times slower. ``AllocDiag`` handles leading
batch dimensions itself, so the ``Blockwise`` wrapper is replaced by the batched op, which the standard
``inline_ofg`` rewrite then inlines.

The rewrite is registered under its own tag (:data:`REWRITE_TAG`), which no PyTensor mode includes by
default: importing pymlsem changes nothing for other PyTensor code. pymlsem compiles with
:func:`compile_mode`, which includes it (the engine families, nutpie's callbacks, PyMC's sampler).

Graphs evaluated only a few times, or once per posterior draw after a fit (IRT trait scores, latent class
membership), run as written inside :func:`python_thunks`: nothing to rewrite and no C to compile.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytensor
from pytensor.compile import optdb
from pytensor.compile.mode import Mode, get_mode
from pytensor.graph import node_rewriter
from pytensor.tensor.basic import AllocDiag, alloc_diag
from pytensor.tensor.blockwise import Blockwise

__all__ = ["AS_WRITTEN", "REWRITE_TAG", "compile_mode", "local_blockwise_alloc_diag", "python_thunks"]

#: the tag of pymlsem's rewrites: a mode applies them only when it includes this tag
REWRITE_TAG = "pymlsem"
#: graphs evaluated as written, by Python thunks: no rewrites or compile to wait for (inner graphs too
#: inside :func:`python_thunks`)
AS_WRITTEN = Mode(linker="py", optimizer=None)


@node_rewriter([Blockwise])
def local_blockwise_alloc_diag(fgraph, node):
    """``Blockwise(AllocDiag)(x)`` -> ``AllocDiag`` over the trailing axes of x (same values)."""
    core = node.op.core_op
    if not isinstance(core, AllocDiag):
        return None
    [diagonal] = node.inputs
    batch = diagonal.type.ndim - 1
    out = alloc_diag(diagonal, offset=core.offset, axis1=core.axis1 + batch, axis2=core.axis2 + batch)
    return [out]


for _phase in ("canonicalize", "specialize"):
    optdb[_phase].register(local_blockwise_alloc_diag.__name__, local_blockwise_alloc_diag, REWRITE_TAG)


def compile_mode(mode: str | Mode | None = None) -> Mode:
    """PyTensor's mode ``mode`` (the configured default when None) with pymlsem's rewrites included.

    Parameters
    ----------
    mode
        A mode or its name (``"NUMBA"``, ``"FAST_RUN"``, ...).

    Returns
    -------
    pytensor.compile.mode.Mode
    """
    return get_mode(mode).including(REWRITE_TAG)


@contextmanager
def python_thunks() -> Iterator[None]:
    """Compile graphs as written (:data:`AS_WRITTEN` the default mode) and without a C compiler.

    PyTensor links the inner graphs of ``Scan``, ``OpFromGraph`` and some elementwise operations with its C
    backend whatever the outer mode: one C module per new operation, ~0.6 s each with an empty compile cache
    (an IRT fit's check of its grid compiled 11 on a fresh machine). Batched over draws, the post-fit terms
    run faster this way than per draw in C (docs/design-decisions.md, "After the fit, over draws").
    """
    with pytensor.config.change_flags(mode=AS_WRITTEN, cxx=""):
        yield
