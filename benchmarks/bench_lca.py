"""Latent class models: pymlsem's whole fit against flexmix's EM (R) on the same data, in fresh processes.

    .venv/bin/python benchmarks/bench_lca.py [REPEATS]

Data: ``pymlsem.datasets.designs.multilevel_latent_classes(seed=2026)`` (1,500 persons in 100 clusters, four
binary items and one with three categories), as tests/data/reference/flexmix/lca_binary_data.csv holds its
binary items. Rows:

* ``single-level, 4 binary items, K=2``: ``pymlsem.lca`` (nutpie, 4 x 1000 draws + 1000 tuning, the
  compiled ``lca`` family) against flexmix's EM with 20 random starts (tests/data/reference/flexmix/
  lca_binary.R, the reference of the test suite), both whole processes (``Rscript``, ``python -c``);
* ``multilevel, 5 items, K=2, M=2``: pymlsem only (multilevLCA, the peer, is not a Debian package), through
  the engine and through the model's own graph (``own graph``: the per-model PyMC graph compiled by nutpie
  in that process; numba's and PyTensor's disk caches as earlier runs left them), whose draws are relabelled
  as ``pymlsem.lca`` does before ESS and R-hat.

Prints one line per run: wall seconds of the whole process and, for pymlsem, the fit's load/compile and
sampling seconds, min bulk ESS and max R-hat.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "reference" / "flexmix"

PYMLSEM = """
import sys, time
import arviz_stats, numpy as np, pymlsem
from pymlsem.datasets.designs import multilevel_latent_classes
from pymlsem.latent_class.data import lca_data
from pymlsem.latent_class.fit import relabelled_posterior
from pymlsem.latent_class.model import LCAStructure, build_lca_model
from pymlsem.sample import sample_model
design = multilevel_latent_classes(seed=2026)
kind = sys.argv[1]
start = time.perf_counter()
if kind == "single":
    fit = pymlsem.lca(design.data, ["y1", "y2", "y3", "y4"], 2, random_seed=1, progressbar=False)
    timing, idata = (fit.compile_seconds, fit.sampling_seconds), fit.idata
elif kind == "multilevel":
    fit = pymlsem.lca(design.data, list(design.items), 2, cluster="cluster", n_cluster_classes=2,
                      random_seed=1, progressbar=False)
    timing, idata = (fit.compile_seconds, fit.sampling_seconds), fit.idata
else:  # the own graph
    data = lca_data(design.data, list(design.items), "cluster")
    structure = LCAStructure(2, 2, True)
    result = sample_model(build_lca_model(data, structure), random_seed=1, progressbar=False)
    timing, idata = (result.compile_seconds, result.sampling_seconds), result.idata
    pivot = int(idata.sample_stats["logp"].values.argmax())
    idata["posterior"] = relabelled_posterior(idata.posterior.to_dataset(), data, structure, pivot)[0]
whole = time.perf_counter() - start
posterior = idata.posterior
ess = min(float(v.min()) for v in arviz_stats.ess(posterior).data_vars.values())
rhat = max(float(v.max()) for v in arviz_stats.rhat(posterior).data_vars.values())
print(f"fit {whole:.1f} load/compile {timing[0]:.1f} sampling {timing[1]:.1f} "
      f"min_ess {ess:.0f} max_rhat {rhat:.3f}")
"""


def run(command: list[str], cwd: Path = ROOT) -> tuple[float, str]:
    """Wall seconds of a whole process, and its last line of output."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)
    lines = (done.stdout + done.stderr).strip().splitlines()
    return time.perf_counter() - start, lines[-1] if lines else ""


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    python = [sys.executable, "-c", PYMLSEM]
    for _ in range(repeats):
        seconds, line = run([*python, "single"])
        r_seconds, r_line = run(["Rscript", "lca_binary.R"], cwd=REFERENCE)
        print(
            f"single-level  pymlsem {seconds:.1f} s ({line})  flexmix {r_seconds:.1f} s ({r_line})"
            f"  ratio {seconds / r_seconds:.2f}",
            flush=True,
        )
    for _ in range(repeats):
        for kind in ("multilevel", "own"):
            seconds, line = run([*python, kind])
            print(f"multilevel {kind:10s} {seconds:.1f} s ({line})", flush=True)


if __name__ == "__main__":
    main()
