"""Parameters of a fitted mixed model in MCMCglmm's layout (``Sol``, ``VCV``) and its marginal deviance."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pytensor
import pytensor.tensor as pt

from pymlsem.build.rewrites import compile_mode
from pymlsem.formula.design import INTERCEPT
from pymlsem.mlm.loglik import gaussian_marginal_loglik
from pymlsem.mlm.stats import gaussian_stats

if TYPE_CHECKING:
    from pymlsem.mlm.model import BuiltMixedModel

__all__ = ["MixedTheta", "VCVTerm", "block_covariance_draws", "mixed_loglik_function", "vcv_terms"]


@dataclasses.dataclass(frozen=True)
class VCVTerm:
    """One column of MCMCglmm's ``VCV``: an element of a random block's covariance matrix.

    Attributes
    ----------
    name
        MCMCglmm's name: ``(Intercept):x.school`` (``us``), ``x.school`` (``idh``), ``school`` (one
        intercept), ``units`` (residual).
    structure
        Header of the block in the G-structure (``~us(1 + x):school``), or ``"units"``.
    block
        Index of the random block, ``None`` for the residual.
    row, col
        Element of the block's covariance matrix.
    """

    name: str
    structure: str
    block: int | None
    row: int = 0
    col: int = 0


def _term(name: str) -> str:
    return "1" if name == INTERCEPT else name


def vcv_terms(spec: BuiltMixedModel) -> list[VCVTerm]:
    """MCMCglmm's ``VCV`` columns of a mixed model, in its order (each block column-major, then units)."""
    terms = []
    for k, (block, label) in enumerate(zip(spec.design.blocks, spec.labels, strict=True)):
        inner = " + ".join(_term(name) for name in block.names)
        if block.q == 1 and block.names[0] == INTERCEPT:
            terms.append(VCVTerm(label, f"~{label}", k))
        elif block.correlated and block.q > 1:
            for col in range(block.q):
                for row in range(block.q):
                    name = f"{block.names[row]}:{block.names[col]}.{label}"
                    terms.append(VCVTerm(name, f"~us({inner}):{label}", k, row, col))
        else:
            for r, effect in enumerate(block.names):
                terms.append(VCVTerm(f"{effect}.{label}", f"~idh({inner}):{label}", k, r, r))
    terms.append(VCVTerm("units", "units", None))
    return terms


@dataclasses.dataclass(frozen=True)
class MixedTheta:
    """One value of a Gaussian mixed model's parameters on the data scale.

    Attributes
    ----------
    beta
        Fixed effects, shape (p,).
    sigma
        Residual standard deviation.
    covs
        One covariance matrix per random block.
    """

    beta: np.ndarray
    sigma: float
    covs: tuple[np.ndarray, ...]


def mixed_loglik_function(spec: BuiltMixedModel, mode: str = "FAST_COMPILE") -> Callable[[MixedTheta], float]:
    """Compile the marginal log-likelihood (random effects integrated out) of a Gaussian mixed model.

    Parameters
    ----------
    spec
        The built model; its design gives the data.
    mode
        PyTensor compilation mode; ``"FAST_COMPILE"`` (no C compilation) suits the few thousand
        evaluations a DIC needs.

    Returns
    -------
    callable
        ``loglik(theta)`` for a :class:`MixedTheta`, equal to lme4's ``logLik`` at the same parameters.
    """
    stats = gaussian_stats(spec.design)
    beta = pt.vector("beta")
    sigma = pt.scalar("sigma")
    sizes: Sequence[int] = [block.q for block in spec.design.blocks]
    covs = [pt.matrix(f"cov{k}") for k in range(len(sizes))]
    value = gaussian_marginal_loglik(stats, beta, sigma, covs)
    inputs = [beta, sigma, *covs]
    function = pytensor.function(inputs, value, on_unused_input="ignore", mode=compile_mode(mode))

    def loglik(theta: MixedTheta) -> float:
        return float(function(np.asarray(theta.beta, dtype=float), float(theta.sigma), *theta.covs))

    return loglik


def block_covariance_draws(posterior, spec: BuiltMixedModel) -> list[np.ndarray]:
    """Covariance matrix of each random block at each draw, shape (chain, draw, q, q).

    Parameters
    ----------
    posterior
        Dataset with ``sd__<label>`` (chain, draw, effect) and, for correlated blocks with several
        effects, ``corr__<label>`` (chain, draw, effect, effect).
    spec
        The built model.

    Returns
    -------
    list of numpy.ndarray
        One array per random block.
    """
    covs = []
    for block, label in zip(spec.design.blocks, spec.labels, strict=True):
        sd = np.asarray(posterior[f"sd__{label}"].transpose("chain", "draw", ...).values, dtype=float)
        if block.correlated and block.q > 1:
            corr = np.asarray(posterior[f"corr__{label}"].transpose("chain", "draw", ...).values, dtype=float)
        else:
            corr = np.broadcast_to(np.eye(block.q), (*sd.shape, block.q))
        covs.append(corr * sd[..., :, None] * sd[..., None, :])
    return covs
