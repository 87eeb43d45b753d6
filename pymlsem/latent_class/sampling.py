"""Sampling a latent class model with nutpie through the compiled latent class family
(:mod:`pymlsem.engine.latent_class`)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import xarray as xr

from pymlsem.engine.binding import Binding
from pymlsem.engine.compiled import load_family
from pymlsem.engine.latent_class import bind, free_shapes
from pymlsem.engine.run import nutpie_model
from pymlsem.latent_class.data import LCAData
from pymlsem.latent_class.model import LCAStructure

__all__ = ["sample_lca"]


def sample_lca(data: LCAData, structure: LCAStructure, model: Any, settings: Any) -> tuple[Any, float, float]:
    """Sample a latent class model through the family with nutpie.

    Parameters
    ----------
    data, structure
        The model's items and numbers of classes.
    model
        The per-model PyMC model (its initial point: PyMC's, jittered).
    settings
        :class:`pymlsem.sample.SamplerSettings` (nutpie).

    Returns
    -------
    idata, load_seconds, sampling_seconds
        The posterior with the per-model variables, named and shaped as the model's own graph gives them.
    """
    import nutpie

    start = time.perf_counter()
    binding = bind(data, structure)
    family = load_family("lca")
    free = free_shapes(data, structure)
    compiled = nutpie_model(binding, family, model, shapes=[free[name][1] for name, *_ in binding.variables])
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
        dims = model.named_vars_to_dims[name]
        out[name] = xr.DataArray(
            derived[..., cursor : cursor + size].reshape(*shape, *constrained),
            dims=("chain", "draw", *dims),
            coords={d: list(model.coords[d]) for d in dims},
        )
        cursor += size
    return xr.Dataset(out, coords={"chain": posterior.chain, "draw": posterior.draw}, attrs=posterior.attrs)
