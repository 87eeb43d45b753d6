"""The free parameters of a parameter table as PyMC variables, and the value of every table row.

Both builders (:mod:`pymlsem.build.marginal` and :mod:`pymlsem.build.latent`) start here: the free
parameters get their priors (see :mod:`pymlsem.build.parameters`), labels and ``==`` constraints tie them,
every row of the table gets a PyTensor value on lavaan's scale (variances and covariances), and the
``parameters`` and ``defined`` deterministics are added, so that the posterior reads the same whichever
builder made the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from pymlsem.build.expressions import evaluate, names_in
from pymlsem.build.parameters import (
    FreeParameter,
    can_be_signed,
    collect_free_parameters,
    make_random_variables,
)
from pymlsem.build.prior_units import parameter_units
from pymlsem.build.starts import start_values
from pymlsem.exceptions import ModelSpecificationError
from pymlsem.partable import ParTable

EXO_DATA = "exo_values"


@dataclass
class TableValues:
    """The PyTensor value of every row of a parameter table.

    Attributes
    ----------
    free
        The free parameters, in the order of the ``parameters`` deterministic.
    row_param
        For each table row, the index into ``free`` of its parameter, or -1 for a fixed row.
    rows
        Vector with the value of every table row (lavaan's scale).
    labels
        Value of every label and defined parameter by name.
    defined
        Names of the defined (``:=``) parameters, in the order of the ``defined`` deterministic.
    signs
        For each table row, the sign of its signed SD's value (see ``signed_rows`` of
        :func:`add_parameters`), 1 for the other rows.
    """

    free: list[FreeParameter]
    row_param: np.ndarray
    rows: pt.TensorVariable
    labels: dict[str, pt.TensorVariable]
    defined: list[str]
    signs: pt.TensorVariable


def add_parameters(
    partable: ParTable,
    stats,
    exo_values: np.ndarray,
    *,
    priors: Mapping[str, str] | None = None,
    default_priors: str = "scaled",
    signed_rows: frozenset[int] = frozenset(),
) -> TableValues:
    """Create the parameters of ``partable`` inside the current PyMC model.

    Parameters
    ----------
    partable
        The parameter table.
    stats
        Sufficient statistics of the data (for start values).
    exo_values
        Values of the ``exo`` rows (sample moments of exogenous covariates), in table order of those rows;
        they become the ``pm.Data`` ``exo_values``.
    priors
        User priors by class or parameter name.
    default_priors
        ``"scaled"``: the default priors in the data's units (:mod:`pymlsem.build.prior_units`);
        ``"blavaan"``: blavaan's numbers as they are.
    signed_rows
        Table rows (variances) whose SD may be sampled with its sign: a free parameter all of whose rows
        are among them, and whose prior allows it (:func:`pymlsem.build.parameters.can_be_signed`), is.

    Returns
    -------
    TableValues
    """
    table = partable.table
    latent = {v for names in partable.latent.values() for v in names}
    tied = tied_labels(partable)
    units = parameter_units(table, stats, latent) if default_priors == "scaled" else None
    free = collect_free_parameters(
        table, latent, two_level=partable.n_levels == 2, tied_labels=tied, priors=priors, units=units
    )
    row_param = np.full(len(table), -1, dtype=np.int64)
    for i, p in enumerate(free):
        row_param[p.rows] = i
        p.signed = set(p.rows) <= signed_rows and can_be_signed(p)
    model = pm.modelcontext(None)
    model.add_coord("parameter", [p.name for p in free])
    exo = pm.Data(EXO_DATA, np.asarray(exo_values, dtype=float))
    values = make_random_variables(free, start_values(table, stats, latent))
    labels = _label_values(partable, free, values, exo)
    _apply_expression_constraints(partable, labels, free, values)
    rows = _row_values(partable, free, row_param, values, exo)
    for p in free:
        if p.pclass == "rho" and p.name in labels:
            labels[p.name] = rows[p.rows[0]]  # labels of covariances mean the covariance
    pm.Deterministic("parameters", pt.stack([rows[p.rows[0]] for p in free]), dims="parameter")
    defined = [str(s.lhs) for s in partable.defined]
    _add_defined(partable, labels, defined)
    _add_inequalities(partable, labels)
    return TableValues(free, row_param, pt.stack(rows), labels, defined, _row_signs(model, free, len(table)))


def _row_signs(model: pm.Model, free: list[FreeParameter], n_rows: int) -> pt.TensorVariable:
    """Each table row's sign: its signed SD's, 1 for the other rows."""
    signs = pt.ones(n_rows)
    for p in free:
        if p.signed:
            name, dim = p.variable
            value = model[name][list(model.coords[dim]).index(p.name)]
            signs = pt.set_subtensor(signs[p.rows], pt.sign(value))
    return signs


def tied_labels(partable: ParTable) -> list[tuple[str, str]]:
    """``a == b`` constraints between two labels of free parameters: merged into one parameter."""
    labels = set(partable.table.loc[partable.table.free > 0, "label"]) - {""}
    return [
        (s.lhs.strip(), s.rhs.strip())
        for s in partable.constraints
        if s.op == "==" and s.lhs.strip() in labels and s.rhs.strip() in labels
    ]


def _label_values(partable, free, values, exo) -> dict[str, pt.TensorVariable]:
    """Value of every label: free parameters' random variables, fixed rows' values."""
    table = partable.table
    labels: dict[str, pt.TensorVariable] = {}
    for p in free:
        for r in p.rows:
            label = str(table.label.iloc[r] or "")
            if label:
                labels[label] = values[p.name]
    exo_pos = np.cumsum(table.exo.to_numpy() == 1) - 1
    for r, row in enumerate(table.itertuples(index=False)):
        if row.label and int(row.free) == 0 and row.label not in labels:
            labels[row.label] = exo[exo_pos[r]] if int(row.exo) == 1 else pt.as_tensor(float(row.value))
    return labels


def _apply_expression_constraints(partable, labels, free, values) -> None:
    """``a == expression``: the parameter labelled ``a`` becomes a function of the others."""
    for s in partable.constraints:
        if s.op != "==":
            continue
        lhs, rhs = s.lhs.strip(), s.rhs.strip()
        if lhs in labels and rhs in labels and lhs.isidentifier() and rhs.isidentifier():
            continue  # merged into one parameter already
        target, expression = (lhs, rhs) if lhs.isidentifier() else (rhs, lhs)
        if not target.isidentifier() or target not in labels:
            raise ModelSpecificationError(
                f"the constraint {s.lhs} == {s.rhs} needs a single label on one side "
                "(e.g. a == 2*b); rewrite it in that form"
            )
        if target in names_in(expression):
            raise ModelSpecificationError(
                f"the constraint {s.lhs} == {s.rhs} refers to {target} on both sides"
            )
        value = evaluate(expression, labels)
        labels[target] = value
        for p in free:
            if p.name == target:
                values[p.name] = value


def _row_values(partable, free, row_param, values, exo) -> list[pt.TensorVariable]:
    """Value of every table row on lavaan's scale; free covariances from correlations and variances."""
    table = partable.table
    exo_pos = np.cumsum(table.exo.to_numpy() == 1) - 1
    rows: list[pt.TensorVariable] = []
    for r, row in enumerate(table.itertuples(index=False)):
        if row_param[r] >= 0:
            rows.append(values[free[row_param[r]].name])
        elif int(row.exo) == 1:
            rows.append(exo[exo_pos[r]])
        else:
            rows.append(pt.as_tensor(float(row.value)))
    for r, var_a, var_b in covariance_rows(table, row_param):
        rows[r] = rows[r] * pt.sqrt(rows[var_a] * rows[var_b])
    return rows


def covariance_rows(table, row_param: np.ndarray) -> list[tuple[int, int, int]]:
    """Each free covariance row with the rows of its two variances (same level): a covariance's value is
    its correlation times the two SDs.

    Raises
    ------
    ModelSpecificationError
        When a variance of the two variables is not in the table.
    """
    variance_row = {
        (row.lhs, int(row.level)): r
        for r, row in enumerate(table.itertuples(index=False))
        if row.op == "~~" and row.lhs == row.rhs
    }
    found = []
    for r, row in enumerate(table.itertuples(index=False)):
        if row.op == "~~" and row.lhs != row.rhs and row_param[r] >= 0:
            try:
                found.append(
                    (r, variance_row[(row.lhs, int(row.level))], variance_row[(row.rhs, int(row.level))])
                )
            except KeyError as err:
                raise ModelSpecificationError(
                    f"the covariance {row.lhs} ~~ {row.rhs} needs the variances of both variables"
                ) from err
    return found


def _add_defined(partable, labels, names) -> None:
    if not partable.defined:
        return
    for s in partable.defined:
        labels[str(s.lhs)] = evaluate(str(s.rhs), labels)
    pm.modelcontext(None).add_coord("defined_parameter", names)
    pm.Deterministic("defined", pt.stack([labels[n] for n in names]), dims="defined_parameter")


def _add_inequalities(partable, labels) -> None:
    """``a < b`` / ``a > b``: a hard constraint (the posterior is truncated to where it holds)."""
    for k, s in enumerate(c for c in partable.constraints if c.op in ("<", ">")):
        lhs, rhs = evaluate(s.lhs, labels), evaluate(s.rhs, labels)
        holds = pt.lt(lhs, rhs) if s.op == "<" else pt.gt(lhs, rhs)
        pm.Potential(f"constraint_{k}", pt.switch(holds, 0.0, -np.inf))
