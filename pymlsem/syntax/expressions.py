"""Validation of the arithmetic expressions in ``:=``, ``==``, ``<`` and ``>`` statements."""

from __future__ import annotations

import ast

from pymlsem.exceptions import ModelSyntaxError
from pymlsem.syntax.tokens import NAME, NUMBER, STRING, Token

#: Functions allowed in expressions.
FUNCTIONS: frozenset[str] = frozenset(
    {"exp", "log", "sqrt", "abs", "sin", "cos", "tan", "tanh", "pnorm", "qnorm", "log1p", "expm1"}
)
_ALLOWED_OPS = frozenset({"+", "-", "*", "/", "^", "**", "(", ")", ","})
_PLAIN = (ast.Expression, ast.Load, ast.Name, ast.BinOp, ast.UnaryOp)
_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.UAdd, ast.USub)


def expression_text(tokens: list[Token]) -> str:
    """The whitespace-normalised text of an expression: its tokens joined without spaces."""
    return "".join(t.text for t in tokens)


def expression_names(text: str) -> list[str]:
    """Names used as variables (not as function names) in a validated expression string.

    Parameters
    ----------
    text
        An expression string as stored in a :class:`~pymlsem.syntax.model.Statement`.

    Returns
    -------
    list of str
        Unique names in order of appearance.
    """
    tree = ast.parse(text.replace("^", "**"), mode="eval")
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    names = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called]
    return list(dict.fromkeys(names))


def check_expression(tokens: list[Token], source: str, what: str) -> str:
    """Check that tokens form an arithmetic expression and return its normalised text.

    Parameters
    ----------
    tokens
        The expression's tokens (not empty).
    source
        The model string, for error messages.
    what
        Which side is checked, used in messages (e.g. ``"right-hand side of :="``).

    Returns
    -------
    str
        The expression text (see :func:`expression_text`).

    Raises
    ------
    ModelSyntaxError
        At the token where the expression stops being valid.
    """
    for tok in tokens:
        if tok.kind == STRING:
            _fail(f"a quoted string is not allowed in the {what}", tok, source)
        if tok.kind not in (NAME, NUMBER) and tok.text not in _ALLOWED_OPS:
            _fail(f"operator {tok.text!r} is not allowed in the {what}; use + - * / ^ and calls "
                  "such as exp(a)", tok, source)  # fmt: skip
    last = tokens[-1]
    if last.kind not in (NAME, NUMBER) and last.text != ")":
        _fail(f"the {what} is not a valid arithmetic expression: it ends with {last.text!r}; add what "
              "comes after it", last, source)  # fmt: skip
    # Rebuild with spaces so that adjacent names stay separate; remember each token's offset.
    pieces: list[str] = []
    starts: list[int] = []
    pos = 0
    for tok in tokens:
        text = "**" if tok.text == "^" else tok.text
        starts.append(pos)
        pieces.append(text)
        pos += len(text) + 1
    spaced = " ".join(pieces)
    try:
        tree = ast.parse(spaced, mode="eval")
    except SyntaxError as err:
        offset = (err.offset or 1) - 1
        _fail(f"the {what} is not a valid arithmetic expression ({err.msg}); write it like "
              "a*b or (a + b)/2", _token_at(tokens, starts, offset), source)  # fmt: skip
    for node in ast.walk(tree):
        bad = _disallowed(node)
        if bad:
            off = getattr(node, "col_offset", 0)
            _fail(f"{bad} in the {what}", _token_at(tokens, starts, off), source)
    return expression_text(tokens)


def _disallowed(node: ast.AST) -> str | None:
    if isinstance(node, _PLAIN + _OPERATORS):
        return None
    if isinstance(node, ast.operator | ast.unaryop):
        return "only + - * / ^ are allowed as operators"
    if isinstance(node, ast.Constant):
        ok = isinstance(node.value, int | float) and not isinstance(node.value, bool)
        return None if ok else "only numbers are allowed as constants"
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = getattr(node.func, "id", "?")
            return f"unknown function {name!r} (allowed: {', '.join(sorted(FUNCTIONS))})"
        if node.keywords or len(node.args) != 1:
            return f"function {node.func.id!r} takes exactly one argument"
        return None
    if isinstance(node, ast.Tuple):
        return "a comma is only allowed between function arguments"
    return "this is not allowed (use names, numbers, + - * / ^ and calls such as exp(a))"


def _token_at(tokens: list[Token], starts: list[int], offset: int) -> Token:
    best = tokens[0]
    for tok, start in zip(tokens, starts, strict=True):
        if start <= offset:
            best = tok
    return best


def _fail(message: str, tok: Token, source: str) -> None:
    raise ModelSyntaxError(message, source, tok.line, tok.column)
