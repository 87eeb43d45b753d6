"""The shipped example data sets are the R packages' (the reference copies written by
tests/data/reference/data/public_datasets.R), with the R factors as strings."""

from __future__ import annotations

import pandas as pd
import pytest
from reference import data

from pymlsem.datasets import DATASETS, load_dataset
from pymlsem.exceptions import DataError


@pytest.mark.parametrize("name", DATASETS)
def test_each_data_set_is_the_reference_copy(name: str) -> None:
    shipped = load_dataset(name)
    reference = data(name)
    assert list(shipped.columns) == list(reference.columns) and len(shipped) == len(reference)
    for column in shipped.columns:
        if pd.api.types.is_numeric_dtype(shipped[column]):
            pd.testing.assert_series_equal(shipped[column], reference[column])
        else:  # an R factor: its levels as strings, also where R wrote numbers ("308", "95")
            assert (shipped[column] == reference[column].astype(str)).all()


def test_r_factors_are_categories_of_a_formula() -> None:
    cbpp, grouse, sleep = load_dataset("cbpp"), load_dataset("grouseticks"), load_dataset("sleepstudy")
    assert sorted(cbpp["period"].unique()) == ["1", "2", "3", "4"]
    assert sorted(grouse["YEAR"].unique()) == ["95", "96", "97"]
    assert sleep["Subject"].nunique() == 18 and sleep["Reaction"].dtype == float
    cbpp.loc[0, "period"] = "changed"
    assert load_dataset("cbpp").loc[0, "period"] == "1"  # a new frame each call


def test_an_unknown_name_lists_the_data_sets() -> None:
    with pytest.raises(DataError, match="sleepstudy, cbpp, grouseticks"):
        load_dataset("sleep")
