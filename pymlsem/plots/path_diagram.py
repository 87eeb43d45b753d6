"""Path diagram of a fitted SEM through graphviz (optional: ``pip install 'pymlsem[plots]'``).

One subgraph (a graphviz cluster) per level of a two-level model, with the nodes and edges that
:func:`pymlsem.plots.path_elements.diagram_levels` selects. :mod:`pymlsem.plots.path_figure` draws the
same diagram with matplotlib.

Building the graph needs only the ``graphviz`` Python package; rendering an image (``path="d.png"``, or
displaying the graph in a notebook) also needs Graphviz's ``dot`` program.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymlsem.plots.path_elements import LevelDiagram, diagram_levels

if TYPE_CHECKING:
    from pymlsem.results.fit import SEMFit

__all__ = ["path_diagram"]

SOURCE_SUFFIXES = ("gv", "dot")


def _graphviz() -> Any:
    try:
        import graphviz
    except ImportError as err:
        raise ImportError(
            "path diagrams need the graphviz Python package, which is not installed: pip install graphviz "
            "(or pip install 'pymlsem[plots]'); rendering images also needs Graphviz's dot program "
            "(fit.plot_path_diagram() draws the diagram with matplotlib instead)"
        ) from err
    return graphviz


def path_diagram(
    fit: SEMFit,
    path: str | Path | None = None,
    *,
    digits: int = 2,
    intervals: bool = False,
    prob: float = 0.95,
    variances: bool = True,
    rankdir: str = "LR",
) -> Any:
    """A path diagram of a fitted SEM with posterior means on the arrows, per level (graphviz).

    Parameters
    ----------
    fit
        A fitted SEM.
    path
        Where to save the diagram: ``.gv``/``.dot`` writes the DOT source (no Graphviz program needed);
        another suffix (``.png``, ``.svg``, ``.pdf``) renders it with Graphviz's ``dot``. Not saved if None.
    digits
        Decimals of the posterior means.
    intervals
        Also show the central posterior interval of each free parameter.
    prob
        Probability of those intervals.
    variances
        Show (residual) variances inside the nodes.
    rankdir
        Graphviz layout direction (``"LR"``: left to right, ``"TB"``: top to bottom).

    Returns
    -------
    graphviz.Digraph
        The diagram; ``.source`` is its DOT text. Displays itself in a notebook when ``dot`` is installed.

    Raises
    ------
    ImportError
        The graphviz Python package is not installed.
    RuntimeError
        Rendering to an image format without Graphviz's ``dot`` program.
    """
    graphviz = _graphviz()
    levels = diagram_levels(fit, digits=digits, intervals=intervals, prob=prob, variances=variances)
    graph = graphviz.Digraph("sem", graph_attr={"rankdir": rankdir, "fontname": "Helvetica"})
    graph.attr("node", fontname="Helvetica", fontsize="11")
    graph.attr("edge", fontname="Helvetica", fontsize="9")
    for diagram in levels:
        with graph.subgraph(name=f"cluster_{diagram.tag}" if diagram.tag else "model") as sub:
            if diagram.tag:
                sub.attr(label=diagram.title, style="rounded", color="grey50")
            _add_level(sub, diagram)
    if path is not None:
        _save(graphviz, graph, Path(path))
    return graph


def _dot_text(label: str) -> str:
    """A label in DOT: line breaks as graphviz's centred ``\\n``."""
    return label.replace("\n", "\\n")


def _add_level(sub: Any, diagram: LevelDiagram) -> None:
    """Nodes and edges of one level."""

    def node(name: str) -> str:
        return f"{name}@{diagram.tag}" if diagram.tag else name

    for item in diagram.nodes:
        sub.node(node(item.name), label=_dot_text(item.label), shape="ellipse" if item.latent else "box")
    for edge in diagram.edges:
        label = _dot_text(edge.label)
        if edge.kind == "covariance":
            ends = (node(edge.source), node(edge.target))
            sub.edge(*ends, label=label, dir="both", style="dashed", constraint="false")
        else:
            sub.edge(node(edge.source), node(edge.target), label=label)


def _save(graphviz: Any, graph: Any, path: Path) -> None:
    suffix = path.suffix.lstrip(".").lower() or "png"
    if suffix in SOURCE_SUFFIXES:
        path.write_text(graph.source)
        return
    try:
        image = graph.pipe(format=suffix)
    except graphviz.ExecutableNotFound as err:
        raise RuntimeError(
            f"rendering the path diagram as {suffix} needs Graphviz's dot program, which was not found "
            "(install Graphviz, e.g. apt install graphviz or conda install graphviz); save the DOT source "
            "with a .gv path instead, use the returned graph's .source, or draw it with matplotlib: "
            "fit.plot_path_diagram()"
        ) from err
    path.write_bytes(image)
