"""Post-fit evaluation through the model's own expressions (issue 10, item 4).

Times, at 4,000 stand-in draws (lavaan's estimates perturbed by 1%; no sampling), in one process:
the PPP of the seed model and of m2 (two-level, saturated model by EM, 2,000 draws), a SEM's per-cluster
(seed) and per-row (HS CFA) log-likelihoods, and a Gaussian mixed model's total and per-cluster marginal
log-likelihoods (one factor with a slope, nested, crossed). "first" includes loading or compiling the
function in this process; run ``python -m pymlsem warmup`` before, as the set-up script does. Run it on
another checkout (``PYTHONPATH=<checkout>``) for a before/after comparison.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bench_postfit.py
"""

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from reference import REFERENCE_FITS, data, lavaan_estimates

import pymlsem
from pymlsem.api import _rows_from_estimates
from pymlsem.workflow.mixed_loglik import gaussian_cluster_loglik, gaussian_total_loglik
from pymlsem.workflow.pointwise import sem_pointwise_loglik
from pymlsem.workflow.ppp import ppp_from_rows

DRAWS = 4000


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - start, value


def sem_draws(name: str, n: int) -> tuple[pymlsem.SEM, np.ndarray]:
    model, dataset, cluster, prefix = REFERENCE_FITS[name]
    spec = pymlsem.SEM(model, data(dataset), cluster=cluster)
    rows = np.asarray(_rows_from_estimates(spec, lavaan_estimates(prefix)), dtype=float)
    rng = np.random.default_rng(1)
    return spec, rows[None, :] * (1 + 0.01 * rng.standard_normal((n, rows.size)))


def nested_data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    school = np.repeat(np.arange(60), 60)
    klass = np.repeat(np.arange(240), 15)
    x = rng.normal(size=school.size)
    y = (
        1
        + 0.5 * x
        + rng.normal(size=60)[school]
        + 0.5 * rng.normal(size=240)[klass]
        + rng.normal(size=x.size)
    )
    item = np.tile(np.arange(30), school.size // 30)
    return pd.DataFrame({"y": y, "x": x, "school": school, "class": klass, "item": item})


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    for name in ("seed", "m2"):
        spec, draws = sem_draws(name, 2000)
        seconds, _ = timed(ppp_from_rows, spec, draws)
        print(f"PPP {name}, 2000 draws: {seconds:.2f} s")
    for name in ("seed", "hs_cfa"):
        spec, draws = sem_draws(name, DRAWS)
        first, point = timed(sem_pointwise_loglik, spec, draws)
        again, _ = timed(sem_pointwise_loglik, spec, draws)
        units = f"{point.unit}, {point.values.shape[1]}"
        print(f"SEM pointwise {name} ({units}): first {first:.2f} s, again {again:.2f} s")
    frame = nested_data()
    rng = np.random.default_rng(2)
    for formula in (
        "y ~ x + (1 + x | school)",
        "y ~ x + (1 | school/class)",
        "y ~ x + (1 | school) + (1 | item)",
    ):
        spec = pymlsem.mixed_model(formula, frame)
        beta = np.array([1.0, 0.5]) + 0.01 * rng.standard_normal((DRAWS, 2))
        sigma = 1 + 0.01 * rng.random(DRAWS)
        covs = [np.tile(np.eye(b.q) * 0.8 + 0.1, (DRAWS, 1, 1)) for b in spec.design.blocks]
        line = f"mixed {formula}: total {timed(gaussian_total_loglik, spec, beta, sigma, covs)[0]:.2f} s"
        if "item" not in formula:
            line += f", per cluster {timed(gaussian_cluster_loglik, spec, beta, sigma, covs)[0]:.2f} s"
        print(line)
