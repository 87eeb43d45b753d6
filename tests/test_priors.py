"""Prior strings: blavaan notation, defaults in the data's units, precedence, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import pymlsem
from pymlsem.build.prior_units import parameter_units
from pymlsem.exceptions import PriorError
from pymlsem.priors import DEFAULT_PRIORS, Prior, parse_prior, resolve_prior, scaled_prior


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


@pytest.mark.parametrize(
    "prior,unit,expected",
    [
        (Prior("normal", (0.0, 10.0)), 3.0, Prior("normal", (0.0, 30.0))),
        (Prior("normal", (1.0, 2.0)), 0.5, Prior("normal", (0.5, 1.0))),
        (Prior("student_t", (3.0, 0.0, 2.5)), 2.0, Prior("student_t", (3.0, 0.0, 5.0))),
        (Prior("gamma", (1.0, 0.5), "sd"), 4.0, Prior("gamma", (1.0, 0.125), "sd")),
        (Prior("halfnormal", (1.0,), "sd"), 4.0, Prior("halfnormal", (4.0,), "sd")),
        (Prior("gamma", (1.0, 0.5), "var"), 4.0, Prior("gamma", (1.0, 0.5), "var")),  # not scaled
        (Prior("beta", (1.0, 1.0)), 4.0, Prior("beta", (1.0, 1.0))),
    ],
)
def test_scaled_prior_is_the_distribution_of_unit_times_x(prior: Prior, unit: float, expected: Prior) -> None:
    assert scaled_prior(prior, unit) == expected


def test_scaled_gamma_on_sd_matches_the_scaled_draws() -> None:
    """gamma(1,.5)[sd] in units of 40: the law of 40 * X (Kolmogorov-Smirnov against scipy)."""
    scaled = scaled_prior(Prior("gamma", (1.0, 0.5), "sd"), 40.0)
    draws = 40.0 * np.random.default_rng(1).gamma(1.0, 1 / 0.5, size=4000)
    alpha, rate = scaled.args
    assert stats.kstest(draws, stats.gamma(alpha, scale=1 / rate).cdf).pvalue > 0.01


def test_only_the_default_is_scaled() -> None:
    assert str(resolve_prior("lambda", unit=3.0)) == "normal(0,30)"
    assert str(resolve_prior("lambda", priors={"lambda": "normal(0,10)"}, unit=3.0)) == "normal(0,10)"
    assert str(resolve_prior("lambda", syntax_prior="normal(0,1)", unit=3.0)) == "normal(0,1)"
    assert str(resolve_prior("rho", unit=3.0)) == "beta(1,1)"


def _units(model: str, frame: pd.DataFrame, **kwargs) -> dict[str, float]:
    spec = pymlsem.SEM(model, frame, **kwargs)
    table = spec.partable.table
    latent = {v for names in spec.partable.latent.values() for v in names}
    units = parameter_units(table, spec.stats, latent)
    return {f"{r.lhs}{r.op}{r.rhs}": u for r, u in zip(table.itertuples(), units, strict=True)}


def test_units_follow_markers_fixed_variances_and_regressions() -> None:
    rng = np.random.default_rng(3)
    f = rng.normal(size=500)
    frame = pd.DataFrame(
        {
            "y1": 100 + 20 * f + rng.normal(size=500),
            "y2": 5 + 2 * f + rng.normal(size=500),
            "y3": 3 * f + rng.normal(size=500),
            "x": 50 + 10 * rng.normal(size=500),
        }
    )
    sd, mean = frame.std(ddof=0), frame.mean()
    marker = _units("f =~ y1 + 2*y2 + y3\n f ~ x", frame)
    assert marker["f=~y3"] == pytest.approx(sd.y3 / sd.y1)  # f on y1's scale
    assert marker["f~x"] == pytest.approx(sd.y1 / sd.x)
    assert marker["f~~f"] == pytest.approx(sd.y1)
    assert marker["y2~1"] == pytest.approx(np.hypot(mean.y2, sd.y2))
    assert marker["y3~~y3"] == pytest.approx(sd.y3)
    standardized = _units("f =~ NA*y1 + y2 + y3\n f ~~ 1*f", frame)
    assert standardized["f=~y1"] == pytest.approx(sd.y1)  # f has SD 1
    second = _units("f =~ y2 + y1 + y3", frame)
    assert second["f=~y1"] == pytest.approx(sd.y1 / sd.y2)  # the marker is the first indicator
    slope = _units("i =~ 1*y1 + 1*y2 + 1*y3\n s =~ 0*y1 + 2*y2 + 4*y3", frame, model_type="growth")
    assert slope["s~1"] == pytest.approx(np.hypot(mean.y2, sd.y2) / 2)  # marker y2, loading 2
    assert slope["i~~s"] == 1.0  # a correlation has no unit
