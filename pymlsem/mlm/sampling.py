"""Sample a built mixed model: through its compiled engine family, or its own compiled graph.

Both front doors' fits and refits (:mod:`pymlsem.workflow.refit`) sample a :class:`~pymlsem.mlm.model.
BuiltMixedModel` here; a model no engine family expresses compiles its own graph once per structure
(:func:`model_cache_key`) and is reused for new data or priors of that structure.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from pymlsem.engine.run import engine_binding, sample_binding
from pymlsem.mlm.model import BuiltMixedModel
from pymlsem.priors import Prior
from pymlsem.sample import Timings, sample_model

__all__ = ["model_cache_key", "sample_mixed"]


def model_cache_key(spec: BuiltMixedModel) -> tuple:
    """What makes two mixed models share one compiled per-model graph: the design's shape, the prior
    families (not their arguments, which are data), the response family and the likelihood's layout."""
    design = spec.design
    blocks = tuple((b.group, b.names, b.n_levels, b.correlated) for b in design.blocks)
    # prior families, not their arguments: those are pm.Data, swapped in by a refit with other priors
    priors = tuple(
        sorted((k, (v.family, v.scale) if isinstance(v, Prior) else v) for k, v in spec.priors.items())
    )
    response = spec.response
    family = (
        ("gaussian",)
        if response is None
        else (response.family, response.link, response.categories, response.offset is not None)
    )
    mcmcglmm = spec.mcmcglmm_prior.key() if spec.mcmcglmm_prior is not None else None
    # the marginal likelihood's layout (one factor, nested, crossed) is read from the data: part of the
    # structure; the latent graph is the same however the method was chosen
    return (
        "mixed",
        spec.method,
        spec.likelihood if spec.method == "marginal" else None,
        family,
        design.fixed_names,
        design.nobs,
        blocks,
        priors,
        mcmcglmm,
    )


def sample_mixed(
    spec: BuiltMixedModel,
    *,
    sampler: str,
    draws: int,
    tune: int,
    chains: int,
    thin: int = 1,
    random_seed: int | None = None,
    progressbar: bool = True,
    build_seconds: float = 0.0,
    **kwargs: Any,
) -> tuple[Any, Timings]:
    """Sample a built mixed model: through its compiled engine family with nutpie when it has one
    (:mod:`pymlsem.engine.mixed`), otherwise through its own compiled graph (with a line saying why).

    Parameters
    ----------
    spec
        The built model.
    sampler, draws, tune, chains, random_seed, progressbar, **kwargs
        As in :func:`mixed`; ``draws`` are kept per chain after thinning.
    thin
        Keep every ``thin``-th iteration (``draws * thin`` are run).
    build_seconds
        Seconds it took to build ``spec`` (counted in the timings' total).

    Returns
    -------
    idata, timings
        The posterior in the per-model layout (an ``xarray.DataTree``) and the seconds each stage took.
    """
    start = time.perf_counter()
    binding, why = engine_binding(spec) if sampler == "nutpie" else (None, "")
    if binding is not None:
        idata, compile_seconds, sampling_seconds, reused = sample_binding(
            binding,
            spec,
            draws=draws * thin,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            progressbar=progressbar,
            **kwargs,
        )
    else:
        if why:
            print(f"pymlsem: this model compiles as itself ({why})", file=sys.stderr, flush=True)
        data_values = {var.name: var.get_value() for var in spec.model.data_vars}
        result = sample_model(
            spec.model,
            sampler=sampler,
            draws=draws * thin,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            progressbar=progressbar,
            cache_key=model_cache_key(spec),
            data=data_values,
            **kwargs,
        )
        idata, reused = result.idata, result.reused_compiled
        compile_seconds, sampling_seconds = result.compile_seconds, result.sampling_seconds
    if thin > 1:
        idata["posterior"] = idata.posterior.isel(draw=slice(None, None, thin)).to_dataset()
    total = time.perf_counter() - start + build_seconds
    return idata, Timings(build_seconds, compile_seconds, sampling_seconds, total, reused)
