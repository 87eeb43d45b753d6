"""Latent class models, single-level and multilevel (Vermunt's nonparametric model), with the classes summed
out of the log-density.

:mod:`pymlsem.latent_class.data` lays the items out as arrays, :mod:`pymlsem.latent_class.model`
builds the PyMC model, :mod:`pymlsem.latent_class.relabel` renames the classes of every draw against label
switching, :mod:`pymlsem.latent_class.fit` holds the fitted model's tables and
:mod:`pymlsem.latent_class.api` the front door, :func:`pymlsem.lca`;
:func:`pymlsem.engine.kernel_sampling.sample_kernel_family` samples it through the compiled engine family
(:mod:`pymlsem.engine.latent_class`).
"""
