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
        k = len(self.variables)
        values = pt.as_tensor(values)
        a = pt.set_subtensor(pt.zeros(k * k)[self.a_index], values[self.a_rows]).reshape((k, k))
        s = pt.set_subtensor(pt.zeros(k * k)[self.s_index], values[self.s_rows]).reshape((k, k))
        m = pt.set_subtensor(pt.zeros(k)[self.m_index], values[self.m_rows])
        return a, s, m

    def implied(self, values: pt.TensorVariable | np.ndarray) -> tuple[pt.TensorVariable, pt.TensorVariable]:
        """Implied mean vector and covariance matrix of the observed variables of this level."""
        a, s, m = self.matrices(values)
        p = len(self.observed)
        effect = self._total_effects(a)[:p]
        return effect @ m, effect @ s @ effect.T

    def _total_effects(self, a: pt.TensorVariable) -> pt.TensorVariable:
        """``(I - A)^{-1}``: a finite power series when the paths are acyclic (recursive models), which
        needs only products (fast to compile and differentiate), otherwise a linear solve."""
        k = len(self.variables)
        depth = self.path_depth()
        if depth is None:
            return pt.linalg.solve(pt.eye(k) - a, pt.eye(k), assume_a="gen")
        total, power = pt.eye(k), pt.eye(k)
        for _ in range(depth):
            power = power @ a
            total = total + power
        return total

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
