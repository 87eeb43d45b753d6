"""Benchmark: the seed model fitted on 1,000,000 rows in 50,000 clusters of varying sizes (4 chains x 1000).

The data are Demo.twolevel's clusters resampled as in ``benchmarks/bench_data_prep.py`` (sizes 5 to 35). One
fresh process times data preparation (``pymlsem.SEM``), the engine's compile (load) and sampling, the whole
fit, and reports the peak resident memory. The engine families must be compiled (``python -m pymlsem
warmup``). Nothing is asserted.

Run:  .venv/bin/python benchmarks/bench_scale.py [n_clusters]
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data_prep import resampled_clusters

import pymlsem

SEED = "level: 1\n fw =~ y1+y2+y3\n fw ~ x1+x2+x3\nlevel: 2\n fb =~ y1+y2+y3\n fb ~ w1+w2"


def main() -> None:
    n_clusters = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    base = pd.read_csv(Path(__file__).resolve().parent.parent / "tests/data/reference/data/Demo.twolevel.csv")
    data = resampled_clusters(base, "cluster", n_clusters, seed=1)
    start = time.perf_counter()
    spec = pymlsem.SEM(SEED, data, cluster="cluster")
    prepared = time.perf_counter() - start
    fit = spec.fit(random_seed=1, progressbar=False)
    whole = time.perf_counter() - start
    est = fit.parameter_estimates()
    free = est[est.free]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{len(data):,} rows, {n_clusters:,} clusters ({spec.stats.group_sizes.size} distinct sizes): "
        f"data preparation {prepared:.1f} s, compile {fit.timings.compile:.2f} s, sampling "
        f"{fit.timings.sampling:.1f} s, whole fit {whole:.1f} s; min bulk ESS {free.ess_bulk.min():.0f}, "
        f"max R-hat {free.r_hat.max():.3f}; peak resident memory {peak:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
