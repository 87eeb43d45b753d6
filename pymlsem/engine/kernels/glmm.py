"""The GLMM families with the default priors (binomial with logit and probit links, Poisson, negative
binomial, Student-t, ordinal with cumulative logit and probit links, and Gaussian models whose random
effects are sampled) as one hand-written numba kernel.

The family graph (:func:`pymlsem.engine.glmm.family_graph`) written by hand over the same inputs, with its
gradient, and tested against the graph (tests/engine/test_kernels.py) and against every such model's own
PyMC graph (tests/engine/test_engine.py). The response is data (the ``response_code`` segment: the
family's place in :data:`RESPONSES`), so the families share one compiled kernel.

Before and after the likelihood, the parameters and the chain rule of :mod:`pymlsem.engine.kernels.effects`.
The random effects of every level are ``u = z L'`` (``z`` the standardised effects, standard normal
elements of the point), each row's linear predictor ``eta = offset + x b + sum_e Z[e] u[level(e), e]``, and
the response's log-density per row, with ``d = dlog p / d eta``:

* binomial, logit link: ``log C(n, y) + y log s(eta) + (n - y) log s(-eta)``, ``d = y - n s(eta)``;
* binomial, probit link: ``p = Phi(eta)`` (as PyMC's ``invprobit`` computes it: :data:`_PYMC_SQRT2`),
  ``log C(n, y) + y log p + (n - y) log(1 - p)``,
  ``d = phi(eta) (y / p - (n - y) / (1 - p))``;
* Poisson, log link: ``y eta - exp(eta) - log y!``, ``d = y - exp(eta)``;
* Gaussian, identity link, ``sigma = unit * t`` (a Gaussian model whose random effects are sampled, or one
  without random terms): ``-log(2 pi) / 2 - log sigma - r^2 / 2`` with ``r = (y - eta) / sigma``,
  ``d = r / sigma``, and in sigma ``(r^2 - 1) / sigma``;
* Student-t, identity link, ``sigma = unit * t``, ``nu`` (degrees of freedom, gamma prior): PyMC's
  ``StudentT`` log-density, its derivatives in ``sigma`` and ``nu`` (through the digamma function);
* negative binomial, log link, ``mu = exp(eta)``, ``alpha = 1 / t^2`` (``t`` its parameter, expanded as
  ``theta = alpha``): ``log G(y + alpha) - log G(alpha) - log y! + y log(mu / (mu + alpha)) + alpha
  log(alpha / (mu + alpha))``, ``d = y - (y + alpha) mu / (mu + alpha)``, and in alpha
  ``psi(y + alpha) - psi(alpha) + log(alpha / (mu + alpha)) + (mu - y) / (mu + alpha)``;
* ordinal, category k of K: ``log(F(c[k] - eta) - F(c[k-1] - eta))`` with F the logistic or PyMC's normal
  CDF, ``c[-1] = -inf``, ``c[K-1] = inf``; the cut-points ``c`` are PyMC's ordered transform of their
  elements of the point (its log-Jacobian added), under their normal prior.

An evaluation makes three passes over the rows, each a loop the compiler keeps tight: the linear predictor
(an effect at a time), the response's log-density and ``d`` (one loop per kind of response, the logit
link's binomial rows in their own), and the gradient in the fixed effects and the effects of every level.
One pass per row with all three inside took 1.3-1.6x as long (docs: benchmarks/README.md, session 32).
"""

from __future__ import annotations

import math

import numpy as np

from pymlsem.engine.kernels import internal
from pymlsem.engine.kernels.effects import (
    EFFECT_REALS,
    EFFECT_SEGMENTS,
    correlation,
    effect_gradient,
    effect_parameters,
    power_slope,
)
from pymlsem.engine.kernels.parts import segment
from pymlsem.engine.kernels.priors import PRIOR_SEGMENTS, log_sigmoid

__all__ = ["RESPONSES", "SEGMENTS", "SERVED", "digamma", "expand", "logp_grad"]

#: the packed integer arrays of the families, in order (:func:`pymlsem.engine.glmm._segments`)
_OWN_SEGMENTS = ("z_param", "z_place", "n_levels", "response_param", "response_code")
SEGMENTS = (*PRIOR_SEGMENTS, *EFFECT_SEGMENTS, *_OWN_SEGMENTS)
_FIRST = len(PRIOR_SEGMENTS)  # the effect segments' start
#: positions of the own segments after the prior and effect segments
_Z_PARAM, _Z_PLACE, _N_LEVELS, _RESPONSE_PARAM = (len(EFFECT_SEGMENTS) + i for i in range(4))
_RESPONSE_UNIT, _RESPONSE_POWER = len(EFFECT_REALS), len(EFFECT_REALS) + 1  # after the effects' reals
#: the GLMM families by response code (the order of :data:`pymlsem.engine.glmm._LIKELIHOODS`)
RESPONSES = (
    "glmm_binomial_logit",
    "glmm_binomial_probit",
    "glmm_poisson",
    "glmm_negbinomial",
    "glmm_student",
    "glmm_ordinal_logit",
    "glmm_ordinal_probit",
    "glmm_gaussian",
)
_LOGIT, _PROBIT, _POISSON, _NEGBINOMIAL, _STUDENT, _ORDINAL_LOGIT, _ORDINAL_PROBIT, _GAUSSIAN = range(8)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
#: the families the kernel serves (with the default priors)
SERVED = RESPONSES
#: PyMC's ``invprobit`` divides by ``sqrt(2.0)`` computed in float32 (PyTensor casts the literal 2.0 to
#: float32), so its ``Phi(eta)`` is the normal CDF at ``eta * 1.000000016``; the kernel does the same, to
#: equal the models' own graphs
_PYMC_SQRT2 = float(np.sqrt(np.float32(2.0)))
#: PyMC's ordered probit takes the first category's log-probability beyond ``|z| > 1`` as
#: ``log(erfcx(z / s) / 2) - z^2 / 2`` (the last one's likewise) with ``s`` that float32 square root,
#: which is ``log Phi(-z)`` plus ``z^2 (1 / s^2 - 1 / 2)``; and a middle category's as ``log(0.5) + ...``
#: with ``log(0.5)`` in float32: the kernel adds both differences where they arise, to equal the graphs
_PYMC_TAIL = 1.0 / _PYMC_SQRT2**2 - 0.5
_PYMC_LOG_HALF = float(np.log(np.float32(0.5))) - math.log(0.5)


@internal
def digamma(x):
    """The digamma function at ``x > 0``: the recurrence up to 10, then the asymptotic series (to ~1e-15)."""
    result = 0.0
    while x < 10.0:
        result -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    series = f * (
        1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f * (1 / 132 - f * (691 / 32760 - f / 12)))))
    )
    return result + math.log(x) - 0.5 / x - series


@internal
def _log_choose(n, y):
    """``log C(n, y)``: 0 for a Bernoulli row, without three lgamma calls per row and gradient."""
    if n == 1.0:
        return 0.0
    return math.lgamma(n + 1.0) - math.lgamma(y + 1.0) - math.lgamma(n - y + 1.0)


@internal
def _row(code, eta, y, n, a, b):
    """One row's log-density and its derivatives in the linear predictor and in the response's own
    parameters ``a`` and ``b``: the negative binomial's ``alpha``, the Gaussian's ``sigma`` (``b`` its log,
    not a parameter), the Student-t's ``sigma`` and ``nu`` (zero for the other responses). Every response
    but the logit link's binomial, whose rows :func:`_logit_rows` computes in a loop of their own."""
    if code == _POISSON:
        rate = math.exp(eta)
        return y * eta - rate - math.lgamma(y + 1.0), y - rate, 0.0, 0.0
    if code == _GAUSSIAN:  # b is log sigma, computed once for all rows
        sigma = a
        r = (y - eta) / sigma
        return -_HALF_LOG_2PI - b - 0.5 * r * r, r / sigma, (r * r - 1.0) / sigma, 0.0
    if code == _STUDENT:
        sigma, nu = a, b
        r = (y - eta) / sigma
        z2 = r * r / nu
        half = 0.5 * (nu + 1.0)
        logp = math.lgamma(half) - math.lgamma(0.5 * nu) - 0.5 * math.log(nu * math.pi) - math.log(sigma)
        logp -= half * math.log1p(z2)
        shrink = (nu + 1.0) / (nu + r * r)  # (nu + 1) / (nu (1 + z2))
        d_nu = 0.5 * (digamma(half) - digamma(0.5 * nu) - 1.0 / nu - math.log1p(z2)) + 0.5 * shrink * z2
        return logp, shrink * r / sigma, (shrink * r * r - 1.0) / sigma, d_nu
    alpha = a
    if code == _NEGBINOMIAL:
        rate = math.exp(eta)
        total = rate + alpha
        log_share = math.log(alpha / total)  # log p, and log(1 - p) = log(rate / total)
        logp = math.lgamma(y + alpha) - math.lgamma(alpha) - math.lgamma(y + 1.0)
        logp += y * math.log(rate / total) + alpha * log_share
        d_alpha = digamma(y + alpha) - digamma(alpha) + log_share + (rate - y) / total
        return logp, y - (y + alpha) * rate / total, d_alpha, 0.0
    log_choose = _log_choose(n, y)  # the probit link (the logit rows: :func:`_logit_rows`)
    scaled = eta / _PYMC_SQRT2
    p = 0.5 * math.erfc(-scaled)  # Phi(eta), and 1 - p = Phi(-eta)
    q = 0.5 * math.erfc(scaled)
    density = math.exp(-scaled * scaled) / (_PYMC_SQRT2 * math.sqrt(math.pi))  # dp / deta
    logp = log_choose + (y * math.log(p) if y > 0 else 0.0) + ((n - y) * math.log(q) if n > y else 0.0)
    return logp, density * ((y / p if y > 0 else 0.0) - ((n - y) / q if n > y else 0.0)), 0.0, 0.0


@internal
def _cdf(code, z):
    """The ordinal model's link CDF at ``z`` and its density: logistic, or PyMC's normal CDF
    (:data:`_PYMC_SQRT2`); ``F(-inf) = 0``, ``F(inf) = 1``."""
    if math.isinf(z):
        return (1.0 if z > 0 else 0.0), 0.0
    if code == _ORDINAL_LOGIT:
        cdf = math.exp(log_sigmoid(z))
        return cdf, cdf * math.exp(log_sigmoid(-z))
    scaled = z / _PYMC_SQRT2
    return 0.5 * math.erfc(-scaled), math.exp(-scaled * scaled) / (_PYMC_SQRT2 * math.sqrt(math.pi))


@internal
def _ordinal_row(code, eta, category, cutpoints):
    """One ordinal row's log-density ``log(F(c[k] - eta) - F(c[k-1] - eta))`` (``c[-1] = -inf``,
    ``c[K-1] = inf``) and its derivatives in the two cut-points it reads (``upper``, ``lower``)."""
    k = int(category)
    upper = cutpoints[k] - eta if k < cutpoints.size else np.inf
    lower = cutpoints[k - 1] - eta if k > 0 else -np.inf
    f_upper, d_upper = _cdf(code, upper)
    f_lower, d_lower = _cdf(code, lower)
    if lower > 0.0:  # both in the upper tail: the difference of the complements loses no digits
        p = _cdf(code, -lower)[0] - _cdf(code, -upper)[0]
    else:
        p = f_upper - f_lower
    logp, g_upper, g_lower = math.log(p), d_upper / p, -d_lower / p
    if code == _ORDINAL_PROBIT:  # PyMC's tails of the first and last categories (:data:`_PYMC_TAIL`)
        if k == 0 and upper < -1.0:
            logp, g_upper = logp + _PYMC_TAIL * upper * upper, g_upper + 2.0 * _PYMC_TAIL * upper
        if k == cutpoints.size and lower > 1.0:
            logp, g_lower = logp + _PYMC_TAIL * lower * lower, g_lower + 2.0 * _PYMC_TAIL * lower
        if 0 < k < cutpoints.size:
            logp += _PYMC_LOG_HALF
    return logp, g_upper, g_lower


@internal
def _ordered(x, positions):
    """PyMC's ordered transform of the elements at ``positions``: the point with them ordered
    (``c[0] = x[0]``, ``c[m] = c[m-1] + exp(x[m])``) and the log-Jacobian."""
    point = x.copy()
    log_jacobian = 0.0
    for m in range(1, positions.size):
        point[positions[m]] = point[positions[m - 1]] + math.exp(x[positions[m]])
        log_jacobian += x[positions[m]]
    return point, log_jacobian


@internal
def _linear_predictor(offset, design, fixef, z_design, row_levels, u):
    """Every row's ``eta = offset + x b + sum_e Z[e] u[level(e), e]``, an effect at a time (a loop over the
    rows of one column each, which the compiler keeps tight; by row, with an inner loop over the effects,
    took twice as long)."""
    eta = offset + np.dot(design, fixef)
    for e in range(u.shape[1]):
        for i in range(eta.size):
            eta[i] += z_design[i, e] * u[row_levels[i, e], e]
    return eta


@internal
def _back(d, design, z_design, row_levels, n_levels):
    """The gradients in the fixed effects and in the effects of every level, from ``d = dlog p / deta``."""
    g_u = np.zeros((n_levels, z_design.shape[1]))
    for e in range(z_design.shape[1]):
        for i in range(d.size):
            g_u[row_levels[i, e], e] += z_design[i, e] * d[i]
    return np.dot(d, design), g_u


@internal
def _logit_rows(eta, y, n, d):
    """The binomial logit rows' log-density (:func:`_row`'s, in one loop without its dispatch) and ``d``."""
    loglik = 0.0
    for i in range(eta.size):
        # log s(eta), log s(-eta) and s(eta) from one exp and one log: log(1 + small) rather than log1p, which
        # costs ~1.7x as much; where they differ (small < 1e-16) the difference is below 1e-16 a row
        small = math.exp(-abs(eta[i]))
        total = 1.0 + small
        tail = math.log(total)
        if eta[i] >= 0:
            log_p, log_q, p = -tail, -eta[i] - tail, 1.0 / total
        else:
            log_p, log_q, p = eta[i] - tail, -tail, small / total
        loglik += _log_choose(n[i], y[i]) + y[i] * log_p + (n[i] - y[i]) * log_q
        d[i] = y[i] - n[i] * p
    return loglik


@internal
def _rows(code, eta, y, trials, a, b, d):
    """The other responses' rows (:func:`_row`): the log-likelihood, ``d`` and the sums of the derivatives
    in the response's own parameters."""
    loglik = g_a = g_b = 0.0
    for i in range(eta.size):
        logp, d[i], d_a, d_b = _row(code, eta[i], y[i], trials[i], a, b)
        loglik += logp
        g_a += d_a
        g_b += d_b
    return loglik, g_a, g_b


@internal
def _ordinal_rows(code, eta, y, cutpoints, own, d, g_values):
    """The ordinal rows (:func:`_ordinal_row`): the log-likelihood and ``d``; the cut-points' gradient is
    added to ``g_values`` at their positions ``own``."""
    loglik = 0.0
    for i in range(eta.size):
        logp, g_upper, g_lower = _ordinal_row(code, eta[i], y[i], cutpoints)
        k = int(y[i])
        if k < cutpoints.size:
            g_values[own[k]] += g_upper
        if k > 0:
            g_values[own[k - 1]] += g_lower
        d[i] = -(g_upper + g_lower)
        loglik += logp
    return loglik


@internal
def _response(ints, offsets):
    """The response code (the last segment)."""
    return segment(ints, offsets, offsets.size - 2)[0]


@internal
def _effects(values, factor, ints, offsets):
    """The standardised effects ``z`` (levels x Q) and the effects ``u = z L'`` of every level."""
    n_effects = factor.shape[0]
    n_levels = segment(ints, offsets, _FIRST + _N_LEVELS)[0]
    flat = np.zeros(n_levels * n_effects)
    flat[segment(ints, offsets, _FIRST + _Z_PLACE)] = values[segment(ints, offsets, _FIRST + _Z_PARAM)]
    z = flat.reshape((n_levels, n_effects))
    return z, np.dot(z, np.ascontiguousarray(factor.T))


@internal
def _own_values(code, values, own, reals, real_offsets):
    """The response's own parameters (``a``, ``b`` of :func:`_row`): the negative binomial's
    ``alpha = 1 / t^2`` of its parameter t, the Gaussian's ``sigma = unit * t ** power`` and its log, the
    Student-t's ``sigma`` likewise and ``nu``."""
    if code == _NEGBINOMIAL:
        return 1.0 / values[own[0]] ** 2, 0.0
    if code == _GAUSSIAN or code == _STUDENT:
        power = segment(reals, real_offsets, _RESPONSE_POWER)[0]
        sigma = segment(reals, real_offsets, _RESPONSE_UNIT)[0] * values[own[0]] ** power
        # the Gaussian's log sigma, which every row's density reads; the Student-t's nu
        return sigma, (math.log(sigma) if code == _GAUSSIAN else values[own[1]])
    return 0.0, 0.0


@internal
def logp_grad(x, hyper, ints, offsets, reals, real_offsets, design, z_design, row_levels, y, trials, offset):
    """Log-density of the family at the unconstrained point ``x`` and its gradient.

    The arguments are the family's inputs in order (:func:`pymlsem.engine.glmm.family_inputs`).
    """
    code = _response(ints, offsets)
    ordinal = code == _ORDINAL_LOGIT or code == _ORDINAL_PROBIT
    own = segment(ints, offsets, _FIRST + _RESPONSE_PARAM)  # the response's own parameters
    point, log_jacobian = _ordered(x, own) if ordinal else (x, 0.0)
    log_prior, grad, values, slope, fixef, sd, corr_factor = effect_parameters(
        point, hyper, ints, offsets, reals, real_offsets
    )
    factor = sd.reshape((-1, 1)) * corr_factor
    z, u = _effects(values, factor, ints, offsets)
    cutpoints = values[own]
    a, b = _own_values(code, values, own, reals, real_offsets)
    g_a = g_b = 0.0
    eta = _linear_predictor(offset, design, fixef, z_design, row_levels, u)
    d = np.empty(eta.size)  # dlog p / deta by row
    g_values = np.zeros(x.size)
    if ordinal:
        loglik = _ordinal_rows(code, eta, y, cutpoints, own, d, g_values)
    elif code == _LOGIT:
        loglik = _logit_rows(eta, y, trials, d)
    else:
        loglik, g_a, g_b = _rows(code, eta, y, trials, a, b, d)
    g_fixef, g_u = _back(d, design, z_design, row_levels, u.shape[0])
    if not np.isfinite(loglik):
        return -np.inf, np.zeros(x.size)
    if code == _NEGBINOMIAL:  # alpha = 1 / t^2
        g_values[own[0]] += g_a * -2.0 * a / values[own[0]]
    elif code == _STUDENT or code == _GAUSSIAN:  # sigma = unit * t ** power (and the Student-t's nu)
        power = segment(reals, real_offsets, _RESPONSE_POWER)[0]
        unit = segment(reals, real_offsets, _RESPONSE_UNIT)[0]
        g_values[own[0]] += g_a * power_slope(unit, power, values[own[0]])
        if code == _STUDENT:
            g_values[own[1]] += g_b
    g_z = np.dot(g_u, factor).reshape(-1)  # d/dz[l, f] = sum_e g_u[l, e] L[e, f]
    places = segment(ints, offsets, _FIRST + _Z_PLACE)
    for m, k in enumerate(segment(ints, offsets, _FIRST + _Z_PARAM)):
        g_values[k] += g_z[places[m]]
    g_factor = np.dot(np.ascontiguousarray(g_u.T), z)  # d/dL[e, f] = sum_l g_u[l, e] z[l, f]
    state = (slope, values, sd, corr_factor)
    effect_gradient(point, grad, g_values, g_fixef, g_factor, state, ints, offsets, reals, real_offsets)
    if ordinal:  # back through the ordered transform: c[k] depends on x[0] and on exp(x[m]) for m <= k
        above = 0.0
        for m in range(own.size - 1, -1, -1):
            above += grad[own[m]]
            grad[own[m]] = above * math.exp(x[own[m]]) + 1.0 if m > 0 else above
    return log_prior + log_jacobian + loglik, grad


@internal
def expand(x, hyper, ints, offsets, reals, real_offsets, design, z_design, row_levels, y, trials, offset):
    """The expanded values at ``x``: the K constrained values, the fixed effects, the negative binomial's
    ``theta`` or the Gaussian's or Student-t's ``sigma``, the SDs, the correlation
    factor and the correlation matrix (Q x Q each, row by row) and the effects of every level (levels x Q)."""
    code = _response(ints, offsets)
    own = segment(ints, offsets, _FIRST + _RESPONSE_PARAM)
    if code == _ORDINAL_LOGIT or code == _ORDINAL_PROBIT:
        x = _ordered(x, own)[0]
    _, _, values, _, fixef, sd, corr_factor = effect_parameters(x, hyper, ints, offsets, reals, real_offsets)
    _, u = _effects(values, sd.reshape((-1, 1)) * corr_factor, ints, offsets)
    a = _own_values(code, values, own, reals, real_offsets)[0]
    with_own = code == _NEGBINOMIAL or code == _STUDENT or code == _GAUSSIAN
    deterministic = np.array([a]) if with_own else np.zeros(0)
    correlations = correlation(corr_factor).reshape(-1)
    parts = (values, fixef, deterministic, sd, corr_factor.reshape(-1), correlations, u.reshape(-1))
    return (np.concatenate(parts),)
