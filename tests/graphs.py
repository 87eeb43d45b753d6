"""Evaluating a model's own PyMC graph in the tests: by Python thunks, without waiting for rewrites or a
compile, the reference that the engine and the builders are compared with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytensor
import pytensor.tensor as pt
from pytensor.compile.mode import Mode

#: graphs evaluated as written, by Python thunks: no rewrites or compile to wait for (inner graphs too
#: inside :func:`python_thunks`)
AS_WRITTEN = Mode(linker="py", optimizer=None)


@contextmanager
def python_thunks() -> Iterator[None]:
    """Compile graphs as written (:data:`AS_WRITTEN` the default mode) and without a C compiler: PyTensor
    links the inner graphs of ``Scan`` and ``OpFromGraph`` with its C backend whatever the outer mode, one C
    module per new operation (~0.6 s each with an empty compile cache: 65 for the first latent class model
    checked)."""
    with pytensor.config.change_flags(mode=AS_WRITTEN, cxx=""):
        yield


def dlogp_function(model, mode: Mode | str = AS_WRITTEN):
    """The gradient of the model's log-density in its continuous value variables, flattened in their order,
    as ``model.compile_dlogp`` gives it, but by one backward pass: PyMC's takes one per variable, and each
    pass through the gradient of a batched (Blockwise) density rebuilds its shape graphs (~25 s of a
    missing-data model's 40)."""
    value_vars = model.continuous_value_vars
    gradients = pytensor.grad(model.logp(), value_vars, disconnected_inputs="warn")
    flat = pt.concatenate([gradient.ravel() for gradient in gradients])
    with python_thunks():  # ``mode`` for the graph, Python thunks for its inner graphs
        return model.compile_fn(flat, inputs=value_vars, mode=mode, on_unused_input="ignore")
