"""A level's units in one pass: their explicit variables' values and their outcomes' means, and the gradient.

The latent engine families (:mod:`pymlsem.engine.latent`) form a level's small matrices (paths, means, the
disturbances' Cholesky factor) once per call; what grows with the units is, for every
unit ``i`` (a row at level 1, a cluster at level 2) of cluster ``c``:

* its continuous outcomes less their clusters' between parts, ``w = y - b_c`` (``b_c`` 0 without a
  between level);
* its explicit variables' values ``v = T d`` with ``d = m_e + A_ec x_e + A_eo w_e + C' (x_c - m_c) + F' z``
  (``T = (I - A_ee)^-1`` the total effects, here by Gauss-Jordan elimination, its gradient ``T' G T'``;
  ``F`` the disturbances' factor placed among the explicit variables; ``C`` the disturbances' regression
  on the conditioning covariates ``x_c``);
* its outcomes' means ``m_t + A_tc x_t + A_to w_t + A_te v + b_c`` plus every random slope's
  ``s_c * source`` on its target (the source a covariate, a continuous outcome's within part or an
  explicit value).

Written as PyTensor's matrix operations, each of these terms (most of them of width 0 for a given model:
no covariates, no conditioning, no slopes) allocated and passed over a units x variables array forward and
again for its gradient, about 30 passes of ~5 us each at 1,600 rows, and the total effects were a LAPACK
inverse and its gradient's products. Here passes over the units compute them, a column at a time and none
for a coefficient of 0 (a term the model does not have, or a structural zero), and as many more their
gradient in every input the log-density depends on. The per-model PyMC graph stays
the specification the family is tested against (tests/engine/test_engine.py); the operation is also tested
against the same terms written as PyTensor operations (tests/engine/test_latent_units.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key

from pymlsem.engine.kernels.linalg import dot, inverse, matmul_nt, matmul_tn, vector_sum

__all__ = ["DIFFERENTIABLE", "INPUTS", "UnitValues", "UnitValuesGrad", "unit_values", "unit_values_grad"]

#: the operation's inputs in order: name -> integer (an index array) or not
INPUTS = {
    "z": False,  # units x random variables: the standard normal draws of the disturbances
    "columns": False,  # clusters x cluster values: the level-2 explicit values read, then a column of zeros
    "cluster_columns": True,  # per outcome its between part's column, then per slope its coefficient's
    "cluster_index": True,  # units: their clusters
    "outcomes_e": True,  # the continuous outcomes that predict explicit variables (among the continuous)
    "outcomes_t": True,  # the continuous outcomes that predict outcomes
    "slope_source": True,  # per slope: its source among (covariates_t, outcomes_t, explicit)
    "slope_place": True,  # per slope: k * outcomes + its target outcome
    "covariates_e": False,  # units x covariates that predict explicit variables
    "covariates_t": False,  # units x covariates that predict outcomes
    "conditioning": False,  # units x covariates the disturbances are conditioned on
    "outcomes": False,  # units x continuous outcomes (0 where missing)
    "m_c": False,
    "coefficients": False,  # conditioning x explicit: the disturbances' regression on them
    "m_e": False,
    "a_ec": False,
    "a_eo": False,
    "factor": False,  # random x explicit: the disturbances' Cholesky factor placed among the explicit
    "a_ee": False,  # explicit x explicit: the paths among them (acyclic)
    "m_t": False,
    "a_tc": False,
    "a_to": False,
    "a_te": False,
}
#: the inputs whose gradient :func:`unit_values_grad` returns, in its order
DIFFERENTIABLE = (
    "z",
    "columns",
    "m_c",
    "coefficients",
    "m_e",
    "a_ec",
    "a_eo",
    "factor",
    "a_ee",
    "m_t",
    "a_tc",
    "a_to",
    "a_te",
)
_DATA = ("covariates_e", "covariates_t", "conditioning", "outcomes")


@numba.njit(cache=False)
def _explicit(z, columns, cluster_columns, cluster_index, outcomes_e, covariates_e, conditioning, outcomes,
              m_c, coefficients, m_e, a_ec, a_eo, factor, a_ee):  # fmt: skip
    """The units' within parts of the continuous outcomes ``w``, their ``d`` and ``v = T d``, and the total
    effects ``T = (I - A_ee)^-1``."""
    n, p_e = z.shape[0], m_e.shape[0]
    total = inverse(np.eye(p_e) - a_ee)
    within = np.empty(outcomes.shape)
    for k in range(outcomes.shape[1]):
        column = cluster_columns[k]
        for i in range(n):
            within[i, k] = outcomes[i, k] - columns[cluster_index[i], column]
    driven = np.empty((n, p_e))
    for e in range(p_e):
        driven[:, e] = m_e[e]
        _add_predictors(driven[:, e], a_ec[e], covariates_e, a_eo[e], within, outcomes_e)
        for k in range(coefficients.shape[0]):
            _add_scaled(driven[:, e], coefficients[k, e], conditioning[:, k])
            driven[:, e] -= coefficients[k, e] * m_c[k]
        for r in range(factor.shape[0]):
            _add_scaled(driven[:, e], factor[r, e], z[:, r])
    values = np.zeros((n, p_e))
    for e in range(p_e):
        for f in range(p_e):
            _add_scaled(values[:, e], total[e, f], driven[:, f])
    return within, driven, values, total


@numba.njit(cache=False, inline="always")
def _add_scaled(target, scale, source):
    """``target += scale * source``, nothing where ``scale`` is 0 (a structural zero, mostly)."""
    if scale != 0.0:
        for i in range(target.shape[0]):
            target[i] += scale * source[i]


@numba.njit(cache=False)
def _add_predictors(target, a_c, covariates, a_o, within, outcome_columns):
    """``target += covariates @ a_c + within[:, outcome_columns] @ a_o``: one variable's terms in the
    covariates and the within parts of the continuous outcomes, unit by unit."""
    for k in range(a_c.shape[0]):
        _add_scaled(target, a_c[k], covariates[:, k])
    for k in range(a_o.shape[0]):
        _add_scaled(target, a_o[k], within[:, outcome_columns[k]])


@numba.njit(cache=False)
def _predictor_grads(g, covariates, within, outcome_columns, a_o, g_a_c, g_a_o, g_within):
    """The gradient of ``sum(g * target)`` of :func:`_add_predictors`: in its coefficients (written to
    ``g_a_c`` and ``g_a_o``) and in the within parts (added to ``g_within``)."""
    for k in range(g_a_c.shape[0]):
        g_a_c[k] = dot(g, covariates[:, k])
    for k in range(g_a_o.shape[0]):
        g_a_o[k] = dot(g, within[:, outcome_columns[k]])
        _add_scaled(g_within[:, outcome_columns[k]], a_o[k], g)


@numba.njit(cache=False)
def _add_by_cluster(target, cluster_index, columns, source, scale):
    """``target[cluster_index[i], columns[k]] += scale * source[i, k]`` for every unit ``i`` and column
    ``k``, unit by unit: the additions to one cluster's element are a row apart, not a chain of additions
    each waiting for the one before (the units of a cluster are mostly consecutive)."""
    for i in range(source.shape[0]):
        row = cluster_index[i]
        for k in range(source.shape[1]):
            target[row, columns[k]] += scale * source[i, k]


@numba.njit(cache=False)
def _slope_sources(source, covariates_t, outcomes_t, within, values):
    """A slope's source, unit by unit (a column of the covariates, the within outcomes or the values)."""
    n_covariates, n_outcomes = covariates_t.shape[1], outcomes_t.shape[0]
    if source < n_covariates:
        return covariates_t[:, source]
    if source < n_covariates + n_outcomes:
        return within[:, outcomes_t[source - n_covariates]]
    return values[:, source - n_covariates - n_outcomes]


@numba.njit(cache=False)
def unit_values(
    z, columns, cluster_columns, cluster_index, outcomes_e, outcomes_t, slope_source, slope_place,
    covariates_e, covariates_t, conditioning, outcomes, m_c, coefficients, m_e, a_ec, a_eo, factor, a_ee,
    m_t, a_tc, a_to, a_te,
):  # fmt: skip
    """The units' explicit values (units x explicit variables) and outcomes' means (units x outcomes)."""
    n, p_e, p_t = z.shape[0], m_e.shape[0], m_t.shape[0]
    within, _, values, _ = _explicit(z, columns, cluster_columns, cluster_index, outcomes_e, covariates_e,
        conditioning, outcomes, m_c, coefficients, m_e, a_ec, a_eo, factor, a_ee)  # fmt: skip
    linear = np.empty((n, p_t))
    for i in range(n):
        row = cluster_index[i]
        for t in range(p_t):
            linear[i, t] = m_t[t] + columns[row, cluster_columns[t]]
    for t in range(p_t):
        _add_predictors(linear[:, t], a_tc[t], covariates_t, a_to[t], within, outcomes_t)
        for e in range(p_e):
            _add_scaled(linear[:, t], a_te[t, e], values[:, e])
    for s in range(slope_source.shape[0]):
        t, column = slope_place[s] % p_t, cluster_columns[p_t + s]
        source = _slope_sources(slope_source[s], covariates_t, outcomes_t, within, values)
        for i in range(n):
            linear[i, t] += source[i] * columns[cluster_index[i], column]
    return values, linear


@numba.njit(cache=False)
def unit_values_grad(
    z, columns, cluster_columns, cluster_index, outcomes_e, outcomes_t, slope_source, slope_place,
    covariates_e, covariates_t, conditioning, outcomes, m_c, coefficients, m_e, a_ec, a_eo, factor, a_ee,
    m_t, a_tc, a_to, a_te,
    d_values, d_linear,
):  # fmt: skip
    """The gradients of ``sum(d_values * values) + sum(d_linear * linear)`` (:func:`unit_values`) in the
    inputs named by :data:`DIFFERENTIABLE`, in that order."""
    n, p_e, p_t = z.shape[0], m_e.shape[0], m_t.shape[0]
    n_covariates, n_outcomes = covariates_t.shape[1], outcomes_t.shape[0]
    within, driven, values, total = _explicit(z, columns, cluster_columns, cluster_index, outcomes_e,
        covariates_e, conditioning, outcomes, m_c, coefficients, m_e, a_ec, a_eo, factor, a_ee)  # fmt: skip
    g_columns = np.zeros(columns.shape)
    g_within = np.zeros(within.shape)
    g_values = d_values.copy()
    g_linear = np.ascontiguousarray(d_linear.T)  # outcome by outcome
    for s in range(slope_source.shape[0]):  # each slope's coefficient and source
        t, column, source = slope_place[s] % p_t, cluster_columns[p_t + s], slope_source[s]
        values_of = _slope_sources(source, covariates_t, outcomes_t, within, values)
        if n_covariates <= source < n_covariates + n_outcomes:
            g_source = g_within[:, outcomes_t[source - n_covariates]]
        elif source >= n_covariates + n_outcomes:
            g_source = g_values[:, source - n_covariates - n_outcomes]
        else:
            g_source = np.empty(n)  # a covariate's: not needed
        for i in range(n):
            c = cluster_index[i]
            g_columns[c, column] += g_linear[t, i] * values_of[i]
            g_source[i] += g_linear[t, i] * columns[c, column]
    g_m_t, g_a_tc = np.empty(p_t), np.empty(a_tc.shape)
    g_a_to, g_a_te = np.empty(a_to.shape), np.empty(a_te.shape)
    _add_by_cluster(g_columns, cluster_index, cluster_columns[:p_t], d_linear, 1.0)
    for t in range(p_t):  # the outcomes' means
        g_mean = g_linear[t]
        g_m_t[t] = vector_sum(g_mean)
        _predictor_grads(g_mean, covariates_t, within, outcomes_t, a_to[t], g_a_tc[t], g_a_to[t], g_within)
        for e in range(p_e):
            g_a_te[t, e] = dot(g_mean, values[:, e])
            _add_scaled(g_values[:, e], a_te[t, e], g_mean)
    g_total = np.empty(total.shape)
    g_driven = np.zeros((p_e, n))  # v = T d, explicit variable by variable
    for e in range(p_e):
        for f in range(p_e):
            g_total[e, f] = dot(g_values[:, e], driven[:, f])
            _add_scaled(g_driven[f], total[e, f], g_values[:, e])
    g_a_ee = matmul_nt(matmul_tn(total, g_total), total)  # T' g_T T' (dT = T dA T)
    g_m_e, g_a_ec, g_a_eo = np.empty(p_e), np.empty(a_ec.shape), np.empty(a_eo.shape)
    g_m_c, g_coefficients = np.zeros(m_c.shape), np.empty(coefficients.shape)
    g_z, g_factor = np.zeros(z.shape), np.empty(factor.shape)
    for e in range(p_e):  # d
        g = g_driven[e]
        g_m_e[e] = vector_sum(g)
        _predictor_grads(g, covariates_e, within, outcomes_e, a_eo[e], g_a_ec[e], g_a_eo[e], g_within)
        for k in range(coefficients.shape[0]):
            g_coefficients[k, e] = dot(g, conditioning[:, k]) - m_c[k] * g_m_e[e]
            g_m_c[k] -= coefficients[k, e] * g_m_e[e]
        for r in range(factor.shape[0]):
            g_factor[r, e] = dot(g, z[:, r])
            _add_scaled(g_z[:, r], factor[r, e], g)
    # w = y - b_c
    _add_by_cluster(g_columns, cluster_index, cluster_columns[: outcomes.shape[1]], g_within, -1.0)
    return (g_z, g_columns, g_m_c, g_coefficients, g_m_e, g_a_ec, g_a_eo, g_factor, g_a_ee,
            g_m_t, g_a_tc, g_a_to, g_a_te)  # fmt: skip


def _as_inputs(inputs) -> list[pt.TensorVariable]:
    return [
        pt.as_tensor_variable(v, dtype="int64" if integer else "float64")
        for v, integer in zip(inputs, INPUTS.values(), strict=True)
    ]


class UnitValues(Op):
    """:func:`unit_values` as an operation (inputs as :data:`INPUTS`); its gradient is
    :class:`UnitValuesGrad`'s."""

    __props__ = ()

    def make_node(self, *inputs) -> Apply:
        return Apply(self, _as_inputs(inputs), [pt.dmatrix(), pt.dmatrix()])

    def perform(self, node, inputs, output_storage) -> None:
        for storage, result in zip(output_storage, unit_values(*inputs), strict=True):
            storage[0] = result

    def connection_pattern(self, node) -> list[list[bool]]:
        return [[not integer] * 2 for integer in INPUTS.values()]

    def pullback(self, inputs, outputs, output_grads):
        d_values, d_linear = (
            pt.zeros_like(out) if isinstance(g.type, DisconnectedType) else g
            for g, out in zip(output_grads, outputs, strict=True)
        )
        grads = dict(zip(DIFFERENTIABLE, UnitValuesGrad()(*inputs, d_values, d_linear), strict=True))
        out = []
        for k, (name, integer) in enumerate(INPUTS.items()):
            if integer:
                out.append(DisconnectedType()())
            elif name in _DATA:  # data: never a parameter of the log-density
                out.append(grad_not_implemented(self, k, inputs[k]))
            else:
                out.append(grads[name])
        return out


class UnitValuesGrad(Op):
    """:func:`unit_values_grad` as an operation: :class:`UnitValues`' inputs and the gradients of its two
    outputs; outputs the gradients in :data:`DIFFERENTIABLE`'s inputs (no second derivatives)."""

    __props__ = ()

    def make_node(self, *inputs) -> Apply:
        *forward, d_values, d_linear = inputs
        forward = _as_inputs(forward)
        grads = [pt.as_tensor_variable(g, dtype="float64") for g in (d_values, d_linear)]
        position = list(INPUTS)
        outputs = [forward[position.index(name)].type() for name in DIFFERENTIABLE]
        return Apply(self, [*forward, *grads], outputs)

    def perform(self, node, inputs, output_storage) -> None:
        for storage, result in zip(output_storage, unit_values_grad(*inputs), strict=True):
            storage[0] = result

    def pullback(self, inputs, outputs, output_grads):
        return [grad_not_implemented(self, k, x) for k, x in enumerate(inputs)]


#: the key of the operations' compiled code in PyTensor's numba cache: the sources of this module and of the
#: kernels' small-matrix functions it calls
_SOURCE_KEY = hashlib.sha256(
    b"".join(
        path.read_bytes()
        for path in (
            Path(__file__),
            Path(__file__).parent / "kernels" / "linalg.py",
            Path(__file__).parent / "kernels" / "__init__.py",
        )
    )
).hexdigest()


@register_funcify_and_cache_key(UnitValues)
def _numba_unit_values(op, node, **kwargs):
    """PyTensor's numba backend calls :func:`unit_values` itself."""
    return unit_values, f"pymlsem.UnitValues({_SOURCE_KEY})"


@register_funcify_and_cache_key(UnitValuesGrad)
def _numba_unit_values_grad(op, node, **kwargs):
    """PyTensor's numba backend calls :func:`unit_values_grad` itself."""
    return unit_values_grad, f"pymlsem.UnitValuesGrad({_SOURCE_KEY})"
