"""Simulate data from a model written in lavaan syntax, with known parameter values.

Used for parameter-recovery tests and for trying models before real data exist. The model's implied
moments per level (see :mod:`pymlsem.build.ram`) are computed at the given values; two-level data
draw one between-level vector per cluster and one within-level vector per row.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pytensor

from pymlsem.build.parameters import parameter_class, row_name
from pymlsem.build.ram import LevelLayout
from pymlsem.build.rewrites import compile_mode
from pymlsem.exceptions import ModelSpecificationError
from pymlsem.partable import ParTable, build_partable
from pymlsem.syntax import parse_model

#: Values used for parameters that ``values`` does not name, by class and level.
DEFAULT_VALUES = {"lambda": 0.8, "beta": 0.3, "nu": 0.0, "alpha": 0.0, "rho": 0.0}
DEFAULT_VARIANCE = {1: 1.0, 2: 0.3}


def simulate(
    model: str,
    values: Mapping[str, float] | None = None,
    *,
    n_clusters: int | None = None,
    cluster_size: int | Sequence[int] = 10,
    n: int | None = None,
    model_type: str = "sem",
    std_lv: bool = False,
    seed: int | None = None,
) -> pd.DataFrame:
    """Draw a data set from ``model``.

    Parameters
    ----------
    model
        lavaan syntax; ``level:`` blocks make two-level data with a ``cluster`` column.
    values
        Parameter values by label or by name as pymlsem prints them (``"fw=~y2@within"``, ``"f=~x2"``),
        on lavaan's scale (variances, covariances). Others take :data:`DEFAULT_VALUES`; variances 1 at
        level 1 and 0.3 at level 2; exogenous covariates are standard normal.
    n_clusters, cluster_size
        Two-level data: number of clusters and their size (one size, or one per cluster).
    n
        Single-level data: number of rows.
    model_type
        ``"sem"``, ``"cfa"`` or ``"growth"``.
    std_lv
        As in :class:`pymlsem.SEM`: each factor's variance fixed at 1 and its first loading a free value
        (by default fixed at 1, the marker).
    seed
        Random seed.

    Returns
    -------
    pandas.DataFrame
        One column per observed variable (and ``cluster``).
    """
    partable = build_partable(parse_model(model), model_type=model_type, meanstructure=True, std_lv=std_lv)
    rows = _row_values(partable, dict(values or {}))
    rng = np.random.default_rng(seed)
    moments = {level: _moments(partable, level, rows) for level in range(1, partable.n_levels + 1)}
    if partable.n_levels == 1:
        if n is None:
            raise ModelSpecificationError("give n (the number of rows) for a single-level model")
        names, mean, cov = moments[1]
        return pd.DataFrame(rng.multivariate_normal(mean, cov, size=n, method="eigh"), columns=names)
    if n_clusters is None:
        raise ModelSpecificationError("give n_clusters (and cluster_size) for a two-level model")
    sizes = np.broadcast_to(np.asarray(cluster_size, dtype=int), (n_clusters,))
    cluster = np.repeat(np.arange(1, n_clusters + 1), sizes)
    w_names, w_mean, w_cov = moments[1]
    b_names, b_mean, b_cov = moments[2]
    within = rng.multivariate_normal(w_mean, w_cov, size=len(cluster), method="eigh")
    between = rng.multivariate_normal(b_mean, b_cov, size=n_clusters, method="eigh")[cluster - 1]
    frame = pd.DataFrame(0.0, index=range(len(cluster)), columns=list(dict.fromkeys(w_names + b_names)))
    frame[w_names] += within
    frame[b_names] += between
    frame["cluster"] = cluster
    return frame


def _row_values(partable: ParTable, values: dict[str, float]) -> np.ndarray:
    table = partable.table
    latent = {v for names in partable.latent.values() for v in names}
    two_level = partable.n_levels == 2
    used: set[str] = set()
    settable: list[str] = []  # the names values= accepts, for the error message
    out = np.empty(len(table))
    for r, row in enumerate(table.itertuples(index=False)):
        name = row_name(pd.Series(row._asdict()), two_level)
        if int(row.free) != 0:
            settable += [name] + ([row.label] if row.label else [])
        key = row.label if row.label in values else name
        if key in values:
            out[r] = values[key]
            used.add(key)
        elif int(row.exo) == 1:
            out[r] = 1.0 if (row.op == "~~" and row.lhs == row.rhs) else 0.0
        elif int(row.free) == 0:
            out[r] = row.value
        else:
            pclass = parameter_class(row.lhs, row.op, row.rhs, latent)
            out[r] = (
                DEFAULT_VARIANCE[int(row.level)] if pclass in ("theta", "psi") else DEFAULT_VALUES[pclass]
            )
    unknown = set(values) - used
    if unknown:
        closest = {k: difflib.get_close_matches(k, settable, n=1) for k in sorted(unknown)}
        hints = "; ".join(f"{k!r} (did you mean {m[0]!r}?)" if m else repr(k) for k, m in closest.items())
        raise ModelSpecificationError(
            f"values names parameters the model does not have: {hints}. The model's free parameters are: "
            f"{', '.join(dict.fromkeys(settable))}"
        )
    return out


def _moments(partable: ParTable, level: int, rows: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    layout = LevelLayout.from_table(partable.table, level, partable.observed[level], partable.latent[level])
    mean, cov = layout.implied(rows)
    # evaluated once, by Python thunks: machine code for one evaluation took 2-17 s to compile
    mean, cov = pytensor.function([], [mean, cov], mode=compile_mode("FAST_COMPILE"))()
    return list(partable.observed[level]), mean, cov
