"""Item response theory models (:func:`pymlsem.irt`): binary (2PL) and ordinal (graded response) items, a
normal trait integrated out of the log-density on a grid, a cluster part of the trait sampled as random
effects.

:mod:`pymlsem.irt.data` lays the answers out as arrays, :mod:`pymlsem.irt.model` builds the PyMC model,
:mod:`pymlsem.irt.fit` holds the fitted model's tables and :mod:`pymlsem.irt.api` the front door,
:func:`pymlsem.irt`; :func:`pymlsem.engine.kernel_sampling.sample` samples it through the compiled engine
family (:mod:`pymlsem.engine.irt`).
"""
