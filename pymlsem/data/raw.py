"""Row-level data for the latent-variable builder: model columns, cluster codes, missing values kept.

The latent builder evaluates the likelihood row by row, so missing values of modelled (endogenous)
variables stay in the data and are handled in the likelihood (see :mod:`pymlsem.build.latent`). Rows
can only be dropped, with a warning that counts them, when an exogenous covariate (which the model
conditions on) or the cluster is missing. The caller's data frame is never modified.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pymlsem.data.prepare import check_columns
from pymlsem.exceptions import DataError


@dataclass
class RawData:
    """The model's columns of the user's data, row by row.

    Attributes
    ----------
    frame
        The model's variables as float64 columns (NaN where missing) and the cluster column.
    cluster_index
        Cluster of each row as 0..J-1 (two-level models), else None.
    rows
        Position in the user's data of each kept row.
    cluster_ids
        The cluster labels in the order of their codes.
    """

    frame: pd.DataFrame
    rows: np.ndarray
    cluster_index: np.ndarray | None = None
    cluster_ids: np.ndarray | None = None

    @property
    def n_clusters(self) -> int:
        """Number of clusters (0 for single-level data)."""
        return 0 if self.cluster_ids is None else len(self.cluster_ids)

    def column(self, name: str) -> np.ndarray:
        """One variable, row by row (NaN where missing)."""
        return self.frame[name].to_numpy(dtype=float)

    def cluster_column(self, name: str) -> np.ndarray:
        """A between-only variable, one value per cluster (NaN when the cluster has none).

        Raises
        ------
        DataError
            When the variable varies within a cluster.
        """
        values = self.frame[name].groupby(self.cluster_index).agg(["min", "max"])
        varies = values["min"] != values["max"]
        if varies.any():
            where = self.cluster_ids[values.index[varies.to_numpy()][0]]
            raise DataError(
                f"{name!r} is a between-level variable but varies within cluster {where!r}; give it one "
                "value per cluster, or model it at level 1"
            )
        out = np.full(self.n_clusters, np.nan)
        out[values.index.to_numpy()] = values["min"].to_numpy()
        return out


def prepare_raw_data(
    data: pd.DataFrame,
    variables: Sequence[str],
    cluster: str | None,
    *,
    conditioned: Sequence[str] = (),
    categorical: Sequence[str] = (),
) -> RawData:
    """Check the data and keep the model's columns, with missing values of modelled variables kept.

    Parameters
    ----------
    data
        The user's data frame (not modified).
    variables
        Observed variables of the model.
    cluster
        The cluster column of a two-level model, or None.
    conditioned
        Exogenous covariates the model conditions on: rows where one of them is missing are dropped
        (with a warning), because the model says nothing about their values.
    categorical
        Ordered variables: kept as they are (category codes are made by the caller).

    Returns
    -------
    RawData
    """
    check_columns(data, variables, cluster)
    keep = [*variables, *([cluster] if cluster is not None else [])]
    frame = data.loc[:, keep].copy()
    for name in variables:
        if name in categorical:
            continue
        column = frame[name]
        kinds = pd.api.types
        if (
            not kinds.is_numeric_dtype(column)
            or kinds.is_bool_dtype(column)
            or kinds.is_complex_dtype(column)
        ):
            raise DataError(
                f"column {name!r} is not numeric (dtype {column.dtype}); convert it (e.g. with "
                "pd.to_numeric), or list it in ordered= if it is an ordinal or binary indicator"
            )
        frame[name] = column.astype(np.float64)
        finite = frame[name][np.isfinite(frame[name])]
        if finite.nunique() == 1:
            raise DataError(
                f"column {name!r} is constant (every observed value is {finite.iloc[0]:g}): "
                "it has no variance to model; leave it out of the model"
            )
    required = [*conditioned, *([cluster] if cluster is not None else [])]
    incomplete = frame[required].isna().any(axis=1) if required else pd.Series(False, index=frame.index)
    if incomplete.any():
        which = [c for c in required if frame[c].isna().any()]
        warnings.warn(
            f"dropped {int(incomplete.sum())} of {len(frame)} rows with a missing value in "
            f"{', '.join(which)} (exogenous covariates and the cluster are conditioned on, not modelled); "
            "missing values of the other variables are handled in the likelihood",
            UserWarning,
            stacklevel=3,
        )
    kept = np.flatnonzero(~incomplete.to_numpy())
    if kept.size == 0:
        raise DataError("no rows are left: every row has a missing covariate or cluster")
    frame = frame.iloc[kept].reset_index(drop=True)
    if cluster is None:
        return RawData(frame, kept)
    codes, labels = pd.factorize(frame[cluster], sort=True)
    return RawData(frame, kept, codes.astype(np.int64), np.asarray(labels))
