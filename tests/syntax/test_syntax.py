"""Tests of the lavaan-syntax tokenizer and parser."""

from __future__ import annotations

import pytest

from pymlsem.exceptions import ModelSpecificationError, ModelSyntaxError
from pymlsem.syntax import Modifier, parse_model
from pymlsem.syntax.tokens import tokenize


def _triples(source: str) -> list[tuple]:
    return [(s.lhs, s.op, s.rhs, s.level) for s in parse_model(source).statements]


def test_tokens_have_positions_and_skip_comments() -> None:
    toks = tokenize("f =~ y1 # note\n  y ~ 1e-3*x ! other")
    assert [(t.text, t.line, t.column) for t in toks if t.kind != "NEWLINE"] == [
        ("f", 1, 1), ("=~", 1, 3), ("y1", 1, 6),
        ("y", 2, 3), ("~", 2, 5), ("1e-3", 2, 7), ("*", 2, 11), ("x", 2, 12),
    ]  # fmt: skip


def test_operators_and_expansion() -> None:
    src = "f =~ y1 + y2\ns1 + s2 ~ w + x\ny1 ~~ y2; y1 ~ 1\ny3 | t1 + t2"
    assert _triples(src) == [
        ("f", "=~", "y1", None), ("f", "=~", "y2", None),
        ("s1", "~", "w", None), ("s1", "~", "x", None), ("s2", "~", "w", None), ("s2", "~", "x", None),
        ("y1", "~~", "y2", None), ("y1", "~1", "", None),
        ("y3", "|", "t1", None), ("y3", "|", "t2", None),
    ]  # fmt: skip


def test_statement_positions() -> None:
    stmts = parse_model("f =~ y1\n  s1 + s2 ~ w").statements
    assert [(s.line, s.column) for s in stmts] == [(1, 1), (2, 3), (2, 8)]


def test_levels_case_insensitive() -> None:
    m = parse_model("Level: Within\nf =~ y1 + y2\nLEVEL: between\ng =~ y1 + y2")
    assert m.levels == (1, 2) and m.n_levels == 2
    assert [s.level for s in m.statements] == [1, 1, 2, 2]
    assert [s.level for s in parse_model("level: 2\ng =~ y1\nlevel: 1\nf =~ y1").statements] == [2, 1]


@pytest.mark.parametrize(
    "source",
    [
        "f =~ y1 +\n  y2 + y3",
        "f =~ y1\n  + y2\n  + y3",
        "f =~\n y1 + y2 + y3",
        "f =~ y1 + 1*\n y2 + y3",
        "# header\nf =~ y1 + y2 + y3 # trailing\n\n",
    ],
)
def test_continuation_lines(source: str) -> None:
    if "1*" in source:
        assert parse_model(source).statements[1].modifier.fixed == 1.0
    assert [s.rhs for s in parse_model(source).statements] == ["y1", "y2", "y3"]


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("0*x", Modifier(fixed=0.0)),
        ("1*x", Modifier(fixed=1.0)),
        ("-0.5*x", Modifier(fixed=-0.5)),
        ("1e-3*x", Modifier(fixed=0.001)),
        ("NA*x", Modifier(free=True)),
        ("a*x", Modifier(label="a")),
        ('label("a")*x', Modifier(label="a")),
        ('equal("b.1")*x', Modifier(label="b.1")),
        ("start(0.5)*x", Modifier(start=0.5)),
        ("start(-2)*x", Modifier(start=-2.0)),
        ("0.5?x", Modifier(start=0.5)),
        ('prior("normal(0, 1)")*x', Modifier(prior="normal(0, 1)")),
        ('rv("s1")*x', Modifier(random_slope="s1")),
        ("a*start(0.5)*x", Modifier(label="a", start=0.5)),
        ('prior("normal(0,1)")*b*x', Modifier(label="b", prior="normal(0,1)")),
        ("NA*start(1)*x", Modifier(free=True, start=1.0)),
        ("x", Modifier()),
    ],
)
def test_modifiers(term: str, expected: Modifier) -> None:
    (stmt,) = parse_model(f"y ~ {term}").statements
    assert stmt.rhs == "x"
    assert stmt.modifier == expected


def test_intercept_with_modifier() -> None:
    stmts = parse_model("y ~ 0*1 + x\nz ~ m*1").statements
    assert [(s.op, s.rhs, s.modifier.fixed, s.modifier.label) for s in stmts] == [
        ("~1", "", 0.0, None), ("~", "x", None, None), ("~1", "", None, "m")]  # fmt: skip


def test_expressions_are_normalised() -> None:
    stmts = parse_model("ind := a * b\ntot := c +\n  a*b\na == 2 * exp( b )\nc > 0; d < abs(a)^2").statements
    assert [(s.lhs, s.op, s.rhs) for s in stmts] == [
        ("ind", ":=", "a*b"), ("tot", ":=", "c+a*b"), ("a", "==", "2*exp(b)"), ("c", ">", "0"),
        ("d", "<", "abs(a)^2")]  # fmt: skip


@pytest.mark.parametrize(
    ("source", "line", "column", "match"),
    [
        ("f = y1 + y2", 1, 3, "did you mean =~"),
        ("f =~ y1\ny2 = x", 2, 4, "did you mean =~"),
        ("f =~", 1, 5, "missing right-hand side"),
        ("f =~ y1\ny ~ ", 2, 4, "missing right-hand side"),
        ("=~ y1", 1, 1, "missing left-hand side"),
        ("f =~ y1 + 0.5*", 1, 14, "no variable after"),
        ("f =~ a*", 1, 7, "no variable after"),
        ("f =~ y1 + + y2", 1, 11, "missing term before"),
        ("f =~ y1 y2", 1, 9, "forget a '\\+'"),
        ('y ~ prior("normal(0,1)*x', 1, 11, "unbalanced quotes"),
        ("y ~ start(0.5*x", 1, 10, "never closed"),
        ("y ~ x)", 1, 6, "no matching"),
        ("level: 3\nf =~ y1", 1, 8, "only two levels"),
        ("level: middle\nf =~ y1", 1, 8, "only two levels"),
        ("level:\nf =~ y1", 1, 7, "missing level"),
        ("f =~ y1\nlevel: 1\ng =~ y2", 1, 1, "before the first 'level:'"),
        ("", 1, 1, "empty"),
        ("# only a comment\n", 1, 1, "empty"),
        ("f =~ y1\n  y1 y2", 2, 3, "no operator"),
        ("y ~ 0*1*x", 1, 7, "conflicting modifiers"),
        ("y ~ NA*0*x", 1, 8, "conflicting modifiers"),
        ("y ~ a*b*x", 1, 7, "label given twice"),
        ("y ~ foo(1)*x", 1, 5, "unknown modifier function"),
        ("y ~ c(1, 2)*x", 1, 5, "multiple groups"),
        ("y ~ start(a)*x", 1, 11, "takes one number"),
        ("y ~ a?x", 1, 5, "must be a number"),
        ("y ~ 2", 1, 5, "variable name or 1"),
        ("f =~ 1", 1, 6, "expected a variable name"),
        ("f =~ f + y1", 1, 6, "both sides"),
        ("a*f =~ y1", 1, 2, "right-hand side"),
        ("y1 | x1", 1, 6, "t1, t2"),
        ("ab := a*", 1, 8, "not a valid arithmetic expression"),
        ("ab := a b", 1, 9, "not a valid arithmetic expression"),
        ("ab := foo(a)", 1, 7, "unknown function 'foo'"),
        ("a*b := c", 1, 2, "single new parameter name"),
        ("ab :=", 1, 6, "missing right-hand side"),
        ('ab := "a"', 1, 7, "quoted string"),
        ("a == b ~ c", 1, 8, "not allowed"),
        ("a <= b", 1, 3, "< or >"),
        ("f <~ x", 1, 3, "not supported"),
        ("y ~ x @ z", 1, 7, "unexpected character"),
    ],
)
def test_syntax_errors(source: str, line: int, column: int, match: str) -> None:
    with pytest.raises(ModelSyntaxError, match=match) as err:
        parse_model(source)
    assert (err.value.line, err.value.column) == (line, column)


def test_error_message_shows_caret() -> None:
    with pytest.raises(ModelSyntaxError) as err:
        parse_model("f =~ y1\ng = y2")
    text = str(err.value)
    assert "line 2, column 3" in text
    assert "  g = y2\n    ^" in text


def test_non_string_model() -> None:
    with pytest.raises(ModelSpecificationError, match="the model must be a string"):
        parse_model(None)  # type: ignore[arg-type]


def test_parsed_model_helpers() -> None:
    m = parse_model("y ~ a*x\nab := a*2")
    assert [s.op for s in m.model_statements()] == ["~"]
    assert [s.op for s in m.expression_statements()] == [":="]
    assert m.n_levels == 1 and m.levels == ()
