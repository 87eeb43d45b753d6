"""Plots of SEM and mixed fits (pymlsem.plots) and SEM path diagrams (graphviz and matplotlib).

No sampling: SEM stand-in fits whose posterior draws scatter around lavaan's estimates of the reference
models, mixed stand-in fits with hand-made draws (as in test_mixed_output). Images are written headless
(Agg) to tmp_path; the graphviz path diagram is checked on its DOT source (Graphviz's dot program is not
needed), the matplotlib one on its texts, arrows and layout.
"""

from __future__ import annotations

import itertools
import re
import shutil
import sys
import types

import numpy as np
import pytest
import xarray as xr
from reference import MEDIATION, REFERENCE_FITS, data, lavaan_estimates

import pymlsem
from pymlsem.exceptions import ControlError, DataError, PymlsemError
from pymlsem.mlm.api import mixed_model
from pymlsem.plots import (
    plot_autocorr,
    plot_fit_ppc,
    plot_ppc,
    plot_prior_posterior,
    plot_rank,
    plot_trace_density,
    prior_draws,
    prior_posterior_draws,
)
from pymlsem.plots._common import fit_draws
from pymlsem.plots.path_elements import DiagramEdge, DiagramNode, LevelDiagram, diagram_levels
from pymlsem.plots.path_figure import level_layout
from pymlsem.results.fit import SEMFit
from pymlsem.sample import Timings
from tests.mlm.test_mixed_output import fit_output, output_data

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _sem(name: str) -> pymlsem.SEM:
    model, dataset, cluster, _ = REFERENCE_FITS[name]
    return pymlsem.SEM(model, data(dataset), cluster=cluster)


def _sem_fit(
    spec: pymlsem.SEM,
    centre: np.ndarray,
    *,
    chains: int = 2,
    draws: int = 150,
    jitter: float = 0.02,
    defined: np.ndarray | None = None,
    **groups: xr.Dataset,
) -> SEMFit:
    """A SEMFit whose draws scatter (relative SD ``jitter``) around ``centre``: one value per parameter."""
    rng = np.random.default_rng(0)
    values = centre * (1 + jitter * rng.standard_normal((chains, draws, centre.size)))
    posterior = {"parameters": xr.DataArray(values, dims=("chain", "draw", "parameter"))}
    if defined is not None:
        posterior["defined"] = xr.DataArray(
            defined * (1 + jitter * rng.standard_normal((chains, draws, defined.size))),
            dims=("chain", "draw", "defined_parameter"),
        )
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset(posterior), **groups})
    timings = Timings(0.0, 0.0, 0.0, 0.0, False)
    return SEMFit(spec, tree, sampler="none", chains=chains, draws=draws, tune=0, timings=timings)


def _lavaan_centre(spec: pymlsem.SEM, name: str) -> np.ndarray:
    """lavaan's estimate of each free parameter (taken from its first table row)."""
    rows = np.asarray(spec.rows_from_estimates(lavaan_estimates(REFERENCE_FITS[name][3])), dtype=float)
    return np.array([rows[p.rows[0]] for p in spec.built.free])


@pytest.fixture(scope="module")
def seed_fit() -> SEMFit:
    spec = _sem("seed")
    return _sem_fit(spec, _lavaan_centre(spec, "seed"))


@pytest.fixture(scope="module")
def mixed_fit():
    return fit_output(mixed_model("y ~ x + (1 + x | g)", output_data()), draws=150)


def _assert_png(path) -> None:
    content = path.read_bytes()
    assert content[:8] == b"\x89PNG\r\n\x1a\n" and len(content) > 1000


# --- every plot of both kinds of fit writes a PNG ----------------------------------------------------


@pytest.mark.parametrize("kind", ["sem", "mixed"])
@pytest.mark.parametrize("method", ["plot", "plot_autocorr", "plot_rank", "plot_prior_posterior"])
def test_fit_plots_write_png(seed_fit, mixed_fit, kind: str, method: str, tmp_path) -> None:
    fit = seed_fit if kind == "sem" else mixed_fit
    path = tmp_path / f"{kind}_{method}.png"
    fig = getattr(fit, method)(path=path)
    assert isinstance(fig, matplotlib.figure.Figure)
    _assert_png(path)


def test_sem_parameters_by_name(seed_fit) -> None:
    """Display names, names without @level when unambiguous, in the order asked for."""
    draws = fit_draws(seed_fit, ["fb=~y3@between", "fw=~y2", "fw~~fw"])
    assert list(draws["parameter"].values) == ["fb=~y3@between", "fw=~y2@within", "fw~~fw@within"]
    names = [p.name for p in seed_fit.model.built.free]
    assert list(fit_draws(seed_fit)["parameter"].values) == names
    np.testing.assert_array_equal(
        draws.sel(parameter="fw=~y2@within").values,
        seed_fit.idata.posterior["parameters"].values[..., names.index("fw=~y2@within")],
    )
    fig = plot_trace_density(seed_fit, var_names="fw=~y2")
    assert len(fig.axes) == 2
    fig = seed_fit.plot_autocorr(var_names=["fw=~y2", "fb=~y2"], max_lag=20)
    assert sorted(ax.get_title() for ax in fig.axes if ax.get_title()) == ["fb=~y2@between", "fw=~y2@within"]


def test_unknown_and_ambiguous_names(seed_fit, mixed_fit) -> None:
    with pytest.raises(PymlsemError, match="no parameter"):
        seed_fit.plot(var_names=["fw=~y9"])
    with pytest.raises(PymlsemError, match="@within or @between"):
        seed_fit.plot_rank(var_names=["y1~~y1"])
    with pytest.raises(PymlsemError, match="no parameter"):
        mixed_fit.plot_autocorr(var_names=["slope"])
    with pytest.raises(PymlsemError, match="no parameter"):
        mixed_fit.plot_prior_posterior(var_names=["sd__h"])
    with pytest.raises(PymlsemError, match="max_lag"):
        plot_autocorr(seed_fit, max_lag=0)


def test_mixed_autocorr_and_rank_use_mcmcglmm_names(mixed_fit, tmp_path) -> None:
    fig = plot_autocorr(mixed_fit, var_names=["x", "x:x.g", "units"], path=tmp_path / "acf.png")
    assert sorted(ax.get_title() for ax in fig.axes if ax.get_title()) == ["units", "x", "x:x.g"]
    fig = plot_rank(mixed_fit, var_names=["(Intercept)"], path=tmp_path / "rank.png")
    _assert_png(tmp_path / "rank.png")


def test_rank_plot_of_one_chain(tmp_path) -> None:
    spec = _sem("seed")
    fit = _sem_fit(spec, _lavaan_centre(spec, "seed"), chains=1, draws=60)
    plot_rank(fit, var_names=["fw=~y2", "fw=~y3"], path=tmp_path / "rank.png")
    _assert_png(tmp_path / "rank.png")


# --- prior against posterior -------------------------------------------------------------------------


def test_sem_prior_draws_follow_the_priors(seed_fit) -> None:
    posterior, prior = prior_posterior_draws(seed_fit, ["fw=~y2", "y1~1@between"], n_draws=1000)
    assert list(prior["parameter"].values) == list(posterior["parameter"].values)
    assert prior.sizes["draw"] == 1000
    # the default priors in the data's units: normal(0, 10 sd(y2)/sd(y1)) and normal(0, 32 rms(y1)); 1000
    # draws put the SD within 10% (its Monte Carlo error is about 2.2%)
    scale = {p.name: p.prior.args[1] for p in seed_fit.model.built.free}
    for name in ("fw=~y2@within", "y1~1@between"):
        assert prior.sel(parameter=name).std() == pytest.approx(scale[name], rel=0.1)
    assert prior_draws(seed_fit, 1000) is prior_draws(seed_fit, 1000)  # cached on the fit


def test_mixed_prior_variables_and_elements(mixed_fit) -> None:
    posterior, prior = prior_posterior_draws(mixed_fit, n_draws=200)
    names = ["(Intercept)", "x", "sigma", "sd__g[(Intercept)]", "sd__g[x]"]
    assert list(prior["parameter"].values) == names == list(posterior["parameter"].values)
    _, prior = prior_posterior_draws(mixed_fit, ["sd__g", "x"], n_draws=200)
    assert list(prior["parameter"].values) == ["sd__g[(Intercept)]", "sd__g[x]", "x"]
    assert (prior.sel(parameter=["sd__g[(Intercept)]", "sd__g[x]"]) > 0).all()


def test_stored_prior_group_is_used(mixed_fit) -> None:
    fake = xr.Dataset(
        {
            name: mixed_fit.idata.posterior[name].isel(chain=[0]) * 0 + 7.0
            for name in ("fixef", "sigma", "sd__g")
        }
    )
    fit = fit_output(mixed_fit.spec, draws=50)
    fit.idata = types.SimpleNamespace(posterior=fit.idata.posterior, prior=fake)
    _, prior = prior_posterior_draws(fit)
    assert (prior == 7.0).all()


def test_defined_parameters_plot_with_their_prior(tmp_path) -> None:
    spec = pymlsem.SEM(MEDIATION, data("PoliticalDemocracy"))
    fit = _sem_fit(spec, np.full(len(spec.built.free), 0.5), jitter=0.1, defined=np.array([0.25, 0.75]))
    fig = fit.plot(var_names=["indirect", "a"])
    assert [ax.get_title() for ax in fig.axes[::2]] == ["Trace of indirect", "Trace of a"]
    _, prior = prior_posterior_draws(fit, ["indirect", "a", "b"], n_draws=300)
    np.testing.assert_allclose(  # indirect := a*b, per prior draw
        prior.sel(parameter="indirect"), prior.sel(parameter="a") * prior.sel(parameter="b"), rtol=1e-10
    )
    plot_prior_posterior(fit, ["indirect"], n_draws=300, path=tmp_path / "pp.png")
    _assert_png(tmp_path / "pp.png")


# --- posterior predictive checks ---------------------------------------------------------------------


def test_plot_ppc_of_arrays(tmp_path) -> None:
    rng = np.random.default_rng(1)
    observed = rng.normal(size=120)
    observed[3] = np.nan  # a missing value is left out
    replicates = rng.normal(size=(2, 40, 120))
    replicates[0, 5, 7] = np.nan  # a failed replicate is left out
    fig = plot_ppc(observed, replicates, num_replicates=20, path=tmp_path / "ppc.png")
    _assert_png(tmp_path / "ppc.png")
    assert len(fig.axes[0].get_lines()) == 20 + 2  # replicates, their mean, the observed data
    counts = {"n": rng.poisson(3.0, 80).astype(float)}
    fig = plot_ppc(counts, {"n": rng.poisson(3.0, (30, 80))}, path=tmp_path / "counts.png")
    assert fig.axes[0].get_ylabel() == "relative frequency"
    with pytest.raises(PymlsemError, match="120 observed values"):
        plot_ppc(observed, replicates[..., :100])
    with pytest.raises(PymlsemError, match="num_replicates"):
        plot_ppc(observed, replicates, num_replicates=0)


def test_plot_ppc_of_a_sem_fit(seed_fit, tmp_path) -> None:
    with pytest.raises(PymlsemError, match=r"run fit\.posterior_predictive\(\) first"):
        seed_fit.plot_ppc()
    spec = seed_fit.model
    variables = list(spec.stats.variables)
    values = spec.data[variables].to_numpy(dtype=float)
    rng = np.random.default_rng(2)
    replicated = values[None, None] + 0.1 * rng.standard_normal((2, 10, *values.shape))
    dims = ("chain", "draw", "observation")
    fit = _sem_fit(
        spec,
        _lavaan_centre(spec, "seed"),
        posterior_predictive=xr.Dataset({v: (dims, replicated[..., k]) for k, v in enumerate(variables)}),
        observed_data=xr.Dataset({v: ("observation", values[:, k]) for k, v in enumerate(variables)}),
    )
    fig = fit.plot_ppc(path=tmp_path / "ppc.png")
    _assert_png(tmp_path / "ppc.png")
    # the exogenous covariates (held at their observed values) are left out by default
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["y1", "y2", "y3"]
    fig = plot_fit_ppc(fit, ["x1"], num_replicates=5)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["x1"]
    with pytest.raises(PymlsemError, match="no replicated variable"):
        fit.plot_ppc(var_names=["z"])


def test_plot_ppc_of_a_mixed_fit(mixed_fit, tmp_path) -> None:
    with pytest.raises(PymlsemError, match=r"run fit\.posterior_predictive\(\) first"):
        mixed_fit.plot_ppc()
    y = mixed_fit.spec.design.y
    rng = np.random.default_rng(3)
    fit = fit_output(mixed_fit.spec, draws=50)
    fit.idata = types.SimpleNamespace(
        posterior=fit.idata.posterior,
        posterior_predictive=xr.Dataset(
            {"y": (("chain", "draw", "observation"), rng.normal(size=(2, 50, y.size)))}
        ),
    )  # no observed_data group: the model's response is used
    fit.plot_ppc(path=tmp_path / "ppc.png")
    _assert_png(tmp_path / "ppc.png")


# --- path diagram ------------------------------------------------------------------------------------

EDGE = re.compile(r'"(\w+)@(\w+)" -> "(\w+)@(\w+)" \[label=(?:"([^"]+)"|([^\s\]]+))')


def test_path_diagram_of_the_seed_model(seed_fit, tmp_path) -> None:
    pytest.importorskip("graphviz")
    graph = seed_fit.path_diagram()
    source = graph.source
    assert "subgraph cluster_within" in source and "subgraph cluster_between" in source
    edges = {(a, b, level): quoted or plain for a, level, b, _, quoted, plain in EDGE.findall(source)}
    lavaan = lavaan_estimates("demo_twolevel")
    paths = lavaan[lavaan.op.isin(["=~", "~"])]
    assert len(edges) == len(paths) == 11
    for row in paths.itertuples():
        level = "within" if row.level == 1 else "between"
        key = (row.lhs, row.rhs, level) if row.op == "=~" else (row.rhs, row.lhs, level)
        label = edges[key]
        if row.rhs == "y1":  # the scaling loading
            assert label == "1 (fixed)"
        else:
            assert float(label) == pytest.approx(row.est, abs=0.011)
    assert re.search(r'"fw@within" \[label="fw\\nvar = [0-9.]+" shape=ellipse\]', source)
    assert re.search(r'"w1@between" \[label=w1 shape=box\]', source)
    assert re.search(r'"y2@between" \[label="y2\\nvar = [0-9.]+" shape=box\]', source)
    assert '"x1@within" -> "x2@within"' not in source  # fixed.x covariances are left out
    seed_fit.path_diagram(tmp_path / "seed.gv")
    assert (tmp_path / "seed.gv").read_text() == source
    if shutil.which("dot") is None:
        with pytest.raises(RuntimeError, match="dot program"):
            seed_fit.path_diagram(tmp_path / "seed.png")
    else:
        seed_fit.path_diagram(tmp_path / "seed.png")
        _assert_png(tmp_path / "seed.png")


def test_path_diagram_of_a_single_level_model_with_covariances() -> None:
    pytest.importorskip("graphviz")
    spec = _sem("poldem")
    fit = _sem_fit(spec, _lavaan_centre(spec, "poldem"))
    source = fit.path_diagram(intervals=True, digits=3).source
    assert "cluster" not in source
    assert re.search(
        r'y1 -> y5 \[label="[0-9.]+\\n\[[0-9.]+, [0-9.]+\]" constraint=false dir=both style=dashed\]', source
    )
    assert re.search(r'dem60 -> y2 \[label="a = [0-9.]{5}\\n', source)
    assert re.search(r'dem65 -> y6 \[label="a = [0-9.]{5}\\n', source)
    assert 'ind60 -> x1 [label="1 (fixed)"]' in source


def _node_texts(axes) -> dict[str, object]:
    """The node boxes of a drawn level, by variable name (a node's label starts with its name)."""
    return {t.get_text().split("\n")[0]: t for t in axes.texts if t.get_bbox_patch() and t.zorder == 3}


def _arrows_of(texts) -> list[FancyArrowPatch]:
    """The arrows of the annotations among ``texts`` (a drawn edge is an annotation's arrow)."""
    return [t.arrow_patch for t in texts if getattr(t, "arrow_patch", None) is not None]


def _arrows(axes) -> list[FancyArrowPatch]:
    """The edges of a drawn level."""
    return _arrows_of(axes.texts)


def test_matplotlib_path_diagram_of_the_seed_model(seed_fit, tmp_path) -> None:
    figure = seed_fit.plot_path_diagram(path=tmp_path / "seed.png")
    _assert_png(tmp_path / "seed.png")
    within, between = figure.axes
    assert within.get_title() == "within (level 1)" and between.get_title() == "between (level 2)"
    for axes, diagram in zip(figure.axes, diagram_levels(seed_fit), strict=True):
        nodes = _node_texts(axes)
        assert sorted(nodes) == sorted(node.name for node in diagram.nodes)
        assert {t.get_text() for t in axes.texts} - {""} == {n.label for n in diagram.nodes} | {
            e.label for e in diagram.edges
        }
        assert len(_arrows(axes)) == len(diagram.edges) == (6 if diagram.level == 1 else 5)
    nodes = _node_texts(within)
    x = {name: text.get_position()[0] for name, text in nodes.items()}
    assert x["x1"] == x["x2"] == x["x3"] < x["fw"] < x["y1"] == x["y2"] == x["y3"]
    assert nodes["fw"].get_bbox_patch().get_boxstyle().__class__.__name__ == "Ellipse"
    assert nodes["y1"].get_bbox_patch().get_boxstyle().__class__.__name__ == "Square"
    assert [axes.get_title() for axes in seed_fit.plot_path_diagram(level=2).axes] == ["between (level 2)"]


def test_matplotlib_path_diagram_layout_of_a_single_level_model() -> None:
    spec = _sem("poldem")
    fit = _sem_fit(spec, _lavaan_centre(spec, "poldem"))
    (axes,) = fit.plot_path_diagram(intervals=True).axes
    assert axes.get_title() == ""
    nodes = _node_texts(axes)
    x = {name: text.get_position()[0] for name, text in nodes.items()}
    y = {name: text.get_position()[1] for name, text in nodes.items()}
    # indicators of the exogenous factor left of it, the others right of the structural part
    assert x["x1"] < x["ind60"] < x["dem60"] < x["dem65"] < x["y1"] == x["y8"]
    assert y["y1"] > y["y4"] > y["y5"] > y["y8"]  # each factor's indicators together, in order
    # ind60 -> dem65 skips dem60's column: that column moves so the arrow does not pass behind dem60
    assert abs(y["dem60"] - (y["ind60"] + y["dem65"]) / 2) >= 0.5
    (diagram,) = diagram_levels(fit, intervals=True)
    brackets = [t for t in axes.texts if _arrows_of([t]) and t.arrow_patch.get_linestyle() == "--"]
    assert len(brackets) == sum(e.kind == "covariance" for e in diagram.edges) == 6
    for first, second in itertools.combinations(brackets, 2):  # overlapping spans: different arm lengths
        spans = [sorted((t.xy[1], t.xyann[1])) for t in (first, second)]
        if spans[0][0] <= spans[1][1] and spans[1][0] <= spans[0][1]:
            arms = [t.arrow_patch.get_connectionstyle().armA for t in (first, second)]
            assert arms[0] != arms[1]


def test_matplotlib_path_diagram_of_a_loop_of_regressions() -> None:
    loop = LevelDiagram(
        1,
        "",
        [DiagramNode(name, False, name) for name in ("a", "b", "c")],
        [DiagramEdge("a", "b", "regression", "0.5"), DiagramEdge("b", "c", "regression", "0.5"),
         DiagramEdge("c", "b", "regression", "0.2")],
    )  # fmt: skip
    spots = level_layout(loop)
    assert set(spots) == {"a", "b", "c"} and all(np.isfinite(spots[name]).all() for name in spots)
    assert spots["a"][0] < spots["b"][0]


@pytest.mark.parametrize("level", [0, 3, True, "between"])
def test_matplotlib_path_diagram_refuses_a_level_the_model_lacks(seed_fit, level) -> None:
    with pytest.raises(ControlError, match=r"level must be one of \[1, 2\]"):
        seed_fit.plot_path_diagram(level=level)


# --- optional dependencies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda f: f.plot(),
        lambda f: f.plot_autocorr(),
        lambda f: f.plot_rank(),
        lambda f: f.plot_prior_posterior(),
        lambda f: f.plot_ppc(),
        lambda f: f.plot_path_diagram(),
        lambda f: plot_ppc(np.zeros(3), np.zeros((2, 3))),
    ],
)
def test_plots_without_matplotlib(seed_fit, monkeypatch, call) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        call(seed_fit)


def test_path_diagram_without_graphviz(seed_fit, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(ImportError, match=r"pip install graphviz .*pymlsem\[plots\]"):
        seed_fit.path_diagram()


# --- clusters of a mixed model -----------------------------------------------------------------------


def test_caterpillar_plot_shows_each_clusters_effect_in_order(mixed_fit, tmp_path) -> None:
    figure = mixed_fit.plot_caterpillar(term="x", path=tmp_path / "caterpillar.png")
    _assert_png(tmp_path / "caterpillar.png")
    table = mixed_fit.ranef(summary=True)
    slopes = table[table["term"] == "x"].sort_values("mean")
    markers = figure.axes[0].lines[0]
    np.testing.assert_allclose(markers.get_xdata(), slopes["mean"])
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == list(slopes["level"].astype(str))
    with pytest.raises(PymlsemError, match="no effect 'z'"):
        mixed_fit.plot_caterpillar(term="z")


def test_cluster_lines_follow_the_fitted_values(mixed_fit, tmp_path) -> None:
    data = output_data()
    figure = mixed_fit.plot_cluster_lines("x", data, path=tmp_path / "lines.png")
    _assert_png(tmp_path / "lines.png")
    block = mixed_fit.spec.design.blocks[0]
    lines = figure.axes[0].lines
    assert len(lines) == block.n_levels
    fitted = mixed_fit.fitted()["mean"].to_numpy()
    first = np.flatnonzero(block.codes == 0)
    order = np.argsort(data["x"].to_numpy()[first], kind="stable")
    np.testing.assert_allclose(lines[0].get_ydata(), fitted[first][order])
    with pytest.raises(DataError, match="no column 'w'"):
        mixed_fit.plot_cluster_lines("w", data)
