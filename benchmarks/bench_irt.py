"""The book-size two-level IRT model (issue 12): ``pymlsem.irt`` (each student's trait integrated out on a
grid, the ``irt`` engine family) against the explicit-latent SEM builder that sampled every student's trait,
each a whole fresh process.

    .venv/bin/python benchmarks/bench_irt.py [REPEATS] [--latent] [--rasch] [--probit]

Data: ``pymlsem.datasets.designs.two_level_irt(seed=1)``: 95 schools of 10-24 students (1,628), 30 binary
items, trait ICC 0.23. Rows:

* ``irt``: ``pymlsem.irt`` on the data with logistic errors (``link="logit"``, the logistic 2PL model it
  fits), nutpie, 4 chains x 1000 draws + 1000 tuning (its default low-rank mass matrix);
* ``irt diag``: the same with nutpie's diagonal mass matrix (``adaptation="diag"``);
* ``irt probit``: ``pymlsem.irt(link="probit")``, the normal-ogive model, on the data with normal errors
  (``two_level_irt(seed=1)``): the model and data of the ``latent`` row, 4 x 1000;
* ``grm``: the graded response model with a school part (``pymlsem.irt`` on ordinal items) on the data of
  ``two_level_ordinal_cfa(seed=1)`` (100 schools of 15, six items with four categories), 4 x 1000; the
  data were drawn from a two-level ordinal CFA (probit, between loadings and residuals of their own), so
  this is a model of the same size, not the same model;
* ``latent`` (with ``--latent``, once, ~6 minutes): the normal-ogive model in lavaan syntax on the probit data
  through ``pymlsem.sem`` (the explicit-latent builder, every student's trait sampled), 2 chains x 500 draws
  + 500 tuning, as benchmarks/README.md measured it before (4 x 1000 takes ~15 minutes).

mirt, the R peer of these (EM with quadrature), is not a Debian package. With ``--rasch`` the 1PL model has
one: lme4's VerbAgg data (316 persons, 24 binary items), ``pymlsem.irt(discrimination="common")`` at 4 x
1000 (``rasch``) against ``glmer(y ~ 0 + item + (1 | id), family = binomial)`` with 25 adaptive
Gauss-Hermite nodes and with the Laplace approximation (``glmer nAGQ=25``, ``glmer nAGQ=1``;
benchmarks/glmer_rasch.R), each a whole fresh process (``Rscript``).

Prints one line per run: wall seconds of the whole process, the fit's load/compile and sampling seconds,
the mean number of leapfrog steps per draw, min bulk and tail ESS and max R-hat over the sampled
parameters, and divergences.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PYMLSEM = """
import sys, time, warnings
import arviz_stats, numpy as np, pymlsem
from pymlsem.datasets.designs import two_level_irt, two_level_ordinal_cfa
warnings.simplefilter("ignore")
kind = sys.argv[1]
items = [f"y{k}" for k in range(1, 31)]
start = time.perf_counter()
if kind == "irt_probit":
    design = two_level_irt(seed=1)
    fit = pymlsem.irt(design.data, items, "cluster", link="probit", random_seed=1, progressbar=False)
    timing = (fit.compile_seconds, fit.sampling_seconds)
    posterior = fit.idata.posterior.to_dataset()[["discrimination", "intercept", "between_sd", "between_z"]]
elif kind == "rasch":
    import pandas as pd
    wide = pd.read_csv("tests/data/reference/data/VerbAgg_r2_wide.csv")
    fit = pymlsem.irt(wide, list(wide.columns[3:]), discrimination="common", random_seed=1, progressbar=False)
    timing = (fit.compile_seconds, fit.sampling_seconds)
    posterior = fit.idata.posterior.to_dataset()[["discrimination", "intercept"]]
elif kind.startswith("irt"):
    design = two_level_irt(seed=1, link="logit")
    extra = {"adaptation": "diag"} if kind == "irt_diag" else {}
    fit = pymlsem.irt(design.data, items, "cluster", random_seed=1, progressbar=False, **extra)
    timing = (fit.compile_seconds, fit.sampling_seconds)
    posterior = fit.idata.posterior.to_dataset()[["discrimination", "intercept", "between_sd", "between_z"]]
elif kind == "grm":
    design = two_level_ordinal_cfa(seed=1)
    fit = pymlsem.irt(design.data, list(design.ordered), "cluster", random_seed=1, progressbar=False)
    timing = (fit.compile_seconds, fit.sampling_seconds)
    names = ["discrimination", "thresholds_c4", "between_sd", "between_z"]
    posterior = fit.idata.posterior.to_dataset()[names]
else:
    design = two_level_irt(seed=1)
    fit = pymlsem.sem(design.model, design.data, cluster="cluster", ordered=list(design.ordered),
                      chains=2, draws=500, tune=500, random_seed=1, progressbar=False)
    timing = (fit.timings.compile, fit.timings.sampling)
    posterior = None
whole = time.perf_counter() - start
stats = fit.idata.sample_stats
if posterior is None:  # the SEM's free and defined parameters, as its summary gives them
    table = fit.parameter_estimates()
    table = table[table.free]
    bulk, tail, rhat = table.ess_bulk.min(), table.ess_tail.min(), table.r_hat.max()
else:
    bulk = min(float(v.min()) for v in arviz_stats.ess(posterior).data_vars.values())
    tail = min(float(v.min()) for v in arviz_stats.ess(posterior, method="tail").data_vars.values())
    rhat = max(float(v.max()) for v in arviz_stats.rhat(posterior).data_vars.values())
print(f"fit {whole:.1f} load/compile {timing[0]:.1f} sampling {timing[1]:.1f} "
      f"steps {float(stats['n_steps'].mean()):.1f} min_ess_bulk {bulk:.0f} min_ess_tail {tail:.0f} "
      f"max_rhat {rhat:.3f} divergences {int(stats['diverging'].sum())}")
"""


def run(command: list[str]) -> tuple[float, str]:
    """Wall seconds of a whole process, and its last line of output."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    lines = (done.stdout + done.stderr).strip().splitlines()
    return time.perf_counter() - start, lines[-1] if lines else ""


def main() -> None:
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    repeats = int(arguments[0]) if arguments else 2
    for repeat in range(repeats):
        if "--rasch" in sys.argv:
            for nagq in ("25", "1"):
                seconds, line = run(["Rscript", "benchmarks/glmer_rasch.R", nagq])
                print(f"glmer nAGQ={nagq:2s} {seconds:.1f} s ({line})", flush=True)
            seconds, line = run([sys.executable, "-c", PYMLSEM, "rasch"])
            print(f"rasch {seconds:.1f} s ({line})", flush=True)
            continue
        if "--probit" in sys.argv:
            kinds = ["irt_probit"]
        else:
            latent = ["latent"] if "--latent" in sys.argv and repeat == 0 else []
            kinds = ["irt", "irt_diag", "grm", *latent]
        for kind in kinds:
            seconds, line = run([sys.executable, "-c", PYMLSEM, kind])
            print(f"{kind:9s} {seconds:.1f} s ({line})", flush=True)


if __name__ == "__main__":
    main()
