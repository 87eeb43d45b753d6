"""The single-level SEM family (``sem1``, default priors) as one hand-written numba kernel.

As :mod:`pymlsem.engine.kernels.sem2` for two levels: the family graph's log-density and gradient
(:func:`pymlsem.engine.sem.family_graph`) written by hand over the same inputs, tested against the graph
(tests/engine/test_kernels.py) and against every single-level model's own PyMC graph
(tests/engine/test_engine.py). After the priors and the table's rows (:mod:`pymlsem.engine.kernels.parts`),
the level's implied moments and the normal log-likelihood of the sample's mean and ML covariance
(:func:`pymlsem.build.loglik.single_level_loglik`); without a mean structure the data's means are their own
expectation, so the mean term is zero.
"""

from __future__ import annotations

import numpy as np

from pymlsem.engine.kernels import internal
from pymlsem.engine.kernels.parts import (
    COMMON_SEGMENTS,
    expanded_values,
    level_moments,
    level_segments,
    normal_terms,
    posterior,
    prior_and_rows,
    segment,
)

__all__ = ["SEGMENTS", "expand", "logp_grad"]

#: the packed integer arrays of the ``sem1`` family, in order (:func:`pymlsem.engine.sem.segments`)
SEGMENTS = (*COMMON_SEGMENTS, *level_segments(1), "mean_flag")
_MEAN_FLAG = SEGMENTS.index("mean_flag")


@internal
def logp_grad(x, hyper, ints, offsets, row_fixed, nobs, mean, cov):
    """Log-density of the ``sem1`` family at the unconstrained point ``x`` and its gradient.

    The arguments are the family's inputs in order (:func:`pymlsem.engine.sem.family_inputs`).
    """
    log_prior, rows, state = prior_and_rows(x, hyper, ints, offsets, row_fixed)
    sigma, mu, ram = level_moments(rows, ints, offsets, np.int64(0), cov.shape[0])
    if segment(ints, offsets, _MEAN_FLAG)[0] == 0:
        mu = mean.copy()
    n = nobs[0]
    loglik, g_sigma, g_mu = normal_terms(sigma, mean, mu, n * cov, n)
    return posterior(log_prior, loglik, state, rows.size, ints, offsets, ((g_sigma, g_mu, ram),))


@internal
def expand(x, hyper, ints, offsets, row_fixed, nobs, mean, cov):
    """The expanded values at ``x``: the K constrained values, then every table row on lavaan's scale."""
    return expanded_values(x, hyper, ints, offsets, row_fixed)
