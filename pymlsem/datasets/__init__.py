"""Example data shipped with pymlsem: public data sets of R packages, and simulated two-level designs with
known parameter values (:mod:`pymlsem.datasets.designs`).

From lavaan 0.6-14: ``Demo.twolevel`` (2,500 rows in 200 clusters), ``HolzingerSwineford1939`` (301 rows),
``PoliticalDemocracy`` (75 rows). From lme4 1.1-31: ``sleepstudy`` (180 rows, 18 subjects), ``cbpp`` (56
rows, 15 herds), ``grouseticks`` (403 rows). From ordinal 2022.11-16: ``wine`` (72 ratings by 9 judges).
``reading_public`` (3,209 students in 80 schools) is simulated in the shape of the book's reading example
(``geread ~ gevocab`` with a correlated random intercept and slope by school). The R factors come back as
strings, so that a formula treats them as categories (``period`` in ``cbpp``, ``YEAR`` in
``grouseticks``), as lme4 does.
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

#: each data set's R factors (read as strings)
_FACTORS = {
    "Demo.twolevel": (),
    "HolzingerSwineford1939": ("school",),
    "PoliticalDemocracy": (),
    "sleepstudy": ("Subject",),
    "cbpp": ("herd", "period"),
    "grouseticks": ("INDEX", "BROOD", "YEAR", "LOCATION"),
    "wine": ("temp", "contact", "judge"),
    "reading_public": (),
}
DATASETS = tuple(_FACTORS)


def load_dataset(name: str) -> pd.DataFrame:
    """Load one of the example data sets by its lavaan name.

    Parameters
    ----------
    name
        A name of :data:`DATASETS`: ``"Demo.twolevel"``, ``"HolzingerSwineford1939"``,
        ``"PoliticalDemocracy"``, ``"sleepstudy"``, ``"cbpp"``, ``"grouseticks"``, ``"wine"`` or
        ``"reading_public"``.

    Returns
    -------
    pandas.DataFrame
        A new frame (the caller may change it), the R factors as strings.

    Raises
    ------
    DataError
        An unknown name (the message lists the available ones).
    """
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; available: {', '.join(DATASETS)}")
    with files(__package__).joinpath(f"{name}.csv").open("r") as handle:
        return pd.read_csv(handle, dtype=dict.fromkeys(_FACTORS[name], str))
