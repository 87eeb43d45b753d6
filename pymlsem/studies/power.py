"""Bayesian power analysis by simulation (the book's chapter 12; R's simr ``powerSim``).

Data are simulated from a stated mixed model over a design (a DataFrame of predictors and grouping columns,
as simr's ``makeLmer`` takes them): ``y = X beta + sum over blocks of Z u + e``, each block's effects drawn
from their covariance matrix, ``e`` normal with SD ``sigma`` (Gaussian) or the response drawn from the
family (bernoulli, poisson). Each replicate is fitted with :func:`pymlsem.mixed`; the power is the share of
replicates whose central 95% posterior interval for ``term`` excludes 0.

Each replicate's fit is checked as any fit is (:meth:`diagnose`), silently: the table's ``converged`` column
says which passed, and one ``ConvergenceWarning`` counts those that did not, instead of a warning per fit.

Every replicate has its own seed (for its data and its sampler), spawned from ``random_seed``, so a study
gives the same table whether its replicates run one after another or as Dask tasks on a
``dask.distributed`` client (``client=``; each worker compiles an engine family once, from its disk cache
after the first time); :func:`pymlsem.studies.replicates.run_replicates` runs them, with a progress bar.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from pymlsem.api import SEM
from pymlsem.exceptions import ConvergenceWarning, ModelSpecificationError
from pymlsem.formula.design import mixed_design
from pymlsem.formula.split import split_formula
from pymlsem.mlm.api import mixed
from pymlsem.plots import plot_power_curve
from pymlsem.simulate import simulate
from pymlsem.studies.replicates import quiet_fit, run_replicates

__all__ = [
    "PowerCurve",
    "PowerResult",
    "power_curve",
    "power_sim",
    "replicate_seeds",
    "sem_power_sim",
    "simulate_response",
]

FAMILIES = ("gaussian", "bernoulli", "poisson")


@dataclass(frozen=True)
class PowerResult:
    """The outcome of a power simulation.

    Attributes
    ----------
    power
        Share of replicates whose central 95% interval for ``term`` excludes 0.
    interval
        Clopper-Pearson 95% interval of that share (its Monte Carlo uncertainty).
    table
        One row per replicate: ``estimate`` (posterior mean), ``lower``, ``upper``, ``excludes_zero``,
        ``ess_bulk``, ``r_hat``, ``divergences``, ``converged`` (the fit passed every convergence check of
        its :meth:`diagnose`, every parameter's R-hat and ESS among them), ``seed``.
    term
        The fixed effect tested.
    """

    power: float
    interval: tuple[float, float]
    table: pd.DataFrame
    term: str

    def __repr__(self) -> str:
        lo, hi = self.interval
        interval = f"[{lo:.3f}, {hi:.3f}]"
        return f"PowerResult(term={self.term!r}, power={self.power:.3f} {interval}, nsim={len(self.table)})"


def simulate_response(
    formula: str,
    design: pd.DataFrame,
    *,
    fixef: Mapping[str, float],
    varcorr: Mapping[str, float | np.ndarray],
    sigma: float = 1.0,
    family: str = "gaussian",
    rng: np.random.Generator,
) -> np.ndarray:
    """One response vector drawn from the stated model over the design's rows.

    Parameters
    ----------
    formula
        An lme4 formula; its response column need not be in ``design``.
    design
        Predictors and grouping columns.
    fixef
        Fixed effects by lme4 term name (every term of the formula).
    varcorr
        Each grouping factor's random-effect variance (one effect) or covariance matrix (in the order of the
        bar term's effects).
    sigma
        Residual SD (Gaussian).
    family
        ``"gaussian"``, ``"bernoulli"`` (logit) or ``"poisson"`` (log).
    rng
        Random generator.

    Raises
    ------
    ModelSpecificationError
        An unknown family, a missing fixed effect or grouping factor, a covariance of the wrong size.
    """
    if family not in FAMILIES:
        raise ModelSpecificationError(f"power_sim simulates {', '.join(FAMILIES)}, not family={family!r}")
    response = split_formula(formula).response
    frame = design.assign(**{response: 0.0})
    structure = mixed_design(formula, frame, observation_level=family != "gaussian")
    missing = [name for name in structure.fixed_names if name not in fixef]
    if missing:
        raise ModelSpecificationError(
            f"fixef has no value for {missing}; the formula's fixed effects are {list(structure.fixed_names)}"
        )
    eta = structure.x @ np.array([float(fixef[name]) for name in structure.fixed_names])
    for block in structure.blocks:
        if block.group not in varcorr:
            raise ModelSpecificationError(
                f"varcorr has no entry for {block.group!r}; give each grouping factor's variance "
                f"(or covariance matrix): {[b.group for b in structure.blocks]}"
            )
        cov = np.atleast_2d(np.asarray(varcorr[block.group], dtype=float))
        if cov.shape != (block.q, block.q):
            raise ModelSpecificationError(
                f"varcorr[{block.group!r}] must be {block.q} x {block.q} (effects {list(block.names)})"
            )
        effects = rng.multivariate_normal(np.zeros(block.q), cov, size=block.n_levels, method="eigh")
        eta = eta + np.sum(block.z * effects[block.codes], axis=1)
    if family == "gaussian":
        return eta + sigma * rng.standard_normal(eta.size)
    if family == "bernoulli":
        return rng.binomial(1, special.expit(eta)).astype(float)
    return rng.poisson(np.exp(eta)).astype(float)


def _task_response(task: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """:func:`simulate_response` for the model a power study's task states."""
    return simulate_response(
        task["formula"],
        task["design"],
        fixef=task["fixef"],
        varcorr=task["varcorr"],
        sigma=task["sigma"],
        family=task["family"],
        rng=rng,
    )


def _replicate(task: dict[str, Any]) -> dict[str, Any]:
    """Simulate and fit one replicate (a Dask task, or a step of the serial loop)."""
    data_seed, fit_seed = np.random.SeedSequence(task["seed"]).generate_state(2)
    response = split_formula(task["formula"]).response
    y = _task_response(task, np.random.default_rng(data_seed))
    data = task["design"].assign(**{response: y})
    fit = quiet_fit(
        mixed,
        task["formula"],
        data,
        task["family"],
        random_seed=int(fit_seed),
        progressbar=False,
        **task["fit_kwargs"],
    )
    return _replicate_row(fit.fixef().loc[task["term"]], fit, task["seed"])


def _replicate_row(row: pd.Series, fit: Any, seed: int) -> dict[str, Any]:
    """One replicate's line of the table, from the term's posterior summary."""
    lower, upper = row["q2.5"], row["q97.5"]
    return {
        "estimate": float(row["mean"]),
        "lower": float(lower),
        "upper": float(upper),
        "excludes_zero": bool(lower > 0 or upper < 0),
        "ess_bulk": float(row["ess_bulk"]),
        "r_hat": float(row["r_hat"]),
        "divergences": int(fit.divergences()),
        "converged": fit.convergence_note() is None,
        "seed": int(seed),
    }


def power_sim(
    formula: str,
    design: pd.DataFrame,
    *,
    fixef: Mapping[str, float],
    varcorr: Mapping[str, float | np.ndarray],
    sigma: float = 1.0,
    term: str,
    nsim: int = 100,
    family: str = "gaussian",
    client: Any = None,
    random_seed: int | None = None,
    progressbar: bool = True,
    **fit_kwargs: Any,
) -> PowerResult:
    """Power of a Bayesian mixed model to exclude 0 from ``term``'s 95% interval, by simulation.

    Parameters
    ----------
    formula, design, fixef, varcorr, sigma, family
        The model to simulate from and fit (see :func:`simulate_response`).
    term
        The fixed effect whose interval is checked.
    nsim
        Number of replicates.
    client
        A ``dask.distributed.Client``: the replicates run as Dask tasks (same results as serially).
    random_seed
        Seed of the study (each replicate's data and sampler seeds are spawned from it).
    progressbar
        Show the replicates done and the time left (each fit's own bar stays off).
    **fit_kwargs
        Passed to :func:`pymlsem.mixed` (e.g. ``draws``, ``chains``).

    Returns
    -------
    PowerResult

    Raises
    ------
    ModelSpecificationError
        ``term`` not a fixed effect, or a model :func:`simulate_response` refuses, before any fit.
    """
    seeds = replicate_seeds(random_seed, nsim)
    common = {
        "formula": formula,
        "design": design,
        "fixef": dict(fixef),
        "varcorr": dict(varcorr),
        "sigma": float(sigma),
        "family": family,
        "term": term,
        "fit_kwargs": fit_kwargs,
    }
    _task_response(common, np.random.default_rng(0))  # refuses a bad model before any fit
    if term not in fixef:
        raise ModelSpecificationError(f"term {term!r} is not a fixed effect of the model: {list(fixef)}")
    return _run(_replicate, [{**common, "seed": seed} for seed in seeds], client, term, progressbar)


def replicate_seeds(random_seed: int | None, nsim: int) -> list[int]:
    """One seed per replicate, spawned from the study's (``SeedSequence.spawn``)."""
    if isinstance(nsim, bool) or not isinstance(nsim, int | np.integer) or nsim < 1:
        raise ModelSpecificationError(f"nsim must be a positive integer, not {nsim!r}")
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(random_seed).spawn(int(nsim))]


def _run(
    replicate: Any, tasks: list[dict[str, Any]], client: Any, term: str, progressbar: bool
) -> PowerResult:
    """Run the replicates serially or as Dask tasks; the power and its Clopper-Pearson interval, and one
    warning for the replicates that did not pass their convergence checks."""
    rows = run_replicates(replicate, tasks, client, progressbar=progressbar, what=f"power of {term}")
    table = pd.DataFrame(rows)
    unconverged = int((~table["converged"]).sum())
    if unconverged:
        warnings.warn(
            f"{unconverged} of {len(table)} replicates did not pass their convergence checks (.table's "
            "converged column): their intervals may be off because of the sampler, not the design; draw more "
            "(draws=, tune=) or raise target_accept",
            ConvergenceWarning,
            stacklevel=3,
        )
    successes = int(table["excludes_zero"].sum())
    ci = stats.binomtest(successes, len(table)).proportion_ci(confidence_level=0.95, method="exact")
    return PowerResult(successes / len(table), (float(ci.low), float(ci.high)), table, term)


def _sem_replicate(task: dict[str, Any]) -> dict[str, Any]:
    """Simulate one data set from a lavaan model and fit it (a Dask task, or a step of the serial loop)."""
    data_seed, fit_seed = np.random.SeedSequence(task["seed"]).generate_state(2)
    options = task["model_options"]
    data = simulate(task["model"], task["values"], seed=int(data_seed), **task["size"], **options)
    cluster = "cluster" if "cluster" in data.columns else None
    spec = SEM(task["model"], data, cluster, **options)
    fit = quiet_fit(spec.fit, random_seed=int(fit_seed), progressbar=False, **task["fit_kwargs"])
    estimates = fit.parameter_estimates()
    names = estimates["lhs"] + estimates["op"] + estimates["rhs"].fillna("")
    if cluster is not None:
        names = names + np.where(estimates["level"].astype(int) == 1, "@within", "@between")
    match = estimates[(estimates["label"] == task["term"]) | (names == task["term"])]
    return _replicate_row(match.iloc[0], fit, task["seed"])


def sem_power_sim(
    model: str,
    values: Mapping[str, float],
    *,
    term: str,
    nsim: int = 100,
    n: int | None = None,
    n_clusters: int | None = None,
    cluster_size: int = 10,
    model_type: str = "sem",
    std_lv: bool = False,
    client: Any = None,
    random_seed: int | None = None,
    progressbar: bool = True,
    **fit_kwargs: Any,
) -> PowerResult:
    """Power of a SEM to exclude 0 from a parameter's 95% interval, by simulation.

    Each replicate is drawn from ``model`` at ``values`` by :func:`pymlsem.simulate.simulate` (``n`` rows, or
    ``n_clusters`` clusters of ``cluster_size`` for a two-level model) and fitted with the same model.

    Parameters
    ----------
    model, values, n, n_clusters, cluster_size, model_type, std_lv
        As for :func:`pymlsem.simulate.simulate` (and the fits: ``std_lv`` as in :class:`pymlsem.SEM`).
    term
        The parameter checked: a label, or a name as the summary prints it (``"fb~w1@between"``).
    nsim, client, random_seed, progressbar, **fit_kwargs
        As for :func:`power_sim` (``fit_kwargs`` go to :meth:`pymlsem.SEM.fit`).

    Returns
    -------
    PowerResult

    Raises
    ------
    ModelSpecificationError
        ``term`` not a free parameter of the model, or values the model does not have, before any fit.
    """
    seeds = replicate_seeds(random_seed, nsim)
    size = {"n": n} if n_clusters is None else {"n_clusters": n_clusters, "cluster_size": cluster_size}
    options = {"model_type": model_type, "std_lv": std_lv}  # the simulation's and the fits' model
    probe = simulate(model, values, seed=0, **size, **options)  # refuses values the model does not have
    spec = SEM(model, probe, "cluster" if "cluster" in probe.columns else None, **options)
    known = {name for p in spec.built.free for name in (p.name, *p.aliases)}
    if term not in known:
        raise ModelSpecificationError(
            f"term {term!r} is not a free parameter of the model; its parameters: {sorted(known)}"
        )
    common = {
        "model": model,
        "values": dict(values),
        "size": size,
        "model_options": options,
        "term": term,
        "fit_kwargs": fit_kwargs,
    }
    return _run(_sem_replicate, [{**common, "seed": seed} for seed in seeds], client, term, progressbar)


@dataclass(frozen=True)
class PowerCurve:
    """Power at several numbers of clusters (simr's ``powerCurve``).

    Attributes
    ----------
    table
        One row per number of clusters: ``clusters``, ``power``, ``lower``, ``upper`` (the Clopper-Pearson
        interval), ``nsim``.
    results
        Each number of clusters' :class:`PowerResult`.
    """

    table: pd.DataFrame
    results: dict[int, PowerResult]

    def plot(self, target: float = 0.8, path: Any = None) -> Any:
        """Power against the number of clusters, with its intervals and a line at ``target``
        (:func:`pymlsem.plots.power.plot_power_curve`)."""
        return plot_power_curve(self.table, target, path)


def power_curve(
    formula: str,
    design: pd.DataFrame,
    *,
    along: str,
    clusters: list[int],
    random_seed: int | None = None,
    **arguments: Any,
) -> PowerCurve:
    """Power for the first ``k`` clusters of ``design`` (in their order of appearance), for each ``k``.

    Parameters
    ----------
    formula, design
        As for :func:`power_sim`.
    along
        The grouping column whose clusters are kept (simr's ``along``).
    clusters
        The numbers of clusters.
    random_seed
        Seed of the whole curve (each point gets its own, spawned from it).
    **arguments
        The other arguments of :func:`power_sim` (``fixef``, ``varcorr``, ``sigma``, ``term``, ``nsim``,
        ``client``, ``progressbar``: a bar per number of clusters, sampler settings).

    Raises
    ------
    ModelSpecificationError
        ``along`` not a column, or more clusters than the design has.
    """
    if along not in design.columns:
        raise ModelSpecificationError(f"along={along!r} is not a column of the design")
    order = pd.unique(design[along])
    if max(clusters) > order.size or min(clusters) < 2:
        raise ModelSpecificationError(f"clusters must be between 2 and the design's {order.size} clusters")
    seeds = np.random.SeedSequence(random_seed).spawn(len(clusters))
    results, rows = {}, []
    for k, seed in zip(clusters, seeds, strict=True):
        part = design[design[along].isin(order[:k])]
        result = power_sim(formula, part, random_seed=int(seed.generate_state(1)[0]), **arguments)
        results[int(k)] = result
        rows.append((int(k), result.power, *result.interval, len(result.table)))
    table = pd.DataFrame(rows, columns=["clusters", "power", "lower", "upper", "nsim"])
    return PowerCurve(table, results)
