"""The latent class engine family: every model of :func:`pymlsem.lca` (any numbers of classes, items and
categories, single-level or multilevel) as data of one compiled log-density.

The model's structure is data: the numbers of person and cluster classes and of continuous items, and each
group of categorical items' numbers of categories and items (``ints``); each answer as its column among
the one-hot columns of every group side by side, the standardised continuous values with their observed
mask, and each row's cluster (a single-level model: every person a cluster of one, with one cluster
class). The point is the per-model PyMC model's unconstrained point, in its variables' order. The family is
a hand-written numba kernel (:mod:`pymlsem.engine.kernels.latent_class`), tested against each model's
own PyMC graph (tests/engine/test_latent_class_engine.py); a new structure samples at once instead of
compiling its own graph (26-40 s on a 2-core machine).
"""

from __future__ import annotations

import numpy as np

from pymlsem.engine.binding import PACKED_INPUTS, Binding, pack
from pymlsem.engine.kernels import latent_class as kernel
from pymlsem.latent_class.data import LCAData
from pymlsem.latent_class.model import LCAStructure, parameter_names

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

FAMILIES = ("lca",)
WARMUP_FAMILIES = FAMILIES
EXPECTED_SECONDS = {"lca": 12}
DESCRIPTION = {"lca": "latent class model"}
#: the files that define the family besides the common ones (its cache key reads them)
GRAPH_SOURCES = ("engine/latent_class.py", "latent_class/model.py")
KERNELS = {"lca": (kernel.logp_grad, kernel.expand)}
KERNEL_SOURCES = {"lca": ("engine/kernels/latent_class.py", "engine/kernels/parts.py")}
_DATA = (
    ("answers", "int64", 2),
    ("values", "float64", 2),
    ("observed", "float64", 2),
    ("cluster", "int64", 1),
)


def family_inputs(family: str) -> tuple[tuple[str, str, int], ...]:
    """(name, dtype, ndim) of the family's data inputs, in the compiled function's argument order."""
    return (*PACKED_INPUTS, *_DATA)


def free_shapes(data: LCAData, structure: LCAStructure) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """Each free variable's constrained and unconstrained shapes, in the model's order."""
    k, m = structure.n_classes, structure.n_cluster_classes
    out = {}
    if structure.multilevel:
        out["cluster_class_proportions"] = ((m,), (m - 1,))
        out["class_proportions"] = ((m, k), (m, k - 1))
    else:
        out["class_proportions"] = ((k,), (k - 1,))
    for group in data.groups:
        h, c = len(group.items), group.n_categories
        out[f"item_probs_c{c}"] = ((h, k, c), (h, k, c - 1))
    if data.continuous:
        out["item_means"] = ((len(data.continuous), k), (len(data.continuous), k))
        out["item_sds"] = ((len(data.continuous),), (len(data.continuous),))
    return out


def bind(data: LCAData, structure: LCAStructure) -> Binding:
    """The arrays that make a latent class model a model of the family.

    Parameters
    ----------
    data
        The items as arrays.
    structure
        The numbers of classes.

    Returns
    -------
    Binding
        ``variables``: each free variable's name, constrained shape (as its dimension entry) and positions
        in the point; ``n_derived``: the number of constrained values.
    """
    shapes = free_shapes(data, structure)
    variables, start = [], 0
    for name in parameter_names(data, structure):
        constrained, free = shapes[name]
        size = int(np.prod(free))
        variables.append((name, None, list(constrained), np.arange(start, start + size)))
        start += size
    parts = {
        "sizes": np.array(
            [
                structure.n_classes,
                structure.n_cluster_classes,
                len(data.continuous),
                int(structure.multilevel),
            ]
        ),
        "group_categories": np.array([g.n_categories for g in data.groups], dtype=np.int64),
        "group_items": np.array([len(g.items) for g in data.groups], dtype=np.int64),
    }
    ints, offsets = pack(parts, kernel.SEGMENTS, "int64")
    answers, first = [], 0  # every categorical item's one-hot column of each row (-1: missing)
    for group in data.groups:
        for h in range(len(group.items)):
            block = group.one_hot[:, h * group.n_categories : (h + 1) * group.n_categories]
            answers.append(np.where(block.any(axis=1), first + block.argmax(axis=1), -1))
            first += group.n_categories
    cluster = data.cluster if structure.multilevel else np.arange(data.n_rows)
    arrays = {
        "hyper": np.zeros((start, 3)),  # no hyperparameters: fixed priors; its rows count the point
        "ints": ints,
        "offsets": offsets,
        "answers": np.column_stack(answers) if answers else np.zeros((data.n_rows, 0), dtype=np.int64),
        "values": data.values,
        "observed": data.observed,
        "cluster": cluster,
    }
    n_derived = sum(int(np.prod(shapes[name][0])) for name in shapes)
    return Binding("lca", arrays, variables, n_derived)
