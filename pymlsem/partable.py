"""The parameter table: statements plus lavaan's defaults (see ``docs/architecture.md``)."""

from __future__ import annotations

import difflib
import numbers
import warnings
from collections.abc import Iterable, Mapping
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
    ordered
        Ordered (binary/ordinal) observed variables mapped to their number of categories K, in the order
        of the observed variables; their thresholds are the rows ``y | t1`` ... ``y | t{K-1}``.
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
    ordered: dict[str, int] = field(default_factory=dict)
    n_levels: int = 1
    model_type: str = "sem"
    meanstructure: bool = False

    @property
    def n_free(self) -> int:
        """Number of free rows (before equality constraints from shared labels)."""
        return int((self.table["free"] > 0).sum())

    @property
    def random_slopes(self) -> list[str]:
        """Names of the random slopes (``rv("s")*x``), sorted."""
        return sorted(set(self.table.loc[self.table["rv"] != "", "rv"]))

    @property
    def ordered_variables(self) -> list[str]:
        """Ordered (binary/ordinal) indicators: the variables with thresholds (``y | t1``), sorted."""
        return sorted(set(self.table.loc[self.table["op"] == "|", "lhs"]))

    @property
    def needs_latent_builder(self) -> bool:
        """Whether only the explicit latent-variable builder fits the model (random slopes, ordered items)."""
        return bool(self.random_slopes or self.ordered_variables)

    def equality_groups(self) -> dict[str, list[int]]:
        """Labels shared by several free rows, mapped to those rows' ``free`` numbers."""
        free = self.table[(self.table["free"] > 0) & (self.table["label"] != "")]
        groups = free.groupby("label", sort=False)["free"].apply(list).to_dict()
        return {k: [int(i) for i in v] for k, v in groups.items() if len(v) > 1}


def build_partable(parsed: ParsedModel, *, model_type: str = "sem",
                   data_columns: Iterable[str] | None = None,
                   meanstructure: bool | None = None,
                   ordered: Mapping[str, int] | None = None,
                   std_lv: bool = False) -> ParTable:  # fmt: skip
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
        Add intercepts/means. ``None``: yes for two-level and growth models, for models with a
        ``~1`` statement and for models with ordered variables, no otherwise (lavaan's default without
        data).
    ordered
        Ordered (binary/ordinal) observed variables mapped to their number of categories K >= 2 (see
        :func:`pymlsem.data.categorical.category_counts`), lavaan's ``ordered=``. Each gets the free
        thresholds ``y | t1`` ... ``y | t{K-1}`` (unless written in the model, which keeps their
        modifiers), its intercepts fixed at 0 and its residual variance at its lowest level fixed at 1
        (theta parameterization, unless written in the model). In a two-level model the thresholds of a
        variable observed at level 2 are between-level parameters (as in Mplus) and its level-2 variance
        stays free. A variable with ``|`` statements in the model is ordered too, with one category more
        than its thresholds.
    std_lv
        lavaan's ``std.lv = TRUE``: every latent variable defined by ``=~`` has its (residual) variance
        fixed at 1 and its first loading free, at every level (statements in the model keep their
        modifiers: ``f ~~ NA*f`` frees a variance again).

    Returns
    -------
    ParTable

    Raises
    ------
    ModelSpecificationError
        For a model that parses but cannot be estimated as written, and for an invalid ``ordered``
        (a name that is not an observed variable, K < 2, an exogenous covariate, thresholds in the
        model that do not match K or sit at the wrong level).
    DataError
        When ``data_columns`` lacks an observed variable.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {sorted(MODEL_TYPES)}, not {model_type!r}")
    n_levels = parsed.n_levels
    blocks = _blocks(parsed)
    rv_names = _add_random_slopes(blocks)
    categories = _ordered_categories(ordered, blocks)
    meanstructure = _meanstructure(parsed, n_levels, model_type, meanstructure, has_ordered=bool(categories))
    lv_by_level = {lev: VariableSets.from_statements(st).lv for lev, st in blocks.items()}
    _check_latents(blocks, lv_by_level, data_columns)
    ov_by_level = {lev: VariableSets.from_statements(st).ov for lev, st in blocks.items()}
    threshold_level, lowest_level = _ordered_levels(categories, blocks, ov_by_level, lv_by_level)

    global_names = VariableSets.from_statements([s for st in blocks.values() for s in st])
    rows: list[Row] = []
    sets: dict[int, VariableSets] = {}
    exogenous: dict[int, list[str]] = {}
    both_levels = _observed_at_both_levels(blocks) if n_levels == 2 else set()
    for lev, statements in blocks.items():
        names = sets[lev] = VariableSets.from_statements(statements, ordered=categories)
        exogenous[lev] = [v for v in names.ov_x if v in global_names.ov_x and v not in both_levels]
        _check_ordered_not_exogenous(categories, exogenous[lev])
        thresholds = {v: categories[v] - 1 for v in names.ov_ord if threshold_level[v] == lev}
        block = _merge_block(statements, names, lev, meanstructure, thresholds)
        apply_block_defaults(block, names, model_type=model_type, meanstructure=meanstructure,
                             exo_names=exogenous[lev], free_means=rv_names,
                             unit_variances=[v for v in names.ov_ord if lowest_level[v] == lev],
                             std_lv=std_lv)  # fmt: skip
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
    observed_names = list(dict.fromkeys(v for vs in observed.values() for v in vs))
    pt = ParTable(
        table=table,
        defined=[s for s in parsed.statements if s.op == ":="],
        constraints=[s for s in parsed.statements if s.op in ("==", "<", ">")],
        observed=observed,
        latent={lev: s.lv for lev, s in sets.items()},
        exogenous=exogenous,
        ordered={v: categories[v] for v in observed_names if v in categories},
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


def _meanstructure(parsed: ParsedModel, n_levels: int, model_type: str, requested: bool | None, *,
                   has_ordered: bool = False) -> bool:  # fmt: skip
    forced = n_levels == 2 or model_type == "growth" or has_ordered
    if forced and requested is False:
        what = "two-level" if n_levels == 2 else "growth" if model_type == "growth" else "categorical"
        raise ModelSpecificationError(
            f"a {what} model always has a mean structure (thresholds, intercepts); drop meanstructure=False"
        )
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
                 meanstructure: bool, thresholds: Mapping[str, int] | None = None) -> list[Row]:  # fmt: skip
    """User rows in source order, then the defaults the user did not write."""
    rows = [Row(s.lhs, s.op, s.rhs, level, user=1) for s in statements]
    taken = {r.key for r in rows}
    for lhs, op, rhs in default_rows(names, meanstructure, thresholds):
        row = Row(lhs, op, rhs, level, user=0)
        if row.key not in taken:
            taken.add(row.key)
            rows.append(row)
    return rows


def _ordered_categories(ordered: Mapping[str, int] | None,
                        blocks: dict[int, list[Statement]]) -> dict[str, int]:  # fmt: skip
    """Number of categories of each ordered variable: ``ordered=`` and the ``|`` statements, checked."""
    if ordered is None:
        ordered = {}
    if not isinstance(ordered, Mapping):
        raise ModelSpecificationError(
            "ordered= maps each ordered variable to its number of categories, e.g. {'y1': 4, 'y2': 2}, "
            f"not a {type(ordered).__name__}; count them in the data with "
            "pymlsem.data.categorical.category_counts(data, names)"
        )
    categories: dict[str, int] = {}
    for name, k in ordered.items():
        if not isinstance(name, str):
            raise ModelSpecificationError(f"ordered= keys must be variable names, got {name!r}")
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise ModelSpecificationError(
                f"ordered={{{name!r}: {k!r}}}: the number of categories must be an integer >= 2"
            )
        if k < 2:
            raise ModelSpecificationError(
                f"ordered={{{name!r}: {k}}}: an ordered variable needs at least 2 categories (a variable "
                "with a single category carries no information); drop it from the model"
            )
        categories[name] = int(k)
    written: dict[str, list[Statement]] = {}
    for statements in blocks.values():
        for s in statements:
            if s.op == "|":
                written.setdefault(s.lhs, []).append(s)
    for name, statements in written.items():
        numbers_written = sorted(int(s.rhs[1:]) for s in statements)
        n = len(numbers_written)
        where = f"line {statements[0].line}"
        if len({s.level for s in statements}) > 1:
            raise ModelSpecificationError(
                f"the thresholds of {name!r} are written at both levels ({where}); a variable has one "
                "set of thresholds: write them once, at the level of its intercept (level 2 when it is "
                "observed at level 2)"
            )
        if name in categories and n != categories[name] - 1:
            k = categories[name]
            wanted = " + ".join(f"t{j}" for j in range(1, k))
            raise ModelSpecificationError(
                f"{name!r} has {k} categories (ordered=), so {k - 1} threshold(s), but the model writes "
                f"{n} ({where}); write all of them ('{name} | {wanted}') or none"
            )
        if numbers_written != list(range(1, n + 1)):
            got = ", ".join(f"t{j}" for j in numbers_written)
            raise ModelSpecificationError(
                f"the thresholds of {name!r} must be t1, t2, ... without gaps ({where}); got {got}"
            )
        categories.setdefault(name, n + 1)
    return categories


def _ordered_levels(categories: Mapping[str, int], blocks: dict[int, list[Statement]],
                    ov_by_level: dict[int, list[str]],
                    lv_by_level: dict[int, list[str]]) -> tuple[dict[str, int], dict[str, int]]:  # fmt: skip
    """For each ordered variable: the level of its thresholds and the lowest level it is observed at."""
    observed = list(dict.fromkeys(v for vs in ov_by_level.values() for v in vs))
    latent = {v for vs in lv_by_level.values() for v in vs}
    threshold_level: dict[str, int] = {}
    lowest_level: dict[str, int] = {}
    for name in categories:
        if name in latent:
            raise ModelSpecificationError(
                f"{name!r} is a latent variable (left of '=~'); only observed variables can be ordered"
            )
        if name not in observed:
            close = difflib.get_close_matches(name, observed, n=3, cutoff=0.5)
            hint = f" (closest: {', '.join(close)})" if close else ""
            raise ModelSpecificationError(
                f"ordered variable {name!r} is not an observed variable of the model{hint}; the model's "
                f"observed variables are {', '.join(observed)}"
            )
        threshold_level[name] = 2 if name in ov_by_level.get(2, []) else 1
        lowest_level[name] = 1 if name in ov_by_level.get(1, []) else 2
    for lev, statements in blocks.items():
        for s in statements:
            if s.op == "|" and threshold_level[s.lhs] != lev:
                should = "level: 2 (between)" if threshold_level[s.lhs] == 2 else "level: 1 (within)"
                why = (
                    "it is observed at level 2, so its thresholds are between-level parameters"
                    if threshold_level[s.lhs] == 2
                    else "it is observed only at level 1"
                )
                raise ModelSpecificationError(
                    f"the thresholds of {s.lhs!r} (line {s.line}) belong under {should}: {why}"
                )
    return threshold_level, lowest_level


def _check_ordered_not_exogenous(categories: Mapping[str, int], exogenous: list[str]) -> None:
    for name in exogenous:
        if name in categories:
            raise ModelSpecificationError(
                f"ordered variable {name!r} is only a predictor (an exogenous covariate, whose values are "
                "taken as given); ordered= applies to indicators and dependent variables: remove it from "
                "ordered= (it then enters with its numeric codes, as in lavaan) or use dummy variables"
            )


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
            # a loading label shared with another factor's loading: scaled through the equality constraint
            labels = set(loads.loc[loads["label"] != "", "label"])
            others = t[(t["op"] == "=~") & ~((t["lhs"] == lv) & (t["level"] == lev))]
            tied = bool(labels & set(others["label"]))
            if not fixed_load and not fixed_var and not tied:
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
