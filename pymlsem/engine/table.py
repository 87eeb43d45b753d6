"""A SEM's free parameters and parameter table as arrays (what the SEM and latent families share at bind
time): which element of the point is which parameter, its prior, its scale, and every table row's value;
and the rows' values in the families' graphs (:func:`row_values`)."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pymc.distributions.transforms import Ordered

from pymlsem.build.parameters import SCALE_CODES, lavaan_scale, scale_code
from pymlsem.build.table_values import covariance_rows, tied_labels
from pymlsem.engine.binding import Unsupported
from pymlsem.engine.priors import MAX_HYPER, PRIOR_FAMILIES, transform_of

__all__ = ["THRESHOLD_PREFIX", "parameter_variables", "row_values", "table_arrays"]

#: name prefix of an ordered variable's thresholds (one random variable each, with PyMC's ordered transform)
THRESHOLD_PREFIX = "thresholds_"
#: prior families of thresholds that the families evaluate after the ordered transform (the real line)
_THRESHOLD_PRIORS = ("normal", "student_t", "cauchy")


def parameter_variables(spec, value_vars) -> tuple[list, list]:
    """The binding's variables of the free parameters' value variables (``value_vars``, in sampling order,
    from position 0), and the free parameters in that order.

    Raises
    ------
    Unsupported
        For constraints written as expressions, unknown prior families or transforms, and parameters that
        are functions of others.
    """
    partable, built = spec.partable, spec.built
    merged = {tuple(pair) for pair in tied_labels(partable)}
    written = [c for c in partable.constraints if (c.lhs.strip(), c.rhs.strip()) not in merged]
    if written:
        raise Unsupported(
            f"constraints written as expressions ({written[0].lhs} {written[0].op} {written[0].rhs})"
        )
    model = built.model
    free_index = {p.name: i for i, p in enumerate(built.free)}
    variables, elements = [], []
    position = 0
    for value_var in value_vars:
        rv = model.values_to_rvs[value_var]
        dim = model.named_vars_to_dims[rv.name][0]
        names = list(model.coords[dim])
        actual = model.rvs_to_transforms[rv]
        if rv.name.startswith(THRESHOLD_PREFIX):
            members = _thresholds(built.free, rv.name)
            increasing = isinstance(actual, Ordered) or (actual is None and len(members) == 1)
            if not increasing or members[0].prior.family not in _THRESHOLD_PRIORS:
                raise Unsupported(f"thresholds between fixed ones, or their prior family ({rv.name})")
        else:
            members = [built.free[free_index[name]] for name in names]
            signed = members[0].signed  # on the real line (:mod:`pymlsem.build.parameters`)
            expected = None if signed else transform_of(members[0].prior.family, members[0].prior.args)
            unknown = any(m.prior.family not in PRIOR_FAMILIES for m in members)
            if unknown or not isinstance(actual, type(expected)):  # PyMC's default transform, as the engine's
                raise Unsupported(f"the prior family or transform of {rv.name}")
        variables.append((rv.name, dim, names, np.arange(position, position + len(names))))
        elements += members
        position += len(names)
    if np.any(_point_positions(built.free, elements) < 0):
        raise Unsupported("a free parameter that is a function of others")
    return variables, elements


def _point_positions(free: list, elements: list) -> np.ndarray:
    """Each free parameter's position in the point (``elements`` in sampling order), -1 if absent."""
    index = {p.name: i for i, p in enumerate(free)}
    positions = np.full(len(free), -1, dtype=np.int64)
    for k, member in enumerate(elements):
        positions[index[member.name]] = k
    return positions


def _thresholds(free: list, name: str) -> list:
    """The free thresholds that are the random variable ``name``, in the order t1, t2, ... (its own)."""
    members = [p for p in free if p.pclass == "tau" and p.variable[0] == name]
    return sorted(members, key=lambda p: int(p.rhs[1:]))


def table_arrays(
    spec, elements: list, n_standard: int = 0
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Priors, scales and table rows of the free parameters ``elements`` (the first elements of the point),
    followed by ``n_standard`` standard normal elements (a latent model's ``z``).

    Returns
    -------
    hyper, families, parts, row_fixed
        Hyperparameters (K, :data:`MAX_HYPER`), each element's prior family, the integer arrays of the
        priors and the table (``prior_*``, ``scale``, ``row_param``, ``cov_*``), and the fixed rows' values.
    """
    built, table = spec.built, spec.partable.table
    x_of_param = _point_positions(built.free, elements)
    hyper = np.zeros((len(elements) + n_standard, MAX_HYPER))
    for k, member in enumerate(elements):
        hyper[k, : len(member.prior.args)] = member.prior.args
    hyper[len(elements) :, :2] = (0.0, 1.0)  # normal(0, 1)
    scale = [scale_code(member) for member in elements] + [SCALE_CODES["plain"]] * n_standard
    families = np.array([m.prior.family for m in elements] + ["normal"] * n_standard)
    row_param = np.where(built.row_param >= 0, x_of_param[np.maximum(built.row_param, 0)], -1)
    row_fixed = np.nan_to_num(spec.fixed_row_values(), nan=0.0)
    found = np.array(covariance_rows(table, built.row_param), dtype=np.int64).reshape(-1, 3)
    cov_rows, var_a, var_b = found.T
    parts: dict[str, np.ndarray] = {
        **{f"prior_{name}": np.flatnonzero(families == name) for name in PRIOR_FAMILIES},
        "scale": np.asarray(scale),
        "row_param": row_param,
        "cov_rows": cov_rows,
        "cov_var_a": var_a,
        "cov_var_b": var_b,
    }
    return hyper, families, parts, row_fixed.astype(float)


def row_values(values, part, row_fixed) -> pt.TensorVariable:
    """Every table row's value on lavaan's scale (covariances from correlations and variances)."""
    lavaan = lavaan_scale(values, part["scale"])
    row_param = part["row_param"]
    rows = pt.switch(pt.ge(row_param, 0), lavaan[pt.maximum(row_param, 0)], row_fixed)
    sds = pt.sqrt(rows[part["cov_var_a"]] * rows[part["cov_var_b"]])
    return pt.set_subtensor(rows[part["cov_rows"]], rows[part["cov_rows"]] * sds)
