"""The marginal (integrated-likelihood) PyMC model of a single- or two-level SEM.

Latent variables at both levels are integrated out: the likelihood is the normal likelihood of the
data's sufficient statistics given the model-implied moments (see :mod:`pymlsem.build.loglik`). The
sufficient statistics, the sample moments of the exogenous covariates and the prior hyperparameters
are ``pm.Data``, so one compiled model serves new data and new priors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from pymlsem.build.expressions import evaluate, names_in
from pymlsem.build.loglik import single_level_loglik, stats_as_data, two_level_loglik
from pymlsem.build.parameters import FreeParameter, collect_free_parameters, make_random_variables
from pymlsem.build.ram import LevelLayout
from pymlsem.build.starts import start_values
from pymlsem.exceptions import ModelSpecificationError
from pymlsem.partable import ParTable

STATS_PREFIX = "stats__"
EXO_DATA = "exo_values"


@dataclass
class MarginalModel:
    """A built PyMC model and what is needed to read its posterior.

    Attributes
    ----------
    model
        The PyMC model.
    free
        The free parameters, in the order of the ``parameters`` deterministic.
    row_param
        For each table row, the index into ``free`` of its parameter, or -1 for a fixed row.
    defined
        Names of the defined (``:=``) parameters, in the order of the ``defined`` deterministic.
    layouts
        RAM layout of each level.
    """

    model: pm.Model
    free: list[FreeParameter]
    row_param: np.ndarray
    defined: list[str]
    layouts: dict[int, LevelLayout]


def build_marginal_model(
    partable: ParTable,
    stats,
    exo_values: np.ndarray,
    *,
    priors: Mapping[str, str] | None = None,
    meanstructure: bool = True,
) -> MarginalModel:
    """Build the PyMC model of ``partable`` for data summarised by ``stats``.

    Parameters
    ----------
    partable
        The parameter table.
    stats
        :class:`~pymlsem.data.stats.SingleLevelStats` or :class:`~pymlsem.data.stats.TwoLevelStats`.
    exo_values
        Values of the ``exo`` rows of the table (sample moments of exogenous covariates), in table order
        of those rows.
    priors
        User priors by class or parameter name.
    meanstructure
        Single-level only: whether the data's means enter the likelihood.
    """
    table = partable.table
    latent = {v for names in partable.latent.values() for v in names}
    two_level = partable.n_levels == 2
    tied = _tied_labels(partable)
    free = collect_free_parameters(table, latent, two_level=two_level, tied_labels=tied, priors=priors)
    row_param = np.full(len(table), -1, dtype=np.int64)
    for i, p in enumerate(free):
        row_param[p.rows] = i

    layouts = {
        level: LevelLayout.from_table(table, level, partable.observed[level], partable.latent[level])
        for level in range(1, partable.n_levels + 1)
    }
    defined_names = [str(s.lhs) for s in partable.defined]

    with pm.Model(coords={"parameter": [p.name for p in free]}) as model:
        stats_data = stats_as_data(stats, prefix=STATS_PREFIX)
        exo = pm.Data(EXO_DATA, np.asarray(exo_values, dtype=float))
        values = make_random_variables(free, start_values(table, stats, latent))
        labels = _label_values(partable, free, values, exo)
        _apply_expression_constraints(partable, labels, free, values)
        rows = _row_values(partable, free, row_param, values, exo)
        for p in free:
            if p.pclass == "rho" and p.name in labels:
                labels[p.name] = rows[p.rows[0]]  # labels of covariances mean the covariance
        pm.Deterministic("parameters", pt.stack([rows[p.rows[0]] for p in free]), dims="parameter")
        _add_defined(partable, labels, defined_names)
        _add_inequalities(partable, labels)
        loglik = loglik_from_rows(layouts, pt.stack(rows), stats_data, meanstructure=meanstructure)
        pm.Potential("loglik", loglik)
    return MarginalModel(model, free, row_param, defined_names, layouts)


def loglik_from_rows(
    layouts: dict[int, LevelLayout], rows: pt.TensorVariable, stats, *, meanstructure: bool = True
) -> pt.TensorVariable:
    """Log-likelihood of the data summarised by ``stats`` given the values of all table rows.

    Parameters
    ----------
    layouts
        RAM layout per level (from :class:`LevelLayout`).
    rows
        Vector with the value of every row of the parameter table (lavaan's scale).
    stats
        Sufficient statistics (numpy arrays or ``pm.Data``).
    meanstructure
        Single-level only: whether the means enter the likelihood.
    """
    if len(layouts) == 2:
        mu_w, sigma_w = _global_moments(layouts[1], rows, stats.variables)
        mu_b, sigma_b = _global_moments(layouts[2], rows, stats.variables)
        return two_level_loglik(mu_w, sigma_w, mu_b, sigma_b, stats)
    mu, sigma = _global_moments(layouts[1], rows, stats.variables)
    return single_level_loglik(mu if meanstructure else None, sigma, stats)


def stats_data_values(stats) -> dict[str, np.ndarray]:
    """The ``pm.Data`` values of a statistics object, by data-variable name (for swapping data)."""
    return {STATS_PREFIX + name: np.asarray(value) for name, value in stats.arrays().items()}


def _global_moments(layout: LevelLayout, rows: pt.TensorVariable, variables) -> tuple:
    """Implied mean and covariance of one level, placed in the order of ``variables`` (zeros elsewhere)."""
    mean, cov = layout.implied(rows)
    p = len(variables)
    variables = list(variables)
    where = np.array([variables.index(v) for v in layout.observed], dtype=np.int64)
    full_mean = pt.set_subtensor(pt.zeros(p)[where], mean)
    full_cov = pt.set_subtensor(pt.zeros((p, p))[where[:, None], where[None, :]], cov)
    return full_mean, full_cov


def _tied_labels(partable: ParTable) -> list[tuple[str, str]]:
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
    variance_row = {
        (row.lhs, int(row.level)): r
        for r, row in enumerate(table.itertuples(index=False))
        if row.op == "~~" and row.lhs == row.rhs
    }
    for r, row in enumerate(table.itertuples(index=False)):
        if row.op == "~~" and row.lhs != row.rhs and row_param[r] >= 0:
            try:
                var_a = rows[variance_row[(row.lhs, int(row.level))]]
                var_b = rows[variance_row[(row.rhs, int(row.level))]]
            except KeyError as err:
                raise ModelSpecificationError(
                    f"the covariance {row.lhs} ~~ {row.rhs} needs the variances of both variables"
                ) from err
            rows[r] = rows[r] * pt.sqrt(var_a * var_b)
    return rows


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
