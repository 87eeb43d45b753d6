"""The IRT engine family (:mod:`pymlsem.engine.irt`) against each model's own PyMC graph: log-density,
gradient and constrained values at random points, with and without clusters, binary and ordinal items
(graded response), one discrimination per item or one for all, the logistic and the normal-ogive link,
missing answers and several grid sizes. The
family is called through its compiled C callbacks (what nutpie calls; compiled by the suite's warm-up,
loaded from the disk cache)."""

from __future__ import annotations

import numpy as np
import pytest

from pymlsem.datasets.designs import two_level_irt
from pymlsem.engine.irt import bind
from pymlsem.irt.data import irt_data
from pymlsem.irt.model import IRTStructure, build_irt_model, parameter_names
from tests.engine.kernel_families import check_family_equals_graph

BINARY = [f"y{k}" for k in range(1, 7)]
MIXED = ["y1", "o1", "y2", "o2", "y3", "o3"]
#: name -> (items, grid points, clusters, one discrimination for all items, link)
STRUCTURES = {
    "binary, single level, 21 points": (BINARY, 21, False, False, "logit"),
    "binary, two levels, 61 points": (BINARY, 61, True, False, "logit"),
    "binary, two levels, 15 points": (BINARY, 15, True, False, "logit"),
    "binary and ordinal, two levels, 61 points": (MIXED, 61, True, False, "logit"),
    "ordinal, single level, 31 points": (["o1", "o2", "o3"], 31, False, False, "logit"),
    "binary, two levels, common discrimination (1PL)": (BINARY, 41, True, True, "logit"),
    "binary and ordinal, single level, common discrimination": (MIXED, 31, False, True, "logit"),
    "normal ogive, binary, two levels, 61 points": (BINARY, 61, True, False, "probit"),
    "normal ogive, binary and ordinal, two levels, 41 points": (MIXED, 41, True, False, "probit"),
    "normal ogive, ordinal, single level, common discrimination": (
        ["o1", "o2", "o3"],
        31,
        False,
        True,
        "probit",
    ),
}


def _frame():
    """12 clusters of 4 persons, six binary items and three ordinal ones (3, 5 and 3 categories), some
    answers missing."""
    frame = two_level_irt(n_items=6, n_clusters=12, cluster_size=4, seed=3, link="logit").data.copy()
    rng = np.random.default_rng(2)
    for name, count in (("o1", 3), ("o2", 5), ("o3", 3)):
        frame[name] = rng.integers(0, count, len(frame))
    frame.loc[[2, 7], "o2"] = np.nan
    frame.loc[[5, 6], "y2"] = np.nan
    frame.loc[[9, 30], "y5"] = np.nan
    frame.loc[30, "y1"] = np.nan
    return frame


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_family_equals_the_models_own_graph(name: str) -> None:
    items, n_nodes, multilevel, common, link = STRUCTURES[name]
    data = irt_data(_frame(), items, "cluster" if multilevel else None)
    structure = IRTStructure(n_nodes, multilevel, common, link)
    model = build_irt_model(data, structure)
    binding = bind(data, structure)
    check_family_equals_graph(model, binding, parameter_names(data, structure), len(name), 1.0)
