"""pymlsem: Bayesian multilevel structural equation models on PyMC, written in lavaan syntax.

>>> import pymlsem
>>> fit = pymlsem.sem(model, data, cluster="cluster")   # doctest: +SKIP
>>> print(fit.summary())                                 # doctest: +SKIP
"""

import gc

# Importing pymlsem creates ~390,000 objects that the garbage collector tracks (PyMC, PyTensor, pandas,
# xarray, SciPy, numba) and that live until the process ends. Each full collection would traverse them all:
# ~0.3 s while importing, ~0.2 s in a fit, ~0.5 s while the interpreter shuts down. So collection pauses
# while they are imported, and they are then frozen (``gc.freeze``: left out of later collections; an object
# is still freed when its last reference goes). A fresh process's import, fit and exit take ~1 s less
# (benchmarks/README.md, session 38). The one cost: a reference cycle among objects made before this
# import is never collected; ``gc.unfreeze()`` undoes the freeze.
_collecting = gc.isenabled()
gc.disable()
try:
    # ArviZ first: its loader of the optional JAX/NumPyro converters inspects the whole call stack when they
    # are not installed, which costs ~0.3 s once many modules are loaded and ~0.05 s before
    # (benchmarks/README.md)
    import arviz_stats  # noqa: F401

    from pymlsem import datasets
    from pymlsem.api import SEM, cfa, growth, sem
    from pymlsem.compile_level import use_compile_level
    from pymlsem.datasets import load_dataset
    from pymlsem.exceptions import (
        ControlError,
        DataError,
        ModelSpecificationError,
        ModelSyntaxError,
        PriorError,
        PymlsemError,
        SamplerError,
    )
    from pymlsem.formula.centering import center_grand, center_within, cluster_means
    from pymlsem.irt.api import irt
    from pymlsem.irt.fit import IRTFit
    from pymlsem.latent_class.api import lca
    from pymlsem.latent_class.fit import LCAFit
    from pymlsem.mlm.api import MixedModel, mixed, mixed_model
    from pymlsem.simulate import simulate
    from pymlsem.studies.power import power_curve, power_sim, sem_power_sim
    from pymlsem.version import __version__
    from pymlsem.workflow.information import compare
    from pymlsem.workflow.refit import prior_grid
finally:
    gc.freeze()
    if _collecting:
        gc.enable()
    del _collecting

use_compile_level()  # nothing compiles while importing: numba at LLVM level 1 unless NUMBA_OPT is set

__all__ = [
    "SEM",
    "ControlError",
    "DataError",
    "IRTFit",
    "LCAFit",
    "MixedModel",
    "ModelSpecificationError",
    "ModelSyntaxError",
    "PriorError",
    "PymlsemError",
    "SamplerError",
    "__version__",
    "center_grand",
    "center_within",
    "cfa",
    "cluster_means",
    "compare",
    "datasets",
    "growth",
    "irt",
    "lca",
    "load_dataset",
    "mixed",
    "mixed_model",
    "power_curve",
    "power_sim",
    "prior_grid",
    "sem",
    "sem_power_sim",
    "simulate",
]
