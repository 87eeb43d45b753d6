"""Parsing of the terms of a statement: ``lhs1 + lhs2`` and ``mod*mod*x + y`` with modifiers."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pymlsem.exceptions import ModelSyntaxError
from pymlsem.syntax.model import Modifier
from pymlsem.syntax.tokens import NAME, NUMBER, STRING, Token

#: Modifier functions and the kind of argument each takes.
MODIFIER_FUNCTIONS: dict[str, str] = {
    "start": "number",
    "label": "name",
    "equal": "name",
    "prior": "string",
    "rv": "name",
}


@dataclass(frozen=True)
class Term:
    """A right-hand-side term: a variable (or ``1`` for an intercept) with its modifier."""

    name: str
    modifier: Modifier
    token: Token


def split_plus(tokens: list[Token], source: str) -> list[list[Token]]:
    """Split tokens on ``+`` outside parentheses, refusing empty parts."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for tok in tokens:
        if tok.is_op("("):
            depth += 1
        elif tok.is_op(")"):
            depth -= 1
        if tok.is_op("+") and depth == 0:
            if not parts[-1]:
                raise ModelSyntaxError("missing term before '+'; remove the extra '+'", source,
                                       tok.line, tok.column)  # fmt: skip
            parts.append([])
        else:
            parts[-1].append(tok)
    if not parts[-1]:
        last = tokens[-1]
        raise ModelSyntaxError("missing term after '+'; add a variable or remove the '+'", source,
                               last.line, last.column)  # fmt: skip
    return parts


def parse_lhs(tokens: list[Token], op: Token, source: str) -> list[Token]:
    """Parse the left-hand side of a model statement: one or more names joined by ``+``."""
    if not tokens:
        raise ModelSyntaxError(f"missing left-hand side before {op.text!r}; write e.g. f {op.text} x1",
                               source, op.line, op.column)  # fmt: skip
    names = []
    for part in split_plus(tokens, source):
        if len(part) > 1 and any(t.is_op("*", "?") for t in part):
            star = next(t for t in part if t.is_op("*", "?"))
            raise ModelSyntaxError("modifiers such as 0.5* or a* belong on the right-hand side, "
                                   "in front of the variable they modify", source, star.line,
                                   star.column)  # fmt: skip
        if len(part) != 1 or part[0].kind != NAME:
            bad = part[0] if part[0].kind != NAME else part[1]
            raise ModelSyntaxError(f"expected a variable name on the left-hand side of {op.text!r}, "
                                   f"got {bad.text!r}", source, bad.line, bad.column)  # fmt: skip
        names.append(part[0])
    return names


def parse_rhs(tokens: list[Token], op: Token, source: str) -> list[Term]:
    """Parse the right-hand side of a model statement into terms with modifiers."""
    if not tokens:
        raise ModelSyntaxError(f"missing right-hand side after {op.text!r}; write e.g. y {op.text} x1",
                               source, op.line, op.column + len(op.text))  # fmt: skip
    return [_parse_term(part, op, source) for part in split_plus(tokens, source)]


def _parse_term(tokens: list[Token], op: Token, source: str) -> Term:
    # Split on * and ? outside parentheses; remember which separator followed each element.
    elements: list[tuple[list[Token], Token | None]] = []
    current: list[Token] = []
    depth = 0
    for tok in tokens:
        depth += tok.is_op("(") - tok.is_op(")")
        if depth == 0 and tok.is_op("*", "?"):
            if not current:
                raise ModelSyntaxError(f"{tok.text!r} without a modifier in front of it", source,
                                       tok.line, tok.column)  # fmt: skip
            elements.append((current, tok))
            current = []
        else:
            current.append(tok)
    if not current:
        sep = elements[-1][1]
        assert sep is not None
        mod = "".join(t.text for t in elements[-1][0])
        raise ModelSyntaxError(f"modifier '{mod}{sep.text}' has no variable after it; write e.g. "
                               f"{mod}{sep.text}x1", source, sep.line, sep.column)  # fmt: skip
    target = _parse_target(current, op, source)
    modifier = Modifier()
    for elem, sep in elements:
        assert sep is not None
        modifier = _merge(modifier, _parse_modifier(elem, sep, source), elem[0], source)
    return Term(target.text, modifier, target)


def _parse_target(tokens: list[Token], op: Token, source: str) -> Token:
    first = tokens[0]
    if len(tokens) == 1 and first.kind == NAME and first.text != "NA":
        return first
    if len(tokens) == 1 and first.kind == NUMBER and op.text == "~" and float(first.text) == 1.0:
        return Token(NUMBER, "1", first.line, first.column)
    if len(tokens) > 1 and first.kind in (NAME, NUMBER):
        bad = tokens[1]
        hint = " (did you forget a '+' or a '*'?)" if bad.kind in (NAME, NUMBER) else ""
        raise ModelSyntaxError(f"unexpected {bad.text!r} after {first.text!r}{hint}", source,
                               bad.line, bad.column)  # fmt: skip
    allowed = "a variable name or 1 (an intercept)" if op.text == "~" else "a variable name"
    raise ModelSyntaxError(f"expected {allowed} on the right-hand side of {op.text!r}, got {first.text!r}",
                           source, first.line, first.column)  # fmt: skip


def _number(tokens: list[Token]) -> float | None:
    """The value of ``NUMBER`` or ``-NUMBER``/``+NUMBER``, else ``None``."""
    if len(tokens) == 1 and tokens[0].kind == NUMBER:
        return float(tokens[0].text)
    if len(tokens) == 2 and tokens[0].is_op("-", "+") and tokens[1].kind == NUMBER:
        return -float(tokens[1].text) if tokens[0].text == "-" else float(tokens[1].text)
    return None


def _parse_modifier(tokens: list[Token], sep: Token, source: str) -> Modifier:
    first = tokens[0]
    value = _number(tokens)
    if sep.text == "?":
        if value is None:
            raise ModelSyntaxError(f"a start value before '?' must be a number, got {first.text!r}",
                                   source, first.line, first.column)  # fmt: skip
        return Modifier(start=value)
    if value is not None:
        return Modifier(fixed=value)
    if len(tokens) == 1 and first.kind == NAME:
        return Modifier(free=True) if first.text == "NA" else Modifier(label=first.text)
    if first.kind == NAME and len(tokens) > 1 and tokens[1].is_op("("):
        return _parse_call(tokens, source)
    raise ModelSyntaxError(f"cannot read {first.text!r} as a modifier; use a number (0.5*x), a label "
                           "(a*x), NA*x, start(0.5)*x, label(\"a\")*x or prior(\"normal(0,1)\")*x",
                           source, first.line, first.column)  # fmt: skip


def _parse_call(tokens: list[Token], source: str) -> Modifier:
    name = tokens[0]
    if name.text == "c":
        raise ModelSyntaxError("c(...) gives one modifier per group; multiple groups are not supported, "
                               "write a single value", source, name.line, name.column)  # fmt: skip
    kind = MODIFIER_FUNCTIONS.get(name.text)
    if kind is None:
        known = ", ".join(f"{k}()" for k in MODIFIER_FUNCTIONS)
        raise ModelSyntaxError(f"unknown modifier function {name.text!r}; known: {known}", source,
                               name.line, name.column)  # fmt: skip
    if not tokens[-1].is_op(")"):
        bad = tokens[-1]
        raise ModelSyntaxError(f"unexpected {bad.text!r} after {name.text}(...)", source, bad.line,
                               bad.column)  # fmt: skip
    args = tokens[2:-1]
    arg = args[0] if args else tokens[-1]
    if kind == "number":
        value = _number(args)
        if value is None:
            raise ModelSyntaxError(f"{name.text}() takes one number, e.g. {name.text}(0.5)", source,
                                   arg.line, arg.column)  # fmt: skip
        return Modifier(start=value)
    ok = len(args) == 1 and (args[0].kind == STRING or (kind == "name" and args[0].kind == NAME))
    if not ok or not args[0].text.strip():
        raise ModelSyntaxError(f'{name.text}() takes one quoted string, e.g. {name.text}("a")', source,
                               arg.line, arg.column)  # fmt: skip
    text = args[0].text
    if name.text in ("label", "equal"):
        return Modifier(label=text)
    if name.text == "prior":
        return Modifier(prior=text)
    return Modifier(random_slope=text)


def _merge(old: Modifier, new: Modifier, at: Token, source: str) -> Modifier:
    """Combine two modifiers of one term, refusing contradictions."""
    fixed_like = [m for m in (old, new) if m.fixed is not None or m.free]
    if len(fixed_like) == 2:
        raise ModelSyntaxError("conflicting modifiers: this term is fixed or freed twice; keep one "
                               "of the values (or NA)", source, at.line, at.column)  # fmt: skip
    merged = {}
    for field in ("fixed", "label", "start", "prior", "random_slope"):
        a, b = getattr(old, field), getattr(new, field)
        if a is not None and b is not None:
            raise ModelSyntaxError(f"conflicting modifiers: {field.replace('_', ' ')} given twice "
                                   f"({a!r} and {b!r}); keep one", source, at.line, at.column)  # fmt: skip
        merged[field] = a if a is not None else b
    if merged["fixed"] is not None and not math.isfinite(merged["fixed"]):
        raise ModelSyntaxError("a fixed value must be finite", source, at.line, at.column)
    return Modifier(free=old.free or new.free, **merged)
