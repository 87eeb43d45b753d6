"""lme4 formulas: splitting, design matrices with lme4 names, and errors (no PyMC)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from reference import REFERENCE

from pymlsem.exceptions import DataError, ModelSpecificationError, ModelSyntaxError
from pymlsem.formula import mixed_design, split_formula

DATA = REFERENCE / "data"


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return pd.read_csv(DATA / "sleepstudy.csv")


@pytest.fixture(scope="module")
def cbpp() -> pd.DataFrame:
    data = pd.read_csv(DATA / "cbpp.csv")
    data["period"] = data["period"].astype(str)
    return data


@pytest.fixture
def nested() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 120
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "w": rng.normal(size=n),
            "school": rng.choice(["s1", "s2", "s3"], size=n),
            "klass": rng.choice(["a", "b"], size=n),
            "item": rng.choice(["i1", "i2", "i3", "i4"], size=n),
        }
    )


# --- splitting -------------------------------------------------------------------------------------------


def test_split_fixed_and_bars() -> None:
    split = split_formula("y ~ x + w + x:w + (1 + x | school) + (1 | item)")
    assert split.response == "y"
    assert split.fixed == "x + w + x:w"
    assert [(b.expr, b.group, b.correlated) for b in split.bars] == [
        ("1 + x", "school", True),
        ("1", "item", True),
    ]


def test_split_takes_the_offsets_out_once() -> None:
    """One parse: ``offset(expr)`` terms leave the fixed part (lme4's coefficient 1, not a fixed effect)."""
    split = split_formula("count ~ x + offset(log(exposure)) + (1 | g) + offset(z)")
    assert split.offsets == ("log(exposure)", "z")
    assert split.fixed == "x" and [bar.group for bar in split.bars] == ["g"]
    assert split_formula("count ~ offset(z) + (1 | g)").fixed == "1"


def test_split_double_bar_is_uncorrelated() -> None:
    (bar,) = split_formula("y ~ x + (1 + x || g)").bars
    assert (bar.expr, bar.group, bar.correlated) == ("1 + x", "g", False)


@pytest.mark.parametrize(
    ("group", "expected"),
    [("school/class", ["school", "school:class"]), ("a/b/c", ["a", "a:b", "a:b:c"]), ("a:b", ["a:b"])],
)
def test_split_nesting_expands(group: str, expected: list[str]) -> None:
    bars = split_formula(f"y ~ x + (1 | {group})").bars
    assert [b.group for b in bars] == expected
    assert all(b.expr == "1" for b in bars)


@pytest.mark.parametrize(
    ("formula", "fixed"),
    [
        ("y ~ (1 | g)", "1"),
        ("y ~ 0 + x + (1 | g)", "0 + x"),
        ("y ~ -1 + x + (1 | g)", "1 - 1 + x"),
        ("y ~ x - 1 + (1 | g)", "x - 1"),
        ("y ~ I(x - 1) + (x | g)", "I(x - 1)"),
    ],
)
def test_split_fixed_part(formula: str, fixed: str) -> None:
    assert split_formula(formula).fixed == fixed


@pytest.mark.parametrize(
    ("formula", "column", "words"),
    [
        ("y x + (1 | g)", 1, "'~'"),
        (" ~ x", 2, "response"),
        ("y ~ ", 3, "right-hand side"),
        ("y ~ x + ( | g)", 11, "empty random-effect term"),
        ("y ~ x + (1 | )", 12, "grouping factor"),
        ("y ~ x + (1 | g", 9, "unmatched"),
        ("y ~ x + + w", 7, "empty term"),
        ("y ~ x - (1 | g)", 9, "subtracted"),
        ("y ~ x - offset(e) + (1 | g)", 9, "an offset cannot be subtracted"),
    ],
)
def test_split_errors_point_at_the_problem(formula: str, column: int, words: str) -> None:
    with pytest.raises(ModelSyntaxError, match=words) as info:
        split_formula(formula)
    assert info.value.column == column
    assert info.value.source == formula


# --- design matrices ----------------------------------------------------------------------------------------


def test_sleepstudy_design(sleep: pd.DataFrame) -> None:
    design = mixed_design("Reaction ~ Days + (Days | Subject)", sleep)
    assert design.fixed_names == ("(Intercept)", "Days")
    np.testing.assert_array_equal(design.y, sleep["Reaction"].to_numpy())
    np.testing.assert_array_equal(design.x, np.column_stack([np.ones(len(sleep)), sleep["Days"]]))
    (block,) = design.blocks
    assert block.group == "Subject" and block.correlated
    assert block.names == ("(Intercept)", "Days")
    np.testing.assert_array_equal(block.z, design.x)
    assert block.n_levels == sleep["Subject"].nunique() == 18
    levels = np.asarray(block.levels)[block.codes]
    np.testing.assert_array_equal(levels, sleep["Subject"].astype(str).to_numpy())


def test_treatment_contrasts_use_lme4_names(cbpp: pd.DataFrame) -> None:
    design = mixed_design("incidence ~ period + (1 | herd)", cbpp)
    assert design.fixed_names == ("(Intercept)", "period2", "period3", "period4")
    for k, level in enumerate(["2", "3", "4"], start=1):
        np.testing.assert_array_equal(design.x[:, k], (cbpp["period"] == level).to_numpy(dtype=float))


def test_no_intercept_gives_full_dummy_coding(cbpp: pd.DataFrame) -> None:
    design = mixed_design("incidence ~ 0 + period + (0 + period | herd)", cbpp)
    names = ("period1", "period2", "period3", "period4")
    assert design.fixed_names == names
    assert design.blocks[0].names == names
    np.testing.assert_array_equal(design.x.sum(axis=1), np.ones(len(cbpp)))


@pytest.mark.parametrize("formula", ["y ~ x*w + (1 | school)", "y ~ x + w + x:w + (1 | school)"])
def test_interactions(nested: pd.DataFrame, formula: str) -> None:
    design = mixed_design(formula, nested)
    assert design.fixed_names == ("(Intercept)", "x", "w", "x:w")
    np.testing.assert_allclose(design.x[:, 3], nested["x"] * nested["w"])


def test_scale_is_r_scale(sleep: pd.DataFrame) -> None:
    design = mixed_design("Reaction ~ scale(Days) + (1 | Subject)", sleep)
    days = sleep["Days"]
    assert design.fixed_names == ("(Intercept)", "scale(Days)")
    np.testing.assert_allclose(design.x[:, 1], (days - days.mean()) / days.std(ddof=1))


def test_random_slope_without_intercept_and_implicit_intercept(nested: pd.DataFrame) -> None:
    design = mixed_design("y ~ x + (0 + x | school) + (x | item)", nested)
    assert design.blocks[0].names == ("x",)
    assert design.blocks[1].names == ("(Intercept)", "x")


def test_crossed_factors(nested: pd.DataFrame) -> None:
    design = mixed_design("y ~ x + (1 | school) + (1 | item)", nested)
    assert [b.group for b in design.blocks] == ["school", "item"]
    assert [b.n_levels for b in design.blocks] == [3, 4]


def test_nested_factor_levels(nested: pd.DataFrame) -> None:
    design = mixed_design("y ~ x + (1 | school/klass)", nested)
    outer, inner = design.blocks
    assert (outer.group, inner.group) == ("school", "school:klass")
    assert inner.levels == ("s1:a", "s1:b", "s2:a", "s2:b", "s3:a", "s3:b")
    expected = (nested["school"] + ":" + nested["klass"]).to_numpy()
    np.testing.assert_array_equal(np.asarray(inner.levels)[inner.codes], expected)


def test_uncorrelated_block(sleep: pd.DataFrame) -> None:
    (block,) = mixed_design("Reaction ~ Days + (Days || Subject)", sleep).blocks
    assert not block.correlated
    assert block.names == ("(Intercept)", "Days")


# --- data errors ------------------------------------------------------------------------------------------


def test_unknown_column_suggests_a_close_match(sleep: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"'Dayz'.*did you mean 'Days'"):
        mixed_design("Reaction ~ Dayz + (1 | Subject)", sleep)
    with pytest.raises(DataError, match=r"'Dayz'.*did you mean 'Days'"):
        mixed_design("Reaction ~ Days + (Dayz | Subject)", sleep)


def test_unknown_grouping_column(sleep: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"grouping factor 'Subjct'.*did you mean 'Subject'"):
        mixed_design("Reaction ~ Days + (1 | Subjct)", sleep)


def test_response_must_be_numeric(cbpp: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"response 'period' is not numeric"):
        mixed_design("period ~ size + (1 | herd)", cbpp)


def test_missing_values_dropped_with_a_warning(sleep: pd.DataFrame) -> None:
    data = sleep.copy()
    data.loc[[3, 10], "Days"] = np.nan
    data.loc[20, "Reaction"] = np.nan
    data["unused"] = np.nan
    before = data.copy()
    with pytest.warns(UserWarning, match=r"\b3 of 180 rows"):
        design = mixed_design("Reaction ~ Days + (Days | Subject)", data)
    assert design.nobs == 177
    assert not design.rows.isin([3, 10, 20]).any()
    assert design.blocks[0].z.shape == (177, 2)
    pd.testing.assert_frame_equal(data, before)


def test_caller_data_not_modified(nested: pd.DataFrame) -> None:
    before = nested.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mixed_design("y ~ scale(x) * w + (1 + x | school/klass)", nested)
    pd.testing.assert_frame_equal(nested, before)


def test_slope_constant_within_groups_is_refused(nested: pd.DataFrame) -> None:
    data = nested.assign(sx=nested["school"].map({"s1": 1.0, "s2": 2.0, "s3": 5.0}))
    with pytest.raises(ModelSpecificationError, match=r"'sx'.*constant within every level of 'school'"):
        mixed_design("y ~ sx + (1 + sx | school)", data)
    mixed_design("y ~ sx + (1 + sx | item)", data)  # varies within items: fine


def test_grouping_factor_with_one_level(nested: pd.DataFrame) -> None:
    with pytest.raises(ModelSpecificationError, match="fewer than 2 levels"):
        mixed_design("y ~ x + (1 | one)", nested.assign(one="a"))


def test_data_must_be_a_dataframe() -> None:
    with pytest.raises(DataError, match="data must be a data frame"):
        mixed_design("y ~ x + (1 | g)", {"y": [1.0], "x": [1.0], "g": ["a"]})
