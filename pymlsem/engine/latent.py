"""The latent-builder engine families: SEMs with explicit latent variables (``method="latent"``) as data.

``latent1`` (single level) and ``latent2`` (two levels), with ``_logit`` variants for logit thresholds,
serve the models of :func:`pymlsem.build.latent.build_latent_model` with non-centered disturbances:
random slopes (``rv()``), latent group-mean centering, factors and paths at both levels, residual
covariances, ordered (binary and ordinal) indicators, and missing values of outcomes that predict nothing.
The per-model graph computes the variables one at a time in path order; the family computes the same values
for every model at once, with the level's structure as data:

* the free parameters and the table rows as in :mod:`pymlsem.engine.sem` (every prior family, scales,
  fixed values), the thresholds of each ordered variable made increasing by PyMC's ordered transform,
  followed by the standard normal ``z`` of every unit (each level's ``<level>_z``, units x disturbances);
* per level, the RAM positions of the rows (``A``, ``S``, ``m``, :func:`pymlsem.build.ram.ram_matrices`)
  and the variables' roles as positions: covariates (``data``), latent variables and cluster effects
  (``explicit``), continuous outcomes (``observed``), the explicit variables with a disturbance
  (``random``) and the ordered outcomes (level 1);
* the units' values of the data and outcomes (0 where missing or latent) and where they are present, and
  each row's category of every ordered variable as the table rows of the thresholds around it;
* for level 1 of a two-level model, each row's cluster, the level-2 column of every level-1 variable's
  between part, and the random slopes (target, source, level-2 column).

With ``d``, ``e``, ``o`` and ``r`` the masks of the roles, a level is: the disturbances' conditional
distribution given the covariates (``S_dd^-1 S_dn``: the mean shift and the covariance reduction, zero for
variables that do not covary with a covariate), ``u = z L'`` with ``L`` the Cholesky factor of the random
variables' disturbance covariance (the identity elsewhere), the explicit values solved from
``(I - A_ee) v_e = m_e + A v_known + shift_e + u_e`` (the paths are acyclic), the continuous outcomes'
residuals ``y - m - A v - shift - slopes`` under their normal density (the residual covariance of the
outcomes, the identity elsewhere; missing values count nothing), and the ordered outcomes' category
probabilities given ``m + A v + slopes`` (:mod:`pymlsem.build.categorical`'s terms). The per-model PyMC
graph stays the specification: the family's log-density equals its ``model.logp()``
(tests/test_engine.py). Every prior family is in every latent family's graph: its cost is small beside the
units' latent variables. Centered disturbances (``centered=``), missing values that are parameters and
thresholds bounded by fixed ones compile their own graph.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from pymlsem.build.categorical import edge_category_loglik, interval_loglik
from pymlsem.build.latent import DATA, EXPLICIT, LEVEL_VALUES, OBSERVED
from pymlsem.build.ram import ram_matrices
from pymlsem.engine.binding import PACKED_INPUTS, Binding, Unsupported, pack, symbolic_inputs, unpack
from pymlsem.engine.priors import PRIOR_FAMILIES, prior_logp
from pymlsem.engine.sem import row_values
from pymlsem.engine.table import THRESHOLD_PREFIX, parameter_variables, table_arrays

__all__ = [
    "DESCRIPTION",
    "EXPECTED_SECONDS",
    "FAMILIES",
    "GRAPH_SOURCES",
    "WARMUP_FAMILIES",
    "bind",
    "explicit_deterministics",
    "family_graph",
    "family_inputs",
]

LOG_2PI = float(np.log(2.0 * np.pi))
_LEVEL_SEGMENTS = (
    "nvars",
    "a_rows",
    "a_index",
    "s_rows",
    "s_index",
    "m_rows",
    "m_index",
    "data",
    "explicit",
    "observed",
    "random",
    "z_param",
)
#: level 1 of a two-level model: where the between parts and the random slopes come from (flat positions
#: ``column * p1 + variable`` in a level-2 x level-1 matrix, and ``slope * p1 + target``)
_BETWEEN_SEGMENTS = ("between_place", "slope_source", "slope_column", "slope_place")
#: per level: the units' values of the data and the outcomes (0 elsewhere), and 1 where present
_UNIT_ARRAYS = ("values", "present")
#: the thresholds of ordered variables: their elements of the point (variable after variable), the
#: position among them of each one's variable's first, and those that are not a first (PyMC's ordered
#: transform: the first as it is, the others' exponentials added to it)
_THRESHOLD_SEGMENTS = ("threshold_param", "threshold_start", "threshold_rest", "l1_ordered")
#: level 1: each row's category of every ordered variable as the table rows of the thresholds below and
#: above it, and its kind (:data:`_KINDS`)
_ORDINAL_ARRAYS = ("ordinal_lower", "ordinal_upper", "ordinal_kind")
_KINDS = {"missing": 0, "first": 1, "last": 2, "middle": 3}
#: family -> link of its ordered indicators (probit: the default, also for models without any)
_LINKS = {"latent1": "probit", "latent2": "probit", "latent1_logit": "logit", "latent2_logit": "logit"}
WARMUP_FAMILIES = ("latent1", "latent2")
FAMILIES = tuple(_LINKS)
#: the files besides the engine's own whose code shapes this module's graphs (the cache key)
GRAPH_SOURCES = ("engine/latent.py", "engine/sem.py", "build/ram.py", "build/categorical.py")
EXPECTED_SECONDS = {"latent1": 40, "latent2": 60, "latent1_logit": 40, "latent2_logit": 60}
DESCRIPTION = {
    "latent1": "single-level latent-variable SEM",
    "latent2": "two-level latent-variable SEM",
    "latent1_logit": "single-level latent-variable SEM with logit thresholds",
    "latent2_logit": "two-level latent-variable SEM with logit thresholds",
}


def _levels(family: str) -> int:
    return 2 if family.startswith("latent2") else 1


def segments(family: str) -> tuple[str, ...]:
    """Names of the integer arrays packed into ``ints``, in order."""
    names = [f"prior_{name}" for name in PRIOR_FAMILIES]
    names += ["scale", "row_param", "cov_rows", "cov_var_a", "cov_var_b", *_THRESHOLD_SEGMENTS]
    for level in range(1, _levels(family) + 1):
        names += [f"l{level}_{name}" for name in _LEVEL_SEGMENTS]
    if _levels(family) == 2:
        names += [f"l1_{name}" for name in _BETWEEN_SEGMENTS]
    return tuple(names)


def family_inputs(family: str) -> tuple[tuple[str, str, int], ...]:
    """(name, dtype, ndim) of the family's data inputs, in the compiled function's argument order."""
    levels = [
        (f"{what}{level}", "float64", 2) for level in range(1, _levels(family) + 1) for what in _UNIT_ARRAYS
    ]
    cluster = [("cluster_index", "int64", 1)] if _levels(family) == 2 else []
    ordinal = [(name, "int64", 2) for name in _ORDINAL_ARRAYS]
    return (*PACKED_INPUTS, ("row_fixed", "float64", 1), *levels, *cluster, *ordinal)


def family_graph(
    family: str,
) -> tuple[pt.TensorVariable, list[pt.TensorVariable], pt.TensorVariable, pt.TensorVariable]:
    """The family's symbolic log-density.

    Returns
    -------
    x, inputs, logp, expanded
        The unconstrained point (K,), the data inputs (as :func:`family_inputs`), the scalar
        log-density and the expanded values: the K constrained values, every table row's value on
        lavaan's scale, then each level's explicit variables (units x explicit variables, row by row;
        level 2 first).
    """
    x, inputs, data = symbolic_inputs(family_inputs(family))
    part = unpack(data["ints"], data["offsets"], segments(family))
    point, jacobian = _ordered_thresholds(x, part)
    positions = {name: part[f"prior_{name}"] for name in PRIOR_FAMILIES}
    log_prior, values = prior_logp(point, data["hyper"], positions)
    log_prior = log_prior + jacobian
    rows = row_values(values, part, data["row_fixed"])
    ordinal = (_LINKS[family], *(data[name] for name in _ORDINAL_ARRAYS))
    loglik, explicit = [], []
    between = None
    if _levels(family) == 2:
        level_loglik, between = _level(part, 2, rows, values, data["values2"], data["present2"])
        loglik.append(level_loglik)
        explicit.append(between[:, part["l2_explicit"]].reshape((-1,)))
        between = between[data["cluster_index"]]  # each row's cluster values
    level_loglik, within = _level(part, 1, rows, values, data["values1"], data["present1"], between, ordinal)
    loglik.append(level_loglik)
    explicit.append(within[:, part["l1_explicit"]].reshape((-1,)))
    return x, inputs, log_prior + pt.add(*loglik), pt.concatenate([values, rows, *explicit])


def _ordered_thresholds(x, part) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """The point with its threshold elements made increasing per variable (PyMC's ordered transform, one
    cumulative sum cut by variable), and the transform's log-Jacobian."""
    free = x[part["threshold_param"]]
    rest = part["threshold_rest"]
    steps = pt.set_subtensor(free[rest], pt.exp(free[rest]))
    total = pt.cumsum(steps)
    increasing = total - (total - steps)[part["threshold_start"]]
    return pt.set_subtensor(x[part["threshold_param"]], increasing), pt.sum(free[rest])


def _ordinal_loglik(eta, rows, link: str, lower, upper, kind) -> pt.TensorVariable:
    """The ordered variables' log-likelihood (rows x variables, ``eta`` their latent responses' means): the
    same terms as :func:`pymlsem.build.categorical.ordinal_loglik_matrix`, categories given as data."""
    first, last = pt.eq(kind, _KINDS["first"]), pt.eq(kind, _KINDS["last"])
    middle = pt.eq(kind, _KINDS["middle"])
    below, above = rows[lower], rows[upper]
    edge = edge_category_loglik(eta, pt.switch(first, above, below), last, link)
    eta_middle = pt.switch(middle, eta, 0.0)  # a dummy interval (-1, 1) elsewhere keeps every branch finite
    low = pt.switch(middle, below, -1.0) - eta_middle
    high = pt.switch(middle, above, 1.0) - eta_middle
    inside = interval_loglik(low, high, link)
    return pt.sum(pt.switch(first | last, edge, 0.0)) + pt.sum(pt.switch(middle, inside, 0.0))


def _mask(size, where) -> pt.TensorVariable:
    return pt.set_subtensor(pt.zeros(size)[where], 1.0)


def _placed(shape: tuple, place) -> pt.TensorVariable:
    """A 0/1 matrix with ones at flat positions ``place``."""
    return pt.set_subtensor(pt.zeros(shape[0] * shape[1])[place], 1.0).reshape(shape)


def _level(part, level: int, rows, values, unit_values, present, between=None, ordinal=None):
    """One level's log-likelihood given its ``z`` (in ``values``), and the values of all its variables.

    ``between`` holds each row's cluster values (rows x level-2 variables) for level 1 of a two-level
    model; ``ordinal`` the link and arrays of level 1's ordered variables.
    """
    get = {name: part[f"l{level}_{name}"] for name in _LEVEL_SEGMENTS}
    p = get["nvars"][0]
    index = (get[name] for name in ("a_rows", "a_index", "s_rows", "s_index", "m_rows", "m_index"))
    a, s, m = ram_matrices(rows, p, *index)
    d, e, o, r = (_mask(p, get[name]) for name in ("data", "explicit", "observed", "random"))
    n = unit_values.shape[0]
    # the disturbances given the covariates: mean shift and reduced covariance (zero where none covaries)
    s_dd = s * pt.outer(d, d) + pt.diag(1.0 - d)
    s_dn = s * pt.outer(d, 1.0 - d)
    coef = pt.linalg.solve(s_dd, s_dn, assume_a="pos")
    shift = ((unit_values - m[None, :]) * d[None, :]) @ coef
    psi = (s - s_dn.T @ coef) * pt.outer(r, r) + pt.diag(1.0 - r)
    z = pt.zeros((n, p))
    z = pt.set_subtensor(z[:, get["random"]], values[get["z_param"]].reshape((n, -1)))
    u = z @ pt.linalg.cholesky(psi, lower=True).T
    slopes = 0.0
    offset = 0.0
    if between is not None:
        p2 = between.shape[1]
        offset = between @ _placed((p2, p), part["l1_between_place"])
        n_slopes = part["l1_slope_source"].shape[0]
        slope_values = between[:, part["l1_slope_column"]]
        slopes = (slope_values, _placed((n_slopes, p), part["l1_slope_place"]), part["l1_slope_source"])
    known = unit_values * d[None, :] + (unit_values - offset) * o[None, :]
    driven = (m[None, :] + known @ a.T + shift + u) * e[None, :]
    explicit_paths = pt.eye(p) - a * pt.outer(e, e)
    v = known + pt.linalg.solve(explicit_paths, driven.T, assume_a="gen").T
    linear = m[None, :] + v @ a.T + shift
    if between is not None:
        slope_values, place, source = slopes
        linear = linear + (slope_values * v[:, source]) @ place
    counted = o[None, :] * present
    residual = (known - linear) * counted
    theta = s * pt.outer(o, o) + pt.diag(1.0 - o)
    chol = pt.linalg.cholesky(theta, lower=True)
    whitened = pt.linalg.solve_triangular(chol, residual.T, lower=True)
    log_sd = pt.log(pt.diagonal(chol))
    loglik = -0.5 * (pt.sum(whitened**2) + pt.sum(counted * (LOG_2PI + 2.0 * log_sd)[None, :]))
    if ordinal is not None:
        ordered = part["l1_ordered"]
        eta = (linear + offset)[:, ordered]
        loglik = loglik + _ordinal_loglik(eta, rows, *ordinal)
    return loglik, v


def bind(spec) -> Binding:
    """The arrays that make ``spec`` (a built :class:`pymlsem.api.SEM` with ``method="latent"``) a model of
    a latent family.

    Raises
    ------
    Unsupported
        When the model needs something the families do not express as data (the message says what).
    """
    if spec.method != "latent":
        raise Unsupported(f"method={spec.method!r} (not the latent builder)")
    built, partable, raw = spec.built, spec.partable, spec.raw
    levels = list(range(1, partable.n_levels + 1))
    if set(spec.centered) & set(levels):
        raise Unsupported("centered disturbances (centered=...) are not a latent engine family yet")
    model = built.model
    if any(not p.name.startswith("loglik_level") for p in model.potentials):
        raise Unsupported("inequality constraints")
    z_names = [f"{_unit_names(raw, level)[0]}_z" for level in levels]
    value_vars = list(model.value_vars)
    own = [v for v in value_vars if model.values_to_rvs[v].name in z_names]
    others = [v for v in value_vars if v not in own]
    if value_vars[: len(others)] != others:
        raise Unsupported("free variables after the latent variables")
    unknown = [v.name for v in others if v.name.startswith("missing_")]
    if unknown:
        raise Unsupported(f"missing values of predictors or of covarying outcomes ({unknown[0]})")
    variables, elements = parameter_variables(spec, others)
    position = len(elements)
    z_positions = {}
    for value in own:
        name = model.values_to_rvs[value].name
        size = int(np.prod([len(model.coords[d]) for d in model.named_vars_to_dims[name]]))
        z_positions[name] = np.arange(position, position + size)
        variables.append((name, None, [], z_positions[name]))
        position += size
    hyper, _, parts, row_fixed = table_arrays(spec, elements, position - len(elements))
    parts |= _threshold_arrays(variables)

    data: dict[str, np.ndarray] = {}
    n_derived = len(partable.table)
    for level in levels:
        structure, layout = built.structures[level], built.layouts[level]
        name, _ = _unit_names(raw, level)
        unit_values, present = _unit_values(structure, raw, level)
        random = _random(structure)
        level_parts = (
            len(layout.variables),
            layout.a_rows,
            layout.a_index,
            layout.s_rows,
            layout.s_index,
            layout.m_rows,
            layout.m_index,
            structure.indices(DATA),
            structure.indices(EXPLICIT),
            _continuous(structure),
            random,
            z_positions.get(f"{name}_z", np.zeros(0, dtype=np.int64)),
        )
        named = zip(_LEVEL_SEGMENTS, level_parts, strict=True)
        parts |= {f"l{level}_{k}": np.atleast_1d(v) for k, v in named}
        data |= {f"values{level}": unit_values, f"present{level}": present}
        n_derived += unit_values.shape[0] * len(structure.indices(EXPLICIT))
    if partable.n_levels == 2:
        parts |= _between_arrays(built.structures[1], built.structures[2])
        data["cluster_index"] = np.asarray(raw.cluster_index, dtype=np.int64)
    within = built.structures[1]
    ordered = [i for i in within.indices(OBSERVED) if within.variables[i] in within.ordered]
    parts["l1_ordered"] = np.asarray(ordered, dtype=np.int64)
    data |= _ordinal_arrays(spec, [within.variables[i] for i in ordered], len(raw.frame))
    family = ("latent2" if partable.n_levels == 2 else "latent1") + ("_logit" if spec.link == "logit" else "")
    ints, offsets = pack(parts, segments(family), "int64")
    data |= {"hyper": hyper, "ints": ints, "offsets": offsets, "row_fixed": row_fixed}
    return Binding(family, data, variables, n_derived)


def explicit_deterministics(spec) -> list[str]:
    """The per-model deterministics of the explicit variables that the family expands, in its order
    (level 2 first); none for a marginal model."""
    if spec.method != "latent":
        return []
    model = spec.pymc_model
    names = [_unit_names(spec.raw, level)[0] for level in range(spec.partable.n_levels, 0, -1)]
    return [name for name in names if name in model.named_vars]


def _unit_names(raw, level: int) -> tuple[str, str]:
    """The deterministic holding a level's explicit variables, and its unit dimension."""
    return LEVEL_VALUES[level] if raw.cluster_ids is not None else ("latent", "obs")


def _continuous(structure) -> list[int]:
    """The level's continuous outcomes."""
    return [i for i in structure.indices(OBSERVED) if structure.variables[i] not in structure.ordered]


def _threshold_arrays(variables: list) -> dict[str, np.ndarray]:
    """Where the thresholds sit in the point, where each one's variable's first sits among them, and
    which are not a first."""
    param, start, rest = [], [], []
    for name, _, _, positions in variables:
        if name.startswith(THRESHOLD_PREFIX):
            first = len(param)
            rest += range(first + 1, first + len(positions))
            start += [first] * len(positions)
            param += list(positions)
    return {
        "threshold_param": np.asarray(param, dtype=np.int64),
        "threshold_start": np.asarray(start, dtype=np.int64),
        "threshold_rest": np.asarray(rest, dtype=np.int64),
    }


def _ordinal_arrays(spec, names: list[str], n_rows: int) -> dict[str, np.ndarray]:
    """Each row's category of every ordered variable: the table rows of the thresholds around it, and its
    kind (missing, first, last or a middle category)."""
    table = spec.partable.table
    lower = np.zeros((n_rows, len(names)), dtype=np.int64)
    upper = np.zeros_like(lower)
    kind = np.zeros_like(lower)
    for k, name in enumerate(names):
        found = np.flatnonzero(((table.op == "|") & (table.lhs == name)).to_numpy())
        number = table["rhs"].iloc[found].str.removeprefix("t").astype(int).to_numpy()
        rows = found[np.argsort(number)]  # table rows of t1, t2, ...
        codes = np.asarray(spec.codes[name])
        last = len(rows)
        lower[:, k] = rows[np.clip(codes - 1, 0, last - 1)]
        upper[:, k] = rows[np.clip(codes, 0, last - 1)]
        kind[:, k] = np.select(
            [codes < 0, codes == 0, codes == last],
            [_KINDS["missing"], _KINDS["first"], _KINDS["last"]],
            _KINDS["middle"],
        )
    return {"ordinal_lower": lower, "ordinal_upper": upper, "ordinal_kind": kind}


def _random(structure) -> list[int]:
    """Explicit variables with a disturbance (a variance row), in position order."""
    variance_rows = {i for i, j, _ in structure.cov_rows if i == j}
    return [i for i in structure.indices(EXPLICIT) if i in variance_rows]


def _unit_values(structure, raw, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's values of the level's covariates and outcomes (0 elsewhere), and 1 where present."""
    n_units = raw.n_clusters if level == 2 else len(raw.frame)
    values = np.zeros((n_units, len(structure.variables)))
    present = np.ones_like(values)
    for i in structure.indices(DATA) + _continuous(structure):
        name = structure.variables[i]
        column = raw.cluster_column(name) if level == 2 else raw.column(name)
        missing = np.isnan(column)
        if missing.any() and structure.roles[i] == DATA:
            raise Unsupported(f"missing values of the covariate {name!r}")
        values[:, i] = np.where(missing, 0.0, column)
        present[:, i] = ~missing
    return values, present


def _between_arrays(within, between) -> dict[str, np.ndarray]:
    """Where level 1 reads the cluster values: between parts and random slopes."""
    column = {name: k for k, name in enumerate(between.variables)}
    p1 = len(within.variables)
    place = []
    for i, name in enumerate(within.variables):
        if name in column:
            if within.roles[i] != OBSERVED:
                raise Unsupported(f"the level-1 {within.roles[i]} variable {name!r} with a between part")
            place.append(column[name] * p1 + i)
    slopes = [p for p in within.paths if p.slope]
    for path in slopes:
        if within.roles[path.target] != OBSERVED:
            raise Unsupported(f"a random slope on the latent variable {within.variables[path.target]!r}")
    return {
        "l1_between_place": np.asarray(place, dtype=np.int64),
        "l1_slope_source": np.asarray([p.source for p in slopes], dtype=np.int64),
        "l1_slope_column": np.asarray([column[p.slope] for p in slopes], dtype=np.int64),
        "l1_slope_place": np.asarray([k * p1 + p.target for k, p in enumerate(slopes)], dtype=np.int64),
    }
