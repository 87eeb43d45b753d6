"""The latent-variable PyMC model of a single- or two-level SEM (``method="latent"``).

Every latent quantity is an explicit PyMC variable: the between-level variables of each cluster (the
cluster effects of observed variables, between factors, random slopes) and the within-level latent
variables of each row, both non-centered. Observed variables are evaluated given them, row by row.
This is what random slopes, latent group-mean centering, ordered indicators, missing values and factor
scores need; on continuous random-intercept models it has the same posterior as the marginal builder
(:mod:`pymlsem.build.marginal`), only slower.

The model of one level
----------------------
The level's variables follow the RAM equations ``v = m + A v + u`` (see :mod:`pymlsem.build.ram`), whose
paths must be acyclic. Each variable has one of three roles:

``data``
    an exogenous covariate (lavaan's fixed.x): its values are conditioned on, never modelled;
``explicit``
    a latent variable, and at level 2 the between part of every observed variable that also has a within
    part: ``v = m + A v + u`` with ``u = L z`` for standard normal ``z`` (``L L' = Cov(u | data)``);
``observed``
    an observed endogenous variable: its residual ``u = v - m - A v`` has the normal density with the
    residual covariance (continuous), or the variable is an ordered indicator whose latent response is
    ``y* = m + A v + e`` with standard normal (probit) or logistic (logit) ``e`` and thresholds.

Taking the variables in path order, this is the joint density of the level (the Jacobian of a recursive
system is 1). Disturbances that covary with exogenous covariates are drawn from their conditional
distribution given the covariates. Level 1 adds, for a variable with a between part, its cluster's value:
an observed ``y_ij`` is ``y_b[j] + y_w[ij]``, and a random slope ``rv("s")`` is the value of ``s`` in the
row's cluster.

Missing values
--------------
A missing value of a continuous variable that predicts nothing at its level and has no residual
covariance is left out of the likelihood (exact: its density integrates to one). Other missing values
become parameters (``missing_<name>``, data augmentation) whose posterior is their conditional
distribution. Missing ordered responses are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from pymlsem.build.categorical import ordinal_loglik_matrix
from pymlsem.build.node_traces import without_node_traces
from pymlsem.build.parameters import FreeParameter
from pymlsem.build.ram import LevelLayout
from pymlsem.build.table_values import add_parameters
from pymlsem.data.raw import RawData
from pymlsem.exceptions import ModelSpecificationError
from pymlsem.partable import ParTable

LOG_2PI = float(np.log(2.0 * np.pi))
DATA, EXPLICIT, OBSERVED = "data", "explicit", "observed"
#: name of the deterministic holding each level's explicit variables, and its unit dimension
LEVEL_VALUES = {1: ("within", "obs"), 2: ("between", "cluster")}


@dataclass(frozen=True)
class Path:
    """A path ``target <- source`` of one level: its table row, or the random slope that is its value."""

    target: int
    source: int
    row: int
    slope: str = ""


@dataclass(frozen=True)
class LevelStructure:
    """Roles, paths and parameter rows of the variables of one level (plain numpy, built once)."""

    level: int
    variables: tuple[str, ...]
    roles: tuple[str, ...]
    paths: tuple[Path, ...]
    order: tuple[int, ...]
    mean_rows: dict[int, int]
    cov_rows: tuple[tuple[int, int, int], ...]
    ordered: frozenset[str] = field(default_factory=frozenset)

    def indices(self, role: str) -> list[int]:
        """Positions of the variables with ``role``."""
        return [i for i, r in enumerate(self.roles) if r == role]

    def sources(self) -> set[int]:
        """Variables that predict another variable of this level."""
        return {p.source for p in self.paths}

    def covarying(self) -> set[int]:
        """Variables with a (structurally non-zero) covariance with another variable."""
        return {k for i, j, _ in self.cov_rows if i != j for k in (i, j)}

    def variance_rows(self) -> dict[int, int]:
        """The table row of each variable's (structurally non-zero) variance, by variable position."""
        return {i: r for i, j, r in self.cov_rows if i == j}


def level_structure(partable: ParTable, level: int, ordered: frozenset[str]) -> LevelStructure:
    """Lay out one level of ``partable`` for the latent builder.

    Raises
    ------
    ModelSpecificationError
        For a non-recursive model, an ordered covariate, or a covariance between a latent disturbance
        and an observed residual.
    """
    table = partable.table
    layout = LevelLayout.from_table(table, level, partable.observed[level], partable.latent[level])
    variables = layout.variables
    pos = {v: i for i, v in enumerate(variables)}
    exogenous = set(partable.exogenous.get(level, []))
    has_within = set(partable.observed.get(1, []))
    roles = []
    for v in variables:
        if v in partable.latent[level]:
            roles.append(EXPLICIT)
        elif v in exogenous:
            roles.append(DATA)
        elif level == 2 and v in has_within:
            roles.append(EXPLICIT)  # the cluster effect of a variable with a within part
        else:
            roles.append(OBSERVED)
    paths, mean_rows, cov_rows = [], {}, []
    for r, row in enumerate(table.itertuples(index=False)):
        if int(row.level) != level:
            continue
        if row.op in ("=~", "~"):
            target, source = (row.rhs, row.lhs) if row.op == "=~" else (row.lhs, row.rhs)
            if target == source:
                continue  # lavaan's phantom factor of a random slope, ``s =~ 0*s``
            fixed_zero = int(row.free) == 0 and not row.rv and float(row.value) == 0.0
            if not fixed_zero:
                paths.append(Path(pos[target], pos[source], r, str(row.rv or "")))
        elif row.op == "~1":
            mean_rows[pos[row.lhs]] = r
        elif row.op == "~~":
            fixed_zero = int(row.free) == 0 and int(row.exo) == 0 and float(row.value) == 0.0
            if not fixed_zero:
                cov_rows.append((pos[row.lhs], pos[row.rhs], r))
    structure = LevelStructure(
        level,
        variables,
        tuple(roles),
        tuple(paths),
        _path_order(variables, paths),
        mean_rows,
        tuple(cov_rows),
        frozenset(v for v in ordered if v in variables),
    )
    _check_structure(structure)
    return structure


def _path_order(variables: tuple[str, ...], paths: list[Path]) -> tuple[int, ...]:
    """The variables in an order where every path's source comes before its target."""
    parents = {i: {p.source for p in paths if p.target == i and p.source != i} for i in range(len(variables))}
    order: list[int] = []
    done: set[int] = set()
    while len(order) < len(variables):
        ready = [i for i in range(len(variables)) if i not in done and parents[i] <= done]
        if not ready:
            cycle = [variables[i] for i in range(len(variables)) if i not in done]
            raise ModelSpecificationError(
                f"the paths among {', '.join(cycle)} form a cycle (a non-recursive model); "
                "method='latent' needs recursive paths: fit it with method='marginal'"
            )
        order.extend(ready)
        done.update(ready)
    return tuple(order)


def _check_structure(s: LevelStructure) -> None:
    for p in s.paths:
        if s.variables[p.source] in s.ordered:
            raise ModelSpecificationError(
                f"the ordered variable {s.variables[p.source]!r} predicts {s.variables[p.target]!r}; "
                "ordered variables can only be outcomes or indicators"
            )
    for i, j, _ in s.cov_rows:
        roles = {s.roles[i], s.roles[j]}
        if i != j and roles == {EXPLICIT, OBSERVED}:
            raise ModelSpecificationError(
                f"method='latent' cannot model the covariance {s.variables[i]} ~~ {s.variables[j]} "
                f"(level {s.level}) between a latent disturbance and an observed residual; "
                "use method='marginal' or model it with a latent variable"
            )
        if i != j and roles == {DATA, OBSERVED}:
            raise ModelSpecificationError(
                f"method='latent' conditions on the covariates and cannot model the covariance "
                f"{s.variables[i]} ~~ {s.variables[j]} (level {s.level}) between an observed residual and a "
                "covariate; regress the variable on the covariate instead, or use method='marginal'"
            )
        if i != j and (s.variables[i] in s.ordered or s.variables[j] in s.ordered):
            raise ModelSpecificationError(
                f"residual covariances of ordered variables ({s.variables[i]} ~~ {s.variables[j]}) are "
                "not supported"
            )


@dataclass(frozen=True)
class LevelLikelihood:
    """One level's likelihood given the latent variables, per unit (rows of level 1, clusters of level 2).

    Graph expressions in terms of the model's random variables, for the pointwise log-likelihood and
    replicated data (:mod:`pymlsem.workflow.conditional`).

    Attributes
    ----------
    unit_loglik
        Each unit's log-likelihood, shape (units,): the terms of the potential ``loglik_level<k>``; None
        when the level has no observed variables.
    continuous
        The continuous observed variables.
    mean, cov
        Their conditional means given the latent variables and the observed predictors (units, k), and
        their residual covariance (k, k); None without continuous variables.
    ordered
        The ordered observed variables.
    eta, thresholds
        Their latent responses' means (units, m) and each one's thresholds.
    shift, codes, other_loglik
        ``unit_loglik`` of other data with the same missing values (replicated data), built by the same
        functions: ``other_loglik`` is in terms of two inputs, ``shift`` (units, k), the other data's
        continuous values minus the data's (0 where missing), and ``codes`` (units, m), their ordered
        variables' category codes (-1 where missing). None where the level has no such variables.
    """

    unit_loglik: pt.TensorVariable | None
    continuous: tuple[str, ...]
    mean: pt.TensorVariable | None
    cov: pt.TensorVariable | None
    ordered: tuple[str, ...]
    eta: pt.TensorVariable | None
    thresholds: tuple[pt.TensorVariable, ...]
    shift: pt.TensorVariable | None = None
    codes: pt.TensorVariable | None = None
    other_loglik: pt.TensorVariable | None = None


@dataclass
class LatentModel:
    """A built latent-variable PyMC model and what is needed to read its posterior.

    Attributes
    ----------
    model, free, row_param, defined, layouts
        As for :class:`~pymlsem.build.marginal.MarginalModel`.
    structures
        The :class:`LevelStructure` of each level.
    likelihood
        Each level's :class:`LevelLikelihood`.
    """

    model: pm.Model
    free: list[FreeParameter]
    row_param: np.ndarray
    defined: list[str]
    layouts: dict[int, LevelLayout]
    structures: dict[int, LevelStructure]
    likelihood: dict[int, LevelLikelihood]


@without_node_traces
def build_latent_model(
    partable: ParTable,
    raw: RawData,
    stats,
    exo_values: np.ndarray,
    *,
    codes: Mapping[str, np.ndarray] | None = None,
    link: str = "probit",
    priors: Mapping[str, str] | None = None,
    centered: tuple[int, ...] = (),
    default_priors: str = "scaled",
) -> LatentModel:
    """Build the latent-variable PyMC model of ``partable`` for the rows of ``raw``.

    Parameters
    ----------
    partable
        The parameter table.
    raw
        The data row by row (:func:`pymlsem.data.raw.prepare_raw_data`).
    stats
        Sufficient statistics of the complete rows (start values only).
    exo_values
        Values of the ``exo`` rows of the table (sample moments of exogenous covariates).
    codes
        Ordered variables: category codes 0..K-1 per row, -1 where missing.
    link
        ``"probit"`` or ``"logit"`` for ordered variables.
    priors
        User priors by class or parameter name.
    centered
        Levels whose disturbances are sampled as they are (centered) instead of as standard normal
        ``z`` (non-centered, the default): better for the between level when clusters are large.
    default_priors
        ``"scaled"`` (the default priors in the data's units) or ``"blavaan"``; see :mod:`pymlsem.priors`.
    """
    codes = dict(codes or {})
    ordered = frozenset(codes)
    levels = list(range(1, partable.n_levels + 1))
    structures = {level: level_structure(partable, level, ordered) for level in levels}
    layouts = {
        level: LevelLayout.from_table(partable.table, level, partable.observed[level], partable.latent[level])
        for level in levels
    }
    coords = {"obs": np.arange(len(raw.frame))}
    if partable.n_levels == 2:
        coords["cluster"] = raw.cluster_ids
    signed = signed_rows(structures[2]) if partable.n_levels == 2 and 2 not in centered else frozenset()
    with pm.Model(coords=coords) as model:
        values = add_parameters(
            partable, stats, exo_values, priors=priors, default_priors=default_priors, signed_rows=signed
        )
        thresholds = _thresholds(partable, values.rows)
        between, likelihood = None, {}
        if partable.n_levels == 2:
            level_values, level_names, likelihood[2] = _level(
                structures[2], values.rows, raw, codes, thresholds, link, None, 2 in centered, values.signs
            )
            between = (level_values, level_names)
        *_, likelihood[1] = _level(
            structures[1], values.rows, raw, codes, thresholds, link, between, 1 in centered, values.signs
        )
    return LatentModel(model, values.free, values.row_param, values.defined, layouts, structures, likelihood)


def _thresholds(partable: ParTable, rows: pt.TensorVariable) -> dict[str, pt.TensorVariable]:
    """The thresholds of each ordered variable, in the order t1, t2, ..."""
    table = partable.table
    found: dict[str, list[tuple[int, int]]] = {}
    for r, row in enumerate(table.itertuples(index=False)):
        if row.op == "|":
            found.setdefault(row.lhs, []).append((int(str(row.rhs).lstrip("t")), r))
    return {name: rows[[r for _, r in sorted(pairs)]] for name, pairs in found.items()}


def _level(
    s: LevelStructure,
    rows: pt.TensorVariable,
    raw: RawData,
    codes: Mapping[str, np.ndarray],
    thresholds: Mapping[str, pt.TensorVariable],
    link: str,
    between: tuple[pt.TensorVariable, tuple[str, ...]] | None,
    centered: bool = False,
    signs: pt.TensorVariable | None = None,
) -> tuple[pt.TensorVariable, tuple[str, ...], LevelLikelihood]:
    """Add one level's variables and likelihood to the model.

    ``between`` is the level-2 result ``(values, names)`` when this is level 1 of a two-level model;
    ``signs`` each table row's sign (:class:`pymlsem.build.table_values.TableValues`).
    Variables that predict others are computed one at a time in path order; the others (most
    indicators) together, as matrices, so that the graph does not grow with the number of indicators.

    Returns
    -------
    tuple
        The values of the level's variables, shape (units, variables) in ``s.variables`` order (ordered
        indicators hold zeros), those names, and the level's :class:`LevelLikelihood`.
    """
    deterministic, unit_dim = LEVEL_VALUES[s.level] if raw.cluster_ids is not None else ("latent", "obs")
    n_units = len(raw.frame) if unit_dim == "obs" else raw.n_clusters
    names = s.variables
    cluster = _ClusterValues(between, raw.cluster_index) if between is not None else None
    data_values = {i: pt.as_tensor(_column(raw, names[i], s.level)) for i in s.indices(DATA)}
    observed_values = _observed_columns(s, raw, codes)
    shift, disturbance = _disturbances(
        s, rows, data_values, n_units, deterministic, unit_dim, centered, signs
    )
    sources = s.sources()
    terminal = [i for i in s.order if s.roles[i] != DATA and i not in sources]
    core = [i for i in s.order if i not in terminal]

    def coefficient(p: Path) -> pt.TensorVariable:
        return cluster.column(p.slope) if p.slope else rows[p.row]

    values: dict[int, pt.TensorVariable] = {}
    residuals: dict[int, pt.TensorVariable] = {}
    for i in core:  # one at a time, in path order
        if s.roles[i] == DATA:
            values[i] = data_values[i]
            continue
        linear = rows[s.mean_rows[i]] if i in s.mean_rows else pt.as_tensor(0.0)
        for p in (p for p in s.paths if p.target == i):
            linear = linear + coefficient(p) * values[p.source]
        linear = linear + shift.get(i, 0.0)
        if s.roles[i] == EXPLICIT:
            values[i] = linear + disturbance.get(i, pt.zeros(n_units))
            continue
        offset = cluster.column(names[i]) if cluster is not None and cluster.has(names[i]) else 0.0
        values[i] = observed_values[i] - offset
        residuals[i] = values[i] - linear

    loglik, other_loglik = [], []
    block = None
    ordered_names, eta, codes_input = (), None, None
    if terminal:
        linear = _terminal_linear(s, rows, terminal, values, coefficient, shift, n_units)
        with_between = [a for a, i in enumerate(terminal) if cluster is not None and cluster.has(names[i])]
        offsets = cluster.columns([names[terminal[a]] for a in with_between]) if with_between else None
        explicit = [a for a, i in enumerate(terminal) if s.roles[i] == EXPLICIT and i in disturbance]
        if explicit:
            linear = pt.inc_subtensor(
                linear[:, explicit], pt.stack([disturbance[terminal[a]] for a in explicit], axis=1)
            )
        continuous = [
            a for a, i in enumerate(terminal) if s.roles[i] == OBSERVED and names[i] not in s.ordered
        ]
        for a in continuous:
            residuals[terminal[a]] = observed_values[terminal[a]] - linear[:, a]
        if offsets is not None:
            linear = pt.inc_subtensor(linear[:, with_between], offsets)
            for k, a in enumerate(with_between):
                if a in continuous:
                    residuals[terminal[a]] = residuals[terminal[a]] - offsets[:, k]
        ordered = [a for a, i in enumerate(terminal) if s.roles[i] == OBSERVED and names[i] in s.ordered]
        loglik += _ordinal_terms(s, terminal, ordered, linear, thresholds, codes, link)
        if ordered:
            ordered_names, eta = tuple(names[terminal[a]] for a in ordered), linear[:, ordered]
            codes_input = pt.lmatrix(f"codes_level{s.level}")
            other_codes = {name: codes_input[:, k] for k, name in enumerate(ordered_names)}
            other_loglik += _ordinal_terms(s, terminal, ordered, linear, thresholds, other_codes, link)
        block = linear
    loglik += _residual_loglik(s, rows, residuals, raw)
    unit_loglik = pt.add(*loglik) if loglik else None  # (units,): each row's (or cluster's) terms
    if unit_loglik is not None:
        pm.Potential(f"loglik_level{s.level}", pt.sum(unit_loglik))
    index = sorted(residuals)
    shift = pt.matrix(f"shift_level{s.level}") if index else None
    if index:
        shifted = {i: residuals[i] + shift[:, k] for k, i in enumerate(index)}
        other_loglik += _residual_loglik(s, rows, shifted, raw)
    likelihood = LevelLikelihood(
        unit_loglik=unit_loglik,
        continuous=tuple(names[i] for i in index),
        mean=pt.stack([observed_values[i] - residuals[i] for i in index], axis=1) if index else None,
        cov=_covariance(s, rows, index) if index else None,
        ordered=ordered_names,
        eta=eta,
        thresholds=tuple(thresholds[name] for name in ordered_names),
        shift=shift,
        codes=codes_input,
        other_loglik=pt.add(*other_loglik) if other_loglik else None,
    )

    columns = [values[i] if i in values else pt.zeros(n_units) for i in core]
    everything = pt.stack(columns, axis=1) if columns else None
    if block is not None:
        everything = block if everything is None else pt.concatenate([everything, block], axis=1)
    order = [*core, *terminal]
    everything = everything[:, [order.index(i) for i in range(len(names))]]
    explicit_all = s.indices(EXPLICIT)
    if explicit_all:
        pm.modelcontext(None).add_coord(f"{deterministic}_variable", [names[i] for i in explicit_all])
        pm.Deterministic(
            deterministic, everything[:, explicit_all], dims=(unit_dim, f"{deterministic}_variable")
        )
    return everything, names, likelihood


class _ClusterValues:
    """Level-2 values looked up for the rows of level 1 (one gather of the whole matrix)."""

    def __init__(self, between: tuple[pt.TensorVariable, tuple[str, ...]], index: np.ndarray) -> None:
        values, names = between
        # a tensor index: a numpy array would be scanned element by element in Python by PyTensor
        self.rows = values[pt.as_tensor(index)]
        self.position = {name: k for k, name in enumerate(names)}

    def has(self, name: str) -> bool:
        return name in self.position

    def column(self, name: str) -> pt.TensorVariable:
        return self.rows[:, self.position[name]]

    def columns(self, names: list[str]) -> pt.TensorVariable:
        return self.rows[:, [self.position[n] for n in names]]


def _terminal_linear(s, rows, terminal, values, coefficient, shift, n_units) -> pt.TensorVariable:
    """``m + A v`` (+ the covariate shift) of the variables that predict nothing, as a (units, t) matrix."""
    where = {i: a for a, i in enumerate(terminal)}
    means = [(where[i], r) for i, r in s.mean_rows.items() if i in where]
    linear = pt.zeros((n_units, len(terminal)))
    if means:
        intercepts = pt.zeros(len(terminal))
        intercepts = pt.set_subtensor(intercepts[[a for a, _ in means]], rows[[r for _, r in means]])
        linear = linear + intercepts[None, :]
    fixed = [p for p in s.paths if p.target in where and not p.slope]
    if fixed:
        sources = sorted({p.source for p in fixed})
        column = {src: k for k, src in enumerate(sources)}
        weights = pt.zeros((len(terminal), len(sources)))
        weights = pt.set_subtensor(
            weights[[where[p.target] for p in fixed], [column[p.source] for p in fixed]],
            rows[[p.row for p in fixed]],
        )
        linear = linear + pt.stack([values[src] for src in sources], axis=1) @ weights.T
    for p in (p for p in s.paths if p.target in where and p.slope):
        linear = pt.inc_subtensor(linear[:, where[p.target]], coefficient(p) * values[p.source])
    for i in (i for i in terminal if i in shift):
        linear = pt.inc_subtensor(linear[:, where[i]], shift[i])
    return linear


def _ordinal_terms(s, terminal, ordered, linear, thresholds, codes, link) -> list[pt.TensorVariable]:
    """Ordered indicators' log-likelihood per unit, one vectorised term per number of categories."""

    by_size: dict[int, list[int]] = {}
    for a in ordered:
        by_size.setdefault(int(thresholds[s.variables[terminal[a]]].type.shape[0]), []).append(a)
    terms = []
    for _, group in sorted(by_size.items()):
        group_names = [s.variables[terminal[a]] for a in group]
        columns = [codes[name] for name in group_names]
        symbolic = any(isinstance(c, pt.Variable) for c in columns)
        codes_matrix = pt.stack(columns, axis=1) if symbolic else np.stack(columns, axis=1)
        if s.level == 2:
            raise ModelSpecificationError(
                f"between-only ordered variables ({', '.join(group_names)}) are not supported yet"
            )
        taus = pt.stack([thresholds[name] for name in group_names], axis=0)
        terms.append(ordinal_loglik_matrix(linear[:, group], taus, codes_matrix, link=link, per_row=True))
    return terms


def _column(raw: RawData, name: str, level: int) -> np.ndarray:
    return raw.cluster_column(name) if level == 2 and raw.cluster_ids is not None else raw.column(name)


def _observed_columns(
    s: LevelStructure, raw: RawData, codes: Mapping[str, np.ndarray]
) -> dict[int, pt.TensorVariable]:
    """Values of the continuous observed variables; missing values that matter become parameters."""
    needed = s.sources() | s.covarying()
    out = {}
    for i in s.indices(OBSERVED):
        name = s.variables[i]
        if name in codes:
            continue
        column = _column(raw, name, s.level)
        missing = np.flatnonzero(np.isnan(column))
        if missing.size and i in needed:
            start = float(np.nanmean(column))
            imputed = pm.Flat(f"missing_{name}", shape=missing.size, initval=np.full(missing.size, start))
            out[i] = pt.set_subtensor(pt.as_tensor(np.nan_to_num(column))[missing], imputed)
        else:
            out[i] = pt.as_tensor(np.nan_to_num(column))  # missing entries are masked in the likelihood
    return out


def _covariance(s: LevelStructure, rows: pt.TensorVariable, index: list[int]) -> pt.TensorVariable:
    """The (co)variance block of ``index`` from the level's ``~~`` rows."""
    where = {v: k for k, v in enumerate(index)}
    cov = pt.zeros((len(index), len(index)))
    for i, j, r in s.cov_rows:
        if i in where and j in where:
            cov = pt.set_subtensor(cov[where[i], where[j]], rows[r])
            if i != j:
                cov = pt.set_subtensor(cov[where[j], where[i]], rows[r])
    return cov


def _disturbances(
    s: LevelStructure,
    rows: pt.TensorVariable,
    data_values: Mapping[int, pt.TensorVariable],
    n_units: int,
    name: str,
    unit_dim: str,
    centered: bool = False,
    signs: pt.TensorVariable | None = None,
) -> tuple[dict[int, pt.TensorVariable], dict[int, pt.TensorVariable]]:
    """Conditional mean shifts given the covariates, and the non-centered disturbances of explicit variables.

    The non-centered disturbances are ``z L'`` with each column of the Cholesky factor ``L`` times the sign
    of its variable's signed SD (``signs``, by table row; see :func:`signed_rows`), so that a disturbance is
    ``z s``, smooth in ``s`` through 0.

    Returns ``(shift, disturbance)``, each by variable position; variables absent from ``disturbance``
    have no random part (variance fixed at 0).
    """
    data = s.indices(DATA)
    linked = {k for i, j, _ in s.cov_rows for k, other in ((i, j), (j, i)) if other in data and k not in data}
    shift: dict[int, pt.TensorVariable] = {}
    conditional_cov: dict[tuple[int, int], pt.TensorVariable] = {}
    if linked:
        linked_list = sorted(linked)
        s_dd = _covariance(s, rows, data)
        full = _covariance(s, rows, [*data, *linked_list])
        s_dl = full[: len(data), len(data) :]
        coef = pt.linalg.solve(s_dd, s_dl, assume_a="pos")  # Sigma_dd^-1 Sigma_dl
        centred = pt.stack([data_values[d] - rows[s.mean_rows[d]] for d in data], axis=1)
        moved = centred @ coef
        reduction = s_dl.T @ coef
        for a, i in enumerate(linked_list):
            shift[i] = moved[:, a]
            for b, j in enumerate(linked_list):
                conditional_cov[(i, j)] = reduction[a, b]
    explicit = s.indices(EXPLICIT)
    variance_rows = s.variance_rows()
    random = [i for i in explicit if i in variance_rows]
    if not random:
        return shift, {}
    cov = _covariance(s, rows, random)
    for a, i in enumerate(random):
        for b, j in enumerate(random):
            if (i, j) in conditional_cov:
                cov = pt.set_subtensor(cov[a, b], cov[a, b] - conditional_cov[(i, j)])
    model = pm.modelcontext(None)
    dim = f"{name}_disturbance"
    model.add_coord(dim, [s.variables[i] for i in random])
    dense = any(i != j and i in random and j in random for i, j, _ in s.cov_rows) or bool(linked)
    if centered:  # the disturbances themselves: better when each unit's data pin them down
        if dense:
            chol = pt.linalg.cholesky(cov, lower=True)
            scaled = pm.MvNormal(f"{name}_u", mu=pt.zeros(len(random)), chol=chol, dims=(unit_dim, dim))
        else:
            scaled = pm.Normal(f"{name}_u", 0.0, pt.sqrt(pt.diagonal(cov))[None, :], dims=(unit_dim, dim))
        return shift, {i: scaled[:, a] for a, i in enumerate(random)}
    z = pm.Normal(f"{name}_z", 0.0, 1.0, dims=(unit_dim, dim))
    sign = 1.0 if signs is None else signs[[variance_rows[i] for i in random]][None, :]
    if dense:
        scaled = z @ (pt.linalg.cholesky(cov, lower=True) * sign).T
    else:
        scaled = z * (pt.sqrt(pt.diagonal(cov))[None, :] * sign)
    return shift, {i: scaled[:, a] for a, i in enumerate(random)}


def signed_rows(s: LevelStructure) -> frozenset[int]:
    """The variance rows of the level's explicit variables whose SD is sampled with its sign.

    A variable with a disturbance that covaries with nothing else has the column ``s e_i`` in the Cholesky
    factor of the disturbances' covariance, so its non-centered disturbance ``z s`` is smooth in a signed
    ``s`` and the posterior is symmetric in ``(s, z) -> (-s, -z)``. Sampled so, an SD whose posterior
    reaches 0 (a between-level variance of a few dozen clusters, often) has no boundary there, where its
    logarithm would stretch into a long tail.
    """
    explicit, covarying = set(s.indices(EXPLICIT)), s.covarying()
    return frozenset(r for i, r in s.variance_rows().items() if i in explicit and i not in covarying)


def _residual_loglik(
    s: LevelStructure, rows: pt.TensorVariable, residuals: Mapping[int, pt.TensorVariable], raw: RawData
) -> list[pt.TensorVariable]:
    """Normal log-density of each unit's continuous observed residuals (independent, or jointly normal)."""
    if not residuals:
        return []
    index = sorted(residuals)
    covarying = s.covarying() & set(index)
    terms = []
    singles = [i for i in index if i not in covarying]
    if singles:
        variances = pt.diagonal(_covariance(s, rows, singles))
        # a missing value of a variable that predicts others is a parameter (missing_<name>): it counts
        sources = s.sources()
        observed = np.stack(
            [~np.isnan(_column(raw, s.variables[i], s.level)) | (i in sources) for i in singles], axis=1
        )
        squares = pt.stack([residuals[i] for i in singles], axis=1) ** 2 / variances[None, :]
        if not observed.all():
            squares = pt.switch(observed, squares, 0.0)
        constants = pt.as_tensor(observed.astype(float)) * (LOG_2PI + pt.log(variances))[None, :]
        terms.append(-0.5 * pt.sum(squares + constants, axis=1))
    if covarying:
        group = sorted(covarying)
        cov = _covariance(s, rows, group)
        stacked = pt.stack([residuals[i] for i in group], axis=1)
        terms.append(pm.logp(pm.MvNormal.dist(mu=pt.zeros(len(group)), cov=cov), stacked))
    return terms
