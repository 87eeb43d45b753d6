"""One entry to every NUTS sampler, with a cache of compiled models.

``sampler="nutpie"`` (default) compiles the model once with nutpie and keeps the compiled model in a
process-wide cache keyed by the model's structure; a later fit of the same structure on new data (or
new prior hyperparameters) swaps the ``pm.Data`` values with ``CompiledModel.with_data`` instead of
compiling again. ``"pymc"``, ``"numpyro"`` and ``"blackjax"`` go through ``pm.sample``.
:func:`sample_spec`, what both front doors' fits call, first tries the model's compiled engine family
(:mod:`pymlsem.engine`) and falls back to :func:`sample_model`.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import inspect
import sys
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pymc as pm

from pymlsem.build.rewrites import compile_mode
from pymlsem.engine.run import engine_binding, sample_binding
from pymlsem.exceptions import ControlError, SamplerError
from pymlsem.nutpie_compile import compile_nutpie_model

SAMPLERS = ("nutpie", "pymc", "numpyro", "blackjax")
_COMPILED: dict[Hashable, Any] = {}


@dataclass
class Timings:
    """Seconds spent in each stage of a fit (both kinds of fit).

    Attributes
    ----------
    build
        Building the model (data checks, statistics, the PyMC graph).
    compile
        Loading (or, the first time on a machine, compiling) the engine family or the model's own graph.
    sampling
        NUTS, tuning included.
    total
        The whole fit.
    reused_compiled
        Whether compiled code was reused (the family or graph was not compiled by this fit).
    """

    build: float
    compile: float
    sampling: float
    total: float
    reused_compiled: bool


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


@dataclass(frozen=True)
class SamplerSettings:
    """How a model is sampled: the sampler, its controls and the options passed on to it, checked when the
    settings are made (before anything is built or compiled), in this one place for both front doors.

    Attributes
    ----------
    sampler
        ``"nutpie"`` (default), ``"pymc"``, ``"numpyro"`` or ``"blackjax"``.
    draws, tune, chains
        Draws kept per chain, tuning steps per chain, number of chains.
    random_seed
        Seed for reproducible draws (None: a fresh one).
    progressbar
        Show the sampler's progress.
    thin
        Keep every ``thin``-th draw (MCMCglmm's ``thin``; mixed models).
    options
        Passed to the sampler (e.g. ``target_accept``, ``cores``).

    Raises
    ------
    SamplerError
        An unknown or uninstalled sampler.
    ControlError
        ``draws``, ``chains`` or ``thin`` not a positive integer, ``tune`` not a non-negative one,
        ``random_seed`` neither None nor a non-negative integer, ``progressbar`` not a bool,
        ``target_accept`` outside (0, 1), ``cores`` not a positive integer, or (nutpie) a setting nutpie
        does not know, e.g. a typo such as ``target_acept`` (the message names the closest setting).
    """

    sampler: str = "nutpie"
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    random_seed: int | None = None
    progressbar: bool = True
    thin: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_sampler(self.sampler)
        options = dict(self.options)
        counts = [("draws", self.draws, 1), ("tune", self.tune, 0), ("chains", self.chains, 1)]
        counts.append(("thin", self.thin, 1))
        if options.get("cores") is not None:
            counts.append(("cores", options["cores"], 1))
        for name, value, least in counts:
            if not is_integer(value) or value < least:
                kind = "a positive" if least else "a non-negative"
                raise ControlError(f"{name} must be {kind} integer, not {value!r}")
        seed = self.random_seed
        if seed is not None and (not is_integer(seed) or seed < 0):
            raise ControlError(f"random_seed must be None or a non-negative integer, not {seed!r}")
        if not isinstance(self.progressbar, bool):
            raise ControlError(f"progressbar must be True or False, not {self.progressbar!r}")
        target = options.get("target_accept")
        if target is not None and is_real(target) and not 0 < target < 1:
            raise ControlError(f"target_accept must be between 0 and 1 (e.g. 0.9 or 0.95), not {target!r}")
        if self.sampler == "nutpie" and options:
            _check_nutpie_settings(options)
        object.__setattr__(self, "options", MappingProxyType(options))

    def replace(self, **changes: Any) -> SamplerSettings:
        """These settings with ``changes`` (checked again); ``options`` given join the present ones."""
        if "options" in changes:
            changes["options"] = {**self.options, **changes["options"]}
        return dataclasses.replace(self, **changes)

    def fit_record(self, thin: bool = False) -> dict[str, Any]:
        """What a fit records of these settings (the keywords of its constructor): ``sampler``, ``chains``,
        ``draws``, ``tune``, ``options`` (and ``thin`` when asked)."""
        names = ("sampler", "chains", "draws", "tune", *(("thin",) if thin else ()))
        return {name: getattr(self, name) for name in names} | {"options": dict(self.options)}

    def keywords(self) -> dict[str, Any]:
        """The settings as the keywords of a front door's ``fit`` (``thin`` left out: SEMs have none)."""
        names = ("sampler", "draws", "tune", "chains", "random_seed", "progressbar")
        return {name: getattr(self, name) for name in names} | dict(self.options)


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an integer (not a bool)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """Whether ``value`` is a real number (not a bool)."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _check_nutpie_settings(kwargs: dict[str, Any]) -> None:
    """Try ``kwargs`` on a fresh nutpie settings object, as ``nutpie.sample`` will after compiling."""
    import nutpie

    own = set(inspect.signature(nutpie.sample).parameters) - {"compiled_model", "kwargs"}
    settings_class = getattr(getattr(nutpie, "_lib", None), "PyNutsSettings", None)
    if settings_class is None:  # another nutpie layout: leave the check to nutpie
        return
    settings = settings_class.Diag(0)
    known = sorted(own | set(settings.as_dict().get("settings", [])) | {"target_accept"})
    for key, value in kwargs.items():
        if key in own:
            continue
        try:
            settings.update({key: value})
        except AttributeError as err:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ControlError(
                f"nutpie has no setting {key!r}{hint} (its settings include {', '.join(known)})"
            ) from err
        except (TypeError, ValueError) as err:
            raise ControlError(f"nutpie's setting {key}={value!r} is not valid: {err}") from err


#: nutpie's settings that choose its mass matrix adaptation (the current one and its deprecated forms)
ADAPTATION_SETTINGS = (
    "adaptation",
    "use_grad_based_mass_matrix",
    "low_rank_modified_mass_matrix",
    "transform_adapt",
)


def with_nutpie_adaptation(sampler: str, options: Mapping[str, Any], adaptation: str) -> dict[str, Any]:
    """``options`` with nutpie's mass matrix ``adaptation`` as a model kind's default: added only when
    nutpie samples and the user chose no adaptation (by its current name or a deprecated one)."""
    if sampler != "nutpie" or any(name in options for name in ADAPTATION_SETTINGS):
        return dict(options)
    return {"adaptation": adaptation, **options}


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
    if sampler == "pymc":  # PyMC's own NUTS compiles the model with PyTensor: with pymlsem's rewrites
        kwargs.setdefault("compile_kwargs", {"mode": compile_mode()})
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


def sample_spec(
    spec: Any,
    model: pm.Model,
    structure_key: Callable[[], Hashable],
    data_values: Callable[[], Mapping[str, np.ndarray]],
    settings: SamplerSettings,
    build_seconds: float = 0.0,
) -> tuple[Any, Timings]:
    """Sample a built model: through its compiled engine family with nutpie when it has one
    (:func:`pymlsem.engine.run.engine_binding`), otherwise through its own compiled graph
    (:func:`sample_model`, with a line on stderr saying why).

    Parameters
    ----------
    spec
        The built model: a :class:`pymlsem.api.SEM` or a :class:`pymlsem.mlm.model.BuiltMixedModel`.
    model
        Its PyMC model.
    structure_key, data_values
        Called only when the model compiles as itself: the compiled-model cache key and the values of
        the model's ``pm.Data`` (see :func:`sample_model`).
    settings
        The sampler, its controls and options; ``settings.draws`` are kept per chain after keeping every
        ``settings.thin``-th iteration (``draws * thin`` are run).
    build_seconds
        Seconds it took to build ``spec`` (counted in the timings' total).

    Returns
    -------
    idata, timings
        The posterior in the per-model layout (an ``xarray.DataTree``) and the seconds each stage took.
    """
    start = time.perf_counter()
    controls = {
        "draws": settings.draws * settings.thin,
        "tune": settings.tune,
        "chains": settings.chains,
        "random_seed": settings.random_seed,
        "progressbar": settings.progressbar,
    }
    binding, why = engine_binding(spec) if settings.sampler == "nutpie" else (None, "")
    if binding is not None:
        idata, compile_seconds, sampling_seconds, reused = sample_binding(
            binding, spec, **controls, **settings.options
        )
    else:
        if why:
            print(f"pymlsem: this model compiles as itself ({why})", file=sys.stderr, flush=True)
        result = sample_model(
            model,
            sampler=settings.sampler,
            **controls,
            cache_key=structure_key(),
            data=data_values(),
            **settings.options,
        )
        idata, reused = result.idata, result.reused_compiled
        compile_seconds, sampling_seconds = result.compile_seconds, result.sampling_seconds
    if settings.thin > 1:
        idata["posterior"] = idata.posterior.isel(draw=slice(None, None, settings.thin)).to_dataset()
    total = time.perf_counter() - start + build_seconds
    return idata, Timings(build_seconds, compile_seconds, sampling_seconds, total, reused)


def clear_compiled_cache() -> None:
    """Forget every compiled model (the next fit compiles again)."""
    _COMPILED.clear()
