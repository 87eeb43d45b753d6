"""Mixed model ``geread ~ gevocab + (1 + gevocab | school)``: pymlsem against bambi, both on nutpie.

Data: ``tests/data/reference/data/reading_public.csv`` (3,209 rows, 80 schools). 4 chains x 1000 draws
(+1000 tuning), seed 1, both through nutpie. Each fit runs in a fresh Python process, so both pay
import, model building and compilation; the whole-fit time is measured inside that process from before
``import pymlsem`` / ``import bambi`` to the finished ``InferenceData``. Sampling time is the time spent
inside ``nutpie.sample`` (wrapped with a timer in the child process after the library is imported, as a
user's script imports it first; both libraries import nutpie when they sample).

- (a) ``pymlsem.mixed(formula, data, random_seed=1, progressbar=False)``: Gaussian marginal likelihood
  (random effects integrated out), correlated random intercept and slope (LKJ). Checked parameters:
  ``fixef``, ``sigma``, ``sd__school`` and the off-diagonal of ``corr__school``. A second fit in the
  same process ("warm") reuses the compiled model.
- (b) ``bambi.Model(formula, data).fit(inference_method="nutpie", random_seed=1)``: bambi's default
  priors, explicit (latent, non-centred) random effects and, unlike lme4 and pymlsem, **independent**
  random intercept and slope (no correlation parameter). Checked parameters: ``Intercept``, ``gevocab``,
  ``sigma``, ``1|school_sigma``, ``gevocab|school_sigma`` (not the 320 per-school effects).

The two models therefore differ (correlation vs none, marginal vs latent, different priors): the
comparison is of the two tools on the same formula, not of samplers on one posterior.

bambi is a benchmark-only dependency, not in ``pyproject.toml``. ``pip install bambi`` (0.21.0) pins
``formulae<0.7`` and would downgrade pymlsem's own ``formulae`` (0.9.0 in the venv) to 0.6.2, so it is
installed beside the venv instead of into it::

    .venv/bin/pip install --no-deps --target /tmp/bambi-site \\
        bambi==0.21.0 formulae==0.6.2 sparse==0.17.0 graphviz==0.21 seaborn==0.13.2

and only the bambi child process gets that folder on ``PYTHONPATH`` (``BAMBI_SITE`` overrides the
folder; set it empty if bambi is importable from the venv itself).

Run: ``.venv/bin/python benchmarks/bench_mixed_bambi.py [--cold] [--binary]``. By default the PyTensor/numba
disk caches are the user's (warm after a first run: what a user sees from the second fit of a model on);
``--cold`` gives each child process its own empty cache folder (what a user sees the very first time).

``--binary`` (issue 12): a Bernoulli GLMM with a correlated random slope instead, ``y ~ x + (1 + x |
cluster)`` on 3,000 rows in 150 clusters of 20 simulated here (:func:`binary_data`: logit link, fixed
effects (-0.5, 0.8), SDs 0.8 and 0.4, correlation 0.3, x standard normal; seed 2026), pymlsem with
``family="bernoulli"`` (random effects sampled, non-centred), bambi with ``family="bernoulli"``, and
``lme4::glmer`` (Laplace) in a fresh R process as the reference for the fixed effects: each library's
posterior means minus glmer's estimates, in glmer's standard errors (needs Rscript with lme4).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "reference" / "data" / "reading_public.csv"
FORMULA = "geread ~ gevocab + (1 + gevocab | school)"
BAMBI_SITE = os.environ.get("BAMBI_SITE", "/tmp/bambi-site")

COMMON = r"""
import json, sys, time
T0 = time.perf_counter()
import numpy as np
SAMPLE_SECONDS = []

def time_sampling():
    # wrap nutpie.sample with a timer, after the library's import (a user's script imports the library
    # first; both libraries import nutpie when they sample)
    import nutpie
    _sample = nutpie.sample
    def _timed_sample(*args, **kwargs):
        start = time.perf_counter()
        try:
            return _sample(*args, **kwargs)
        finally:
            SAMPLE_SECONDS.append(time.perf_counter() - start)
    nutpie.sample = _timed_sample

def diagnostics(idata, names):
    import arviz as az
    post = idata.posterior.to_dataset()[names]
    ess = az.ess(post, method="bulk")
    rhat = az.rhat(post)
    ess_min, rhat_max = np.inf, 0.0
    for name in names:
        e = np.asarray(ess[name]).ravel()
        r = np.asarray(rhat[name]).ravel()
        if name.startswith("corr__"):  # keep the off-diagonal of the correlation matrix
            k = int(round(np.sqrt(e.size)))
            mask = ~np.eye(k, dtype=bool).ravel()
            e, r = e[mask], r[mask]
        ess_min = min(ess_min, float(np.nanmin(e)))
        rhat_max = max(rhat_max, float(np.nanmax(r)))
    div = int(np.asarray(idata.sample_stats["diverging"]).sum())
    return ess_min, rhat_max, div
"""

PYMLSEM = (
    COMMON
    + r"""
import pandas as pd
import pymlsem
time_sampling()
data = pd.read_csv(sys.argv[1])
fit = pymlsem.mixed(sys.argv[2], data, sys.argv[3], random_seed=1, progressbar=False)
whole = time.perf_counter() - T0
names = [n for n in fit.idata.posterior.data_vars
         if n in ("fixef", "sigma") or n.startswith(("sd__", "corr__"))]
ess, rhat, div = diagnostics(fit.idata, names)
means = dict(zip(fit.idata.posterior["term"].values.tolist(),
                 fit.idata.posterior["fixef"].mean(("chain", "draw")).values.tolist()))
out = [dict(label="pymlsem (cold process)", whole=whole, sampling=SAMPLE_SECONDS[-1], ess=ess, rhat=rhat,
            div=div, names=names, means=means)]
t1 = time.perf_counter()
fit2 = pymlsem.mixed(sys.argv[2], data, sys.argv[3], random_seed=2, progressbar=False)
whole2 = time.perf_counter() - t1
ess, rhat, div = diagnostics(fit2.idata, names)
out.append(dict(label="pymlsem (warm, 2nd fit same process)", whole=whole2, sampling=SAMPLE_SECONDS[-1],
                ess=ess, rhat=rhat, div=div, names=names))
print("RESULT" + json.dumps(out))
"""
)

BAMBI = (
    COMMON
    + r"""
import pandas as pd
import bambi as bmb
time_sampling()
data = pd.read_csv(sys.argv[1])
model = bmb.Model(sys.argv[2], data, family=sys.argv[3])
idata = model.fit(draws=1000, tune=1000, chains=4, inference_method="nutpie", random_seed=1,
                  progressbar=False)
whole = time.perf_counter() - T0
fixed = [n for n in idata.posterior.data_vars if n in ("Intercept", "gevocab", "x")]
names = fixed + [n for n in idata.posterior.data_vars if n == "sigma" or n.endswith("_sigma")]
ess, rhat, div = diagnostics(idata, names)
means = {("(Intercept)" if n == "Intercept" else n): float(idata.posterior[n].mean()) for n in fixed}
print("RESULT" + json.dumps([dict(label="bambi " + bmb.__version__ + " (cold process)", whole=whole,
                                  sampling=SAMPLE_SECONDS[-1], ess=ess, rhat=rhat, div=div, names=names,
                                  means=means)]))
"""
)


#: the binary GLMM of ``--binary``
BINARY_FORMULA = "y ~ x + (1 + x | cluster)"
GLMER = r"""
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
data <- read.csv(args[1])
start <- proc.time()[["elapsed"]]
fit <- glmer(as.formula(args[2]), data = data, family = binomial)
invisible(capture.output(summary(fit)))
seconds <- proc.time()[["elapsed"]] - start
cat(seconds, paste(fixef(fit), collapse = ","), paste(sqrt(diag(vcov(fit))), collapse = ","), "\n")
"""


def binary_data(seed: int = 2026, clusters: int = 150, size: int = 20) -> pd.DataFrame:
    """3,000 Bernoulli responses in 150 clusters: ``logit p = (-0.5 + u0) + (0.8 + u1) x`` with ``(u0, u1)``
    normal, SDs 0.8 and 0.4, correlation 0.3, and ``x`` standard normal."""
    rng = np.random.default_rng(seed)
    sd, corr = np.array([0.8, 0.4]), 0.3
    cov = np.outer(sd, sd) * np.array([[1.0, corr], [corr, 1.0]])
    effects = rng.multivariate_normal(np.zeros(2), cov, size=clusters)
    cluster = np.repeat(np.arange(clusters), size)
    x = rng.standard_normal(cluster.size)
    eta = (-0.5 + effects[cluster, 0]) + (0.8 + effects[cluster, 1]) * x
    y = rng.binomial(1, 1.0 / (1.0 + np.exp(-eta)))
    return pd.DataFrame({"y": y, "x": x, "cluster": [f"c{c}" for c in cluster]})


def glmer_fit(path: Path, formula: str) -> dict:
    """lme4::glmer in a fresh R process: its whole process, the fit's seconds, estimates and SEs."""
    start = time.perf_counter()
    proc = subprocess.run(
        ["Rscript", "-e", GLMER, str(path), formula], capture_output=True, text=True, cwd=ROOT, check=True
    )
    seconds, estimates, errors = proc.stdout.split()
    return {
        "process": time.perf_counter() - start,
        "fit": float(seconds),
        "estimates": [float(v) for v in estimates.split(",")],
        "se": [float(v) for v in errors.split(",")],
    }


def run_child(
    code: str,
    env_extra: dict[str, str] | None = None,
    data: Path = DATA,
    formula: str = FORMULA,
    family: str = "gaussian",
) -> list[dict]:
    env = dict(os.environ)
    if env_extra:
        env.update(env_extra)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(data), formula, family],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[len("RESULT") :])
    raise RuntimeError(f"child failed (rc={proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")


def _cache_env(cold: bool) -> dict[str, str]:
    """With ``--cold``: an empty PyTensor compile/numba cache folder of its own for one child process."""
    if not cold:
        return {}
    return {"PYTENSOR_FLAGS": f"base_compiledir={tempfile.mkdtemp(prefix='pymlsem-bench-cache-')}"}


def main() -> None:
    cold = "--cold" in sys.argv[1:]
    data, formula, family = DATA, FORMULA, "gaussian"
    if "--binary" in sys.argv[1:]:
        data, formula, family = Path(tempfile.mkdtemp()) / "binary_slope.csv", BINARY_FORMULA, "bernoulli"
        binary_data().to_csv(data, index=False)
    print(f"load before: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    rows = run_child(PYMLSEM, _cache_env(cold), data, formula, family)
    bambi_env = _cache_env(cold)
    if BAMBI_SITE:
        bambi_env["PYTHONPATH"] = os.pathsep.join(p for p in (BAMBI_SITE, os.environ.get("PYTHONPATH")) if p)
    rows += run_child(BAMBI, bambi_env, data, formula, family)
    print(
        "caches: "
        + ("empty (--cold: each library compiles from scratch)" if cold else "warm (disk caches kept)")
    )
    print(f"`{formula}` ({family}), 4 chains x 1000 draws (+1000 tune), nutpie\n")
    print(
        "| fit | whole fit (s) | sampling (s) | min bulk ESS | max R-hat | divergences |"
        " min ESS/s (whole fit) | min ESS/s (sampling) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        r["ess_s"] = r["ess"] / r["whole"]
        print(
            f"| {r['label']} | {r['whole']:.1f} | {r['sampling']:.1f} | {r['ess']:.0f} | {r['rhat']:.3f} |"
            f" {r['div']} | {r['ess_s']:.1f} | {r['ess'] / r['sampling']:.0f} |"
        )
    cold, bambi = rows[0], rows[-1]
    print(
        "\nratio pymlsem/bambi of min ESS/s (whole fit, cold processes): "
        f"{cold['ess_s'] / bambi['ess_s']:.2f}"
    )
    print(
        f"ratio pymlsem/bambi of min ESS/s (sampling only): "
        f"{(cold['ess'] / cold['sampling']) / (bambi['ess'] / bambi['sampling']):.2f}"
    )
    print(f"ratio pymlsem warm/bambi of min ESS/s (whole fit): {rows[1]['ess_s'] / bambi['ess_s']:.2f}")
    for r in rows:
        print(f"parameters checked, {r['label']}: {', '.join(r['names'])}")
    if family == "bernoulli":
        peer = glmer_fit(data, formula)
        print(f"glmer (Laplace): whole R process {peer['process']:.1f} s, fit {peer['fit']:.2f} s")
        terms = ["(Intercept)", "x"]
        for r in rows:
            if "means" in r:
                z = [
                    (r["means"][t] - e) / se
                    for t, e, se in zip(terms, peer["estimates"], peer["se"], strict=True)
                ]
                print(
                    f"{r['label']}: (posterior mean - glmer) / glmer SE: " + ", ".join(f"{v:+.3f}" for v in z)
                )
    print(f"load after: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
