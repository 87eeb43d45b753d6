"""Compile and sampling time of the seed two-level model with nutpie (numba backend).

Each measurement runs in a fresh Python process (so imports and numba's in-memory state are cold):

* ``cold``: empty numba and PyTensor caches (a temporary ``NUMBA_CACHE_DIR`` and PyTensor
  ``base_compiledir``), i.e. the very first fit on a machine;
* ``warm``: a second process on the same caches, i.e. a later fit of the same model.

Usage::

    .venv/bin/python benchmarks/compile_time.py                # pymlsem's compiler, cold and warm
    .venv/bin/python benchmarks/compile_time.py --compiler nutpie --modes warm --cache-dir ~/.pytensor

``--compiler nutpie`` uses ``nutpie.compile_pymc_model`` (the previous behaviour) for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

MODEL = "level: 1\n fw =~ y1+y2+y3\n fw ~ x1+x2+x3\nlevel: 2\n fb =~ y1+y2+y3\n fb ~ w1+w2"
FREE = ["loadings", "regressions", "residual_sds", "latent_sds", "intercepts"]


def child(compiler: str, draws: int, chains: int) -> dict:
    """Import, build, compile and sample once; return the timings (seconds) and the minimum bulk ESS."""
    start = time.perf_counter()
    import arviz as az
    import nutpie

    import pymlsem
    from pymlsem.datasets import load_dataset
    from pymlsem.nutpie_compile import compile_nutpie_model

    timings = {"import": time.perf_counter() - start}
    t = time.perf_counter()
    spec = pymlsem.SEM(MODEL, load_dataset("Demo.twolevel"), cluster="cluster")
    model = spec.pymc_model
    timings["build"] = time.perf_counter() - t
    t = time.perf_counter()
    compiled = compile_nutpie_model(model) if compiler == "pymlsem" else nutpie.compile_pymc_model(model)
    timings["compile"] = time.perf_counter() - t
    t = time.perf_counter()
    idata = nutpie.sample(compiled, draws=draws, tune=draws, chains=chains, seed=1, progress_bar=False)
    timings["sample"] = time.perf_counter() - t
    posterior = idata.posterior
    posterior = getattr(posterior, "dataset", posterior)
    timings["min_ess"] = float(az.ess(posterior[FREE]).to_array().min())
    timings["total"] = time.perf_counter() - start
    return timings


def main() -> None:
    """Run the requested measurements, each in its own process, and print a table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--compiler", choices=("pymlsem", "nutpie"), default="pymlsem")
    parser.add_argument("--modes", default="cold,warm", help="comma-separated: cold, warm")
    parser.add_argument("--cache-dir", default=None, help="cache directory to use (default: a new temp dir)")
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.compiler, args.draws, args.chains)))
        return
    cache = args.cache_dir or tempfile.mkdtemp(prefix="pymlsem-compile-bench-")
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = os.path.join(cache, "numba-cache")
    env["PYTENSOR_FLAGS"] = f"base_compiledir={cache}"
    print(f"compiler={args.compiler} cache={cache}")
    print(f"{'mode':<6}{'import':>8}{'build':>8}{'compile':>9}{'sample':>8}{'total':>8}{'min ESS':>9}")
    for mode in args.modes.split(","):
        command = [sys.executable, __file__, "--child", "--compiler", args.compiler]
        command += ["--draws", str(args.draws), "--chains", str(args.chains)]
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"{mode:<6}{r['import']:8.1f}{r['build']:8.1f}{r['compile']:9.1f}{r['sample']:8.1f}"
            f"{r['total']:8.1f}{r['min_ess']:9.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
