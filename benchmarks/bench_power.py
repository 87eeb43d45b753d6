"""Power simulation: 200 replicates serially vs on a 2-worker Dask LocalCluster (issue 13).

The book's chapter 12 design (y ~ x1 + (1 | cluster), x1 = 1..20 in 25 clusters, fixed effects 1 and 0.1,
intercept variance 0.25, sigma 1), 2 chains x 300 draws per replicate. Prints both wall times, their ratio
and whether the two tables are identical (they must be: every replicate has its own spawned seed).

    .venv/bin/python benchmarks/bench_power.py
"""

import time
import warnings

import numpy as np
import pandas as pd
from distributed import Client, LocalCluster

import pymlsem

if __name__ == "__main__":
    warnings.simplefilter("ignore")
    design = pd.DataFrame(
        {"x1": np.tile(np.arange(1, 21), 25), "cluster": np.repeat(np.arange(25), 20).astype(str)}
    )
    arguments = {
        "fixef": {"(Intercept)": 1.0, "x1": 0.1},
        "varcorr": {"cluster": 0.25},
        "sigma": 1.0,
        "term": "x1",
        "nsim": 200,
        "random_seed": 5,
        "draws": 300,
        "tune": 300,
        "chains": 2,
    }
    start = time.perf_counter()
    serial = pymlsem.power_sim("y ~ x1 + (1 | cluster)", design, **arguments)
    serial_seconds = time.perf_counter() - start
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        start = time.perf_counter()
        parallel = pymlsem.power_sim("y ~ x1 + (1 | cluster)", design, client=client, **arguments)
        dask_seconds = time.perf_counter() - start
    identical = serial.table.equals(parallel.table)
    print(
        f"{serial}; serial {serial_seconds:.1f} s, Dask (2 workers) {dask_seconds:.1f} s, "
        f"ratio {serial_seconds / dask_seconds:.2f}; identical tables: {identical}"
    )
