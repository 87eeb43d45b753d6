"""Compiled engine families: a model's structure as data, one compiled log-density per family.

:mod:`pymlsem.engine.sem` lays a SEM out as arrays and defines the family's graph,
:mod:`pymlsem.engine.priors` the prior densities by family code, :mod:`pymlsem.engine.compiled` compiles
and caches each family once per machine, :mod:`pymlsem.engine.run` samples through it.
"""
