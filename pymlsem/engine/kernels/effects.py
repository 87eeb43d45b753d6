"""What the mixed-model and GLMM kernels compute before and after their likelihoods: the parameters of
:func:`pymlsem.engine.mixed.effect_values` and the chain rule back to the point.

Before: the priors of every prior family (:mod:`pymlsem.engine.kernels.priors`), PyMC's ``LKJCorr`` density of
each correlated block of q = 2, 3 or 4 effects at its ``CholeskyCorrTransform``, then the fixed effects
``offset + scale * value`` less the intercept shift, the SDs ``scale * value ** power`` (the power 1 for a
prior on the SD, 1/2 on the variance, -1/2 on the precision) and the block-diagonal correlation factor; the
rows of a block under an MCMCglmm G prior take their SDs and correlation factor from the block's factor
``L`` (the SD the length of the row of ``L``): an inverse-Wishart's by its Bartlett decomposition
(:func:`bartlett_root`), a symmetric expansion's from its SDs and correlation factor (:func:`expanded_factor`,
with the density of :func:`expanded_density`: ``alpha`` integrated out). The LKJ transform fills the strictly
lower triangle of a unit-diagonal matrix with the block's q(q-1)/2 unconstrained values (in PyMC's spiral
order, :func:`spiral_index`) and scales each row to unit length, so row ``i`` of the Cholesky factor is
``(v_i, 1, 0...) / s_i`` with ``s_i^2 = 1 + |v_i|^2``. PyMC's density of the factor, ``c(eta, q) + sum_i (2
eta - 2 + q - i) log L_ii``, and the transform's log-Jacobian, ``sum_i (i + 1) log L_ii`` (rows counted from
1), add up to ``c(eta, q) - (2 eta + q - 1) / 2 * sum_i log s_i^2``. After: the likelihood's gradient in the
fixed effects and in the covariance factor ``L = sd * corr_factor`` taken back through the same steps.

The Gaussian and GLMM families pack their arrays with the same first segments (one per prior family, then
:data:`EFFECT_SEGMENTS`) and the same first reals
(:data:`pymlsem.engine.mixed.EFFECT_REALS`), so their positions are constants here."""

from __future__ import annotations

import math

import numpy as np

from pymlsem.engine.kernels import internal
from pymlsem.engine.kernels.parts import segment
from pymlsem.engine.kernels.priors import PRIOR_SEGMENTS, all_priors

__all__ = [
    "EFFECT_REALS",
    "EFFECT_SEGMENTS",
    "LKJ_SIZES",
    "MAX_CORRELATED",
    "bartlett_root",
    "correlation",
    "effect_gradient",
    "effect_parameters",
    "expanded_density",
    "expanded_factor",
    "lkj_log_norm",
    "lower_inverse",
    "power_slope",
    "spiral_index",
]

#: correlated blocks of up to this many effects are data (one batch of LKJ factors per size)
MAX_CORRELATED = 4
#: the sizes of correlated blocks, one ``lkj<q>`` segment pair each
LKJ_SIZES = tuple(range(2, MAX_CORRELATED + 1))
#: the real arrays of :func:`pymlsem.engine.mixed.effect_arrays`, which every mixed-model and GLMM family
#: packs first
EFFECT_REALS = (
    "fixef_offset",
    "fixef_scale",
    "fixef_shift",
    "fixef_intercept",
    "sd_scale",
    "lkj_eta",
    "sd_power",
    "iw_root",
    "gx_prior",
)
#: the segments after the prior segments (:func:`pymlsem.engine.mixed.effect_arrays`)
EFFECT_SEGMENTS = (
    "fixef_param",
    "sd_param",
    *(f"lkj{q}_{what}" for what in ("param", "place") for q in LKJ_SIZES),
    *(f"iw{q}_{what}" for what in ("chi2", "z", "rows") for q in LKJ_SIZES),
    *(f"gx{q}_{what}" for what in ("param", "rows") for q in LKJ_SIZES),
)
_FIRST = len(PRIOR_SEGMENTS)  # the effect segments' start
#: positions of the effect segments after the prior segments
_FIXEF, _SD, _LKJ2, _LKJ2_PLACE = 0, 1, 2, 2 + len(LKJ_SIZES)
_IW_CHI2, _IW_Z, _IW_ROWS, _GX_PARAM, _GX_ROWS = (2 + k * len(LKJ_SIZES) for k in range(2, 7))
#: positions of :data:`pymlsem.engine.mixed.EFFECT_REALS`
(_OFFSET, _SCALE, _SHIFT, _INTERCEPT, _SD_SCALE, _ETA, _SD_POWER, _IW_ROOT, _GX_PRIOR) = range(
    len(EFFECT_REALS)
)
_LOG_2, _LOG_PI, _LOG_2PI = math.log(2.0), math.log(math.pi), math.log(2.0 * math.pi)


@internal
def effect_parameters(x, hyper, ints, offsets, reals, real_offsets):
    """Prior log-density, its gradient in x, the values, dvalue/dx, the fixed effects, the random-effect SDs
    and the correlation factor (Q x Q)."""
    log_prior, grad, values, slope = all_priors(x, hyper, ints, offsets)
    sd_scale = segment(reals, real_offsets, _SD_SCALE)
    corr_factor = np.eye(sd_scale.size)
    flat = corr_factor.reshape(-1)
    eta = segment(reals, real_offsets, _ETA)[0]
    for q in range(2, MAX_CORRELATED + 1):  # LKJCorr(q, eta) at its transform, Jacobian included
        params = segment(ints, offsets, _FIRST + _LKJ2 + q - 2)
        places = segment(ints, offsets, _FIRST + _LKJ2_PLACE + q - 2)
        m = q * (q - 1) // 2
        power = 2.0 * eta + q - 1.0
        for b in range(params.size // m):
            log_prior += lkj_log_norm(eta, q)
            for i in range(1, q):
                squares = 0.0
                for j in range(i):
                    squares += x[params[b * m + spiral_index(q, i, j)]] ** 2
                inverse = 1.0 / math.sqrt(1.0 + squares)
                log_prior -= 0.5 * power * math.log1p(squares)
                for j in range(i):
                    k = params[b * m + spiral_index(q, i, j)]
                    grad[k] = -power * x[k] * inverse * inverse
                    flat[places[b * q * q + i * q + j]] = x[k] * inverse
                flat[places[b * q * q + i * q + i]] = inverse
    raw = (
        segment(reals, real_offsets, _OFFSET)
        + segment(reals, real_offsets, _SCALE) * values[segment(ints, offsets, _FIRST + _FIXEF)]
    )
    shift = np.sum(segment(reals, real_offsets, _SHIFT) * raw)
    fixef = raw - segment(reals, real_offsets, _INTERCEPT) * shift
    sd = sd_scale * values[segment(ints, offsets, _FIRST + _SD)] ** segment(reals, real_offsets, _SD_POWER)
    roots = segment(reals, real_offsets, _IW_ROOT)
    cursor = 0
    for q in range(2, MAX_CORRELATED + 1):  # MCMCglmm's G entries: L by the Bartlett decomposition
        rows = segment(ints, offsets, _FIRST + _IW_ROWS + q - 2)
        for b in range(rows.size // q):
            factor, _ = bartlett_root(values, roots[cursor : cursor + q * q], ints, offsets, q, b)
            cursor += q * q
            _set_rows(sd, flat, rows[b * q : (b + 1) * q], factor)
    hyper_gx = segment(reals, real_offsets, _GX_PRIOR)
    cursor = 0
    for q in range(2, MAX_CORRELATED + 1):  # symmetric expansions: L itself, alpha integrated out
        params = segment(ints, offsets, _FIRST + _GX_PARAM + q - 2)
        rows = segment(ints, offsets, _FIRST + _GX_ROWS + q - 2)
        n = q * (q + 1) // 2
        for b in range(rows.size // q):
            factor = expanded_factor(x, ints, offsets, q, b)
            density, g_density = expanded_density(factor, hyper_gx[cursor : cursor + 1 + 2 * q])
            cursor += 1 + 2 * q
            log_prior += density
            for i in range(q):  # the transform's log-Jacobian, sum_i (i + 1) log L_ii
                log_prior += (i + 1.0) * math.log(factor[i, i])
                g_density[i, i] += (i + 1.0) / factor[i, i]
            _expanded_chain(grad, g_density, x, params[b * n : (b + 1) * n], factor)
            k = 0
            for i in range(q):  # the variable's values: L's lower triangle row by row
                for j in range(i + 1):
                    values[params[b * n + k]] = factor[i, j]
                    k += 1
            _set_rows(sd, flat, rows[b * q : (b + 1) * q], factor)
    return log_prior, grad, values, slope, fixef, sd, corr_factor


@internal
def _set_rows(sd, flat, rows, factor):
    """A G block's SDs (the lengths of the rows of its factor) and correlation factor (the rows scaled to
    unit length), into the model's SDs and block-diagonal correlation factor (``flat``, row by row)."""
    q = rows.size
    for i in range(q):
        length = math.sqrt(np.sum(factor[i] ** 2))
        sd[rows[i]] = length
        for j in range(q):
            flat[rows[i] * sd.size + rows[j]] = factor[i, j] / length


@internal
def lower_inverse(matrix):
    """The inverse of a lower triangular matrix, by forward substitution column by column."""
    q = matrix.shape[0]
    inverse = np.zeros((q, q))
    for j in range(q):
        for i in range(j, q):
            total = 1.0 if i == j else 0.0
            for t in range(j, i):
                total -= matrix[i, t] * inverse[t, j]
            inverse[i, j] = total / matrix[i, i]
    return inverse


@internal
def expanded_factor(x, ints, offsets, q, b):
    """The Cholesky factor ``L = diag(s) F`` of block b of size q under a symmetric expansion
    (:class:`pymlsem.mlm.mcmcglmm_prior.SdCorrelationFactor`): the block's first q values the log SDs
    ``s``, the next q(q-1)/2 the correlation factor ``F``'s, as an LKJ block's."""
    params = segment(ints, offsets, _FIRST + _GX_PARAM + q - 2)
    n = q * (q + 1) // 2
    factor = np.zeros((q, q))
    factor[0, 0] = math.exp(x[params[b * n]])
    for i in range(1, q):
        squares = 0.0
        for j in range(i):
            squares += x[params[b * n + q + spiral_index(q, i, j)]] ** 2
        scale = math.exp(x[params[b * n + i]]) / math.sqrt(1.0 + squares)
        for j in range(i):
            factor[i, j] = x[params[b * n + q + spiral_index(q, i, j)]] * scale
        factor[i, i] = scale
    return factor


@internal
def _expanded_chain(grad, g_factor, x, params, factor):
    """Add to ``grad`` a gradient in a symmetric expansion's factor ``L = diag(s) F``
    (:func:`expanded_factor`; ``params`` the block's positions) taken back to its values: ``dL_ij/dlog s_i =
    L_ij``, and row i of ``F``, ``(v_i, 1) / r_i``, as an LKJ block's."""
    q = factor.shape[0]
    for i in range(q):
        g_log_sd = 0.0
        for j in range(i + 1):
            g_log_sd += g_factor[i, j] * factor[i, j]
        grad[params[i]] += g_log_sd
    for i in range(1, q):
        sd_i = math.exp(x[params[i]])
        squares, along = 0.0, sd_i * g_factor[i, i]
        for j in range(i):
            v = x[params[q + spiral_index(q, i, j)]]
            squares += v * v
            along += sd_i * g_factor[i, j] * v
        inverse = 1.0 / math.sqrt(1.0 + squares)
        for j in range(i):
            k = params[q + spiral_index(q, i, j)]
            grad[k] += (sd_i * g_factor[i, j] - x[k] * along * inverse * inverse) * inverse


@internal
def expanded_density(factor, hyper):
    """:func:`pymlsem.mlm.mcmcglmm_prior.expanded_log_density` of ``L`` and its gradient in ``L``'s entries
    (lower triangle). ``hyper``: ``nu``, then ``Psi_ii = nu V_ii`` and ``1 / alpha.V_ii`` (q each). With
    ``M = L^-1``, ``(G^-1)_ii = sum_k M_ki^2`` and ``w_i`` the derivative of the density in it, the gradient
    of ``sum_i f_i((G^-1)_ii)`` in ``L`` is ``-2 M' M diag(w) M'``."""
    q = factor.shape[0]
    nu = hyper[0]
    half = 0.5 * (nu + 1.0)
    inverse = lower_inverse(factor)
    log_p = q * _LOG_2 - 0.5 * nu * q * _LOG_2 - 0.25 * q * (q - 1) * _LOG_PI
    log_p += q * (half * _LOG_2 + math.lgamma(half) - 0.5 * _LOG_2PI)
    weight = np.empty(q)
    for i in range(q):
        psi, inverse_alpha_v = hyper[1 + i], hyper[1 + q + i]
        log_p += 0.5 * nu * math.log(psi) - math.lgamma(0.5 * nu - 0.5 * i) + 0.5 * math.log(inverse_alpha_v)
        g_inverse = 0.0
        for k in range(i, q):
            g_inverse += inverse[k, i] ** 2
        scale = psi * g_inverse + inverse_alpha_v
        log_p -= (nu + i + 1.0) * math.log(factor[i, i]) + half * math.log(scale)
        weight[i] = -half * psi / scale
    gram = np.dot(inverse.T, inverse)
    gradient = -2.0 * np.dot(gram * weight.reshape((1, q)), inverse.T)
    for i in range(q):
        gradient[i, i] -= (nu + i + 1.0) / factor[i, i]
    return log_p, gradient


@internal
def bartlett_root(values, root, ints, offsets, q, b):
    """The factor ``L = (C A)^-T`` of block b of size q under an MCMCglmm inverse-Wishart G prior
    (:func:`pymlsem.mlm.mcmcglmm_prior.block_root`), with ``(C A)^-1``: ``C`` (``root``, q x q row by row)
    the Cholesky factor of ``(nu V)^-1``, ``A`` lower triangular with the square roots of the block's
    chi-squared values on its diagonal and its normal values below it (row by row)."""
    chi2 = segment(ints, offsets, _FIRST + _IW_CHI2 + q - 2)
    below = segment(ints, offsets, _FIRST + _IW_Z + q - 2)
    m = q * (q - 1) // 2
    bartlett = np.zeros((q, q))
    k = 0
    for i in range(q):
        bartlett[i, i] = math.sqrt(values[chi2[b * q + i]])
        for j in range(i):
            bartlett[i, j] = values[below[b * m + k]]
            k += 1
    inverse = lower_inverse(np.dot(root.reshape((q, q)), bartlett))  # C A is lower triangular
    return inverse.T, inverse


@internal
def effect_gradient(x, grad, g_values, g_fixef, g_factor, state, ints, offsets, reals, real_offsets):
    """Add to the prior's gradient ``grad`` the likelihood's: ``g_values`` (by value: the family's own
    parameters, filled by the caller), ``g_fixef`` (by fixed effect) and ``g_factor`` (by entry of L);
    ``state``: dvalue/dx, the values, the SDs and the correlation factor of :func:`effect_parameters`."""
    slope, values, sd, corr_factor = state
    # fixed effects: b = raw - intercept * (shift . raw), raw = offset + scale * value
    shift = segment(reals, real_offsets, _SHIFT)
    g_raw = g_fixef - shift * np.sum(segment(reals, real_offsets, _INTERCEPT) * g_fixef)
    scale = segment(reals, real_offsets, _SCALE)
    for t, i in enumerate(segment(ints, offsets, _FIRST + _FIXEF)):
        g_values[i] += scale[t] * g_raw[t]
    sd_scale = segment(reals, real_offsets, _SD_SCALE)
    power = segment(reals, real_offsets, _SD_POWER)
    for r, i in enumerate(segment(ints, offsets, _FIRST + _SD)):
        g_values[i] += power_slope(sd_scale[r], power[r], values[i]) * np.sum(g_factor[r] * corr_factor[r])
    _bartlett_gradient(g_values, g_factor, values, ints, offsets, reals, real_offsets)
    _expanded_gradient(grad, g_factor, x, ints, offsets)
    grad += g_values * slope
    g_corr = (sd.reshape((-1, 1)) * g_factor).reshape(-1)
    # row i of a block: L_i = (v_i, 1) / s_i, so dL_i/dv_i = I / s_i - L_i v_i' / s_i^2
    for q in range(2, MAX_CORRELATED + 1):
        params = segment(ints, offsets, _FIRST + _LKJ2 + q - 2)
        places = segment(ints, offsets, _FIRST + _LKJ2_PLACE + q - 2)
        m = q * (q - 1) // 2
        for b in range(params.size // m):
            for i in range(1, q):
                squares, along = 0.0, g_corr[places[b * q * q + i * q + i]]
                for j in range(i):
                    k = params[b * m + spiral_index(q, i, j)]
                    squares += x[k] * x[k]
                    along += g_corr[places[b * q * q + i * q + j]] * x[k]
                inverse = 1.0 / math.sqrt(1.0 + squares)
                for j in range(i):
                    k = params[b * m + spiral_index(q, i, j)]
                    grad[k] += (
                        g_corr[places[b * q * q + i * q + j]] - x[k] * along * inverse * inverse
                    ) * inverse


@internal
def _bartlett_gradient(g_values, g_factor, values, ints, offsets, reals, real_offsets):
    """Add to ``g_values`` the likelihood's gradient through each MCMCglmm inverse-Wishart G block's factor
    (:func:`bartlett_root`): with ``M = C A`` and ``L = M^-T``, ``g_M = -M^-T g_L' M^-T``, ``g_A = C' g_M``
    and ``dA_ii/dchi2_i = 1 / (2 A_ii)``. The SDs of these rows have the scale 0 (:func:`effect_arrays`), so
    no other term reaches them."""
    roots = segment(reals, real_offsets, _IW_ROOT)
    cursor = 0
    for q in range(2, MAX_CORRELATED + 1):
        chi2 = segment(ints, offsets, _FIRST + _IW_CHI2 + q - 2)
        below = segment(ints, offsets, _FIRST + _IW_Z + q - 2)
        rows = segment(ints, offsets, _FIRST + _IW_ROWS + q - 2)
        m = q * (q - 1) // 2
        for b in range(rows.size // q):
            root = roots[cursor : cursor + q * q].reshape((q, q))
            _, inverse = bartlett_root(values, roots[cursor : cursor + q * q], ints, offsets, q, b)
            cursor += q * q
            g_root = _block_gradient(g_factor, rows[b * q : (b + 1) * q])
            g_product = -np.dot(np.dot(inverse.T, g_root.T), inverse.T)
            g_bartlett = np.dot(root.T, g_product)
            k = 0
            for i in range(q):
                g_values[chi2[b * q + i]] += 0.5 * g_bartlett[i, i] / math.sqrt(values[chi2[b * q + i]])
                for j in range(i):
                    g_values[below[b * m + k]] += g_bartlett[i, j]
                    k += 1


@internal
def _expanded_gradient(grad, g_factor, x, ints, offsets):
    """Add to ``grad`` the likelihood's gradient through each symmetric expansion's factor
    (:func:`expanded_factor`, :func:`_expanded_chain`)."""
    for q in range(2, MAX_CORRELATED + 1):
        params = segment(ints, offsets, _FIRST + _GX_PARAM + q - 2)
        rows = segment(ints, offsets, _FIRST + _GX_ROWS + q - 2)
        n = q * (q + 1) // 2
        for b in range(rows.size // q):
            factor = expanded_factor(x, ints, offsets, q, b)
            g_block = _block_gradient(g_factor, rows[b * q : (b + 1) * q])
            _expanded_chain(grad, g_block, x, params[b * n : (b + 1) * n], factor)


@internal
def _block_gradient(g_factor, rows):
    """The q x q block of the gradient in the factor of all effects at a block's rows."""
    q = rows.size
    block = np.empty((q, q))
    for i in range(q):
        for j in range(q):
            block[i, j] = g_factor[rows[i], rows[j]]
    return block


@internal
def power_slope(scale, power, value):
    """``d(scale * value ** power) / dvalue``: an SD from the variable carrying its prior."""
    return scale * power * value ** (power - 1.0)


@internal
def spiral_index(q, i, j):
    """Which of a block's q(q-1)/2 unconstrained values PyMC's ``CholeskyCorrTransform(q)`` puts at row i,
    column j < i of the factor (its ``_fill_triangular_spiral`` with a unit diagonal: the rows after the
    first from the values' tail, then the values reversed; tests/engine/test_kernels.py checks it against
    PyMC's)."""
    rows = q - 1
    k = (i - 1) * rows + j
    tail = q * (q - 1) // 2 - rows
    return rows + k if k < tail else 2 * (tail + rows) - rows - 1 - k


@internal
def lkj_log_norm(eta, q):
    """The log normalising constant of PyMC's ``LKJCorr(q, eta)`` density (``_lkj_normalizing_constant``)."""
    total = (q - 1) * math.lgamma(eta + 0.5 * (q - 1))
    for k in range(1, q):
        total -= 0.5 * k * math.log(math.pi) + math.lgamma(eta + 0.5 * (q - 1 - k))
    return total


@internal
def correlation(corr_factor):
    """The correlation matrix ``F F'`` of the correlation factor F."""
    q = corr_factor.shape[0]
    return np.sum(corr_factor.reshape((q, 1, q)) * corr_factor.reshape((1, q, q)), axis=2)
