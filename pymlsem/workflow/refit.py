"""Refits with other priors that reuse the compiled model, and grids of prior settings.

Prior arguments are ``pm.Data`` of the model (SEM: ``<variable>__<argument>``, e.g. ``loadings__mu``, see
:mod:`pymlsem.build.parameters`; mixed models: ``<variable>__<argument>``, e.g. ``fixef_std__sigma``), and the
compiled-model cache of :mod:`pymlsem.sample` is keyed by the model's structure, which includes each prior's
family (and, for variances, whether it is on the SD, variance or precision) but not its arguments. So a refit
that changes only the arguments rebuilds the (cheap) PyMC graph, finds the compiled model in the cache and
swaps the new arguments in: no compilation. A change of family (``normal`` to ``student_t``, ``[sd]`` to
``[var]``) changes the structure of that graph: the model is compiled again, with a warning that says so,
unless the model is served by a compiled engine family (:mod:`pymlsem.engine`), whose prior families are data.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from pymlsem.engine.run import engine_binding
from pymlsem.exceptions import PriorError, PymlsemError
from pymlsem.mlm.glmm import build_glmm_model
from pymlsem.mlm.model import BuiltMixedModel, build_mixed_model
from pymlsem.mlm.sampling import model_cache_key
from pymlsem.priors import DEFAULT_PRIORS, Prior
from pymlsem.results.posterior import summarize_draws
from pymlsem.workflow.protocol import Fitted
from pymlsem.workflow.sensitivity import posterior_parameters

if TYPE_CHECKING:
    from pymlsem.api import SEM

__all__ = ["mixed_refit_spec", "prior_grid", "prior_text", "refit", "sem_refit_spec"]


def _check_mapping(priors: Any) -> dict[str, Any]:
    if not isinstance(priors, Mapping) or not priors:
        raise PriorError(
            "priors must be a non-empty dict of prior strings, e.g. {'lambda': 'normal(0,1)'} or "
            "{'fw=~y2@within': 'normal(1,0.5)'}"
        )
    return dict(priors)


def _recompile_warning(changed: list[str]) -> None:
    warnings.warn(
        f"the prior family (or its [sd]/[var]/[prec] scale) of {', '.join(changed)} changes the structure of "
        "the model, so it is rebuilt and compiled again; only the arguments of a prior can change without "
        "recompiling",
        UserWarning,
        stacklevel=3,
    )


def sem_refit_spec(spec: SEM, priors: Mapping[str, str]) -> SEM:
    """The same SEM with other priors, sharing everything but the PyMC model (nothing is compiled).

    Parameters
    ----------
    spec
        The model.
    priors
        Priors to change, by class or by parameter, as in :class:`~pymlsem.api.SEM`; the others stay.

    Returns
    -------
    SEM
        A new model whose ``structure_key()`` equals ``spec.structure_key()`` when only prior arguments
        change (a fit then reuses the compiled model and only the prior ``pm.Data`` differ).

    Raises
    ------
    PriorError
        An unknown name, a prior that does not fit its parameter, or a parameter whose prior is written in
        the model syntax (which takes precedence over ``priors=``).
    """
    given = _check_mapping(priors)
    _check_syntax_priors(spec, given)
    new = spec.with_user_priors({**spec.priors, **given})  # its own builder (latent/marginal), statistics
    changed = [
        old.name
        for old, now in zip(spec.built.free, new.built.free, strict=True)
        if (old.variable, old.scale) != (now.variable, now.scale)
    ]
    if changed and engine_binding(new)[0] is None:
        _recompile_warning(changed)
    return new


def _check_syntax_priors(spec: SEM, priors: Mapping[str, str]) -> None:
    table = spec.partable.table
    for p in spec.built.free:
        names = {p.name, *p.aliases}
        keys = [key for key in priors if key in names and key not in DEFAULT_PRIORS]
        written = [str(table.prior.iloc[r]) for r in p.rows if str(table.prior.iloc[r] or "")]
        if keys and written:
            raise PriorError(
                f"the prior of {p.name} is written in the model syntax (prior({written[0]!r})), which takes "
                f"precedence over priors={{{keys[0]!r}: ...}}; remove it from the model string to vary it"
            )


def prior_text(prior: Prior | float) -> str | float:
    """A prior as a string that parses back to the same numbers (``str(prior)`` rounds them)."""
    if not isinstance(prior, Prior):
        return prior
    args = ",".join(repr(float(a)) for a in prior.args)
    return f"{prior.family}({args})" + (f"[{prior.scale}]" if prior.scale else "")


def mixed_refit_spec(spec: BuiltMixedModel, priors: Mapping[str, str | float]) -> BuiltMixedModel:
    """The same mixed model with other ``priors=`` (keys of the model's default priors).

    Parameters
    ----------
    spec
        The built model.
    priors
        Priors to change (``"intercept"``, ``"fixef"``, ``"sd"``, ``"sigma"``, ...); the others stay.

    Returns
    -------
    BuiltMixedModel

    Raises
    ------
    PymlsemError
        A model built with MCMCglmm-style ``prior=`` parts (rebuild it with :func:`pymlsem.mixed`).
    PriorError
        An unknown key or a prior that does not fit its parameter.
    """
    given = _check_mapping(priors)
    parsed = getattr(spec, "mcmcglmm_prior", None)
    if parsed is not None and (parsed.b or parsed.r or any(parsed.g)):
        raise PymlsemError(
            "refit(priors=...) changes pymlsem's priors= of a model; this model also has MCMCglmm-style "
            "prior= parts, which a refit cannot carry over: fit it again with pymlsem.mixed(..., prior=...)"
        )
    merged = {**{key: prior_text(value) for key, value in spec.priors.items()}, **given}
    if spec.family == "gaussian":
        new = build_mixed_model(spec.design, priors=merged, method=spec.method)
    else:
        new = build_glmm_model(spec.design, spec.response, priors=merged)
    if model_cache_key(new) != model_cache_key(spec) and engine_binding(new)[0] is None:
        changed = [
            key for key in given if _structure(spec.priors.get(key)) != _structure(new.priors.get(key))
        ]
        _recompile_warning(changed or sorted(given))
    return new


def _structure(prior: Any) -> Any:
    return (prior.family, prior.scale) if isinstance(prior, Prior) else prior


def refit(
    fit: Fitted,
    priors: Mapping[str, Any],
    *,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    random_seed: int | None = None,
    progressbar: bool = False,
    **kwargs: Any,
) -> Any:
    """Fit the same model to the same data with other priors, reusing the compiled model.

    Parameters
    ----------
    fit
        A fitted SEM or mixed model.
    priors
        The priors to change (SEM: by class or parameter name as in :class:`~pymlsem.api.SEM`; mixed: keys
        of ``priors=`` of :func:`pymlsem.mixed`); the others keep the fit's priors.
    draws, tune, chains
        Default: as the fit was sampled.
    random_seed
        Seed of the new run.
    progressbar
        Show the sampler's progress.
    **kwargs
        Sampler options, added to those the fit was sampled with (``fit.settings``: a fit with
        ``target_accept=0.95`` is refitted with it too); ``sampler=`` another sampler.

    Returns
    -------
    SEMFit or MixedFit
        The new fit. Its ``timings.reused_compiled`` (SEM) tells whether the compiled model was reused.
    """
    counts = {"draws": draws, "tune": tune, "chains": chains}
    changes = {name: value for name, value in counts.items() if value is not None}
    if "sampler" in kwargs:
        changes["sampler"] = kwargs.pop("sampler")
    settings = fit.settings.replace(
        random_seed=random_seed, progressbar=progressbar, options=kwargs, **changes
    )
    return fit.fit_with_priors(priors, settings)


def _summary(fit: Fitted, prob: float) -> pd.DataFrame:
    table = summarize_draws(posterior_parameters(fit), prob)
    table.index = pd.Index([str(name) for name in table.index], name="parameter")
    priors = fit.parameter_priors()
    if priors:
        table.insert(0, "prior", [priors.get(name, "") for name in table.index])
    return table


def prior_grid(
    fit: Fitted,
    settings: Mapping[str, Mapping[str, Any]],
    *,
    prob: float = 0.95,
    random_seed: int | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Refit under each of several prior settings and tabulate how each parameter's posterior moves.

    Parameters
    ----------
    fit
        The reference fit (its priors are the setting ``"base"``).
    settings
        Setting name -> priors to change (as for :func:`refit`); each setting starts from the fit's priors.
    prob
        Probability of the central intervals.
    random_seed
        Seed of every refit.
    **kwargs
        Passed to :func:`refit` (``draws``, ``tune``, ``chains``, sampler options).

    Returns
    -------
    pandas.DataFrame
        One row per setting and parameter (tidy): ``setting, parameter, [prior, prior_changed,] mean, sd,
        q<lo>, q<hi>, r_hat, ess_bulk, ess_tail, shift`` (mean minus the base mean), ``shift_sd`` (that in
        base posterior SDs) and ``sd_ratio`` (SD over the base SD).

    Raises
    ------
    PymlsemError
        No settings, or a setting named ``"base"``.
    """
    if not isinstance(settings, Mapping) or not settings:
        raise PymlsemError(
            "settings must be a non-empty dict: name -> priors, e.g. {'tight': {'lambda': ...}}"
        )
    if "base" in settings:
        raise PymlsemError("'base' names the fit's own priors in the table; call the setting something else")
    base = _summary(fit, prob)
    tables = [base.assign(setting="base")]
    for name, priors in settings.items():
        new = refit(fit, priors, random_seed=random_seed, **kwargs)
        tables.append(_summary(new, prob).assign(setting=str(name)))
    out = pd.concat(tables).reset_index()
    reference = base.reindex(out["parameter"])
    out["shift"] = out["mean"].to_numpy() - reference["mean"].to_numpy()
    out["shift_sd"] = out["shift"] / reference["sd"].to_numpy()
    out["sd_ratio"] = out["sd"].to_numpy() / reference["sd"].to_numpy()
    if "prior" in out:
        out.insert(3, "prior_changed", out["prior"].to_numpy() != reference["prior"].to_numpy())
    columns = ["setting", "parameter", *[c for c in out.columns if c not in ("setting", "parameter")]]
    return out[columns]
