"""Tests of pymlsem.data.stats: sufficient statistics and data errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pymlsem.data.stats import single_level_stats, stats_from_summary, two_level_stats
from pymlsem.exceptions import DataError


def clustered_frame(seed: int = 0, sizes: tuple[int, ...] = (1, 2, 2, 3, 5, 5, 5, 4)) -> pd.DataFrame:
    """Small unbalanced data: a, b vary within clusters, x is within-only, z is between-only."""
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(len(sizes)) * 10 + 3, sizes)
    n = cluster.size
    z = rng.normal(size=len(sizes))[np.repeat(np.arange(len(sizes)), sizes)]
    return pd.DataFrame(
        {
            "a": rng.normal(size=n) + z,
            "b": rng.normal(size=n),
            "x": rng.normal(size=n),
            "z": z,
            "school": cluster,
        }
    )


def test_single_level_stats_mean_and_ml_cov() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(40, 3)), columns=["u", "v", "w"])
    stats = single_level_stats(frame, ["w", "u"])
    values = frame[["w", "u"]].to_numpy()
    assert stats.variables == ("w", "u")
    assert stats.nobs == 40
    np.testing.assert_allclose(stats.mean, values.mean(axis=0))
    np.testing.assert_allclose(stats.cov, np.cov(values, rowvar=False, bias=True))


def test_single_level_stats_rejects_missing_values_and_columns() -> None:
    frame = pd.DataFrame({"u": [1.0, np.nan, 2.0], "v": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match="u"):
        single_level_stats(frame, ["u", "v"])
    with pytest.raises(DataError, match="nope"):
        single_level_stats(frame, ["v", "nope"])


def test_stats_from_summary_rescales_and_reorders() -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.normal(size=(25, 3)), columns=["u", "v", "w"])
    cov = frame.cov()  # unbiased, divided by N - 1
    stats = stats_from_summary(cov, frame.mean(), 25, ["w", "u"])
    raw = single_level_stats(frame, ["w", "u"])
    assert stats.variables == ("w", "u")
    np.testing.assert_allclose(stats.cov, raw.cov)
    np.testing.assert_allclose(stats.mean, raw.mean)


def test_stats_from_summary_array_without_mean() -> None:
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    stats = stats_from_summary(cov, None, 11, ["p", "q"])
    assert stats.mean is None
    np.testing.assert_allclose(stats.cov, cov * 10 / 11)
    assert set(stats.arrays()) == {"nobs", "cov"}


@pytest.mark.parametrize(
    ("cov", "variables", "message"),
    [
        (np.array([[1.0, 0.5], [0.4, 1.0]]), ["p", "q"], "symmetric"),
        (np.array([[1.0, 2.0], [2.0, 1.0]]), ["p", "q"], "positive definite"),
        (np.eye(3), ["p", "q"], "shape"),
        (np.eye(2), None, "variables must be given"),
    ],
)
def test_stats_from_summary_errors(cov: np.ndarray, variables: list[str] | None, message: str) -> None:
    with pytest.raises(DataError, match=message):
        stats_from_summary(cov, None, 10, variables)


def test_stats_from_summary_mean_length_and_nobs() -> None:
    with pytest.raises(DataError, match="sample_mean"):
        stats_from_summary(np.eye(2), np.zeros(3), 10, ["p", "q"])
    with pytest.raises(DataError, match="sample_nobs"):
        stats_from_summary(np.eye(2), None, 1, ["p", "q"])


def test_two_level_stats_match_direct_computation() -> None:
    frame = clustered_frame()
    names = ["a", "x", "z", "b"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        stats = two_level_stats(frame, names, "school", within_only=["x"], between_only=["z"])
    values = frame[names].to_numpy()
    cluster_means = frame.groupby("school")[names].mean()
    sizes = frame.groupby("school").size()

    assert stats.nobs == len(frame) and stats.nclusters == 8
    np.testing.assert_array_equal(stats.within_index, [0, 1, 3])
    np.testing.assert_array_equal(stats.cluster_ids, cluster_means.index.to_numpy())
    np.testing.assert_allclose(stats.cluster_means, cluster_means.to_numpy())
    np.testing.assert_allclose(stats.cluster_sizes, sizes.to_numpy())

    deviations = values - cluster_means.loc[frame["school"]].to_numpy()
    within = deviations[:, [0, 1, 3]]
    np.testing.assert_allclose(stats.within_scatter, within.T @ within, atol=1e-12)
    np.testing.assert_allclose(stats.cluster_within_scatter.sum(axis=0), within.T @ within, atol=1e-12)

    np.testing.assert_array_equal(stats.group_sizes, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(stats.group_counts, [1, 2, 1, 1, 3])
    fives = cluster_means.to_numpy()[sizes.to_numpy() == 5]
    g5 = list(stats.group_sizes).index(5)
    np.testing.assert_allclose(stats.group_means[g5], fives.mean(axis=0))
    np.testing.assert_allclose(stats.group_scatter[g5], 3 * np.cov(fives, rowvar=False, bias=True))
    np.testing.assert_array_equal(stats.group_sizes[stats.cluster_group], stats.cluster_sizes)


def test_two_level_arrays_are_float64_with_group_dimension_first() -> None:
    frame = clustered_frame(sizes=(2, 3, 3, 4))
    stats = two_level_stats(frame, ["a", "b", "z"], "school", between_only=["z"])
    arrays = stats.arrays()
    assert all(a.dtype == np.float64 for a in arrays.values())
    assert arrays["within_scatter"].shape == (2, 2)
    assert arrays["group_means"].shape == (3, 3)
    assert arrays["group_scatter"].shape == (3, 3, 3)
    assert arrays["group_sizes"].shape == arrays["group_counts"].shape == (3,)


def test_missing_cluster_column() -> None:
    with pytest.raises(DataError, match="'classroom'"):
        two_level_stats(clustered_frame(sizes=(2, 3)), ["a", "b"], "classroom")


def test_varying_between_only_variable_is_named() -> None:
    frame = clustered_frame(sizes=(2, 3, 3))
    frame.loc[3, "z"] += 0.5  # row 3 belongs to the second cluster, label 13
    with pytest.raises(DataError, match=r"'z' varies within cluster 13"):
        two_level_stats(frame, ["a", "b", "z"], "school", between_only=["z"])


def test_all_clusters_of_size_one() -> None:
    frame = clustered_frame(sizes=(1, 1, 1, 1))
    with pytest.raises(DataError, match="single row"):
        two_level_stats(frame, ["a", "b"], "school")


def test_some_clusters_of_size_one_warn() -> None:
    with pytest.warns(UserWarning, match="1 cluster"):
        two_level_stats(clustered_frame(sizes=(1, 3, 2)), ["a", "b"], "school")


def test_unknown_or_conflicting_level_variables() -> None:
    frame = clustered_frame(sizes=(2, 3))
    with pytest.raises(DataError, match="nope"):
        two_level_stats(frame, ["a", "b"], "school", within_only=["nope"])
    with pytest.raises(DataError, match="both"):
        two_level_stats(frame, ["a", "b"], "school", within_only=["a"], between_only=["a"])
