"""Sample a built mixed model: through its compiled engine family, or its own compiled graph.

Both front doors' fits and refits (:mod:`pymlsem.workflow.refit`) sample a :class:`~pymlsem.mlm.model.
BuiltMixedModel` here; a model no engine family expresses compiles its own graph once per structure
(:func:`model_cache_key`) and is reused for new data or priors of that structure.
"""

from __future__ import annotations

from typing import Any

from pymlsem.mlm.model import BuiltMixedModel
from pymlsem.priors import Prior
from pymlsem.sample import SamplerSettings, Timings, sample_spec

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
    spec: BuiltMixedModel, settings: SamplerSettings, build_seconds: float = 0.0
) -> tuple[Any, Timings]:
    """Sample a built mixed model with :func:`pymlsem.sample.sample_spec`; a model no engine family
    expresses compiles its own graph, cached under :func:`model_cache_key`.

    Returns
    -------
    idata, timings
        The posterior in the per-model layout (an ``xarray.DataTree``) and the seconds each stage took.
    """
    return sample_spec(
        spec,
        spec.model,
        lambda: model_cache_key(spec),
        lambda: {var.name: var.get_value() for var in spec.model.data_vars},
        settings,
        build_seconds,
    )
