"""Evaluating a model's own PyMC graph in the tests: by Python thunks, without waiting for rewrites or a
compile, the reference that the engine and the builders are compared with."""

from __future__ import annotations

import pytensor
import pytensor.tensor as pt
from pytensor.compile.mode import Mode

from pymlsem.build.rewrites import AS_WRITTEN, python_thunks

__all__ = ["AS_WRITTEN", "dlogp_function", "python_thunks"]


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
