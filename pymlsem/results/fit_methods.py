"""The base class of every fit (SEM and mixed-model): how it was sampled, and the methods all kinds of fit
share, thin wrappers around :mod:`pymlsem.workflow` and :mod:`pymlsem.plots`."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from pymlsem.diagnostics.convergence import convergence_message, diagnose
from pymlsem.exceptions import ControlError, ConvergenceWarning
from pymlsem.plots import plot_autocorr, plot_fit_ppc, plot_prior_posterior, plot_rank, plot_trace_density
from pymlsem.sample import SamplerSettings, Timings
from pymlsem.workflow.information import loo, loo_outliers, waic
from pymlsem.workflow.pointwise import add_log_likelihood
from pymlsem.workflow.refit import refit
from pymlsem.workflow.sensitivity import prior_sensitivity

__all__ = ["FitMethods"]


class FitMethods:
    """The base class of every fit: the posterior, how it was sampled, pointwise log-likelihood, LOO, prior
    sensitivity, refits, convergence checks and plots (plots need matplotlib). Each kind of fit adds the
    members of :class:`pymlsem.workflow.protocol.Fitted` these ask for.

    Parameters
    ----------
    idata
        The posterior (an ArviZ DataTree).
    sampler, chains, draws, tune, thin
        How it was sampled: ``draws`` kept per chain after ``tune`` tuning steps, every ``thin``-th
        iteration.
    timings
        :class:`~pymlsem.sample.Timings` of the fit (None for a fit made from draws by hand).
    options
        The options passed to the sampler (e.g. ``target_accept``); a refit passes them again.
    """

    def __init__(
        self,
        idata: Any,
        *,
        sampler: str,
        chains: int,
        draws: int,
        tune: int,
        thin: int = 1,
        timings: Timings | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.idata = idata
        self.sampler = sampler
        self.chains = chains
        self.draws = draws
        self.tune = tune
        self.thin = thin
        self.timings = timings
        self.options = dict(options or {})

    @property
    def settings(self) -> SamplerSettings:
        """How the fit was sampled, as a (checked) :class:`~pymlsem.sample.SamplerSettings`; a refit starts
        from it."""
        return SamplerSettings(
            self.sampler, self.draws, self.tune, self.chains, thin=self.thin, options=self.options
        )

    def diagnose(self) -> pd.DataFrame:
        """Convergence checks of the draws: R-hat, bulk and tail ESS, divergences, E-BFMI, tree depth.

        See :mod:`pymlsem.diagnostics.convergence`; computed once.

        Returns
        -------
        pandas.DataFrame
            One row per check: ``value``, ``threshold``, ``ok``, ``worst`` parameters and ``advice``.
        """
        if "_diagnosis" not in self.__dict__:
            names = [name for name in self.reported_variables() if name in self.idata.posterior]
            self.__dict__["_diagnosis"] = diagnose(self.idata, names)
        return self.__dict__["_diagnosis"]

    def select_chains(self, chains: Sequence[int]) -> Any:
        """The same fit with only some of its chains: those the ``modes`` check of :meth:`diagnose` found in
        the highest mode, say, when the others sit in a mode whose log density is tens of units lower.

        Keeping chains is a decision about the posterior, which the convergence checks of the new fit (and
        its summary) then judge again; the fit itself is unchanged.

        Parameters
        ----------
        chains
            Chain numbers (``idata.posterior.chain`` values) to keep, at least one.

        Returns
        -------
        A fit of the same kind holding those chains.

        Raises
        ------
        ControlError
            An empty selection, a repeated chain or one the fit does not have.
        """
        have = [int(c) for c in self.idata.posterior["chain"].values]
        chosen = [int(c) for c in chains]
        unknown = sorted(set(chosen) - set(have))
        if not chosen or unknown or len(set(chosen)) < len(chosen):
            what = f"no chain {unknown}" if unknown else "a repeated chain" if chosen else "no chain"
            raise ControlError(f"select_chains: {what} among the fit's chains {have}; give some of {have}")

        def kept(dataset: Any) -> Any:
            return dataset.sel(chain=chosen) if "chain" in dataset.dims else dataset

        posterior = self.idata.map_over_datasets(kept)
        sampled = {"sampler": self.sampler, "draws": self.draws, "tune": self.tune, "thin": self.thin}
        return self._with_posterior(
            posterior, chains=len(chosen), timings=self.timings, options=self.options, **sampled
        )

    def _with_posterior(self, idata: Any, **sampled: Any) -> Any:
        """A fit of the same kind and model with another posterior (each kind of fit says)."""
        raise NotImplementedError

    def reported_variables(self) -> list[str]:
        """The posterior variables whose convergence :meth:`diagnose` checks (each kind of fit says)."""
        return []

    def convergence_note(self) -> str | None:
        """The failed checks of :meth:`diagnose` in one paragraph, or None when the draws pass them all."""
        return convergence_message(self.diagnose())

    def divergences(self) -> int:
        """Number of divergent transitions after tuning."""
        stats = self.idata.sample_stats
        return int(stats["diverging"].sum()) if "diverging" in stats else 0

    def prior_note(self) -> str | None:
        """The parameters whose potential prior-data conflict :meth:`prior_sensitivity` found, or None (also
        None before it has run: the summary says what it has computed, it does not run the check)."""
        table = self.__dict__.get("_prior_sensitivity")
        if table is None:
            return None
        conflicts = [
            str(name) for name in table.index[table["diagnosis"].astype(str).str.contains("conflict")]
        ]
        if not conflicts:
            return None
        return (
            f"prior_sensitivity() finds a potential prior-data conflict for {', '.join(conflicts)}: the "
            "prior and the data pull these apart; compare them (fit.plot_prior_posterior()) and refit with a "
            "prior you can defend (fit.refit(priors=...))"
        )

    def warning_notes(self) -> list[str]:
        """What a summary warns of: failed convergence checks, a prior-data conflict found."""
        return [note for note in (self.convergence_note(), self.prior_note()) if note is not None]

    def warn_if_unconverged(self) -> None:
        """Warn (:class:`~pymlsem.exceptions.ConvergenceWarning`) when a convergence check fails."""
        note = self.convergence_note()
        if note is not None:
            warnings.warn(note, ConvergenceWarning, stacklevel=3)

    def log_likelihood(self, unit: str | None = None) -> Any:
        """Add the pointwise log-likelihood to ``idata`` (group ``log_likelihood``, variable ``loglik``).

        See :mod:`pymlsem.workflow.pointwise` and :mod:`pymlsem.workflow.mixed_loglik` for what each unit
        means.

        Parameters
        ----------
        unit
            ``"cluster"``: one value per cluster, the exact density of its rows (the default for two-level
            SEM and for Gaussian mixed models with one grouping factor). ``"observation"``: per row
            (single-level SEM, non-Gaussian mixed models given their random effects; two-level SEM: each
            row given the rest of its cluster, which does not sum to the log-likelihood).

        Returns
        -------
        xarray.DataTree
            ``self.idata``.
        """

        return add_log_likelihood(self, unit)

    def loo(self, unit: str | None = None, **kwargs: Any) -> Any:
        """PSIS-LOO with Pareto-k diagnostics (ArviZ); leave-one-cluster-out by default for clustered data.

        See :func:`pymlsem.workflow.information.loo`.
        """

        return loo(self, unit, **kwargs)

    def loo_outliers(self, unit: str | None = None, **kwargs: Any) -> pd.DataFrame:
        """Each cluster's (or row's) LOO ELPD and Pareto k, most influential first.

        See :func:`pymlsem.workflow.information.loo_outliers`.
        """

        return loo_outliers(self, unit, **kwargs)

    def waic(self, unit: str | None = None) -> Any:
        """WAIC (``elpd``, ``se``, ``p``, ``waic``) from the same pointwise values as :meth:`loo`.

        See :func:`pymlsem.workflow.information.waic`.
        """

        return waic(self, unit)

    def prior_sensitivity(self, threshold: float = 0.05) -> pd.DataFrame:
        """Power-scaling prior sensitivity per parameter with ArviZ's diagnosis (adds ``log_prior``).

        See :func:`pymlsem.workflow.sensitivity.prior_sensitivity`.
        """

        table = prior_sensitivity(self, threshold=threshold)
        self.__dict__["_prior_sensitivity"] = table  # the summary then says what it flagged
        return table

    def refit(self, priors: Any, **kwargs: Any) -> Any:
        """Fit again with other priors, reusing the compiled model when only prior arguments change.

        See :func:`pymlsem.workflow.refit.refit`; returns a fit of the same kind.
        """

        return refit(self, priors, **kwargs)

    def plot(self, var_names: str | Sequence[str] | None = None, path: str | Path | None = None) -> Any:
        """Trace and density of each parameter, as MCMCglmm's ``plot(model$Sol)``.

        See :func:`pymlsem.plots.plot_trace_density`; needs matplotlib.

        Parameters
        ----------
        var_names
            Parameters by name. SEM: free or defined parameters (``"fw=~y2@within"``, a label, or
            ``"fw=~y2"`` when that names one parameter), all free parameters by default. Mixed models:
            MCMCglmm's ``Sol`` and ``VCV`` names (``"(Intercept)"``, ``"units"``), the fixed effects by
            default.
        path
            Where to save the figure as an image; not saved if None.

        Returns
        -------
        matplotlib.figure.Figure
        """

        return plot_trace_density(self, var_names=var_names, path=path)

    def plot_autocorr(
        self, var_names: str | Sequence[str] | None = None, max_lag: int = 100, path: str | Path | None = None
    ) -> Any:
        """Autocorrelation of each parameter's draws against the lag, one line per chain.

        See :func:`pymlsem.plots.plot_autocorr`; needs matplotlib.

        Parameters
        ----------
        var_names
            Parameters to show (as for :meth:`plot`).
        max_lag
            Largest lag shown.
        path
            Where to save the figure as an image; not saved if None.

        Returns
        -------
        matplotlib.figure.Figure
        """

        return plot_autocorr(self, var_names=var_names, max_lag=max_lag, path=path)

    def plot_rank(self, var_names: str | Sequence[str] | None = None, path: str | Path | None = None) -> Any:
        """Rank plots (fractional-rank ECDF per chain, ArviZ 1.x style).

        See :func:`pymlsem.plots.plot_rank`; needs matplotlib.

        Parameters
        ----------
        var_names
            Parameters to show (as for :meth:`plot`).
        path
            Where to save the figure as an image; not saved if None.

        Returns
        -------
        matplotlib.figure.Figure
        """

        return plot_rank(self, var_names=var_names, path=path)

    def plot_prior_posterior(
        self,
        var_names: str | Sequence[str] | None = None,
        n_draws: int = 1000,
        seed: int | None = 0,
        path: str | Path | None = None,
    ) -> Any:
        """Prior and posterior density of each parameter.

        See :func:`pymlsem.plots.plot_prior_posterior`; needs matplotlib. The prior draws come from the
        fit's ``prior`` group or are drawn from the model (cached on the fit).

        Parameters
        ----------
        var_names
            Parameters to show (see :func:`pymlsem.plots.prior_posterior_draws`).
        n_draws
            Number of prior draws.
        seed
            Seed of the prior draws.
        path
            Where to save the figure as an image; not saved if None.

        Returns
        -------
        matplotlib.figure.Figure
        """

        return plot_prior_posterior(self, var_names=var_names, n_draws=n_draws, seed=seed, path=path)

    def plot_ppc(
        self,
        var_names: str | Sequence[str] | None = None,
        num_replicates: int = 50,
        path: str | Path | None = None,
    ) -> Any:
        """Posterior predictive check: observed-data density over replicated-data densities.

        Run :meth:`posterior_predictive` first. See :func:`pymlsem.plots.plot_fit_ppc`; needs matplotlib.

        Parameters
        ----------
        var_names
            Variables to show. SEM: observed variables, by default all but the exogenous covariates;
            mixed models: the response ``"y"``.
        num_replicates
            How many replicated data sets to draw.
        path
            Where to save the figure as an image; not saved if None.

        Returns
        -------
        matplotlib.figure.Figure

        Raises
        ------
        PymlsemError
            No posterior predictive draws on the fit.
        """

        return plot_fit_ppc(self, var_names, num_replicates=num_replicates, path=path)
