"""R's meaning for the transformations where ``formulae`` differs from R.

``formulae``'s ``scale(x)`` divides by the population SD (``ddof=0``); R's ``scale(x)`` (and so lme4) divides
by the sample SD (``ddof=1``). Since ``formulae`` resolves its own transforms before the caller's names, the
formula text is rewritten to call :class:`RScale` under a private name, and the column label is rewritten
back to ``scale(x)``.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["NAMESPACE", "RScale", "from_formulae", "to_formulae"]

_PRIVATE = "pymlsem_r_scale"


class RScale:
    """R's ``scale(x)``: ``(x - mean(x)) / sd(x)`` with the sample SD, remembered for new data."""

    __stateful_transform__ = True

    def __init__(self) -> None:
        self.mean: float | None = None
        self.std: float | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Standardise ``x`` with the mean and SD of the first data it saw."""
        values = np.asarray(x, dtype=float)
        if self.mean is None:
            self.mean = float(np.mean(values))
            self.std = float(np.std(values, ddof=1))
        return (values - self.mean) / self.std


NAMESPACE = {_PRIVATE: RScale}


def to_formulae(text: str) -> str:
    """Rewrite R calls in a formula (part) for ``formulae``: ``scale(`` -> the private RScale name."""
    return re.sub(r"(?<![\w.])scale\(", f"{_PRIVATE}(", text)


def from_formulae(label: str) -> str:
    """Undo :func:`to_formulae` in a column label."""
    return label.replace(f"{_PRIVATE}(", "scale(")
