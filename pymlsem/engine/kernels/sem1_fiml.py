"""The single-level SEM family with missing values (``sem1_fiml``, default priors) as a numba kernel.

As :mod:`pymlsem.engine.kernels.sem1`, with the full-information likelihood of the rows' observed values
(:func:`pymlsem.build.missing.single_level_missing_loglik`): each missingness pattern's rows are normal with
the implied moments of the variables it observes; ``-inf`` where the implied covariance, or a pattern's block
of it, is not positive definite. Tested against the family graph (tests/engine/test_kernels.py) and every
such model's own PyMC graph (tests/engine/test_engine.py).
"""

from __future__ import annotations

import numpy as np

from pymlsem.engine.kernels import internal
from pymlsem.engine.kernels.parts import (
    COMMON_SEGMENTS,
    cholesky_inverse,
    expanded_values,
    level_moments,
    level_segments,
    pattern_terms,
    posterior,
    prior_and_rows,
)

__all__ = ["SEGMENTS", "expand", "logp_grad"]

#: the packed integer arrays of the ``sem1_fiml`` family, in order (:func:`pymlsem.engine.sem.segments`)
SEGMENTS = (*COMMON_SEGMENTS, *level_segments(1))


@internal
def _pattern_terms(sigma, mu, patterns):
    """The patterns' log-likelihood with its gradient in ``sigma`` and ``mu`` (``-inf`` if not PD)."""
    p = mu.size
    g_sigma = np.zeros((p, p))
    g_mu = np.zeros(p)
    if not cholesky_inverse(sigma)[0]:
        return -np.inf, g_sigma, g_mu
    return pattern_terms(sigma, mu, patterns, g_sigma, g_mu, np.empty((0, p, p))), g_sigma, g_mu


@internal
def logp_grad(x, hyper, ints, offsets, row_fixed, n_values, observed, counts, means, scatter):
    """Log-density of the ``sem1_fiml`` family at the unconstrained point ``x`` and its gradient.

    The arguments are the family's inputs in order (:func:`pymlsem.engine.sem.family_inputs`).
    """
    log_prior, rows, state = prior_and_rows(x, hyper, ints, offsets, row_fixed)
    sigma, mu, ram = level_moments(rows, ints, offsets, np.int64(0), means.shape[1])
    loglik, g_sigma, g_mu = _pattern_terms(sigma, mu, (observed, counts, means, scatter))
    return posterior(log_prior, loglik, state, rows.size, ints, offsets, ((g_sigma, g_mu, ram),))


@internal
def expand(x, hyper, ints, offsets, row_fixed, n_values, observed, counts, means, scatter):
    """The expanded values at ``x``: the K constrained values, then every table row on lavaan's scale."""
    return expanded_values(x, hyper, ints, offsets, row_fixed)
