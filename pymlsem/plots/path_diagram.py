"""Path diagram of a fitted SEM through graphviz (optional: ``pip install 'pymlsem[plots]'``).

One subgraph (a graphviz cluster) per level of a two-level model: observed variables as boxes, latent
variables as ellipses, loadings (factor -> indicator) and regressions (predictor -> outcome) as arrows,
covariances as dashed two-headed edges, each labelled with its posterior mean (``fit.parameter_estimates()``);
fixed values are marked ``(fixed)`` and labelled parameters show their label. Variances are printed in the
node (``var = ...``). Rows of exogenous covariates (lavaan's fixed.x: their variances, covariances and
means, set to the sample values) and intercepts are left out.

Building the graph needs only the ``graphviz`` Python package; rendering an image (``path="d.png"``, or
displaying the graph in a notebook) also needs Graphviz's ``dot`` program.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pymlsem.results.posterior import interval_names

if TYPE_CHECKING:
    from pymlsem.results.fit import SEMFit

__all__ = ["path_diagram"]

LEVEL_NAMES = {1: "within", 2: "between"}
SOURCE_SUFFIXES = ("gv", "dot")


def _graphviz() -> Any:
    try:
        import graphviz
    except ImportError as err:
        raise ImportError(
            "path diagrams need the graphviz Python package, which is not installed: pip install graphviz "
            "(or pip install 'pymlsem[plots]'); rendering images also needs Graphviz's dot program"
        ) from err
    return graphviz


def _value(row: pd.Series, digits: int, interval: tuple[str, str] | None) -> str:
    """An edge or variance label: posterior mean (or fixed value), label, interval."""
    if not row.free:
        return f"{row['mean']:g} (fixed)"
    text = f"{row['mean']:.{digits}f}"
    if row.label:
        text = f"{row.label} = {text}"
    if interval is not None:
        lo, hi = row[interval[0]], row[interval[1]]
        text += f"\\n[{lo:.{digits}f}, {hi:.{digits}f}]"
    return text


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
    """A path diagram of a fitted SEM with posterior means on the arrows, per level.

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
    partable = fit.model.partable
    estimates = fit.parameter_estimates(prob)
    table = partable.table
    keep = ((table["exo"].to_numpy(dtype=int) == 0) & (table["op"] != "~1").to_numpy()).tolist()
    rows = estimates.iloc[: len(table)][keep]  # table rows first, then defined parameters
    interval = interval_names(prob) if intervals else None
    two_level = partable.n_levels > 1
    graph = graphviz.Digraph("sem", graph_attr={"rankdir": rankdir, "fontname": "Helvetica"})
    graph.attr("node", fontname="Helvetica", fontsize="11")
    graph.attr("edge", fontname="Helvetica", fontsize="9")
    for level in range(1, partable.n_levels + 1):
        here = rows[rows.level.astype(int) == level] if two_level else rows
        tag = LEVEL_NAMES.get(level, f"level{level}")
        name = f"cluster_{tag}" if two_level else "model"
        with graph.subgraph(name=name) as sub:
            if two_level:
                sub.attr(label=f"{tag} (level {level})", style="rounded", color="grey50")
            latent = partable.latent.get(level, [])
            _add_level(sub, here, latent, tag if two_level else "", digits, interval, variances)
    if path is not None:
        _save(graphviz, graph, Path(path))
    return graph


def _add_level(
    sub: Any,
    rows: pd.DataFrame,
    latent: list[str],
    tag: str,
    digits: int,
    interval: tuple[str, str] | None,
    variances: bool,
) -> None:
    """Nodes and edges of one level."""

    def node(name: str) -> str:
        return f"{name}@{tag}" if tag else name

    names = list(dict.fromkeys(np.concatenate([rows.lhs.to_numpy(), rows.rhs.to_numpy()]).tolist()))
    variance = {r.lhs: _value(r, digits, None) for _, r in rows.iterrows() if r.op == "~~" and r.lhs == r.rhs}
    for name in names:
        label = f"{name}\\nvar = {variance[name]}" if variances and name in variance else name
        sub.node(node(name), label=label, shape="ellipse" if name in latent else "box")
    for _, r in rows.iterrows():
        text = _value(r, digits, interval)
        if r.op == "=~":
            sub.edge(node(r.lhs), node(r.rhs), label=text)
        elif r.op == "~":
            sub.edge(node(r.rhs), node(r.lhs), label=text)
        elif r.op == "~~" and r.lhs != r.rhs:
            sub.edge(node(r.lhs), node(r.rhs), label=text, dir="both", style="dashed", constraint="false")


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
            "with a .gv path instead, or use the returned graph's .source"
        ) from err
    path.write_bytes(image)
