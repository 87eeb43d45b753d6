"""Model-implied moments of one level in the RAM (reticular action model) formulation.

All variables of a level (observed, then latent) form one vector ``v = A v + u`` with
``Cov(u) = S`` and ``E(u) = m``. Loadings (``f =~ y``) and regressions (``y ~ x``) fill ``A``,
(co)variances fill ``S``, intercepts fill ``m``. Then ``E(v) = (I - A)^{-1} m`` and
``Cov(v) = (I - A)^{-1} S (I - A)^{-T}``, and the rows of observed variables are the implied moments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytensor.tensor as pt

from pymlsem.build.loglik import identity


@dataclass(frozen=True)
class LevelLayout:
    """Where each row of the parameter table goes in the RAM matrices of one level.

    Built once from the table (plain numpy index arrays), used for every evaluation.
    """

    observed: tuple[str, ...]
    variables: tuple[str, ...]
    a_rows: np.ndarray
    a_index: np.ndarray
    s_rows: np.ndarray
    s_index: np.ndarray
    m_rows: np.ndarray
    m_index: np.ndarray

    @classmethod
    def from_table(
        cls, table: pd.DataFrame, level: int, observed: Sequence[str], latent: Sequence[str]
    ) -> LevelLayout:
        """Lay out the rows of ``table`` at ``level`` over ``observed + latent`` variables."""
        variables = (*observed, *latent)
        pos = {v: i for i, v in enumerate(variables)}
        k = len(variables)
        a_rows, a_index, s_rows, s_index, m_rows, m_index = [], [], [], [], [], []
        for r, row in enumerate(table.itertuples(index=False)):
            if int(row.level) != level:
                continue
            if row.op == "=~":
                a_rows.append(r)
                a_index.append(pos[row.rhs] * k + pos[row.lhs])
            elif row.op == "~":
                a_rows.append(r)
                a_index.append(pos[row.lhs] * k + pos[row.rhs])
            elif row.op == "~~":
                i, j = pos[row.lhs], pos[row.rhs]
                s_rows.append(r)
                s_index.append(i * k + j)
                if i != j:
                    s_rows.append(r)
                    s_index.append(j * k + i)
            elif row.op == "~1":
                m_rows.append(r)
                m_index.append(pos[row.lhs])
        as_int = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
        return cls(
            tuple(observed),
            variables,
            as_int(a_rows),
            as_int(a_index),
            as_int(s_rows),
            as_int(s_index),
            as_int(m_rows),
            as_int(m_index),
        )

    def matrices(self, values: pt.TensorVariable | np.ndarray) -> tuple:
        """The RAM matrices ``A``, ``S`` and the vector ``m`` from the vector of all row values."""
        index = (self.a_rows, self.a_index, self.s_rows, self.s_index, self.m_rows, self.m_index)
        return ram_matrices(values, len(self.variables), *index)

    def implied(self, values: pt.TensorVariable | np.ndarray) -> tuple[pt.TensorVariable, pt.TensorVariable]:
        """Implied mean vector and covariance matrix of the observed variables of this level."""
        a, s, m = self.matrices(values)
        return implied_moments(a, s, m, len(self.observed), self.path_depth())

    def path_depth(self) -> int | None:
        """Length of the longest directed path of ``A`` (``None`` when there is a cycle)."""
        k = len(self.variables)
        children: dict[int, set[int]] = {}
        for index in self.a_index:
            target, source = divmod(int(index), k)
            children.setdefault(source, set()).add(target)
        longest: dict[int, int] = {}
        visiting: set[int] = set()

        def walk(node: int) -> int | None:
            if node in longest:
                return longest[node]
            if node in visiting:
                return None
            visiting.add(node)
            lengths = [walk(child) for child in children.get(node, ())]
            visiting.discard(node)
            if any(length is None for length in lengths):
                return None
            longest[node] = 1 + max(lengths) if lengths else 0
            return longest[node]

        lengths = [walk(node) for node in range(k)]
        return None if any(length is None for length in lengths) else max(lengths, default=0)


def ram_matrices(values, k, a_rows, a_index, s_rows, s_index, m_rows, m_index) -> tuple:
    """The RAM matrices ``A``, ``S`` (k x k) and ``m`` (k) of one level.

    ``values`` holds the value of every row of the parameter table; ``*_rows`` say which rows fill which
    matrix and ``*_index`` where (flat positions ``i * k + j``; a covariance row appears twice, once per
    triangle). Sizes and positions may be numbers or symbolic inputs (the compiled engine's).
    """
    values = pt.as_tensor(values)
    a = pt.set_subtensor(pt.zeros(k * k)[a_index], values[a_rows]).reshape((k, k))
    s = pt.set_subtensor(pt.zeros(k * k)[s_index], values[s_rows]).reshape((k, k))
    m = pt.set_subtensor(pt.zeros(k)[m_index], values[m_rows])
    return a, s, m


def implied_moments(a, s, m, p, depth: int | None = None) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """Implied mean and covariance of the first ``p`` variables: ``E(v) = (I - A)^{-1} m``,
    ``Cov(v) = (I - A)^{-1} S (I - A)^{-T}``.

    ``(I - A)^{-1}`` is a finite power series of ``depth`` terms when the paths are known to be acyclic with
    that longest path (only products: fast to compile and differentiate), otherwise a linear solve.
    """
    eye = identity(a)
    if depth is None:
        total = pt.linalg.solve(eye - a, eye, assume_a="gen")
    else:
        total, power = eye, eye
        for _ in range(depth):
            power = power @ a
            total = total + power
    effect = total[:p]
    return effect @ m, effect @ s @ effect.T


def place_moments(mean, cov, where, p) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """Put one level's implied moments at positions ``where`` of ``p`` variables (zeros elsewhere)."""
    full_mean = pt.set_subtensor(pt.zeros(p)[where], mean)
    full_cov = pt.set_subtensor(pt.zeros((p, p))[where[:, None], where[None, :]], cov)
    return full_mean, full_cov
