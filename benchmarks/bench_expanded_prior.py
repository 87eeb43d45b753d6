"""Benchmark: divergences and agreement with MCMCglmm under the book's parameter-expanded G prior.

Fits ``geread ~ gevocab + (1 + gevocab | school)`` (reading_public) with the prior of
``tests/data/reference/mcmcglmm/reading_random_slope.R`` (``R = list(V = 1, nu = 0.002)``, ``G1 = list(V =
diag(2), nu = 2, alpha.mu = c(0, 0), alpha.V = diag(2) * 1000)``) once per seed, 4 chains x 1000 draws + 1000
tuning (the defaults), in one process on a machine whose engine families are compiled. Prints per seed the
divergent transitions, the seconds of the fit, the minimum bulk ESS and the posterior means of the fixed
effects, the G entries and the residual variance minus MCMCglmm's, in MCMCglmm's posterior SDs; then the
divergences of all seeds and the largest such difference.

Run:  .venv/bin/python benchmarks/bench_expanded_prior.py [N_SEEDS] [TARGET_ACCEPT]   (default 40, 0.8)
"""

from __future__ import annotations

import sys
import time

import arviz as az
import numpy as np
import pandas as pd
from fresh_process import ROOT, uptime

import pymlsem

REFERENCE = ROOT / "tests" / "data" / "reference"
PRIOR = {
    "R": {"V": 1, "nu": 0.002},
    "G": {"G1": {"V": np.eye(2), "nu": 2, "alpha.mu": [0, 0], "alpha.V": np.eye(2) * 1000}},
}
#: MCMCglmm's names of the fixed effects, the G entries and the residual variance
NAMES = [
    "(Intercept)",
    "gevocab",
    "(Intercept):(Intercept).school",
    "gevocab:(Intercept).school",
    "gevocab:gevocab.school",
    "units",
]


def posterior_means(fit) -> np.ndarray:
    """The posterior means of MCMCglmm's :data:`NAMES` from a fit's draws."""
    posterior = fit.idata.posterior
    sd, corr = posterior["sd__school"].values, posterior["corr__school"].values[..., 0, 1]
    fixef = posterior["fixef"].values
    draws = [
        fixef[..., 0],
        fixef[..., 1],
        sd[..., 0] ** 2,
        corr * sd[..., 0] * sd[..., 1],
        sd[..., 1] ** 2,
        posterior["sigma"].values ** 2,
    ]
    return np.array([d.mean() for d in draws])


def main(n_seeds: int, target_accept: float) -> None:
    reading = pd.read_csv(REFERENCE / "data" / "reading_public.csv")
    reference = pd.read_csv(REFERENCE / "mcmcglmm" / "reading_random_slope_posterior.csv").set_index("name")
    reference = reference.loc[NAMES]
    print(f"load before: {uptime()}")
    divergences, largest = [], 0.0
    for seed in range(1, n_seeds + 1):
        start = time.perf_counter()
        fit = pymlsem.mixed(
            "geread ~ gevocab + (1 + gevocab | school)",
            reading,
            prior=PRIOR,
            random_seed=seed,
            target_accept=target_accept,
            progressbar=False,
        )
        seconds = time.perf_counter() - start
        z = (posterior_means(fit) - reference["mean"].to_numpy()) / reference["sd"].to_numpy()
        ess = az.ess(fit.idata.posterior.to_dataset()[["fixef", "sd__school", "sigma"]])
        ess = min(float(ess[name].min()) for name in ess.data_vars)
        divergences.append(int(fit.idata.sample_stats.diverging.sum()))
        largest = max(largest, float(np.abs(z).max()))
        print(f"seed {seed}: divergent {divergences[-1]}, {seconds:.1f} s, min ESS {ess:.0f}, z {z.round(3)}")
    print(f"divergent per seed: {divergences} (total {sum(divergences)} in {n_seeds} fits)")
    print(f"largest |mean - MCMCglmm's| / MCMCglmm's posterior SD: {largest:.3f}")
    print(f"load after: {uptime()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40, float(sys.argv[2]) if len(sys.argv) > 2 else 0.8)
