"""The IRT engine family: every model of :func:`pymlsem.irt` (any numbers of binary and ordinal items,
categories, persons, clusters and grid points, with or without clusters, any missingness) as data of one
compiled log-density.

The model's structure is data: the number of grid points, whether there are clusters, whether the items
share one discrimination, the link (logistic or normal ogive), and each item's
number of categories (``ints``), the answers' category codes, each row's missingness pattern with the
patterns' observed items, and each row's cluster. The
point is the per-model PyMC model's unconstrained point, in its variables' order. The family is a
hand-written numba kernel (:mod:`pymlsem.engine.kernels.irt`), tested against each model's own PyMC graph
(tests/engine/test_irt_engine.py); a new structure samples at once instead of compiling its own graph.
"""

from __future__ import annotations

import numpy as np

from pymlsem.engine.binding import PACKED_INPUTS, Binding, pack
from pymlsem.engine.kernels import irt as kernel
from pymlsem.irt.data import IRTData
from pymlsem.irt.model import IRTStructure, parameter_names

__all__ = [
    "DESCRIPTION",
    "EXPECTED_SECONDS",
    "FAMILIES",
    "GRAPH_SOURCES",
    "KERNELS",
    "KERNEL_SOURCES",
    "WARMUP_FAMILIES",
    "bind",
    "family_inputs",
    "free_shapes",
]

FAMILIES = ("irt",)
WARMUP_FAMILIES = FAMILIES
EXPECTED_SECONDS = {"irt": 10}
DESCRIPTION = {"irt": "IRT model"}
#: the files that define the family besides the common ones (its cache key reads them)
GRAPH_SOURCES = ("engine/irt.py", "irt/model.py")
KERNELS = {"irt": (kernel.logp_grad, kernel.expand)}
KERNEL_SOURCES = {
    "irt": (
        "engine/kernels/irt.py",
        "engine/kernels/parts.py",
        "build/category_terms.py",
        "build/log_ndtr.py",
    )
}
_DATA = (
    ("codes", "int64", 2),
    ("pattern", "int64", 1),
    ("pattern_observed", "float64", 2),
    ("cluster", "int64", 1),
)


def family_inputs(family: str) -> tuple[tuple[str, str, int], ...]:
    """(name, dtype, ndim) of the family's data inputs, in the compiled function's argument order."""
    return (*PACKED_INPUTS, *_DATA)


def free_shapes(data: IRTData, structure: IRTStructure) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """Each free variable's constrained and unconstrained shapes (the same here), in the model's order."""
    n_items = len(data.items)
    shape = () if structure.common_discrimination else (n_items,)
    out = {"discrimination": (shape, shape)}
    if data.binary:
        out["intercept"] = ((len(data.binary),), (len(data.binary),))
    for count, names in data.ordinal_groups().items():
        out[f"thresholds_c{count}"] = ((len(names), count - 1), (len(names), count - 1))
    if structure.multilevel:
        out |= {"between_sd": ((), ()), "between_z": ((data.n_clusters,), (data.n_clusters,))}
    return out


def bind(data: IRTData, structure: IRTStructure) -> Binding:
    """The arrays that make an IRT model a model of the family.

    Parameters
    ----------
    data
        The answers as arrays.
    structure
        The grid and whether there are clusters.

    Returns
    -------
    Binding
        ``variables``: each free variable's name, constrained shape (as its dimension entry) and positions
        in the point; ``n_derived``: the number of constrained values.
    """
    shapes = free_shapes(data, structure)
    variables, start = [], 0
    for name in parameter_names(data, structure):
        constrained, _ = shapes[name]
        size = int(np.prod(constrained))
        variables.append((name, None, list(constrained), np.arange(start, start + size)))
        start += size
    sizes = np.array(
        [
            structure.n_nodes,
            int(structure.multilevel),
            int(structure.common_discrimination),
            int(structure.link == "probit"),
        ]
    )
    ints, offsets = pack({"sizes": sizes, "categories": data.n_categories}, kernel.SEGMENTS, "int64")
    arrays = {
        "hyper": np.zeros((start, 3)),  # no hyperparameters: fixed priors; its rows count the point
        "ints": ints,
        "offsets": offsets,
        "codes": data.codes,
        "pattern": data.pattern,
        "pattern_observed": data.pattern_observed,
        "cluster": data.cluster,
    }
    return Binding("irt", arrays, variables, start)
