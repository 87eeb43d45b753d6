"""Benchmark: new mixed-model structures through the compiled engine, against lme4 on the same machine.

Every model of the zoo is fitted in its own fresh Python process (import, data, build, compile, sample
4 chains x 1000 draws + 1000 tuning with nutpie, ``fixef()`` and ``varcorr()``), on a machine whose engine
families are compiled already (``python -m pymlsem warmup``): none of these structures was fitted before in
that process, which is what a researcher changing a model does. lme4 fits the same formula by maximum
likelihood (``lmer(REML = FALSE)`` and ``summary``) in its own fresh R process
(``Rscript benchmarks/lme4_fit.R``; ``glmer`` for the GLMMs). The ratio is pymlsem's whole process over
lme4's. Three models take MCMCglmm's prior forms (``PRIORS``; lme4 fits the same formula, without priors).

Prints a Markdown table for benchmarks/README.md and the machine's load (``uptime``) before and after.

Run:  .venv/bin/python benchmarks/bench_mixed_engine.py [NAME_PART]   (needs Rscript with lme4 for the ratios)
      WITHOUT_ENGINE=1 ... : every model compiles its own graph instead (the cost before its family)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fresh_process import ROOT, uptime

#: name -> (formula, data set[, family])
ZOO = {
    "random intercept": ("Reaction ~ Days + (1 | Subject)", "sleepstudy"),
    "correlated slope": ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    "uncorrelated slope": ("Reaction ~ Days + (Days || Subject)", "sleepstudy"),
    "two blocks, one factor": ("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", "sleepstudy"),
    "reading, random intercept": ("geread ~ gevocab + (1 | school)", "reading_public"),
    "reading, correlated slope": ("geread ~ gevocab + (1 + gevocab | school)", "reading_public"),
    "reading, cross-level interaction": (
        "geread ~ gevocab * senroll + (1 + gevocab | school)",
        "reading_public",
    ),
    "reading, intercept only": ("geread ~ 1 + (1 | school)", "reading_public"),
    "reading, school covariate": ("geread ~ gevocab + senroll + (1 | school)", "reading_public"),
    "reading, uncorrelated slope": ("geread ~ gevocab + (gevocab || school)", "reading_public"),
    # a correlated block of three effects (the kernels' LKJ of any size, session 21)
    "Demo.twolevel, three correlated effects": ("y1 ~ x1 + x2 + (1 + x1 + x2 | cluster)", "Demo.twolevel"),
    "cbpp, binomial": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", "binomial"),
    "grouse ticks, Poisson, crossed": (
        "TICKS ~ scale(YEAR) + (1 | BROOD) + (1 | LOCATION)",
        "grouseticks",
        "poisson",
    ),
    # YEAR as it is (95-97): the intercept and the slope are almost collinear on the sampled scale
    "grouse ticks, raw YEAR": ("TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)", "grouseticks", "poisson"),
    "grouse ticks, negative binomial": (
        "TICKS ~ scale(YEAR) + (1 | BROOD) + (1 | LOCATION)",
        "grouseticks",
        "negbinomial",
    ),
    "grouse ticks, negative binomial, height": (
        "TICKS ~ scale(YEAR) + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)",
        "grouseticks",
        "negbinomial",
    ),
    # lme4 has no Student-t family: its peer is lmer's Gaussian fit of the same formula
    "sleepstudy, Student-t": ("Reaction ~ Days + (Days | Subject)", "sleepstudy", "student"),
    # the peer is the ordinal package's clmm
    "wine, ordinal": ("rating ~ temp + contact + (1 | judge)", "wine", "ordinal"),
    "wine, ordinal, interaction": ("rating ~ temp * contact + (1 | judge)", "wine", "ordinal"),
}

#: MCMCglmm-style priors (``prior=``) of some models: the book's weak R and expanded G (issue 12)
BOOK_PRIOR = {"R": {"V": 1, "nu": 0.002}, "G": {"G1": {"V": 1, "nu": 1, "alpha.mu": 0, "alpha.V": 1000}}}
EXPANDED_SLOPE = {
    "R": {"V": 1, "nu": 0.002},
    "G": {"G1": {"V": [[1, 0], [0, 1]], "nu": 2, "alpha.mu": [0, 0], "alpha.V": [[1000, 0], [0, 1000]]}},
}
ZOO["sleepstudy, MCMCglmm R and expanded G"] = ("Reaction ~ Days + (1 | Subject)", "sleepstudy")
ZOO["reading, MCMCglmm R and inverse-Wishart G"] = ("geread ~ gevocab + (1 | school)", "reading_public")
ZOO["reading, MCMCglmm expanded G on a slope"] = (
    "geread ~ gevocab + (1 + gevocab | school)",
    "reading_public",
)
ZOO["sleepstudy, MCMCglmm expanded G on a slope"] = ("Reaction ~ Days + (Days | Subject)", "sleepstudy")
PRIORS = {
    "sleepstudy, MCMCglmm R and expanded G": BOOK_PRIOR,
    "reading, MCMCglmm R and inverse-Wishart G": {
        "R": {"V": 1, "nu": 0.002},
        "G": {"G1": {"V": 1, "nu": 0.002}},
    },
    "reading, MCMCglmm expanded G on a slope": EXPANDED_SLOPE,
    "sleepstudy, MCMCglmm expanded G on a slope": EXPANDED_SLOPE,
}

CHILD = r"""
import json, os, sys, time, warnings
start = time.perf_counter()
import pandas as pd
import pymlsem
import pymlsem.sample
warnings.simplefilter("ignore")
if os.environ.get("WITHOUT_ENGINE"):  # each model compiles its own graph (as before the engine families)
    pymlsem.sample.engine_binding = lambda spec: (None, "benchmark without the engine")
imported = time.perf_counter() - start
name, formula, dataset, family, prior = json.loads(sys.argv[1])
begin = time.perf_counter()
data = pd.read_csv(f"tests/data/reference/data/{dataset}.csv")
fit = pymlsem.mixed(formula, data, family, prior=prior, random_seed=1, progressbar=False, draws=1000,
                    tune=1000, chains=4)
fixef, varcorr = fit.fixef(), fit.varcorr()
print(json.dumps({"import": imported, "fit": time.perf_counter() - begin, "method": fit.method,
                  "divergent": int(fit.idata.sample_stats.diverging.sum()),
                  "min_ess": float(min(fixef.ess_bulk.min(), varcorr.ess_bulk.min())),
                  "max_rhat": float(max(fixef.r_hat.max(), varcorr.r_hat.max())),
                  "fixef": [round(float(v), 4) for v in fixef["mean"]]}))
"""


def _pymlsem(name: str, formula: str, dataset: str, family: str) -> dict:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps([name, formula, dataset, family, PRIORS.get(name)])],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["whole"] = time.perf_counter() - start
    result["engine"] = "compiles as itself" not in done.stderr
    return result


def _lme4(name: str, formula: str, dataset: str, family: str) -> tuple[float, float, str]:
    """Whole R process, lme4's fit + summary, and its fixed effects."""
    with tempfile.TemporaryDirectory() as folder:
        jobs = Path(folder) / "jobs.tsv"
        jobs.write_text(f"{name}\t{formula}\t{dataset}\t{family}\n")
        start = time.perf_counter()
        done = subprocess.run(
            ["Rscript", str(ROOT / "benchmarks" / "lme4_fit.R"), str(jobs)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        whole = time.perf_counter() - start
    _, seconds, fixef = done.stdout.strip().split("\t")
    return whole, float(seconds), fixef


def main(only: str = "") -> None:
    print("load before:", uptime())
    has_r = shutil.which("Rscript") is not None
    print(
        "| model | method | engine | pymlsem whole process (s) | fit (s) | min ESS | max R-hat | divergent "
        "| lme4 whole process (s) | lme4 fit (s) | ratio | fixef pymlsem / lme4 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    ratios = []
    for name, (formula, dataset, *family) in ZOO.items():
        if only not in name:
            continue
        family = family[0] if family else "gaussian"
        ours = _pymlsem(name, formula, dataset, family)
        peer = _lme4(name, formula, dataset, family) if has_r else (float("nan"), float("nan"), "")
        whole, seconds, fixef = peer
        ratio = ours["whole"] / whole
        ratios.append(ratio)
        print(
            f"| {name} (`{formula}`) | {ours['method']} | {'yes' if ours['engine'] else 'no'} "
            f"| {ours['whole']:.1f} | {ours['fit']:.1f} | {ours['min_ess']:.0f} | {ours['max_rhat']:.3f} "
            f"| {ours['divergent']} "
            f"| {whole:.1f} | {seconds:.2f} | {ratio:.1f} | {ours['fixef']} / {fixef} |",
            flush=True,
        )
    print(f"ratio: median {sorted(ratios)[len(ratios) // 2]:.1f}, max {max(ratios):.1f}")
    print("load after:", uptime())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")  # a part of models' names: run only those
