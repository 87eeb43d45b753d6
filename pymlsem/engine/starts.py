"""The chains' starting points of an engine fit: PyMC's jittered initial point, without compiling C code.

nutpie starts each chain at the model's initial point (lavaan-like starts or PyMC's support points, on the
unconstrained scale) plus a uniform(-1, 1) jitter drawn from a seed per chain, through PyMC's
``make_initial_point_fn``. That function holds the update of every random generator in the expression; in a
model with an LKJ prior (a mixed model's correlated effects) the LKJ variable's update is a ``Scan``, whose
inner function PyTensor compiles with its C backend by default. The first C compilation of a process runs
the C compiler to probe the machine's flags (~0.4 s), and with the scan this took ~0.8 s of a fresh
process's fit, for a function called once per chain. :func:`initial_point_function` compiles PyMC's same
function with PyTensor's C backend switched off (Python implementations of every operation: ~0.4 s in a
fresh process), so the values for a seed are PyMC's own.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import pytensor
from pymc.initial_point import make_initial_point_fn

__all__ = ["initial_point_function"]

_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def initial_point_function(model: Any) -> Callable[[Any], dict[str, np.ndarray]]:
    """``f(seed) -> {value variable name: value}``: ``model``'s jittered initial point on the unconstrained
    scale, PyMC's ``make_initial_point_fn`` with nutpie's settings, compiled once per model without C.

    Parameters
    ----------
    model
        A PyMC model.

    Returns
    -------
    callable
        Takes a seed (anything ``numpy.random.SeedSequence`` takes, or None) and returns the point.
    """
    if model not in _FUNCTIONS:
        _FUNCTIONS[model] = _compiled(model)
    return _FUNCTIONS[model]


def _compiled(model: Any) -> Callable[[Any], dict[str, np.ndarray]]:
    with pytensor.config.change_flags(cxx=""):  # no C compiler: every operation in Python
        return make_initial_point_fn(
            model=model,
            default_strategy="support_point",
            jitter_rvs=set(model.free_RVs),
            return_transformed=True,
        )
