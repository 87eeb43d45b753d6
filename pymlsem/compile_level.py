"""LLVM optimisation level of the machine code compiled in a pymlsem process (numba's ``NUMBA_OPT``).

numba optimises at level 3 by default. pymlsem's compiled code (the engine families' kernels and graphs,
the post-fit checks' densities, models compiled through their own graphs) runs as fast at level 1 and
compiles in less time (docs/design-decisions.md, "LLVM optimisation level 1"), so importing pymlsem sets
level 1 for the process. A level set in the environment (``NUMBA_OPT``) is left as it is.
"""

from __future__ import annotations

import os

import numba

__all__ = ["COMPILE_OPT_LEVEL", "use_compile_level"]

#: LLVM optimisation level of what numba compiles in a pymlsem process, unless ``NUMBA_OPT`` is set
COMPILE_OPT_LEVEL = 1


def use_compile_level() -> None:
    """Set numba's optimisation level to :data:`COMPILE_OPT_LEVEL` unless the environment sets ``NUMBA_OPT``.

    numba reads its configuration again before each compilation only when a ``NUMBA_`` environment
    variable changed since, so the level holds for the process.
    """
    if "NUMBA_OPT" not in os.environ:
        numba.config.OPT = type(numba.config.OPT)(COMPILE_OPT_LEVEL)
