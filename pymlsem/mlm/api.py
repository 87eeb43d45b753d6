"""``pymlsem.mixed``: fit a mixed model written as an lme4 formula."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from pymlsem.exceptions import ModelSpecificationError
from pymlsem.formula.design import mixed_design
from pymlsem.mlm.fit import MixedFit
from pymlsem.mlm.model import MixedModel, build_mixed_model
from pymlsem.sample import check_sampler, sample_model

__all__ = ["FAMILIES", "mixed", "mixed_model"]

FAMILIES = ("gaussian",)


def mixed_model(
    formula: str,
    data: pd.DataFrame,
    family: str = "gaussian",
    *,
    priors: Mapping[str, str | float] | None = None,
    method: str = "marginal",
) -> MixedModel:
    """Translate an lme4 formula and data into a PyMC model, without sampling.

    Parameters
    ----------
    formula
        An lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data
        The data (never modified; rows with missing values in used columns are dropped with a warning).
    family
        ``"gaussian"`` (the only family so far).
    priors
        Overrides of :data:`pymlsem.mlm.model.DEFAULT_MIXED_PRIORS`.
    method
        ``"marginal"`` (random effects integrated out, the default) or ``"latent"``.

    Returns
    -------
    MixedModel
        ``.model`` is the ``pm.Model``.

    Raises
    ------
    ModelSpecificationError
        An unsupported family, a model without random effects, ...
    """
    if family not in FAMILIES:
        raise ModelSpecificationError(f"family={family!r} is not supported yet; use one of {FAMILIES}")
    return build_mixed_model(mixed_design(formula, data), priors=priors, method=method)


def _cache_key(spec: MixedModel) -> tuple:
    design = spec.design
    blocks = tuple((b.group, b.names, b.n_levels, b.correlated) for b in design.blocks)
    priors = tuple(sorted((k, str(v)) for k, v in spec.priors.items()))
    return ("mixed", spec.method, design.fixed_names, design.nobs, blocks, priors)


def mixed(
    formula: str,
    data: pd.DataFrame,
    family: str = "gaussian",
    *,
    priors: Mapping[str, str | float] | None = None,
    method: str = "marginal",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    sampler: str = "nutpie",
    random_seed: int | None = None,
    progressbar: bool = True,
    **kwargs: Any,
) -> MixedFit:
    """Fit a Bayesian mixed model written as an lme4 formula.

    Parameters
    ----------
    formula, data, family, priors, method
        As in :func:`mixed_model`.
    draws, tune, chains
        Draws kept per chain, tuning steps per chain, number of chains.
    sampler
        ``"nutpie"`` (default), ``"pymc"``, ``"numpyro"`` or ``"blackjax"``.
    random_seed
        Seed for reproducible draws.
    progressbar
        Show the sampler's progress.
    **kwargs
        Passed to the sampler (e.g. ``target_accept``).

    Returns
    -------
    MixedFit
        With ``fixef()``, ``varcorr()`` and ``idata``.
    """
    check_sampler(sampler)
    spec = mixed_model(formula, data, family, priors=priors, method=method)
    data_values = {var.name: var.get_value() for var in spec.model.data_vars}
    result = sample_model(
        spec.model,
        sampler=sampler,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=random_seed,
        progressbar=progressbar,
        cache_key=_cache_key(spec),
        data=data_values,
        **kwargs,
    )
    return MixedFit(spec, result.idata, sampler=sampler, chains=chains, draws=draws, tune=tune)
