"""Prior strings: blavaan notation, defaults, precedence, errors (no PyMC model needed)."""

from __future__ import annotations

import pytest

from pymlsem.exceptions import PriorError
from pymlsem.priors import DEFAULT_PRIORS, Prior, parse_prior, resolve_prior


@pytest.mark.parametrize(
    "text,expected",
    [
        ("normal(0,10)", Prior("normal", (0.0, 10.0))),
        ("gamma(1,.5)[sd]", Prior("gamma", (1.0, 0.5), "sd")),
        ("dnorm(0, 1e-2)", Prior("normal", (0.0, 0.01))),
        ("beta(1,1)", Prior("beta", (1.0, 1.0))),
        ("student_t(3, 0, 2.5)", Prior("student_t", (3.0, 0.0, 2.5))),
        ("normal(-1,1)", Prior("normal", (-1.0, 1.0))),
        ("invgamma(2,1)[var]", Prior("inv_gamma", (2.0, 1.0), "var")),
    ],
)
def test_parse_prior(text: str, expected: Prior) -> None:
    assert parse_prior(text) == expected


@pytest.mark.parametrize(
    "text,message",
    [
        ("normal 0 10", "family\\(arguments\\)"),
        ("wishart(3)", "unknown prior family"),
        ("normal(0)", "takes 2 argument"),
        ("normal(0,-1)", "must be positive"),
        ("normal(a,1)", "must be numbers"),
        ("gamma(1,1)[std]", "\\[sd\\], \\[var\\] or \\[prec\\]"),
        ("uniform(2,1)", "lower < upper"),
    ],
)
def test_bad_priors_are_explained(text: str, message: str) -> None:
    with pytest.raises(PriorError, match=message):
        parse_prior(text)


def test_blavaan_defaults() -> None:
    assert DEFAULT_PRIORS == {
        "lambda": "normal(0,10)",
        "beta": "normal(0,10)",
        "nu": "normal(0,32)",
        "alpha": "normal(0,10)",
        "theta": "gamma(1,.5)[sd]",
        "psi": "gamma(1,.5)[sd]",
        "rho": "beta(1,1)",
        "tau": "normal(0,1.5)",
    }
    assert str(resolve_prior("theta")) == "gamma(1,0.5)[sd]"


def test_precedence_syntax_then_name_then_class_then_default() -> None:
    priors = {"lambda": "normal(1,1)", "a": "normal(2,1)"}
    assert (
        str(resolve_prior("lambda", names=("a",), syntax_prior="normal(3,1)", priors=priors)) == "normal(3,1)"
    )
    assert str(resolve_prior("lambda", names=("a",), priors=priors)) == "normal(2,1)"
    assert str(resolve_prior("lambda", names=("b",), priors=priors)) == "normal(1,1)"
    assert str(resolve_prior("beta", names=("b",), priors=priors)) == "normal(0,10)"


@pytest.mark.parametrize(
    "pclass,text",
    [
        ("theta", "normal(0,1)"),
        ("rho", "normal(0,1)"),
        ("lambda", "gamma(1,1)"),
        ("lambda", "normal(0,1)[sd]"),
    ],
)
def test_prior_must_fit_the_parameter(pclass: str, text: str) -> None:
    with pytest.raises(PriorError):
        resolve_prior(pclass, syntax_prior=text)
