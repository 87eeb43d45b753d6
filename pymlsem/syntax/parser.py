"""Parser of lavaan model syntax: ``parse_model(source) -> ParsedModel``."""

from __future__ import annotations

import re

from pymlsem.exceptions import ModelSpecificationError, ModelSyntaxError
from pymlsem.syntax.expressions import check_expression
from pymlsem.syntax.model import ParsedModel, Statement
from pymlsem.syntax.terms import parse_lhs, parse_rhs
from pymlsem.syntax.tokens import NAME, NEWLINE, NUMBER, OP, SEMI, Token, tokenize

_MAIN_OPS = ("=~", "~~", "~", ":=", "==", "<", ">", "|")
_CONTINUE_AFTER = frozenset({"=~", "~~", "~", ":=", "==", "<", ">", "|", "+", "-", "*", "/", "^", "**",
                             "?", ",", "("})  # fmt: skip
_BAD_OPS = {
    "=": "unknown operator '='; did you mean =~ (is measured by) or ~ (is regressed on)?",
    "<=": "'<=' is not an operator; write an inequality constraint with < or >",
    ">=": "'>=' is not an operator; write an inequality constraint with < or >",
    "<~": "formative indicators ('<~') are not supported; use =~ for a reflective factor",
    "~*~": "scaling factors ('~*~') are not supported",
}
_LEVELS = {"1": 1, "2": 2, "within": 1, "between": 2}
_THRESHOLD = re.compile(r"t[1-9][0-9]*")


def parse_model(source: str) -> ParsedModel:
    """Parse a model written in lavaan syntax.

    Parameters
    ----------
    source
        The model string: statements separated by newlines or ``;``, ``#``/``!`` comments,
        optional ``level: 1``/``level: 2`` (or ``within``/``between``) blocks.

    Returns
    -------
    ParsedModel
        One statement per (lhs, rhs) pair, in source order.

    Raises
    ------
    ModelSyntaxError
        With the 1-based line and column of the offending token.

    Examples
    --------
    >>> m = parse_model("f =~ y1 + a*y2\\ny1 ~ 1")
    >>> [(s.lhs, s.op, s.rhs, s.modifier.label) for s in m.statements]
    [('f', '=~', 'y1', None), ('f', '=~', 'y2', 'a'), ('y1', '~1', '', None)]
    """
    if not isinstance(source, str):
        raise ModelSpecificationError(
            f"the model must be a string in lavaan syntax (e.g. 'f =~ y1 + y2 + y3'), not "
            f"{type(source).__name__}"
        )
    statements: list[Statement] = []
    levels: list[int] = []
    level: int | None = None
    first_statement: Token | None = None
    for tokens in split_statements(tokenize(source), source):
        if _is_level(tokens):
            if first_statement is not None and level is None:
                raise ModelSyntaxError(
                    "this statement comes before the first 'level:' line; in a two-level model every "
                    "statement must follow a 'level: 1' (within) or 'level: 2' (between) line",
                    source, first_statement.line, first_statement.column,
                )  # fmt: skip
            level = _parse_level(tokens, source)
            if level not in levels:
                levels.append(level)
            tokens = tokens[3:]
            if not tokens:
                continue
        if first_statement is None:
            first_statement = tokens[0]
        statements.extend(_parse_statement(tokens, level, source))
    if not statements:
        raise ModelSyntaxError("the model is empty; write at least one statement such as "
                               "'f =~ y1 + y2 + y3'", source, 1, 1)  # fmt: skip
    return ParsedModel(statements=statements, source=source, levels=tuple(levels))


def split_statements(tokens: list[Token], source: str) -> list[list[Token]]:
    """Group tokens into statements.

    A newline ends a statement unless parentheses are open, the line ends with an operator, ``+``
    or ``*``, or the next line starts with ``+``; ``;`` always ends a statement.
    """
    out: list[list[Token]] = []
    current: list[Token] = []
    opened: list[Token] = []

    def close(at: Token) -> None:
        if opened:
            tok = opened[-1]
            raise ModelSyntaxError("unbalanced parentheses: this '(' is never closed; add a ')'",
                                   source, tok.line, tok.column)  # fmt: skip
        if current:
            out.append(current.copy())
            current.clear()

    for i, tok in enumerate(tokens):
        if tok.kind == SEMI:
            close(tok)
        elif tok.kind == NEWLINE:
            if not current or opened or (current[-1].kind == OP and current[-1].text in _CONTINUE_AFTER):
                continue
            nxt = next((t for t in tokens[i + 1 :] if t.kind != NEWLINE), None)
            if nxt is not None and nxt.is_op("+"):
                continue
            close(tok)
        else:
            if tok.is_op("("):
                opened.append(tok)
            elif tok.is_op(")"):
                if not opened:
                    raise ModelSyntaxError("unbalanced parentheses: this ')' has no matching '('",
                                           source, tok.line, tok.column)  # fmt: skip
                opened.pop()
            current.append(tok)
    if tokens:
        close(tokens[-1])
    return out


def _is_level(tokens: list[Token]) -> bool:
    return (
        tokens[0].kind == NAME
        and tokens[0].text.lower() == "level"
        and len(tokens) > 1
        and tokens[1].is_op(":")
    )


def _parse_level(tokens: list[Token], source: str) -> int:
    if len(tokens) < 3:
        colon = tokens[1]
        raise ModelSyntaxError("missing level after 'level:'; write level: 1 (within) or level: 2 "
                               "(between)", source, colon.line, colon.column + 1)  # fmt: skip
    value = tokens[2]
    key = value.text.lower() if value.kind in (NAME, NUMBER) else ""
    if key not in _LEVELS:
        raise ModelSyntaxError(f"bad level {value.text!r}: only two levels exist; write level: 1 (or "
                               "within) or level: 2 (or between)", source, value.line,
                               value.column)  # fmt: skip
    return _LEVELS[key]


def _find_operator(tokens: list[Token], source: str) -> int:
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.kind != OP:
            continue
        depth += tok.is_op("(") - tok.is_op(")")
        if tok.text in _BAD_OPS:
            raise ModelSyntaxError(_BAD_OPS[tok.text], source, tok.line, tok.column)
        if depth == 0 and tok.text in _MAIN_OPS:
            return i
    first = tokens[0]
    raise ModelSyntaxError("this statement has no operator; expected one of =~ ~ ~~ := == < > | "
                           "(e.g. 'f =~ y1 + y2' or 'y ~ x')", source, first.line,
                           first.column)  # fmt: skip


def _parse_statement(tokens: list[Token], level: int | None, source: str) -> list[Statement]:
    k = _find_operator(tokens, source)
    op = tokens[k]
    lhs_toks, rhs_toks = tokens[:k], tokens[k + 1 :]
    if op.text in (":=", "==", "<", ">"):
        return [_parse_expression_statement(lhs_toks, op, rhs_toks, level, source)]
    out = []
    for lhs in parse_lhs(lhs_toks, op, source):
        if op.text == "|":
            if len(parse_lhs(lhs_toks, op, source)) > 1:
                raise ModelSyntaxError("thresholds ('|') take a single variable on the left-hand side",
                                       source, lhs.line, lhs.column)  # fmt: skip
        for term in parse_rhs(rhs_toks, op, source):
            if op.text == "|" and not _THRESHOLD.fullmatch(term.name):
                raise ModelSyntaxError(f"thresholds must be named t1, t2, ...; got {term.name!r}",
                                       source, term.token.line, term.token.column)  # fmt: skip
            if op.text == "=~" and term.name == lhs.text:
                raise ModelSyntaxError(f"{lhs.text!r} is on both sides of '=~': a factor cannot be its "
                                       "own indicator", source, term.token.line,
                                       term.token.column)  # fmt: skip
            is_int = op.text == "~" and term.name == "1"
            out.append(Statement(lhs=lhs.text, op="~1" if is_int else op.text,
                                 rhs="" if is_int else term.name, level=level, modifier=term.modifier,
                                 line=lhs.line, column=lhs.column))  # fmt: skip
    return out


def _parse_expression_statement(lhs: list[Token], op: Token, rhs: list[Token], level: int | None,
                                source: str) -> Statement:  # fmt: skip
    if not lhs:
        raise ModelSyntaxError(f"missing left-hand side before {op.text!r}", source, op.line, op.column)
    if not rhs:
        raise ModelSyntaxError(f"missing right-hand side after {op.text!r}; write e.g. ab := a*b",
                               source, op.line, op.column + len(op.text))  # fmt: skip
    if op.text == ":=":
        if len(lhs) != 1 or lhs[0].kind != NAME:
            bad = lhs[0] if lhs[0].kind != NAME else lhs[1]
            raise ModelSyntaxError("the left-hand side of ':=' must be a single new parameter name, "
                                   "e.g. indirect := a*b", source, bad.line, bad.column)  # fmt: skip
        left = lhs[0].text
    else:
        left = check_expression(lhs, source, f"left-hand side of {op.text}")
    right = check_expression(rhs, source, f"right-hand side of {op.text}")
    return Statement(lhs=left, op=op.text, rhs=right, level=level, line=lhs[0].line, column=lhs[0].column)
