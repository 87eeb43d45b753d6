"""Example data shipped with pymlsem (public data sets from the lavaan R package).

``Demo.twolevel`` (2,500 rows in 200 clusters), ``HolzingerSwineford1939`` (301 rows) and
``PoliticalDemocracy`` (75 rows), exported from lavaan 0.6-14; and simulated two-level designs with
known parameter values (:mod:`pymlsem.datasets.designs`).
"""

from __future__ import annotations

from importlib.resources import files

import pandas as pd

from pymlsem.datasets.designs import (
    Design,
    latent_centering,
    mediation_111,
    mediation_211,
    mediation_221,
    observed_centering_estimates,
    random_slope_cross_level,
    two_level_irt,
    two_level_ordinal_cfa,
)
from pymlsem.exceptions import DataError

__all__ = [
    "DATASETS",
    "Design",
    "latent_centering",
    "load_dataset",
    "mediation_111",
    "mediation_211",
    "mediation_221",
    "observed_centering_estimates",
    "random_slope_cross_level",
    "two_level_irt",
    "two_level_ordinal_cfa",
]

DATASETS = ("Demo.twolevel", "HolzingerSwineford1939", "PoliticalDemocracy")


def load_dataset(name: str) -> pd.DataFrame:
    """Load one of the example data sets by its lavaan name.

    Parameters
    ----------
    name
        ``"Demo.twolevel"``, ``"HolzingerSwineford1939"``, ``"PoliticalDemocracy"`` or another name of
        :data:`DATASETS`.

    Returns
    -------
    pandas.DataFrame
        A new frame (the caller may change it).

    Raises
    ------
    DataError
        An unknown name (the message lists the available ones).
    """
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; available: {', '.join(DATASETS)}")
    with files(__package__).joinpath(f"{name}.csv").open("r") as handle:
        return pd.read_csv(handle)
