"""Benchmark: the seed two-level SEM on Demo.twolevel, 4 chains x 1000 draws (1000 tuning steps).

For each sampler, one fresh Python process measures the whole job (import, build, compile, sample,
summary) and, in the same process, a refit of the same model on new data (the compiled model reused
where the sampler allows it). Prints a Markdown table for benchmarks/README.md.

Run:  .venv/bin/python benchmarks/bench_seed.py [sampler ...]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

SAMPLERS = ("nutpie", "pymc", "numpyro", "blackjax")

CHILD = r"""
import json, sys, time, warnings
start = time.perf_counter()
import pymlsem
from pymlsem.datasets import load_dataset
warnings.simplefilter("ignore")
imported = time.perf_counter() - start
MODEL = "level: 1\n fw =~ y1+y2+y3\n fw ~ x1+x2+x3\nlevel: 2\n fb =~ y1+y2+y3\n fb ~ w1+w2"
sampler = sys.argv[1]
data = load_dataset("Demo.twolevel")
fit = pymlsem.sem(MODEL, data, cluster="cluster", sampler=sampler, random_seed=1, progressbar=False,
                  draws=1000, tune=1000, chains=4)
fit.summary()
whole = time.perf_counter() - start
est = fit.parameter_estimates()
free = est[est.free & (est.op != ":=")]
refit_start = time.perf_counter()
new = data.assign(y1=data.y1 + 0.5)
refit = pymlsem.sem(MODEL, new, cluster="cluster", sampler=sampler, random_seed=2, progressbar=False,
                    draws=1000, tune=1000, chains=4)
refit.summary()
refit_seconds = time.perf_counter() - refit_start
print(json.dumps({
    "import": imported, "whole": whole, "build": fit.timings.build, "compile": fit.timings.compile,
    "sampling": fit.timings.sampling, "min_ess_bulk": float(free.ess_bulk.min()),
    "max_r_hat": float(free.r_hat.max()), "divergences": fit.divergences(),
    "refit": refit_seconds, "refit_reused": refit.timings.reused_compiled,
    "refit_sampling": refit.timings.sampling,
}))
"""


def run(sampler: str) -> dict:
    """Run one sampler in a fresh process and return its measurements (or the error)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, sampler], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process"] = time.perf_counter() - start
    return result


def main(samplers: tuple[str, ...]) -> None:
    """Print one Markdown row per sampler."""
    print(
        "| sampler | whole process (s) | compile (s) | sampling (s) | min bulk ESS | max R-hat | "
        "divergences | min ESS/s of sampling | refit, same process (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for sampler in samplers:
        r = run(sampler)
        if "error" in r:
            print(f"| {sampler} | failed: {r['error'][:80]} | | | | | | | |")
            continue
        print(
            f"| {sampler} | {r['process']:.1f} | {r['compile']:.1f} | {r['sampling']:.1f} | "
            f"{r['min_ess_bulk']:.0f} | {r['max_r_hat']:.3f} | {r['divergences']} | "
            f"{r['min_ess_bulk'] / r['sampling']:.0f} | {r['refit']:.1f}"
            f"{' (compiled model reused)' if r['refit_reused'] else ''} |",
            flush=True,
        )


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or SAMPLERS)
