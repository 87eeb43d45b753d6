"""Tokenizer for lavaan model syntax, keeping the 1-based line and column of every token."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pymlsem.exceptions import ModelSyntaxError

#: Token kinds.
NAME = "NAME"
NUMBER = "NUMBER"
STRING = "STRING"
OP = "OP"
NEWLINE = "NEWLINE"
SEMI = "SEMI"

# Longest first, so that "=~" wins over "=" and "**" over "*".
_SYMBOLS: tuple[str, ...] = (
    "~*~", "=~", "~~", ":=", "==", "<=", ">=", "<~", "**", "~", "<", ">", "|", "=",
    "+", "-", "*", "/", "^", "?", "(", ")", ",", ":",
)  # fmt: skip
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*")


@dataclass(frozen=True)
class Token:
    """A token of the model string.

    Parameters
    ----------
    kind
        One of ``NAME``, ``NUMBER``, ``STRING``, ``OP``, ``NEWLINE``, ``SEMI``.
    text
        The token's text (for ``STRING`` the contents without the quotes).
    line, column
        1-based position of the token's first character.
    """

    kind: str
    text: str
    line: int
    column: int

    def is_op(self, *texts: str) -> bool:
        """Whether this is an operator token with one of the given texts."""
        return self.kind == OP and self.text in texts


def tokenize(source: str) -> list[Token]:
    """Split a model string into tokens.

    Comments (``#`` or ``!`` to the end of the line) are dropped; newlines become ``NEWLINE``
    tokens and ``;`` becomes a ``SEMI`` token.

    Parameters
    ----------
    source
        The model string.

    Returns
    -------
    list of Token

    Raises
    ------
    ModelSyntaxError
        For an unterminated string or a character that is not part of the syntax.
    """
    tokens: list[Token] = []
    for line_no, text in enumerate(source.splitlines() or [""], start=1):
        tokens.extend(_tokenize_line(text, line_no, source))
        tokens.append(Token(NEWLINE, "\n", line_no, len(text) + 1))
    return tokens


def _tokenize_line(text: str, line_no: int, source: str) -> list[Token]:
    out: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        col = i + 1
        if ch in " \t\r\f\v":
            i += 1
        elif ch in "#!":
            break
        elif ch == ";":
            out.append(Token(SEMI, ";", line_no, col))
            i += 1
        elif ch in "\"'":
            end = text.find(ch, i + 1)
            if end < 0:
                raise ModelSyntaxError(
                    f"unbalanced quotes: the string starting here is never closed; add a closing {ch}",
                    source, line_no, col,
                )  # fmt: skip
            out.append(Token(STRING, text[i + 1 : end], line_no, col))
            i = end + 1
        elif (m := _NUMBER.match(text, i)) and (ch.isdigit() or ch == "."):
            out.append(Token(NUMBER, m.group(), line_no, col))
            i = m.end()
        elif m := _NAME.match(text, i):
            out.append(Token(NAME, m.group(), line_no, col))
            i = m.end()
        else:
            sym = next((s for s in _SYMBOLS if text.startswith(s, i)), None)
            if sym is None:
                raise ModelSyntaxError(
                    f"unexpected character {ch!r}; model statements use names, numbers, quoted strings "
                    "and the operators =~ ~ ~~ := == < > | + * ?",
                    source, line_no, col,
                )  # fmt: skip
            out.append(Token(OP, sym, line_no, col))
            i += len(sym)
    return out
