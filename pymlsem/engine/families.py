"""The engine families: which module defines each family's graph and binds models to it.

Kept apart from :mod:`pymlsem.engine.compiled` (whose source is part of every family's cache key), so that
adding a family does not compile the others again.
"""

from __future__ import annotations

from types import ModuleType

from pymlsem.engine import glmm, irt, latent, latent_class, mixed, sem

__all__ = ["COMPILE_AFTER", "DESCRIPTION", "EXPECTED_SECONDS", "FAMILIES", "MODULES", "WARMUP_FAMILIES"]

_DEFINING = (sem, latent, mixed, glmm, latent_class, irt)
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
#: families compiled after another whose code they reuse: PyTensor's numba backend caches each operation's
#: compiled function on disk, and the latent builder's families share most of their operations (with empty
#: caches on this 2-core machine, ``latent2`` compiled in 171 s after ``latent1`` and in 270 s alongside it)
COMPILE_AFTER = {
    "latent2": "latent1",
    "latent1_logit": "latent1",
    "latent2_logit": "latent2",
    "latent1_anyprior": "latent1",
    "latent2_anyprior": "latent2",
}
