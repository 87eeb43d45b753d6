"""Prior log-densities of a vector of free parameters whose families are data, not graph structure.

Each free parameter has a prior family (one of :data:`pymlsem.priors.FAMILIES`), up to three
hyperparameters and an unconstrained value ``x``. For every family the graph gathers the elements of that
family (their positions are an input, possibly empty) and evaluates PyMC's own log-density of the
distribution (``pm.logp``) at PyMC's default transform of its support, plus that transform's log-Jacobian.
So the graph is the same for every model, costs what the model's parameters cost, and has exactly the
density of the per-model PyMC graph (:mod:`pymlsem.build.parameters`).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.logprob.transforms import IntervalTransform, LogOddsTransform, LogTransform

from pymlsem.build.parameters import DISTRIBUTIONS
from pymlsem.priors import FAMILIES

__all__ = ["MAX_HYPER", "PRIOR_FAMILIES", "prior_logp", "transform_of"]

LOG_2 = float(np.log(2.0))

#: the prior families, in the order of their position inputs
PRIOR_FAMILIES = tuple(FAMILIES)
#: number of hyperparameter columns (student_t has three: nu, mu, sigma)
MAX_HYPER = max(len(args) for args, _ in FAMILIES.values())


def transform_of(family: str, hyper=None):
    """PyMC's default transform for a prior family's support (None on the real line).

    ``hyper`` (the family's arguments) is needed for ``uniform`` (an interval transform).
    """
    support = FAMILIES[family][1]
    if support == "real":
        return None
    if support == "positive":
        return LogTransform()
    if support == "unit":
        return LogOddsTransform()
    lower, upper = hyper
    return IntervalTransform(lambda *_: (lower, upper))


def prior_logp(
    x: pt.TensorVariable,
    hyper: pt.TensorVariable,
    positions: dict[str, pt.TensorVariable],
    signed: pt.TensorVariable | None = None,
) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """Joint prior log-density (with the transforms' log-Jacobians) and the constrained values.

    Parameters
    ----------
    x
        Unconstrained values, shape (K,).
    hyper
        Hyperparameters, shape (K, :data:`MAX_HYPER`), in the order of ``FAMILIES[family][0]``.
    positions
        For each prior family the graph evaluates (all of :data:`PRIOR_FAMILIES`, or the common ones when
        no element has another), the positions of its elements in ``x`` (int vector, possibly empty).
    signed
        Positions of signed SDs (:mod:`pymlsem.build.parameters`): on the real line as they are, with
        the density ``p(|x|) / 2`` of their positive family (int vector, possibly empty; None: none).

    Returns
    -------
    logp, values
        Scalar log-density; values on each distribution's support, shape (K,).
    """
    total = pt.as_tensor(0.0)
    values = pt.zeros_like(x)
    is_signed = None if signed is None else pt.set_subtensor(pt.zeros(x.shape[0])[signed], 1.0) > 0.5
    for name, where in positions.items():
        names = FAMILIES[name][0]
        args = [hyper[where, j] for j in range(len(names))]
        free = x[where]
        transform = transform_of(name, args)
        if transform is None:
            value, jacobian, at = free, 0.0, free
        else:
            value, jacobian = transform.backward(free), transform.log_jac_det(free)
            at = value
            if is_signed is not None and FAMILIES[name][1] == "positive":
                here = is_signed[where]
                value = pt.switch(here, free, value)
                jacobian = pt.switch(here, -LOG_2, jacobian)
                at = pt.switch(here, pt.abs(free), at)
        density = pm.logp(DISTRIBUTIONS[name].dist(**dict(zip(names, args, strict=True))), at) + jacobian
        total = total + pt.sum(density)
        values = pt.set_subtensor(values[where], value)
    return total, values
