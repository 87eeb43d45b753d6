"""Split an lme4 formula into its response, its fixed part and its random-effect (bar) terms.

This is the part of lme4's syntax that ``formulae`` does not cover (``||``, ``g1/g2``), done on the formula
text with positions so that errors can point at the offending character. The fixed part and each bar term's
left-hand side are handed to ``formulae`` afterwards (:mod:`pymlsem.formula.design`).

lme4's meaning is kept:

* ``(1 + x | g)`` is one correlated block; ``(x | g)`` has an implicit intercept (as in R).
* ``(1 + x || g)`` is one block whose effects are uncorrelated (lme4 splits it into one block per column,
  which is the same model for numeric columns).
* ``(1 | a/b)`` expands to ``(1 | a) + (1 | a:b)``; ``a/b/c`` to ``a``, ``a:b``, ``a:b:c``.
* ``(1 | a) + (1 | b)`` are two (crossed or nested) grouping factors.
"""

from __future__ import annotations

import dataclasses

from pymlsem.exceptions import ModelSpecificationError, ModelSyntaxError

__all__ = ["BarTerm", "SplitFormula", "split_formula"]


@dataclasses.dataclass(frozen=True)
class BarTerm:
    """One random-effect term ``(expr | group)`` after expanding nesting.

    Attributes
    ----------
    expr
        The left-hand side of the bar, e.g. ``"1 + x"``.
    group
        The grouping factor: one column name or an interaction of columns, ``"school:class"``.
    correlated
        False for ``||``.
    column
        1-based position of the term's opening parenthesis in the formula.
    """

    expr: str
    group: str
    correlated: bool
    column: int

    @property
    def group_columns(self) -> tuple[str, ...]:
        """The data columns that make up the grouping factor."""
        return tuple(part.strip() for part in self.group.split(":"))


@dataclasses.dataclass(frozen=True)
class SplitFormula:
    """An lme4 formula taken apart.

    Attributes
    ----------
    source
        The formula as given.
    response
        The left-hand side of ``~``.
    fixed
        The fixed part as a ``formulae`` right-hand side (``"1"`` when only random terms were written, since
        lme4 then keeps the intercept; ``"0"`` when the intercept was removed and nothing else is left).
    bars
        The random-effect terms, in formula order, nesting expanded.
    offsets
        The expressions of the ``offset(expr)`` terms (added to the linear predictor with coefficient 1).
    """

    source: str
    response: str
    fixed: str
    bars: tuple[BarTerm, ...]
    offsets: tuple[str, ...] = ()


def _error(message: str, source: str, index: int) -> ModelSyntaxError:
    return ModelSyntaxError(message, source, 1, index + 1)


def top_level_pieces(text: str, offset: int, source: str) -> list[tuple[str, str, int]]:
    """Split ``text`` at ``+`` and ``-`` outside parentheses: (sign, piece, start index in source)."""
    pieces: list[tuple[str, str, int]] = []
    depth = 0
    sign, start = "+", 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise _error("unmatched ')'", source, offset + i)
        elif char in "+-" and depth == 0:
            pieces.append((sign, text[start:i], offset + start))
            sign, start = char, i + 1
    if depth != 0:
        raise _error("unmatched '(': a ')' is missing", source, offset + text.index("("))
    pieces.append((sign, text[start:], offset + start))
    return pieces


def _find_bar(inner: str) -> tuple[int, int] | None:
    """Index and width (1 or 2) of the first ``|``/``||`` outside nested parentheses, or None."""
    depth = 0
    for i, char in enumerate(inner):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return i, 2 if inner[i + 1 : i + 2] == "|" else 1
    return None


def enclosed(piece: str) -> bool:
    """Whether the stripped piece is one parenthesised group ``( ... )``."""
    if not (piece.startswith("(") and piece.endswith(")")):
        return False
    depth = 0
    for i, char in enumerate(piece):
        depth += char == "("
        depth -= char == ")"
        if depth == 0 and i < len(piece) - 1:
            return False
    return True


def _expand_nesting(group: str, source: str, index: int) -> list[str]:
    parts = [part.strip() for part in group.split("/")]
    for part in parts:
        names = [name.strip() for name in part.split(":")]
        if not all(names):
            raise _error("empty grouping factor after '|'", source, index)
        for name in names:
            if not name.replace("_", "a").replace(".", "a").isalnum():
                raise _error(f"grouping factor {name!r} must be a column name (or a:b, a/b)", source, index)
    return [":".join(parts[: k + 1]) for k in range(len(parts))]


def _bar_terms(piece: str, start: int, source: str) -> list[BarTerm] | None:
    stripped = piece.strip()
    lead = start + len(piece) - len(piece.lstrip())
    if not enclosed(stripped):
        return None
    inner = stripped[1:-1]
    found = _find_bar(inner)
    if found is None:
        return None
    at, width = found
    expr, group = inner[:at].strip(), inner[at + width :].strip()
    bar_index = lead + 1 + at
    if not expr:
        raise _error(
            "empty random-effect term before '|': write (1 | g) for a random intercept", source, bar_index
        )
    if not group:
        raise _error("missing grouping factor after '|'", source, bar_index)
    if "|" in group:
        raise _error("only one '|' is allowed in a random-effect term", source, bar_index + width)
    groups = _expand_nesting(group, source, bar_index + width)
    return [BarTerm(expr, g, width == 1, lead + 1) for g in groups]


def split_formula(source: str) -> SplitFormula:
    """Split an lme4 formula ``response ~ fixed + (expr | group) + ...``.

    Parameters
    ----------
    source
        The formula, on one line.

    Returns
    -------
    SplitFormula
        Response, fixed part (a ``formulae`` right-hand side), the expanded bar terms and the ``offset()``
        terms' expressions.

    Raises
    ------
    ModelSyntaxError
        No ``~``, an empty response or right-hand side, unbalanced parentheses, an empty bar term, a
        subtracted offset.
    """
    if source is not None and not isinstance(source, str):
        raise ModelSpecificationError(
            f"the formula must be a string such as 'y ~ x + (1 | g)', not {type(source).__name__}"
        )
    if not isinstance(source, str) or not source.strip():
        raise ModelSyntaxError("the formula is empty: write e.g. 'y ~ x + (1 | g)'", str(source or ""), 1, 1)
    if "\n" in source.strip():
        source = " ".join(source.split())
    tilde = source.find("~")
    if tilde < 0:
        raise _error("a formula needs '~' between the response and the predictors", source, 0)
    response = source[:tilde].strip()
    if not response:
        raise _error("missing response before '~'", source, tilde)
    rhs = source[tilde + 1 :]
    if "~" in rhs:
        raise _error("only one '~' is allowed", source, tilde + 1 + rhs.index("~"))
    if not rhs.strip():
        raise _error(
            "missing right-hand side after '~': write 'y ~ 1' for an intercept-only model", source, tilde
        )

    fixed: list[str] = []
    bars: list[BarTerm] = []
    offsets: list[str] = []
    for sign, piece, start in top_level_pieces(rhs, tilde + 1, source):
        if not piece.strip():
            if sign == "+" and start == tilde + 1:
                continue  # a leading sign: "y ~ -1 + x" or "y ~ + x"
            raise _error(f"empty term after '{sign}'", source, start - 1)
        text = piece.strip()
        if text.startswith("offset(") and enclosed(text[len("offset") :]):
            if sign == "-":
                lead = start + len(piece) - len(piece.lstrip())
                raise _error("an offset cannot be subtracted", source, lead)
            offsets.append(text[len("offset(") : -1])
            continue
        found = _bar_terms(piece, start, source)
        if found is None:
            fixed.append(f"{sign} {piece.strip()}")
        elif sign == "-":
            raise _error("a random-effect term cannot be subtracted", source, found[0].column - 1)
        else:
            bars.extend(found)
    _check_distinct(bars, source)
    fixed_text = " ".join(fixed).lstrip("+ ").strip()
    if not fixed_text:
        fixed_text = "1"
    elif fixed_text.startswith("-"):
        fixed_text = "1 " + fixed_text
    return SplitFormula(source, response, fixed_text, tuple(bars), tuple(offsets))


def _check_distinct(bars: list[BarTerm], source: str) -> None:
    """Raise when the same random-effect term is written twice (its effects could not be told apart)."""
    seen = set()
    for bar in bars:
        key = (" ".join(bar.expr.split()), bar.group)
        if key in seen:
            raise _error(
                f"the random-effect term ({key[0]} | {bar.group}) is written twice; remove one",
                source,
                bar.column - 1,
            )
        seen.add(key)
