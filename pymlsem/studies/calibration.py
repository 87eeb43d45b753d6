"""Simulation-based calibration (SBC; Talts, Betancourt, Simpson, Vehtari and Gelman 2018) of a model.

Each replicate draws the parameters from the model's prior and a data set from them (the model's own prior
predictive: :meth:`pymlsem.SEM.prior_predictive`, :meth:`pymlsem.MixedModel.prior_predictive`, over the
data's design: its rows, clusters and covariates), fits the same model to that data set and records, for
every parameter, the rank of the drawn value among ``n_ranks`` posterior draws spread evenly over the
chains (thinned, so that they are nearly independent). If the sampler computes the posterior of the model
that generated the data, each rank is uniform on ``0..n_ranks``; a histogram that is U-shaped (posterior
too narrow), peaked (too wide) or sloped (biased) shows where it does not.

The prior that simulates must be the prior that fits. pymlsem's default priors are scaled to the data
(a SEM's to its variables' variances, a Gaussian mixed model's to the SD of the response), so a replicate
fitted with its own defaults would have another prior: :func:`sem_sbc` fits every replicate with the
original model's priors written out parameter by parameter, and :func:`sbc` takes the non-Gaussian mixed
models whose priors do not depend on the response (the intercept's prior given on the data scale,
``"fixef:(Intercept)"``; the others are on the link scale).

Replicates run serially or as Dask tasks (``client=``; :func:`pymlsem.studies.replicates.run_replicates`,
with a progress bar), with seeds spawned from ``random_seed``: the same ranks either way.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from pymlsem.api import SEM
from pymlsem.exceptions import ConvergenceWarning, ModelSpecificationError, PriorError
from pymlsem.formula.design import INTERCEPT
from pymlsem.mlm.api import MixedModel
from pymlsem.plots import plot_rank_histograms
from pymlsem.results.posterior import summarize_draws
from pymlsem.studies.power import replicate_seeds
from pymlsem.studies.replicates import quiet_fit, run_replicates
from pymlsem.workflow.refit import prior_text

__all__ = ["Calibration", "ranks_of", "sbc", "sem_sbc"]

#: a replicate whose R-hat exceeds this (or with divergent draws) counts as not converged
R_HAT = 1.01
#: families whose priors are on the link scale (so that, with the intercept's on the data scale, no prior
#: depends on the response) and whose replicates are one response column drawn afresh
LINK_SCALE_FAMILIES = ("bernoulli", "poisson", "negbinomial")
#: families whose priors are scaled to the response's SD
SD_SCALED_FAMILIES = ("gaussian", "student")


@dataclass(frozen=True)
class Calibration:
    """The ranks of a simulation-based calibration.

    Attributes
    ----------
    ranks
        One row per replicate and parameter: ``replicate``, ``parameter``, ``truth`` (the value drawn from
        the prior), ``rank`` (how many of the ``n_ranks`` posterior draws lie below it).
    fits
        One row per replicate: ``replicate``, ``seed``, ``max_r_hat``, ``min_ess_bulk``, ``divergences``.
    n_ranks
        Posterior draws per rank (ranks run from 0 to ``n_ranks``).
    """

    ranks: pd.DataFrame
    fits: pd.DataFrame
    n_ranks: int

    def uniformity(self, bins: int = 10) -> pd.DataFrame:
        """Pearson's chi-squared test of uniform ranks, per parameter.

        The ranks ``0..n_ranks`` fall into ``bins`` bins of equal width (``n_ranks + 1`` must be a multiple
        of ``bins``).

        Returns
        -------
        pandas.DataFrame
            Per parameter: ``chi2``, ``df`` and ``p_value``, and ``p_bonferroni`` (times the number of
            parameters, at most 1).
        """
        if (self.n_ranks + 1) % bins:
            raise ModelSpecificationError(
                f"n_ranks + 1 = {self.n_ranks + 1} is not a multiple of bins={bins}"
            )
        rows = []
        for name, group in self.ranks.groupby("parameter", sort=False):
            counts = self.histogram(group["rank"].to_numpy(), bins)
            chi2, p = stats.chisquare(counts)
            rows.append((name, float(chi2), bins - 1, float(p)))
        table = pd.DataFrame(rows, columns=["parameter", "chi2", "df", "p_value"]).set_index("parameter")
        table["p_bonferroni"] = np.minimum(table["p_value"] * len(table), 1.0)
        return table

    def histogram(self, ranks: np.ndarray, bins: int) -> np.ndarray:
        """Counts of ``ranks`` in ``bins`` bins of equal width over ``0..n_ranks``."""
        return np.bincount(np.asarray(ranks, dtype=int) * bins // (self.n_ranks + 1), minlength=bins)

    def plot(self, bins: int = 10, path: Any = None) -> Any:
        """Rank histograms, one per parameter, with the band that holds 99% of a uniform bin's counts
        (:func:`pymlsem.plots.calibration.plot_rank_histograms`)."""
        counts = {
            name: self.histogram(group["rank"].to_numpy(), bins)
            for name, group in self.ranks.groupby("parameter", sort=False)
        }
        return plot_rank_histograms(counts, self.fits.shape[0], path)


def _seeds(random_seed: int | None, nsim: int) -> tuple[int, list[int]]:
    """The prior draws' seed and one fit seed per replicate, spawned from the study's."""
    if isinstance(nsim, bool) or not isinstance(nsim, int | np.integer) or nsim < 2:
        raise ModelSpecificationError(f"nsim must be an integer of at least 2, not {nsim!r}")
    prior_seed, *fits = replicate_seeds(random_seed, int(nsim) + 1)
    return prior_seed, fits


def _check_n_ranks(n_ranks: int) -> None:
    if isinstance(n_ranks, bool) or not isinstance(n_ranks, int | np.integer) or n_ranks < 1:
        raise ModelSpecificationError(f"n_ranks must be a positive integer, not {n_ranks!r}")


def ranks_of(truth: Mapping[str, float], posterior: Mapping[str, np.ndarray], n_ranks: int) -> dict[str, int]:
    """Each parameter's rank among ``n_ranks`` draws spread evenly over its (chain, draw) draws."""
    out = {}
    for name, value in truth.items():
        draws = np.asarray(posterior[name]).reshape(-1)
        if draws.size < n_ranks:
            raise ModelSpecificationError(
                f"n_ranks={n_ranks} exceeds the {draws.size} posterior draws of a fit: draw more, or rank "
                "among fewer"
            )
        kept = draws[np.linspace(0, draws.size - 1, n_ranks).round().astype(int)]
        out[name] = int(np.sum(kept < value))
    return out


def _run(
    replicate: Any, tasks: list[dict[str, Any]], client: Any, n_ranks: int, progressbar: bool
) -> Calibration:
    """Run the replicates serially or as Dask tasks and gather their ranks; one warning for the replicates
    that did not converge (each fit's own warning is left out: :attr:`Calibration.fits` has them all)."""
    results = run_replicates(replicate, tasks, client, progressbar=progressbar, what="calibration fits")
    ranks = pd.DataFrame([row for rows, _ in results for row in rows])
    fits = pd.DataFrame([fit for _, fit in results])
    unconverged = int(((fits["max_r_hat"] > R_HAT) | (fits["divergences"] > 0)).sum())
    if unconverged:
        warnings.warn(
            f"{unconverged} of {len(fits)} replicates have an R-hat above {R_HAT} or divergent draws (see "
            ".fits): their ranks may stray from uniform because of the sampler, not the model; draw more "
            "(draws=, tune=) or raise target_accept",
            ConvergenceWarning,
            stacklevel=3,
        )
    return Calibration(ranks, fits, n_ranks)


def _quiet_fit(spec: Any, task: dict[str, Any]) -> Any:
    """Fit a replicate without its own convergence warning (:func:`_run` gives one for all)."""
    return quiet_fit(spec.fit, random_seed=task["seed"], progressbar=False, **task["fit_kwargs"])


# ------------------------------------------------------------------------------------------------ SEM
def _sem_replicate(task: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Fit one SEM replicate with the original priors and rank its prior draw."""
    spec = SEM(
        task["model"], task["data"], task["cluster"], model_type=task["model_type"], priors=task["priors"]
    )
    fit = _quiet_fit(spec, task)
    draws = fit.idata.posterior["parameters"]
    posterior = {name: draws.sel(parameter=name).values for name in task["truth"]}
    return _rank_rows(task, posterior), _diagnostics(task, fit, draws)


def _rank_rows(task: dict[str, Any], posterior: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """A replicate's lines of :attr:`Calibration.ranks`."""
    ranks = ranks_of(task["truth"], posterior, task["n_ranks"])
    return [
        {"replicate": task["replicate"], "parameter": name, "truth": task["truth"][name], "rank": rank}
        for name, rank in ranks.items()
    ]


def _diagnostics(task: dict[str, Any], fit: Any, draws: xr.DataArray) -> dict[str, Any]:
    """A replicate's convergence: the worst R-hat and bulk ESS of the ranked parameters (``draws``: chain,
    draw, parameter), and its divergences."""
    summary = summarize_draws(draws)
    return {
        "replicate": task["replicate"],
        "seed": task["seed"],
        "max_r_hat": float(np.nanmax(summary["r_hat"])),
        "min_ess_bulk": float(np.nanmin(summary["ess_bulk"])),
        "divergences": int(fit.divergences()),
    }


def sem_sbc(
    model: str,
    data: pd.DataFrame,
    *,
    cluster: str | None = None,
    model_type: str = "sem",
    priors: Mapping[str, str] | None = None,
    nsim: int = 100,
    n_ranks: int = 99,
    client: Any = None,
    random_seed: int | None = None,
    progressbar: bool = True,
    **fit_kwargs: Any,
) -> Calibration:
    """Simulation-based calibration of a SEM over the design of ``data``.

    Parameters
    ----------
    model, data, cluster, model_type, priors
        As for :class:`pymlsem.SEM`; ``data`` gives the rows, clusters and covariates of every replicate.
    nsim
        Number of replicates.
    n_ranks
        Posterior draws per rank, spread evenly over a fit's chains (at most its number of draws).
    client
        A ``dask.distributed.Client``: the replicates run as Dask tasks (same ranks as serially).
    random_seed
        Seed of the study (the prior draws' and every fit's seed are spawned from it).
    progressbar
        Show the replicates done and the time left (each fit's own bar stays off).
    **fit_kwargs
        Passed to :meth:`pymlsem.SEM.fit` (e.g. ``draws``, ``chains``).

    Returns
    -------
    Calibration

    Raises
    ------
    ModelSpecificationError
        ``nsim`` or ``n_ranks`` not positive integers, before any fit.
    """
    prior_seed, seeds = _seeds(random_seed, nsim)
    _check_n_ranks(n_ranks)
    spec = SEM(model, data, cluster, model_type=model_type, priors=priors)
    # the priors in use, parameter by parameter: a replicate's own defaults would be scaled to its own data
    pinned = {p.name: prior_text(p.prior) for p in spec.built.free}
    tree = spec.prior_predictive(n_draws=nsim, seed=prior_seed)
    truth = tree["prior"]["parameters"].values.reshape(nsim, -1)
    names = list(tree["prior"]["parameters"].parameter.values)
    simulated = tree["prior_predictive"].to_dataset()
    tasks, skipped = [], 0
    for i in range(nsim):
        columns = {name: simulated[name].values.reshape(nsim, -1)[i] for name in simulated.data_vars}
        if any(np.isnan(values).any() for values in columns.values()):
            skipped += 1  # a prior draw whose implied covariance is not positive definite
            continue
        tasks.append(
            {
                "model": model,
                "data": spec.data.assign(**columns),
                "cluster": cluster,
                "model_type": model_type,
                "priors": pinned,
                "truth": dict(zip(names, truth[i].tolist(), strict=True)),
                "replicate": i,
                "seed": seeds[i],
                "n_ranks": n_ranks,
                "fit_kwargs": fit_kwargs,
            }
        )
    if skipped:
        warnings.warn(
            f"{skipped} of {nsim} prior draws imply a covariance matrix that is not positive definite: those "
            "replicates are left out of the calibration",
            UserWarning,
            stacklevel=2,
        )
    return _run(_sem_replicate, tasks, client, n_ranks, progressbar)


# ---------------------------------------------------------------------------------------- mixed models
def _mixed_draws(draws: xr.Dataset, built: Any) -> dict[str, np.ndarray]:
    """The fixed effects, random-effect SDs and correlations of a prior or posterior (chain, draw), by
    display name."""
    out = {}
    for t, term in enumerate(built.design.fixed_names):
        out[f"fixef[{term}]"] = draws["fixef"].values[..., t]
    for block, label in zip(built.design.blocks, built.labels, strict=True):
        for e, name in enumerate(block.names):
            out[f"sd[{label}:{name}]"] = draws[f"sd__{label}"].values[..., e]
        if f"corr__{label}" in draws:
            for a in range(block.q):
                for b in range(a):
                    key = f"corr[{label}:{block.names[b]},{block.names[a]}]"
                    out[key] = draws[f"corr__{label}"].values[..., a, b]
    return out


def _mixed_replicate(task: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Fit one mixed-model replicate and rank its prior draw."""
    spec = MixedModel(task["formula"], task["data"], task["family"], priors=task["priors"])
    fit = _quiet_fit(spec, task)
    draws = _mixed_draws(fit.idata.posterior, spec.built)
    stacked = xr.DataArray(
        np.stack([draws[name] for name in task["truth"]], axis=-1),
        dims=("chain", "draw", "parameter"),
        coords={"parameter": list(task["truth"])},
    )
    return _rank_rows(task, draws), _diagnostics(task, fit, stacked)


def sbc(
    formula: str,
    data: pd.DataFrame,
    family: str,
    *,
    priors: Mapping[str, str | float] | None = None,
    nsim: int = 100,
    n_ranks: int = 99,
    client: Any = None,
    random_seed: int | None = None,
    progressbar: bool = True,
    **fit_kwargs: Any,
) -> Calibration:
    """Simulation-based calibration of a (non-Gaussian) mixed model over the design of ``data``.

    The fixed effects, random-effect SDs and correlations are ranked. The model's priors must not depend on
    the response, so that every replicate is fitted with the prior it was drawn from: a family whose
    priors are on the link scale (:data:`LINK_SCALE_FAMILIES`) with the intercept's prior given on the data
    scale (``priors={"fixef:(Intercept)": "normal(0, 1.5)"}``; by default it is centred at the link of the
    observed mean response).

    Parameters
    ----------
    formula, data, family, priors
        As for :func:`pymlsem.mixed`; ``data`` gives the rows, grouping factors and predictors of every
        replicate (its response is replaced).
    nsim, n_ranks, client, random_seed, progressbar, **fit_kwargs
        As for :func:`sem_sbc` (``fit_kwargs`` go to :meth:`pymlsem.MixedModel.fit`).

    Returns
    -------
    Calibration

    Raises
    ------
    PriorError
        A prior that depends on the response (a Gaussian or Student-t family, or the default intercept
        prior), before any fit.
    ModelSpecificationError
        A binomial or ordinal family, before any fit.
    """
    prior_seed, seeds = _seeds(random_seed, nsim)
    _check_n_ranks(n_ranks)
    priors = dict(priors or {})
    spec = MixedModel(formula, data, family, priors=priors)
    built = spec.built
    if built.family in SD_SCALED_FAMILIES:
        raise PriorError(
            f"the {built.family} family's default priors are scaled to the response's SD, so each simulated "
            "data set would be fitted with another prior; calibrate a family whose priors are on the link "
            f"scale ({', '.join(LINK_SCALE_FAMILIES)}), or a SEM with sem_sbc"
        )
    if built.family not in LINK_SCALE_FAMILIES:
        raise ModelSpecificationError(
            f"sbc calibrates {', '.join(LINK_SCALE_FAMILIES)} models, not the {built.family} family (a "
            "binomial response's trials and an ordinal response's categories, which a replicate may lack, "
            "are not handled yet)"
        )
    if INTERCEPT in built.design.fixed_names and f"fixef:{INTERCEPT}" not in priors:
        raise PriorError(
            "the default intercept prior is centred at the link of the observed mean response, so each "
            "simulated data set would be fitted with another prior; give it on the data scale, e.g. "
            "priors={'fixef:(Intercept)': 'normal(0, 1.5)'}"
        )
    tree = spec.prior_predictive(n_draws=nsim, seed=prior_seed)
    truth = {
        name: values.reshape(-1) for name, values in _mixed_draws(tree["prior"].to_dataset(), built).items()
    }
    simulated = tree["prior_predictive"]["y"].values.reshape(nsim, -1)
    response = built.design.response
    tasks = [
        {
            "formula": formula,
            "data": data.assign(**{response: simulated[i]}),
            "family": family,
            "priors": priors,
            "truth": {name: float(values[i]) for name, values in truth.items()},
            "replicate": i,
            "seed": seeds[i],
            "n_ranks": n_ranks,
            "fit_kwargs": fit_kwargs,
        }
        for i in range(nsim)
    ]
    return _run(_mixed_replicate, tasks, client, n_ranks, progressbar)
