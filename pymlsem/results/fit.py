"""The result of fitting a SEM: posterior, parameter table, lavaan/blavaan-style summary."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from pymlsem.exceptions import PymlsemError
from pymlsem.plots.path_diagram import path_diagram
from pymlsem.plots.path_figure import plot_path_diagram
from pymlsem.results.fit_methods import FitMethods
from pymlsem.results.implied import row_value_draws
from pymlsem.results.latent_scores import latent_scores
from pymlsem.results.lavaan_summary import format_estimates, format_header
from pymlsem.results.posterior import (
    SAMPLE_DIMS,
    check_prob,
    columns,
    flat,
    group,
    interval_names,
    summarize_draws,
)
from pymlsem.results.standardized import icc, r_squared, standardized_solution
from pymlsem.sample import SamplerSettings
from pymlsem.version import __version__
from pymlsem.workflow.information import data_digest, sem_dic
from pymlsem.workflow.pointwise import Pointwise, sem_fit_pointwise, sem_total_loglik
from pymlsem.workflow.ppp import posterior_predictive_pvalue
from pymlsem.workflow.predictive import posterior_predictive, sem_replicated_data
from pymlsem.workflow.protocol import ParameterColumns
from pymlsem.workflow.saturated import sample_statistics
from pymlsem.workflow.saturated_posterior import saturated_posterior
from pymlsem.workflow.srmr import srmr

if TYPE_CHECKING:
    from pathlib import Path

    import pymc as pm

    from pymlsem.api import SEM

ESTIMATE_COLUMNS = ["lhs", "op", "rhs", "level", "label", "free"]


class SEMFit(FitMethods):
    """A fitted structural equation model.

    Attributes
    ----------
    model
        The :class:`~pymlsem.api.SEM` that was fitted.
    idata
        The posterior as an ArviZ DataTree (groups ``posterior``, ``sample_stats``, ...). The variable
        ``parameters`` holds every free parameter on lavaan's scale (variances, covariances),
        ``defined`` the ``:=`` parameters.
    sampler, chains, draws, tune, timings, options
        How it was sampled (see :class:`~pymlsem.results.fit_methods.FitMethods`).
    """

    def __init__(self, model: SEM, idata: Any, **sampled: Any) -> None:
        self.model = model
        super().__init__(idata, **sampled)

    def _with_posterior(self, idata: Any, **sampled: Any) -> SEMFit:
        return type(self)(self.model, idata, **sampled)

    def convergence_note(self) -> str | None:
        """The failed checks of :meth:`diagnose` in one paragraph (None when all pass); when the slow
        parameters are loadings or variances of factors scaled by a marker loading, it also suggests
        ``std_lv=True``, the same model with each factor's variance fixed at 1, whose loadings are not
        ratios to a marker's (heavy-tailed when the marker loads weakly)."""
        note = super().convergence_note()
        factors = ", ".join(self._slow_marker_factors()) if note is not None else ""
        if not factors:
            return note
        return (
            f"{note} The slow parameters belong to factors scaled by a marker loading ({factors}): "
            "std_lv=True (lavaan's std.lv, the same model with each factor's variance fixed at 1) often "
            "samples them better."
        )

    def _slow_marker_factors(self) -> list[str]:
        """Factors scaled by a marker (first loading fixed at 1, others free: not a growth factor) whose
        loadings or variance a failed R-hat or ESS check names."""
        table = self.model.partable.table
        loadings = table[table["op"] == "=~"].groupby(["lhs", "level"], sort=False)
        markers = [
            factor
            for (factor, _), rows in loadings
            if rows["free"].iloc[0] == 0 and rows["value"].iloc[0] == 1.0 and (rows["free"] > 0).any()
        ]
        diagnosis = self.diagnose()
        failed = diagnosis[~diagnosis["ok"] & diagnosis.index.isin(["r_hat", "ess_bulk", "ess_tail"])]
        names = [re.findall(r"\[([^]]+)\]", worst) for worst in failed["worst"]]
        named = {name.split("@")[0] for listed in names for name in listed}
        return [
            factor
            for factor in dict.fromkeys(markers)
            if f"{factor}~~{factor}" in named or any(name.startswith(f"{factor}=~") for name in named)
        ]

    def parameter_estimates(self, prob: float = 0.95) -> pd.DataFrame:
        """One row per parameter (free and fixed) and per defined parameter.

        Parameters
        ----------
        prob
            Probability of the central posterior interval (columns ``q2.5``/``q97.5`` for 0.95).

        Returns
        -------
        pandas.DataFrame
            Columns ``lhs, op, rhs, level, label, free, mean, sd, q<lo>, q<hi>, r_hat, ess_bulk,
            ess_tail, prior``. Fixed parameters show their value as ``mean`` and no SD.
        """
        check_prob(prob)
        built = self.model.built
        table = self.model.partable.table
        free_stats = summarize_draws(self.idata.posterior["parameters"], prob)
        stat_columns = list(free_stats.columns)
        out = table[["lhs", "op", "rhs", "level", "label"]].copy()
        out["free"] = built.row_param >= 0
        stats = np.full((len(table), len(stat_columns)), np.nan)
        fixed_values = self.model.fixed_row_values()
        for r in range(len(table)):
            if built.row_param[r] >= 0:
                stats[r] = free_stats.iloc[built.row_param[r]].to_numpy()
            else:
                stats[r, 0] = fixed_values[r]
        out[stat_columns] = stats
        out["prior"] = [str(built.free[i].prior) if i >= 0 else "" for i in built.row_param]
        if built.defined:
            defined = summarize_draws(self.idata.posterior["defined"], prob)
            rows = pd.DataFrame(
                {
                    "lhs": built.defined,
                    "op": ":=",
                    "rhs": [str(s.rhs) for s in self.model.partable.defined],
                    "level": pd.NA,
                    "label": "",
                    "free": True,
                    **{c: defined[c].to_numpy() for c in stat_columns},
                    "prior": "",
                }
            )
            out = pd.concat([out, rows], ignore_index=True)
        out["level"] = out["level"].astype("Int64")
        return out.reset_index(drop=True)

    def standardized_solution(self, type: str = "std.all", prob: float = 0.95) -> pd.DataFrame:
        """lavaan's ``standardizedSolution()`` per posterior draw, summarised.

        See :func:`pymlsem.results.standardized.standardized_solution`.

        Parameters
        ----------
        type
            ``"std.all"``, ``"std.lv"`` or ``"std.nox"``.
        prob
            Probability of the central posterior interval.

        Returns
        -------
        pandas.DataFrame
            One row per parameter-table row and defined parameter, with ``est.std`` (posterior mean),
            ``sd``, the interval and diagnostics.
        """

        return standardized_solution(self, type=type, prob=prob)

    def r_squared(self, prob: float = 0.95) -> pd.DataFrame:
        """R-squared of each endogenous variable per level, with intervals (lavaan's ``r2``).

        See :func:`pymlsem.results.standardized.r_squared`.

        Parameters
        ----------
        prob
            Probability of the central posterior interval.

        Returns
        -------
        pandas.DataFrame
            Columns ``variable, level, r2`` (posterior mean), ``sd``, the interval and diagnostics.
        """

        return r_squared(self, prob=prob)

    def icc(self, prob: float = 0.95) -> pd.DataFrame:
        """Intraclass correlations of observed variables and factors of a two-level model, with intervals.

        See :func:`pymlsem.results.standardized.icc` (the factor ICC assumes loadings equal across levels).

        Parameters
        ----------
        prob
            Probability of the central posterior interval.

        Returns
        -------
        pandas.DataFrame
            Columns ``kind, within, between, equal_loadings, icc`` (posterior mean), ``sd``, the interval
            and diagnostics.

        Raises
        ------
        ModelSpecificationError
            When the model has a single level.
        """

        return icc(self, prob=prob)

    def latent_scores(
        self,
        level: int = 1,
        *,
        seed: int | None = 0,
        n_draws: int | None = None,
        include_observed: bool = False,
    ) -> Any:
        """Posterior draws of the latent variables (factor scores, cluster effects) of one level.

        See :func:`pymlsem.results.latent_scores.latent_scores`.

        Parameters
        ----------
        level
            1: within-level (or single-level) latent variables per row; 2: between-level ones per cluster.
        seed
            Seed of the draws.
        n_draws
            Keep about this many posterior draws (evenly spaced within each chain); all by default.
        include_observed
            Level 2: also the between parts of the observed variables (cluster random intercepts).

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw, row, latent)`` (level 1) or ``(chain, draw, cluster, latent)`` (level 2).
        """

        return latent_scores(self, level, seed=seed, n_draws=n_draws, include_observed=include_observed)

    def ppp(self, n_draws: int = 1000, *, seed: int | None = 0, tol: float = 1e-4) -> Any:
        """Posterior predictive p-value from the chi-square discrepancy (blavaan's PPP), cached on the fit.

        See :func:`pymlsem.workflow.ppp.posterior_predictive_pvalue`.

        Parameters
        ----------
        n_draws
            Number of posterior draws used (evenly spaced; one replicated data set each).
        seed
            Seed of the replicated data.
        tol
            Two-level saturated model's EM tolerance (lavaan's 1e-4).

        Returns
        -------
        PPPResult
            ``float(result)`` is the PPP; the discrepancies per draw are ``observed`` and ``replicated``.
        """

        cache = self.__dict__.setdefault("_ppp_cache", {})
        key = (n_draws, seed, tol)
        if key not in cache:
            cache[key] = posterior_predictive_pvalue(self, n_draws, seed=seed, tol=tol)
        return cache[key]

    def srmr(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior summary of lavaan's SRMR (two-level: ``srmr``, ``srmr_within``, ``srmr_between``).

        See :func:`pymlsem.workflow.srmr.srmr`; per-draw values: :func:`pymlsem.workflow.srmr.srmr_draws`.

        Parameters
        ----------
        prob
            Probability of the central posterior interval.

        Returns
        -------
        pandas.DataFrame
            One row per measure, columns ``mean, sd``, the interval and diagnostics.
        """
        check_prob(prob)

        return srmr(self, prob=prob)

    def sample_statistics(self, bayesian: bool = False, **kwargs: Any) -> Any:
        """The saturated model's means and covariances per level (lavaan's ``sampstat``).

        Parameters
        ----------
        bayesian
            False: the ML estimates (:func:`pymlsem.workflow.saturated.sample_statistics`; lavaan's numbers).
            True: sample the saturated model and return its posterior summaries
            (:func:`pymlsem.workflow.saturated_posterior.saturated_posterior`; ``kwargs`` go to the sampler).

        Returns
        -------
        SaturatedMoments or SaturatedPosterior
            ``.mean[level]`` (Series) and ``.cov[level]`` (DataFrame), level 1 = within, 2 = between; the
            posterior version also has ``.table`` with intervals and ``.fit``.
        """
        if bayesian:
            return saturated_posterior(self, **kwargs)

        if "_sample_statistics" not in self.__dict__:
            self.__dict__["_sample_statistics"] = sample_statistics(self)
        return self.__dict__["_sample_statistics"]

    def reported_variables(self) -> list[str]:
        """The free parameters on lavaan's scale (``parameters``): what :meth:`diagnose` checks."""
        return ["parameters"]

    def _ppp_header(self) -> list[tuple[str, object]]:
        """The summary header's PPP line (computed once, with :meth:`ppp`'s defaults)."""

        # given latent variables, or with missing values, a draw costs a replicate and its statistics
        # (tens of ms): the summary uses 200 draws there and says so; fit.ppp() takes 1000
        n_draws = 1000 if self.model.has_closed_form and not self.model.missing else 200
        try:
            result = self.ppp(n_draws)
        except PymlsemError:  # e.g. covariates with parts at both levels: see fit.ppp()
            return [("", ""), ("PPP (chi-square)", "n/a")]
        return [("", ""), (f"PPP ({result.discrepancy}, {result.n_draws} draws)", f"{result.ppp:.3f}")]

    def summary(self, prob: float = 0.95) -> str:
        """A lavaan/blavaan-style printout: a header, then each level's parameter sections."""
        check_prob(prob)
        estimates = self.parameter_estimates(prob)
        free = estimates[estimates.free & (estimates.op != ":=")]
        data = self.model
        header = [
            ("Sampler", f"NUTS ({self.sampler})"),
            ("Chains", self.chains),
            ("Draws per chain (after tuning)", self.draws),
            ("Tuning steps per chain", self.tune),
            ("", ""),
            ("Number of model parameters", len(self.model.built.free)),
            ("Number of observations", data.nobs),
        ]
        if data.cluster is not None:
            header.append((f"Number of clusters [{data.cluster}]", data.n_clusters))
        header += [
            ("", ""),
            ("Divergent transitions", self.divergences()),
            ("Max R-hat", f"{free.r_hat.max():.3f}"),
            ("Min bulk ESS", f"{free.ess_bulk.min():.0f}"),
            (
                "Convergence checks",
                "passed" if self.convergence_note() is None else "FAILED (fit.diagnose())",
            ),
            (
                "Time: build / compile / sample (s)",
                f"{self.timings.build:.1f} / {self.timings.compile:.1f} / {self.timings.sampling:.1f}",
            ),
        ]
        header += self._ppp_header()
        # blavaan and INLAvaan print a marginal log-likelihood; pymlsem does not estimate one (no bridge
        # sampling yet): say so rather than leave the reader looking for it. Compare models with fit.loo().
        header.append(("Marginal log-likelihood", "not computed (compare models with loo())"))
        lo, hi = interval_names(prob)
        builder = "explicit latent variables" if data.method == "latent" else "integrated likelihood"
        lines = format_header(header, f"pymlsem {__version__}: Bayesian SEM ({data.model_type}), {builder}")
        lines.append("")
        lines += format_estimates(estimates, self.model.partable.n_levels, (lo, hi))
        lines.append(f"Intervals: central {prob:.0%} posterior intervals. ESS: bulk effective sample size.")
        for note in self.warning_notes():
            lines += ["", f"WARNING: {note}"]
        return "\n".join(lines)

    # --- Bayesian workflow: information criteria, predictive draws, prior sensitivity, refits ----------

    def dic(self) -> Any:
        """Deviance information criterion and pD, on blavaan's scale.

        See :func:`pymlsem.workflow.information.sem_dic`.

        Returns
        -------
        DIC
            ``dic``, ``dbar``, ``dhat``, ``pd``.
        """

        return sem_dic(self)

    def posterior_predictive(self, n_draws: int | None = 500, seed: int | None = None) -> Any:
        """Replicated data sets (same rows and clusters) stored as the ``posterior_predictive`` group.

        See :func:`pymlsem.workflow.predictive.posterior_predictive`.

        Returns
        -------
        xarray.DataTree
            ``self.idata``.
        """

        return posterior_predictive(self, n_draws, seed)

    def prior_predictive(self, n_draws: int = 500, seed: int | None = None) -> Any:
        """Prior draws and replicated data sets, stored as the ``prior`` and ``prior_predictive`` groups.

        See :func:`pymlsem.workflow.predictive.sem_prior_predictive`.

        Returns
        -------
        xarray.DataTree
            ``self.idata``.
        """
        tree = self.model.prior_predictive(n_draws, seed)
        for name in ("prior", "prior_predictive"):
            self.idata[name] = tree[name].to_dataset()
        return self.idata

    def path_diagram(self, path: str | Path | None = None, **kwargs: Any) -> Any:
        """Path diagram per level with posterior means on the arrows (graphviz).

        See :func:`pymlsem.plots.path_diagram.path_diagram` (``digits``, ``intervals``, ``prob``,
        ``variances``, ``rankdir``); needs the graphviz package, and Graphviz's ``dot`` to render images.

        Parameters
        ----------
        path
            ``.gv``/``.dot``: save the DOT source; ``.png``/``.svg``/``.pdf``: render; not saved if None.
        **kwargs
            Passed to :func:`pymlsem.plots.path_diagram.path_diagram`.

        Returns
        -------
        graphviz.Digraph
        """

        return path_diagram(self, path, **kwargs)

    def plot_path_diagram(self, level: int | None = None, **kwargs: Any) -> Any:
        """Path diagram per level with posterior means on the arrows, drawn with matplotlib.

        See :func:`pymlsem.plots.path_figure.plot_path_diagram` (``digits``, ``intervals``, ``prob``,
        ``variances``, ``path``); the same nodes and edges as :meth:`path_diagram`, without Graphviz.

        Parameters
        ----------
        level
            Draw only this level (1: within, 2: between); every level if None.
        **kwargs
            Passed to :func:`pymlsem.plots.path_figure.plot_path_diagram`.

        Returns
        -------
        matplotlib.figure.Figure
        """
        return plot_path_diagram(self, level, **kwargs)

    # --- what the workflow tools and plots ask of a fit (pymlsem.workflow.protocol.Fitted) -------------

    @property
    def pymc_model(self) -> pm.Model:
        """The SEM's PyMC model."""
        return self.model.pymc_model

    def default_unit(self) -> str:
        """``"cluster"`` for a two-level model, ``"observation"`` for a single-level one."""
        return "cluster" if self.model.partable.n_levels == 2 else "observation"

    def pointwise_log_likelihood(self, unit: str) -> Pointwise:
        """The log-likelihood of every draw by cluster or by row
        (:func:`pymlsem.workflow.pointwise.sem_fit_pointwise`)."""
        return sem_fit_pointwise(self, unit)

    def total_log_likelihood(self) -> np.ndarray | None:
        """The log-likelihood of all the data per draw for a fit to summary statistics (which has no rows to
        give one each); None for a fit to raw data."""
        if getattr(self.model, "data", None) is not None:
            return None
        return sem_total_loglik(self.model, row_value_draws(self))

    def replicated_data(
        self, posterior: xr.Dataset, seed: int | None, random_effects: str
    ) -> tuple[xr.Dataset, xr.Dataset | None]:
        """Replicated data sets (:func:`pymlsem.workflow.predictive.sem_replicated_data`); a SEM has no
        random effects to choose, so ``random_effects`` changes nothing."""
        return sem_replicated_data(self.model, posterior, seed)

    def replicated_variables(self, available: Sequence[str]) -> list[str]:
        """The observed variables but the exogenous covariates (the replicates hold them at their values)."""
        exogenous = {name for names in self.model.partable.exogenous.values() for name in names}
        return [name for name in available if name not in exogenous] or list(available)

    def observed_values(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """The data's columns ``names``.

        Raises
        ------
        PymlsemError
            For a fit to summary statistics.
        """
        data = getattr(self.model, "data", None)
        if data is None:
            raise PymlsemError("the fit has no observed data (it was fitted to summary statistics)")
        return {name: data[name].to_numpy(dtype=float) for name in names}

    def data_identity(self) -> tuple[tuple[str, ...], int, str]:
        """The observed variables, the number of rows and a digest of the values (and clusters); for a fit
        to summary statistics, of the covariance matrix and means."""
        spec = self.model
        variables = tuple(sorted(spec.observed))
        data = getattr(spec, "data", None)
        if data is None:
            stats = spec.stats
            mean = stats.mean if stats.mean is not None else np.zeros(0)
            order = [list(stats.variables).index(v) for v in variables]
            cov = np.asarray(stats.cov)[np.ix_(order, order)]
            return variables, int(spec.nobs), data_digest(cov, np.asarray(mean)[order] if mean.size else mean)
        values = [data[v].to_numpy(dtype=float) for v in variables]
        if spec.cluster is not None:
            values.append(pd.factorize(data[spec.cluster], sort=True)[0])
        return variables, len(data), data_digest(*values)

    def parameter_draws(self) -> xr.DataArray:
        """The free parameters on lavaan's scale (as in the summary), then the defined (``:=``) ones."""
        posterior = self.idata.posterior
        parts = [posterior["parameters"].transpose(*SAMPLE_DIMS, "parameter")]
        if "defined" in posterior:
            parts.append(posterior["defined"].rename(defined_parameter="parameter"))
        return xr.concat(parts, dim="parameter") if len(parts) > 1 else parts[0]

    def parameter_columns(self) -> ParameterColumns:
        """The free then the defined parameters as plot columns; the free ones by default."""
        return self.prior_columns(group(self.idata, "posterior"))

    def parameter_priors(self) -> dict[str, str]:
        """Each free parameter's prior as written (``normal(0,10)``, ``gamma(1,.5)[sd]``)."""
        return {p.name: str(p.prior) for p in self.model.built.free}

    def prior_variables(self) -> list[str]:
        """``parameters`` (and ``defined`` when the model has ``:=`` parameters)."""
        return ["parameters", *(["defined"] if self.model.built.defined else [])]

    def prior_columns(self, source: xr.Dataset) -> ParameterColumns:
        """The free (``parameters``) and defined (``defined``) parameters of ``source`` as named columns.

        A parameter is named by its display name (``fw=~y2@within``, or its label), by any of the rows it
        stands for, and by a row without its ``@within``/``@between`` suffix when that is unambiguous.
        """
        built = self.model.built
        names = [p.name for p in built.free] + list(built.defined)
        lookup: dict[str, list[int]] = {}
        short: dict[str, set[int]] = {}
        for i, parameter in enumerate(built.free):
            for alias in (parameter.name, *parameter.aliases):
                lookup.setdefault(alias, [i])
                if "@" in alias:
                    short.setdefault(alias.rsplit("@", 1)[0], set()).add(i)
        for name, where in short.items():
            lookup.setdefault(name, sorted(where) if len(where) == 1 else [])
        for j, name in enumerate(built.defined, start=len(built.free)):
            lookup.setdefault(name, [j])
        parts = [flat(source["parameters"])]
        if built.defined and "defined" in source:
            parts.append(flat(source["defined"]))
        values = np.concatenate(parts, axis=-1)
        return columns(values, names[: values.shape[-1]]), lookup, list(range(len(built.free)))

    def fit_with_priors(self, priors: Mapping[str, str], settings: SamplerSettings) -> SEMFit:
        """The same model with the priors ``priors`` changed (:meth:`pymlsem.api.SEM.with_priors`), sampled
        with ``settings``."""
        return self.model.with_priors(priors).fit(**settings.keywords())

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return self.summary()
