"""The latent families' units in one pass (:mod:`pymlsem.engine.latent_units`) against the same terms
written as PyTensor's matrix operations, value and gradient, with every term present: covariates, the
conditioning covariates, continuous outcomes that predict, a between level and random slopes on a covariate,
an outcome's within part and an explicit variable."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pymlsem.engine.latent_units import DIFFERENTIABLE, INPUTS, UnitValues, unit_values

N_UNITS, N_CLUSTERS = 40, 6
P_EXPLICIT, P_RANDOM, P_OUTCOME, P_CONTINUOUS = 3, 2, 4, 2


def _inputs(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    columns = rng.normal(size=(N_CLUSTERS, 5))
    columns[:, -1] = 0.0  # the column of zeros: outcome 2 has no between part
    return {
        "z": rng.normal(size=(N_UNITS, P_RANDOM)),
        "columns": columns,
        # outcomes 0, 1, 3 read columns 0, 1, 2; the slopes' coefficients columns 3, 3, 0
        "cluster_columns": np.array([0, 1, 4, 2, 3, 3, 0]),
        "cluster_index": rng.integers(0, N_CLUSTERS, N_UNITS),
        "outcomes_e": np.array([1]),
        "outcomes_t": np.array([0]),
        # sources among (covariates_t: 0, 1; outcomes_t: 2; explicit: 3, 4, 5) and targets 3, 1, 2
        "slope_source": np.array([1, 2, 4]),
        "slope_place": np.array([0 * P_OUTCOME + 3, 1 * P_OUTCOME + 1, 2 * P_OUTCOME + 2]),
        "covariates_e": rng.normal(size=(N_UNITS, 2)),
        "covariates_t": rng.normal(size=(N_UNITS, 2)),
        "conditioning": rng.normal(size=(N_UNITS, 2)),
        "outcomes": rng.normal(size=(N_UNITS, P_CONTINUOUS)),
        "m_c": rng.normal(size=2),
        "coefficients": rng.normal(size=(2, P_EXPLICIT)),
        "m_e": rng.normal(size=P_EXPLICIT),
        "a_ec": rng.normal(size=(P_EXPLICIT, 2)),
        "a_eo": rng.normal(size=(P_EXPLICIT, 1)),
        "factor": rng.normal(size=(P_RANDOM, P_EXPLICIT)),
        "a_ee": np.tril(rng.normal(size=(P_EXPLICIT, P_EXPLICIT)), -1)[::-1, ::-1].copy(),  # paths acyclic
        "m_t": rng.normal(size=P_OUTCOME),
        "a_tc": rng.normal(size=(P_OUTCOME, 2)),
        "a_to": rng.normal(size=(P_OUTCOME, 1)),
        "a_te": rng.normal(size=(P_OUTCOME, P_EXPLICIT)),
    }


def _as_matrices(v: dict) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """The terms as PyTensor's matrix operations: the units' explicit values and outcomes' means."""
    between = v["columns"][:, v["cluster_columns"]][v["cluster_index"]]
    offset, slope = between[:, :P_OUTCOME], between[:, P_OUTCOME:]
    within = v["outcomes"] - offset[:, :P_CONTINUOUS]
    driven = (
        v["m_e"][None, :]
        + v["covariates_e"] @ v["a_ec"].T
        + within[:, v["outcomes_e"]] @ v["a_eo"].T
        + (v["conditioning"] - v["m_c"][None, :]) @ v["coefficients"]
        + v["z"] @ v["factor"]
    )
    values = driven @ pt.linalg.inv(pt.eye(P_EXPLICIT) - v["a_ee"]).T
    linear = (
        v["m_t"][None, :]
        + v["covariates_t"] @ v["a_tc"].T
        + within[:, v["outcomes_t"]] @ v["a_to"].T
        + values @ v["a_te"].T
        + offset
    )
    sources = pt.concatenate([v["covariates_t"], within[:, v["outcomes_t"]], values], axis=1)
    place = pt.zeros(v["slope_source"].shape[0] * P_OUTCOME)[v["slope_place"]].set(1.0)
    place = place.reshape((-1, P_OUTCOME))
    return values, linear + (sources[:, v["slope_source"]] * slope) @ place


@pytest.mark.parametrize("seed", [1, 2])
def test_units_equal_their_matrix_operations(seed: int) -> None:
    data = _inputs(seed)
    symbols = {
        name: pt.tensor(name, dtype="int64" if integer else "float64", shape=(None,) * data[name].ndim)
        for name, integer in INPUTS.items()
    }
    weights_values = np.random.default_rng(seed + 10).normal(size=(N_UNITS, P_EXPLICIT))
    weights_linear = np.random.default_rng(seed + 20).normal(size=(N_UNITS, P_OUTCOME))
    wanted = [symbols[name] for name in DIFFERENTIABLE]

    def value_and_grads(values, linear):
        loss = pt.sum(values * weights_values) + pt.sum(linear * weights_linear)
        return pytensor.function(list(symbols.values()), [values, linear, *pytensor.grad(loss, wanted)])

    ours = value_and_grads(*UnitValues()(*symbols.values()))(*data.values())
    reference = value_and_grads(*_as_matrices(symbols))(*data.values())
    for name, a, b in zip(["values", "linear", *DIFFERENTIABLE], ours, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12, err_msg=name)
    # the numba function itself, as the families' compiled code calls it
    for a, b in zip(unit_values(*data.values()), reference[:2], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_gradient_matches_finite_differences() -> None:
    data = _inputs(3)
    for name in ("columns", "factor", "coefficients", "a_ee"):
        point = {k: v.copy() for k, v in data.items()}

        def loss(x: np.ndarray, name=name, point=point) -> float:
            point[name] = x.reshape(data[name].shape)
            values, linear = unit_values(*point.values())
            return float(np.sum(values**2) + np.sum(np.sin(linear)))

        symbols = {
            k: pt.tensor(k, dtype="int64" if integer else "float64", shape=(None,) * data[k].ndim)
            for k, integer in INPUTS.items()
        }
        values, linear = UnitValues()(*symbols.values())
        total = pt.sum(values**2) + pt.sum(pt.sin(linear))
        grad = pytensor.function(list(symbols.values()), pytensor.grad(total, symbols[name]))(*data.values())
        x = data[name].ravel()
        step = 1e-6
        numeric = [
            (loss(x + step * np.eye(x.size)[k]) - loss(x - step * np.eye(x.size)[k])) / (2 * step)
            for k in range(x.size)
        ]
        np.testing.assert_allclose(grad.ravel(), numeric, rtol=1e-6, atol=1e-6, err_msg=name)
