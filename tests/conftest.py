"""Fixtures shared by the test modules.

The tests are grouped by what they check, one module per part of the package (syntax and parameter
table, data and statistics, the builders' log-likelihoods against lavaan/lme4, the engine families against
the per-model graphs, mixed models, the workflow tools, results and plots, bad input); ``reference.py``
holds the reference models and readers of the golden files in ``data/reference`` (each made by the R script
beside it), ``tolerances.py`` the tolerances of the sampling tests and why.
"""

from __future__ import annotations

import pandas as pd
import pytest
from reference import data


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    """lavaan's Demo.twolevel (2,500 rows in 200 clusters), read once per module."""
    return data("Demo.twolevel")
