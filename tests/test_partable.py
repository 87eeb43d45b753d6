"""Parameter tables against lavaan 0.6-14's parTable() (tests/data/reference/lavaan)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from reference import BOOK_MODELS, HS, LAVAAN, M2, ONE_FACTOR, POLDEM, SEED

from pymlsem.exceptions import DataError, ModelSpecificationError
from pymlsem.partable import build_partable
from pymlsem.syntax import parse_model

REF = LAVAAN
M104 = BOOK_MODELS["10.4"][0]
M106 = BOOK_MODELS["10.6"][0]


def _reference(name: str) -> pd.DataFrame:
    ref = pd.read_csv(REF / name, keep_default_na=False, na_values=["NA"])
    ref = ref[~ref["op"].isin(["==", ":=", "<", ">"])].copy()
    if "level" not in ref:
        ref["level"] = 1
    ref["level"] = ref["level"].map(lambda v: {"within": 1, "between": 2}.get(str(v), v)).astype(int)
    return ref.reset_index(drop=True)


def _fix_level1_growth_means(ref: pd.DataFrame) -> pd.DataFrame:
    """Our one deliberate difference from lavaan: in a two-level growth model lavaan leaves the level-1
    latent means (iw, sw) free beside the level-2 ones, though only their sums are identified; pymlsem
    fixes the level-1 ones at 0 (see partable._fix_within_means_of_shared_factors)."""
    ref = ref.copy()
    rows = (ref.op == "~1") & (ref.level == 1) & ref.lhs.isin(["iw", "sw"])
    ref.loc[rows, ["free", "ustart"]] = [0, 0.0]
    free = ref.free > 0
    ref.loc[free, "free"] = range(1, int(free.sum()) + 1)
    return ref


def test_two_level_growth_means_live_at_level_2() -> None:
    table = build_partable(parse_model(M106), model_type="growth").table
    means = table[table.op == "~1"].set_index(["lhs", "level"])
    assert means.loc[("iw", 1), "free"] == 0 and means.loc[("iw", 1), "value"] == 0.0
    assert means.loc[("ib", 2), "free"] > 0 and means.loc[("sb", 2), "free"] > 0


def _rows(frame: pd.DataFrame, value_col: str) -> list[tuple]:
    out = []
    for r in frame.itertuples(index=False):
        value = getattr(r, value_col)
        fixed = None if (r.free > 0 or r.exo == 1 or math.isnan(value)) else float(value)
        out.append((r.lhs, r.op, r.rhs, int(r.level), int(r.user), int(r.free), fixed, str(r.label),
                    int(r.exo)))  # fmt: skip
    return out


@pytest.mark.parametrize(
    ("model", "kwargs", "reference"),
    [
        (SEED, {}, "demo_twolevel_partable.csv"),
        (M2, {}, "demo_twolevel_m2_partable.csv"),
        (HS, {"model_type": "cfa", "meanstructure": True}, "hs_cfa_partable.csv"),
        (POLDEM, {}, "poldem_sem_partable.csv"),
        (M104, {}, "book_m104_partable_structure.csv"),
        (M106, {"model_type": "growth"}, "book_m106_growth_partable_structure.csv"),
        (SEED, {"std_lv": True}, "std_lv_seed_partable.csv"),
        (
            ONE_FACTOR,
            {"model_type": "cfa", "meanstructure": True, "std_lv": True},
            "std_lv_hs_one_factor_partable.csv",
        ),
        (POLDEM, {"std_lv": True}, "std_lv_poldem_partable.csv"),
    ],
)
def test_partable_matches_lavaan_row_by_row(model: str, kwargs: dict, reference: str) -> None:
    pt = build_partable(parse_model(model), **kwargs)
    ref = _reference(reference)
    if reference == "book_m106_growth_partable_structure.csv":
        ref = _fix_level1_growth_means(ref)
    assert _rows(pt.table, "value") == _rows(ref, "ustart")


def test_std_lv_fixes_variances_written_without_a_modifier_and_keeps_modifiers() -> None:
    """As lavaan's std.lv: ``f ~~ f`` written alone is fixed at 1 too; ``f ~~ NA*f`` and ``1*x1`` win."""
    table = build_partable(parse_model("f =~ x1 + x2 + x3\nf ~~ f"), std_lv=True).table.set_index(
        ["lhs", "op", "rhs"]
    )
    assert table.loc[("f", "~~", "f"), "free"] == 0 and table.loc[("f", "~~", "f"), "value"] == 1.0
    assert (table.loc[("f", "=~"), "free"] > 0).all()
    marker = build_partable(parse_model("f =~ 1*x1 + x2 + x3\nf ~~ NA*f"), std_lv=True).table
    marker = marker.set_index(["lhs", "op", "rhs"])
    assert marker.loc[("f", "=~", "x1"), "free"] == 0 and marker.loc[("f", "~~", "f"), "free"] > 0


def test_std_lv_leaves_a_random_slopes_variance_free() -> None:
    """A random slope's level-2 phantom factor (``s =~ 0*s``) is not a factor with indicators: std_lv
    leaves its variance free (the marker default does not touch it either)."""
    model = 'level: 1\ny ~ rv("s")*x\nlevel: 2\ny ~ w\ns ~ w'
    table = build_partable(parse_model(model), std_lv=True).table.set_index(["lhs", "op", "rhs", "level"])
    assert table.loc[("s", "~~", "s", 2), "free"] > 0


def test_two_level_variable_sets() -> None:
    pt = build_partable(parse_model(SEED))
    assert pt.n_levels == 2
    assert pt.observed == {1: ["y1", "y2", "y3", "x1", "x2", "x3"], 2: ["y1", "y2", "y3", "w1", "w2"]}
    assert pt.latent == {1: ["fw"], 2: ["fb"]}
    assert pt.within_only == ["x1", "x2", "x3"]
    assert pt.between_only == ["w1", "w2"]
    assert pt.exogenous == {1: ["x1", "x2", "x3"], 2: ["w1", "w2"]}
    assert pt.meanstructure


def test_single_level_sets_and_default_meanstructure() -> None:
    pt = build_partable(parse_model(HS))
    assert pt.n_levels == 1 and not pt.meanstructure
    assert not (pt.table["op"] == "~1").any()
    assert pt.within_only == [] and pt.between_only == []
    assert pt.latent == {1: ["visual", "textual", "speed"]}
    with_int = build_partable(parse_model(HS + "; x1 ~ 1"))
    assert with_int.meanstructure and (with_int.table["op"] == "~1").sum() == 12


def test_labels_shared_across_levels_are_equality_groups() -> None:
    pt = build_partable(parse_model(M104))
    groups = pt.equality_groups()
    assert set(groups) == set("abcdeghij")
    assert groups["a"] == [1, 28]


def test_user_statement_overrides_default_and_nesting_free() -> None:
    pt = build_partable(parse_model("f =~ NA*y1 + y2 + y3\nf ~~ 1*f\ny1 ~~ v*y1"))
    t = pt.table.set_index(["lhs", "op", "rhs"])
    assert t.loc[("f", "=~", "y1"), "free"] > 0
    assert t.loc[("f", "~~", "f"), "free"] == 0 and t.loc[("f", "~~", "f"), "value"] == 1.0
    assert t.loc[("y1", "~~", "y1"), "label"] == "v" and t.loc[("y1", "~~", "y1"), "user"] == 1
    assert len(t) == 7  # 3 loadings, f~~f, y1~~y1 (user), y2, y3 residual variances
    assert list(pt.table["free"][pt.table["free"] > 0]) == list(range(1, pt.n_free + 1))


def test_reversed_covariance_replaces_default() -> None:
    pt = build_partable(parse_model("f1 =~ a1 + a2\nf2 =~ b1 + b2\nf2 ~~ 0*f1"))
    cov = pt.table[(pt.table["op"] == "~~") & (pt.table["lhs"] != pt.table["rhs"])]
    assert len(cov) == 1 and cov.iloc[0]["value"] == 0.0 and cov.iloc[0]["user"] == 1


def test_auto_cov_y_only_for_pure_dependent_variables() -> None:
    pt = build_partable(parse_model("y1 ~ x\ny2 ~ x\nm ~ x\ny3 ~ m"))
    cov = pt.table[(pt.table["op"] == "~~") & (pt.table["lhs"] != pt.table["rhs"])
                   & (pt.table["exo"] == 0)]  # fmt: skip
    pairs = {frozenset((a, b)) for a, b in zip(cov["lhs"], cov["rhs"], strict=True)}
    assert pairs == {frozenset(p) for p in [("y1", "y2"), ("y1", "y3"), ("y2", "y3")]}


def test_user_variance_makes_covariate_endogenous() -> None:
    pt = build_partable(parse_model("y ~ x\nx ~~ x"))
    assert pt.exogenous == {1: []}
    assert not pt.table["exo"].any()


def test_start_and_prior_columns() -> None:
    pt = build_partable(parse_model('f =~ y1 + start(0.7)*y2 + prior("normal(0,1)")*y3'))
    t = pt.table.set_index(["lhs", "op", "rhs"])
    assert t.loc[("f", "=~", "y2"), "start"] == 0.7
    assert t.loc[("f", "=~", "y3"), "prior"] == "normal(0,1)"


def test_defined_and_constraints_kept() -> None:
    pt = build_partable(parse_model("m ~ a*x\ny ~ b*m + c*x\nab := a*b\ntotal := c + ab\na == b\nc > 0"))
    assert [(s.lhs, s.rhs) for s in pt.defined] == [("ab", "a*b"), ("total", "c+ab")]
    assert [s.op for s in pt.constraints] == ["==", ">"]


@pytest.mark.parametrize(
    ("model", "match"),
    [
        ("m ~ a*x\nab := a*q", "'q'"),
        ("m ~ x\nab := a", "no labels"),
        ("m ~ a*x\nb == a", "'b'"),
        ("m ~ a*x\na := 2*a", "name of a parameter label"),
        ("f =~ NA*y1 + y2 + y3", "'f'.*no scale"),
        ("level: 1\nf =~ y1 + y2\nlevel: 2\nf ~ w", "no indicators at level 2"),
    ],
)
def test_specification_errors(model: str, match: str) -> None:
    with pytest.raises(ModelSpecificationError, match=match):
        build_partable(parse_model(model))


def test_level_without_statements_is_an_error() -> None:
    with pytest.raises(ModelSpecificationError, match="level: 2"):
        build_partable(parse_model("level: 1\nf =~ y1 + y2 + y3\nlevel: 2"))


def test_unknown_data_column_lists_close_names() -> None:
    with pytest.raises(DataError, match=r"'y4' \(closest: y3, y2, y1\)") as err:
        build_partable(parse_model("f =~ y1 + y2 + y4"), data_columns=["y1", "y2", "y3", "x1"])
    assert "'y1'" not in str(err.value)


def test_latent_name_that_is_a_data_column_is_ambiguous() -> None:
    with pytest.raises(ModelSpecificationError, match="also a column"):
        build_partable(parse_model("y3 =~ y1 + y2"), data_columns=["y1", "y2", "y3"])


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="model_type"):
        build_partable(parse_model(HS), model_type="lisrel")
    with pytest.raises(ModelSpecificationError, match="mean structure"):
        build_partable(parse_model(SEED), meanstructure=False)


def test_duplicate_statement_warns_and_is_dropped() -> None:
    with pytest.warns(UserWarning, match="duplicated"):
        pt = build_partable(parse_model("f =~ y1 + y2 + y3\nf =~ y2"))
    assert (pt.table["op"] == "=~").sum() == 3


def test_random_slope_gets_level2_phantom_factor() -> None:
    pt = build_partable(parse_model('level: 1\n y ~ rv("s")*x\nlevel: 2\n y ~ w\n s ~ w'))
    t = pt.table.set_index(["lhs", "op", "rhs", "level"])
    assert t.loc[("y", "~", "x", 1), "rv"] == "s" and t.loc[("y", "~", "x", 1), "free"] == 0
    assert t.loc[("s", "=~", "s", 2), "value"] == 0.0 and t.loc[("s", "=~", "s", 2), "rv"] == "s"
    assert t.loc[("s", "~1", "", 2), "free"] > 0  # the fixed effect of the slope
    assert t.loc[("s", "~~", "s", 2), "free"] > 0
    assert pt.latent == {1: [], 2: ["s"]} and pt.between_only == ["w"]


def test_random_slope_needs_two_levels() -> None:
    with pytest.raises(ModelSpecificationError, match="two-level"):
        build_partable(parse_model('y ~ rv("s")*x'))
