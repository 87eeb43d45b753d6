"""Sampling a model of a hand-written kernel family (:func:`pymlsem.lca`, :func:`pymlsem.irt`) with nutpie,
and the posterior in the per-model PyMC variables' names and shapes."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import xarray as xr

from pymlsem.engine.binding import Binding
from pymlsem.engine.compiled import load_family
from pymlsem.engine.run import nutpie_model
from pymlsem.sample import sample_model

__all__ = ["sample", "sample_kernel_family"]


def sample(
    binding: Binding, model: Any, settings: Any, shapes: list[tuple[int, ...]]
) -> tuple[Any, float, float]:
    """Sample a model of a kernel family: with nutpie through the compiled family (no compiling of this
    structure), with the other samplers through the model's own graph (compiled).

    Parameters
    ----------
    binding, model, settings, shapes
        As for :func:`sample_kernel_family`.

    Returns
    -------
    idata, compile_seconds, sampling_seconds
    """
    if settings.sampler == "nutpie":
        return sample_kernel_family(binding, model, settings, shapes)
    result = sample_model(model, **settings.keywords())
    return result.idata, result.compile_seconds, result.sampling_seconds


def sample_kernel_family(
    binding: Binding, model: Any, settings: Any, shapes: list[tuple[int, ...]]
) -> tuple[Any, float, float]:
    """Sample a model through its family with nutpie.

    Parameters
    ----------
    binding
        The model as data of its family (the family's ``bind``).
    model
        The per-model PyMC model (its initial point: PyMC's, jittered; its dimensions name the posterior's).
    settings
        :class:`pymlsem.sample.SamplerSettings` (nutpie).
    shapes
        The unconstrained shape of each free variable, in the model's order.

    Returns
    -------
    idata, load_seconds, sampling_seconds
        The posterior with the per-model variables, named and shaped as the model's own graph gives them.
    """
    import nutpie

    start = time.perf_counter()
    family = load_family(binding.family)
    compiled = nutpie_model(binding, family, model, shapes=shapes)
    load_seconds = time.perf_counter() - start
    start = time.perf_counter()
    idata = nutpie.sample(
        compiled,
        draws=settings.draws,
        tune=settings.tune,
        chains=settings.chains,
        seed=settings.random_seed,
        progress_bar=settings.progressbar,
        **dict(settings.options),
    )
    sampling_seconds = time.perf_counter() - start
    idata["posterior"] = _per_model_posterior(binding, model, idata["posterior"].to_dataset())
    return idata, load_seconds, sampling_seconds


def _per_model_posterior(binding: Binding, model: Any, posterior: xr.Dataset) -> xr.Dataset:
    """The engine's expanded draws as the per-model variables, with the model's dimensions."""
    derived = posterior["engine_derived"].values
    shape = derived.shape[:2]
    out, cursor = {}, 0
    for name, _, constrained, _ in binding.variables:
        size = int(np.prod(constrained))
        dims = model.named_vars_to_dims.get(name, ())
        out[name] = xr.DataArray(
            derived[..., cursor : cursor + size].reshape(*shape, *constrained),
            dims=("chain", "draw", *dims),
            coords={d: list(model.coords[d]) for d in dims},
        )
        cursor += size
    return xr.Dataset(out, coords={"chain": posterior.chain, "draw": posterior.draw}, attrs=posterior.attrs)
