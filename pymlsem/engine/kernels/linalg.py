"""Small dense matrix products and inverses for the kernels, written as loops.

The kernels' matrices are small (a level's variables and latent variables: tens of rows), where loops run
as fast as BLAS calls. They also compile several times faster: numba types and lowers each NumPy construct
(``@`` for every pair of layouts, ``np.outer``, ``np.linalg.inv``, array expressions) through generic
machinery the first time a process meets it, ~0.5-2 s each, which a family's first compile on a fresh
machine pays in full (``np.outer`` alone 2.2 s; these loops 0.2-0.3 s each).
"""

from __future__ import annotations

import math

import numpy as np

from pymlsem.engine.kernels import internal

__all__ = [
    "dot",
    "factor_inverse",
    "inverse",
    "matmul",
    "matmul_nt",
    "matmul_tn",
    "matvec",
    "outer",
    "quadratic_form",
    "vecmat",
    "vector_sum",
]


@internal
def matmul(a, b):
    """``a @ b``."""
    n, k = a.shape
    m = b.shape[1]
    out = np.zeros((n, m))
    for i in range(n):
        for t in range(k):
            a_it = a[i, t]
            for j in range(m):
                out[i, j] += a_it * b[t, j]
    return out


@internal
def matmul_tn(a, b):
    """``a.T @ b``."""
    k, n = a.shape
    m = b.shape[1]
    out = np.zeros((n, m))
    for t in range(k):
        for i in range(n):
            a_ti = a[t, i]
            for j in range(m):
                out[i, j] += a_ti * b[t, j]
    return out


@internal
def matmul_nt(a, b):
    """``a @ b.T``."""
    n, k = a.shape
    m = b.shape[0]
    out = np.empty((n, m))
    for i in range(n):
        for j in range(m):
            total = 0.0
            for t in range(k):
                total += a[i, t] * b[j, t]
            out[i, j] = total
    return out


@internal
def matvec(a, v):
    """``a @ v``."""
    n, k = a.shape
    out = np.empty(n)
    for i in range(n):
        total = 0.0
        for t in range(k):
            total += a[i, t] * v[t]
        out[i] = total
    return out


@internal
def vecmat(v, a):
    """``v @ a`` (``a.T @ v``)."""
    k, m = a.shape
    out = np.zeros(m)
    for t in range(k):
        v_t = v[t]
        for j in range(m):
            out[j] += v_t * a[t, j]
    return out


@internal
def dot(u, v):
    """``u @ v`` of two vectors, in four interleaved partial sums.

    One running sum makes every addition wait for the one before (numba keeps the order of floating-point
    additions); four independent ones let the processor overlap them, ~3x faster on a long vector."""
    n = u.size
    s0 = s1 = s2 = s3 = 0.0
    for i in range(0, n - 3, 4):
        s0 += u[i] * v[i]
        s1 += u[i + 1] * v[i + 1]
        s2 += u[i + 2] * v[i + 2]
        s3 += u[i + 3] * v[i + 3]
    for i in range(n - n % 4, n):
        s0 += u[i] * v[i]
    return (s0 + s1) + (s2 + s3)


@internal
def vector_sum(u):
    """``u.sum()`` of a vector, in four interleaved partial sums (as :func:`dot`)."""
    n = u.size
    s0 = s1 = s2 = s3 = 0.0
    for i in range(0, n - 3, 4):
        s0 += u[i]
        s1 += u[i + 1]
        s2 += u[i + 2]
        s3 += u[i + 3]
    for i in range(n - n % 4, n):
        s0 += u[i]
    return (s0 + s1) + (s2 + s3)


@internal
def outer(u, v):
    """``np.outer(u, v)``."""
    out = np.empty((u.size, v.size))
    for i in range(u.size):
        for j in range(v.size):
            out[i, j] = u[i] * v[j]
    return out


@internal
def inverse(a):
    """``a^-1`` by Gauss-Jordan elimination with partial pivoting; NaN where ``a`` is singular."""
    n = a.shape[0]
    work = a.copy()
    out = np.zeros((n, n))
    for i in range(n):
        out[i, i] = 1.0
    for col in range(n):
        pivot = col
        for row in range(col + 1, n):
            if abs(work[row, col]) > abs(work[pivot, col]):
                pivot = row
        if work[pivot, col] == 0.0:
            out[:, :] = np.nan
            return out
        if pivot != col:
            for j in range(n):
                work[col, j], work[pivot, j] = work[pivot, j], work[col, j]
                out[col, j], out[pivot, j] = out[pivot, j], out[col, j]
        scale = 1.0 / work[col, col]
        for j in range(n):
            work[col, j] *= scale
            out[col, j] *= scale
        for row in range(n):
            factor = work[row, col]
            if row != col and factor != 0.0:
                for j in range(n):
                    work[row, j] -= factor * work[col, j]
                    out[row, j] -= factor * out[col, j]
    return out


@internal
def factor_inverse(d, inv):
    """``(ok, log|D|)`` of the positive definite ``D`` whose lower triangle ``d`` holds, and ``D^-1`` written
    into ``inv``; ``ok`` is False where ``D`` is not positive definite. Its Cholesky factor ``C`` is written
    over ``d``'s lower triangle, then ``D^-1 = C^-T C^-1``, all by loops (no allocation: the kernels call
    this once per cluster)."""
    q = d.shape[0]
    logdet = 0.0
    for j in range(q):
        pivot = d[j, j]
        for k in range(j):
            pivot -= d[j, k] * d[j, k]
        if not pivot > 0.0:
            return False, 0.0
        d[j, j] = math.sqrt(pivot)
        logdet += math.log(pivot)
        for i in range(j + 1, q):
            off = d[i, j]
            for k in range(j):
                off -= d[i, k] * d[j, k]
            d[i, j] = off / d[j, j]
    for c in range(q):  # C^-1 column by column into the lower triangle, then C^-T C^-1 over it
        for r in range(c, q):
            total = 1.0 if r == c else 0.0
            for m in range(c, r):
                total -= d[r, m] * inv[m, c]
            inv[r, c] = total / d[r, r]
    for r in range(q):
        for c in range(r + 1):
            total = 0.0
            for m in range(r, q):
                total += inv[m, r] * inv[m, c]
            inv[r, c] = total
            inv[c, r] = total
    return True, logdet


@internal
def quadratic_form(a, u, n, out):
    """``u' A u`` over the first ``n`` entries, with ``A u`` written to ``out[:n]``."""
    value = 0.0
    for r in range(n):
        total = 0.0
        for c in range(n):
            total += a[r, c] * u[c]
        out[r] = total
        value += u[r] * total
    return value
