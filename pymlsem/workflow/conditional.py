"""Pointwise log-likelihood of SEMs fitted by the latent builder, given the sampled latent variables.

Random slopes and ordered indicators have no implied moments that describe the data (their latent variables
cannot be integrated out in closed form), so, as for non-Gaussian mixed models, the pointwise
log-likelihood conditions on the sampled latent variables: the value of a unit at a draw is the model's own
likelihood term of that unit (the terms of the potentials ``loglik_level<k>``, kept per unit by
:mod:`pymlsem.build.latent`), evaluated at the draw's parameters and latent variables.

- ``unit="observation"``: each row's terms (level 1), for models without observed between-only variables;
- ``unit="cluster"`` (two levels, default): the terms of the cluster's rows plus its between-level terms.

The values sum to the log-likelihood given the latent variables. PSIS-LOO on such values is less stable
than on an integrated likelihood (each unit has its own latent variables, so leaving it out moves the
posterior more): read the Pareto k diagnostics.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.replace import graph_replace

from pymlsem.exceptions import ModelSpecificationError

__all__ = ["latent_pointwise_values"]

SAMPLE_DIMS = ("chain", "draw")


def _per_unit(spec: Any, unit: str) -> pt.TensorVariable:
    """The model's likelihood terms per unit, in terms of its random variables."""
    terms = spec.built.unit_loglik
    rows, clusters = terms.get(1), terms.get(2)
    if unit == "observation":
        if clusters is not None:
            raise ModelSpecificationError(
                "the model has observed between-only variables, whose likelihood belongs to no single row; "
                "use unit='cluster'"
            )
        return rows
    index = np.asarray(spec.raw.cluster_index, dtype=np.int64)
    total = pt.zeros(spec.raw.n_clusters)
    if rows is not None:
        total = pt.inc_subtensor(total[pt.as_tensor(index)], rows)
    return total if clusters is None else total + clusters


def latent_pointwise_values(fit: Any, unit: str) -> np.ndarray:
    """Each unit's log-likelihood given the latent variables, per posterior draw.

    Parameters
    ----------
    fit
        A fit of a SEM built by the latent builder (``method="latent"``).
    unit
        ``"observation"`` or ``"cluster"``.

    Returns
    -------
    numpy.ndarray
        Shape (chain * draw, units), draws stacked chain by chain.

    Raises
    ------
    ModelSpecificationError
        ``unit="observation"`` with observed between-only variables.
    """
    spec = fit.model
    model = spec.built.model
    output = _per_unit(spec, unit)
    inputs = [rv.type(name=rv.name) for rv in model.free_RVs]
    output = graph_replace(output, dict(zip(model.free_RVs, inputs, strict=True)), strict=False)
    # the Python implementations of the ops: no compilation, and each draw is a few numpy calls
    function = pytensor.function(inputs, output, on_unused_input="ignore", mode="FAST_COMPILE")
    posterior = fit.idata.posterior
    draws = [posterior[rv.name].transpose(*SAMPLE_DIMS, ...).values for rv in model.free_RVs]
    draws = [d.reshape(-1, *d.shape[2:]) for d in draws]
    return np.stack([function(*[d[s] for d in draws]) for s in range(draws[0].shape[0])])
