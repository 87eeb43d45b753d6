"""What the fits of the hand-written kernel families' models share (:class:`pymlsem.LCAFit`,
:class:`pymlsem.IRTFit`): their draws by name and the convergence checks with their warning."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytensor.tensor as pt

from pymlsem.build.rewrites import python_thunks
from pymlsem.build.vectorized import batched_function
from pymlsem.diagnostics.convergence import convergence_message, diagnose
from pymlsem.exceptions import ConvergenceWarning

__all__ = ["DRAWS_PER_CALL", "CheckedDraws"]

#: draws evaluated together by :meth:`CheckedDraws._over_draws` (an IRT model's persons x grid points
#: per draw times this bounds the memory of its largest intermediate)
DRAWS_PER_CALL = 50


class CheckedDraws:
    """Mixin of a fit with ``idata`` (its posterior), a ``_cache`` dict and :meth:`_checked_names`."""

    idata: Any
    _cache: dict

    def _checked_names(self) -> list[str]:
        """The posterior variables whose R-hat and ESS are checked."""
        raise NotImplementedError

    def _other_notes(self) -> list[str | None]:
        """Sentences of other failed checks than the sampler's (None where a check passes)."""
        return []

    def _draws(self, name: str) -> np.ndarray:
        """The variable's draws, chains one after the other (draws x the variable's shape)."""
        values = self.idata.posterior[name].values
        return values.reshape(-1, *values.shape[2:])

    def _over_draws(
        self, names: Sequence[str], terms_of: Callable[[dict], dict], outputs: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Tensors of the parameters evaluated at every draw, through one function batched over draws.

        The tensors are written for one draw; :func:`pymlsem.build.vectorized.batched_function` adds a
        leading axis of draws to every operation, evaluated as written by Python thunks (numpy over
        :data:`DRAWS_PER_CALL` draws at a time: nothing to compile).

        Parameters
        ----------
        names
            The posterior variables the tensors read.
        terms_of
            Builds the tensors (by name) from symbolic inputs named as ``names``, each of one draw's shape.
        outputs
            The tensors wanted: the first one is kept for every draw (draws x its shape), the others are
            averaged over the draws.
        """
        draws = {name: self._draws(name) for name in names}
        inputs = [pt.tensor(n, dtype="float64", shape=draws[n].shape[1:]) for n in names]
        terms = terms_of(dict(zip(names, inputs, strict=True)))
        with python_thunks():
            function = batched_function(inputs, [terms[o] for o in outputs], inputs)
        count = len(draws[names[0]])
        kept, sums = [], [0.0] * (len(outputs) - 1)
        for start in range(0, count, DRAWS_PER_CALL):
            values = function(*(draws[n][start : start + DRAWS_PER_CALL] for n in names))
            kept.append(values[0])
            sums = [total + value.sum(axis=0) for total, value in zip(sums, values[1:], strict=True)]
        means = {o: v / count for o, v in zip(outputs[1:], sums, strict=True)}
        return {outputs[0]: np.concatenate(kept)} | means

    def diagnose(self) -> pd.DataFrame:
        """Convergence checks of the draws (:func:`pymlsem.diagnostics.convergence.diagnose`)."""
        if "diagnosis" not in self._cache:
            self._cache["diagnosis"] = diagnose(self.idata, self._checked_names())
        return self._cache["diagnosis"]

    def convergence_note(self) -> str | None:
        """The failed convergence checks in one paragraph, or None."""
        return convergence_message(self.diagnose())

    def warn_if_unconverged(self) -> None:
        """Warn (:class:`~pymlsem.exceptions.ConvergenceWarning`) when a convergence check (or another check
        of the fit) fails."""
        for note in (self.convergence_note(), *self._other_notes()):
            if note is not None:
                warnings.warn(note, ConvergenceWarning, stacklevel=3)
