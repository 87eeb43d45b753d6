"""MCMCglmm's chain controls (``nitt``, ``burnin``, ``thin``) in the terms of a PyMC sampler."""

from __future__ import annotations

import numbers

from pymlsem.exceptions import ControlError

__all__ = ["ControlError", "mcmcglmm_controls"]


def _integer(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ControlError(f"{name} must be a whole number, not {value!r}")
    if value < minimum:
        raise ControlError(f"{name} must be at least {minimum}, not {value}")
    return int(value)


def mcmcglmm_controls(nitt: int = 13000, burnin: int = 3000, thin: int = 10) -> tuple[int, int, int]:
    """Translate MCMCglmm's ``nitt``, ``burnin`` and ``thin`` to ``(draws, tune, thin)``.

    MCMCglmm runs ``nitt`` iterations, discards the first ``burnin`` and keeps every ``thin``-th of the
    rest, so ``(nitt - burnin) // thin`` draws are stored (1000 with its defaults 13000, 3000, 10).

    Parameters
    ----------
    nitt
        Total number of iterations, burn-in included.
    burnin
        Iterations discarded at the start (the sampler's tuning steps).
    thin
        Thinning interval.

    Returns
    -------
    tuple of int
        ``(draws, tune, thin)``: draws kept per chain, tuning steps, thinning interval; the sampler runs
        ``draws * thin`` post-tuning iterations and keeps every ``thin``-th.

    Raises
    ------
    ControlError
        A value that is not a whole number, ``nitt < 1``, ``burnin < 0``, ``thin < 1``, ``burnin >= nitt``
        or ``thin`` longer than the post-burn-in run (no draw would be kept).
    """
    nitt = _integer("nitt", nitt, 1)
    burnin = _integer("burnin", burnin, 0)
    thin = _integer("thin", thin, 1)
    if burnin >= nitt:
        raise ControlError(f"burnin ({burnin}) must be smaller than nitt ({nitt})")
    if thin > nitt - burnin:
        raise ControlError(
            f"thin ({thin}) is longer than the {nitt - burnin} iterations after burn-in, so no draw would "
            "be kept; lower thin or raise nitt"
        )
    return (nitt - burnin) // thin, burnin, thin
