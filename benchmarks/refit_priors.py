"""Benchmark: first fit of the seed model against refits with other priors (4 chains x 1000 draws).

The first fit builds the PyMC model, compiles it with nutpie and samples. A refit with other prior arguments
(``fit.refit(priors=...)``) rebuilds only the PyMC graph, finds the compiled model in the cache and swaps the
prior ``pm.Data`` in, so it costs about one sampling run. Each refit here changes a different prior: one
loading's prior, then the prior of every loading (class ``lambda``) and the residual SDs' (``theta``).

Run:  .venv/bin/python benchmarks/refit_priors.py
Prints a Markdown table (seconds, wall clock); nothing is asserted.
"""

from __future__ import annotations

import time
import warnings

import pymlsem
from pymlsem.datasets import load_dataset

MODEL = "level: 1\n fw =~ y1+y2+y3\n fw ~ x1+x2+x3\nlevel: 2\n fb =~ y1+y2+y3\n fb ~ w1+w2"
SAMPLING = {"draws": 1000, "tune": 1000, "chains": 4, "progressbar": False}
REFITS = {
    "refit: fw=~y2 ~ normal(1,0.5)": {"fw=~y2@within": "normal(1,0.5)"},
    "refit: lambda ~ normal(0,1), theta ~ gamma(2,2)[sd]": {
        "lambda": "normal(0,1)",
        "theta": "gamma(2,2)[sd]",
    },
}


def row(name: str, seconds: float, fit) -> str:
    """One line of the table."""
    t = fit.timings
    estimates = fit.parameter_estimates()
    free = estimates[estimates.free]
    return (
        f"| {name} | {seconds:.1f} | {t.build:.2f} | {t.compile:.2f} | {t.sampling:.1f} | "
        f"{'yes' if t.reused_compiled else 'no'} | {free.ess_bulk.min():.0f} | {free.r_hat.max():.3f} |"
    )


def main() -> None:
    """Fit, refit, print."""
    warnings.simplefilter("ignore")
    data = load_dataset("Demo.twolevel")
    lines = [
        "| run | wall (s) | build (s) | compile (s) | sampling (s) | compiled model reused | min bulk ESS "
        "| max R-hat |",
        "|---|---|---|---|---|---|---|---|",
    ]
    start = time.perf_counter()
    fit = pymlsem.sem(MODEL, data, cluster="cluster", random_seed=1, **SAMPLING)
    first = time.perf_counter() - start
    lines.append(row("first fit (build + compile + sample)", first, fit))
    for k, (name, priors) in enumerate(REFITS.items()):
        start = time.perf_counter()
        new = fit.refit(priors, random_seed=2 + k)
        lines.append(row(name, time.perf_counter() - start, new))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
