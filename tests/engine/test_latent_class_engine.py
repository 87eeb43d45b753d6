"""The latent class engine family (:mod:`pymlsem.engine.latent_class`) against each model's own PyMC graph:
log-density, gradient and constrained values at random points, for single-level and multilevel models
with binary, ordinal and continuous items and missing answers. The family is called through its compiled
C callbacks (what nutpie calls; compiled by the suite's warm-up, loaded from the disk cache)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pymlsem.datasets.designs import multilevel_latent_classes
from pymlsem.engine.latent_class import bind
from pymlsem.latent_class.data import lca_data
from pymlsem.latent_class.model import LCAStructure, build_lca_model, parameter_names
from tests.engine.kernel_families import check_family_equals_graph

STRUCTURES = {
    "single level, 2 classes": (2, 1, False),
    "multilevel, 3 classes, 2 cluster classes": (3, 2, True),
    "multilevel, 2 classes, 3 cluster classes": (2, 3, True),
    "multilevel, 1 class": (1, 2, True),
}


def _frame() -> pd.DataFrame:
    """12 clusters of 4: four binary items, one with three categories, a continuous item; answers missing."""
    frame = multilevel_latent_classes(seed=3, n_clusters=12, cluster_size=4).data.copy()
    rng = np.random.default_rng(5)
    frame["c1"] = rng.normal(2.0, 3.0, size=len(frame))
    frame.loc[[3, 17], "c1"] = np.nan
    frame.loc[[5, 6], "y2"] = np.nan
    frame.loc[9, "y5"] = np.nan
    return frame


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_family_equals_the_models_own_graph(name: str) -> None:
    k, m, multilevel = STRUCTURES[name]
    data = lca_data(_frame(), ["y1", "y2", "y3", "y4", "y5", "c1"], "cluster" if multilevel else None, ["c1"])
    structure = LCAStructure(k, m, multilevel)
    model = build_lca_model(data, structure)
    binding = bind(data, structure)
    check_family_equals_graph(model, binding, parameter_names(data, structure), len(name), 1.5)
