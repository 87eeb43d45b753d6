"""SEM engine families written by hand as numba kernels: one module per family, their shared steps in
:mod:`pymlsem.engine.kernels.parts`. Each kernel computes its family graph's log-density and gradient over the
same inputs (:mod:`pymlsem.engine.sem`), compiles in seconds instead of minutes, and is tested against the
graph (tests/engine/test_kernels.py)."""
