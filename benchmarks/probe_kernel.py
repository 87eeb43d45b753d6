"""Probe of the engine's mechanism (b): the two-level SEM likelihood as one hand-written numba kernel.

Issue 10 left two mechanisms open: (a) a generic PyTensor graph per family (built: ``pymlsem/engine``) and
(b) a hand-written kernel with an analytic gradient. (a) compiles ~930 numba functions for the two-level
family (~100 s on a fresh 2-core machine, docs/design-decisions.md). This probe measures what (b) would cost:
the two-level marginal log-likelihood of the parameter table's row values (RAM matrices per level, the
statistics by cluster size, :func:`pymlsem.build.loglik.two_level_loglik`'s formula) and its gradient, written
once by hand in one numba function. It is checked, in the same run, against pymlsem's own evaluation of the
same likelihood (``workflow.loglik.model_loglik``) at the seed model's start values and at random rows, and
its gradient against central differences.

What it leaves out, so its compile time is a lower bound for a family: the map from the sampler's
unconstrained point to the rows (transforms, equality labels, defined parameters) and the priors.

Run:  .venv/bin/python benchmarks/probe_kernel.py     (a fresh numba cache folder of its own each run)
Prints the compile time, the agreement and the cost of one log-density with gradient. Nothing is asserted.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="probe-kernel-")  # nothing compiled before

import numba
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
LOG_2PI = np.log(2.0 * np.pi)


@numba.njit(cache=False)
def _level_moments(rows, k, a_rows, a_index, s_rows, s_index, m_rows, m_index, obs):
    """RAM matrices of one level from the row values, and its implied moments over its observed variables."""
    a = np.zeros(k * k)
    s = np.zeros(k * k)
    m = np.zeros(k)
    for t in range(a_rows.size):
        a[a_index[t]] = rows[a_rows[t]]
    for t in range(s_rows.size):
        s[s_index[t]] = rows[s_rows[t]]
    for t in range(m_rows.size):
        m[m_index[t]] = rows[m_rows[t]]
    b = np.linalg.inv(np.eye(k) - a.reshape(k, k))
    s = s.reshape(k, k)
    c = b[obs, :]
    return b, s, m, c, c @ s @ c.T, c @ m


@numba.njit(cache=False)
def _level_gradient(grad, g_sigma, g_mu, b, s, m, c, k, a_rows, a_index, s_rows, s_index, m_rows, m_index):
    """Add the gradient with respect to the rows, given dL/dSigma and dL/dmu of the level's observed part."""
    cgc = c.T @ g_sigma @ c
    d_a = (2.0 * (cgc @ s @ b.T) + np.outer(c.T @ g_mu, b @ m)).ravel()
    d_s = cgc.ravel()
    d_m = c.T @ g_mu
    for t in range(a_rows.size):
        grad[a_rows[t]] += d_a[a_index[t]]
    for t in range(s_rows.size):
        grad[s_rows[t]] += d_s[s_index[t]]
    for t in range(m_rows.size):
        grad[m_rows[t]] += d_m[m_index[t]]


@numba.njit(cache=False)
def _logdet_inverse(sigma):
    chol = np.linalg.cholesky(sigma)
    inv_chol = np.linalg.inv(chol)
    return 2.0 * np.sum(np.log(np.diag(chol))), inv_chol.T @ inv_chol


@numba.njit(cache=False)
def two_level_logp_grad(
    rows, p, within_index, within_scatter, sizes, counts, means, group_scatter,
    k1, a1_rows, a1_index, s1_rows, s1_index, m1_rows, m1_index, obs1, where1,
    k2, a2_rows, a2_index, s2_rows, s2_index, m2_rows, m2_index, obs2, where2,
):  # fmt: skip
    """The two-level log-likelihood of the row values and its gradient (one function, all by hand)."""
    b1, s1, m1, c1, sig1, mu1 = _level_moments(
        rows, k1, a1_rows, a1_index, s1_rows, s1_index, m1_rows, m1_index, obs1
    )
    b2, s2, m2, c2, sig2, mu2 = _level_moments(
        rows, k2, a2_rows, a2_index, s2_rows, s2_index, m2_rows, m2_index, obs2
    )
    sigma_w = np.zeros((p, p))
    sigma_b = np.zeros((p, p))
    mu = np.zeros(p)
    for i in range(where1.size):
        mu[where1[i]] += mu1[i]
        for j in range(where1.size):
            sigma_w[where1[i], where1[j]] = sig1[i, j]
    for i in range(where2.size):
        mu[where2[i]] += mu2[i]
        for j in range(where2.size):
            sigma_b[where2[i], where2[j]] = sig2[i, j]
    pw = within_index.size
    g_w = np.zeros((p, p))
    g_b = np.zeros((p, p))
    g_mu = np.zeros(p)
    # within: -1/2 (dof (p_w log 2pi + log|S_w|) + tr(S_w^-1 W))
    sub = np.empty((pw, pw))
    for i in range(pw):
        for j in range(pw):
            sub[i, j] = sigma_w[within_index[i], within_index[j]]
    logdet, inv = _logdet_inverse(sub)
    dof = np.sum(counts * (sizes - 1.0))
    logp = -0.5 * (dof * (pw * LOG_2PI + logdet) + np.sum(inv * within_scatter))
    g_sub = -0.5 * (dof * inv - inv @ within_scatter @ inv)
    for i in range(pw):
        for j in range(pw):
            g_w[within_index[i], within_index[j]] += g_sub[i, j]
    # between, per cluster size: -1/2 (c (p log 2pi + log|S_b + S_w/n| + p_w log n) + tr(.^-1 (B + c d d')))
    for g in range(sizes.size):
        logdet, inv = _logdet_inverse(sigma_b + sigma_w / sizes[g])
        d = means[g] - mu
        scatter = group_scatter[g] + counts[g] * np.outer(d, d)
        logp += -0.5 * (counts[g] * (p * LOG_2PI + logdet + pw * np.log(sizes[g])) + np.sum(inv * scatter))
        h = -0.5 * (counts[g] * inv - inv @ scatter @ inv)
        g_b += h
        g_w += h / sizes[g]
        g_mu += counts[g] * (inv @ d)
    grad = np.zeros(rows.size)
    g1 = np.empty((where1.size, where1.size))
    for i in range(where1.size):
        for j in range(where1.size):
            g1[i, j] = g_w[where1[i], where1[j]]
    g2 = np.empty((where2.size, where2.size))
    for i in range(where2.size):
        for j in range(where2.size):
            g2[i, j] = g_b[where2[i], where2[j]]
    _level_gradient(
        grad, g1, g_mu[where1], b1, s1, m1, c1, k1, a1_rows, a1_index, s1_rows, s1_index, m1_rows, m1_index
    )
    _level_gradient(
        grad, g2, g_mu[where2], b2, s2, m2, c2, k2, a2_rows, a2_index, s2_rows, s2_index, m2_rows, m2_index
    )
    return logp, grad


def kernel_arguments(spec) -> tuple:
    """The kernel's arguments (all but the rows) for a two-level SEM spec."""
    stats = spec.stats
    variables = tuple(stats.variables)
    args = [len(variables), np.asarray(stats.within_index, dtype=np.int64)]
    args += [np.ascontiguousarray(getattr(stats, n), dtype=float) for n in
             ("within_scatter", "group_sizes", "group_counts", "group_means", "group_scatter")]  # fmt: skip
    for level in (1, 2):
        layout = spec.built.layouts[level]
        k = len(layout.variables)
        arrays = [np.asarray(getattr(layout, n), dtype=np.int64) for n in
                  ("a_rows", "a_index", "s_rows", "s_index", "m_rows", "m_index")]  # fmt: skip
        obs = np.array([layout.variables.index(v) for v in layout.observed], dtype=np.int64)
        where = np.array([variables.index(v) for v in layout.observed], dtype=np.int64)
        args += [k, *arrays, obs, where]
    return tuple(args)


def main() -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from reference import SEED

    import pymlsem
    from pymlsem.workflow.loglik import batch_of, implied_moments, model_loglik

    data = pd.read_csv(ROOT / "tests/data/reference/data/Demo.twolevel.csv")
    spec = pymlsem.SEM(SEED, data, cluster="cluster")
    args = kernel_arguments(spec)
    estimates = pd.read_csv(ROOT / "tests/data/reference/lavaan/demo_twolevel_estimates.csv")
    rows = np.asarray(spec.rows_from_estimates(estimates), dtype=float)

    start = time.perf_counter()
    logp, _ = two_level_logp_grad(rows, *args)
    compile_seconds = time.perf_counter() - start

    reference = float(model_loglik(implied_moments(spec, rows), batch_of(spec.stats))[0])
    rng = np.random.default_rng(1)
    worst_value = abs(logp - reference) / abs(reference)
    worst_grad = 0.0
    for trial in range(5):
        point = rows * (1.0 + 0.05 * rng.standard_normal(rows.size)) if trial else rows
        value, gradient = two_level_logp_grad(point, *args)
        expected = float(model_loglik(implied_moments(spec, point), batch_of(spec.stats))[0])
        worst_value = max(worst_value, abs(value - expected) / abs(expected))
        numeric = np.zeros(point.size)
        for r in range(point.size):
            step = np.zeros(point.size)
            step[r] = 1e-5 * max(1.0, abs(point[r]))
            numeric[r] = (
                two_level_logp_grad(point + step, *args)[0] - two_level_logp_grad(point - step, *args)[0]
            ) / (2 * step[r])
        scale = 1.0 + np.max(np.abs(numeric))
        worst_grad = max(worst_grad, float(np.max(np.abs(gradient - numeric)) / scale))

    calls = 20000
    start = time.perf_counter()
    for _ in range(calls):
        two_level_logp_grad(rows, *args)
    per_call = (time.perf_counter() - start) / calls

    print(f"compile (fresh numba cache, one process): {compile_seconds:.1f} s")
    print(f"log-likelihood at lavaan's estimates: {logp:.6f} (pymlsem's evaluation {reference:.6f})")
    print(f"largest relative difference of the log-likelihood over 5 points: {worst_value:.1e}")
    print(f"largest gradient difference from central differences, over 1 + its largest: {worst_grad:.1e}")
    print(f"one log-likelihood with gradient, called from Python: {per_call * 1e6:.1f} us")


if __name__ == "__main__":
    main()
