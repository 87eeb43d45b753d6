"""Building a model's graph without recording where each of its nodes was created.

PyTensor stores on every node it creates the Python stack that created it (up to
``config.traceback__limit`` frames, each read from its source file), for error messages that point at the
line of a user's script. Inside pymlsem's builders that line is pymlsem's, and reading the stacks was ~30%
of building a model (thousands of nodes). Nodes a user adds to a built model keep their traces.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from pytensor import config

__all__ = ["without_node_traces"]


def without_node_traces[**P, R](builder: Callable[P, R]) -> Callable[P, R]:
    """``builder`` run with PyTensor's node traces turned off (``traceback__limit=0``)."""

    @functools.wraps(builder)
    def build(*args: P.args, **kwargs: P.kwargs) -> R:
        with config.change_flags(traceback__limit=0):
            return builder(*args, **kwargs)

    return build
