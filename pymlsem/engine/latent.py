"""The latent-builder engine families: SEMs with explicit latent variables (``method="latent"``) as data.

``latent1`` (single level) and ``latent2`` (two levels), with ``_logit`` variants for logit thresholds,
serve the models of :func:`pymlsem.build.latent.build_latent_model` with non-centered disturbances:
random slopes (``rv()``), latent group-mean centering, factors and paths at both levels, residual
covariances, ordered (binary and ordinal) indicators, and missing values of outcomes that predict nothing.
The per-model graph computes the variables one at a time in path order; the family computes the same values
for every model at once, with the level's structure as data:

* the free parameters and the table rows as in :mod:`pymlsem.engine.sem` (priors, scales, fixed values),
  the thresholds of each ordered variable made increasing by PyMC's ordered transform, followed by the
  standard normal ``z`` of every unit (each level's ``<level>_z``, units x disturbances, row by row);
* per level, the variables' roles: covariates and continuous outcomes (``k``, known values), latent
  variables and cluster effects (``e``, explicit), continuous then ordered outcomes (``t``), the explicit
  variables with a disturbance (``r``); and, for every block of the RAM matrices the level needs
  (``A_ek``, ``A_ee``, ``A_tk``, ``A_te``, ``S_rr``, ``S_oo``, ``m_e``, ``m_t``), which table rows fill
  which of its entries;
* the units' values of the data and outcomes (0 where missing or latent) and where they are present, and
  each row's category of every ordered variable as the table rows of the thresholds around it;
* for level 1 of a two-level model, each row's cluster, the level-2 column of every level-1 variable's
  between part, and the random slopes (target, source, level-2 column).

A level is then: ``u = z L_rr'`` placed among the explicit variables (``L_rr`` the Cholesky factor of the
disturbances' covariance), the explicit values ``v_e = (I - A_ee)^-1 (m_e + A_ek v_k + u)`` (the paths
are acyclic), the outcomes' expectations ``m_t + A_tk v_k + A_te v_e`` plus their clusters' between parts
and random slopes, the continuous outcomes' residuals under their normal density (missing values count
nothing) and the ordered outcomes' category probabilities (:mod:`pymlsem.build.categorical`'s terms). Only
these small blocks are formed (the graph's cost is its number of operations, ~0.2 us each, as much as its
arithmetic), each factorised block padded by one identity row so that an empty one is never factorised;
what grows with the units is one operation (:mod:`pymlsem.engine.latent_units`: passes over the units for
the values, and for the gradient, with no work for a term the model does not have). The per-model PyMC
graph stays the specification: the family's log-density equals its ``model.logp()``
(tests/engine/test_engine.py). Each family has an ``_anyprior`` variant for prior families other than the
defaults' (as :mod:`pymlsem.engine.sem`). Centered disturbances (``centered=``), missing values that are
parameters, thresholds bounded by fixed ones and covariances of covariates with latent variables compile
their own graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

from pymlsem.build.category_terms import KINDS, CategoryTerms
from pymlsem.build.latent import DATA, EXPLICIT, LEVEL_VALUES, OBSERVED
from pymlsem.engine.binding import (
    ANY_PRIOR,
    PACKED_INPUTS,
    Binding,
    Unsupported,
    base_family,
    pack,
    symbolic_inputs,
    unpack,
)
from pymlsem.engine.latent_units import UnitValues
from pymlsem.engine.priors import PRIOR_FAMILIES, prior_logp
from pymlsem.engine.table import THRESHOLD_PREFIX, parameter_variables, row_values, table_arrays

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
#: the blocks of a level's RAM matrices: name -> (matrix, rows' role, columns' role, rows and columns added:
#: a square block to factorise gets one more row and column, 0 but for a 1 on the diagonal of a covariance)
_BLOCKS = {
    "a_ec": ("a", "explicit", "covariates_e", (0, 0)),
    "a_eo": ("a", "explicit", "outcomes_e", (0, 0)),
    "a_ee": ("a", "explicit", "explicit", (0, 0)),
    "a_tc": ("a", "outcome", "covariates_t", (0, 0)),
    "a_to": ("a", "outcome", "outcomes_t", (0, 0)),
    "a_te": ("a", "outcome", "explicit", (0, 0)),
    "s_rr": ("s", "random", "random", (1, 1)),
    "s_oo": ("s", "continuous", "continuous", (1, 1)),
    "s_cc": ("s", "conditioning", "conditioning", (1, 1)),
    "s_ce": ("s", "conditioning", "explicit", (1, 0)),
    "m_e": ("m", "explicit", None, (0, 0)),
    "m_t": ("m", "outcome", None, (0, 0)),
    "m_c": ("m", "conditioning", None, (0, 0)),
}
#: per level: the numbers of variables in each role (:data:`_SIZES`), the first element of the units' ``z``
#: in the point, each random variable's place among the explicit ones (flat positions in a random x
#: explicit matrix) and its signed SD's position in the point (-1: none), the continuous outcomes that
#: predict explicit variables and those that predict outcomes (among the continuous ones), and the blocks
#: laid end to end in one vector: where each starts (and where the last ends), and which table rows fill
#: which of its elements
_LEVEL_SEGMENTS = (
    "sizes",
    "z_start",
    "random_place",
    "random_explicit",
    "random_sign",
    "outcomes_e",
    "outcomes_t",
    "block_start",
    "block_rows",
    "block_place",
)
_SIZES = (
    "covariates_e",
    "outcomes_e",
    "covariates_t",
    "outcomes_t",
    "explicit",
    "outcome",
    "continuous",
    "random",
    "conditioning",
)
#: level 1 of a two-level model, reading its clusters' explicit values: the level-2 explicit column of each
#: outcome's between part (the number of them for none: a column of zeros) and of each random slope, and the
#: random slopes' sources (among the covariates and outcomes that predict outcomes, then the explicit
#: variables) and targets (flat positions in a slope x outcome matrix)
_BETWEEN_SEGMENTS = ("cluster_columns", "slope_source", "slope_place")
#: per level: the units' covariates that predict explicit variables and those that predict outcomes, all
#: covariates where a latent variable covaries with one (else none: ``conditioning``), the continuous
#: outcomes (0 where missing) and 1 where present
_UNIT_ARRAYS = ("covariates_e", "covariates_t", "conditioning", "outcomes", "present")
#: the free parameters' number (the ``z`` follow them), and the thresholds of ordered variables: their
#: elements of the point (variable after variable), the position among them of each one's variable's
#: first, and those that are not a first (PyMC's ordered transform: the first as it is, the others'
#: exponentials added to it); the signed SDs (:mod:`pymlsem.build.parameters`)
_PARAMETER_SEGMENTS = ("n_params", "threshold_param", "threshold_start", "threshold_rest", "signed")
#: level 1: each row's category of every ordered variable as the table rows of the thresholds below and
#: above it, and its kind (:data:`pymlsem.build.category_terms.KINDS`)
_ORDINAL_ARRAYS = ("ordinal_lower", "ordinal_upper", "ordinal_kind")
#: family -> link of its ordered indicators (probit: the default, also for models without any)
_LINKS = {"latent1": "probit", "latent2": "probit", "latent1_logit": "logit", "latent2_logit": "logit"}
WARMUP_FAMILIES = ("latent1", "latent2")
FAMILIES = (*_LINKS, *(f"{family}{ANY_PRIOR}" for family in _LINKS))
#: prior families every model with blavaan's (and pymlsem's) default priors uses; a family's graph with only
#: these is smaller and faster, so a model using another prior family takes the ``_anyprior`` variant
COMMON_PRIORS = ("normal", "gamma", "beta")
#: the files besides the engine's own whose code shapes this module's graphs (the cache key)
GRAPH_SOURCES = (
    "engine/latent.py",
    "engine/table.py",
    "build/parameters.py",
    "build/ram.py",
    "build/category_terms.py",
    "build/log_ndtr.py",
    "engine/latent_units.py",
    "engine/kernels/linalg.py",
    "engine/kernels/__init__.py",
)
EXPECTED_SECONDS = {"latent1": 150, "latent2": 130, "latent1_logit": 70, "latent2_logit": 110}
DESCRIPTION = {
    "latent1": "single-level latent-variable SEM",
    "latent2": "two-level latent-variable SEM",
    "latent1_logit": "single-level latent-variable SEM with logit thresholds",
    "latent2_logit": "two-level latent-variable SEM with logit thresholds",
}


def family_priors(family: str) -> tuple[str, ...]:
    """The prior families a family's graph evaluates: all for an ``_anyprior`` variant."""
    return PRIOR_FAMILIES if family.endswith(ANY_PRIOR) else COMMON_PRIORS


def _levels(family: str) -> int:
    return 2 if family.startswith("latent2") else 1


def segments(family: str) -> tuple[str, ...]:
    """Names of the integer arrays packed into ``ints``, in order."""
    names = [f"prior_{name}" for name in family_priors(family)]
    names += ["scale", "row_param", "cov_rows", "cov_var_a", "cov_var_b", *_PARAMETER_SEGMENTS]
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
    n_params = part["n_params"][0]
    params, jacobian = _ordered_thresholds(x[:n_params], part)
    positions = {name: part[f"prior_{name}"] for name in family_priors(family)}
    log_prior, values = prior_logp(params, data["hyper"][:n_params], positions, part["signed"])
    signs = pt.sign(values)
    z = x[n_params:]  # standard normal
    log_prior = log_prior + jacobian - 0.5 * (pt.sum(z**2) + z.shape[0] * LOG_2PI)
    rows = pt.concatenate([row_values(values, part, data["row_fixed"]), pt.ones(1)])  # a 1 for padding
    ordinal = (base_family(family), *(data[name] for name in _ORDINAL_ARRAYS))
    loglik, explicit = [], []
    between = None
    if _levels(family) == 2:
        level_loglik, between = _level(part, 2, rows, x, signs, _unit_arrays(data, 2))
        loglik.append(level_loglik)
        explicit.append(between.reshape((-1,)))
        # the values level 1 reads, and a column of zeros for outcomes without a between part
        columns = pt.concatenate([between, pt.zeros((between.shape[0], 1))], axis=1)
        between = (columns, part["l1_cluster_columns"], data["cluster_index"])
    level_loglik, within = _level(part, 1, rows, x, signs, _unit_arrays(data, 1), between, ordinal)
    loglik.append(level_loglik)
    explicit.append(within.reshape((-1,)))
    expanded = pt.concatenate([values, z, rows[:-1], *explicit])
    return x, inputs, log_prior + pt.add(*loglik), expanded


def _unit_arrays(data, level: int) -> tuple:
    return tuple(data[f"{name}{level}"] for name in _UNIT_ARRAYS)


def _ordered_thresholds(x, part) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """The parameters with their threshold elements made increasing per variable (PyMC's ordered transform,
    one cumulative sum cut by variable), and the transform's log-Jacobian."""
    free = x[part["threshold_param"]]
    rest = part["threshold_rest"]
    steps = pt.set_subtensor(free[rest], pt.exp(free[rest]))
    total = pt.cumsum(steps)
    increasing = total - (total - steps)[part["threshold_start"]]
    return pt.set_subtensor(x[part["threshold_param"]], increasing), pt.sum(free[rest])


def _ordinal_loglik(eta, rows, family: str, lower, upper, kind) -> pt.TensorVariable:
    """The ordered variables' log-likelihood (rows x variables, ``eta`` their latent responses' means): the
    same terms as :func:`pymlsem.build.categorical.ordinal_loglik_matrix`, categories given as data, each
    answer's value and gradient in one pass (:class:`pymlsem.build.category_terms.CategoryTerms`)."""
    return CategoryTerms(_LINKS[family])(eta, rows, lower, upper, kind)[0]


def _placed(shape: tuple, place) -> pt.TensorVariable:
    """A 0/1 matrix with ones at flat positions ``place``."""
    return pt.set_subtensor(pt.zeros(shape[0] * shape[1])[place], 1.0).reshape(shape)


def _level(part, level: int, rows, x, signs, units, between=None, ordinal=None):
    """One level's log-likelihood given its ``z`` (elements of ``x``), and its explicit variables' values
    (units x explicit variables).

    ``rows`` are the table rows' values followed by a 1 (the padding's); ``signs`` the signs of the
    parameters' values (a signed SD's sign turns its column of the disturbances' Cholesky factor, as
    :func:`pymlsem.build.latent.signed_rows` explains); ``units`` the units' covariates,
    continuous outcomes and where those are present; ``between``, for level 1 of a two-level model, the
    clusters' values it reads (clusters x level-2 explicit variables and a column of zeros), the column of
    each outcome's between part and each random slope's coefficient, and each row's cluster; ``ordinal`` the
    family and arrays of level 1's ordered variables.
    """
    get = {name: part[f"l{level}_{name}"] for name in _LEVEL_SEGMENTS}
    covariates_e, covariates_t, conditioning, outcomes, present = units
    n = outcomes.shape[0]
    sizes = {name: get["sizes"][k] for k, name in enumerate(_SIZES)}
    p_explicit, p_outcome, p_continuous, p_random, p_conditioning = (
        sizes[name] for name in ("explicit", "outcome", "continuous", "random", "conditioning")
    )

    start = get["block_start"]
    blocks = pt.set_subtensor(pt.zeros(start[-1])[get["block_place"]], rows[get["block_rows"]])

    def block(name: str) -> pt.TensorVariable:
        k = list(_BLOCKS).index(name)
        _, row_role, column_role, (more_rows, more_columns) = _BLOCKS[name]
        flat = blocks[start[k] : start[k + 1]]
        if column_role is None:
            return flat
        return flat.reshape((sizes[row_role] + more_rows, sizes[column_role] + more_columns))

    # disturbances that covary with covariates: their distribution given all the covariates
    coefficients = pt.linalg.solve(block("s_cc"), block("s_ce"), assume_a="pos")  # S_cc^-1 S_ce
    reduction = (block("s_ce").T @ coefficients)[get["random_explicit"]][:, get["random_explicit"]]
    disturbance_cov = pt.inc_subtensor(block("s_rr")[:p_random, :p_random], -reduction)
    # the disturbances u = z L' (L: the Cholesky factor of the random variables' covariance)
    sign = pt.switch(pt.ge(get["random_sign"], 0), signs[pt.maximum(get["random_sign"], 0)], 1.0)
    chol = pt.linalg.cholesky(disturbance_cov, lower=True)[:p_random, :p_random] * sign[None, :]
    factor = chol.T @ _placed((p_random, p_explicit), get["random_place"])
    z = x[get["z_start"][0] : get["z_start"][0] + n * p_random].reshape((n, p_random))
    if between is None:  # no cluster values: every unit reads the one zero
        between = (pt.zeros((1, 1)), pt.zeros(p_outcome, dtype="int64"), pt.zeros(n, dtype="int64"))
        slopes = (pt.zeros(0, dtype="int64"), pt.zeros(0, dtype="int64"))
    else:
        slopes = (part["l1_slope_source"], part["l1_slope_place"])
    # the explicit values (I - A_ee) v_e = m_e + A_ec v_c + A_eo v_o + shift + u (the paths acyclic), and the
    # outcomes' means given them, the known values and the cluster values, unit by unit in one pass
    latent_values, linear = UnitValues()(
        z, *between, get["outcomes_e"], get["outcomes_t"], *slopes, covariates_e, covariates_t, conditioning,
        outcomes, block("m_c"), coefficients[:p_conditioning], block("m_e"), block("a_ec"), block("a_eo"),
        factor, block("a_ee"), block("m_t"), block("a_tc"), block("a_to"), block("a_te"),
    )  # fmt: skip
    residual = (outcomes - linear[:, :p_continuous]) * present
    residual_chol = pt.linalg.cholesky(block("s_oo"), lower=True)
    inverse = pt.linalg.solve_triangular(residual_chol, pt.eye(p_continuous + 1), lower=True)
    whitened = residual @ inverse[:p_continuous, :p_continuous].T
    log_sd = pt.log(pt.diagonal(residual_chol)[:p_continuous])
    loglik = -0.5 * (pt.sum(whitened**2) + pt.sum(present * (LOG_2PI + 2.0 * log_sd)[None, :]))
    if ordinal is not None:
        loglik = loglik + _ordinal_loglik(linear[:, p_continuous:], rows, *ordinal)
    return loglik, latent_values


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
    z_start = {}
    for value in own:
        name = model.values_to_rvs[value].name
        size = int(np.prod([len(model.coords[d]) for d in model.named_vars_to_dims[name]]))
        z_start[name] = position
        variables.append((name, None, [], np.arange(position, position + size)))
        position += size
    hyper, families, parts, row_fixed = table_arrays(spec, elements, position - len(elements))
    parts |= _threshold_arrays(variables) | {"n_params": np.array([len(elements)])}
    parts["signed"] = np.flatnonzero([p.signed for p in elements])
    parts["scale"] = parts["scale"][: len(elements)]  # the z are not on lavaan's scale
    one = len(partable.table)  # the row the family appends: a 1 for the padding of factorised blocks

    data: dict[str, np.ndarray] = {}
    n_derived = len(partable.table)
    roles = {level: _roles(built.structures[level]) for level in levels}
    for level in levels:
        structure, layout, role = built.structures[level], built.layouts[level], roles[level]
        name, _ = _unit_names(raw, level)
        units = _unit_values(structure, role, raw, level)
        data |= units
        n_units = len(units[f"outcomes{level}"])
        parts |= {
            f"l{level}_{k}": np.asarray(v, dtype=np.int64)
            for k, v in _level_arrays(layout, role, one, z_start.get(f"{name}_z", position)).items()
        }
        parts[f"l{level}_random_sign"] = _random_signs(built, structure, role, elements)
        n_derived += n_units * len(role.explicit)
    if partable.n_levels == 2:
        parts |= _between_arrays(built.structures[1], roles[1], built.structures[2], roles[2])
        data["cluster_index"] = np.asarray(raw.cluster_index, dtype=np.int64)
    within = built.structures[1]
    data |= _ordinal_arrays(spec, [within.variables[i] for i in roles[1].ordered], len(raw.frame))
    family = ("latent2" if partable.n_levels == 2 else "latent1") + ("_logit" if spec.link == "logit" else "")
    if not set(families) <= set(COMMON_PRIORS):
        family += ANY_PRIOR
    own_families = families[: len(elements)]  # the z are not in the prior block
    parts |= {f"prior_{name}": np.flatnonzero(own_families == name) for name in family_priors(family)}
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


@dataclass(frozen=True)
class _Roles:
    """Positions of a level's variables by role."""

    covariates: list[int]
    continuous: list[int]
    ordered: list[int]
    explicit: list[int]
    random: list[int]
    covariates_e: list[int]
    outcomes_e: list[int]
    covariates_t: list[int]
    outcomes_t: list[int]
    conditioning: list[int]

    @property
    def outcome(self) -> list[int]:
        """Continuous, then ordered outcomes."""
        return [*self.continuous, *self.ordered]


def _roles(structure) -> _Roles:
    """The level's variables by role (``conditioning``: every covariate when a latent variable covaries with
    one, whose disturbance is then drawn from its distribution given the covariates; else none)."""
    data = set(structure.indices(DATA))
    linked = any((i in data) != (j in data) for i, j, _ in structure.cov_rows)
    observed = structure.indices(OBSERVED)
    variance_rows = structure.variance_rows()
    explicit = structure.indices(EXPLICIT)
    continuous = [i for i in observed if structure.variables[i] not in structure.ordered]
    predict_explicit = {p.source for p in structure.paths if p.target in explicit}
    predict_outcomes = {p.source for p in structure.paths if p.target in observed}  # random slopes too
    return _Roles(
        covariates=sorted(data),
        continuous=continuous,
        ordered=[i for i in observed if structure.variables[i] in structure.ordered],
        explicit=explicit,
        random=[i for i in explicit if i in variance_rows],  # with a disturbance, in position order
        covariates_e=sorted(data & predict_explicit),
        outcomes_e=[i for i in continuous if i in predict_explicit],
        covariates_t=sorted(data & predict_outcomes),
        outcomes_t=[i for i in continuous if i in predict_outcomes],
        conditioning=sorted(data) if linked else [],
    )


def _level_arrays(layout, role: _Roles, one: int, z_start: int) -> dict[str, list[int]]:
    """The level's sizes, where its ``z`` start, the random variables' places among the explicit ones, and
    for every block (:data:`_BLOCKS`) the table rows that fill it and where (flat positions)."""
    p = len(layout.variables)
    entries = {
        "a": list(zip(layout.a_rows, layout.a_index, strict=True)),
        "s": list(zip(layout.s_rows, layout.s_index, strict=True)),
        "m": [(r, f * p) for r, f in zip(layout.m_rows, layout.m_index, strict=True)],  # as column 0
    }
    arrays: dict[str, list[int]] = {
        "sizes": [len(getattr(role, name)) for name in _SIZES],
        "z_start": [z_start],
        "random_place": [k * len(role.explicit) + role.explicit.index(i) for k, i in enumerate(role.random)],
        "random_explicit": [role.explicit.index(i) for i in role.random],
        "outcomes_e": [role.continuous.index(i) for i in role.outcomes_e],
        "outcomes_t": [role.continuous.index(i) for i in role.outcomes_t],
    }
    start, filled = [0], []
    for matrix, row_role, column_role, (more_rows, more_columns) in _BLOCKS.values():
        row_of = {v: k for k, v in enumerate(getattr(role, row_role))}
        column_of = (
            {0: 0} if column_role is None else {v: k for k, v in enumerate(getattr(role, column_role))}
        )
        width = len(column_of) + more_columns
        filled += [
            (r, start[-1] + row_of[f // p] * width + column_of[f % p])
            for r, f in entries[matrix]
            if f // p in row_of and f % p in column_of
        ]
        if more_columns:  # a covariance padded by a 1 on the diagonal
            filled.append((one, start[-1] + len(row_of) * width + len(column_of)))
        start.append(start[-1] + (len(row_of) + more_rows) * width)
    arrays |= {
        "block_start": start,
        "block_rows": [r for r, _ in filled],
        "block_place": [f for _, f in filled],
    }
    return arrays


def _random_signs(built, structure, role: _Roles, elements: list) -> np.ndarray:
    """Each random variable's signed SD: its position in the point, -1 where its SD is not signed."""
    position = {p.name: k for k, p in enumerate(elements)}
    variance_rows = structure.variance_rows()
    out = []
    for i in role.random:
        param = built.row_param[variance_rows[i]]
        signed = param >= 0 and built.free[param].signed
        out.append(position[built.free[param].name] if signed else -1)
    return np.asarray(out, dtype=np.int64)


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
            [KINDS["missing"], KINDS["first"], KINDS["last"]],
            KINDS["middle"],
        )
    return {"ordinal_lower": lower, "ordinal_upper": upper, "ordinal_kind": kind}


def _unit_values(structure, role: _Roles, raw, level: int) -> dict[str, np.ndarray]:
    """Each unit's covariates and continuous outcomes (0 where missing), and 1 where an outcome is present.

    Raises
    ------
    Unsupported
        For a missing covariate.
    """

    def columns(positions: list[int]) -> np.ndarray:
        names = [structure.variables[i] for i in positions]
        found = [raw.cluster_column(n) if level == 2 else raw.column(n) for n in names]
        n_units = raw.n_clusters if level == 2 else len(raw.frame)
        return np.stack(found, axis=1) if found else np.zeros((n_units, 0))

    if np.isnan(columns(role.covariates)).any():
        raise Unsupported("missing values of covariates")
    outcomes = columns(role.continuous)
    return {
        f"covariates_e{level}": columns(role.covariates_e),
        f"covariates_t{level}": columns(role.covariates_t),
        f"conditioning{level}": columns(role.conditioning),
        f"outcomes{level}": np.nan_to_num(outcomes, nan=0.0),
        f"present{level}": (~np.isnan(outcomes)).astype(float),
    }


def _between_arrays(within, role: _Roles, between, between_role: _Roles) -> dict[str, np.ndarray]:
    """Where level 1 reads its clusters' explicit values: the outcomes' between parts and random slopes.

    Raises
    ------
    Unsupported
        For a between part of a variable that is not an outcome, or a random slope on a latent variable.
    """
    column = {between.variables[i]: k for k, i in enumerate(between_role.explicit)}
    outcome, sources = role.outcome, [*role.covariates_t, *role.outcomes_t, *role.explicit]
    for i, name in enumerate(within.variables):
        if name in column and i not in outcome:
            raise Unsupported(f"the level-1 {within.roles[i]} variable {name!r} with a between part")
    slopes = [p for p in within.paths if p.slope]
    for path in slopes:
        if path.target not in outcome:
            raise Unsupported(f"a random slope on the latent variable {within.variables[path.target]!r}")
    zeros = len(between_role.explicit)  # the column of zeros the family appends
    offsets = [column.get(within.variables[i], zeros) for i in outcome]
    return {
        "l1_cluster_columns": np.asarray(offsets + [column[p.slope] for p in slopes], dtype=np.int64),
        "l1_slope_source": np.asarray([sources.index(p.source) for p in slopes], dtype=np.int64),
        "l1_slope_place": np.asarray(
            [k * len(outcome) + outcome.index(p.target) for k, p in enumerate(slopes)], dtype=np.int64
        ),
    }
