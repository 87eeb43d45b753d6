"""Power-scaling prior sensitivity (Kallioinen et al. 2024) with ArviZ's ``psense_summary``.

The posterior is reweighted as if the prior (or the likelihood) were raised to a power near 1, by
Pareto-smoothed importance sampling; how much each parameter's posterior moves is its sensitivity. ArviZ
diagnoses each parameter: prior and likelihood sensitivity both above the threshold is a *potential prior-data
conflict*, a sensitive prior with an insensitive likelihood a *potential strong prior / weak likelihood*.

What is power-scaled:

* the prior: the ``log_prior`` group, the log-density of each parameter's prior at each draw, on the scale the
  prior is written on (e.g. the SD for ``gamma(1,.5)[sd]``), without Jacobians. For mixed models with explicit
  random effects, their ``N(0, 1)`` population distribution is part of the model, not of the prior (as brms's
  ``lprior``), and is left out;
* the likelihood: a pointwise log-likelihood whose values sum to the log-likelihood of all the data
  (per cluster for two-level SEMs and one-factor Gaussian mixed models, see :mod:`.pointwise`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from pymlsem.build.rewrites import compile_mode
from pymlsem.results.posterior import SAMPLE_DIMS
from pymlsem.workflow.pointwise import LOGLIK_VAR, pointwise_log_likelihood
from pymlsem.workflow.protocol import Fitted

__all__ = ["add_log_prior", "posterior_parameters", "prior_sensitivity"]


def free_variables_with_priors(fit: Fitted) -> list[str]:
    """Names of the PyMC model's free random variables that carry its priors (random effects left out): the
    sampled variables that power-scaling perturbs, where ``fit.prior_variables()`` names the reported
    posterior variables that have a prior."""
    return [rv.name for rv in fit.pymc_model.free_RVs if not rv.name.startswith("z__")]


def log_prior_function(model: Any, names: list[str]) -> Callable[..., list[np.ndarray]]:
    """Compile the prior log-densities of the named random variables at given (constrained) values.

    Parameters
    ----------
    model
        The PyMC model.
    names
        Free random variables whose priors have only data and constants as arguments.

    Returns
    -------
    callable
        ``f(value_1, ..., value_k)`` -> list of elementwise log-densities (a scalar for a multivariate
        prior such as LKJ), each ``pm.logp(rv, value)``: no Jacobian of any transform.

    Raises
    ------
    NotImplementedError
        A prior whose arguments depend on another random variable (a hierarchical prior).
    """
    import pymc as pm
    import pytensor
    from pytensor.graph.traversal import ancestors

    inputs, outputs = [], []
    free = set(model.free_RVs)
    for name in names:
        rv = model[name]
        value = rv.type()
        value.name = f"{name}_value"
        logp = pm.logp(rv, value)
        if any(node in free for node in ancestors([logp]) if node is not rv):
            raise NotImplementedError(f"the prior of {name} depends on other random variables")
        inputs.append(value)
        outputs.append(logp)
    return pytensor.function(inputs, outputs, on_unused_input="ignore", mode=compile_mode())


def add_log_prior(fit: Fitted) -> xr.DataTree:
    """Add the ``log_prior`` group to ``fit.idata``: each prior's log-density at each posterior draw.

    One variable per PyMC random variable that carries a prior (e.g. ``loadings`` with dim ``loading``),
    ``pm.logp`` of the prior at the posterior draws on the parameters' own scale, without Jacobians (what
    power-scaling needs); its sum over variables is the log prior density of a draw.

    Parameters
    ----------
    fit
        A fitted SEM or mixed model.

    Returns
    -------
    xarray.DataTree
        ``fit.idata``.
    """
    posterior = fit.idata.posterior
    names = free_variables_with_priors(fit)
    function = log_prior_function(fit.pymc_model, names)
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    arrays = [posterior[name].transpose(*SAMPLE_DIMS, ...) for name in names]
    flat = [np.asarray(a.values).reshape(chains * draws, *a.shape[2:]) for a in arrays]
    results = [function(*[values[i] for values in flat]) for i in range(chains * draws)]
    variables = {}
    for k, (name, array) in enumerate(zip(names, arrays, strict=True)):
        stacked = np.stack([np.asarray(r[k], dtype=float) for r in results])
        if stacked.ndim == 1:  # a multivariate prior's joint density
            variables[name] = xr.DataArray(stacked.reshape(chains, draws), dims=SAMPLE_DIMS)
        else:
            variables[name] = xr.DataArray(stacked.reshape(array.shape), dims=array.dims, coords=array.coords)
    fit.idata["log_prior"] = xr.Dataset(variables)
    return fit.idata


def posterior_parameters(fit: Fitted) -> xr.DataArray:
    """Every reported parameter's draws as one array with dims ``(chain, draw, parameter)``
    (:meth:`~pymlsem.workflow.protocol.Fitted.parameter_draws`).

    SEM: the free parameters on lavaan's scale (as in the summary), then the defined (``:=``) ones. Mixed
    models: MCMCglmm's ``Sol`` and ``VCV`` columns (fixed effects, then variance components).
    """
    return fit.parameter_draws()


def _likelihood_dataset(fit: Fitted) -> xr.Dataset:
    """A log-likelihood whose values sum to the log-likelihood of all the data."""
    existing = fit.idata.get("log_likelihood") if hasattr(fit.idata, "get") else None
    if existing is not None and LOGLIK_VAR in existing and existing[LOGLIK_VAR].attrs.get("factorizes"):
        return existing.to_dataset()
    posterior = fit.idata.posterior
    total = fit.total_log_likelihood()
    if total is not None:
        values, unit = total[:, None], "total"
    else:
        unit = fit.default_unit()
        values = pointwise_log_likelihood(fit, unit).values
    shape = (posterior.sizes["chain"], posterior.sizes["draw"], values.shape[1])
    return xr.Dataset({LOGLIK_VAR: ((*SAMPLE_DIMS, unit), values.reshape(shape))})


def prior_sensitivity(
    fit: Fitted, *, threshold: float = 0.05, alphas: tuple[float, float] = (0.99, 1.01)
) -> pd.DataFrame:
    """Power-scaling prior and likelihood sensitivity of every parameter, with ArviZ's diagnosis.

    Adds the ``log_prior`` group to ``fit.idata`` (and uses or computes a log-likelihood that sums to the
    total, see the module docstring), then runs :func:`arviz_stats.psense_summary` on the parameters of
    :func:`posterior_parameters`.

    Parameters
    ----------
    fit
        A fitted SEM or mixed model.
    threshold
        Sensitivity above which ArviZ diagnoses a problem (0.05, ArviZ's default).
    alphas
        The powers below and above 1 used for the derivative.

    Returns
    -------
    pandas.DataFrame
        Indexed by parameter: ``prior`` and ``likelihood`` (the sensitivities), ``diagnosis`` (ArviZ's:
        ``"potential prior-data conflict"``, ``"potential strong prior / weak likelihood"`` or ``"✓"``),
        ``flagged`` (diagnosis other than ``"✓"``) and, for SEMs, ``prior_distribution``.
    """
    from arviz_stats import psense_summary

    add_log_prior(fit)
    draws = posterior_parameters(fit)
    tree = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"parameters": draws}),
            "log_prior": fit.idata["log_prior"].to_dataset(),
            "log_likelihood": _likelihood_dataset(fit),
        }
    )
    table = psense_summary(tree, var_names=["parameters"], threshold=threshold, alphas=alphas, round_to=6)
    names = [str(name) for name in draws["parameter"].values]
    if len(table) != len(names):  # pragma: no cover - one row per element of the one variable
        raise RuntimeError("psense_summary returned an unexpected number of rows")
    out = pd.DataFrame(
        {
            "prior": table["prior"].to_numpy(dtype=float),
            "likelihood": table["likelihood"].to_numpy(dtype=float),
            "diagnosis": table["diagnosis"].to_numpy(),
        },
        index=pd.Index(names, name="parameter"),
    )
    out["flagged"] = out["diagnosis"] != "✓"
    priors = fit.parameter_priors()
    if priors:
        out["prior_distribution"] = [priors.get(name, "") for name in names]
    out.attrs["threshold"] = threshold
    return out
