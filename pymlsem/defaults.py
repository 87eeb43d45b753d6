"""lavaan 0.6's default parameters (``lav_partable_flat``) for ``sem()``, ``cfa()`` and ``growth()``.

The rules, per block (level):

* variable sets as in ``lav_partable_vnames``: latent variables are the left-hand sides of ``=~``;
  observed variables are ordered indicators first, then dependent then independent variables of
  ``~``, then variables only mentioned in ``~~``/``~1``/``|``;
* (residual) variances of all non-exogenous observed and of all latent variables (auto.var);
* covariances among exogenous latent variables (auto.cov.lv.x) and among "pure" endogenous latent and
  observed variables, i.e. those on the left of ``~`` that are not indicators and not predictors
  (auto.cov.y);
* variances/covariances of the exogenous observed covariates, fixed at their sample values
  (fixed.x, ``exo = 1``);
* with a mean structure, intercepts of all observed then all latent variables.

Ordered (binary/ordinal) indicators, theta parameterization: their thresholds ``y | t1``, ... come first
among the defaults (as in lavaan); the defaults fix their intercepts at 0 and their residual variance
at 1 (see :func:`apply_block_defaults` for two-level models).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations

from pymlsem.syntax.model import Statement

#: lavaan options per model type: (int.ov.free, int.lv.free).
MODEL_TYPES: dict[str, tuple[bool, bool]] = {
    "sem": (True, False),
    "cfa": (True, False),
    "growth": (False, True),
}

Key = tuple[str, str, str]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


@dataclass(frozen=True)
class VariableSets:
    """The variable sets of one block, as lavaan's ``lav_partable_vnames`` computes them."""

    lv: list[str]
    ov: list[str]
    ov_x: list[str]
    ov_nox: list[str]
    ov_y: list[str]
    ov_ord: list[str]
    lv_x: list[str]
    lv_y: list[str]

    @classmethod
    def from_statements(cls, statements: list[Statement], *, ordered: Collection[str] = ()) -> VariableSets:
        """Compute the sets from a block's model statements (all counted as user rows).

        Parameters
        ----------
        statements
            The block's model statements.
        ordered
            Names of ordered (binary/ordinal) variables besides those with a ``|`` statement in the
            block (``build_partable(ordered=...)``, or thresholds written at another level).
        """
        lv = _unique(s.lhs for s in statements if s.op == "=~")
        eqs_y = _unique(s.lhs for s in statements if s.op == "~")
        eqs_x = _unique(s.rhs for s in statements if s.op == "~")
        v_ind = _unique(s.rhs for s in statements if s.op == "=~")
        ov_ind = [v for v in v_ind if v not in lv]
        ov_y0 = [v for v in eqs_y if v not in lv and v not in ov_ind]
        ov_x0 = [v for v in eqs_x if v not in lv and v not in ov_ind and v not in ov_y0]
        extra = [s.lhs for s in statements if s.op == "~~" and s.lhs not in lv]
        extra += [s.rhs for s in statements if s.op == "~~" and s.rhs not in lv]
        extra += [s.lhs for s in statements if s.op in ("~1", "|") and s.lhs not in lv]
        base = ov_ind + ov_y0 + ov_x0
        ov = base + [v for v in _unique(extra) if v not in base]
        # an x with a user variance, covariance or intercept is not exogenous
        mentioned = {s.lhs for s in statements if s.op in ("~1", "~~")}
        mentioned |= {s.rhs for s in statements if s.op == "~~"}
        ov_x = [v for v in ov_x0 if v not in mentioned]
        pure_y = [v for v in eqs_y if v not in v_ind and v not in eqs_x]
        ord_names = {s.lhs for s in statements if s.op == "|"} | set(ordered)
        return cls(
            lv=lv,
            ov=ov,
            ov_x=ov_x,
            ov_nox=[v for v in ov if v not in ov_x],
            ov_y=[v for v in ov if v in pure_y and v not in lv],
            ov_ord=[v for v in ov if v in ord_names],
            lv_x=[v for v in lv if v not in v_ind and v not in eqs_y],
            lv_y=[v for v in lv if v in pure_y],
        )


def default_rows(
    names: VariableSets, meanstructure: bool, thresholds: Mapping[str, int] | None = None
) -> list[Key]:
    """The default (lhs, op, rhs) rows of one block, in lavaan's order.

    Parameters
    ----------
    names
        The block's variable sets.
    meanstructure
        Whether to add intercepts.
    thresholds
        Ordered variables whose thresholds belong to this block, mapped to their number of thresholds
        (categories - 1); their rows ``y | t1``, ... come first, as in lavaan.

    Returns
    -------
    list of tuple
        ``(lhs, op, rhs)`` triples; the caller drops those the user already wrote.
    """
    rows: list[Key] = [(v, "|", f"t{j}") for v, n in (thresholds or {}).items() for j in range(1, n + 1)]
    rows += [(v, "~~", v) for v in names.ov_nox + names.lv]
    rows += [(a, "~~", b) for a, b in combinations(names.lv_x, 2)]
    rows += [(a, "~~", b) for a, b in combinations(names.lv_y + names.ov_y, 2)]
    x = names.ov_x
    rows += [(x[j], "~~", x[i]) for j in range(len(x)) for i in range(j, len(x))]
    if meanstructure:
        rows += [(v, "~1", "") for v in names.ov + names.lv]
    return rows


@dataclass
class Row:
    """One mutable row of the parameter table while it is being built."""

    lhs: str
    op: str
    rhs: str
    level: int
    user: int
    free: bool = True
    value: float = float("nan")
    start: float = float("nan")
    label: str = ""
    prior: str = ""
    exo: int = 0
    rv: str = ""

    def fix(self, value: float) -> None:
        """Fix the row at ``value``."""
        self.free = False
        self.value = value

    @property
    def key(self) -> Key:
        """(lhs, op, rhs) with the two sides of ``~~`` sorted, for duplicate detection."""
        if self.op == "~~":
            a, b = sorted((self.lhs, self.rhs))
            return (a, "~~", b)
        return (self.lhs, self.op, self.rhs)


def apply_block_defaults(rows: list[Row], names: VariableSets, *, model_type: str,
                         meanstructure: bool, exo_names: list[str],
                         free_means: list[str] | None = None,
                         unit_variances: Collection[str] | None = None,
                         std_lv: bool = False) -> None:  # fmt: skip
    """Fix or free the rows of one block as lavaan's defaults do (before user modifiers).

    Parameters
    ----------
    rows
        The block's rows, user rows first.
    names
        The block's variable sets.
    model_type
        ``"sem"``, ``"cfa"`` or ``"growth"``.
    meanstructure
        Whether the model has a mean structure.
    exo_names
        The block's exogenous covariates whose moments are fixed at sample values (fixed.x).
    free_means
        Latent variables whose means stay free (random slopes: their mean is the fixed effect).
    unit_variances
        Ordered variables whose residual variance is fixed at 1 in this block (theta parameterization);
        ``None``: all of ``names.ov_ord``. A two-level model passes, per level, only the ordered variables
        whose lowest level it is, so the level-2 variance of a variable observed at both levels stays
        free. Intercepts of ordered variables are fixed at 0 at every level (thresholds replace them).
    std_lv
        lavaan's ``std.lv``: each latent variable defined by ``=~`` gets its metric from its (residual)
        variance fixed at 1 instead of from its first loading fixed at 1 (``auto.fix.first``).
    """
    unit = set(names.ov_ord if unit_variances is None else unit_variances)
    int_ov_free, int_lv_free = MODEL_TYPES[model_type]
    # factors with indicators (not a random slope's level-2 phantom ``s =~ 0*s``, whose variance stays free)
    indicated = {row.lhs for row in rows if row.op == "=~" and row.rhs != row.lhs}
    seen: set[str] = set()
    for row in rows:  # the metric of each latent variable (also for rows written without a modifier)
        if std_lv and row.op == "~~" and row.lhs == row.rhs and row.lhs in indicated:
            row.fix(1.0)  # std.lv: its (residual) variance
        elif not std_lv and row.op == "=~" and row.lhs not in seen:
            seen.add(row.lhs)
            row.fix(1.0)  # auto.fix.first: its marker loading
    for row in rows:
        if row.user:
            continue
        if row.op == "~~" and row.lhs == row.rhs and row.lhs in unit:
            row.fix(1.0)
        if meanstructure and row.op == "~1":
            if row.lhs in names.ov_ord or (row.lhs in names.ov and not int_ov_free):
                row.fix(0.0)
            if row.lhs in names.lv and not int_lv_free and row.lhs not in (free_means or []):
                row.fix(0.0)
        if row.lhs in exo_names and (row.op == "~1" or (row.op == "~~" and row.rhs in exo_names)):
            row.free = False
            row.value = float("nan")
            row.exo = 1
