"""The SEM front door: ``SEM`` translates a lavaan model and data into a PyMC model; ``sem``/``cfa``/
``growth`` translate and fit in one call."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm

from pymlsem.build.latent import LatentModel, build_latent_model
from pymlsem.build.loglik import single_level_fixed_x_loglik, two_level_fixed_x_loglik
from pymlsem.build.marginal import (
    EXO_DATA,
    MarginalModel,
    build_marginal_model,
    loglik_from_rows,
    stats_data_values,
)
from pymlsem.build.rewrites import compile_mode
from pymlsem.data.categorical import ordinal_codes
from pymlsem.data.missing_stats import has_missing, single_level_missing_stats, two_level_missing_stats
from pymlsem.data.prepare import as_pandas, check_frame, exogenous_values
from pymlsem.data.raw import RawData, prepare_raw_data
from pymlsem.data.stats import fill_by_cluster_means, single_level_stats, stats_from_summary, two_level_stats
from pymlsem.exceptions import DataError, ModelSpecificationError, PriorError
from pymlsem.frozen import FrozenSpec
from pymlsem.partable import ParTable, build_partable
from pymlsem.results.fit import SEMFit
from pymlsem.sample import SamplerSettings, sample_spec, with_nutpie_adaptation
from pymlsem.syntax import ParsedModel, parse_model
from pymlsem.workflow.predictive import sem_prior_predictive
from pymlsem.workflow.refit import sem_refit_spec

MODEL_TYPES = ("sem", "cfa", "growth")
METHODS = ("auto", "marginal", "latent")
LINKS = ("probit", "logit")


class SEM(FrozenSpec):
    """A structural equation model in lavaan syntax, translated into a PyMC model (nothing sampled yet).

    Parameters
    ----------
    model
        The model in lavaan syntax; ``level: 1`` / ``level: 2`` blocks make a two-level model. Or the
        parser's statements (a :class:`~pymlsem.syntax.ParsedModel`, e.g. the saturated model of
        :func:`pymlsem.workflow.saturated_posterior.saturated_model`).
    data
        The data, one row per observation (not modified). Optional when summary statistics are given.
    cluster
        Name of the cluster column (required for a two-level model).
    model_type
        ``"sem"``, ``"cfa"`` or ``"growth"``: which of lavaan's default settings apply.
    priors
        Prior strings by class (``"lambda"``, ``"beta"``, ``"nu"``, ``"alpha"``, ``"theta"``, ``"psi"``,
        ``"rho"``) or by parameter (a label, or ``"fw=~y2"`` as shown in the summary). The other
        parameters get blavaan's default priors in the data's units (see :mod:`pymlsem.priors`), or,
        with ``priors="blavaan"``, blavaan's numbers as they are.
    sample_cov, sample_mean, sample_nobs
        Single-level models only: fit to summary statistics instead of raw data (``sample_cov`` the
        usual N-1 covariance matrix, a DataFrame with variable names or an array in ``variables``' order).
    variables
        Variable names of ``sample_cov`` when it is an array.
    method
        ``"marginal"``: latent variables integrated out (fast; continuous indicators, random intercepts).
        ``"latent"``: explicit within and between latent variables, cluster effects and random slopes as
        PyMC variables (see :mod:`pymlsem.build.latent`); needed for random slopes, ordered indicators
        and missing values kept in the likelihood. ``"auto"`` (default): marginal where it can fit the
        model, latent otherwise.
    ordered
        Names of binary/ordinal indicators (as lavaan's ``ordered=``): their categories are the sorted
        observed values (or an ordered pandas Categorical's categories).
    link
        ``"probit"`` (default, as Mplus and lavaan) or ``"logit"`` for ordered indicators.
    centered
        ``method="latent"``: levels whose latent variables are sampled centered instead of non-centered
        (the default): ``"between"`` (level 2; better when clusters are large or carry many items),
        ``"within"``, ``True`` (both) or ``False``.
    std_lv
        lavaan's ``std.lv``: each latent variable gets its metric from its (residual) variance fixed at 1,
        with every loading free, instead of from its first loading fixed at 1 (the default, as lavaan's).
        The same model; NUTS often samples it better, since a weak marker makes the other loadings
        ratios with heavy tails. With free loadings a factor has two mirror-image modes; the chains start
        on the positive side, and the ``signs`` check of ``fit.diagnose()`` names any that crossed (then
        ``fit.select_chains`` keeps the chains of one sign).

    Attributes
    ----------
    pymc_model
        The :class:`pymc.Model`.
    partable
        The :class:`~pymlsem.partable.ParTable`.
    """

    def __init__(
        self,
        model: str | ParsedModel,
        data: pd.DataFrame | None = None,
        cluster: str | None = None,
        *,
        model_type: str = "sem",
        priors: Mapping[str, str] | str | None = None,
        sample_cov: Any = None,
        sample_mean: Any = None,
        sample_nobs: int | None = None,
        variables: list[str] | None = None,
        method: str = "auto",
        ordered: Sequence[str] | None = None,
        link: str = "probit",
        centered: bool | str = False,
        std_lv: bool = False,
    ) -> None:
        start = time.perf_counter()
        if model_type not in MODEL_TYPES:
            raise ModelSpecificationError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
        if method not in METHODS:
            raise ModelSpecificationError(f"method must be one of {METHODS}, got {method!r}")
        if link not in LINKS:
            raise ModelSpecificationError(f"link must be one of {LINKS}, got {link!r}")
        if not isinstance(std_lv, bool):
            raise ModelSpecificationError(f"std_lv must be True or False (lavaan's std.lv), got {std_lv!r}")
        self.link = link
        self.std_lv = std_lv
        self.centered = _centered_levels(centered)
        self.source = model.source if isinstance(model, ParsedModel) else model
        self.model_type = model_type
        self.cluster = cluster
        self.default_priors = "blavaan" if isinstance(priors, str) else "scaled"
        self.priors = _check_priors_argument(priors)
        parsed = model if isinstance(model, ParsedModel) else parse_model(model)
        data = as_pandas(data)
        from_summary = sample_cov is not None
        if data is None and not from_summary:
            raise DataError(
                "give the data (a DataFrame), or sample_cov and sample_nobs for a single-level model"
            )
        if data is not None and from_summary:
            raise DataError("give either data or sample_cov/sample_mean/sample_nobs, not both")
        if from_summary and sample_nobs is None:
            raise DataError("sample_cov needs sample_nobs=N, the number of observations it was computed from")
        if from_summary and cluster is not None:
            raise DataError(
                "summary statistics (sample_cov=) fit single-level models only; give the data (one row per "
                "observation) for a two-level model"
            )
        if data is not None:
            check_frame(data)
        columns = _summary_names(sample_cov, variables) if from_summary else [str(c) for c in data.columns]
        meanstructure = None if from_summary and sample_mean is None else True
        self.ordinal = _ordinal_columns(data, ordered, parsed, from_summary)
        self.codes: dict[str, np.ndarray] = {}
        self.missing = False
        self.likelihood_stats = None
        counts = {name: len(c.categories) for name, c in self.ordinal.items()}
        self.partable: ParTable = build_partable(
            parsed,
            model_type=model_type,
            data_columns=columns,
            meanstructure=meanstructure,
            std_lv=std_lv,
            **({"ordered": counts} if counts else {}),
        )
        self.method = _choose_method(method, self.partable, from_summary)
        two_level = self.partable.n_levels == 2
        if two_level and cluster is None:
            raise DataError("the model has level: blocks, so it needs cluster='name of the cluster column'")
        if not two_level and cluster is not None:
            raise DataError(
                f"cluster={cluster!r} was given but the model has no 'level: 1' / 'level: 2' blocks; "
                "write the model per level, or leave out cluster"
            )
        if from_summary:
            names = _summary_names(sample_cov, variables)
            self.stats = stats_from_summary(sample_cov, sample_mean, sample_nobs, names)
            self.stats = _reorder(self.stats, self.observed)
            self.nobs, self.n_clusters = int(sample_nobs), None
        else:
            self._set_data(data)
        self.exo_values = exogenous_values(self.partable.table, self.stats)
        self.meanstructure = not (from_summary and sample_mean is None)
        self.built: MarginalModel | LatentModel = self.build(self.priors)
        _check_identification(self)
        self.build_seconds = time.perf_counter() - start
        self.freeze()

    def with_user_priors(self, priors: Mapping[str, str]) -> SEM:
        """A new SEM: this one with ``priors`` as its user priors (all of them, replacing
        :attr:`priors`), built again by its own builder on its own statistics; this one is unchanged.
        :meth:`with_priors` checks and merges a change first."""
        start = time.perf_counter()
        priors = dict(priors)
        built = self.build(priors)
        return self.replaced(priors=priors, built=built, build_seconds=time.perf_counter() - start)

    def build(self, priors: Mapping[str, str]) -> MarginalModel | LatentModel:
        """The PyMC model of this SEM and its data with the given user priors, by the SEM's own builder
        (``method``), data statistics and default priors: what construction and :meth:`with_user_priors`
        both use."""
        if self.method == "latent":
            return build_latent_model(
                self.partable,
                self.raw,
                self.stats,
                self.exo_values,
                codes=self.codes,
                link=self.link,
                priors=priors,
                default_priors=self.default_priors,
                centered=self.centered,
            )
        return build_marginal_model(
            self.partable,
            self.stats,
            self.exo_values,
            priors=priors,
            default_priors=self.default_priors,
            meanstructure=self.meanstructure,
            likelihood_stats=self.likelihood_stats,
        )

    @property
    def observed(self) -> list[str]:
        """Observed variables of the model, in the order of the sufficient statistics."""
        names: list[str] = []
        for level in sorted(self.partable.observed):
            names += [v for v in self.partable.observed[level] if v not in names]
        return names

    @property
    def pymc_model(self) -> pm.Model:
        """The PyMC model (inspect it, extend it, or sample it yourself)."""
        return self.built.model

    def _set_data(self, data: pd.DataFrame) -> None:
        """Row-level data and statistics.

        Rows with a missing exogenous covariate or cluster are dropped (with a warning); other missing values
        stay in the likelihood: full-information statistics for the marginal builder
        (``likelihood_stats``), the rows themselves for the latent one. ``stats`` are those of the data with
        missing values filled in, used for start values and the covariates' moments only.
        """
        exogenous = sorted({v for names in self.partable.exogenous.values() for v in names})
        self.raw: RawData = prepare_raw_data(
            data, self.observed, self.cluster, conditioned=exogenous, categorical=list(self.ordinal)
        )
        self.codes = {name: column.codes[self.raw.rows] for name, column in self.ordinal.items()}
        numeric = self.raw.frame  # read only below; ordered indicators as their codes, in a new frame
        if self.codes:
            codes = {name: np.where(c >= 0, c, np.nan).astype(float) for name, c in self.codes.items()}
            numeric = numeric.assign(**codes)
        self.missing = has_missing(numeric, self.observed)
        two_level = self.cluster is not None
        if two_level:
            levels = {"within_only": self.partable.within_only, "between_only": self.partable.between_only}
            self.stats = two_level_stats(
                fill_by_cluster_means(numeric, self.observed, self.cluster),
                self.observed,
                self.cluster,
                **levels,
            )
            if self.missing and self.method == "marginal":
                self.likelihood_stats = two_level_missing_stats(
                    numeric, self.observed, self.cluster, **levels
                )
            self.n_clusters = self.raw.n_clusters
            if self.n_clusters < 2:
                raise DataError(
                    f"the cluster column {self.cluster!r} has {self.n_clusters} cluster(s) in the data; a "
                    "two-level model needs many clusters (its between level is estimated from them)"
                )
        else:
            self.stats = single_level_stats(
                fill_by_cluster_means(numeric, self.observed, None), self.observed
            )
            if self.missing and self.method == "marginal":
                self.likelihood_stats = single_level_missing_stats(numeric, self.observed)
            self.n_clusters = None
        self.data = self.raw.frame
        self.nobs = len(self.raw.frame)

    @property
    def has_closed_form(self) -> bool:
        """Whether the model's implied moments describe the data (no random slopes or ordered indicators):
        what log-likelihoods, standardized solutions and predictive draws of the marginal model use."""
        return not self.partable.needs_latent_builder

    def check_closed_form(self, what: str) -> None:
        """Raise a :class:`ModelSpecificationError` naming ``what`` unless :attr:`has_closed_form`."""
        if not self.has_closed_form:
            raise ModelSpecificationError(
                f"{what} is computed from the model-implied means and covariances, which do not describe a "
                "model with random slopes or ordered indicators; use the posterior of the parameters and "
                "latent variables (parameter_estimates(), latent_scores()) instead"
            )

    def check_complete(self, what: str) -> None:
        """Raise a :class:`DataError` naming ``what`` when the modelled variables have missing values."""
        self.check_closed_form(what)
        if self.missing:
            raise DataError(
                f"{what} compares the model with the saturated model of the observed data, which with "
                "missing values pymlsem estimates for two-level models and for single-level models without "
                "exogenous covariates, not for a single-level model with exogenous covariates; the pointwise "
                "log-likelihood (loo, compare, DIC), a deviance PPP and posterior predictive draws work with "
                "missing values"
            )

    def fixed_row_values(self) -> np.ndarray:
        """Value of each fixed row of the table (exogenous moments from the data), NaN for free rows."""
        table = self.partable.table
        values = table["value"].to_numpy(dtype=float).copy()
        values[(table.exo == 1).to_numpy()] = self.exo_values
        return values

    def log_likelihood(self, estimates: pd.DataFrame, *, fixed_x: bool = True) -> float:
        """Log-likelihood of the data at given parameter values (for example lavaan's estimates).

        Parameters
        ----------
        estimates
            A table with columns ``lhs, op, rhs, est`` and, for two-level models, ``level`` (1/2 or
            within/between), as lavaan's ``parameterEstimates()`` writes it. Intercepts of observed
            variables that are missing (a model fitted without a mean structure) are set to the sample
            means, which is what such a fit implies; any other missing free parameter is an error.
        fixed_x
            Subtract the saturated log-likelihood of the exogenous covariates, as lavaan's ``logl`` does
            under ``fixed.x = TRUE``.

        Returns
        -------
        float
        """
        import pytensor

        rows = self.rows_from_estimates(estimates)
        value = float(
            pytensor.function(
                [],
                loglik_from_rows(
                    self.built.layouts,
                    rows,
                    self.likelihood_stats or self.stats,
                    meanstructure=self.meanstructure,
                ),
                mode=compile_mode("FAST_COMPILE"),  # evaluated once: skip the C compilation
            )()
        )
        if fixed_x:
            exo = self.partable.exogenous
            if self.partable.n_levels == 2:
                value -= two_level_fixed_x_loglik(self.stats, exo.get(1, []), exo.get(2, []))
            else:
                value -= single_level_fixed_x_loglik(self.stats, exo.get(1, []))
        return value

    def rows_from_estimates(self, estimates: pd.DataFrame) -> np.ndarray:
        """The value of every row of the parameter table, taken from a lavaan-style estimates table.

        Parameters
        ----------
        estimates
            Columns ``lhs, op, rhs, est`` and, for two-level models, ``level`` (as lavaan's
            ``parameterEstimates()``). Missing intercepts of observed variables take the sample means; fixed
            rows keep their values.

        Returns
        -------
        numpy.ndarray
            One value per table row (:attr:`partable`), the layout of the posterior's row draws.

        Raises
        ------
        DataError
            When ``estimates`` lacks a column or a free parameter.
        """
        needed = {"lhs", "op", "rhs", "est"}
        if not isinstance(estimates, pd.DataFrame) or not needed <= set(estimates.columns):
            have = (
                list(estimates.columns) if isinstance(estimates, pd.DataFrame) else type(estimates).__name__
            )
            raise DataError(
                "estimates must be a table with columns lhs, op, rhs, est (and level for two-level models), "
                f"as lavaan's parameterEstimates(); got {have}"
            )
        level_of = {"within": 1, "between": 2, 1: 1, 2: 2, "1": 1, "2": 2}
        given: dict[tuple, float] = {}
        for row in estimates.itertuples(index=False):
            level = level_of.get(getattr(row, "level", 1), 1)
            rhs = "" if pd.isna(row.rhs) else str(row.rhs)
            given[(row.lhs, row.op, rhs, level)] = float(row.est)
            if row.op == "~~":
                given[(rhs, row.op, row.lhs, level)] = float(row.est)
        table = self.partable.table
        values = self.fixed_row_values()
        mean = getattr(self.stats, "mean", None)
        sample_mean = dict(zip(self.stats.variables, mean, strict=True)) if mean is not None else {}
        for r, row in enumerate(table.itertuples(index=False)):
            key = (row.lhs, row.op, row.rhs, int(row.level))
            if key in given:
                values[r] = given[key]
            elif row.op == "~1" and row.lhs in sample_mean:
                values[r] = sample_mean[row.lhs]
            elif int(row.free) > 0:
                raise DataError(f"no estimate given for {row.lhs} {row.op} {row.rhs} (level {row.level})")
        return values

    def structure_key(self) -> tuple:
        """Identifies the structure of the compiled model (same key: the compiled model can be reused)."""
        priors = tuple((p.name, p.variable, p.scale) for p in self.built.free)
        stats = self.likelihood_stats or self.stats
        shapes = tuple((k, np.shape(v)[1:]) for k, v in stats_data_values(stats).items())
        key = (self.source, self.model_type, self.std_lv, self.cluster, tuple(self.observed))
        key = (*key, self.meanstructure, priors)
        if self.method == "latent":  # the rows are constants of the latent model's graph
            frame = pd.util.hash_pandas_object(self.raw.frame, index=False).to_numpy()
            codes = tuple((k, v.tobytes()) for k, v in self.codes.items())
            return (*key, "latent", self.link, self.centered, frame.tobytes(), codes)
        return (*key, shapes)

    def data_values(self) -> dict[str, np.ndarray]:
        """Current values of the model's ``pm.Data`` (statistics, exogenous moments, prior settings)."""
        stats = self.likelihood_stats or self.stats
        values = stats_data_values(stats) if self.method == "marginal" else {}
        values[EXO_DATA] = np.asarray(self.exo_values, dtype=float)
        for p_var in self.built.model.data_vars:
            name = p_var.name
            if "__" in name and not name.startswith("stats__"):
                values[name] = np.asarray(p_var.get_value())
        return values

    def with_priors(self, priors: Mapping[str, str]) -> SEM:
        """The same model on the same data with the priors ``priors`` changed (by class or by parameter, as
        ``priors=``); the others stay (:func:`pymlsem.workflow.refit.sem_refit_spec`).

        Only the PyMC model is built again; when only prior arguments change, ``structure_key()`` stays
        the same and a fit reuses the compiled model.
        """
        return sem_refit_spec(self, priors)

    def prior_predictive(self, n_draws: int = 500, seed: int | None = None) -> Any:
        """Draw the parameters from their priors and a replicated data set from each draw.

        See :func:`pymlsem.workflow.predictive.sem_prior_predictive`.

        Returns
        -------
        xarray.DataTree
            Groups ``prior``, ``prior_predictive`` and (raw data) ``observed_data``.
        """

        return sem_prior_predictive(self, n_draws, seed)

    def fit(
        self,
        *,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        sampler: str = "nutpie",
        random_seed: int | None = None,
        progressbar: bool = True,
        **kwargs: Any,
    ) -> SEMFit:
        """Sample the posterior with NUTS.

        Parameters
        ----------
        draws, tune, chains
            Draws kept per chain, tuning steps per chain, number of chains.
        sampler
            ``"nutpie"`` (default), ``"pymc"``, ``"numpyro"`` or ``"blackjax"``.
        random_seed
            Seed for reproducible draws.
        progressbar
            Show progress.
        **kwargs
            Passed to the sampler (e.g. ``target_accept``). With nutpie, a two-level model on the latent
            builder adapts a diagonal mass matrix from the draws' variances (``adaptation="draw_diag"``,
            as Stan and PyMC do) unless ``adaptation`` is given; ``adaptation="diag"`` is nutpie's own
            default (from the draws' and the gradients' variances).
        """
        if self.method == "latent" and self.partable.n_levels == 2:
            # more effective draws per draw on every two-level latent model measured, the same per second
            # (benchmarks/README.md, session 46; docs/design-decisions.md)
            kwargs = with_nutpie_adaptation(sampler, kwargs, "draw_diag")
        settings = SamplerSettings(sampler, draws, tune, chains, random_seed, progressbar, options=kwargs)
        idata, timings = sample_spec(
            self, self.pymc_model, self.structure_key, self.data_values, settings, self.build_seconds
        )
        return _checked(SEMFit(self, idata, **settings.fit_record(), timings=timings))


def _checked(fit: SEMFit) -> SEMFit:
    """The fit, after warning when its draws fail a convergence check."""
    fit.warn_if_unconverged()
    return fit


#: keywords of :class:`SEM` (the model); the other keywords of ``sem()`` go to :meth:`SEM.fit`
MODEL_KEYWORDS = (
    "centered",
    "priors",
    "sample_cov",
    "sample_mean",
    "sample_nobs",
    "variables",
    "method",
    "ordered",
    "link",
    "std_lv",
)


def _fit(model_type: str, model: str, data, cluster, **kwargs) -> SEMFit:
    model_kwargs = {k: kwargs.pop(k) for k in MODEL_KEYWORDS if k in kwargs}
    spec = SEM(model, data, cluster, model_type=model_type, **model_kwargs)
    return spec.fit(**kwargs)


def sem(
    model: str,
    data: pd.DataFrame | None = None,
    cluster: str | None = None,
    *,
    priors: Mapping[str, str] | str | None = None,
    method: str = "auto",
    ordered: Sequence[str] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    sampler: str = "nutpie",
    random_seed: int | None = None,
    progressbar: bool = True,
    **kwargs: Any,
) -> SEMFit:
    """Fit a structural equation model written in lavaan syntax (lavaan's ``sem()`` defaults).

    Parameters
    ----------
    model
        The model in lavaan syntax; ``level: 1`` / ``level: 2`` blocks make a two-level model.
    data
        The data, one row per observation (not modified); optional with summary statistics.
    cluster
        Name of the cluster column (two-level models).
    priors, method, ordered
        As in :class:`SEM`.
    draws, tune, chains, sampler, random_seed, progressbar
        As in :meth:`SEM.fit`.
    **kwargs
        The other arguments of :class:`SEM` (``std_lv``, ``link``, ``centered``, ``sample_cov``,
        ``sample_mean``, ``sample_nobs``, ``variables``) and of :meth:`SEM.fit` (sampler settings such as
        ``target_accept``).

    Returns
    -------
    SEMFit
        The posterior with lavaan/blavaan-style summaries; it warns when the draws did not converge.
    """
    return _fit(
        "sem",
        model,
        data,
        cluster,
        priors=priors,
        method=method,
        ordered=ordered,
        draws=draws,
        tune=tune,
        chains=chains,
        sampler=sampler,
        random_seed=random_seed,
        progressbar=progressbar,
        **kwargs,
    )


def cfa(model: str, data: pd.DataFrame | None = None, cluster: str | None = None, **kwargs: Any) -> SEMFit:
    """Fit a confirmatory factor analysis (lavaan's ``cfa()`` defaults).

    Parameters
    ----------
    model, data, cluster
        As in :func:`sem`.
    **kwargs
        The keywords of :func:`sem`.

    Returns
    -------
    SEMFit
    """
    return _fit("cfa", model, data, cluster, **kwargs)


def growth(model: str, data: pd.DataFrame | None = None, cluster: str | None = None, **kwargs: Any) -> SEMFit:
    """Fit a latent growth model (lavaan's ``growth()`` defaults).

    Parameters
    ----------
    model, data, cluster
        As in :func:`sem`.
    **kwargs
        The keywords of :func:`sem`.

    Returns
    -------
    SEMFit
    """
    return _fit("growth", model, data, cluster, **kwargs)


def _summary_names(sample_cov: Any, variables: list[str] | None) -> list[str]:
    if isinstance(sample_cov, pd.DataFrame):
        return [str(c) for c in sample_cov.columns]
    if variables is None:
        raise DataError("sample_cov is an array: give variables=[...] naming its rows and columns")
    shape = np.shape(sample_cov)
    if shape != (len(variables), len(variables)):
        raise DataError(
            f"sample_cov has shape {shape} but variables= names {len(variables)} variable(s); give one name "
            "per row and column"
        )
    return list(variables)


def _reorder(stats, observed):
    """Statistics restricted to and ordered as the model's observed variables."""
    if list(stats.variables) == list(observed):
        return stats
    names = list(stats.variables)
    idx = [names.index(v) for v in observed]
    cov = np.asarray(stats.cov)[np.ix_(idx, idx)]
    mean = None if stats.mean is None else np.asarray(stats.mean)[idx]
    return type(stats)(variables=tuple(observed), nobs=stats.nobs, mean=mean, cov=cov)


def _check_identification(spec: SEM) -> None:
    """Raise when the model has more free parameters than the data have sample moments.

    Not for random slopes or ordered indicators: their information is not in the means and covariances.
    """
    if spec.partable.needs_latent_builder:
        return
    levels = spec.partable.n_levels
    if levels == 2:
        p_w = len(spec.stats.within_index)
        p = len(spec.stats.variables)
        p_b = p - len(spec.partable.within_only)
        moments = p_w * (p_w + 1) // 2 + p_b * (p_b + 1) // 2 + p
    else:
        p = len(spec.observed)
        moments = p * (p + 1) // 2 + (p if spec.meanstructure else 0)
    n_free = len(spec.built.free)
    if n_free > moments:
        raise ModelSpecificationError(
            f"the model has {n_free} free parameters but the data give only {moments} sample moments, so it "
            "is not identified; fix some parameters (e.g. 0*x), constrain them with shared labels, or "
            "simplify the model"
        )


def _ordinal_columns(
    data: pd.DataFrame | None, ordered: Sequence[str] | None, parsed: ParsedModel, from_summary: bool
) -> dict:
    """Category codes of the ordered indicators (empty when there are none): those of ``ordered=`` and, as
    in lavaan, the variables with a threshold statement (``y | t1``) in the model."""
    names = [ordered] if isinstance(ordered, str) else list(ordered or [])
    names += [s.lhs for s in parsed.statements if s.op == "|" and s.lhs not in names]
    if not names:
        return {}
    if from_summary:
        raise DataError("ordered indicators need the raw data, not summary statistics")
    return ordinal_codes(data, list(dict.fromkeys(names)))


def _choose_method(method: str, partable: ParTable, from_summary: bool) -> str:
    """The builder to use: ``auto`` picks the marginal one unless the model needs explicit latents."""
    if method == "auto":
        method = "latent" if partable.needs_latent_builder else "marginal"
    if method == "latent" and from_summary:
        raise DataError("method='latent' needs the raw data, not summary statistics")
    return method


def _check_priors_argument(priors: Mapping[str, str] | str | None) -> dict[str, str]:
    """The user's priors by class or parameter; ``"blavaan"`` (blavaan's default numbers) gives none."""
    if isinstance(priors, Mapping):
        bad = {key: value for key, value in priors.items() if not isinstance(value, str)}
        if bad:
            key, value = next(iter(bad.items()))
            raise PriorError(
                f"priors[{key!r}] = {value!r}: a prior is a string such as 'normal(0,10)' or "
                "'gamma(1,.5)[sd]'"
            )
    if isinstance(priors, str):
        if priors != "blavaan":
            raise PriorError(
                f"priors={priors!r} is not a choice of default priors: give 'blavaan' (blavaan's numbers as "
                "they are), or a dict of prior strings by class or parameter, e.g. {'lambda': 'normal(0,1)'}"
            )
        return {}
    if priors is not None and not isinstance(priors, Mapping):
        raise PriorError(
            f"priors must be a dict of prior strings by class or parameter (or 'blavaan'), not "
            f"{type(priors).__name__}"
        )
    return dict(priors or {})


def _centered_levels(centered: bool | str) -> tuple[int, ...]:
    """The levels ``centered=`` names: False, True, "between" or "within"."""
    choices = {False: (), True: (1, 2), "between": (2,), "within": (1,)}
    if isinstance(centered, bool) or centered in ("between", "within"):
        return choices[centered]
    raise ModelSpecificationError(f"centered must be True, False, 'between' or 'within', got {centered!r}")
