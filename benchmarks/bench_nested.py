"""Benchmark: Gaussian mixed models with nested and crossed grouping factors.

Each fit runs in a fresh Python process (so one model's compiled code does not help the next), with nutpie,
4 chains x 1000 draws (+1000 tuning) by default. Reported per fit: rows, grouping factors and their
levels, the likelihood used (``BuiltMixedModel.likelihood``), build of the PyMC model, compile, sampling and
total seconds, the minimum bulk ESS over the parameters (fixed effects, SDs, residual SD), min ESS per
second of sampling, max R-hat, divergences and mean leapfrog steps per draw.

Fits (``--fits`` picks a subset, by these names):

- ``two-level``: ``y ~ 1 + (1 | school)`` on the simulated three-level data (:func:`three_level_data`:
  60 schools, 244 classes, about 4,000 students, the book's structure);
- ``three-level``: ``y ~ 1 + (1 | school/class)`` on the same rows (nested Woodbury);
- ``three-level-dense-994``: the three-level model on the first 994 rows with the dense layout
  (``layout="dense"``: one Q x Q Cholesky per gradient, the only marginal path before the nested one);
- ``three-level-nested-994``: the same 994 rows with the nested layout;
- ``crossed-marginal``, ``crossed-dense``, ``crossed-latent``: ``y ~ 1 + (1 | subject) + (1 | item)``
  (fully crossed, :func:`crossed_data`) integrated out with the ``"crossed"`` layout (subjects one by one,
  items in one dense block), with the dense layout (one Q x Q Cholesky), and sampled explicitly
  (``method="latent"``): the choices for crossed factors (``--crossed 60 40`` sets subjects and items,
  ``--crossed 1000 200 5`` five random items per subject).

``--engine`` fits through ``pymlsem.mixed`` instead, the default path: the model's engine family (compiled
once per machine: run ``python -m pymlsem warmup`` first, or the first fit of each family compiles it),
and reports the family as the likelihood.

Run:  .venv/bin/python benchmarks/bench_nested.py [--fits three-level two-level] [--draws 1000]
      [--tune 1000] [--chains 4] [--seed 1] [--engine] [--out results.md|results.json]
Prints a Markdown table (seconds, wall clock), with the machine's load (``uptime``) before and after.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from fresh_process import run_json_child, uptime

FITS = (
    "two-level",
    "three-level",
    "three-level-nested-994",
    "three-level-dense-994",
    "crossed-marginal",
    "crossed-dense",
    "crossed-latent",
)
SCHOOLS, CLASSES = 60, 244


def three_level_data(seed: int = 1):
    """Students in classes in schools: 60 schools, 244 classes of 8 to 25 students (about 4,000 rows).

    Four classes per school, five in four of them; school SD 0.8, class SD 0.5, residual SD 1, mean 0.
    Class labels restart in every school (``class`` is 1, 2, ... within its school), so only the nesting
    ``school/class`` tells the classes apart, as in the book's data.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    per_school = np.full(SCHOOLS, CLASSES // SCHOOLS)
    per_school[: CLASSES - per_school.sum()] += 1
    class_school = np.repeat(np.arange(SCHOOLS), per_school)
    sizes = rng.integers(8, 26, size=CLASSES)
    klass = np.repeat(np.arange(CLASSES), sizes)
    school = class_school[klass]
    within = klass - np.searchsorted(class_school, school)  # 0, 1, ... within the school
    y = rng.normal(0, 0.8, SCHOOLS)[school] + rng.normal(0, 0.5, CLASSES)[klass] + rng.normal(size=klass.size)
    return pd.DataFrame({"y": y, "school": school.astype(str), "class": (within + 1).astype(str)})


def crossed_data(subjects: int, items: int, per_subject: int = 0, seed: int = 1):
    """Subjects answer items once each: all of them (``per_subject=0``) or that many, drawn at random.

    Subject SD 0.8, item SD 0.5, residual SD 1.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    if per_subject:
        subject = np.repeat(np.arange(subjects), per_subject)
        item = np.concatenate([rng.choice(items, per_subject, replace=False) for _ in range(subjects)])
    else:
        subject = np.repeat(np.arange(subjects), items)
        item = np.tile(np.arange(items), subjects)
    y = (
        rng.normal(0, 0.8, subjects)[subject]
        + rng.normal(0, 0.5, items)[item]
        + rng.normal(size=subject.size)
    )
    return pd.DataFrame({"y": y, "subject": subject.astype(str), "item": item.astype(str)})


def problem(name: str, seed: int, crossed: tuple[int, ...]) -> tuple[str, object, dict]:
    """Formula, data and the keywords of ``build_mixed_model`` of one fit."""
    if name.startswith("crossed-"):
        kwargs = {
            "crossed-marginal": {"method": "marginal"},
            "crossed-dense": {"method": "marginal", "layout": "dense"},
            "crossed-latent": {"method": "latent"},
        }[name]
        return "y ~ 1 + (1 | subject) + (1 | item)", crossed_data(*crossed, seed=seed), kwargs
    data = three_level_data(seed)
    if name == "two-level":
        return "y ~ 1 + (1 | school)", data, {}
    formula = "y ~ 1 + (1 | school/class)"
    if name == "three-level":
        return formula, data, {}
    rows = data.iloc[:994]
    if name == "three-level-dense-994":
        return formula, rows, {"method": "marginal", "layout": "dense"}
    return formula, rows, {}


def measure(
    name: str, draws: int, tune: int, chains: int, seed: int, crossed: tuple[int, ...], engine: bool = False
) -> dict:
    """Fit one model in this process and return its measurements (through its engine family with
    ``engine``, else by sampling its own PyMC graph)."""
    import numpy as np

    from pymlsem.formula import mixed_design
    from pymlsem.mlm.fit import MixedFit
    from pymlsem.mlm.model import build_mixed_model
    from pymlsem.sample import sample_model

    warnings.simplefilter("ignore")
    formula, data, kwargs = problem(name, seed, crossed)
    sampler = {"draws": draws, "tune": tune, "chains": chains, "random_seed": seed, "progressbar": False}
    start = time.perf_counter()
    if engine:
        import pymlsem
        from pymlsem.engine.run import engine_binding

        fit = pymlsem.mixed(formula, data, **sampler, **kwargs)
        spec, idata, timings = fit.spec, fit.idata, fit.timings
        binding, why = engine_binding(spec)
        likelihood = f"engine: {binding.family}" if binding else f"own graph ({why})"
        build, compile_seconds, sampling = timings.build, timings.compile, timings.sampling
    else:
        spec = build_mixed_model(mixed_design(formula, data), **kwargs)
        build = time.perf_counter() - start
        data_values = {var.name: var.get_value() for var in spec.model.data_vars}
        result = sample_model(spec.model, **sampler, data=data_values)
        idata, compile_seconds, sampling = result.idata, result.compile_seconds, result.sampling_seconds
        fit = MixedFit(spec, idata, sampler="nutpie", chains=chains, draws=draws, tune=tune)
        likelihood = getattr(spec, "likelihood", spec.method)  # older versions: no likelihood
    total = time.perf_counter() - start
    table = fit.varcorr()
    ess = np.concatenate([table["ess_bulk"].to_numpy(), fit.fixef()["ess_bulk"].to_numpy()])
    r_hat = np.concatenate([table["r_hat"].to_numpy(), fit.fixef()["r_hat"].to_numpy()])
    stats = idata.sample_stats
    factors = {block.group: block.n_levels for block in spec.design.blocks}
    return {
        "fit": name,
        "formula": formula,
        "likelihood": likelihood,
        "rows": spec.design.nobs,
        "factors": ", ".join(f"{group} {levels}" for group, levels in factors.items()),
        "build": build,
        "compile": compile_seconds,
        "sampling": sampling,
        "total": total,
        "min_ess": float(ess.min()),
        "min_ess_per_s": float(ess.min()) / sampling,
        "max_r_hat": float(r_hat.max()),
        "divergences": int(stats["diverging"].sum()),
        "mean_steps": float(stats["n_steps"].mean()) if "n_steps" in stats else float("nan"),
        "sdcor": [round(float(v), 3) for v in table["sdcor"]],
    }


def run_child(name: str, args: argparse.Namespace) -> dict:
    """Measure one fit in a fresh Python process (the child runs this file with ``--child``)."""
    command = [sys.executable, __file__, "--child", name]
    command += ["--draws", str(args.draws), "--tune", str(args.tune)]
    command += ["--chains", str(args.chains), "--seed", str(args.seed), "--crossed", *map(str, args.crossed)]
    command += ["--engine"] if args.engine else []
    return run_json_child(command, {"fit": name})


HEADER = (
    "| fit | likelihood | rows | factors (levels) | build (s) | compile (s) | sampling (s) | total (s) | "
    "process (s) | min bulk ESS | min ESS/s of sampling | max R-hat | divergences | steps/draw |\n"
    + "|---" * 14
    + "|"
)


def row(r: dict) -> str:
    """One Markdown line of the table."""
    if "error" in r:
        return f"| {r['fit']} | failed: {r['error'][:100]} |" + " |" * 12
    return (
        f"| {r['fit']} | {r['likelihood']} | {r['rows']:,} | {r['factors']} | {r['build']:.2f} | "
        f"{r['compile']:.1f} | {r['sampling']:.1f} | {r['total']:.1f} | {r['process']:.1f} | "
        f"{r['min_ess']:.0f} | {r['min_ess_per_s']:.1f} | {r['max_r_hat']:.3f} | {r['divergences']} | "
        f"{r['mean_steps']:.1f} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", nargs="+", choices=FITS, default=list(FITS), metavar="FIT")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--crossed", type=int, nargs="+", default=(60, 40), metavar="N")
    parser.add_argument("--engine", action="store_true", help="fit through pymlsem.mixed (the engine)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    if args.child:
        result = measure(
            args.child, args.draws, args.tune, args.chains, args.seed, tuple(args.crossed), args.engine
        )
        print(json.dumps(result))
        return
    lines = [f"load before: {uptime()}", "", HEADER]
    results = []
    for name in args.fits:
        result = run_child(name, args)
        results.append(result)
        lines.append(row(result))
        print(lines[-1], flush=True)
    lines += ["", f"load after: {uptime()}"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        out = Path(args.out)
        out.write_text(json.dumps(results, indent=2) if out.suffix == ".json" else text + "\n")


if __name__ == "__main__":
    main()
