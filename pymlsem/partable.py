"""The parameter table: statements plus lavaan's defaults (see ``docs/architecture.md``)."""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from pymlsem.defaults import MODEL_TYPES, Row, VariableSets, apply_block_defaults, default_rows
from pymlsem.exceptions import DataError, ModelSpecificationError
from pymlsem.syntax.expressions import FUNCTIONS, expression_names
from pymlsem.syntax.model import MODEL_OPS, Modifier, ParsedModel, Statement

COLUMNS: tuple[str, ...] = ("id", "lhs", "op", "rhs", "level", "user", "free", "value", "start", "label",
                            "prior", "exo", "rv")  # fmt: skip


@dataclass
class ParTable:
    """A model's parameters, one row each, with the variable sets per level.

    Attributes
    ----------
    table
        One row per parameter; columns listed in :data:`COLUMNS` (see ``docs/architecture.md``).
    defined
        ``:=`` statements (defined parameters), in source order.
    constraints
        ``==``, ``<`` and ``>`` statements.
    observed, latent, exogenous
        Per level (1, 2): observed variables, latent variables, fixed.x covariates, in lavaan's order.
    within_only, between_only
        Observed variables that appear only in level-1 (level-2) statements of a two-level model.
    n_levels
        1 or 2.
    model_type
        ``"sem"``, ``"cfa"`` or ``"growth"``.
    meanstructure
        Whether intercepts/means are part of the model.
    """

    table: pd.DataFrame
    defined: list[Statement] = field(default_factory=list)
    constraints: list[Statement] = field(default_factory=list)
    observed: dict[int, list[str]] = field(default_factory=dict)
    latent: dict[int, list[str]] = field(default_factory=dict)
    exogenous: dict[int, list[str]] = field(default_factory=dict)
    within_only: list[str] = field(default_factory=list)
    between_only: list[str] = field(default_factory=list)
    n_levels: int = 1
    model_type: str = "sem"
    meanstructure: bool = False

    @property
    def n_free(self) -> int:
        """Number of free rows (before equality constraints from shared labels)."""
        return int((self.table["free"] > 0).sum())

    def equality_groups(self) -> dict[str, list[int]]:
        """Labels shared by several free rows, mapped to those rows' ``free`` numbers."""
        free = self.table[(self.table["free"] > 0) & (self.table["label"] != "")]
        groups = free.groupby("label", sort=False)["free"].apply(list).to_dict()
        return {k: [int(i) for i in v] for k, v in groups.items() if len(v) > 1}


def build_partable(parsed: ParsedModel, *, model_type: str = "sem",
                   data_columns: Iterable[str] | None = None,
                   meanstructure: bool | None = None) -> ParTable:  # fmt: skip
    """Build the parameter table of a parsed model with lavaan 0.6's defaults.

    Parameters
    ----------
    parsed
        Output of :func:`pymlsem.syntax.parse_model`.
    model_type
        ``"sem"`` or ``"cfa"`` (free observed intercepts, latent means 0) or ``"growth"`` (observed
        intercepts 0, latent means free, always a mean structure).
    data_columns
        Column names of the data; when given, every observed variable must be one of them.
    meanstructure
        Add intercepts/means. ``None``: yes for two-level and growth models and for models with a
        ``~1`` statement, no otherwise (lavaan's default without data).

    Returns
    -------
    ParTable

    Raises
    ------
    ModelSpecificationError
        For a model that parses but cannot be estimated as written.
    DataError
        When ``data_columns`` lacks an observed variable.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {sorted(MODEL_TYPES)}, not {model_type!r}")
    n_levels = parsed.n_levels
    blocks = _blocks(parsed)
    rv_names = _add_random_slopes(blocks)
    meanstructure = _meanstructure(parsed, n_levels, model_type, meanstructure)
    lv_by_level = {lev: VariableSets.from_statements(st).lv for lev, st in blocks.items()}
    _check_latents(blocks, lv_by_level, data_columns)

    global_names = VariableSets.from_statements([s for st in blocks.values() for s in st])
    rows: list[Row] = []
    sets: dict[int, VariableSets] = {}
    exogenous: dict[int, list[str]] = {}
    both_levels = _observed_at_both_levels(blocks) if n_levels == 2 else set()
    for lev, statements in blocks.items():
        names = sets[lev] = VariableSets.from_statements(statements)
        exogenous[lev] = [v for v in names.ov_x if v in global_names.ov_x and v not in both_levels]
        block = _merge_block(statements, names, lev, meanstructure)
        apply_block_defaults(block, names, model_type=model_type, meanstructure=meanstructure,
                             exo_names=exogenous[lev], free_means=rv_names)  # fmt: skip
        rows.extend(block)
    if n_levels == 2:  # intercepts of variables that also have a level-2 part sit at level 2
        between = {r.lhs for r in rows if r.op == "~1" and r.level == 2 and r.lhs in sets[2].ov}
        for r in rows:
            if r.op == "~1" and r.level == 1 and r.lhs in between:
                r.fix(0.0)
        _fix_within_means_of_shared_factors(rows, sets)
    _apply_modifiers(rows, blocks)
    table = _to_frame(rows)
    observed = {lev: s.ov for lev, s in sets.items()}
    pt = ParTable(
        table=table,
        defined=[s for s in parsed.statements if s.op == ":="],
        constraints=[s for s in parsed.statements if s.op in ("==", "<", ">")],
        observed=observed,
        latent={lev: s.lv for lev, s in sets.items()},
        exogenous=exogenous,
        n_levels=n_levels,
        model_type=model_type,
        meanstructure=meanstructure,
    )
    if n_levels == 2:
        pt.within_only = [v for v in observed[1] if v not in observed[2]]
        pt.between_only = [v for v in observed[2] if v not in observed[1]]
    _check_scales(pt)
    _check_expressions(pt)
    if data_columns is not None:
        _check_columns(pt, list(data_columns))
    return pt


def _blocks(parsed: ParsedModel) -> dict[int, list[Statement]]:
    """Model statements per level, dropping duplicated user statements with a warning."""
    levels = sorted(parsed.levels) if parsed.levels else [1]
    blocks: dict[int, list[Statement]] = {lev: [] for lev in levels}
    seen: set[tuple] = set()
    for s in parsed.statements:
        if s.op not in MODEL_OPS:
            continue
        lev = s.level or 1
        key = (lev, *Row(s.lhs, s.op, s.rhs, lev, 1).key)
        if key in seen:
            warnings.warn(f"duplicated statement {s.lhs} {s.op} {s.rhs} (line {s.line}) is ignored",
                          stacklevel=3)  # fmt: skip
            continue
        seen.add(key)
        blocks[lev].append(s)
    if parsed.n_levels == 2:
        for lev in (1, 2):
            if not blocks.get(lev):
                name = "level: 1 (within)" if lev == 1 else "level: 2 (between)"
                raise ModelSpecificationError(
                    f"the two-level model has no statements under {name}; add the model for that level "
                    "(e.g. a factor or the variances of its variables) or remove the 'level:' lines"
                )
    return blocks


def _observed_at_both_levels(blocks: dict[int, list[Statement]]) -> set[str]:
    """Observed variables named at both levels of a two-level model.

    Such a covariate is not fixed.x: it has a within and a between part (latent group-mean centering,
    Lüdtke et al. 2008), whose variances and mean are free parameters of the model.
    """
    named = [VariableSets.from_statements(blocks[lev]) for lev in (1, 2)]
    return set(named[0].ov) & set(named[1].ov)


def _add_random_slopes(blocks: dict[int, list[Statement]]) -> list[str]:
    """Add lavaan's level-2 phantom factor ``s =~ 0*s`` for each random slope ``rv("s")``."""
    rv_names = list(dict.fromkeys(s.modifier.random_slope for s in blocks.get(1, [])
                                  if s.modifier.random_slope))  # fmt: skip
    if not rv_names:
        return []
    if 2 not in blocks:
        raise ModelSpecificationError(
            f"random slope(s) {', '.join(rv_names)} need a two-level model: put the rv() statement under "
            "'level: 1' and the model of the slope under 'level: 2'"
        )
    for name in rv_names:
        blocks[2].append(Statement(name, "=~", name, 2, Modifier(fixed=0.0, random_slope=name)))
    return rv_names


def _meanstructure(parsed: ParsedModel, n_levels: int, model_type: str, requested: bool | None) -> bool:
    forced = n_levels == 2 or model_type == "growth"
    if forced and requested is False:
        what = "two-level" if n_levels == 2 else "growth"
        raise ModelSpecificationError(f"a {what} model always has a mean structure; drop meanstructure=False")
    if requested is None:
        return forced or any(s.op == "~1" for s in parsed.statements)
    return bool(requested)


def _check_latents(blocks: dict[int, list[Statement]], lv_by_level: dict[int, list[str]],
                   data_columns: Iterable[str] | None) -> None:  # fmt: skip
    columns = set(data_columns) if data_columns is not None else set()
    for lev, statements in blocks.items():
        for s in statements:
            for name in (s.lhs, s.rhs):
                other = [o for o, lvs in lv_by_level.items() if o != lev and name in lvs]
                if name and other and name not in lv_by_level[lev] and name not in columns:
                    raise ModelSpecificationError(
                        f"{name!r} is a latent variable at level {other[0]} but has no indicators at "
                        f"level {lev} (line {s.line}); define it there with '{name} =~ ...' or use a "
                        "different factor name at each level"
                    )
    for lev, lvs in lv_by_level.items():
        for name in lvs:
            if name in columns:
                raise ModelSpecificationError(
                    f"{name!r} is a latent variable (left of '=~' at level {lev}) and also a column of "
                    "the data; rename the factor so the two cannot be confused"
                )


def _merge_block(statements: list[Statement], names: VariableSets, level: int,
                 meanstructure: bool) -> list[Row]:  # fmt: skip
    """User rows in source order, then the defaults the user did not write."""
    rows = [Row(s.lhs, s.op, s.rhs, level, user=1) for s in statements]
    taken = {r.key for r in rows}
    for lhs, op, rhs in default_rows(names, meanstructure):
        row = Row(lhs, op, rhs, level, user=0)
        if row.key not in taken:
            taken.add(row.key)
            rows.append(row)
    return rows


def _apply_modifiers(rows: list[Row], blocks: dict[int, list[Statement]]) -> None:
    by_key = {(r.level, *r.key): r for r in rows if r.user}
    for lev, statements in blocks.items():
        for s in statements:
            row = by_key[(lev, *Row(s.lhs, s.op, s.rhs, lev, 1).key)]
            m = s.modifier
            if m.fixed is not None:
                row.fix(m.fixed)
            if m.free:
                row.free, row.value = True, float("nan")
            if m.start is not None:
                row.start = m.start
            if m.label is not None:
                row.label = m.label
            if m.prior is not None:
                row.prior = m.prior
            if m.random_slope is not None:  # a random slope: the level-1 row has no fixed value
                row.rv = m.random_slope
                if m.fixed is None:
                    row.free, row.value = False, float("nan")


def _to_frame(rows: list[Row]) -> pd.DataFrame:
    free_ids = []
    k = 0
    for r in rows:
        k += r.free
        free_ids.append(k if r.free else 0)
    data = {
        "id": range(1, len(rows) + 1),
        "lhs": [r.lhs for r in rows],
        "op": [r.op for r in rows],
        "rhs": [r.rhs for r in rows],
        "level": [r.level for r in rows],
        "user": [r.user for r in rows],
        "free": free_ids,
        "value": [float("nan") if r.free else r.value for r in rows],
        "start": [r.start for r in rows],
        "label": [r.label for r in rows],
        "prior": [r.prior for r in rows],
        "exo": [r.exo for r in rows],
        "rv": [r.rv for r in rows],
    }
    frame = pd.DataFrame(data, columns=list(COLUMNS))
    for col in ("id", "level", "user", "free", "exo"):
        frame[col] = frame[col].astype(int)
    return frame


def _check_scales(pt: ParTable) -> None:
    t = pt.table
    for lev, lvs in pt.latent.items():
        at = t[t["level"] == lev]
        for lv in lvs:
            loads = at[(at["op"] == "=~") & (at["lhs"] == lv) & (at["rhs"] != lv)]
            if loads.empty:  # phantom factor of a random slope
                continue
            var = at[(at["op"] == "~~") & (at["lhs"] == lv) & (at["rhs"] == lv)]
            fixed_load = ((loads["free"] == 0) & (loads["value"].fillna(0) != 0)).any()
            fixed_var = bool((var["free"] == 0).any())
            if not fixed_load and not fixed_var:
                raise ModelSpecificationError(
                    f"latent variable {lv!r} (level {lev}) has no scale: all its loadings and its variance "
                    f"are free; fix one loading (e.g. '{lv} =~ 1*{loads['rhs'].iloc[0]} + ...') or its "
                    f"variance ('{lv} ~~ 1*{lv}')"
                )


def _check_expressions(pt: ParTable) -> None:
    labels = set(pt.table["label"]) - {""}
    known = set(labels)
    for s in pt.defined + pt.constraints:
        if s.op == ":=" and s.lhs in labels:
            raise ModelSpecificationError(
                f"defined parameter {s.lhs!r} (line {s.line}) has the name of a parameter label; "
                "choose another name"
            )
        sides = [s.rhs] if s.op == ":=" else [s.lhs, s.rhs]
        for side in sides:
            for name in expression_names(side):
                if name not in known and name not in FUNCTIONS:
                    hint = (
                        f"; known labels: {', '.join(sorted(known))}"
                        if known
                        else ("; the model has no labels: label a parameter with e.g. 'y ~ a*x'")
                    )
                    raise ModelSpecificationError(
                        f"{name!r} in '{s.lhs} {s.op} {s.rhs}' (line {s.line}) is not a parameter label "
                        f"or an earlier defined parameter{hint}"
                    )
        if s.op == ":=":
            known.add(s.lhs)


def _check_columns(pt: ParTable, columns: list[str]) -> None:
    observed = list(dict.fromkeys(v for vs in pt.observed.values() for v in vs))
    missing = [v for v in observed if v not in columns]
    if missing:
        hints = []
        for v in missing:
            close = difflib.get_close_matches(v, columns, n=3, cutoff=0.5)
            hints.append(f"{v!r} (closest: {', '.join(close)})" if close else repr(v))
        raise DataError(
            f"observed variable(s) not in the data: {'; '.join(hints)}. Check the spelling, "
            "or define the name as a latent variable with '=~'"
        )


def _fix_within_means_of_shared_factors(rows: list[Row], sets: dict[int, VariableSets]) -> None:
    """Fix at 0 the level-1 means of latent variables measured only by variables with a level-2 part.

    A deliberate difference from lavaan, whose ``growth()`` leaves both ``iw ~ 1`` (level 1) and
    ``ib ~ 1`` (level 2) free in a two-level growth model: the data identify only their sum (each
    indicator's mean is the sum of its level-1 and level-2 implied means), so an ML fit is not unique
    and a posterior would be a ridge. The means then live at level 2, like the observed intercepts.
    """
    indicators: dict[str, set[str]] = {}
    for r in rows:
        if r.op == "=~" and r.level == 1:
            indicators.setdefault(r.lhs, set()).add(r.rhs)
    shared = {lv for lv, ind in indicators.items() if ind and ind <= set(sets[2].ov)}
    for r in rows:
        if r.op == "~1" and r.level == 1 and r.lhs in shared and not r.user:
            r.fix(0.0)
