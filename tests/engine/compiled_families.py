"""The engine families the test suite compiles to machine code (``scripts/test.sh`` warms up these).

Every default family is compiled, and one ``_anyprior`` variant of the latent builder's graphs: a latent
variant is its default family's likelihood with the prior block of every prior family, so
``latent1_anyprior`` puts every prior family's graph code through numba, and the default families put every
likelihood through it. The other variants' graphs (the same likelihood and the same prior block, combined;
``mixed1_anyprior``, whose correlated blocks of three or four effects are PyMC's own ``LKJCorr`` graph) are
checked against each model's own PyMC graph by PyTensor's Python evaluation (tests/engine/test_engine.py),
which costs seconds where compiling each costs two to four minutes. The SEM, Gaussian mixed-model and GLMM
families are hand-written kernels that serve every prior family themselves.

Run as a script, it prints the compiled families (``python -m tests.engine.compiled_families``).
"""

from __future__ import annotations

from pymlsem.engine.binding import ANY_PRIOR
from pymlsem.engine.compiled import FAMILIES

__all__ = ["COMPILED", "COMPILED_VARIANTS"]

#: the ``_anyprior`` variants the suite compiles
COMPILED_VARIANTS = ("latent1_anyprior",)
#: every family the suite compiles
COMPILED = tuple(
    family for family in FAMILIES if not family.endswith(ANY_PRIOR) or family in COMPILED_VARIANTS
)

if __name__ == "__main__":
    print(" ".join(COMPILED))
