"""Every prior family of :data:`pymlsem.priors.FAMILIES` for the kernels: PyMC's log-density at PyMC's
default transform of its support, with the transform's log-Jacobian, as :mod:`pymlsem.engine.priors` puts
them in the family graphs.

Every kernel family's packed integer arrays start with one segment per prior family
(:data:`PRIOR_SEGMENTS`, in the order of :data:`pymlsem.priors.FAMILIES`): the positions in the point of
that family's elements, possibly none, so a kernel serves the default priors and any other prior family
alike. For an element with hyperparameters ``h`` (the family's arguments in order) and unconstrained value
``t``:

* on the real line (``t`` itself): ``normal(mu, sigma)``, ``student_t(nu, mu, sigma)``,
  ``cauchy(alpha, beta)``;
* positive, through ``exp`` (log-Jacobian ``t``): ``gamma(alpha, beta)`` (rate), ``inv_gamma(alpha,
  beta)``, ``lognormal(mu, sigma)``, ``exponential(lam)``, ``halfnormal(sigma)``, ``halfcauchy(beta)``,
  ``halft(nu, sigma)``;
* in (0, 1), through the logistic function (log-Jacobian ``log u + log(1 - u)``): ``beta(alpha, beta)``;
* in (lower, upper), PyMC's interval transform (log-Jacobian ``log(upper - lower) - 2 softplus(-t) - t``):
  ``uniform(lower, upper)``.

PyMC writes ``log(2)`` of the half-Cauchy and half-t densities with an integer 2, which PyTensor takes
in float32 (:data:`_PYMC_LOG_2`); the kernel does the same, to equal the models' own graphs.
"""

from __future__ import annotations

import math

import numpy as np

from pymlsem.engine.kernels import internal
from pymlsem.priors import FAMILIES

__all__ = ["PRIOR_SEGMENTS", "all_priors", "log_sigmoid"]

#: the first segments of every kernel family: the positions of each prior family's elements
PRIOR_SEGMENTS = tuple(f"prior_{name}" for name in FAMILIES)
_ORDER = (
    "normal",
    "student_t",
    "cauchy",
    "gamma",
    "inv_gamma",
    "lognormal",
    "exponential",
    "halfnormal",
    "halfcauchy",
    "halft",
    "beta",
    "uniform",
)
assert tuple(FAMILIES) == _ORDER, "the codes below follow pymlsem.priors.FAMILIES"
_NORMAL, _STUDENT_T, _CAUCHY, _GAMMA, _INV_GAMMA, _LOGNORMAL = range(6)
_EXPONENTIAL, _HALFNORMAL, _HALFCAUCHY, _HALFT, _BETA, _UNIFORM = range(6, 12)
_N_FAMILIES = len(FAMILIES)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_PI = math.log(math.pi)
_LOG_SQRT_2_OVER_PI = math.log(math.sqrt(2.0 / math.pi))
#: ``log(2)`` in float32, as PyTensor computes PyMC's ``pt.log(2)``
_PYMC_LOG_2 = float(np.log(np.float32(2.0)))


@internal
def log_sigmoid(x):
    """``log(1 / (1 + exp(-x)))`` without overflow."""
    if x >= 0:
        return -math.log1p(math.exp(-x))
    return x - math.log1p(math.exp(x))


@internal
def _softplus(x):
    """``log(1 + exp(x))`` without overflow."""
    return -log_sigmoid(-x)


@internal
def _real_line(code, t, h0, h1, h2):
    """Log-density and its derivative of a prior on the real line at ``t``."""
    if code == _NORMAL:  # Normal(mu, sigma)
        z = (t - h0) / h1
        return -0.5 * z * z - math.log(h1) - _HALF_LOG_2PI, -z / h1
    if code == _STUDENT_T:  # StudentT(nu, mu, sigma), as PyMC: lam = sigma^-2
        nu, r, lam = h0, t - h1, h2**-2.0
        logp = math.lgamma((nu + 1.0) / 2.0) + 0.5 * math.log(lam / (nu * math.pi)) - math.lgamma(nu / 2.0)
        logp -= (nu + 1.0) / 2.0 * math.log1p(lam * r * r / nu)
        return logp, -(nu + 1.0) * r * lam / (nu + lam * r * r)
    z = (t - h0) / h1  # Cauchy(alpha, beta)
    return -_LOG_PI - math.log(h1) - math.log1p(z * z), -2.0 * z / (h1 * (1.0 + z * z))


@internal
def _positive(code, v, h0, h1):
    """Log-density of a positive prior at ``v`` and its derivative in ``log v`` (Jacobian not included)."""
    if code == _GAMMA:  # Gamma(alpha, beta), rate beta
        logp = h0 * math.log(h1) - math.lgamma(h0) + (h0 - 1.0) * math.log(v) - h1 * v
        return logp, (h0 - 1.0) - h1 * v
    if code == _INV_GAMMA:  # InverseGamma(alpha, beta)
        logp = -math.lgamma(h0) + h0 * math.log(h1) - h1 / v + (-h0 - 1.0) * math.log(v)
        return logp, h1 / v - h0 - 1.0
    if code == _LOGNORMAL:  # LogNormal(mu, sigma)
        z = (math.log(v) - h0) / h1
        return -0.5 * z * z - _HALF_LOG_2PI - math.log(h1) - math.log(v), -z / h1 - 1.0
    if code == _EXPONENTIAL:  # Exponential(lam), as PyMC: scale 1 / lam
        scale = 1.0 / h0
        return -math.log(scale) - v / scale, -v / scale
    if code == _HALFNORMAL:  # HalfNormal(sigma)
        z = v / h0
        return -0.5 * z * z + _LOG_SQRT_2_OVER_PI - math.log(h0), -z * z
    if code == _HALFCAUCHY:  # HalfCauchy(beta)
        z = v / h0
        return _PYMC_LOG_2 - _LOG_PI - math.log(h0) - math.log1p(z * z), -2.0 * z * z / (1.0 + z * z)
    nu, sigma = h0, h1  # HalfStudentT(nu, sigma)
    w = v * v / (nu * sigma * sigma)
    logp = _PYMC_LOG_2 + math.lgamma((nu + 1.0) / 2.0) - math.lgamma(nu / 2.0)
    logp -= 0.5 * math.log(nu * math.pi * sigma * sigma) + (nu + 1.0) / 2.0 * math.log1p(w)
    return logp, -(nu + 1.0) * w / (1.0 + w)


@internal
def _add_family(code, x, hyper, positions, grad, values, slope):
    """Add the elements at ``positions`` of prior family ``code``: returns their summed log-density (with
    the log-Jacobian) and writes their gradient in x, values and dvalue/dx into the arrays."""
    logp = 0.0
    for i in positions:
        t, h0, h1, h2 = x[i], hyper[i, 0], hyper[i, 1], hyper[i, 2]
        if code <= _CAUCHY:
            density, d_t = _real_line(code, t, h0, h1, h2)
            value, d_value = t, 1.0
        elif code == _BETA:  # Beta(alpha, beta) at u = logistic(t)
            log_u, log_w = log_sigmoid(t), log_sigmoid(-t)  # log u, log(1 - u)
            value = math.exp(log_u)
            betaln = math.lgamma(h0) + math.lgamma(h1) - math.lgamma(h0 + h1)
            density = (h0 - 1.0) * log_u + (h1 - 1.0) * log_w - betaln + log_u + log_w
            d_t, d_value = h0 * (1.0 - value) - h1 * value, value * (1.0 - value)
        elif code == _UNIFORM:  # Uniform(lower, upper) at lower + (upper - lower) logistic(t)
            width = h1 - h0
            share = math.exp(log_sigmoid(t))
            value = share * h1 + (1.0 - share) * h0
            density = -math.log(width) + math.log(width) - 2.0 * _softplus(-t) - t
            d_t, d_value = 1.0 - 2.0 * share, width * share * (1.0 - share)
        else:  # positive, at exp(t), plus the log-Jacobian t
            value = math.exp(t)
            density, d_log = _positive(code, value, h0, h1)
            density += t
            d_t, d_value = d_log + 1.0, value
        logp += density
        grad[i] = d_t
        values[i] = value
        slope[i] = d_value
    return logp


@internal
def all_priors(x, hyper, ints, offsets):
    """The joint prior log-density at the unconstrained point ``x`` (log-Jacobians included), its gradient
    in x, the values and dvalue/dx, from the first :data:`PRIOR_SEGMENTS` of ``ints``; elements in none of
    them (an LKJ factor, a GLMM's standardised effects) are left at zero for their kernel to fill."""
    grad = np.zeros(x.size)
    values = np.zeros(x.size)
    slope = np.zeros(x.size)
    logp = 0.0
    for code in range(_N_FAMILIES):
        positions = ints[offsets[code] : offsets[code + 1]]
        logp += _add_family(code, x, hyper, positions, grad, values, slope)
    return logp, grad, values, slope
