"""What a path diagram of a fitted SEM shows, per level: its nodes and labelled edges.

The renderers draw these elements: :mod:`pymlsem.plots.path_diagram` (graphviz) and
:mod:`pymlsem.plots.path_figure` (matplotlib). Observed variables are boxes and latent variables ellipses;
loadings (factor -> indicator) and regressions (predictor -> outcome) are arrows, covariances two-headed
edges, each labelled with its posterior mean (``fit.parameter_estimates()``); fixed values are marked
``(fixed)`` and labelled parameters show their label. Variances are printed in the node (``var = ...``).
Rows of exogenous covariates (lavaan's fixed.x: their variances, covariances and means, set to the sample
values) and intercepts are left out. Labels break lines with ``"\\n"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from pymlsem.results.posterior import interval_names

if TYPE_CHECKING:
    from pymlsem.results.fit import SEMFit

__all__ = ["DiagramEdge", "DiagramNode", "LevelDiagram", "diagram_levels"]

LEVEL_NAMES = {1: "within", 2: "between"}


@dataclass(frozen=True)
class DiagramNode:
    """A variable of one level: its name, whether it is latent, and its label (name, variance)."""

    name: str
    latent: bool
    label: str


@dataclass(frozen=True)
class DiagramEdge:
    """A parameter drawn as an edge: arrows point from ``source`` to ``target``."""

    source: str
    target: str
    kind: Literal["loading", "regression", "covariance"]
    label: str


@dataclass(frozen=True)
class LevelDiagram:
    """The nodes and edges of one level; ``tag`` is ``"within"``/``"between"`` ('' for one level)."""

    level: int
    tag: str
    nodes: list[DiagramNode]
    edges: list[DiagramEdge]

    @property
    def title(self) -> str:
        """The level's heading in a two-level diagram."""
        return f"{self.tag} (level {self.level})"


def _value(row: pd.Series, digits: int, interval: tuple[str, str] | None) -> str:
    """An edge or variance label: posterior mean (or fixed value), label, interval."""
    if not row.free:
        return f"{row['mean']:g} (fixed)"
    text = f"{row['mean']:.{digits}f}"
    if row.label:
        text = f"{row.label} = {text}"
    if interval is not None:
        lo, hi = row[interval[0]], row[interval[1]]
        text += f"\n[{lo:.{digits}f}, {hi:.{digits}f}]"
    return text


def diagram_levels(
    fit: SEMFit, *, digits: int = 2, intervals: bool = False, prob: float = 0.95, variances: bool = True
) -> list[LevelDiagram]:
    """The nodes and edges of each level of a fitted SEM's path diagram.

    Parameters
    ----------
    fit
        A fitted SEM.
    digits
        Decimals of the posterior means.
    intervals
        Also show the central posterior interval of each free parameter on the edges.
    prob
        Probability of those intervals.
    variances
        Show (residual) variances inside the nodes.

    Returns
    -------
    list of LevelDiagram
        One per level, level 1 first.
    """
    partable = fit.model.partable
    estimates = fit.parameter_estimates(prob)
    table = partable.table
    keep = ((table["exo"].to_numpy(dtype=int) == 0) & (table["op"] != "~1").to_numpy()).tolist()
    rows = estimates.iloc[: len(table)][keep]  # table rows first, then defined parameters
    interval = interval_names(prob) if intervals else None
    two_level = partable.n_levels > 1
    levels = []
    for level in range(1, partable.n_levels + 1):
        here = rows[rows.level.astype(int) == level] if two_level else rows
        tag = LEVEL_NAMES.get(level, f"level{level}") if two_level else ""
        latent = set(partable.latent.get(level, []))
        levels.append(_level(level, tag, here, latent, digits, interval, variances))
    return levels


def _level(
    level: int,
    tag: str,
    rows: pd.DataFrame,
    latent: set[str],
    digits: int,
    interval: tuple[str, str] | None,
    variances: bool,
) -> LevelDiagram:
    """The nodes and edges of one level's rows."""
    rows = rows[rows.op.isin(["=~", "~", "~~"]).to_numpy()]  # not thresholds, scale factors, ...
    names = list(dict.fromkeys(np.concatenate([rows.lhs.to_numpy(), rows.rhs.to_numpy()]).tolist()))
    variance = {r.lhs: _value(r, digits, None) for _, r in rows.iterrows() if r.op == "~~" and r.lhs == r.rhs}
    nodes = [
        DiagramNode(
            name,
            name in latent,
            f"{name}\nvar = {variance[name]}" if variances and name in variance else name,
        )
        for name in names
    ]
    edges = []
    for _, r in rows.iterrows():
        text = _value(r, digits, interval)
        if r.op == "=~":
            edges.append(DiagramEdge(r.lhs, r.rhs, "loading", text))
        elif r.op == "~":
            edges.append(DiagramEdge(r.rhs, r.lhs, "regression", text))
        elif r.op == "~~" and r.lhs != r.rhs:
            edges.append(DiagramEdge(r.lhs, r.rhs, "covariance", text))
    return LevelDiagram(level, tag, nodes, edges)
