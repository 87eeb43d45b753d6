"""Compiled engine families: a model's structure as data, one compiled log-density per family.

:mod:`pymlsem.engine.sem` lays a SEM out as arrays and defines its families' graphs,
:mod:`pymlsem.engine.mixed` does the same for Gaussian mixed models, :mod:`pymlsem.engine.binding` holds
what they share, :mod:`pymlsem.engine.priors` the prior densities by family code,
:mod:`pymlsem.engine.compiled` compiles and caches each family once per machine,
:mod:`pymlsem.engine.run` samples through it.
"""
