"""The bad-input catalogue: every case is answered by our own exception, whose message says what is wrong
and where, before anything is compiled.

Each case is a call that a user could make by mistake (model syntax, arguments, data, summary statistics,
priors, lme4 formulas and families, sampler settings, calls on a fit), the exception class it must raise
and words of the message that name the culprit. While a case runs, compiling a PyTensor function or
loading an engine family fails the test (the ``nothing_compiles`` fixture), so every answer is shown to
come before any compilation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytensor
import pytensor.compile.maker
import pytest
from reference import HS, SEED, data

import pymlsem
from pymlsem.engine import run as engine_run
from pymlsem.exceptions import (
    ControlError,
    DataError,
    ModelSpecificationError,
    ModelSyntaxError,
    PriorError,
    PymlsemError,
    SamplerError,
)

SLEEP = "Reaction ~ Days + (1 | Subject)"
THREE = "f =~ x1 + x2 + x3"


@cache
def _frame(name: str) -> pd.DataFrame:
    return data(name)


def hs(**columns: Any) -> pd.DataFrame:
    """HolzingerSwineford1939, with ``columns`` assigned (a new frame)."""
    return _frame("HolzingerSwineford1939").assign(**columns)


def demo(**columns: Any) -> pd.DataFrame:
    """Demo.twolevel, with ``columns`` assigned (a new frame)."""
    return _frame("Demo.twolevel").assign(**columns)


def sleep(**columns: Any) -> pd.DataFrame:
    """sleepstudy, with ``columns`` assigned (a new frame)."""
    return _frame("sleepstudy").assign(**columns)


def cov3() -> pd.DataFrame:
    return hs()[["x1", "x2", "x3"]].cov()


def sem(model: str, frame: pd.DataFrame | None = None, **kwargs: Any) -> pymlsem.SEM:
    return pymlsem.SEM(model, hs() if frame is None else frame, **kwargs)


def sem2(model: str, frame: pd.DataFrame | None = None, **kwargs: Any) -> pymlsem.SEM:
    return pymlsem.SEM(model, demo() if frame is None else frame, cluster="cluster", **kwargs)


def mixed(formula: str = SLEEP, frame: pd.DataFrame | None = None, **kwargs: Any) -> Any:
    return pymlsem.mixed_model(formula, sleep() if frame is None else frame, **kwargs)


def counts(**columns: Any) -> pd.DataFrame:
    """sleepstudy with an integer count response."""
    return sleep(Reaction=lambda d: (d.Reaction // 50).astype(int), **columns)


#: (case id, call taking the fits, exception class, words the message must contain)
Case = tuple[str, Callable[[SimpleNamespace], Any], type[PymlsemError], str]
CASES: list[Case] = []


def cases(error: type[PymlsemError], items: dict[str, tuple[Callable[[SimpleNamespace], Any], str]]) -> None:
    CASES.extend((name, call, error, words) for name, (call, words) in items.items())


# ------------------------------------------------------------------------------------------ lavaan syntax
SYNTAX = {
    "empty model": ("", "line 1, column 1: the model is empty"),
    "only a comment": ("  \n  # a comment\n", "the model is empty"),
    "no right-hand side": ("visual =~", "line 1, column 10: missing right-hand side after '=~'"),
    "no left-hand side": ("=~ x1 + x2", "missing left-hand side before '=~'"),
    "double plus": ("visual =~ x1 + + x2", "column 16: missing term before '+'"),
    "unknown operator": ("visual => x1 + x2", "unknown operator '='"),
    "trailing plus": ("visual =~ x1 + x2 +", "missing term after '+'"),
    "unclosed parenthesis": ("visual =~ x1 + (x2", "this '(' is never closed"),
    "two fixed values": (
        "visual =~ 2*3*x1 + x2 + x3",
        "conflicting modifiers: this term is fixed or freed twice",
    ),
    "two labels": ("visual =~ a*b*x1 + x2 + x3", "label given twice ('a' and 'b')"),
    "covariance without right-hand side": (
        f"{THREE}\n x1 ~~ ",
        "line 2, column 7: missing right-hand side after '~~'",
    ),
    "empty definition": (f"{THREE}\nab := ", "line 2, column 6: missing right-hand side after ':='"),
    "unclosed start()": ("visual =~ start(0.5*x1 + x2", "this '(' is never closed"),
    "two numbers": (f"{THREE}\nf ~ 1 1", "line 2, column 7: unexpected '1' after '1'"),
    "level three": ("level: 3\n f =~ x1 + x2 + x3", "bad level '3'"),
    "level in words": ("level: one\n f =~ x1 + x2 + x3", "bad level 'one'"),
    "name starting with a digit": (
        "1f =~ x1 + x2 + x3",
        "expected a variable name on the left-hand side of '=~'",
    ),
    "formative indicator": (f"{THREE}\n f <~ x4", "formative indicators ('<~') are not supported"),
    "chained covariance": (f"{THREE}\n f ~~ f ~~ f", "line 2, column 9: unexpected '~~' after 'f'"),
    "chained regression": (f"{THREE}\n x4 ~ x5 ~ x6", "unexpected '~' after 'x5'"),
    "bad number": ("f =~ x1 + 1.5.2*x2 + x3", "cannot read '1.5' as a modifier"),
    "statement before the first level": (
        f"{THREE}\nlevel: 1",
        "this statement comes before the first 'level:' line",
    ),
    "NA twice": ("f =~ x1 + NA*NA*x2 + x3", "this term is fixed or freed twice"),
    "regression without left-hand side": (
        f"{THREE}\n ~ x4",
        "line 2, column 2: missing left-hand side before '~'",
    ),
}
cases(ModelSyntaxError, {name: (lambda _, m=m: sem(m), words) for name, (m, words) in SYNTAX.items()})

SPECIFICATION = {
    "definition of an unknown label": (
        f"{THREE}\nab := q*2",
        "'q' in 'ab := q*2' (line 2) is not a parameter label",
    ),
    "constraint on unknown labels": (f"{THREE}\n q == 2*r", "'q' in 'q == 2*r' (line 2)"),
    "definition of two unknown labels": (f"{THREE}\n a := b + c", "'b' in 'a := b+c' (line 2)"),
    "factor regressed on itself": (f"{THREE}\n f ~ f", "10 free parameters but the data give only 9"),
    "feedback loop": (f"{THREE}\n x1 ~ x2\n x2 ~ x1", "not identified"),
    "factor without a scale": ("f =~ NA*x1 + x2 + x3", "latent variable 'f' (level 1) has no scale"),
    "single indicator": ("f =~ x1", "3 free parameters but the data give only 2 sample moments"),
    "model not a string": (3, "the model must be a string in lavaan syntax"),
    "model None": (None, "not NoneType"),
}
cases(
    ModelSpecificationError,
    {name: (lambda _, m=m: sem(m), words) for name, (m, words) in SPECIFICATION.items()},
)

TWO_LEVEL = {
    "level 1 twice": (
        ModelSpecificationError,
        "level: 1\n fw =~ y1 + y2 + y3\nlevel: 1\n fb =~ y1 + y2 + y3",
        "no statements under level: 2",
    ),
    "no level 1": (ModelSpecificationError, "level: 2\n fb =~ y1 + y2 + y3", "no statements under level: 1"),
    "empty level 2": (ModelSpecificationError, "level: 1\n fw =~ y1 + y2 + y3\nlevel: 2\n", "under level: 2"),
    "within covariate at level 2": (
        DataError,
        "level: 1\n fw =~ y1 + y2 + y3\nlevel: 2\n fb =~ y1 + y2 + y3\n fb ~ x1",
        "between-only variable 'x1' varies within cluster 1",
    ),
    "third level": (
        ModelSyntaxError,
        "level: 1\n fw =~ y1 + y2 + y3\nlevel: 2\n fb =~ y1 + y2 + y3\nlevel: 3\n fc =~ y1",
        "line 5, column 8: bad level '3'",
    ),
    "random slope written Mplus-style": (
        ModelSyntaxError,
        "level: 1\n s | y1 ~ x1\nlevel: 2\n fb =~ y1 + y2 + y3",
        "line 2, column 9: unexpected '~' after 'y1'",
    ),
    "between factor used at level 1": (
        ModelSpecificationError,
        "level: 2\n fb =~ y1 + y2 + y3\nlevel: 1\n fw =~ y1 + y2 + y3\n fw ~ fb",
        "'fb' is a latent variable at level 2 but has no indicators at level 1 (line 5)",
    ),
}
CASES.extend((name, lambda _, m=m: sem2(m), error, words) for name, (error, m, words) in TWO_LEVEL.items())

# ------------------------------------------------------------------------------------- SEM arguments
cases(
    ModelSpecificationError,
    {
        "unknown model_type": (lambda _: sem(HS, model_type="lavaan"), "model_type must be one of"),
        "unknown method": (
            lambda _: sem(HS, method="bayes"),
            "method must be one of ('auto', 'marginal', 'latent')",
        ),
        "unknown link": (
            lambda _: sem(HS, link="cloglog"),
            "link must be one of ('probit', 'logit'), got 'cloglog'",
        ),
        "std_lv not a bool": (
            lambda _: sem(HS, std_lv="TRUE"),
            "std_lv must be True or False (lavaan's std.lv), got 'TRUE'",
        ),
        "unknown centering": (
            lambda _: sem2(SEED, method="latent", centered="middle"),
            "centered must be True, False, 'between' or 'within', got 'middle'",
        ),
        "ordered variable not in the model": (
            lambda _: sem(HS, hs(b=lambda d: (d.x1 > 4).astype(int)), ordered=["b"]),
            "ordered variable 'b' is not an observed variable of the model",
        ),
    },
)
cases(
    DataError,
    {
        "ordered column not in the data": (
            lambda _: sem(HS, ordered=["x99"]),
            "ordered variable 'x99' is not a column",
        ),
        "continuous column as ordered": (
            lambda _: sem(HS, ordered=["x1"]),
            "column 'x1' has non-integer values",
        ),
        "threshold on a continuous variable": (
            lambda _: sem(f"{THREE}\n x1 | t1"),
            "column 'x1' has non-integer values (0.666667, ...), so it looks continuous",
        ),
        "cluster as a list": (
            lambda _: pymlsem.SEM(SEED, demo(), cluster=["cluster"]),
            "cluster must be the name of one column",
        ),
        "cluster is a model variable": (
            lambda _: pymlsem.SEM(SEED, demo(), cluster="y1"),
            "the cluster column 'y1' is also a variable of the model",
        ),
        "missing cluster column": (
            lambda _: pymlsem.SEM(SEED, demo(), cluster="school"),
            "the cluster column 'school' is not in the data",
        ),
        "two-level model without cluster": (lambda _: pymlsem.SEM(SEED, demo()), "it needs cluster="),
        "cluster for a single-level model": (
            lambda _: sem(HS, cluster="school"),
            "cluster='school' was given but the model has no 'level: 1'",
        ),
        "no data": (lambda _: pymlsem.SEM(HS), "give the data (a DataFrame), or sample_cov"),
        "data and summary statistics": (
            lambda _: pymlsem.SEM(THREE, hs(), sample_cov=cov3(), sample_nobs=301),
            "give either data or sample_cov/sample_mean/sample_nobs, not both",
        ),
    },
)

# ------------------------------------------------------------------------------------------ SEM data
cases(
    DataError,
    {
        "data as a list": (
            lambda _: sem(HS, [[1, 2, 3]]),
            "data must be a data frame (pandas, polars, PyArrow, ...), got list",
        ),
        "data as a dict": (lambda _: sem(HS, {"x1": [1, 2]}), "got dict"),
        "data as a file name": (lambda _: sem(HS, "hs.csv"), "got str"),
        "data as a Series": (lambda _: sem(HS, hs().x1), "got Series"),
        "data as a numpy array": (lambda _: sem(HS, hs().to_numpy()), "got ndarray"),
        "a PyArrow table of the wrong model": (
            lambda _: sem(THREE.replace("x3", "x33"), pa.Table.from_pandas(hs())),
            "'x33' (closest: x3",
        ),
        "no rows": (lambda _: sem(HS, hs().iloc[:0]), "no rows are left"),
        "a column of missing values": (lambda _: sem(HS, hs(x1=np.nan)), "missing or infinite values in: x1"),
        "a constant column": (
            lambda _: sem(HS, hs(x1=1.0)),
            "column 'x1' is constant (every observed value is 1)",
        ),
        "a boolean column": (
            lambda _: sem(HS, hs(x1=lambda d: d.x1 > 4)),
            "column 'x1' is not numeric (dtype bool)",
        ),
        "an infinite value": (
            lambda _: sem(HS, hs(x1=lambda d: d.x1.replace(d.x1.iloc[0], np.inf))),
            "infinite values in: x1",
        ),
        "minus infinity": (lambda _: sem(HS, hs(x2=-np.inf)), "infinite values in: x2"),
        "a categorical column": (
            lambda _: sem(HS, hs(x1=lambda d: pd.Categorical(d.school))),
            "'x1' is not numeric (dtype category)",
        ),
        "a datetime column": (
            lambda _: sem(HS, hs(x1=pd.Timestamp("2020-01-01"))),
            "'x1' is not numeric (dtype datetime64",
        ),
        "a complex column": (
            lambda _: sem(HS, hs(x1=lambda d: d.x1 + 1j)),
            "'x1' is not numeric (dtype complex128)",
        ),
        "numbers stored as objects": (
            lambda _: sem(HS, hs(x1=lambda d: d.x1.astype(object))),
            "'x1' is not numeric (dtype object)",
        ),
        "text in a column": (lambda _: sem(HS, hs(x1=lambda d: d.x1.astype(str))), "'x1' is not numeric"),
        "columns under a MultiIndex": (
            lambda _: sem(HS, pd.concat({"a": hs()}, axis=1)),
            "observed variable(s) not in the data: 'x1'",
        ),
        "duplicated column": (
            lambda _: sem(HS, pd.concat([hs(), hs()[["x1"]]], axis=1)),
            "several columns named 'x1'",
        ),
        "misspelled variable": (lambda _: sem(THREE.replace("x3", "x33")), "'x33' (closest: x3"),
        "variable not in the data": (
            lambda _: sem(f"{THREE}\n x10 ~ x1"),
            "observed variable(s) not in the data: 'x10'",
        ),
        "between variable varies within a cluster": (
            lambda _: sem2(SEED, demo(w1=lambda d: d.w1.where(d.index != 0, 5.0))),
            "between-only variable 'w1' varies within cluster 1",
        ),
        "between variable constant": (lambda _: sem2(SEED, demo(w1=1.0)), "column 'w1' is constant"),
        "a single cluster": (lambda _: sem2(SEED, demo(cluster=1)), "1 cluster"),
        "every cluster a single row": (
            lambda _: sem2(SEED, demo(cluster=lambda d: np.arange(len(d)))),
            "every cluster of 'cluster' has a single row",
        ),
    },
)

# ---------------------------------------------------------------------------------- summary statistics
cases(
    DataError,
    {
        "sample_cov without sample_nobs": (
            lambda _: pymlsem.SEM(THREE, sample_cov=cov3()),
            "sample_cov needs sample_nobs=N",
        ),
        "sample_cov not square": (
            lambda _: pymlsem.SEM(THREE, sample_cov=cov3().iloc[:2], sample_nobs=300),
            "sample_cov must have the same row and column names",
        ),
        "sample_cov not symmetric": (
            lambda _: pymlsem.SEM(
                THREE,
                sample_cov=cov3().to_numpy() + np.triu(np.ones((3, 3)), 1),
                variables=["x1", "x2", "x3"],
                sample_nobs=300,
            ),
            "sample_cov is not symmetric",
        ),
        "sample_cov not positive definite": (
            lambda _: pymlsem.SEM(THREE, sample_cov=-cov3(), sample_nobs=300),
            "sample_cov is not positive definite",
        ),
        "sample_cov with missing values": (
            lambda _: pymlsem.SEM(THREE, sample_cov=cov3().where(cov3() > 0.5), sample_nobs=300),
            "sample_cov has missing or infinite values",
        ),
        "sample_cov array without names": (
            lambda _: pymlsem.SEM(THREE, sample_cov=cov3().to_numpy(), sample_nobs=300),
            "sample_cov is an array: give variables=",
        ),
        "too few variable names": (
            lambda _: pymlsem.SEM(
                THREE, sample_cov=cov3().to_numpy(), variables=["x1", "x2"], sample_nobs=300
            ),
            "sample_cov has shape (3, 3) but variables= names 2 variable(s)",
        ),
        "sample_nobs zero": (
            lambda _: pymlsem.SEM(THREE, sample_cov=cov3(), sample_nobs=0),
            "sample_nobs must be an integer of at least 2, not 0",
        ),
        "sample_nobs fractional": (
            lambda _: pymlsem.SEM(THREE, sample_cov=cov3(), sample_nobs=2.5),
            "not 2.5",
        ),
        "sample_mean of the wrong length": (
            lambda _: pymlsem.SEM(THREE, sample_cov=cov3(), sample_mean=[1, 2], sample_nobs=300),
            "sample_mean has 2 values, expected 3",
        ),
        "variable not in sample_cov": (
            lambda _: pymlsem.SEM("f =~ x1 + x2 + x4", sample_cov=cov3(), sample_nobs=300),
            "observed variable(s) not in the data: 'x4'",
        ),
        "summary statistics for a two-level model": (
            lambda _: pymlsem.SEM(SEED, sample_cov=cov3(), sample_nobs=300, cluster="cluster"),
            "summary statistics (sample_cov=) fit single-level models only",
        ),
    },
)

# ------------------------------------------------------------------------------------------ SEM priors
PRIORS = {
    "unknown prior family": (
        {"lambda": "normel(0,1)"},
        "unknown prior family 'normel' in 'normel(0,1)' (for visual=~x2)",
    ),
    "unknown class": ({"lamda": "normal(0,1)"}, "priors={'lamda': ...} names no parameter of the model"),
    "negative SD": ({"lambda": "normal(0,-1)"}, "sigma must be positive in 'normal(0,-1)' (for visual=~x2)"),
    "too few arguments": ({"lambda": "normal(0)"}, "normal takes 2 argument(s) (mu, sigma), got 1"),
    "unclosed prior": ({"lambda": "normal(0,1"}, "cannot read the prior 'normal(0,1' (for visual=~x2)"),
    "text argument": (
        {"lambda": "normal(a,1)"},
        "the arguments of 'normal(a,1)' (for visual=~x2) must be numbers",
    ),
    "prior as a number": ({"lambda": 10}, "priors['lambda'] = 10: a prior is a string"),
    "unknown parameter": ({"visual=~x9": "normal(0,1)"}, "priors={'visual=~x9': ...} names no parameter"),
    "positive prior on a loading": (
        {"lambda": "gamma(1,1)"},
        "the prior gamma(1,1) for visual=~x2 must be on the real line",
    ),
    "beta with a zero shape": (
        {"rho": "beta(0,1)"},
        "alpha must be positive in 'beta(0,1)' (for visual~~textual)",
    ),
    "unknown scale suffix": (
        {"theta": "gamma(1,.5)[foo]"},
        "unknown suffix [foo] in 'gamma(1,.5)[foo]' (for x1~~x1)",
    ),
    "uniform bounds reversed": ({"lambda": "uniform(2,1)"}, "uniform(lower, upper) needs lower < upper"),
    "NaN argument": ({"lambda": "normal(nan,1)"}, "'normal(nan,1)' (for visual=~x2) must be numbers"),
    "infinite SD": ({"lambda": "normal(0,inf)"}, "'normal(0,inf)' (for visual=~x2) must be numbers"),
    "priors as a list": (["normal(0,1)"], "priors must be a dict of prior strings by class or parameter"),
    "unknown default set": ("mplus", "priors='mplus' is not a choice of default priors"),
}
cases(PriorError, {name: (lambda _, p=p: sem(HS, priors=p), words) for name, (p, words) in PRIORS.items()})
cases(
    PriorError,
    {
        "unknown family inside the model": (
            lambda _: sem('visual =~ x1 + prior("normel(0,1)")*x2 + x3'),
            "unknown prior family 'normel' in 'normel(0,1)' (for visual=~x2)",
        ),
    },
)

# ------------------------------------------------------------------------------------- lme4 formulas
FORMULA_SYNTAX = {
    "empty formula": ("", "the formula is empty"),
    "no tilde": ("Reaction", "a formula needs '~' between the response and the predictors"),
    "no response": ("~ Days + (1|Subject)", "missing response before '~'"),
    "formula without right-hand side": ("Reaction ~", "missing right-hand side after '~'"),
    "no grouping factor": (
        "Reaction ~ Days + (1 | )",
        "line 1, column 22: missing grouping factor after '|'",
    ),
    "empty random term": ("Reaction ~ Days + ( | Subject)", "empty random-effect term before '|'"),
    "unclosed random term": ("Reaction ~ Days + (1 | Subject", "unmatched '('"),
    "no grouping factor after ||": ("Reaction ~ Days + (Days || )", "missing grouping factor after '|'"),
    "random term twice": (
        f"{SLEEP} + (1 | Subject)",
        "the random-effect term (1 | Subject) is written twice",
    ),
    "two tildes": ("Reaction ~ Days ~ (1|Subject)", "line 1, column 17: only one '~' is allowed"),
    "random term without columns": (
        "Reaction ~ Days + (0 | Subject)",
        "random-effect term (0 | Subject) has no columns",
    ),
    "trailing plus in a random term": ("Reaction ~ Days + (1 + | Subject)", "cannot parse '1 +'"),
    "dangling operator": ("Reaction ~ Days * + (1|Subject)", "cannot parse 'Reaction ~ Days *'"),
}
cases(
    ModelSyntaxError, {name: (lambda _, f=f: mixed(f), words) for name, (f, words) in FORMULA_SYNTAX.items()}
)
cases(
    DataError,
    {
        "misspelled grouping factor": (
            lambda _: mixed("Reaction ~ Days + (1 | Subjekt)"),
            "grouping factor 'Subjekt' is not a column of the data; did you mean 'Subject'?",
        ),
        "misspelled response": (
            lambda _: mixed("Reaktion ~ Days + (1 | Subject)"),
            "variable 'Reaktion' is not a column of the data; did you mean 'Reaction'?",
        ),
        "misspelled predictor": (
            lambda _: mixed("Reaction ~ Dayz + (1 | Subject)"),
            "variable 'Dayz' is not a column",
        ),
        "misspelled nested factor": (
            lambda _: mixed("Reaction ~ Days + (1 | Subject/Days/x)"),
            "grouping factor 'x' is not a column of the data",
        ),
        "misspelled random slope": (
            lambda _: mixed("Reaction ~ Days + (Dayz | Subject)"),
            "variable 'Dayz' is not a column",
        ),
        "misspelled interaction factor": (
            lambda _: mixed("Reaction ~ Days + (1 | Subject:Dayz)"),
            "grouping factor 'Dayz' is not a column",
        ),
        "a number as grouping factor": (
            lambda _: mixed("Reaction ~ Days + (1 | 1)"),
            "grouping factor '1' is not a column of the data",
        ),
    },
)
cases(
    ModelSpecificationError,
    {
        "random term without parentheses": (
            lambda _: mixed("Reaction ~ Days + 1 | Subject"),
            "uses 'Subject', which is neither a column",
        ),
        "unknown function": (
            lambda _: mixed("Reaction ~ foo(Days) + (1|Subject)"),
            "uses 'foo', which is neither a column of the data nor a function",
        ),
        "log without np.": (lambda _: mixed("log(Reaction) ~ Days + (1 | Subject)"), "uses 'log'"),
        "smooth term": (lambda _: mixed("Reaction ~ Days + s(Days) + (1|Subject)"), "uses 's'"),
        "formula not a string": (
            lambda _: mixed(3),
            "the formula must be a string such as 'y ~ x + (1 | g)', not int",
        ),
    },
)

# -------------------------------------------------------------------------------- mixed-model data
cases(
    DataError,
    {
        "mixed data as a list": (
            lambda _: pymlsem.mixed_model(SLEEP, [1, 2]),
            "data must be a data frame (pandas, polars, PyArrow, ...), got list",
        ),
        "mixed data as an array": (
            lambda _: pymlsem.mixed_model(SLEEP, sleep().to_numpy()),
            "got ndarray (wrap it: pandas.DataFrame",
        ),
        "mixed data without rows": (
            lambda _: mixed(frame=sleep().iloc[:0]),
            "every row has a missing value in the columns the formula uses",
        ),
        "text response": (
            lambda _: mixed(frame=sleep(Reaction="a")),
            "response 'Reaction' is not numeric (dtype",
        ),
        "boolean response": (
            lambda _: mixed(frame=sleep(Reaction=lambda d: d.Reaction > 300)),
            "response 'Reaction' is not numeric (dtype bool)",
        ),
        "response all missing": (
            lambda _: mixed(frame=sleep(Reaction=np.nan)),
            "every row has a missing value",
        ),
        "infinite response": (
            lambda _: mixed(frame=sleep(Reaction=np.inf)),
            "column(s) 'Reaction' have infinite values",
        ),
        "infinite predictor": (
            lambda _: mixed(frame=sleep(Days=lambda d: d.Days.replace(9, np.inf))),
            "column(s) 'Days' have infinite values",
        ),
        "constant response": (
            lambda _: mixed(frame=sleep(Reaction=1.0)),
            "response 'Reaction' is constant (every value is 1)",
        ),
        "complex predictor": (
            lambda _: mixed(frame=sleep(Days=lambda d: d.Days + 1j)),
            "column(s) 'Days' have complex values",
        ),
        "mixed duplicated column": (
            lambda _: pymlsem.mixed_model(SLEEP, pd.concat([sleep(), sleep()[["Days"]]], axis=1)),
            "data has several columns named 'Days'",
        ),
        "bernoulli response of 2": (
            lambda _: mixed(frame=sleep(Reaction=2.0), family="bernoulli"),
            "response 'Reaction' must be 0/1 (or True/False) for family='bernoulli'",
        ),
        "binomial response of 0.5": (
            lambda _: mixed(frame=sleep(Reaction=0.5), family="binomial"),
            "response 'Reaction' has non-integer values; family='binomial'",
        ),
        "trials column missing": (
            lambda _: mixed(frame=counts(), family="binomial", trials="n"),
            "trials='n' is not a column of the data",
        ),
        "more successes than trials": (
            lambda _: mixed(frame=counts(n=0), family="binomial", trials="n"),
            "have more successes than trials (first: row",
        ),
        "negative Poisson count": (
            lambda _: mixed(frame=sleep(Reaction=-1), family="poisson"),
            "response 'Reaction' has negative values; family='poisson'",
        ),
        "fractional Poisson count": (
            lambda _: mixed(frame=sleep(Reaction=1.5), family="poisson"),
            "has non-integer values; family='poisson' needs whole counts",
        ),
        "negative binomial count": (
            lambda _: mixed(frame=sleep(Reaction=-1), family="negbinomial"),
            "family='negbinomial' needs counts",
        ),
        "ordinal response of one category": (
            lambda _: mixed(frame=sleep(Reaction=1), family="ordinal"),
            "ordinal response 'Reaction' has 1 categories",
        ),
        "ordinal response not integer": (
            lambda _: mixed(frame=sleep(Reaction=lambda d: d.Reaction / 7), family="ordinal"),
            "must be integer codes or an ordered categorical",
        ),
    },
)
cases(
    ModelSpecificationError,
    {
        "a constant predictor": (
            lambda _: mixed("Reaction ~ Days + c + (1|Subject)", sleep(c=1.0)),
            "the fixed effect 'c' is a linear combination of '(Intercept)', 'Days'",
        ),
        "collinear predictors": (
            lambda _: mixed("Reaction ~ Days + D2 + (1 | Subject)", sleep(D2=lambda d: 2 * d.Days)),
            "'D2' is a linear combination of '(Intercept)', 'Days'",
        ),
        "a single group": (
            lambda _: mixed(frame=sleep(Subject=1)),
            "grouping factor 'Subject' has fewer than 2 levels",
        ),
        "a group per row": (
            lambda _: mixed(frame=sleep(Subject=lambda d: np.arange(len(d)))),
            "grouping factor 'Subject' has as many levels as rows (180)",
        ),
        "unknown family": (
            lambda _: mixed(family="gausian"),
            "unknown family 'gausian'; choose one of gaussian",
        ),
        "family as a number": (lambda _: mixed(family=3), "unknown family 3"),
        "unknown mixed link": (
            lambda _: mixed(family="binomial", link="cloglog"),
            "family='binomial' supports link 'logit' or 'probit', not 'cloglog'",
        ),
        "log link for a Gaussian model": (
            lambda _: mixed(link="log"),
            "family='gaussian' supports link 'identity', not 'log'",
        ),
        "trials for a Gaussian model": (
            lambda _: mixed(frame=sleep(n=2), trials="n"),
            "trials= and offset= are for non-Gaussian families",
        ),
        "an offset term in a Gaussian formula": (
            lambda _: mixed("Reaction ~ Days + offset(Days) + (1|Subject)"),
            "offset(Days) is for non-Gaussian families",
        ),
        "unknown mixed method": (
            lambda _: mixed(method="laplace"),
            "unknown method 'laplace'; choose one of marginal, latent",
        ),
    },
)
cases(
    PriorError,
    {
        "unknown priors key": (
            lambda _: mixed(priors={"sigmaa": "halfnormal(10)"}),
            "unknown priors= key(s) ['sigmaa']",
        ),
        "unknown mixed prior family": (
            lambda _: mixed(priors={"sigma": "halfnormel(10)"}),
            "unknown prior family 'halfnormel' in 'halfnormel(10)' (for sigma)",
        ),
        "negative mixed prior scale": (
            lambda _: mixed(priors={"sigma": "halfnormal(-10)"}),
            "sigma must be positive in 'halfnormal(-10)' (for sigma)",
        ),
        "prior on an unknown term": (
            lambda _: mixed(priors={"Dayz": "normal(0,1)"}),
            "unknown priors= key(s) ['Dayz']",
        ),
        "mixed priors as a list": (
            lambda _: mixed(priors=["normal(0,1)"]),
            "priors must be a dict of prior strings by key",
        ),
        "MCMCglmm prior not positive definite": (
            lambda _: mixed(prior={"R": {"V": -1, "nu": 0.002}}),
            "prior R: V must be symmetric positive definite",
        ),
        "MCMCglmm prior not a dict": (
            lambda _: mixed(prior="R"),
            "prior must be a dict such as {'V': 1, 'nu': 0.002}, not 'R'",
        ),
        "MCMCglmm prior unknown key": (
            lambda _: mixed(prior={"Q": {"V": 1, "nu": 0.002}}),
            "prior: unknown key(s) ['Q']; use B, R, G",
        ),
    },
)

# -------------------------------------------------------------------------------- sampler settings
SETTINGS = {
    "draws=0": ({"draws": 0}, ControlError, "draws must be a positive integer, not 0"),
    "draws=-5": ({"draws": -5}, ControlError, "draws must be a positive integer, not -5"),
    "draws=2.5": ({"draws": 2.5}, ControlError, "draws must be a positive integer, not 2.5"),
    "draws as text": ({"draws": "100"}, ControlError, "draws must be a positive integer, not '100'"),
    "draws=None": ({"draws": None}, ControlError, "draws must be a positive integer, not None"),
    "draws=True": ({"draws": True}, ControlError, "draws must be a positive integer, not True"),
    "chains=0": ({"chains": 0}, ControlError, "chains must be a positive integer, not 0"),
    "chains=1.5": ({"chains": 1.5}, ControlError, "chains must be a positive integer, not 1.5"),
    "tune=-1": ({"tune": -1}, ControlError, "tune must be a non-negative integer, not -1"),
    "tune=0.5": ({"tune": 0.5}, ControlError, "tune must be a non-negative integer, not 0.5"),
    "random_seed=-1": (
        {"random_seed": -1},
        ControlError,
        "random_seed must be None or a non-negative integer, not -1",
    ),
    "random_seed as text": (
        {"random_seed": "a"},
        ControlError,
        "random_seed must be None or a non-negative integer, not 'a'",
    ),
    "random_seed=1.5": ({"random_seed": 1.5}, ControlError, "not 1.5"),
    "target_accept=1.5": (
        {"target_accept": 1.5},
        ControlError,
        "target_accept must be between 0 and 1 (e.g. 0.9 or 0.95), not 1.5",
    ),
    "target_accept=0": ({"target_accept": 0}, ControlError, "target_accept must be between 0 and 1"),
    "target_accept as text": ({"target_accept": "high"}, ControlError, "target_accept='high' is not valid"),
    "misspelled setting": (
        {"target_acept": 0.9},
        ControlError,
        "no setting 'target_acept'; did you mean 'target_accept'",
    ),
    "PyMC's init": (
        {"init": "jitter"},
        ControlError,
        "nutpie has no setting 'init'; did you mean 'init_mean'",
    ),
    "numpyro's chain_method": ({"chain_method": "x"}, ControlError, "nutpie has no setting 'chain_method'"),
    "unknown sampler": (
        {"sampler": "stan"},
        SamplerError,
        "unknown sampler 'stan'; choose one of nutpie, pymc, numpyro, blackjax",
    ),
    "sampler=None": ({"sampler": None}, SamplerError, "unknown sampler None"),
    "cores=0": ({"cores": 0}, ControlError, "cores must be a positive integer, not 0"),
    "progressbar as text": (
        {"progressbar": "yes"},
        ControlError,
        "progressbar must be True or False, not 'yes'",
    ),
}


@cache
def _hs_spec() -> pymlsem.SEM:
    return pymlsem.SEM(HS, hs())


for name, (settings, error, words) in SETTINGS.items():
    CASES.append((f"SEM fit, {name}", lambda _, s=settings: _hs_spec().fit(**s), error, words))
    CASES.append(
        (f"mixed fit, {name}", lambda _, s=settings: pymlsem.mixed(SLEEP, sleep(), **s), error, words)
    )
cases(
    ControlError,
    {
        "burn-in longer than nitt": (
            lambda _: pymlsem.mixed(SLEEP, sleep(), nitt=100, burnin=200, thin=1),
            "burnin (200) must be smaller than nitt (100)",
        ),
        "thin longer than the kept iterations": (
            lambda _: pymlsem.mixed(SLEEP, sleep(), nitt=300, burnin=100, thin=500),
            "thin (500) is longer than the 200 iterations after burn-in",
        ),
        "thin=0": (lambda _: pymlsem.mixed(SLEEP, sleep(), thin=0), "thin must be at least 1, not 0"),
        "thin for the SEM door": (lambda _: _hs_spec().fit(thin=0), "nutpie has no setting 'thin'"),
    },
)

# ---------------------------------------------------------------------------------- calls on a fit
cases(
    ControlError,
    {
        "summary prob above 1": (
            lambda fits: fits.sem.summary(prob=1.5),
            "prob must be a number between 0 and 1 (e.g. 0.95 or 0.9), not 1.5",
        ),
        "summary prob 0": (lambda fits: fits.sem.summary(prob=0), "not 0"),
        "summary prob as text": (lambda fits: fits.sem.summary(prob="95%"), "not '95%'"),
        "parameter_estimates prob": (
            lambda fits: fits.sem.parameter_estimates(prob=1.5),
            "prob must be a number between 0 and 1",
        ),
        "icc prob": (lambda fits: fits.sem.icc(prob=1.5), "prob must be a number between 0 and 1"),
        "standardized_solution prob": (lambda fits: fits.sem.standardized_solution(prob=95), "not 95"),
        "srmr prob": (lambda fits: fits.sem.srmr(prob=-0.5), "not -0.5"),
        "ppp n_draws=0": (lambda fits: fits.sem.ppp(n_draws=0), "n_draws must be a positive integer, not 0"),
        "ppp n_draws=-1": (lambda fits: fits.sem.ppp(n_draws=-1), "not -1"),
        "ppp n_draws=2.5": (lambda fits: fits.sem.ppp(n_draws=2.5), "not 2.5"),
        "plot into a missing folder": (
            lambda fits: fits.sem.plot(path="/nonexistent/folder/trace.png"),
            "the folder '/nonexistent/folder' does not exist",
        ),
        "path diagram of a level the model lacks": (
            lambda fits: fits.sem.plot_path_diagram(level=3),
            "level must be one of",
        ),
        "mixed summary prob": (
            lambda fits: fits.mixed.summary(prob=1.5),
            "prob must be a number between 0 and 1",
        ),
        "fixef prob": (lambda fits: fits.mixed.fixef(prob=2), "not 2"),
        "varcorr prob": (lambda fits: fits.mixed.varcorr(prob=-1), "not -1"),
        "ranef prob": (lambda fits: fits.mixed.ranef(summary=True, prob=5), "not 5"),
        "mixed icc prob": (lambda fits: fits.mixed.icc(prob=0), "not 0"),
        "bayes_r2 prob": (lambda fits: fits.mixed.bayes_r2(prob=1), "not 1"),
    },
)
cases(
    PymlsemError,
    {
        "loo by an unknown unit": (
            lambda fits: fits.sem.loo(unit="school"),
            "unknown unit 'school'; choose 'cluster' or 'observation'",
        ),
        "loo unit as a number": (lambda fits: fits.sem.loo(unit=3), "unknown unit 3"),
        "waic by an unknown unit": (lambda fits: fits.sem.waic(unit="rows"), "unknown unit 'rows'"),
        "posterior predictive n_draws=0": (
            lambda fits: fits.sem.posterior_predictive(n_draws=0),
            "n_draws must be a positive integer (or None for all draws), not 0",
        ),
        "posterior predictive n_draws=-3": (lambda fits: fits.sem.posterior_predictive(n_draws=-3), "not -3"),
        "posterior predictive seed=-1": (
            lambda fits: fits.sem.posterior_predictive(seed=-1),
            "seed must be None or a non-negative integer, not -1",
        ),
        "unknown standardization": (
            lambda fits: fits.sem.standardized_solution(type="std.xx"),
            "unknown standardization type 'std.xx'",
        ),
        "plot of an unknown parameter": (
            lambda fits: fits.sem.plot(var_names="nope"),
            "no parameter(s) ['nope'] in the fit",
        ),
        "mixed loo by an unknown unit": (
            lambda fits: fits.mixed.loo(unit="Subjekt"),
            "unknown unit 'Subjekt'",
        ),
        "mixed posterior predictive n_draws=0": (
            lambda fits: fits.mixed.posterior_predictive(n_draws=0),
            "not 0",
        ),
        "unknown summary style": (
            lambda fits: fits.mixed.summary(style="brms2"),
            "unknown summary style 'brms2'; choose one of mcmcglmm, lme4",
        ),
        "caterpillar of an unknown factor": (
            lambda fits: fits.mixed.plot_caterpillar("Subjekt"),
            "no grouping factor 'Subjekt'; the model has ['Subject']",
        ),
        "compare one fit": (
            lambda fits: pymlsem.compare({"a": fits.sem}),
            "compare needs a dict of at least two fits",
        ),
        "compare a list": (
            lambda fits: pymlsem.compare([fits.sem, fits.sem]),
            "compare needs a dict of at least two fits",
        ),
        "compare fits of different units": (
            lambda fits: pymlsem.compare({"a": fits.sem, "b": fits.mixed}),
            "the fits have different default units",
        ),
    },
)
cases(
    DataError,
    {
        "predict without a predictor": (
            lambda fits: fits.mixed.predict(sleep().drop(columns="Days")),
            "cannot evaluate the model's formula on newdata: 'Days'",
        ),
        "predict a new level": (
            lambda fits: fits.mixed.predict(sleep(Subject=999), allow_new_levels=False),
            "newdata has levels of 'Subject' that the fitted data do not have (999)",
        ),
        "predict text": (
            lambda fits: fits.mixed.predict(sleep(Days="a")),
            "cannot evaluate the model's formula on newdata",
        ),
        "predict from a list": (
            lambda fits: fits.mixed.predict([1, 2]),
            "newdata must be a pandas DataFrame, not list",
        ),
        "log-likelihood of a table without estimates": (
            lambda _: _hs_spec().log_likelihood(pd.DataFrame({"a": [1]})),
            "estimates must be a table with columns lhs, op, rhs, est",
        ),
    },
)


@pytest.fixture(scope="module")
def fits() -> SimpleNamespace:
    """A small SEM fit and a small mixed-model fit (made before the cases run, so they may compile)."""
    small = {"draws": 100, "tune": 100, "chains": 2, "random_seed": 1, "progressbar": False}
    with pytest.warns():  # 200 draws are too few for the convergence checks: they warn
        sem_fit = pymlsem.cfa(HS, hs(), **small)
        mixed_fit = pymlsem.mixed("Reaction ~ Days + (Days | Subject)", sleep(), **small)
    return SimpleNamespace(sem=sem_fit, mixed=mixed_fit)


@pytest.fixture
def nothing_compiles(monkeypatch) -> None:
    """Compiling a PyTensor function or loading an engine family fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("compiled before answering the bad input")

    monkeypatch.setattr(pytensor.compile.maker.FunctionMaker, "__init__", refuse)
    monkeypatch.setattr(engine_run, "load_family", refuse)


def test_the_catalogue_is_large_and_its_ids_unique() -> None:
    names = [name for name, *_ in CASES]
    assert len(names) >= 150
    assert len(set(names)) == len(names)


def test_the_guard_catches_a_compilation(nothing_compiles) -> None:
    with pytest.raises(AssertionError, match="compiled before answering"):
        pytensor.function([], pytensor.tensor.constant(1.0))
    with pytest.raises(AssertionError, match="compiled before answering"):
        engine_run.load_family("sem1")


@pytest.mark.parametrize(("name", "call", "error", "words"), CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_answered_before_compiling(name, call, error, words, fits, nothing_compiles) -> None:
    with pytest.raises(error, match=re.escape(words)):
        call(fits)
