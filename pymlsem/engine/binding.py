"""What every engine family shares: a model bound to a family as arrays, and the refusal to bind one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

__all__ = [
    "ANY_PRIOR",
    "PACKED_INPUTS",
    "PACKED_REALS",
    "Binding",
    "Unsupported",
    "base_family",
    "pack",
    "symbolic_inputs",
    "unpack",
]

#: the first inputs of every family: hyperparameters (K, 3) and the integer arrays packed by :func:`pack`
PACKED_INPUTS = (("hyper", "float64", 2), ("ints", "int64", 1), ("offsets", "int64", 1))
#: real arrays packed by :func:`pack` (the mixed-model and GLMM families)
PACKED_REALS = (("reals", "float64", 1), ("real_offsets", "int64", 1))
#: suffix of a family's variant that evaluates every prior family (the plain one only the common ones)
ANY_PRIOR = "_anyprior"


def base_family(family: str) -> str:
    """The family's likelihood (``sem2`` for ``sem2_anyprior``)."""
    return family.removesuffix(ANY_PRIOR)


class Unsupported(Exception):
    """The model is not (yet) expressible as data of an engine family; the message says why."""


@dataclass
class Binding:
    """One model as data of an engine family.

    Attributes
    ----------
    family
        The engine family (e.g. ``"sem2"``, ``"mixed1"``).
    data
        The family's inputs by name (the family module's ``family_inputs``).
    variables
        The per-model PyMC variables in sampling order: (variable name, dimension or None for a scalar,
        coordinate names, positions in the unconstrained vector).
    n_derived
        Number of expanded values after the K constrained ones (SEM: every parameter-table row on lavaan's
        scale; mixed models: fixed effects, residual SD, random-effect SDs, correlation factors).
    """

    family: str
    data: dict[str, np.ndarray]
    variables: list[tuple[str, str | None, list[str], np.ndarray]]
    n_derived: int

    @property
    def n_dim(self) -> int:
        """Number of unconstrained parameters."""
        return int(self.data["hyper"].shape[0])


def symbolic_inputs(
    inputs: Sequence[tuple[str, str, int]],
) -> tuple[pt.TensorVariable, list[pt.TensorVariable], dict[str, pt.TensorVariable]]:
    """The unconstrained point ``x`` and a family's data inputs (every shape unknown until run time).

    Returns
    -------
    x, variables, by_name
        The point (K,), the inputs in order (as ``inputs``: name, dtype, ndim), and the same by name.
    """
    x = pt.vector("x", dtype="float64")
    variables = [pt.tensor(name, dtype=dtype, shape=(None,) * ndim) for name, dtype, ndim in inputs]
    return x, variables, {var.name: var for var in variables}


def unpack(packed: pt.TensorVariable, offsets: pt.TensorVariable, names: Sequence[str]) -> dict:
    """The arrays :func:`pack` put into one vector, by name (symbolic slices)."""
    return {name: packed[offsets[i] : offsets[i + 1]] for i, name in enumerate(names)}


def pack(arrays: dict[str, np.ndarray], names: Sequence[str], dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Arrays laid end to end in the order of ``names`` (flattened), and the offsets that cut them apart."""
    parts = [np.asarray(arrays[name]).astype(dtype).ravel() for name in names]
    offsets = np.concatenate([[0], np.cumsum([part.size for part in parts])]).astype(np.int64)
    return np.concatenate([np.zeros(0, dtype=dtype), *parts]), offsets
