"""Benchmark: data preparation of two-level SEMs and mixed models at 2,500 to 1,000,000 rows (no sampling).

Each case builds the model specification only: ``pymlsem.SEM(model, data, cluster="cluster")`` (data checks,
filled-in data for start values, sufficient statistics, the PyMC model) plus what a fit reads before it
samples (``spec.data_values()``, ``spec.structure_key()``, the engine's binding where there is one), or
``pymlsem.mixed_model(formula, data)`` (design matrices, cross products, the PyMC model). Nothing is
compiled or sampled.

Data: clusters of Demo.twolevel (the seed model's data) or of reading_public (the mixed model's) drawn with
replacement, each given a new id and a size drawn uniformly from 5 to 35, its rows drawn with replacement
from the source cluster (so between-level variables stay constant within a cluster); 20 rows per cluster on
average, so 125 / 3,125 / 50,000 clusters give about 2,500 / 62,500 / 1,000,000 rows. ``seed-missing``
additionally blanks 10% of y1, y2 and y3 at random (the full-information statistics of
:mod:`pymlsem.data.missing_stats`).

Cases: ``seed`` (the seed model, ``tests/reference.py`` ``SEED``, complete data), ``seed-missing`` and
``mixed`` (``geread ~ gevocab + (1 + gevocab | school)``). Every (case, size) runs in a fresh Python
process, so its peak resident memory (``resource.getrusage``) is its own; the table also gives the resident
memory after the data were generated (before the build), so the difference is what the build added at its
peak.

Run:  .venv/bin/python benchmarks/bench_data_prep.py [--cases seed mixed] [--clusters 125 3125 50000]
      [--seed 1] [--timeout 1800] [--pythonpath DIR]
``--pythonpath`` puts another copy of the library first on the children's path (e.g. an older commit
unpacked with ``git archive <commit> pymlsem | tar -x -C DIR``) to time it on the same data.
Prints a Markdown table. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READING = ROOT / "tests" / "data" / "reference" / "data" / "reading_public.csv"
CASES = ("seed", "seed-missing", "mixed")
CLUSTERS = (125, 3125, 50000)
MIXED_FORMULA = "geread ~ gevocab + (1 + gevocab | school)"


def resampled_clusters(base, cluster: str, n_clusters: int, seed: int, sizes=(5, 35)):
    """``n_clusters`` clusters drawn from ``base``'s, with new ids and sizes drawn from ``sizes`` (inclusive).

    Parameters
    ----------
    base
        The data frame whose clusters are resampled.
    cluster
        Its cluster column.
    n_clusters
        Number of clusters of the new data.
    seed
        Seed of the random draws.
    sizes
        Smallest and largest cluster size.

    Returns
    -------
    pandas.DataFrame
        Rows of each new cluster drawn with replacement from one of ``base``'s clusters; cluster ids
        1000, 1001, ...
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    members = [np.asarray(rows) for rows in base.groupby(cluster).indices.values()]
    source = rng.integers(0, len(members), n_clusters)
    size = rng.integers(sizes[0], sizes[1] + 1, n_clusters)
    # the k-th row of a new cluster is a uniform draw among its source cluster's rows
    lengths = np.array([m.size for m in members])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    flat = np.concatenate(members)
    source_of_row = np.repeat(source, size)
    picks = (rng.random(source_of_row.size) * lengths[source_of_row]).astype(np.int64)
    out = base.iloc[flat[starts[source_of_row] + picks]].reset_index(drop=True)
    out[cluster] = np.repeat(np.arange(n_clusters) + 1000, size)
    return out


def make_data(case: str, n_clusters: int, seed: int):
    """The data of one case."""
    import numpy as np
    import pandas as pd

    if case == "mixed":
        return resampled_clusters(pd.read_csv(READING), "school", n_clusters, seed)
    from pymlsem.datasets import load_dataset

    data = resampled_clusters(load_dataset("Demo.twolevel"), "cluster", n_clusters, seed)
    if case == "seed-missing":
        rng = np.random.default_rng(seed + 1)
        for name in ("y1", "y2", "y3"):
            data.loc[rng.random(len(data)) < 0.1, name] = np.nan
    return data


def child(case: str, n_clusters: int, seed: int) -> dict:
    """Generate the data and build the model once (in this process); return the measurements."""
    import resource
    import warnings

    warnings.simplefilter("ignore")
    import pymlsem

    data = make_data(case, n_clusters, seed)
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if case == "mixed":
        pymlsem.mixed_model(MIXED_FORMULA, data)
        clusters = data["school"].nunique()
    else:
        sys.path.insert(0, str(ROOT / "tests"))
        from reference import SEED

        spec = pymlsem.SEM(SEED, data, cluster="cluster")
        spec.data_values()
        spec.structure_key()
        try:  # the arrays SEM.fit hands to the compiled engine (not in older versions)
            from pymlsem.engine.run import engine_binding
        except ImportError:
            pass
        else:
            engine_binding(spec)
        clusters = spec.n_clusters
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = len(data)
    return {"rows": rows, "clusters": int(clusters), "seconds": seconds, "rss_data": rss_data, "peak": peak}


def run(case: str, n_clusters: int, seed: int, timeout: float, pythonpath: str | None) -> dict:
    """Run one case in a fresh process; ``{"error": ...}`` when it fails or runs out of time."""
    env = dict(os.environ)
    paths = [p for p in (pythonpath, str(ROOT), env.get("PYTHONPATH")) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", case, str(n_clusters), str(seed)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"> {timeout:.0f} s (stopped)"}
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Parse the options and print one Markdown row per case and size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--clusters", nargs="+", type=int, default=list(CLUSTERS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--pythonpath", default=None)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case, n_clusters, seed = args.child
        print(json.dumps(child(case, int(n_clusters), int(seed))))
        return
    print("| case | rows | clusters | build (s) | RSS after data (MiB) | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|")
    for case in args.cases:
        for n_clusters in args.clusters:
            r = run(case, n_clusters, args.seed, args.timeout, args.pythonpath)
            if "error" in r:
                print(f"| {case} | | {n_clusters:,} | {r['error'][:100]} | | |", flush=True)
                continue
            print(
                f"| {case} | {r['rows']:,} | {r['clusters']:,} | {r['seconds']:.2f} | {r['rss_data']:.0f} | "
                f"{r['peak']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
