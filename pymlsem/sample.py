"""One entry to every NUTS sampler, with a cache of compiled models.

``sampler="nutpie"`` (default) compiles the model once with nutpie and keeps the compiled model in a
process-wide cache keyed by the model's structure; a later fit of the same structure on new data (or
new prior hyperparameters) swaps the ``pm.Data`` values with ``CompiledModel.with_data`` instead of
compiling again. ``"pymc"``, ``"numpyro"`` and ``"blackjax"`` go through ``pm.sample``.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm

from pymlsem.exceptions import SamplerError
from pymlsem.nutpie_compile import compile_nutpie_model

SAMPLERS = ("nutpie", "pymc", "numpyro", "blackjax")
_COMPILED: dict[Hashable, Any] = {}


@dataclass
class SamplingResult:
    """A posterior and how long each stage took (seconds)."""

    idata: Any
    sampler: str
    compile_seconds: float
    sampling_seconds: float
    reused_compiled: bool


def check_sampler(sampler: str) -> None:
    """Raise :class:`SamplerError` for an unknown sampler or one whose package is not installed."""
    if sampler not in SAMPLERS:
        raise SamplerError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    needs = {"nutpie": ["nutpie"], "numpyro": ["numpyro", "jax"], "blackjax": ["blackjax", "jax"]}
    missing = [m for m in needs.get(sampler, []) if importlib.util.find_spec(m) is None]
    if missing:
        raise SamplerError(
            f"sampler={sampler!r} needs {', '.join(missing)}, which is not installed; "
            "install it with: pip install 'pymlsem[jax]'  (or choose sampler='nutpie' or 'pymc')"
        )


def sample_model(
    model: pm.Model,
    *,
    sampler: str = "nutpie",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | None = None,
    progressbar: bool = True,
    cache_key: Hashable | None = None,
    data: Mapping[str, np.ndarray] | None = None,
    **kwargs: Any,
) -> SamplingResult:
    """Sample ``model`` with NUTS.

    Parameters
    ----------
    model
        The PyMC model.
    sampler
        ``"nutpie"``, ``"pymc"``, ``"numpyro"`` or ``"blackjax"``.
    draws, tune, chains
        Draws kept per chain, tuning steps per chain, number of chains.
    random_seed
        Seed for reproducible draws.
    progressbar
        Show the sampler's progress.
    cache_key
        For nutpie: a key identifying the model's structure. A model compiled under the same key is
        reused, with ``data`` (``pm.Data`` name -> value) swapped in.
    data
        Values of the model's ``pm.Data`` variables for a reused compiled model.
    **kwargs
        Passed to ``nutpie.sample`` or ``pm.sample`` (e.g. ``target_accept``).
    """
    check_sampler(sampler)
    if sampler == "nutpie":
        return _sample_nutpie(model, draws, tune, chains, random_seed, progressbar, cache_key, data, kwargs)
    start = time.perf_counter()
    idata = pm.sample(
        model=model,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=random_seed,
        progressbar=progressbar,
        nuts_sampler=sampler,
        compute_convergence_checks=False,
        **kwargs,
    )
    total = time.perf_counter() - start
    seconds = float(idata.posterior.attrs.get("sampling_time", total))
    return SamplingResult(idata, sampler, max(total - seconds, 0.0), seconds, False)


def _sample_nutpie(model, draws, tune, chains, random_seed, progressbar, cache_key, data, kwargs):
    import nutpie

    start = time.perf_counter()
    reused = cache_key is not None and cache_key in _COMPILED
    if reused:
        compiled = _COMPILED[cache_key]
        if data:
            # data the log-density does not read (e.g. an empty exo_values) were pruned from the compiled
            # model, which then knows no such shared variable: pass only the ones it has
            known = {var.name for var in getattr(compiled, "shared_var_keys", {})}
            compiled = compiled.with_data(**{k: v for k, v in data.items() if not known or k in known})
    else:
        compiled = compile_nutpie_model(model)
        if cache_key is not None:
            _COMPILED[cache_key] = compiled
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    idata = nutpie.sample(
        compiled,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=random_seed,
        progress_bar=progressbar,
        **kwargs,
    )
    return SamplingResult(idata, "nutpie", compile_seconds, time.perf_counter() - start, reused)


def clear_compiled_cache() -> None:
    """Forget every compiled model (the next fit compiles again)."""
    _COMPILED.clear()
