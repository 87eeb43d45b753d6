"""The engine families the test suite compiles to machine code (``scripts/test.sh`` warms up these).

Every default family is compiled, and one ``_anyprior`` variant per module: a variant is its default
family's likelihood with the prior block of every prior family, so one per module puts every prior
family's code through numba, and the default families put every likelihood through it. The other
variants' graphs (the same likelihood and the same prior block, combined) are checked against each model's
own PyMC graph by PyTensor's Python evaluation (tests/engine/test_engine.py), which costs seconds where
compiling each costs a minute or two: about half of a fresh machine's warm-up before the tests.

Run as a script, it prints the compiled families (``python -m tests.engine.compiled_families``).
"""

from __future__ import annotations

from pymlsem.engine.binding import ANY_PRIOR
from pymlsem.engine.compiled import FAMILIES

__all__ = ["COMPILED", "COMPILED_VARIANTS"]

#: the ``_anyprior`` variants the suite compiles, one per module (engine/sem.py, latent.py, mixed.py, glmm.py)
COMPILED_VARIANTS = ("sem1_anyprior", "latent1_anyprior", "mixed1_anyprior", "glmm_poisson_anyprior")
#: every family the suite compiles
COMPILED = tuple(
    family for family in FAMILIES if not family.endswith(ANY_PRIOR) or family in COMPILED_VARIANTS
)

if __name__ == "__main__":
    print(" ".join(COMPILED))
