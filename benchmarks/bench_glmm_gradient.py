"""One gradient of the GLMM kernel, timed inside numba (no Python call overhead), on two models of 3,000 rows.

- a Bernoulli GLMM with a correlated random slope, ``y ~ x + (1 + x | cluster)`` on
  :func:`bench_mixed_bambi.binary_data` (150 clusters of 20): the ``glmm_binomial_logit`` family;
- a Gaussian model with two crossed factors whose effects are sampled, ``y ~ 1 + (1 | a) + (1 | b)`` with
  300 x 200 levels (simulated here): the ``glmm_gaussian`` family.

Each model's log-density and gradient at one random point, 2,000 evaluations in a numba loop, best and
median of seven repeats. Compare two versions of ``pymlsem/engine/kernels/glmm.py`` by running this once
with each (the first run of a version compiles its kernel in the process: ~30-60 s).

Run: ``.venv/bin/python benchmarks/bench_glmm_gradient.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numba
import numpy as np
import pandas as pd

import pymlsem
from pymlsem.engine.glmm import family_inputs
from pymlsem.engine.kernels import callable_from_python
from pymlsem.engine.kernels import glmm as kernel
from pymlsem.engine.run import engine_binding

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mixed_bambi import binary_data


def crossed_data(seed: int = 1, n_rows: int = 3000) -> pd.DataFrame:
    """Gaussian rows with two crossed factors of 300 and 200 levels (SDs 0.5 and 0.7, residual SD 1)."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 300, n_rows), rng.integers(0, 200, n_rows)
    y = 1.0 + rng.normal(0, 0.5, 300)[a] + rng.normal(0, 0.7, 200)[b] + rng.standard_normal(n_rows)
    return pd.DataFrame({"y": y, "a": a.astype(str), "b": b.astype(str)})


#: the kernel as Python calls it (its functions are compiled for calls from compiled code only)
_logp_grad = callable_from_python(kernel.logp_grad)


@numba.njit
def _evaluations(n, point, inputs):
    total = 0.0
    for _ in range(n):
        total += kernel.logp_grad(point, *inputs)[0]
    return total


def main() -> None:
    models = {
        "y ~ x + (1 + x | cluster), bernoulli": (
            "y ~ x + (1 + x | cluster)",
            binary_data(),
            {"family": "bernoulli"},
        ),
        "y ~ 1 + (1 | a) + (1 | b), gaussian, latent": (
            "y ~ 1 + (1 | a) + (1 | b)",
            crossed_data(),
            {"method": "latent"},
        ),
    }
    print("| model | family | dimensions | best (us) | median (us) | log-density |")
    print("|---|---|---|---|---|---|")
    for label, (formula, data, kwargs) in models.items():
        binding, why = engine_binding(pymlsem.MixedModel(formula, data, **kwargs).built)
        if binding is None:
            raise SystemExit(f"{label}: not an engine model ({why})")
        inputs = tuple(binding.data[name] for name, _, _ in family_inputs(binding.family))
        point = np.random.default_rng(0).normal(0.0, 0.3, binding.n_dim)
        _evaluations(1, point, inputs)
        times = []
        for _ in range(7):
            start = time.perf_counter()
            _evaluations(2000, point, inputs)
            times.append((time.perf_counter() - start) / 2000 * 1e6)
        logp = _logp_grad(point, *inputs)[0]
        print(
            f"| `{label}` | {binding.family} | {binding.n_dim} | {min(times):.1f} | {np.median(times):.1f} |"
            f" {logp:.10f} |"
        )


if __name__ == "__main__":
    main()
