"""PyTensor graph rewrites that keep our gradients compilable to machine code.

The gradient of a batched Cholesky factorisation (``Blockwise(Cholesky)``, used per cluster size in the
two-level SEM likelihood and per cluster in the mixed-model likelihood) contains
``Blockwise(AllocDiag)``. ``AllocDiag`` is a symbolic op (an ``OpFromGraph``) that PyTensor inlines when it
stands alone, but not inside a ``Blockwise``; the numba backend then runs that node in Python object mode,
once per gradient evaluation, which made sampling several times slower. ``AllocDiag`` handles leading
batch dimensions itself, so the ``Blockwise`` wrapper is replaced by the batched op, which the standard
``inline_ofg`` rewrite then inlines.

Importing this module registers the rewrite (``pymlsem`` imports it).
"""

from __future__ import annotations

from pytensor.graph import node_rewriter
from pytensor.tensor.basic import AllocDiag, alloc_diag
from pytensor.tensor.blockwise import Blockwise
from pytensor.tensor.rewriting.basic import register_canonicalize, register_specialize

__all__ = ["local_blockwise_alloc_diag"]


@register_canonicalize
@register_specialize
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
