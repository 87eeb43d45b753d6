"""The binomial (logit and probit) and Poisson GLMM families with the default priors
(``glmm_binomial_logit``, ``glmm_binomial_probit``, ``glmm_poisson``) as one hand-written numba kernel.

The family graph (:func:`pymlsem.engine.glmm.family_graph`) written by hand over the same inputs, with its
gradient, and tested against the graph (tests/engine/test_kernels.py) and against every such model's own
PyMC graph (tests/engine/test_engine.py). The response is data (the ``response_code`` segment: the
family's place in :data:`RESPONSES`), so the three families share one compiled kernel.

Before and after the likelihood, the parameters and the chain rule of :mod:`pymlsem.engine.kernels.effects`.
The random effects of every level are ``u = z L'`` (``z`` the standardised effects, standard normal
elements of the point), each row's linear predictor ``eta = offset + x b + sum_e Z[e] u[level(e), e]``, and
the response's log-density per row, with ``d = dlog p / d eta``:

* binomial, logit link: ``log C(n, y) + y log s(eta) + (n - y) log s(-eta)``, ``d = y - n s(eta)``;
* binomial, probit link: ``p = Phi(eta)`` (as PyMC's ``invprobit`` computes it: :data:`_PYMC_SQRT2`),
  ``log C(n, y) + y log p + (n - y) log(1 - p)``,
  ``d = phi(eta) (y / p - (n - y) / (1 - p))``;
* Poisson, log link: ``y eta - exp(eta) - log y!``, ``d = y - exp(eta)``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from pymlsem.engine.kernels.effects import EFFECT_SEGMENTS, correlation, effect_gradient, effect_parameters
from pymlsem.engine.kernels.parts import log_sigmoid, segment

__all__ = ["RESPONSES", "SEGMENTS", "expand", "logp_grad"]

#: the packed integer arrays of the families, in order (:func:`pymlsem.engine.glmm._segments`)
SEGMENTS = (*EFFECT_SEGMENTS, "z_param", "z_place", "n_levels", "response_param", "response_code")
_Z_PARAM, _Z_PLACE, _N_LEVELS, _RESPONSE_CODE = 10, 11, 12, 14
#: the families the kernel serves, by their response code
RESPONSES = ("glmm_binomial_logit", "glmm_binomial_probit", "glmm_poisson")
_LOGIT, _PROBIT, _POISSON = range(3)
#: PyMC's ``invprobit`` divides by ``sqrt(2.0)`` computed in float32 (PyTensor casts the literal 2.0 to
#: float32), so its ``Phi(eta)`` is the normal CDF at ``eta * 1.000000016``; the kernel does the same, to
#: equal the models' own graphs
_PYMC_SQRT2 = float(np.sqrt(np.float32(2.0)))


@numba.njit(cache=False)
def _row(code, eta, y, n):
    """One row's log-density and its derivative in the linear predictor."""
    if code == _POISSON:
        rate = math.exp(eta)
        return y * eta - rate - math.lgamma(y + 1.0), y - rate
    log_choose = math.lgamma(n + 1.0) - math.lgamma(y + 1.0) - math.lgamma(n - y + 1.0)
    if code == _LOGIT:
        logp = log_choose + y * log_sigmoid(eta) + (n - y) * log_sigmoid(-eta)
        return logp, y - n * math.exp(log_sigmoid(eta))
    scaled = eta / _PYMC_SQRT2
    p = 0.5 * math.erfc(-scaled)  # Phi(eta), and 1 - p = Phi(-eta)
    q = 0.5 * math.erfc(scaled)
    density = math.exp(-scaled * scaled) / (_PYMC_SQRT2 * math.sqrt(math.pi))  # dp / deta
    logp = log_choose + (y * math.log(p) if y > 0 else 0.0) + ((n - y) * math.log(q) if n > y else 0.0)
    return logp, density * ((y / p if y > 0 else 0.0) - ((n - y) / q if n > y else 0.0))


@numba.njit(cache=False)
def _effects(values, factor, ints, offsets):
    """The standardised effects ``z`` (levels x Q) and the effects ``u = z L'`` of every level."""
    n_effects = factor.shape[0]
    n_levels = segment(ints, offsets, _N_LEVELS)[0]
    flat = np.zeros(n_levels * n_effects)
    flat[segment(ints, offsets, _Z_PLACE)] = values[segment(ints, offsets, _Z_PARAM)]
    z = flat.reshape((n_levels, n_effects))
    return z, np.dot(z, np.ascontiguousarray(factor.T))


@numba.njit(cache=False)
def logp_grad(x, hyper, ints, offsets, reals, real_offsets, design, z_design, row_levels, y, trials, offset):
    """Log-density of the family at the unconstrained point ``x`` and its gradient.

    The arguments are the family's inputs in order (:func:`pymlsem.engine.glmm.family_inputs`).
    """
    log_prior, grad, values, slope, fixef, sd, corr_factor = effect_parameters(
        x, hyper, ints, offsets, reals, real_offsets
    )
    factor = sd.reshape((-1, 1)) * corr_factor
    z, u = _effects(values, factor, ints, offsets)
    code = segment(ints, offsets, _RESPONSE_CODE)[0]
    n_rows, n_effects = z_design.shape
    loglik = 0.0
    g_fixef = np.zeros(fixef.size)
    g_u = np.zeros(u.shape)
    for i in range(n_rows):
        eta = offset[i]
        for t in range(fixef.size):
            eta += design[i, t] * fixef[t]
        for e in range(n_effects):
            eta += z_design[i, e] * u[row_levels[i, e], e]
        logp, d = _row(code, eta, y[i], trials[i])
        loglik += logp
        for t in range(fixef.size):
            g_fixef[t] += design[i, t] * d
        for e in range(n_effects):
            g_u[row_levels[i, e], e] += z_design[i, e] * d
    if not np.isfinite(loglik):
        return -np.inf, np.zeros(x.size)
    g_values = np.zeros(x.size)
    g_z = np.dot(g_u, factor).reshape(-1)  # d/dz[l, f] = sum_e g_u[l, e] L[e, f]
    places = segment(ints, offsets, _Z_PLACE)
    for m, k in enumerate(segment(ints, offsets, _Z_PARAM)):
        g_values[k] += g_z[places[m]]
    g_factor = np.dot(np.ascontiguousarray(g_u.T), z)  # d/dL[e, f] = sum_l g_u[l, e] z[l, f]
    effect_gradient(
        x, grad, g_values, slope, g_fixef, g_factor, sd, corr_factor, ints, offsets, reals, real_offsets
    )
    return log_prior + loglik, grad


@numba.njit(cache=False)
def expand(x, hyper, ints, offsets, reals, real_offsets, design, z_design, row_levels, y, trials, offset):
    """The expanded values at ``x``: the K constrained values, the fixed effects, the SDs, the correlation
    factor and the correlation matrix (Q x Q each, row by row) and the effects of every level (levels x Q)."""
    _, _, values, _, fixef, sd, corr_factor = effect_parameters(x, hyper, ints, offsets, reals, real_offsets)
    _, u = _effects(values, sd.reshape((-1, 1)) * corr_factor, ints, offsets)
    parts = (values, fixef, sd, corr_factor.reshape(-1), correlation(corr_factor).reshape(-1), u.reshape(-1))
    return (np.concatenate(parts),)
