"""The SEM engine family: single- and two-level marginal SEMs whose structure is data.

One log-density graph serves every model of a family (``sem1``: single level, ``sem2``: two levels, each
also with missing values: ``sem1_fiml``, ``sem2_fiml``, the full-information likelihood of
:mod:`pymlsem.build.missing`). What makes a model itself enters as arrays (:func:`bind`):

* the free parameters in sampling order: which take which prior family, and its hyperparameters
  (:mod:`pymlsem.engine.priors`) and how each becomes a value on lavaan's scale (SD squared, correlation
  ``2u - 1``, ...);
* the parameter table: for every row the free parameter it takes (or its fixed value, exogenous moments
  included), the covariance rows scaled by the SDs of their two variances;
* per level the RAM positions of the rows (:func:`pymlsem.build.ram.ram_matrices`) and where the level's
  observed variables sit among the data's variables;
* the sufficient statistics (:mod:`pymlsem.build.loglik`, the same functions the per-model graph uses).

The integer arrays travel packed in one vector (``ints``, cut by ``offsets``) so that the compiled function
has few arguments. The per-model PyMC graph (:mod:`pymlsem.build.marginal`) stays the specification: the
engine's log-density equals its ``model.logp()`` at every point (tests/engine/test_engine.py). The families
are compiled from hand-written kernels of the same inputs (:mod:`pymlsem.engine.kernels`, ``KERNELS``),
which compile in seconds instead of minutes and evaluate every prior family; their graphs here stay what
the kernels are tested against.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytensor.tensor as pt

from pymlsem.build.loglik import single_level_loglik, two_level_loglik
from pymlsem.build.missing import single_level_missing_loglik, two_level_missing_loglik
from pymlsem.build.ram import implied_moments, place_moments, ram_matrices
from pymlsem.engine.binding import (
    PACKED_INPUTS,
    Binding,
    Unsupported,
    pack,
    symbolic_inputs,
    unpack,
)
from pymlsem.engine.kernels import sem1, sem1_fiml, sem2, sem2_fiml
from pymlsem.engine.kernels.parts import LEVEL_SEGMENTS
from pymlsem.engine.priors import PRIOR_FAMILIES, prior_logp
from pymlsem.engine.table import parameter_variables, row_values, table_arrays

__all__ = [
    "DESCRIPTION",
    "EXPECTED_SECONDS",
    "FAMILIES",
    "GRAPH_SOURCES",
    "KERNELS",
    "KERNEL_SOURCES",
    "WARMUP_FAMILIES",
    "bind",
    "family_graph",
    "family_inputs",
]

_PATTERNS = (
    ("n_values", 1),
    ("pattern_observed", 2),
    ("pattern_counts", 1),
    ("pattern_means", 2),
    ("pattern_scatter", 3),
)
#: family -> the statistics it reads (name, number of dimensions)
_STATS = {
    "sem1": (("nobs", 1), ("mean", 1), ("cov", 2)),
    "sem2": (
        ("within_scatter", 2),
        ("group_sizes", 1),
        ("group_counts", 1),
        ("group_means", 2),
        ("group_scatter", 3),
    ),
    "sem1_fiml": _PATTERNS,
    "sem2_fiml": (
        *_PATTERNS,
        ("cluster_pattern_counts", 2),
        ("cluster_pattern_sums", 3),
        ("cluster_observed", 2),
        ("cluster_values", 2),
    ),
}
#: family -> the statistics' array whose last dimension is the number of the data's variables
_VARIABLES_FROM = {
    "sem1": "cov",
    "sem2": "group_means",
    "sem1_fiml": "pattern_means",
    "sem2_fiml": "pattern_means",
}
#: the families compiled by ``python -m pymlsem warmup``: all of them (each kernel serves every prior family)
WARMUP_FAMILIES = tuple(_STATS)
FAMILIES = WARMUP_FAMILIES
#: the files besides the engine's own whose code shapes this module's graphs (the cache key)
GRAPH_SOURCES = (
    "engine/sem.py",
    "engine/table.py",
    "build/parameters.py",
    "build/loglik.py",
    "build/missing.py",
    "build/ram.py",
)
#: rough first-compile time of a family on a 2-core machine with empty caches (said in the progress line)
EXPECTED_SECONDS = {"sem1": 10, "sem2": 13, "sem1_fiml": 12, "sem2_fiml": 22}
#: families compiled from hand-written kernels instead of their graph: (logp with gradient, expanded values),
#: numba functions of the family's inputs (the graph stays the specification they are tested against)
KERNELS = {
    name: (module.logp_grad, module.expand)
    for name, module in (("sem1", sem1), ("sem1_fiml", sem1_fiml), ("sem2", sem2), ("sem2_fiml", sem2_fiml))
}
#: the files whose code is each kernel (a family's cache key reads them besides ``GRAPH_SOURCES``)
KERNEL_SOURCES = {
    name: (
        "engine/kernels/priors.py",
        "engine/kernels/linalg.py",
        "engine/kernels/parts.py",
        f"engine/kernels/{name}.py",
    )
    for name in KERNELS
}
DESCRIPTION = {
    "sem1": "single-level SEM",
    "sem2": "two-level SEM",
    "sem1_fiml": "single-level SEM with missing values",
    "sem2_fiml": "two-level SEM with missing values",
}


def segments(family: str) -> tuple[str, ...]:
    """Names of the integer arrays packed into ``ints``, in order (one per prior family first)."""
    levels = 2 if family.startswith("sem2") else 1
    names = [f"prior_{name}" for name in PRIOR_FAMILIES]
    names += ["scale", "row_param", "cov_rows", "cov_var_a", "cov_var_b"]
    for level in range(1, levels + 1):
        names += [f"l{level}_{name}" for name in LEVEL_SEGMENTS]
    names += {
        "sem1": ["mean_flag"],
        "sem2": ["within_index"],
        "sem1_fiml": [],
        "sem2_fiml": ["within_index", "between_index"],
    }[family]
    return tuple(names)


def family_inputs(family: str) -> tuple[tuple[str, str, int], ...]:
    """(name, dtype, ndim) of the family's data inputs, in the compiled function's argument order."""
    return (
        *PACKED_INPUTS,
        ("row_fixed", "float64", 1),
        *((name, "float64", ndim) for name, ndim in _STATS[family]),
    )


def family_graph(
    family: str,
) -> tuple[pt.TensorVariable, list[pt.TensorVariable], pt.TensorVariable, pt.TensorVariable]:
    """The family's symbolic log-density.

    Returns
    -------
    x, inputs, logp, expanded
        The unconstrained point (K,), the data inputs (as :func:`family_inputs`), the scalar
        log-density and the expanded values: the K constrained values followed by every table row's
        value on lavaan's scale.
    """
    x, inputs, data = symbolic_inputs(family_inputs(family))
    part = unpack(data["ints"], data["offsets"], segments(family))

    positions = {name: part[f"prior_{name}"] for name in PRIOR_FAMILIES}
    log_prior, values = prior_logp(x, data["hyper"], positions)
    likelihood = family
    rows = row_values(values, part, data["row_fixed"])
    p = data[_VARIABLES_FROM[likelihood]].shape[-1]
    stats = SimpleNamespace(**{name: data[name] for name, _ in _STATS[likelihood]})
    if likelihood.startswith("sem2"):
        mu_w, sigma_w = _level_moments(rows, part, 1, p)
        mu_b, sigma_b = _level_moments(rows, part, 2, p)
        stats.within_index = part["within_index"]
        if likelihood == "sem2_fiml":
            stats.between_index = part["between_index"]
            stats.n_values = stats.n_values[0]
            loglik = two_level_missing_loglik(mu_w, sigma_w, mu_b, sigma_b, stats)
        else:
            loglik = two_level_loglik(mu_w, sigma_w, mu_b, sigma_b, stats)
    elif likelihood == "sem1_fiml":
        mu, sigma = _level_moments(rows, part, 1, p)
        stats.n_values = stats.n_values[0]
        loglik = single_level_missing_loglik(mu, sigma, stats)
    else:
        mu, sigma = _level_moments(rows, part, 1, p)
        # without a mean structure the data's means are their own expectation (the mean term is zero)
        mu = pt.switch(pt.gt(part["mean_flag"][0], 0), mu, data["mean"])
        stats.nobs = stats.nobs[0]
        loglik = single_level_loglik(mu, sigma, stats)
    return x, inputs, log_prior + loglik, pt.concatenate([values, rows])


def _level_moments(rows, part, level: int, p) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """One level's implied moments placed among the data's ``p`` variables."""
    get = {name: part[f"l{level}_{name}"] for name in LEVEL_SEGMENTS}
    k = get["nvars"][0]
    index = (get[name] for name in ("a_rows", "a_index", "s_rows", "s_index", "m_rows", "m_index"))
    a, s, m = ram_matrices(rows, k, *index)
    mean, cov = implied_moments(a, s, m, get["where"].shape[0])
    return place_moments(mean, cov, get["where"], p)


def bind(spec) -> Binding:
    """The arrays that make ``spec`` (a built :class:`pymlsem.api.SEM`) a model of an engine family.

    Raises
    ------
    Unsupported
        When the model needs something the families do not express as data (the message says what).
    """
    if spec.method != "marginal":
        raise Unsupported(f"method={spec.method!r} (not a marginal SEM)")
    partable, built = spec.partable, spec.built
    model = built.model
    if model.potentials and [p.name for p in model.potentials] != ["loglik"]:
        raise Unsupported("inequality constraints")
    variables, elements = parameter_variables(spec, model.value_vars)
    hyper, _families, parts, row_fixed = table_arrays(spec, elements)

    stats, missing = spec.stats, spec.likelihood_stats
    variables_order = list((missing or stats).variables)  # the order of the likelihood's statistics
    for level, layout in built.layouts.items():
        where = np.array([variables_order.index(v) for v in layout.observed])
        values = (
            len(layout.variables),
            layout.a_rows,
            layout.a_index,
            layout.s_rows,
            layout.s_index,
            layout.m_rows,
            layout.m_index,
            where,
        )
        parts.update(
            {f"l{level}_{name}": np.atleast_1d(v) for name, v in zip(LEVEL_SEGMENTS, values, strict=True)}
        )
    family = ("sem2" if partable.n_levels == 2 else "sem1") + ("_fiml" if missing is not None else "")
    if family.startswith("sem2"):
        parts["within_index"] = np.asarray(stats.within_index)
    if family == "sem2_fiml":
        parts["between_index"] = np.asarray(missing.between_index)
    if missing is not None:
        stat_values = {**missing.arrays(), "n_values": np.atleast_1d(missing.n_values)}
    elif family == "sem2":
        stat_values = stats.arrays()
    else:
        has_mean = stats.mean is not None
        parts["mean_flag"] = np.array([int(bool(spec.meanstructure) and has_mean)])
        mean = stats.mean if has_mean else np.zeros(len(variables_order))
        stat_values = {"nobs": np.array([float(stats.nobs)]), "mean": mean, "cov": stats.cov}
    ints, offsets = pack(parts, segments(family), "int64")
    data = {
        "hyper": hyper,
        "ints": ints,
        "offsets": offsets,
        "row_fixed": row_fixed,
        **{name: np.asarray(stat_values[name], dtype=float) for name, _ in _STATS[family]},
    }
    return Binding(family, data, variables, len(partable.table))
