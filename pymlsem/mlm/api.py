"""``pymlsem.mixed``: fit a mixed model written as an lme4 formula."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from pymlsem.data.prepare import as_pandas
from pymlsem.diagnostics.controls import mcmcglmm_controls
from pymlsem.exceptions import DataError, ModelSpecificationError
from pymlsem.formula.design import mixed_design
from pymlsem.mlm.families import FAMILIES, ArrayLike, check_family, glmm_design
from pymlsem.mlm.fit import MixedFit
from pymlsem.mlm.glmm import build_glmm_model
from pymlsem.mlm.glmm_fit import GLMMFit
from pymlsem.mlm.model import MixedModel, build_mixed_model
from pymlsem.mlm.sampling import sample_mixed
from pymlsem.sample import check_sampler, check_sampling

__all__ = ["FAMILIES", "mixed", "mixed_model"]


def mixed_model(
    formula: str,
    data: pd.DataFrame,
    family: str = "gaussian",
    *,
    priors: Mapping[str, str | float] | None = None,
    prior: Mapping[str, Any] | None = None,
    method: str | None = None,
    link: str | None = None,
    trials: str | ArrayLike | None = None,
    offset: str | ArrayLike | None = None,
) -> MixedModel:
    """Translate an lme4 formula and data into a PyMC model, without sampling.

    Parameters
    ----------
    formula
        An lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``; without random terms
        (``"Reaction ~ Days + Subject"``) a Bayesian (generalized) linear model.
    data
        The data (never modified; rows with missing values in used columns are dropped with a warning).
    family
        ``"gaussian"`` (default), ``"bernoulli"``, ``"binomial"`` (response ``cbind(successes, failures)``
        or ``trials=``), ``"poisson"``, ``"negbinomial"``, ``"ordinal"`` (cumulative model; response an
        ordered ``pandas.Categorical`` or integer codes, at least 3 categories) or ``"student"`` (Student-t
        errors, a robust linear mixed model: ``sigma`` and the degrees of freedom ``nu`` are sampled).
    priors
        Overrides of :data:`pymlsem.mlm.model.DEFAULT_MIXED_PRIORS` (Gaussian) or
        :data:`pymlsem.mlm.glmm.DEFAULT_GLMM_PRIORS` (other families, on the link scale); plus per-term
        priors on the data scale, ``"fixef:<term>"`` and ``"sd:<block>"`` (see :mod:`pymlsem.mlm.model`).
    prior
        MCMCglmm's prior forms, ``{"B": {"mu", "V"}, "R": {"V", "nu"}, "G": {"G1": {"V", "nu"[, "alpha.mu",
        "alpha.V"]}, ...}}``: multivariate normal fixed effects, inverse-Wishart (co)variances and
        parameter-expanded priors, each replacing the default of its part (see
        :mod:`pymlsem.mlm.mcmcglmm_prior` for what each means).
    method
        Gaussian: ``"marginal"`` (random effects integrated out) or ``"latent"`` (sampled, non-centered).
        By default one grouping factor, nested factors (``(1 | school/class)``) and crossed factors of
        moderate size are integrated out, larger crossed designs sampled
        (:func:`pymlsem.mlm.model.choose_method`); the fit's ``method`` says which. Other families
        always use ``"latent"`` (non-centered random effects).
    link
        ``"logit"`` (default) or ``"probit"`` for bernoulli, binomial and ordinal; ``"log"`` for counts.
    trials
        Binomial trials, a column name or one value per row (instead of ``cbind``).
    offset
        A column name or one value per row added to the linear predictor (e.g. ``np.log(exposure)``); an
        ``offset(log(x))`` term in the formula does the same.

    Returns
    -------
    MixedModel
        ``.model`` is the ``pm.Model``.

    Raises
    ------
    ModelSpecificationError
        An unsupported family or link, ``method="marginal"`` for a model without random terms or a
        non-Gaussian family, ...
    DataError
        A response that does not fit the family (negative or non-integer counts, a non-binary Bernoulli
        response, successes above trials, fewer than 3 ordinal categories), checked before compiling.
    """
    data = as_pandas(data)
    family, link = check_family(family, link)
    if family == "gaussian":
        if trials is not None or offset is not None:
            raise ModelSpecificationError("trials= and offset= are for non-Gaussian families")
        design = mixed_design(formula, data)
        if np.ptp(design.y) == 0:
            raise DataError(
                f"response {design.response!r} is constant (every value is {design.y[0]:g}): there is no "
                "variation to model"
            )
        return build_mixed_model(design, priors=priors, method=method, prior=prior)
    if method not in (None, "latent"):
        raise ModelSpecificationError(
            f"family={family!r} is fitted with method='latent' (explicit random effects); "
            f"method={method!r} is only for family='gaussian'"
        )
    design, response = glmm_design(formula, data, family, link, trials=trials, offset=offset)
    return build_glmm_model(design, response, priors=priors, prior=prior)


def mixed(
    formula: str,
    data: pd.DataFrame,
    family: str = "gaussian",
    *,
    priors: Mapping[str, str | float] | None = None,
    prior: Mapping[str, Any] | None = None,
    method: str | None = None,
    link: str | None = None,
    trials: str | ArrayLike | None = None,
    offset: str | ArrayLike | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    sampler: str = "nutpie",
    random_seed: int | None = None,
    progressbar: bool = True,
    nitt: int | None = None,
    burnin: int | None = None,
    thin: int | None = None,
    **kwargs: Any,
) -> MixedFit:
    """Fit a Bayesian mixed model written as an lme4 formula.

    Parameters
    ----------
    formula, data, family, priors, prior, method, link, trials, offset
        As in :func:`mixed_model`.
    draws, tune, chains
        Draws kept per chain, tuning steps per chain, number of chains.
    sampler
        ``"nutpie"`` (default), ``"pymc"``, ``"numpyro"`` or ``"blackjax"``.
    random_seed
        Seed for reproducible draws.
    progressbar
        Show the sampler's progress.
    nitt, burnin, thin
        MCMCglmm's controls, for users of the book: ``nitt`` iterations per chain of which the first
        ``burnin`` tune the sampler, every ``thin``-th of the rest kept (MCMCglmm's defaults 13000, 3000,
        10 when only some are given). They replace ``draws`` and ``tune``.
    **kwargs
        Passed to the sampler (e.g. ``target_accept``).

    Returns
    -------
    MixedFit
        With ``fixef()``, ``varcorr()`` and ``idata``; a :class:`~pymlsem.mlm.glmm_fit.GLMMFit` (no residual
        row in ``varcorr()``) for non-Gaussian families.
    """
    check_sampler(sampler)
    if nitt is not None or burnin is not None or thin is not None:
        draws, tune, thin = mcmcglmm_controls(
            13000 if nitt is None else nitt, 3000 if burnin is None else burnin, 10 if thin is None else thin
        )
    thin = thin or 1
    check_sampling(sampler, draws, tune, chains, random_seed, kwargs, progressbar)
    start = time.perf_counter()
    spec = mixed_model(
        formula,
        data,
        family,
        priors=priors,
        prior=prior,
        method=method,
        link=link,
        trials=trials,
        offset=offset,
    )
    idata, timings = sample_mixed(
        spec,
        build_seconds=time.perf_counter() - start,
        sampler=sampler,
        draws=draws,
        tune=tune,
        chains=chains,
        thin=thin,
        random_seed=random_seed,
        progressbar=progressbar,
        **kwargs,
    )
    fit_class = MixedFit if spec.family == "gaussian" else GLMMFit
    fit = fit_class(
        spec, idata, sampler=sampler, chains=chains, draws=draws, tune=tune, thin=thin, timings=timings
    )
    fit.warn_if_unconverged()
    return fit
