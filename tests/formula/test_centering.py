"""Centering helpers: grand-mean, within-cluster and cluster-mean columns (no sampling)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pymlsem.exceptions import DataError
from pymlsem.formula.centering import center_grand, center_within, cluster_means


@pytest.fixture
def data() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.0, 3.0, 5.0, 10.0, 20.0],
            "z": [2, 2, 2, 4, 8],
            "g": ["a", "a", "a", "b", "b"],
            "label": list("pqrst"),
        }
    )


def _quiet(function, *args, **kwargs) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # complete data: no warning expected
        return function(*args, **kwargs)


def test_grand_mean_values_and_name(data: pd.DataFrame) -> None:
    out = _quiet(center_grand, data, "x")
    # mean of x is 39 / 5 = 7.8
    np.testing.assert_allclose(out["x_cgm"], [-6.8, -4.8, -2.8, 2.2, 12.2], rtol=0, atol=1e-12)
    assert list(out.columns) == ["x", "z", "g", "label", "x_cgm"]
    assert out["x_cgm"].mean() == pytest.approx(0.0, abs=1e-12)


def test_within_cluster_values_and_name(data: pd.DataFrame) -> None:
    out = _quiet(center_within, data, ["x", "z"], "g")
    # cluster a: x mean 3, z mean 2; cluster b: x mean 15, z mean 6
    np.testing.assert_allclose(out["x_cwc"], [-2.0, 0.0, 2.0, -5.0, 5.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["z_cwc"], [0.0, 0.0, 0.0, -2.0, 2.0], rtol=0, atol=1e-12)
    assert (out.groupby("g")["x_cwc"].mean().abs() < 1e-12).all()


def test_cluster_mean_values_and_name(data: pd.DataFrame) -> None:
    out = _quiet(cluster_means, data, "x", "g")
    np.testing.assert_allclose(out["x_cm"], [3.0, 3.0, 3.0, 15.0, 15.0], rtol=0, atol=1e-12)


def test_custom_suffix(data: pd.DataFrame) -> None:
    assert "x_c" in _quiet(center_grand, data, "x", suffix="_c").columns
    assert "x_w" in _quiet(center_within, data, "x", "g", suffix="_w").columns
    assert "x_b" in _quiet(cluster_means, data, "x", "g", suffix="_b").columns


def test_within_plus_cluster_mean_is_original() -> None:
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"x": rng.normal(5, 2, 200), "g": rng.integers(0, 17, 200)})
    within = _quiet(center_within, data, "x", "g")["x_cwc"]
    means = _quiet(cluster_means, data, "x", "g")["x_cm"]
    # float rounding of a subtraction and an addition only
    np.testing.assert_allclose(within + means, data["x"], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "call",
    [
        lambda d: center_grand(d, "x"),
        lambda d: center_within(d, ["x", "z"], "g"),
        lambda d: cluster_means(d, "x", "g"),
    ],
)
def test_input_is_untouched(data: pd.DataFrame, call) -> None:
    before = data.copy()
    out = call(data)
    pd.testing.assert_frame_equal(data, before)
    assert out is not data
    out.iloc[0, 0] = -99.0  # the result is a copy: changing it leaves the input alone
    pd.testing.assert_frame_equal(data, before)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda d: center_grand(d, "nope"), "unknown column"),
        (lambda d: center_grand(d, ["x", "nope"]), "nope"),
        (lambda d: center_grand(d, []), "at least one"),
        (lambda d: center_grand(d, "label"), "not numeric"),
        (lambda d: center_within(d, "x", "cluster"), "unknown cluster column 'cluster'"),
        (lambda d: cluster_means(d, "x", "cluster"), "unknown cluster column"),
        (lambda d: center_within(d, "nope", "g"), "unknown column"),
        (lambda d: center_grand(d.assign(x_cgm=0.0), "x"), "already have"),
        (lambda d: center_within(d.assign(g=np.nan), "x", "g"), "no observed labels"),
        (lambda d: center_grand(d["x"], "x"), "DataFrame"),
    ],
)
def test_errors(data: pd.DataFrame, call, words: str) -> None:
    with pytest.raises(DataError, match=words):
        call(data)


def test_missing_values_are_skipped_and_counted(data: pd.DataFrame) -> None:
    data.loc[[0, 3], "x"] = np.nan
    with pytest.warns(UserWarning, match=r"x: 2\b"):
        grand = center_grand(data, "x")
    # grand mean of 3, 5, 20 is 28 / 3
    np.testing.assert_allclose(grand["x_cgm"], [np.nan, 3 - 28 / 3, 5 - 28 / 3, np.nan, 20 - 28 / 3])
    with pytest.warns(UserWarning, match=r"x: 2\b"):
        means = cluster_means(data, "x", "g")
    np.testing.assert_allclose(means["x_cm"], [4.0, 4.0, 4.0, 20.0, 20.0])
    with pytest.warns(UserWarning, match=r"x: 2\b"):
        within = center_within(data, "x", "g")
    np.testing.assert_allclose(within["x_cwc"], [np.nan, -1.0, 1.0, np.nan, 0.0])


def test_missing_cluster_label_is_counted(data: pd.DataFrame) -> None:
    data.loc[4, "g"] = None
    with pytest.warns(UserWarning, match=r"x: 1\b"):
        within = center_within(data, "x", "g")
    np.testing.assert_allclose(within["x_cwc"], [-2.0, 0.0, 2.0, 0.0, np.nan])
    with pytest.warns(UserWarning, match="z: 1"):
        means = cluster_means(data, "z", "g")
    np.testing.assert_allclose(means["z_cm"], [2.0, 2.0, 2.0, 4.0, np.nan])


def test_numeric_group_labels() -> None:
    data = pd.DataFrame({"x": [1.0, 2.0, 4.0, 8.0], "g": [2, 1, 2, 1]})
    out = _quiet(cluster_means, data, "x", "g")
    np.testing.assert_allclose(out["x_cm"], [2.5, 5.0, 2.5, 5.0])
