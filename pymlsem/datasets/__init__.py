"""Example data shipped with pymlsem (public data sets from the lavaan R package).

``Demo.twolevel`` (2,500 rows in 200 clusters), ``HolzingerSwineford1939`` (301 rows) and
``PoliticalDemocracy`` (75 rows), exported from lavaan 0.6-14.
"""

from __future__ import annotations

from importlib.resources import files

import pandas as pd

from pymlsem.exceptions import DataError

DATASETS = ("Demo.twolevel", "HolzingerSwineford1939", "PoliticalDemocracy")


def load_dataset(name: str) -> pd.DataFrame:
    """Load one of the example data sets by its lavaan name (see :data:`DATASETS`)."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; available: {', '.join(DATASETS)}")
    with files(__package__).joinpath(f"{name}.csv").open("r") as handle:
        return pd.read_csv(handle)
