"""``pymlsem.lca``: fit a (multilevel) latent class model with NUTS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from pymlsem.diagnostics.convergence import sample_stat
from pymlsem.engine.kernel_sampling import sample
from pymlsem.engine.latent_class import bind, free_shapes
from pymlsem.exceptions import ModelSpecificationError
from pymlsem.latent_class.data import lca_data
from pymlsem.latent_class.fit import LCAFit, relabelled_posterior
from pymlsem.latent_class.model import LCAStructure, build_lca_model
from pymlsem.sample import SamplerSettings, is_integer

__all__ = ["lca"]


def _count(name: str, value: Any) -> int:
    if not is_integer(value) or value < 1:
        raise ModelSpecificationError(
            f"{name} must be a positive integer (the number of classes), not {value!r}"
        )
    return int(value)


def lca(
    data: pd.DataFrame,
    items: Sequence[str],
    n_classes: int,
    cluster: str | None = None,
    n_cluster_classes: int | None = None,
    continuous: Sequence[str] = (),
    *,
    sampler: str = "nutpie",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | None = None,
    progressbar: bool = True,
    **sampler_kw: Any,
) -> LCAFit:
    """Fit a latent class model, single-level or Vermunt's nonparametric multilevel one (multilevLCA's).

    Each person is in one of ``n_classes`` latent classes; given the class the items are independent
    (categorical items: a probability per category and class; continuous items: normal with a class mean
    and a shared SD). With ``cluster``, each cluster is in one of ``n_cluster_classes`` classes that set
    the class proportions of its persons. The classes are summed out of the log-density, NUTS samples the
    proportions and item parameters (priors: :mod:`pymlsem.latent_class.model`), and the draws are
    relabelled to one pivot draw against label switching (:mod:`pymlsem.latent_class.relabel`).

    Parameters
    ----------
    data
        One row per person (not modified). Missing item values are allowed (missing at random).
    items
        The indicators: binary or ordinal columns (numbers or an ordered Categorical) and those named in
        ``continuous``.
    n_classes
        K, the number of person-level classes (1 gives the model of independent items, to compare).
    cluster
        The column of cluster labels, for a multilevel model.
    n_cluster_classes
        M, the number of cluster-level classes; needed with ``cluster``.
    continuous
        The items that are continuous.
    sampler, draws, tune, chains, random_seed, progressbar
        The sampler and its chains, as for :func:`pymlsem.sem`.
    **sampler_kw
        The sampler's own settings (``target_accept``, ...).

    Returns
    -------
    LCAFit
        ``class_proportions()``, ``item_probabilities()``, ``item_means()``, ``membership(level)``,
        ``classification(level)``, ``entropy(level)``, ``summary()``, ``loo()``, ``diagnose()``.

    Raises
    ------
    ModelSpecificationError
        Numbers of classes that are not positive integers, ``n_cluster_classes`` without ``cluster`` or
        the other way round.
    DataError
        See :func:`pymlsem.latent_class.data.lca_data`.
    SamplerError, ControlError
        Unknown sampler or bad chain controls.

    Examples
    --------
    >>> fit = pymlsem.lca(data, items=["y1", "y2", "y3", "y4"], n_classes=2,
    ...                   cluster="school", n_cluster_classes=2)  # doctest: +SKIP
    >>> fit.class_proportions()  # doctest: +SKIP
    """
    k = _count("n_classes", n_classes)
    if cluster is None and n_cluster_classes is not None:
        raise ModelSpecificationError(
            "n_cluster_classes needs cluster= (the column of cluster labels); leave it out for a "
            "single-level model"
        )
    if cluster is not None and n_cluster_classes is None:
        raise ModelSpecificationError(
            f"cluster={cluster!r} needs n_cluster_classes= (the number of cluster-level classes, e.g. 2)"
        )
    m = 1 if cluster is None else _count("n_cluster_classes", n_cluster_classes)
    settings = SamplerSettings(sampler, draws, tune, chains, random_seed, progressbar, options=sampler_kw)
    arrays = lca_data(data, items, cluster, continuous)
    structure = LCAStructure(k, m, cluster is not None)
    model = build_lca_model(arrays, structure)
    shapes = [free for _, free in free_shapes(arrays, structure).values()]
    idata, compile_seconds, sampling_seconds = sample(bind(arrays, structure), model, settings, shapes)
    log_density = sample_stat(idata, "logp", "lp")
    pivot = int(log_density.values.argmax()) if log_density is not None else 0
    posterior, changed = relabelled_posterior(idata.posterior.to_dataset(), arrays, structure, pivot)
    idata["posterior"] = posterior
    fit = LCAFit(
        data=arrays,
        structure=structure,
        model=model,
        idata=idata,
        relabelled_draws=changed,
        sampler=settings.sampler,
        compile_seconds=compile_seconds,
        sampling_seconds=sampling_seconds,
    )
    fit.warn_if_unconverged()
    return fit
