"""Path diagram of a fitted SEM drawn with matplotlib: no Graphviz program needed.

The nodes and edges are those of :func:`pymlsem.plots.path_elements.diagram_levels` (as in the graphviz
diagram, :mod:`pymlsem.plots.path_diagram`), one panel per level. The layout is layered, left to right:
a variable's column is the longest chain of arrows (loadings, regressions) leading to it, so covariates
stand left of the factors they predict and indicators right of their factors; within a column the nodes
are ordered by the mean row of their predecessors, which keeps arrows from crossing in measurement models.
Covariances are dashed two-headed arcs bulging away from the diagram (left in the first column, right
elsewhere). In a non-recursive model (a loop of regressions) the loop's variables keep the columns reached
after one pass per variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pymlsem.exceptions import ControlError
from pymlsem.plots._common import finish, pyplot
from pymlsem.plots.path_elements import DiagramEdge, LevelDiagram, diagram_levels

if TYPE_CHECKING:
    from pymlsem.results.fit import SEMFit

__all__ = ["plot_path_diagram"]

COLUMN_GAP = 3.2  # data units between columns; rows are 1 apart (equal aspect)
INCHES = 0.65  # figure inches per data unit
ARC_BEND = 0.25  # arc3 radius of covariance arcs between columns
ARC_CLEARANCE = 16.0  # points between a column's widest box and its covariance brackets
LABEL_LINE = 0.24  # rows a line of an edge label takes
LANE_GAP = 9.0  # points between brackets whose spans overlap
NODE_FONT = 9.0
EDGE_LINE = {"color": "0.25", "linewidth": 0.9, "shrinkA": 0, "shrinkB": 0, "mutation_scale": 11}
EDGE_LABEL = {
    "ha": "center",
    "va": "center",
    "fontsize": 7.5,
    "zorder": 4,
    "bbox": {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
}
LABEL_AT = 0.6  # where a straight edge's label sits, from source (0) to target (1)


def plot_path_diagram(
    fit: SEMFit,
    level: int | None = None,
    *,
    digits: int = 2,
    intervals: bool = False,
    prob: float = 0.95,
    variances: bool = True,
    path: str | Path | None = None,
) -> Any:
    """A path diagram of a fitted SEM with posterior means on the arrows: one panel per level.

    Parameters
    ----------
    fit
        A fitted SEM.
    level
        Draw only this level (1: within, 2: between); every level if None.
    digits
        Decimals of the posterior means.
    intervals
        Also show the central posterior interval of each free parameter.
    prob
        Probability of those intervals.
    variances
        Show (residual) variances inside the nodes.
    path
        Where to save the figure (format from the suffix); not saved if None.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ControlError
        ``level`` is not a level of the model.
    """
    plt = pyplot()
    levels = diagram_levels(fit, digits=digits, intervals=intervals, prob=prob, variances=variances)
    if level is not None:
        known = [diagram.level for diagram in levels]
        if isinstance(level, bool) or level not in known:
            raise ControlError(f"level must be one of {known} (the model's levels), not {level!r}")
        levels = [diagram for diagram in levels if diagram.level == level]
    layouts = [level_layout(diagram) for diagram in levels]
    # a level may have nothing to draw (only exogenous covariates' rows): an empty panel
    widths = [max((x for x, _ in spots.values()), default=0.0) + COLUMN_GAP for spots in layouts]
    height = max(max((abs(y) for _, y in spots.values()), default=0.0) * 2 + 2.0 for spots in layouts)
    figure, axes = plt.subplots(
        1,
        len(levels),
        figsize=(INCHES * sum(widths), INCHES * height + 0.4),
        width_ratios=widths,
        squeeze=False,
    )
    for ax, diagram, spots, width in zip(axes[0], levels, layouts, widths, strict=True):
        _draw(ax, diagram, spots, width, height)
    return finish(figure, path)


def _indicators(diagram: LevelDiagram) -> dict[str, str]:
    """Each pure indicator (observed, only measured: no arrow out, no regression in) and its factor."""
    latent = {node.name for node in diagram.nodes if node.latent}
    busy = {e.source for e in diagram.edges if e.kind != "covariance"}
    busy |= {e.target for e in diagram.edges if e.kind == "regression"}
    factor: dict[str, str] = {}
    for edge in diagram.edges:
        if edge.kind == "loading" and edge.target not in latent | busy:
            factor.setdefault(edge.target, edge.source)
    return factor


def _ranks(names: list[str], arrows: list[tuple[str, str]]) -> dict[str, int]:
    """Each node's column: the longest chain of arrows leading to it (one pass per node at most)."""
    rank = dict.fromkeys(names, 0)
    for _ in range(len(rank)):
        changed = False
        for source, target in arrows:
            if rank[target] < rank[source] + 1:
                rank[target] = rank[source] + 1
                changed = True
        if not changed:
            break
    used = sorted(set(rank.values()))  # columns without gaps (a loop may skip some)
    return {name: used.index(value) for name, value in rank.items()}


def level_layout(diagram: LevelDiagram) -> dict[str, tuple[float, float]]:
    """Each node's (x, y): the structural variables in columns by rank, each factor's indicators in a
    column beside the diagram (left for the factors of the first column, when there are later columns;
    right otherwise); rows ordered by the mean row of a node's predecessors (for indicators: their
    factor's)."""
    factor = _indicators(diagram)
    structural = [node.name for node in diagram.nodes if node.name not in factor]
    arrows = [
        (e.source, e.target) for e in diagram.edges if e.kind != "covariance" and e.target not in factor
    ]
    rank = _ranks(structural, arrows)
    last = max(rank.values(), default=0)
    column = {name: float(value) for name, value in rank.items()}
    for name, parent in factor.items():
        column[name] = -1.0 if rank[parent] == 0 and last > 0 else last + 1.0
    sources: dict[str, list[str]] = {name: [] for name in column}
    for source, target in arrows:
        sources[target].append(source)
    for name, parent in factor.items():
        sources[name].append(parent)
    shift = 1.0 if -1.0 in column.values() else 0.0  # the first column at x = 0
    spots: dict[str, tuple[float, float]] = {}
    for x in [*range(last + 1), -1, last + 1]:  # indicators after their factors
        names = [name for name in column if column[name] == x]
        placed = [[spots[s][1] for s in sources[name] if s in spots] for name in names]
        order = sorted(range(len(names)), key=lambda i: (-np.mean(placed[i]) if placed[i] else 0.0, i))
        for row, i in enumerate(order):
            spots[names[i]] = ((x + shift) * COLUMN_GAP, (len(names) - 1) / 2 - row)
    return _clear_long_arrows(spots, arrows)


def _clear_long_arrows(
    spots: dict[str, tuple[float, float]], arrows: list[tuple[str, str]]
) -> dict[str, tuple[float, float]]:
    """Move a column up when an arrow skipping it would pass behind one of its nodes."""
    spots = dict(spots)
    for source, target in arrows:
        (x0, y0), (x1, y1) = spots[source], spots[target]
        for x in sorted({x for x, _ in spots.values() if min(x0, x1) < x < max(x0, x1)}):
            y = y0 + (y1 - y0) * (x - x0) / (x1 - x0)
            members = [name for name, (nx, _) in spots.items() if nx == x]
            if any(abs(spots[name][1] - y) < 0.5 for name in members):
                for name in members:
                    spots[name] = (x, spots[name][1] + 1.0)
    return spots


def _bracket_lanes(edges: list[DiagramEdge], spots: dict[str, tuple[float, float]]) -> dict[DiagramEdge, int]:
    """A lane (0 nearest the boxes) for each covariance within a column: brackets whose spans overlap
    take different lanes, shorter spans nearer (greedy interval colouring)."""
    same = [e for e in edges if e.kind == "covariance" and spots[e.source][0] == spots[e.target][0]]
    span = {e: sorted((spots[e.source][1], spots[e.target][1])) for e in same}
    lanes: dict[DiagramEdge, int] = {}
    for edge in sorted(same, key=lambda e: span[e][1] - span[e][0]):
        x, (low, high) = spots[edge.source][0], span[edge]
        taken = {
            lanes[other]
            for other in lanes
            if spots[other.source][0] == x and span[other][0] <= high and low <= span[other][1]
        }
        lanes[edge] = min(set(range(len(taken) + 1)) - taken)
    return lanes


def _free_height(span: list[float], lines: int, taken: list[tuple[float, float]]) -> float:
    """A height for a bracket label within ``span`` (rows), nearest its middle, clear of the ``taken``
    labels (height, half extent); recorded in ``taken``. The middle when nothing is clear."""
    half = LABEL_LINE * lines / 2
    middle = (span[0] + span[1]) / 2
    steps = np.arange(0.0, (span[1] - span[0]) / 2, half)
    candidates = [middle + sign * step for step in steps for sign in (1.0, -1.0)]
    clear = [y for y in candidates if all(abs(y - other) >= half + extent for other, extent in taken)]
    height = clear[0] if clear else middle
    taken.append((height, half))
    return height


def _half_width(label: str, fontsize: float) -> float:
    """About half the width of a node's box, in points (to route covariance arcs around it)."""
    return 0.3 * fontsize * max(len(line) for line in label.split("\n")) + 0.6 * fontsize


def _draw(
    ax: Any, diagram: LevelDiagram, spots: dict[str, tuple[float, float]], width: float, height: float
) -> None:
    """One level's nodes, edges and edge labels on ``ax``."""
    # edges are drawn after the nodes (same zorder, added later): an edge is clipped to the node boxes
    # as they were last drawn, and a figure saved with a tight bounding box is drawn twice, moved
    boxes = {}
    reach: dict[float, float] = {}  # per column: how far brackets go out to clear its widest box (points)
    for node in diagram.nodes:
        x, y = spots[node.name]
        style = "ellipse,pad=0.25" if node.latent else "square,pad=0.35"
        box = {"boxstyle": style, "facecolor": "white", "edgecolor": "0.15", "linewidth": 1.0}
        text = ax.text(x, y, node.label, ha="center", va="center", fontsize=NODE_FONT, zorder=3, bbox=box)
        boxes[node.name] = text.get_bbox_patch()
        reach[x] = max(reach.get(x, 0.0), _half_width(node.label, NODE_FONT) + ARC_CLEARANCE)
    first_column = min(reach, default=0.0)
    lanes = _bracket_lanes(diagram.edges, spots)
    taken: dict[float, list[tuple[float, float]]] = {}  # per column: bracket labels' (height, half extent)
    for edge in diagram.edges:
        (x0, y0), (x1, y1) = spots[edge.source], spots[edge.target]
        line = {**EDGE_LINE, "patchA": boxes[edge.source], "patchB": boxes[edge.target]}
        if edge.kind == "covariance" and x0 == x1:
            # a bracket out of the column's side: arms of fixed length (points) clear the boxes
            side = -1.0 if x0 == first_column and len(reach) > 1 else 1.0
            angle = 0 if side > 0 else 180
            arm = reach[x0] + LANE_GAP * lanes[edge]
            style = f"arc,angleA={angle},angleB={angle},armA={arm},armB={arm},rad=6"
            line |= {"arrowstyle": "<|-|>", "linestyle": "--", "connectionstyle": style}
            ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=3, arrowprops=line)
            # the label on the bracket's upright, at a height no other bracket label of the column takes
            y = _free_height(sorted((y0, y1)), edge.label.count("\n") + 1, taken.setdefault(x0, []))
            ax.annotate(
                edge.label, xy=(x0, y), xytext=(side * arm, 0), textcoords="offset points", **EDGE_LABEL
            )
            continue
        if edge.kind == "covariance":
            line |= {"arrowstyle": "<|-|>", "linestyle": "--", "connectionstyle": f"arc3,rad={ARC_BEND}"}
            # the quadratic Bezier's midpoint: half way to arc3's control point (equal aspect: data units)
            label_at = ((x0 + x1) / 2 + ARC_BEND * (y1 - y0) / 2, (y0 + y1) / 2 - ARC_BEND * (x1 - x0) / 2)
        else:
            line |= {"arrowstyle": "-|>"}
            label_at = (x0 + LABEL_AT * (x1 - x0), y0 + LABEL_AT * (y1 - y0))
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=3, arrowprops=line)
        ax.text(*label_at, edge.label, **EDGE_LABEL)
    ax.set_xlim(-COLUMN_GAP / 2, width - COLUMN_GAP / 2)
    ax.set_ylim(-height / 2, height / 2)
    ax.set_aspect("equal")
    ax.set_axis_off()
    if diagram.tag:
        ax.set_title(diagram.title, fontsize=10)
