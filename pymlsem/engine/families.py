"""The engine families: which module defines each family's graph and binds models to it.

Kept apart from :mod:`pymlsem.engine.compiled` (whose source is part of every family's cache key), so that
adding a family does not compile the others again.
"""

from __future__ import annotations

from types import ModuleType

from pymlsem.engine import glmm, latent, mixed, sem

__all__ = ["DESCRIPTION", "EXPECTED_SECONDS", "FAMILIES", "MODULES", "WARMUP_FAMILIES"]

_DEFINING = (sem, latent, mixed, glmm)
#: the module that defines each family's graph and binds models to it
MODULES: dict[str, ModuleType] = {family: module for module in _DEFINING for family in module.FAMILIES}
FAMILIES = tuple(MODULES)
#: the families ``python -m pymlsem warmup`` compiles by default (those of the default priors)
WARMUP_FAMILIES = tuple(family for module in _DEFINING for family in module.WARMUP_FAMILIES)
#: rough first-compile time of a family on a 2-core machine with empty caches (said in the progress line); an
#: ``_anyprior`` variant without its own entry takes its default family's
EXPECTED_SECONDS = {name: time for module in _DEFINING for name, time in module.EXPECTED_SECONDS.items()}
#: what each family's models are, in words (the progress line)
DESCRIPTION = {base: words for module in _DEFINING for base, words in module.DESCRIPTION.items()}
