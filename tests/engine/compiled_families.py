"""The engine families the test suite compiles to machine code (``scripts/test.sh`` warms up these).

Every default family but ``latent2_logit``, and no ``_anyprior`` variant. The latent builder's variants
combine code the suite compiles elsewhere: ``latent2_logit`` is ``latent2``'s two-level graph with
``latent1_logit``'s logit terms, and an ``_anyprior`` variant is its default family's likelihood with the
prior block of every prior family, which tests/engine/test_kernels.py compiles alone
(``test_every_prior_familys_graph_compiles_with_numba``: ~30 s with empty caches, where ``latent1_anyprior``
took ~120 s and ``latent2_logit`` ~130 s). Those variants' graphs are checked against each model's own
PyMC graph by PyTensor's Python evaluation (tests/engine/test_engine.py), which costs seconds.
No test fits a model of a family left out here (a fit would compile it in a test). The SEM, Gaussian
mixed-model and GLMM families are hand-written kernels that serve every prior family themselves.

Run as a script, it prints the compiled families (``python -m tests.engine.compiled_families``).
"""

from __future__ import annotations

from pymlsem.engine.binding import ANY_PRIOR
from pymlsem.engine.compiled import FAMILIES

__all__ = ["COMPILED", "NOT_COMPILED"]

#: the default families the suite leaves to their graphs
NOT_COMPILED = ("latent2_logit",)
#: every family the suite compiles
COMPILED = tuple(
    family for family in FAMILIES if not family.endswith(ANY_PRIOR) and family not in NOT_COMPILED
)

if __name__ == "__main__":
    print(" ".join(COMPILED))
