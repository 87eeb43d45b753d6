"""pymlsem's graph rewrite (``Blockwise(AllocDiag)`` batched, see :mod:`pymlsem.build.rewrites`) is applied
where pymlsem compiles and nowhere else: importing pymlsem leaves other PyTensor code as it was."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile import optdb
from pytensor.compile.mode import Mode, get_mode
from pytensor.tensor.basic import AllocDiag
from pytensor.tensor.blockwise import Blockwise

import pymlsem  # noqa: F401  (imported: PyTensor's own modes must stay as they were)
from pymlsem.build.rewrites import REWRITE_TAG, compile_mode, local_blockwise_alloc_diag


def _python(mode: Mode) -> Mode:
    """``mode``'s graph rewrites with PyTensor's Python linker (nothing compiled)."""
    return Mode(linker="py", optimizer=mode.provided_optimizer)


def test_pymlsem_modes_batch_the_alloc_diag_of_a_batched_cholesky_gradient() -> None:
    batch = pt.tensor3("batch")  # a Cholesky per cluster, as the two-level likelihood has
    gradient = pytensor.grad(pt.sum(pt.linalg.cholesky(batch)), batch)
    # the graphs only, run by Python (Mode.clone keeps the numba linker, which would compile PyTensor's own
    # graph with numba in object mode, an error in this suite): each mode's rewrites with the "py" linker
    ours = pytensor.function([batch], gradient, mode=_python(compile_mode("FAST_RUN")))
    plain = pytensor.function([batch], gradient, mode=_python(get_mode("FAST_RUN")))
    batched = [
        node
        for node in ours.maker.fgraph.apply_nodes
        if isinstance(node.op, Blockwise) and isinstance(node.op.core_op, AllocDiag)
    ]
    assert not batched  # (PyTensor's own mode leaves it in, or not: its rewrite order varies by process)
    matrices = np.eye(3)[None] * np.array([1.0, 2.0])[:, None, None] + 0.1
    np.testing.assert_allclose(ours(matrices), plain(matrices), rtol=1e-12)  # the same values


def test_importing_pymlsem_adds_nothing_to_pytensors_default_modes() -> None:
    for phase in ("canonicalize", "specialize"):
        tagged = optdb[phase].__db__
        assert local_blockwise_alloc_diag in tagged[REWRITE_TAG]
        assert local_blockwise_alloc_diag not in tagged.get("fast_run", set())
        assert local_blockwise_alloc_diag not in tagged.get("fast_compile", set())
    assert REWRITE_TAG in compile_mode("NUMBA").provided_optimizer.include
    assert REWRITE_TAG not in get_mode("NUMBA").provided_optimizer.include
