"""Benchmark: the latent-variable builder (``method="latent"``) on the new two-level model types.

One fit per model, each in a fresh Python process (so one model's compiled code or memory does not help or
hinder the next), with nutpie, 4 chains x 1000 draws (+1000 tuning) by default. Reported per model: rows,
clusters and number of free parameters; the fit's own timings (``fit.timings``: build of the PyMC model,
compile, sampling, total); the minimum bulk ESS over the free parameters (the ``parameters``
deterministic) and, where the model has ``:=`` parameters, over those (``defined``); min ESS per second
of sampling (over both) and the parameter with the lowest ESS; max R-hat (over both); divergences after
tuning; and the mean number of leapfrog steps per draw (nutpie's ``n_steps``).

Models (``--models`` picks a subset, by these names):

- ``seed-marginal``, ``seed-latent``: the seed model (``tests/reference.py`` ``SEED``) on Demo.twolevel
  (2,500 rows, 200 clusters) with the marginal builder and with the latent one: same priors, same
  posterior, so the ratio of their ESS/s is the price of sampling the latent variables.
- ``random-slope``: random slope with a cross-level interaction (``designs.random_slope_cross_level``).
- ``centering-marginal``, ``centering-latent``: latent group-mean centering (``designs.latent_centering``),
  320 clusters of 5 (1,600 rows), marginal builder (the default for this model) and latent builder.
- ``irt``: two-level 2PL IRT, 30 binary items (``designs.two_level_irt``), the book's size.
- ``ordinal-cfa``: two-level ordinal CFA, 6 items with 4 categories (``designs.two_level_ordinal_cfa``).
- ``mediation``: 1-1-1 mediation with random a and b paths (``designs.mediation_111``).

"The book's size" is 95 schools with 10-24 students each (1,618 students with the default seed), the
sizes ``two_level_irt`` draws; the random-slope, ordinal-CFA and mediation designs use the same sizes.

Run:  .venv/bin/python benchmarks/bench_latent.py [--models irt mediation] [--draws 1000] [--tune 1000]
      [--chains 4] [--seed 1] [--centered none|between|within|both] [--without-engine]
      [--out results.json|results.md]
``--without-engine``: every model compiles its own PyMC graph (as before the latent engine families).
Prints a Markdown table (seconds, wall clock); ``--out`` also writes it (``.json``: the raw numbers).
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from fresh_process import ROOT, run_json_child

MODELS = (
    "seed-marginal",
    "seed-latent",
    "random-slope",
    "centering-marginal",
    "centering-latent",
    "irt",
    "ordinal-cfa",
    "mediation",
)
BOOK_CLUSTERS = 95


def book_sizes(seed: int):
    """95 cluster sizes drawn uniformly from 10 to 24, as ``two_level_irt`` draws them (about 1,600 rows)."""
    import numpy as np

    return np.random.default_rng(seed).integers(10, 25, size=BOOK_CLUSTERS)


def problem(name: str, seed: int) -> tuple[str, object, dict]:
    """Model string, data and the keywords of ``pymlsem.sem`` (``cluster``, ``method``, ``ordered``)."""
    from pymlsem.datasets import designs, load_dataset

    if name.startswith("seed-"):
        sys.path.insert(0, str(ROOT / "tests"))
        from reference import SEED

        method = name.removeprefix("seed-")
        return SEED, load_dataset("Demo.twolevel"), {"cluster": "cluster", "method": method}
    if name == "random-slope":
        design = designs.random_slope_cross_level(
            n_clusters=BOOK_CLUSTERS, cluster_size=book_sizes(seed), seed=seed
        )
    elif name.startswith("centering-"):
        design = designs.latent_centering(n_clusters=320, cluster_size=5, seed=seed)
    elif name == "irt":
        design = designs.two_level_irt(n_items=30, n_clusters=BOOK_CLUSTERS, seed=seed)
    elif name == "ordinal-cfa":
        design = designs.two_level_ordinal_cfa(
            n_clusters=BOOK_CLUSTERS, cluster_size=book_sizes(seed), seed=seed
        )
    elif name == "mediation":
        design = designs.mediation_111(n_clusters=BOOK_CLUSTERS, cluster_size=book_sizes(seed), seed=seed)
    else:
        raise ValueError(f"unknown model {name!r}; choose from {MODELS}")
    kwargs: dict = {"cluster": design.cluster}
    if design.ordered:
        kwargs["ordered"] = list(design.ordered)
    if name == "centering-latent":
        kwargs["method"] = "latent"
    return design.model, design.data, kwargs


def measure(
    name: str, draws: int, tune: int, chains: int, seed: int, centered: str, without_engine: bool = False
) -> dict:
    """Fit one model in this process and return its measurements."""
    import pandas as pd

    import pymlsem
    import pymlsem.sample
    from pymlsem.engine.run import engine_binding

    warnings.simplefilter("ignore")
    if without_engine:  # the model compiles its own graph, as before its engine family
        pymlsem.sample.engine_binding = lambda spec: (None, "")
    model, data, kwargs = problem(name, seed)
    if centered != "none":  # the marginal builder ignores it
        kwargs["centered"] = True if centered == "both" else centered
    binding = None if without_engine else engine_binding(pymlsem.SEM(model, data, **kwargs))[0]
    start = time.perf_counter()
    fit = pymlsem.sem(
        model, data, draws=draws, tune=tune, chains=chains, random_seed=seed, progressbar=False, **kwargs
    )
    wall = time.perf_counter() - start
    est = fit.parameter_estimates()
    free = est[est.free & (est.op != ":=")]
    defined = est[est.op == ":="]
    both = est[est.free]
    t = fit.timings
    cluster = kwargs["cluster"]
    stats = fit.idata.sample_stats
    steps = float(stats["n_steps"].mean()) if "n_steps" in stats else float("nan")
    builder = fit.model.method
    if builder == "latent" and centered != "none":
        builder += f", centered={centered}"
    min_ess = float(both.ess_bulk.min())
    worst = both.loc[both.ess_bulk.idxmin()]
    worst_name = worst.lhs if worst.op == ":=" else f"{worst.lhs}{worst.op}{worst.rhs}"
    if worst.op != ":=" and not pd.isna(worst.level):
        worst_name += f" (level {worst.level})"
    return {
        "model": name,
        "method": builder,
        "engine": binding.family if binding is not None else "own graph",
        "rows": len(data),
        "clusters": int(data[cluster].nunique()),
        "free": len(fit.model.built.free),
        "defined": len(defined),
        "chains": chains,
        "draws": draws,
        "tune": tune,
        "build": t.build,
        "compile": t.compile,
        "sampling": t.sampling,
        "total": t.total,
        "wall": wall,
        "min_ess_free": float(free.ess_bulk.min()),
        "min_ess_defined": float(defined.ess_bulk.min()) if len(defined) else None,
        "min_ess_per_s": min_ess / t.sampling,
        "lowest_ess": worst_name,
        "max_r_hat": float(both.r_hat.max()),
        "divergences": fit.divergences(),
        "mean_steps": steps,
    }


def run_child(name: str, args: argparse.Namespace) -> dict:
    """Measure one model in a fresh Python process (the child runs this file with ``--child``)."""
    command = [sys.executable, __file__, "--child", name]
    command += ["--draws", str(args.draws), "--tune", str(args.tune), "--chains", str(args.chains)]
    command += ["--seed", str(args.seed), "--centered", args.centered]
    command += ["--without-engine"] if args.without_engine else []
    return run_json_child(command, {"model": name})


HEADER = (
    "| model | builder | engine family | rows / clusters | free (+defined) | build (s) | compile (s) | "
    "sampling (s) | "
    "total (s) | min bulk ESS free (defined) | lowest-ESS parameter | min ESS/s of sampling | max R-hat | "
    "divergences | steps/draw |\n" + "|---" * 15 + "|"
)


def row(r: dict) -> str:
    """One Markdown line of the table."""
    if "error" in r:
        return f"| {r['model']} | failed: {r['error'][:100]} |" + " |" * 13
    defined = f" (+{r['defined']})" if r["defined"] else ""
    ess = f"{r['min_ess_free']:.0f}"
    if r["min_ess_defined"] is not None:
        ess += f" ({r['min_ess_defined']:.0f})"
    return (
        f"| {r['model']} | {r['method']} | {r.get('engine', '')} | "
        f"{r['rows']:,} / {r['clusters']} | {r['free']}{defined} | "
        f"{r['build']:.2f} | {r['compile']:.1f} | {r['sampling']:.1f} | {r['total']:.1f} | {ess} | "
        f"{r.get('lowest_ess', '')} | "
        f"{r['min_ess_per_s']:.1f} | {r['max_r_hat']:.3f} | {r['divergences']} | {r['mean_steps']:.1f} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), metavar="MODEL")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--centered",
        choices=("none", "between", "within", "both"),
        default="none",
        help="latent builder: levels sampled centered (default none: non-centered, the library's default)",
    )
    parser.add_argument(
        "--without-engine", action="store_true", help="every model compiles its own graph (no engine family)"
    )
    parser.add_argument("--out", type=Path, help="also write the results (.json: raw numbers; else Markdown)")
    parser.add_argument("--child", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        measured = measure(
            args.child, args.draws, args.tune, args.chains, args.seed, args.centered, args.without_engine
        )
        print(json.dumps(measured))
        return
    print(
        f"nutpie, {args.chains} chains x {args.draws} draws (+{args.tune} tuning), seed {args.seed}, "
        f"centered={args.centered}" + (", without the engine" if args.without_engine else "")
    )
    print(HEADER, flush=True)
    results = []
    for name in args.models:
        results.append(run_child(name, args))
        print(row(results[-1]), flush=True)
    if args.out is not None:
        if args.out.suffix == ".json":
            args.out.write_text(json.dumps(results, indent=2) + "\n")
        else:
            args.out.write_text("\n".join([HEADER, *map(row, results)]) + "\n")


if __name__ == "__main__":
    main()
