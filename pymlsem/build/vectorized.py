"""The model's own PyTensor expressions evaluated for many parameter draws (and data sets) at once.

Post-fit quantities (implied moments per draw, log-likelihoods of replicated data sets, fit indices) need the
expressions of :mod:`pymlsem.build` at hundreds or thousands of posterior draws. Rather than writing each
formula a second time in numpy, the expression is written once, for one draw, and PyTensor's
``vectorize_graph`` adds a leading batch axis to the inputs named as batched (every operation on them
becomes its batched form).

The function runs the operations' numpy implementations as the expression is written (``FAST_COMPILE``'s
Python linker, no graph rewrites: nothing compiled to machine code; rewriting the batched graph took ~0.35 s
of the first summary of a process for no faster evaluation), which suits expressions whose batched
operations are elementwise or already batched. Densities that factor a covariance per draw and per cluster
are numba kernels instead (:mod:`pymlsem.engine.kernels`), tested against these expressions.
:func:`as_input` gives arrays as a compiled function takes them (C-contiguous, writeable): numba compiles
again for another memory layout or a read-only array (a broadcast view, a pandas column under
copy-on-write).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.mode import Mode, get_mode
from pytensor.graph.replace import vectorize_graph

__all__ = ["as_input", "batched_function", "symbolic", "values_of"]


def _with_batch_axis(variable: pt.TensorVariable) -> pt.TensorVariable:
    """A fresh input like ``variable`` with one more (leading) axis of unknown length."""
    return pt.tensor(
        f"{variable.name or 'input'}_batch", dtype=variable.dtype, shape=(None, *variable.type.shape)
    )


def batched_function(
    inputs: Sequence[pt.TensorVariable],
    outputs: Sequence[pt.TensorVariable],
    batched: Sequence[pt.TensorVariable],
) -> Callable[..., list[np.ndarray]]:
    """Compile ``outputs`` of ``inputs`` with a leading batch axis on the inputs in ``batched``.

    Parameters
    ----------
    inputs
        The expression's inputs (for one draw / one data set), in the order the function takes them.
    outputs
        The expressions to evaluate.
    batched
        The inputs that get a leading batch axis; the others are shared by the whole batch. All batched
        inputs must have the same batch length when called.

    Returns
    -------
    callable
        ``f(*values) -> list of numpy arrays``, each with the batch axis first.
    """
    replace = {variable: _with_batch_axis(variable) for variable in batched}
    vectorized = vectorize_graph(list(outputs), replace=replace)
    new_inputs = [replace.get(variable, variable) for variable in inputs]
    mode = Mode(linker=get_mode("FAST_COMPILE").linker, optimizer=None)
    return pytensor.function(new_inputs, vectorized, mode=mode, on_unused_input="ignore")


def symbolic(*, positions: Sequence[str] = (), **ndim: int) -> SimpleNamespace:
    """Named symbolic inputs standing for a statistics object's arrays.

    Parameters
    ----------
    positions
        Names of integer position vectors (int64, one axis).
    **ndim
        Names of float64 arrays and their number of axes.

    Returns
    -------
    types.SimpleNamespace
        One tensor per name, in the order given (positions first).
    """
    inputs = {name: pt.lvector(name) for name in positions}
    inputs |= {name: pt.tensor(name, dtype="float64", shape=(None,) * axes) for name, axes in ndim.items()}
    return SimpleNamespace(**inputs)


def values_of(inputs: SimpleNamespace, source: object) -> list[np.ndarray]:
    """The attributes of ``source`` named like ``inputs``, in their order, as C-contiguous arrays of their
    dtypes (what the compiled function takes)."""
    return [as_input(getattr(source, name), variable.dtype) for name, variable in vars(inputs).items()]


def as_input(array: object, dtype: str = "float64") -> np.ndarray:
    """``array`` as a compiled function takes it: C-contiguous, writeable, of ``dtype`` (copied if not)."""
    return np.require(array, dtype=dtype, requirements=("C", "W"))
