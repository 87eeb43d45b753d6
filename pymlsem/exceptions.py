"""Exception classes raised by pymlsem.

Every error a user can cause is one of these, raised before any compiling or sampling.
All subclass :class:`PymlsemError`, itself a :class:`ValueError`.
"""

from __future__ import annotations


class PymlsemError(ValueError):
    """Base class of every error pymlsem raises about a user's input."""


class ModelSyntaxError(PymlsemError):
    """A model string that cannot be parsed.

    Parameters
    ----------
    message
        What is wrong and how to fix it.
    source
        The full model string.
    line, column
        1-based position of the offending token.
    """

    def __init__(self, message: str, source: str, line: int, column: int) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        lines = source.splitlines() or [""]
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        caret = " " * max(column - 1, 0) + "^"
        super().__init__(f"line {line}, column {column}: {message}\n  {text}\n  {caret}")


class ModelSpecificationError(PymlsemError):
    """A model that parses but cannot be estimated as written (no scale, unidentified, ...)."""


class DataError(PymlsemError):
    """Data that do not fit the model: missing or non-numeric columns, bad clusters, ..."""


class PriorError(PymlsemError):
    """A prior that cannot be understood or does not fit its parameter."""


class SamplerError(PymlsemError):
    """An unknown sampler, or one whose optional dependency is not installed."""


class ControlError(PymlsemError):
    """Chain controls that do not give a valid run (negative, not integers, burn-in too long, ...)."""


class ConvergenceWarning(UserWarning):
    """The sampler's diagnostics say the posterior draws may not be trustworthy (R-hat, ESS, divergences,
    E-BFMI or tree depth); :meth:`fit.diagnose() <pymlsem.results.fit_methods.FitMethods.diagnose>` lists
    them."""
