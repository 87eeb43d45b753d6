"""Simulation-based calibration of the seed two-level SEM and of a binomial GLMM (issue 13).

Each study draws 100 parameter sets from the model's prior, a data set from each over the real design
(Demo.twolevel's 2,500 rows in 200 clusters and covariates; for the GLMM, 40 clusters of 8 rows with a
standard normal predictor), fits every replicate by NUTS (4 chains x 1000 draws + 1000 tuning, the defaults)
and ranks each prior draw among 99 posterior draws. The replicates run on a 2-worker Dask LocalCluster.
Prints the chi-squared test of uniform ranks per parameter (10 bins) and the replicates' convergence, and
writes the ranks and the fits' diagnostics to benchmarks/results/ (read by docs/examples/calibration.md).

    .venv/bin/python benchmarks/bench_sbc.py [seed|glmm]
"""

import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from distributed import Client, LocalCluster

from pymlsem.datasets import load_dataset
from pymlsem.studies import sbc, sem_sbc

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "tests"))
from reference import SEED  # noqa: E402  (the seed model the tests use)

GLMM = "yb ~ x1 + (1 + x1 | g)"
#: weakly informative priors on the link scale (the intercept's on the data scale, as sbc requires)
GLMM_PRIORS = {"fixef:(Intercept)": "normal(0, 1)", "fixef": "normal(0, 1)", "sd": "halfnormal(1)"}


def _glmm_design() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    design = pd.DataFrame({"x1": rng.standard_normal(320), "g": np.repeat(np.arange(40), 8).astype(str)})
    design["yb"] = rng.integers(0, 2, 320)  # replaced in every replicate
    return design


def _report(name: str, calibration, seconds: float) -> None:
    uniformity = calibration.uniformity(bins=10)
    fits = calibration.fits
    print(f"\n## {name}: {len(fits)} replicates in {seconds:.0f} s")
    print(uniformity.round(3).to_markdown())
    print(
        f"replicates with R-hat > 1.01: {int((fits['max_r_hat'] > 1.01).sum())}; with divergences: "
        f"{int((fits['divergences'] > 0).sum())}; min bulk ESS {fits['min_ess_bulk'].min():.0f}; smallest "
        f"Bonferroni p {uniformity['p_bonferroni'].min():.3f}"
    )
    RESULTS.mkdir(exist_ok=True)
    calibration.ranks.to_csv(RESULTS / f"sbc_{name}_ranks.csv", index=False)
    fits.to_csv(RESULTS / f"sbc_{name}_fits.csv", index=False)


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    parts = sys.argv[1:] or ["seed", "glmm"]
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        if "seed" in parts:
            start = time.perf_counter()
            data = load_dataset("Demo.twolevel")
            result = sem_sbc(SEED, data, cluster="cluster", nsim=100, client=client, random_seed=1)
            _report("seed", result, time.perf_counter() - start)
        if "glmm" in parts:
            start = time.perf_counter()
            result = sbc(
                GLMM, _glmm_design(), "bernoulli", priors=GLMM_PRIORS, nsim=100, client=client, random_seed=1
            )
            _report("glmm", result, time.perf_counter() - start)
    print("load after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
