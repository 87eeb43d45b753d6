"""Bad input gets our own clear error before anything is compiled; the caller's data are untouched."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa  # nutpie's dependency: always installed
import pytest
from reference import HS, SEED, data

import pymlsem
from pymlsem.exceptions import (
    DataError,
    ModelSpecificationError,
    ModelSyntaxError,
    PriorError,
    SamplerError,
)


def test_errors_are_value_errors_of_our_own() -> None:
    for cls in (DataError, ModelSpecificationError, ModelSyntaxError, PriorError, SamplerError):
        assert issubclass(cls, pymlsem.PymlsemError)
        assert issubclass(cls, ValueError)


def test_unknown_variable_is_named_with_a_suggestion(demo) -> None:
    with pytest.raises(DataError, match=r"'y7'|y7"):
        pymlsem.SEM(SEED.replace("y3", "y7"), demo, cluster="cluster")


def test_missing_cluster_column(demo) -> None:
    with pytest.raises(DataError, match="school"):
        pymlsem.SEM(SEED, demo, cluster="school")


def test_two_level_model_needs_a_cluster(demo) -> None:
    with pytest.raises(DataError, match="cluster="):
        pymlsem.SEM(SEED, demo)


def test_cluster_without_levels_is_an_error() -> None:
    with pytest.raises(DataError, match="level"):
        pymlsem.SEM(HS, data("HolzingerSwineford1939"), cluster="school")


def test_non_numeric_column(demo) -> None:
    frame = demo.assign(y1=demo.y1.astype(str))
    with pytest.raises(DataError, match="'y1' is not numeric"):
        pymlsem.SEM(SEED, frame, cluster="cluster")


def test_between_only_variable_that_varies_within_a_cluster(demo) -> None:
    frame = demo.copy()
    frame.loc[0, "w1"] = 5.0
    with pytest.raises(DataError, match="w1"):
        pymlsem.SEM(SEED, frame, cluster="cluster")


def test_latent_variable_without_a_scale(demo) -> None:
    model = SEED.replace("fw =~ y1 + y2 + y3", "fw =~ NA*y1 + y2 + y3")
    with pytest.raises(ModelSpecificationError, match="fw"):
        pymlsem.SEM(model, demo, cluster="cluster")


def test_syntax_error_points_at_line_and_column(demo) -> None:
    with pytest.raises(ModelSyntaxError) as info:
        pymlsem.SEM("level: 1\n  fw =~ y1 + y2\n  fw = x1\nlevel: 2\n fb =~ y1 + y2", demo, cluster="cluster")
    assert info.value.line == 3
    assert "^" in str(info.value)


def test_unknown_prior_family_and_class_key(demo) -> None:
    with pytest.raises(PriorError, match="normall"):
        pymlsem.SEM(SEED, demo, cluster="cluster", priors={"lambda": "normall(0,1)"})
    with pytest.raises(PriorError, match="lambdaa"):
        pymlsem.SEM(SEED, demo, cluster="cluster", priors={"lambdaa": "normal(0,1)"})


def test_unknown_sampler(demo) -> None:
    spec = pymlsem.SEM(SEED, demo, cluster="cluster")
    with pytest.raises(SamplerError, match="nutpi"):
        spec.fit(sampler="nutpi")


def test_missing_outcomes_stay_in_the_likelihood_and_data_untouched(demo) -> None:
    frame = demo.copy()
    frame.loc[[3, 10, 11], "y2"] = np.nan
    before = frame.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing dropped, nothing to warn about
        spec = pymlsem.SEM(SEED, frame, cluster="cluster")
    assert spec.nobs == 2500 and spec.missing and spec.likelihood_stats is not None
    pd.testing.assert_frame_equal(frame, before)


def test_rows_with_a_missing_covariate_are_dropped_with_a_counting_warning(demo) -> None:
    frame = demo.copy()
    frame.loc[[3, 10, 11], "x1"] = np.nan
    with pytest.warns(UserWarning, match="dropped 3 of 2500 rows"):
        spec = pymlsem.SEM(SEED, frame, cluster="cluster")
    assert spec.nobs == 2497 and not spec.missing


def test_caller_data_frame_is_not_modified(demo) -> None:
    before = demo.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pymlsem.SEM(SEED, demo, cluster="cluster")
    pd.testing.assert_frame_equal(demo, before)


def test_data_or_summary_statistics_but_not_both(demo) -> None:
    with pytest.raises(DataError, match="either"):
        pymlsem.SEM(HS, demo, sample_cov=np.eye(9), sample_nobs=10, variables=[f"x{i}" for i in range(1, 10)])
    with pytest.raises(DataError, match="give the data"):
        pymlsem.SEM(HS)


def test_other_data_frames_are_read_through_narwhals() -> None:
    frame = data("HolzingerSwineford1939")
    from_arrow = pymlsem.SEM(HS, pa.Table.from_pandas(frame))
    assert from_arrow.nobs == len(frame)
    np.testing.assert_allclose(from_arrow.stats.cov, pymlsem.SEM(HS, frame).stats.cov)
    sleep = data("sleepstudy")
    mixed = pymlsem.mixed_model("Reaction ~ Days + (1 | Subject)", pa.Table.from_pandas(sleep))
    np.testing.assert_array_equal(mixed.design.y, sleep["Reaction"].to_numpy())
