"""Deviance information criterion (Spiegelhalter et al. 2002) from draws and a log-likelihood."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

__all__ = ["DIC", "dic"]


@dataclasses.dataclass(frozen=True)
class DIC:
    """A DIC and its parts.

    Attributes
    ----------
    dic
        ``dbar + pd``.
    dbar
        Posterior mean of the deviance ``-2 log p(y | theta)``.
    dhat
        Deviance at the posterior mean of the parameters.
    pd
        Effective number of parameters, ``dbar - dhat``.
    """

    dic: float
    dbar: float
    dhat: float
    pd: float


def dic(loglik: Callable[[Any], float], draws: Iterable[Any], posterior_mean: Any) -> DIC:
    """DIC = mean deviance + pD, with pD = mean deviance - deviance at the posterior mean.

    Parameters
    ----------
    loglik
        Log-likelihood ``log p(y | theta)`` of one parameter value.
    draws
        Parameter values drawn from the posterior (any objects ``loglik`` accepts).
    posterior_mean
        The parameter value at which the plug-in deviance is evaluated (the posterior mean).

    Returns
    -------
    DIC

    Raises
    ------
    ValueError
        No draws, or a log-likelihood that is not finite.
    """
    deviances = np.array([-2.0 * float(loglik(theta)) for theta in draws])
    if deviances.size == 0:
        raise ValueError("DIC needs at least one draw")
    dhat = -2.0 * float(loglik(posterior_mean))
    if not (np.all(np.isfinite(deviances)) and np.isfinite(dhat)):
        raise ValueError("the log-likelihood is not finite at some draws or at the posterior mean")
    dbar = float(deviances.mean())
    return DIC(dic=2.0 * dbar - dhat, dbar=dbar, dhat=dhat, pd=dbar - dhat)
