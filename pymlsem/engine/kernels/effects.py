"""What the mixed-model and GLMM kernels compute before and after their likelihoods: the parameters of
:func:`pymlsem.engine.mixed.effect_values` and the chain rule back to the point.

Before: the priors of every prior family (:mod:`pymlsem.engine.kernels.priors`), PyMC's ``LKJCorr``
density of each correlated block of two effects at its ``CholeskyCorrTransform`` (for an unconstrained
``t``: correlation ``t / sqrt(1 + t^2)``), then the fixed effects ``offset + scale * value`` less the
intercept shift, the SDs ``scale * value`` and the block-diagonal correlation factor. After: the
likelihood's gradient in the fixed effects and in the covariance factor ``L = sd * corr_factor`` taken
back through the same steps.

The Gaussian and GLMM families pack their arrays with the same first segments (one per prior family, then
:func:`pymlsem.engine.mixed.effect_segments`) and the same first reals
(:data:`pymlsem.engine.mixed.EFFECT_REALS`), so their positions are constants here."""

from __future__ import annotations

import math

import numba
import numpy as np

from pymlsem.engine.kernels.parts import segment
from pymlsem.engine.kernels.priors import PRIOR_SEGMENTS, all_priors

__all__ = ["EFFECT_SEGMENTS", "correlation", "effect_gradient", "effect_parameters"]

#: the segments after the prior segments (:func:`pymlsem.engine.mixed.effect_segments`)
EFFECT_SEGMENTS = (
    "fixef_param",
    "sd_param",
    "lkj2_param",
    "lkj3_param",
    "lkj4_param",
    "lkj2_place",
    "lkj3_place",
    "lkj4_place",
)
_FIRST = len(PRIOR_SEGMENTS)  # the effect segments' start
#: positions of the effect segments after the prior segments
_FIXEF, _SD, _LKJ2, _LKJ2_PLACE = 0, 1, 2, 5
#: positions of :data:`pymlsem.engine.mixed.EFFECT_REALS`
_OFFSET, _SCALE, _SHIFT, _INTERCEPT, _SD_SCALE, _ETA = range(6)


@numba.njit(cache=False)
def effect_parameters(x, hyper, ints, offsets, reals, real_offsets):
    """Prior log-density, its gradient in x, the values, dvalue/dx, the fixed effects, the random-effect SDs
    and the correlation factor (Q x Q)."""
    log_prior, grad, values, slope = all_priors(x, hyper, ints, offsets)
    sd_scale = segment(reals, real_offsets, _SD_SCALE)
    corr_factor = np.eye(sd_scale.size)
    flat = corr_factor.reshape(-1)
    eta = segment(reals, real_offsets, _ETA)[0]
    # LKJCorr(2, eta) at its transform: log c(eta) - (eta + 1/2) log(1 + t^2), Jacobian included
    log_norm = math.lgamma(eta + 0.5) - 0.5 * math.log(math.pi) - math.lgamma(eta)
    places = segment(ints, offsets, _FIRST + _LKJ2_PLACE)
    for b, i in enumerate(segment(ints, offsets, _FIRST + _LKJ2)):
        t = x[i]
        c = 1.0 / math.sqrt(1.0 + t * t)
        log_prior += log_norm - (eta + 0.5) * math.log1p(t * t)
        grad[i] = -(2.0 * eta + 1.0) * t * c * c
        flat[places[4 * b + 2]] = t * c
        flat[places[4 * b + 3]] = c
    raw = (
        segment(reals, real_offsets, _OFFSET)
        + segment(reals, real_offsets, _SCALE) * values[segment(ints, offsets, _FIRST + _FIXEF)]
    )
    shift = np.sum(segment(reals, real_offsets, _SHIFT) * raw)
    fixef = raw - segment(reals, real_offsets, _INTERCEPT) * shift
    sd = sd_scale * values[segment(ints, offsets, _FIRST + _SD)]
    return log_prior, grad, values, slope, fixef, sd, corr_factor


@numba.njit(cache=False)
def effect_gradient(x, grad, g_values, g_fixef, g_factor, state, ints, offsets, reals, real_offsets):
    """Add to the prior's gradient ``grad`` the likelihood's: ``g_values`` (by value: the family's own
    parameters, filled by the caller), ``g_fixef`` (by fixed effect) and ``g_factor`` (by entry of L);
    ``state``: dvalue/dx, the SDs and the correlation factor of :func:`effect_parameters`."""
    slope, sd, corr_factor = state
    # fixed effects: b = raw - intercept * (shift . raw), raw = offset + scale * value
    shift = segment(reals, real_offsets, _SHIFT)
    g_raw = g_fixef - shift * np.sum(segment(reals, real_offsets, _INTERCEPT) * g_fixef)
    scale = segment(reals, real_offsets, _SCALE)
    for t, i in enumerate(segment(ints, offsets, _FIRST + _FIXEF)):
        g_values[i] += scale[t] * g_raw[t]
    sd_scale = segment(reals, real_offsets, _SD_SCALE)
    for r, i in enumerate(segment(ints, offsets, _FIRST + _SD)):
        g_values[i] += sd_scale[r] * np.sum(g_factor[r] * corr_factor[r])
    grad += g_values * slope
    g_corr = (sd.reshape((-1, 1)) * g_factor).reshape(-1)
    places = segment(ints, offsets, _FIRST + _LKJ2_PLACE)
    for b, i in enumerate(segment(ints, offsets, _FIRST + _LKJ2)):  # d(t c)/dt = c^3, dc/dt = -t c^3
        t = x[i]
        c3 = (1.0 + t * t) ** -1.5
        grad[i] += g_corr[places[4 * b + 2]] * c3 - g_corr[places[4 * b + 3]] * t * c3


@numba.njit(cache=False)
def correlation(corr_factor):
    """The correlation matrix ``F F'`` of the correlation factor F."""
    q = corr_factor.shape[0]
    return np.sum(corr_factor.reshape((q, 1, q)) * corr_factor.reshape((1, q, q)), axis=2)
