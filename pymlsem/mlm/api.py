"""``pymlsem.mixed`` and ``pymlsem.MixedModel``: fit a mixed model written as an lme4 formula."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from pymlsem.data.prepare import as_pandas
from pymlsem.diagnostics.controls import mcmcglmm_controls
from pymlsem.exceptions import DataError, ModelSpecificationError
from pymlsem.formula.design import mixed_design
from pymlsem.frozen import FrozenSpec
from pymlsem.mlm.families import FAMILIES, ArrayLike, check_family, glmm_design
from pymlsem.mlm.fit import MixedFit
from pymlsem.mlm.glmm import build_glmm_model
from pymlsem.mlm.glmm_fit import GLMMFit
from pymlsem.mlm.model import BuiltMixedModel, build_mixed_model
from pymlsem.mlm.sampling import model_cache_key, sample_mixed
from pymlsem.sample import SamplerSettings
from pymlsem.workflow.predictive import mixed_prior_predictive
from pymlsem.workflow.refit import mixed_refit_spec

if TYPE_CHECKING:
    import pymc as pm

__all__ = ["FAMILIES", "MixedModel", "mixed", "mixed_model"]


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
) -> BuiltMixedModel:
    """Translate an lme4 formula and data into a built PyMC model, without sampling (what
    :class:`MixedModel` holds as ``built``; ``MixedModel`` adds the life cycle: ``fit()``, ``with_priors()``,
    ``prior_predictive()``, ``structure_key()``).

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
    BuiltMixedModel
        ``.model`` is the ``pm.Model``; ``.design``, ``.priors``, ``.likelihood`` what it was built from.

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


class MixedModel(FrozenSpec):
    """A mixed model written as an lme4 formula, translated (checked, data prepared, PyMC model built) but not
    sampled: the same life cycle as :class:`pymlsem.SEM`.

    Parameters
    ----------
    formula, data, family, priors, prior, method, link, trials, offset
        As in :func:`mixed_model`.

    Attributes
    ----------
    built
        The :class:`~pymlsem.mlm.model.BuiltMixedModel` (design, priors, response, likelihood).
    build_seconds
        Seconds spent building it.

    Examples
    --------
    >>> spec = pymlsem.MixedModel("Reaction ~ Days + (Days | Subject)", sleepstudy)  # doctest: +SKIP
    >>> fit = spec.fit(random_seed=1)                                                 # doctest: +SKIP
    >>> wider = spec.with_priors({"fixef": "normal(0,5)"}).fit(random_seed=1)        # doctest: +SKIP
    """

    def __init__(
        self,
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
    ) -> None:
        start = time.perf_counter()
        self.built = mixed_model(
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
        self.build_seconds = time.perf_counter() - start
        self.freeze()

    @classmethod
    def from_built(cls, built: BuiltMixedModel, build_seconds: float = 0.0) -> MixedModel:
        """The spec of an already built model (e.g. :func:`mixed_model`'s)."""
        spec = cls.__new__(cls)
        spec.built = built
        spec.build_seconds = build_seconds
        spec.freeze()
        return spec

    @property
    def pymc_model(self) -> pm.Model:
        """The PyMC model (inspect it, extend it, sample it yourself)."""
        return self.built.model

    def structure_key(self) -> tuple:
        """What makes two models share one compiled model: equal keys, no compiling again
        (:func:`pymlsem.mlm.sampling.model_cache_key`)."""
        return model_cache_key(self.built)

    def with_priors(self, priors: Mapping[str, str | float]) -> MixedModel:
        """The same model on the same data with the priors ``priors`` changed (keys of ``priors=``); the
        others stay (:func:`pymlsem.workflow.refit.mixed_refit_spec`)."""
        start = time.perf_counter()
        built = mixed_refit_spec(self.built, priors)
        return MixedModel.from_built(built, time.perf_counter() - start)

    def prior_predictive(self, n_draws: int = 500, seed: int | None = None) -> xr.DataTree:
        """Draw the parameters from their priors and replicated responses from each draw.

        See :func:`pymlsem.workflow.predictive.mixed_prior_predictive`.

        Returns
        -------
        xarray.DataTree
            Groups ``prior``, ``prior_predictive`` (variable ``y``) and ``observed_data``.
        """
        return mixed_prior_predictive(self.built, n_draws, seed)

    def fit(
        self,
        *,
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
        """Sample the posterior with NUTS.

        Parameters
        ----------
        draws, tune, chains, sampler, random_seed, progressbar, nitt, burnin, thin, **kwargs
            As in :func:`mixed`.

        Returns
        -------
        MixedFit
            A :class:`~pymlsem.mlm.glmm_fit.GLMMFit` for non-Gaussian families.
        """
        if nitt is not None or burnin is not None or thin is not None:
            draws, tune, thin = mcmcglmm_controls(
                13000 if nitt is None else nitt,
                3000 if burnin is None else burnin,
                10 if thin is None else thin,
            )
        settings = SamplerSettings(
            sampler, draws, tune, chains, random_seed, progressbar, thin=thin or 1, options=kwargs
        )
        idata, timings = sample_mixed(self.built, settings, self.build_seconds)
        fit_class = MixedFit if self.built.family == "gaussian" else GLMMFit
        fit = fit_class(self.built, idata, **settings.fit_record(thin=True), timings=timings)
        fit.warn_if_unconverged()
        return fit


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
    spec = MixedModel(
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
    return spec.fit(
        draws=draws,
        tune=tune,
        chains=chains,
        sampler=sampler,
        random_seed=random_seed,
        progressbar=progressbar,
        nitt=nitt,
        burnin=burnin,
        thin=thin,
        **kwargs,
    )
