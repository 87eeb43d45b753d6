"""The vectorized data preparation against straightforward per-cluster references.

The statistics of :mod:`pymlsem.data.stats` and :mod:`pymlsem.data.missing_stats`, the filled-in data of
``SEM`` (start values) and a mixed model's cross products are computed with grouped numpy operations
(rows sorted by cluster once, one step per distinct cluster size or missingness pattern). Here each is
recomputed cluster by cluster, pattern by pattern, with plain loops, on small data with unequal cluster
sizes (including repeated sizes and a single-row cluster) and missing values (including a cluster where a
variable is never observed).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pymlsem
from pymlsem.data import missing_stats
from pymlsem.data.missing_stats import (
    single_level_missing_stats,
    single_level_missing_stats_batch,
    two_level_missing_stats,
)
from pymlsem.data.stats import (
    blocks_by_size,
    cluster_nanmeans,
    fill_by_cluster_means,
    group_sums,
    two_level_stats,
)
from pymlsem.exceptions import DataError
from pymlsem.formula.design import mixed_design
from pymlsem.mlm.stats import gaussian_stats

SIZES = (1, 2, 2, 3, 5, 5, 9, 12, 4, 9)
VARIABLES = ["y1", "y2", "y3", "x", "w"]
MODEL = """
level: 1
    fw =~ y1 + y2 + y3
    fw ~ x
level: 2
    fb =~ y1 + y2 + y3
    fb ~ w
"""


def clustered(seed: int = 0, missing: float = 0.0) -> pd.DataFrame:
    """Rows in shuffled order; cluster labels not in row order; w constant within clusters.

    With ``missing`` > 0, that share of y1..y3 is blanked, and y2 is never observed in cluster 50.
    """
    rng = np.random.default_rng(seed)
    labels = np.array([70, 10, 50, 20, 90, 30, 40, 80, 60, 0])[: len(SIZES)]
    cluster = np.repeat(labels, SIZES)
    between = rng.normal(size=len(SIZES))[np.repeat(np.arange(len(SIZES)), SIZES)]
    n = cluster.size
    frame = pd.DataFrame(
        {
            "y1": rng.normal(size=n) + between,
            "y2": 3.0 + rng.normal(size=n) + between,
            "y3": -2.0 + rng.normal(size=n),
            "x": rng.normal(size=n),
            "w": rng.normal(size=len(SIZES))[np.repeat(np.arange(len(SIZES)), SIZES)],
            "cluster": cluster,
        }
    )
    if missing:
        for name in ("y1", "y2", "y3"):
            frame.loc[rng.random(n) < missing, name] = np.nan
        frame.loc[frame.cluster == 50, "y2"] = np.nan
    return frame.iloc[rng.permutation(n)].reset_index(drop=True)


def reference_filled(frame: pd.DataFrame, variables: list[str], cluster: str) -> pd.DataFrame:
    """Missing values replaced by the cluster's mean of the variable, else the overall mean: loops."""
    out = frame.copy()
    for label in out[cluster].unique():
        rows = np.flatnonzero(out[cluster].to_numpy() == label)
        for name in variables:
            column = out[name].to_numpy()[rows]
            if np.isnan(column).any() and not np.isnan(column).all():
                out.loc[rows[np.isnan(column)], name] = np.nanmean(column)
    for name in variables:
        out[name] = out[name].fillna(np.nanmean(out[name].to_numpy()))
    return out


def reference_two_level(frame: pd.DataFrame, variables: list[str], cluster: str, between_only: list[str]):
    """Cluster means, per-cluster and pooled within scatter, moments per size group: cluster by cluster."""
    labels = np.sort(frame[cluster].unique())
    within = [k for k, v in enumerate(variables) if v not in between_only]
    means, scatters, sizes = [], [], []
    for label in labels:
        block = frame.loc[frame[cluster] == label, variables].to_numpy()
        means.append(block.mean(axis=0))
        deviations = (block - block.mean(axis=0))[:, within]
        scatters.append(deviations.T @ deviations)
        sizes.append(len(block))
    means, scatters, sizes = np.array(means), np.array(scatters), np.array(sizes, dtype=float)
    groups = np.unique(sizes)
    group_means = np.array([means[sizes == n].mean(axis=0) for n in groups])
    centered = [means[sizes == n] - m for n, m in zip(groups, group_means, strict=True)]
    group_scatter = np.array([c.T @ c for c in centered])
    return {
        "cluster_ids": labels,
        "cluster_sizes": sizes,
        "cluster_means": means,
        "cluster_within_scatter": scatters,
        "within_scatter": scatters.sum(axis=0),
        "group_sizes": groups,
        "group_counts": np.array([np.sum(sizes == n) for n in groups], dtype=float),
        "group_means": group_means,
        "group_scatter": group_scatter,
    }


def assert_close(actual: np.ndarray, desired: np.ndarray) -> None:
    """rtol 1e-12; entries that are zero up to rounding are compared on the scale of the array."""
    scale = max(float(np.max(np.abs(desired))), 1.0) if np.size(desired) else 1.0
    np.testing.assert_allclose(actual, desired, rtol=1e-12, atol=1e-13 * scale)


def test_blocks_by_size_gives_every_cluster_once_with_its_rows_in_order() -> None:
    codes = np.array([2, 0, 1, 2, 0, 2, 4, 4, 0, 2])  # cluster 3 is empty
    values = np.arange(20.0).reshape(10, 2)
    seen = {}
    sizes = []
    for members, block in blocks_by_size(values, codes, 5):
        assert block.shape == (members.size, block.shape[1], 2)
        sizes.append(block.shape[1])
        for j, rows in zip(members, block, strict=True):
            seen[int(j)] = rows
    assert sizes == sorted(set(sizes))
    assert sorted(seen) == [0, 1, 2, 4]
    for j, rows in seen.items():
        np.testing.assert_array_equal(rows, values[codes == j])


def test_group_sums_and_cluster_nanmeans_match_loops() -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 7, size=200)
    values = rng.normal(size=(200, 3))
    values[rng.random(values.shape) < 0.3] = np.nan
    values[codes == 4, 1] = np.nan  # never observed in cluster 4
    finite = np.where(np.isnan(values), 0.0, values)
    sums = group_sums(codes, 8, finite)  # cluster 7 is empty
    means = cluster_nanmeans(values, codes, 8)
    assert sums.shape == means.shape == (8, 3)
    for j in range(8):
        block = values[codes == j]
        for k in range(3):
            np.testing.assert_allclose(sums[j, k], finite[codes == j, k].sum(), rtol=1e-13)
            column = block[:, k]
            if np.isnan(column).all():
                assert np.isnan(means[j, k])
            else:
                assert means[j, k] == np.nanmean(column)  # the same sum, so the same number


def test_filled_matches_per_cluster_fill_and_keeps_the_callers_frame() -> None:
    frame = clustered(missing=0.25)
    before = frame.copy()
    filled = fill_by_cluster_means(frame, VARIABLES, "cluster")
    pd.testing.assert_frame_equal(frame, before)
    pd.testing.assert_frame_equal(filled, reference_filled(frame, VARIABLES, "cluster"), rtol=1e-15)
    # the per-cluster pandas fill the vectorized one replaced gives the very same numbers
    old = frame.copy()
    old[VARIABLES] = old.groupby("cluster")[VARIABLES].transform(lambda c: c.fillna(c.mean()))
    np.testing.assert_array_equal(
        filled[VARIABLES].to_numpy(), old.fillna(old[VARIABLES].mean())[VARIABLES].to_numpy()
    )
    complete = clustered()
    pd.testing.assert_frame_equal(fill_by_cluster_means(complete, VARIABLES, "cluster"), complete)


@pytest.mark.parametrize("missing", [0.0, 0.25])
def test_two_level_stats_match_per_cluster_reference(missing: float) -> None:
    frame = reference_filled(clustered(seed=1, missing=missing), VARIABLES, "cluster")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the single-row cluster
        stats = two_level_stats(frame, VARIABLES, "cluster", between_only=["w"])
    expected = reference_two_level(frame, VARIABLES, "cluster", ["w"])
    np.testing.assert_array_equal(stats.cluster_ids, expected["cluster_ids"])
    for name, value in expected.items():
        if name != "cluster_ids":
            assert_close(getattr(stats, name), value)
    np.testing.assert_array_equal(stats.group_sizes[stats.cluster_group], stats.cluster_sizes)


def reference_patterns(observed: np.ndarray) -> tuple[list[tuple[bool, ...]], np.ndarray]:
    """Distinct masks, most observed first, ties in lexicographic order (False < True); row pattern index."""
    masks = sorted({tuple(bool(v) for v in row) for row in observed}, key=lambda m: (-sum(m), m))
    index = {m: k for k, m in enumerate(masks)}
    return masks, np.array([index[tuple(bool(v) for v in row)] for row in observed])


@pytest.mark.parametrize("nvar", [1, 3, 8, 70])
def test_patterns_match_reference_and_the_generic_path(nvar: int, monkeypatch) -> None:
    rng = np.random.default_rng(nvar)
    observed = rng.random((300, nvar)) < (0.7 if nvar < 10 else 0.99)
    masks, pattern = missing_stats._patterns(observed)
    expected_masks, expected_pattern = reference_patterns(observed)
    np.testing.assert_array_equal(masks, np.array(expected_masks, dtype=bool))
    np.testing.assert_array_equal(pattern, expected_pattern)
    monkeypatch.setattr(missing_stats, "_MAX_BITS", 0)  # np.unique over rows
    generic = missing_stats._patterns(observed)
    np.testing.assert_array_equal(generic[0], masks)
    np.testing.assert_array_equal(generic[1], pattern)


def test_single_level_missing_stats_match_per_pattern_reference() -> None:
    frame = clustered(seed=2, missing=0.3)
    stats = single_level_missing_stats(frame, VARIABLES)
    values = frame[VARIABLES].to_numpy()
    masks, pattern = reference_patterns(~np.isnan(values))
    np.testing.assert_array_equal(stats.pattern_observed, np.array(masks, dtype=float))
    for k, mask in enumerate(masks):
        rows = np.where(np.isnan(values), 0.0, values)[pattern == k]
        mean = rows.mean(axis=0)
        centered = (rows - mean) * np.array(mask)
        assert stats.pattern_counts[k] == rows.shape[0]
        assert_close(stats.pattern_means[k], mean)
        assert_close(stats.pattern_scatter[k], centered.T @ centered)


def test_missing_stats_of_many_data_sets_at_once_are_each_data_sets() -> None:
    """Replicated data sets keep the data's missing cells: their statistics at once equal each one's."""
    frame = clustered(seed=5, missing=0.3)
    rng = np.random.default_rng(5)
    values = frame[VARIABLES].to_numpy()[None] + rng.standard_normal((4, len(frame), len(VARIABLES)))
    batch = single_level_missing_stats_batch(values, VARIABLES)
    for r in range(values.shape[0]):
        one = single_level_missing_stats(pd.DataFrame(values[r], columns=VARIABLES), VARIABLES)
        np.testing.assert_array_equal(batch.pattern_observed, one.pattern_observed)
        np.testing.assert_array_equal(batch.pattern_counts, one.pattern_counts)
        assert (batch.nobs, float(batch.n_values)) == (one.nobs, float(one.n_values))
        assert_close(batch.pattern_means[r], one.pattern_means)
        assert_close(batch.pattern_scatter[r], one.pattern_scatter)
    values[1, 0, np.isfinite(values[1, 0])] = np.nan  # another data set's missing cells
    with pytest.raises(DataError, match="different cells"):
        single_level_missing_stats_batch(values, VARIABLES)


def test_two_level_missing_stats_match_per_cluster_reference() -> None:
    frame = clustered(seed=4, missing=0.3)
    frame.loc[frame.cluster == 20, ["y1", "y2", "y3", "x"]] = np.nan  # a cluster with only w observed
    stats = two_level_missing_stats(frame, VARIABLES, "cluster", between_only=["w"])
    values = frame[VARIABLES].to_numpy()
    within = np.array([v != "w" for v in VARIABLES])
    observed = ~np.isnan(values) & within
    keep = observed.any(axis=1)
    masks, pattern = reference_patterns(observed[keep])
    np.testing.assert_array_equal(stats.pattern_observed, np.array(masks, dtype=float))
    rows_cluster = frame.cluster.to_numpy()[keep]
    filled = np.where(observed, values, 0.0)[keep]
    labels = np.sort(frame.cluster.unique())
    np.testing.assert_array_equal(stats.cluster_ids, labels)  # cluster 20 kept: its w is observed
    for j, label in enumerate(labels):
        in_cluster = rows_cluster == label
        assert stats.cluster_sizes[j] == in_cluster.sum()
        first = frame.loc[frame.cluster == label, "w"].dropna()
        seen = observed[keep][in_cluster].any(axis=0)
        seen[VARIABLES.index("w")] = not first.empty
        np.testing.assert_array_equal(stats.cluster_observed[j], seen.astype(float))
        assert stats.cluster_values[j, VARIABLES.index("w")] == (first.iloc[0] if not first.empty else 0.0)
        for k in range(len(masks)):
            cell = in_cluster & (pattern == k)
            assert stats.cluster_pattern_counts[j, k] == cell.sum()
            assert_close(stats.cluster_pattern_sums[j, k], filled[cell].sum(axis=0))
    for k, mask in enumerate(masks):
        rows = filled[pattern == k]
        centered = (rows - rows.mean(axis=0)) * np.array(mask)
        assert stats.pattern_counts[k] == rows.shape[0]
        assert_close(stats.pattern_means[k], rows.mean(axis=0))
        assert_close(stats.pattern_scatter[k], centered.T @ centered)
    assert stats.n_values == observed.sum() + frame.groupby("cluster").w.first().notna().sum()


def test_sem_statistics_match_the_per_cluster_reference() -> None:
    data = clustered(seed=5, missing=0.2)
    before = data.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = pymlsem.SEM(MODEL, data, cluster="cluster")
    pd.testing.assert_frame_equal(data, before)
    assert spec.missing and spec.likelihood_stats is not None
    variables = list(spec.observed)
    filled = reference_filled(data[[*variables, "cluster"]], variables, "cluster")
    expected = reference_two_level(filled, variables, "cluster", list(spec.partable.between_only))
    for name, value in expected.items():
        if name != "cluster_ids":
            assert_close(getattr(spec.stats, name), value)


def test_mixed_model_cross_products_match_per_cluster_reference() -> None:
    rng = np.random.default_rng(6)
    school = np.repeat(np.array([5, 1, 4, 2, 3]), [3, 7, 2, 7, 11])
    data = pd.DataFrame({"school": school, "x": rng.normal(size=school.size)})
    data["y"] = 1.0 + 0.5 * data.x + rng.normal(size=school.size)
    data = data.iloc[rng.permutation(len(data))].reset_index(drop=True)
    design = mixed_design("y ~ x + (1 + x | school)", data)
    stats = gaussian_stats(design)
    assert stats.layout == "clustered"
    codes = design.blocks[0].codes
    for j, label in enumerate(design.blocks[0].levels):
        rows = data.school.astype(str).to_numpy() == label
        np.testing.assert_array_equal(rows, codes == j)
        z = np.column_stack([np.ones(rows.sum()), data.x[rows]])
        x = np.column_stack([np.ones(rows.sum()), data.x[rows]])
        y = data.y.to_numpy()[rows]
        assert_close(stats.zz[j], z.T @ z)
        assert_close(stats.zy[j], z.T @ y)
        assert_close(stats.zx[j], z.T @ x)


def test_two_level_missing_stats_of_many_data_sets_at_once_are_each_data_sets() -> None:
    """Two-level data sets with the data's clusters and missing cells (a between-only variable missing in
    some clusters): their statistics at once equal each one's; data sets whose missing cells differ, or
    whose between-only variable varies within a cluster, are refused."""
    frame = clustered(seed=6, missing=0.3)
    frame.loc[frame.cluster == 20, ["y1", "y2", "y3", "x"]] = np.nan  # a cluster with only w observed
    frame.loc[frame.cluster.isin([30, 70]), "w"] = np.nan  # clusters without their between-only value
    rng = np.random.default_rng(6)
    values = frame[VARIABLES].to_numpy()[None] + rng.standard_normal((3, len(frame), len(VARIABLES)))
    w = VARIABLES.index("w")
    codes = frame.cluster.to_numpy()
    values[:, :, w] = frame["w"].to_numpy() + rng.standard_normal((3, codes.max() + 1))[:, codes]
    batch = missing_stats.two_level_missing_stats_batch(values, VARIABLES, frame.cluster, between_only=["w"])
    for r in range(values.shape[0]):
        one = two_level_missing_stats(
            frame.assign(**{v: values[r, :, k] for k, v in enumerate(VARIABLES)}),
            VARIABLES,
            "cluster",
            between_only=["w"],
        )
        taken = missing_stats.one_data_set(batch, r)
        for name, expected in vars(one).items():
            if isinstance(expected, np.ndarray):
                assert_close(getattr(taken, name), expected)
            else:
                assert getattr(taken, name) == expected, name
    values[2, 0, np.isfinite(values[2, 0])] = np.nan
    with pytest.raises(DataError, match="different cells"):
        missing_stats.two_level_missing_stats_batch(values, VARIABLES, frame.cluster, between_only=["w"])
    values[2, 0] = values[1, 0]
    first = np.flatnonzero((codes == codes[0]) & np.isfinite(values[0, :, w]))
    values[2, first[-1], w] += 1.0
    with pytest.raises(DataError, match="'w' varies within cluster"):
        missing_stats.two_level_missing_stats_batch(values, VARIABLES, frame.cluster, between_only=["w"])
