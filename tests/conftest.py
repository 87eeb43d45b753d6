"""Fixtures shared by the test modules.

The tests are grouped by what they check, one module per part of the package (syntax and parameter
table, data and statistics, the builders' log-likelihoods against lavaan/lme4, the engine families against
the per-model graphs, mixed models, the workflow tools, results and plots, bad input); ``reference.py``
holds the reference models and readers of the golden files in ``data/reference`` (each made by the R script
beside it), ``tolerances.py`` the tolerances of the sampling tests and why.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytensor
import pytest
from reference import data

# No creation stack kept on each graph node: building and differentiating the per-model graphs the tests
# compare with takes about a third less time (PyTensor walks the stack for every node otherwise).
pytensor.config.traceback__limit = 0


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    """lavaan's Demo.twolevel (2,500 rows in 200 clusters), read once per module."""
    return data("Demo.twolevel")


@pytest.fixture(scope="module")
def uncompiled_graphs() -> Iterator[None]:
    """PyTensor's default mode set to Python thunks for a module of formula checks: no backend compile (up to
    two minutes for one graph with empty caches), the same values. What the sampler compiles from the same
    formulas is checked in tests/engine."""
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        yield
