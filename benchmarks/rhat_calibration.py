"""Calibration: the largest R-hat of ideal chains at a given bulk ESS (no model, no sampler).

Issue 12 asks every parameter of a 4 x 1000 fit for bulk ESS >= 400 and R-hat <= 1.01. This script shows
what R-hat ideal chains give at such an ESS: stationary Gaussian AR(1) chains (4 x 1000 draws, started in
their stationary distribution, so nothing is left to converge), with the autocorrelation that gives a chosen
integrated autocorrelation time ``tau`` (bulk ESS ~4000 / tau), and ArviZ's rank-normalised split R-hat of
each. It prints, for one parameter and for the largest of 36 independent ones, the median R-hat and the
share of replicates at or below 1.01.

Usage: ``python benchmarks/rhat_calibration.py [replicates]`` (default 200; ~1 minute on 2 cores).
"""

from __future__ import annotations

import sys

import numpy as np
import xarray as xr
from arviz_stats import ess, rhat

CHAINS, DRAWS = 4, 1000


def ideal_chains(rng: np.random.Generator, tau: float, n_params: int) -> np.ndarray:
    """AR(1) chains (parameters x chains x draws) with integrated autocorrelation time ``tau``."""
    rho = (tau - 1.0) / (tau + 1.0)
    noise = rng.standard_normal((n_params, CHAINS, DRAWS))
    chains = np.empty_like(noise)
    chains[..., 0] = noise[..., 0]
    for t in range(1, DRAWS):
        chains[..., t] = rho * chains[..., t - 1] + np.sqrt(1.0 - rho**2) * noise[..., t]
    return chains


def main() -> None:
    replicates = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rng = np.random.default_rng(2026)
    print(f"{CHAINS} chains x {DRAWS} draws, {replicates} replicates")
    print("| tau | bulk ESS (mean) | parameters | median of the largest R-hat | share <= 1.01 |")
    print("|---|---|---|---|---|")
    for tau in (4.0, 8.0, 10.0):
        for n_params in (1, 36):
            largest, sizes = [], []
            for _ in range(replicates):
                chains = ideal_chains(rng, tau, n_params)
                values = [xr.DataArray(c, dims=("chain", "draw")) for c in chains]
                largest.append(max(float(rhat(v)) for v in values))
                sizes.append(float(ess(values[0])))
            largest = np.asarray(largest)
            print(
                f"| {tau:g} | {np.mean(sizes):.0f} | {n_params} | {np.median(largest):.4f} "
                f"| {np.mean(largest <= 1.01):.2f} |"
            )


if __name__ == "__main__":
    main()
