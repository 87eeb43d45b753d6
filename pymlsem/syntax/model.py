"""Data classes produced by the lavaan-syntax parser.

These are the shapes described in ``docs/architecture.md``: a :class:`ParsedModel` holds one
:class:`Statement` per (lhs, rhs) pair, each with a :class:`Modifier`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Operators that define model parameters (rows of the parameter table).
MODEL_OPS: tuple[str, ...] = ("=~", "~", "~~", "~1", "|")
#: Operators whose sides are arithmetic expressions of parameter labels.
EXPRESSION_OPS: tuple[str, ...] = (":=", "==", "<", ">")


@dataclass(frozen=True)
class Modifier:
    """What the user wrote in front of a right-hand-side term (``0.5*x``, ``a*x``, ...).

    Parameters
    ----------
    fixed
        Value the parameter is fixed at (``0*x``), or ``None``.
    label
        Parameter label (``a*x``, ``label("a")*x``, ``equal("a")*x``), or ``None``.
    start
        Starting value (``start(0.5)*x`` or ``0.5?x``), or ``None``.
    prior
        Prior string kept verbatim (``prior("normal(0,1)")*x``), or ``None``.
    random_slope
        Name of a random slope (``rv("s1")*x``), or ``None``.
    free
        ``True`` for ``NA*x``: free the parameter even where a default would fix it.
    """

    fixed: float | None = None
    label: str | None = None
    start: float | None = None
    prior: str | None = None
    random_slope: str | None = None
    free: bool = False

    @property
    def is_empty(self) -> bool:
        """Whether no modifier was written."""
        return self == Modifier()


@dataclass(frozen=True)
class Statement:
    """One (lhs, op, rhs) element of a model.

    Parameters
    ----------
    lhs, op, rhs
        lavaan notation; ``rhs == ""`` for ``~1``; expression strings for ``:=``, ``==``, ``<``, ``>``.
    level
        1 (within) or 2 (between), or ``None`` when the model has no ``level:`` line.
    modifier
        The modifiers written on the right-hand-side term.
    line, column
        1-based position of the left-hand side in the source.
    """

    lhs: str
    op: str
    rhs: str
    level: int | None = None
    modifier: Modifier = field(default_factory=Modifier)
    line: int = 1
    column: int = 1


@dataclass(frozen=True)
class ParsedModel:
    """A parsed model string.

    Parameters
    ----------
    statements
        All statements in source order.
    source
        The model string.
    levels
        The levels declared with ``level:`` lines, in order of first appearance (empty for a
        single-level model).
    """

    statements: list[Statement]
    source: str = ""
    levels: tuple[int, ...] = ()

    @property
    def n_levels(self) -> int:
        """1 for a single-level model, 2 when ``level:`` lines are present."""
        return 2 if self.levels else 1

    def model_statements(self) -> list[Statement]:
        """Statements that define parameters (``=~ ~ ~~ ~1 |``)."""
        return [s for s in self.statements if s.op in MODEL_OPS]

    def expression_statements(self) -> list[Statement]:
        """Defined parameters and constraints (``:= == < >``)."""
        return [s for s in self.statements if s.op in EXPRESSION_OPS]
