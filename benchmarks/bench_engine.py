"""Benchmark: new model structures through the compiled engine families, against lavaan on the same machine.

Three measurements, back to back, each pymlsem fit 4 chains x 1000 draws (+1000 tuning) with nutpie:

1. **New structure, fresh process.** Every model of the zoo in its own fresh Python process (import, build,
   compile, sample, summary), on a machine whose engine families are compiled already (``python -m pymlsem
   warmup``): none of these structures was fitted before, which is what a researcher changing a model does.
   lavaan fits the same model in its own fresh R process (``Rscript benchmarks/lavaan_fit.R``). Each pair of
   processes runs three times, alternately; the ratio is of the medians.
2. **The zoo in one process**: all models one after the other; total time and compile time per model,
   against lavaan fitting the same models in one R process.
3. **A fresh machine's first fit**: the seed model (two levels) and the HS CFA (one level), each with empty
   numba and PyTensor caches (temporary folders), so the family is compiled in that process.

Prints Markdown tables for benchmarks/README.md, and the machine's load (``uptime``) before and after.

Run:  .venv/bin/python benchmarks/bench_engine.py [1] [2] [3]   (the parts to run, default all; needs Rscript
      with lavaan for the ratios)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from reference import HS, M2, MEDIATION, POLDEM, SEED  # noqa: E402  (the models the tests use)

#: name -> (model, lavaan function, data set, cluster column or "-")
ZOO = {
    "seed": (SEED, "sem", "Demo.twolevel", "cluster"),
    "seed + y1~~y2": (SEED.replace("x3\n", "x3\n    y1 ~~ y2\n"), "sem", "Demo.twolevel", "cluster"),
    "two within factors": (M2, "sem", "Demo.twolevel", "cluster"),
    "six-indicator CFA": (
        "level: 1\n fw =~ y1+y2+y3+y4+y5+y6\nlevel: 2\n fb =~ y1+y2+y3+y4+y5+y6",
        "sem",
        "Demo.twolevel",
        "cluster",
    ),
    "loadings equal across levels": (
        "level: 1\n fw =~ y1 + a*y2 + b*y3\n fw ~ x1\nlevel: 2\n fb =~ y1 + a*y2 + b*y3\n fb ~ w1",
        "sem",
        "Demo.twolevel",
        "cluster",
    ),
    "two-level path model": (
        "level: 1\n y2 ~ y1 + x1\n y3 ~ y2 + x2\nlevel: 2\n y2 ~ y1 + w1\n y3 ~ y2",
        "sem",
        "Demo.twolevel",
        "cluster",
    ),
    "HS CFA": (HS, "cfa", "HolzingerSwineford1939", "-"),
    "political democracy (labels)": (POLDEM, "sem", "PoliticalDemocracy", "-"),
    "mediation (:=)": (MEDIATION, "sem", "PoliticalDemocracy", "-"),
    "growth": ("i =~ 1*y1 + 1*y2 + 1*y3\n s =~ 0*y1 + 1*y2 + 2*y3", "growth", "Demo.twolevel", "-"),
}

CHILD = r"""
import json, sys, time, warnings
start = time.perf_counter()
import pandas as pd
import pymlsem
warnings.simplefilter("ignore")
imported = time.perf_counter() - start
jobs = json.loads(sys.argv[1])
fitters = {"sem": pymlsem.sem, "cfa": pymlsem.cfa, "growth": pymlsem.growth}
for name, (model, function, dataset, cluster) in jobs.items():
    begin = time.perf_counter()
    data = pd.read_csv(f"tests/data/reference/data/{dataset}.csv")
    fit = fitters[function](model, data, cluster=None if cluster == "-" else cluster, random_seed=1,
                            progressbar=False, draws=1000, tune=1000, chains=4)
    fit.summary()
    est = fit.parameter_estimates()
    free = est[est.free & (est.op != ":=")]
    print(json.dumps({"name": name, "import": imported, "fit": time.perf_counter() - begin,
                      "whole": time.perf_counter() - start, "build": fit.timings.build,
                      "compile": fit.timings.compile, "sampling": fit.timings.sampling,
                      "min_ess_bulk": float(free.ess_bulk.min()), "max_r_hat": float(free.r_hat.max())}),
          flush=True)
"""


def pymlsem_process(jobs: dict, env: dict | None = None) -> tuple[list[dict], float]:
    """Fit ``jobs`` in one fresh Python process; per-model results and the process's wall time."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(jobs)], capture_output=True, text=True, cwd=ROOT, env=env
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")], seconds


def lavaan_process(jobs: dict) -> tuple[dict[str, float], float]:
    """Fit ``jobs`` in one fresh R process; per-model fit seconds and the process's wall time."""
    with tempfile.TemporaryDirectory() as folder:
        lines = []
        for i, (name, (model, function, dataset, cluster)) in enumerate(jobs.items()):
            path = Path(folder) / f"model{i}.lav"
            path.write_text(model)
            lines.append("\t".join([name, function, dataset, cluster, str(path)]))
        table = Path(folder) / "jobs.tsv"
        table.write_text("\n".join(lines) + "\n")
        start = time.perf_counter()
        done = subprocess.run(
            ["Rscript", "benchmarks/lavaan_fit.R", str(table)], capture_output=True, text=True, cwd=ROOT
        )
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    fits = {
        line.split("\t")[0]: float(line.split("\t")[1]) for line in done.stdout.splitlines() if "\t" in line
    }
    return fits, seconds


def load() -> str:
    """The machine's load averages."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(parts: list[str]) -> None:
    has_r = shutil.which("Rscript") is not None
    print(f"load before: {load()}\n")
    if "1" in parts or "2" in parts:
        subprocess.run([sys.executable, "-m", "pymlsem", "warmup"], check=True, cwd=ROOT)
    if "1" in parts:
        new_structures(has_r)
    if "2" in parts:
        zoo_in_one_process(has_r)
    if "3" in parts:
        first_fit(has_r)
    print(f"load after: {load()}")


def new_structures(has_r: bool, repeats: int = 3) -> None:
    """Part 1: every zoo model in a fresh process, the families compiled before; each model's pymlsem and
    lavaan processes run ``repeats`` times, alternately, and the medians of their wall times are compared
    (the range in brackets)."""
    print("## 1. New structure, fresh process (engine families compiled before)\n")
    print(
        f"Each process {repeats} times, pymlsem and lavaan alternately: median (range).\n\n"
        "| model | pymlsem whole process (s) | compile (s) | sampling (s) | min ESS | max R-hat "
        "| lavaan whole process (s) | ratio of medians |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, job in ZOO.items():
        wholes, peers = [], []
        for _ in range(repeats):
            (result,), whole = pymlsem_process({name: job})
            wholes.append(whole)
            peers.append(lavaan_process({name: job})[1] if has_r else float("nan"))
        whole, peer = float(np.median(wholes)), float(np.median(peers))
        print(
            f"| {name} | {whole:.1f} ({min(wholes):.1f}-{max(wholes):.1f}) | {result['compile']:.2f} | "
            f"{result['sampling']:.1f} | {result['min_ess_bulk']:.0f} | {result['max_r_hat']:.3f} | "
            f"{peer:.2f} ({min(peers):.2f}-{max(peers):.2f}) | {whole / peer:.1f} |",
            flush=True,
        )


def zoo_in_one_process(has_r: bool) -> None:
    """Part 2: the zoo one model after the other in one process."""
    print("\n## 2. The zoo in one process\n")
    results, whole = pymlsem_process(ZOO)
    fits, peer_whole = lavaan_process(ZOO) if has_r else ({}, float("nan"))
    print("| model | pymlsem fit (s) | compile (s) | sampling (s) | lavaan fit (s) |")
    print("|---|---|---|---|---|")
    for result in results:
        print(
            f"| {result['name']} | {result['fit']:.1f} | {result['compile']:.2f} | "
            f"{result['sampling']:.1f} | {fits.get(result['name'], float('nan')):.2f} |"
        )
    print(
        f"\nWhole process: pymlsem {whole:.1f} s (import {results[0]['import']:.1f} s), "
        f"lavaan {peer_whole:.1f} s; ratio {whole / peer_whole:.1f}\n"
    )


def first_fit(has_r: bool) -> None:
    """Part 3: the first fit of each family's kind with empty caches."""
    print("## 3. A fresh machine's first fit (empty numba and PyTensor caches)\n")
    for name in ("seed", "HS CFA"):  # the two-level and the single-level family
        with tempfile.TemporaryDirectory() as empty:
            env = {
                **os.environ,
                "NUMBA_CACHE_DIR": f"{empty}/numba",
                "PYTENSOR_FLAGS": f"base_compiledir={empty}/pytensor",
            }
            (result,), whole = pymlsem_process({name: ZOO[name]}, env=env)
        peer = lavaan_process({name: ZOO[name]})[1] if has_r else float("nan")
        print(
            f"{name}: pymlsem whole process {whole:.1f} s (import {result['import']:.1f} s, compile "
            f"{result['compile']:.1f} s, sampling {result['sampling']:.1f} s); lavaan whole process "
            f"{peer:.1f} s; ratio {whole / peer:.1f}\n"
        )


if __name__ == "__main__":
    main(sys.argv[1:] or ["1", "2", "3"])
