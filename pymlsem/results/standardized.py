"""Standardized solutions, R-squared and intraclass correlations of a fitted SEM, per posterior draw.

Each quantity is computed in every posterior draw from that draw's parameter values and implied moments
(:mod:`pymlsem.results.implied`), then summarised like the parameters (posterior mean, SD, central
interval, R-hat, ESS). The standardizations follow lavaan's ``standardizedSolution()``
(``lav_standardize_lv`` / ``lav_standardize_all`` in lavaan's ``R/lav_standardize.R``) row by row:

* ``std.lv``: latent variables are scaled to unit (model-implied) variance. Loadings are multiplied by
  the factor's SD; regressions are divided by the SD of a latent outcome and multiplied by the SD of a
  latent predictor; (residual) variances of latent variables are divided by their implied variance;
  covariances involving a latent variable are divided by the square root of that variable's (residual)
  variance parameter, so residual covariances become residual correlations; latent means are divided by
  the SD.
* ``std.all``: in addition, observed variables are scaled by their implied SD in the same way
  (residual variances of observed variables become the proportion of unexplained variance).
* ``std.nox``: as ``std.all``, except the exogenous covariates (fixed.x) stay in their raw metric.

Under fixed.x the exogenous covariates' variances and covariances are the sample moments of the data and
enter the implied variances like any other row: their standardized variances are 1 and their covariances
are sample correlations. In a two-level model every row is standardized with the implied moments of its
own level (level 2 rows with the between-level variances), as lavaan does per block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import xarray as xr

from pymlsem.build.expressions import evaluate
from pymlsem.build.rewrites import compile_mode
from pymlsem.exceptions import ModelSpecificationError, PymlsemError
from pymlsem.results.implied import LevelMoments, implied_moment_draws, row_value_draws
from pymlsem.results.posterior import check_prob, interval_names, summarize_draws

if TYPE_CHECKING:
    from pymlsem.results.fit import SEMFit

__all__ = [
    "STANDARDIZATION_TYPES",
    "fit_standardized_draws",
    "icc",
    "icc_draws",
    "r_squared",
    "r_squared_draws",
    "standardize_draws",
    "standardized_solution",
]

#: The standardizations of lavaan's ``standardizedSolution(type=...)``.
STANDARDIZATION_TYPES = ("std.all", "std.lv", "std.nox")

_ROW_COLUMNS = ["lhs", "op", "rhs", "level", "label"]


# ---------------------------------------------------------------------------------------------------------
# public functions on a fit
# ---------------------------------------------------------------------------------------------------------


def standardized_solution(fit: SEMFit, type: str = "std.all", prob: float = 0.95) -> pd.DataFrame:
    """lavaan's ``standardizedSolution()`` as a posterior quantity.

    Every posterior draw is standardized with its own implied variances (see the module docstring for
    the rules), then the draws of each row are summarised.

    Parameters
    ----------
    fit
        A fitted SEM (:class:`~pymlsem.results.fit.SEMFit`).
    type
        ``"std.all"`` (latent and observed variables standardized), ``"std.lv"`` (latent variables
        only) or ``"std.nox"`` (all but the exogenous covariates).
    prob
        Probability of the central posterior interval (columns ``q2.5``/``q97.5`` for 0.95).

    Returns
    -------
    pandas.DataFrame
        One row per row of the parameter table, then one per defined (``:=``) parameter (computed from
        the standardized values of its labels, as lavaan does). Columns ``lhs, op, rhs, level, label,
        est.std`` (posterior mean of the standardized value), ``sd, q<lo>, q<hi>, r_hat, ess_bulk,
        ess_tail``. Rows whose standardized value is the same in every draw (fixed rows, exogenous
        covariates) have SD 0 and no R-hat or ESS.

    Raises
    ------
    PymlsemError
        For an unknown ``type`` or a ``prob`` outside (0, 1).
    """
    _check_type(type)
    check_prob(prob)
    draws = fit_standardized_draws(fit, type)
    out = _row_frame(fit)
    defined = _defined_draws(fit, draws)
    if defined:
        draws = np.column_stack([draws, *defined.values()])
        extra = pd.DataFrame(
            {
                "lhs": list(defined),
                "op": ":=",
                "rhs": [str(s.rhs) for s in fit.model.partable.defined],
                "level": pd.NA,
                "label": "",
            }
        )
        out = pd.concat([out, extra], ignore_index=True)
    stats = _summarize(fit, draws, prob).rename(columns={"mean": "est.std"})
    out = pd.concat([out, stats], axis=1)
    out["level"] = out["level"].astype("Int64")
    return out


def r_squared(fit: SEMFit, prob: float = 0.95) -> pd.DataFrame:
    """R-squared of every endogenous variable per level (lavaan's ``lavInspect(fit, "r2")``) per draw.

    The endogenous variables of a level are its indicators (right of ``=~``) and the outcomes of its
    regressions (left of ``~``), observed or latent; R-squared is one minus the ``std.all`` standardized
    residual variance, i.e. the share of the variable's implied variance (at that level) that the model
    explains. (lavaan turns an R-squared above 1, from a negative residual variance, into NA; the priors
    keep every variance positive, so no draw has one.)

    Parameters
    ----------
    fit
        A fitted SEM.
    prob
        Probability of the central posterior interval.

    Returns
    -------
    pandas.DataFrame
        Columns ``variable, level, r2`` (posterior mean), ``sd, q<lo>, q<hi>, r_hat, ess_bulk,
        ess_tail``, in the order of the variance rows of the parameter table.
    """
    check_prob(prob)
    table = fit.model.partable.table
    names, draws = r_squared_draws(table, fit_standardized_draws(fit, "std.all"))
    stats = _summarize(fit, draws, prob).rename(columns={"mean": "r2"})
    out = pd.concat([names, stats], axis=1)
    out["level"] = out["level"].astype("Int64")
    return out


def icc(fit: SEMFit, prob: float = 0.95) -> pd.DataFrame:
    """Intraclass correlations of a two-level model's observed variables and factors, per draw.

    For an observed variable with a part at both levels, the ICC is its between-level implied variance
    over the sum of its within- and between-level implied variances. For a factor, it is the book's ICC
    of a latent variable ("Multilevel Modeling Using R", chapter 10): the implied variance of the
    between-level factor over the sum of the implied variances of the within- and between-level
    factors. That ratio is the share of the factor's variance between clusters only when the two factors
    are on the same scale, i.e. when the loadings are equal across levels (cross-level invariance, e.g.
    the same labels at both levels); it is reported for every pair of a level-1 and a level-2 factor
    measured by the same observed indicators (matched by their fixed loadings where several factors share
    one set of indicators, as in growth models), and the column ``equal_loadings`` says whether the model
    constrains all their loadings to be equal. The implied variances include the parts explained by
    covariates at each level (the unconditional ICC).

    Parameters
    ----------
    fit
        A fitted two-level SEM.
    prob
        Probability of the central posterior interval.

    Returns
    -------
    pandas.DataFrame
        Columns ``kind`` (``"observed"`` or ``"latent"``), ``within``, ``between`` (the variable at each
        level: the same name for an observed variable, the two factors for a latent variable),
        ``equal_loadings`` (``<NA>`` for observed variables), ``icc`` (posterior mean), ``sd, q<lo>,
        q<hi>, r_hat, ess_bulk, ess_tail``. Within-only and between-only variables have no ICC in the
        model and are left out.

    Raises
    ------
    ModelSpecificationError
        When the fit is not a two-level model.
    """
    check_prob(prob)
    if fit.model.partable.n_levels != 2:
        raise ModelSpecificationError(
            "intraclass correlations need a two-level model (with 'level: 1' and 'level: 2' blocks and a "
            "cluster column); this fit has a single level"
        )
    moments = implied_moment_draws(fit)
    names, draws = icc_draws(fit.model.partable.table, moments, fit.model.built.row_param)
    stats = _summarize(fit, draws, prob).rename(columns={"mean": "icc"})
    return pd.concat([names, stats], axis=1)


# ---------------------------------------------------------------------------------------------------------
# per-draw computations (numpy, no fit object needed)
# ---------------------------------------------------------------------------------------------------------


def standardize_draws(
    table: pd.DataFrame,
    rows: np.ndarray,
    moments: Mapping[int, LevelMoments],
    *,
    type: str = "std.all",
    exogenous: Mapping[int, Sequence[str]] | None = None,
) -> np.ndarray:
    """Standardized value of every parameter-table row in every draw.

    Parameters
    ----------
    table
        The parameter table (columns ``lhs, op, rhs, level``).
    rows
        Shape (n_draws, n_rows): the rows' values (:func:`~pymlsem.results.implied.row_value_draws`).
    moments
        Implied moments per level for the same draws
        (:func:`~pymlsem.results.implied.implied_moment_draws`).
    type
        ``"std.all"``, ``"std.lv"`` or ``"std.nox"``.
    exogenous
        Exogenous (fixed.x) covariates per level; only ``std.nox`` uses them.

    Returns
    -------
    numpy.ndarray
        Shape (n_draws, n_rows).
    """
    _check_type(type)
    rows = np.atleast_2d(np.asarray(rows, dtype=float))
    out = rows.copy()
    exogenous = exogenous or {}
    for level, level_moments in moments.items():
        at = _LevelRows(table, level, level_moments)
        _standardize_latent(out, rows, at)
        if type != "std.lv":
            keep_raw = set(exogenous.get(level, ())) if type == "std.nox" else set()
            _standardize_observed(out, rows, at, keep_raw)
    return out


def r_squared_draws(table: pd.DataFrame, std_all: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """R-squared of each endogenous variable per level from ``std.all`` draws.

    Parameters
    ----------
    table
        The parameter table.
    std_all
        Shape (n_draws, n_rows): :func:`standardize_draws` with ``type="std.all"``.

    Returns
    -------
    names : pandas.DataFrame
        Columns ``variable, level``, one row per endogenous variable with a variance row.
    draws : numpy.ndarray
        Shape (n_draws, len(names)).
    """
    where: list[int] = []
    for level in sorted(table["level"].unique()):
        at = table["level"] == level
        endogenous = set(table.loc[at & (table.op == "=~"), "rhs"]) | set(
            table.loc[at & (table.op == "~"), "lhs"]
        )
        variance = at & (table.op == "~~") & (table.lhs == table.rhs) & table.lhs.isin(endogenous)
        where += list(np.flatnonzero(variance.to_numpy()))
    names = pd.DataFrame(
        {"variable": table["lhs"].iloc[where].to_list(), "level": table["level"].iloc[where].to_list()}
    )
    return names, 1.0 - std_all[:, where]


def icc_draws(
    table: pd.DataFrame, moments: Mapping[int, LevelMoments], row_param: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray]:
    """Intraclass correlations of a two-level model's observed variables and factors per draw.

    Parameters
    ----------
    table
        The parameter table of a two-level model.
    moments
        Implied moments of levels 1 and 2 (:func:`~pymlsem.results.implied.implied_moment_draws`).
    row_param
        Free-parameter index of each table row (-1 when fixed), to tell equal loadings.

    Returns
    -------
    names : pandas.DataFrame
        Columns ``kind, within, between, equal_loadings``.
    draws : numpy.ndarray
        Shape (n_draws, len(names)).
    """
    within, between = moments[1], moments[2]
    var_w = np.diagonal(within.cov, axis1=1, axis2=2)
    var_b = np.diagonal(between.cov, axis1=1, axis2=2)
    records: list[dict] = []
    columns: list[np.ndarray] = []
    for name in within.observed:
        if name in between.observed:
            vw, vb = var_w[:, within.variables.index(name)], var_b[:, between.variables.index(name)]
            records.append({"kind": "observed", "within": name, "between": name, "equal_loadings": pd.NA})
            columns.append(vb / (vw + vb))
    for name_w, name_b in _matching_factors(table):
        vw, vb = var_w[:, within.variables.index(name_w)], var_b[:, between.variables.index(name_b)]
        equal = _equal_loadings(table, row_param, name_w, name_b)
        records.append({"kind": "latent", "within": name_w, "between": name_b, "equal_loadings": equal})
        columns.append(vb / (vw + vb))
    names = pd.DataFrame.from_records(records, columns=["kind", "within", "between", "equal_loadings"])
    n_draws = var_w.shape[0]
    draws = np.column_stack(columns) if columns else np.empty((n_draws, 0))
    return names.astype({"equal_loadings": "boolean"}), draws


# ---------------------------------------------------------------------------------------------------------
# lavaan's standardization rules
# ---------------------------------------------------------------------------------------------------------


class _LevelRows:
    """The rows of one level and the implied variances of that level's variables, per draw."""

    def __init__(self, table: pd.DataFrame, level: int, moments: LevelMoments) -> None:
        self.latent = set(moments.variables[len(moments.observed) :])
        self.observed = set(moments.observed)
        at = (table["level"] == level).to_numpy()
        self.lhs = table["lhs"].to_numpy()
        self.rhs = table["rhs"].to_numpy()
        op = table["op"].to_numpy()
        self.op = {o: at & (op == o) for o in ("=~", "~", "~~", "~1")}
        variances = np.flatnonzero(self.op["~~"] & (self.lhs == self.rhs))
        self.variance_rows = {str(self.lhs[r]): int(r) for r in variances}
        implied = np.diagonal(moments.cov, axis1=1, axis2=2)
        self._implied = {name: implied[:, i] for i, name in enumerate(moments.variables)}

    def is_in(self, names: set[str], side: str) -> np.ndarray:
        """Whether the ``side`` (``"lhs"``/``"rhs"``) of each row is one of ``names``."""
        return np.isin(getattr(self, side), list(names))

    def implied_variance(self, names: np.ndarray) -> np.ndarray:
        """(n_draws, len(names)) implied variances; NaN for names that are not variables of the level."""
        n = next(iter(self._implied.values())).shape[0]
        missing = np.full(n, np.nan)
        return np.column_stack([self._implied.get(name, missing) for name in names] or [np.empty((n, 0))])


def _latent_sd(at: _LevelRows, names: np.ndarray) -> np.ndarray:
    """SDs of latent variables; negative implied variances give NaN."""
    variance = at.implied_variance(names)
    return np.sqrt(np.where(variance < 0, np.nan, variance))


def _observed_variance(at: _LevelRows, names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Implied variances (zero gives NaN) and SDs (negative also gives NaN) of observed variables."""
    variance = at.implied_variance(names)
    variance = np.where(np.abs(variance) < np.finfo(float).eps, np.nan, variance)
    return variance, np.sqrt(np.where(variance < 0, np.nan, variance))


def _standardize_latent(out: np.ndarray, rows: np.ndarray, at: _LevelRows) -> None:
    """lavaan's ``lav_standardize_lv`` for one level, in place on ``out`` (n_draws, n_rows)."""
    lv = at.latent
    if not lv:
        return
    lhs_lv, rhs_lv = at.is_in(lv, "lhs"), at.is_in(lv, "rhs")
    same = at.lhs == at.rhs
    idx = np.flatnonzero(at.op["=~"] & ~rhs_lv)  # loadings on observed indicators
    out[:, idx] *= _latent_sd(at, at.lhs[idx])
    idx = np.flatnonzero(at.op["=~"] & ~at.is_in(at.observed, "rhs"))  # higher-order loadings
    out[:, idx] *= _latent_sd(at, at.lhs[idx]) / _latent_sd(at, at.rhs[idx])
    idx = np.flatnonzero(at.op["~"] & lhs_lv)
    out[:, idx] /= _latent_sd(at, at.lhs[idx])
    idx = np.flatnonzero(at.op["~"] & rhs_lv)
    out[:, idx] *= _latent_sd(at, at.rhs[idx])
    idx = np.flatnonzero(at.op["~~"] & rhs_lv & same)  # (residual) variances
    out[:, idx] /= _latent_sd(at, at.lhs[idx]) ** 2
    latent_variance_rows = {name: r for name, r in at.variance_rows.items() if name in lv}
    _divide_covariances(out, rows, at, latent_variance_rows, lhs_lv & ~same, rhs_lv & ~same)
    idx = np.flatnonzero(at.op["~1"] & lhs_lv)
    out[:, idx] /= _latent_sd(at, at.lhs[idx])


def _standardize_observed(out: np.ndarray, rows: np.ndarray, at: _LevelRows, keep_raw: set[str]) -> None:
    """lavaan's ``lav_standardize_all`` for one level (after the latent part), in place on ``out``.

    Observed variables in ``keep_raw`` (std.nox: the exogenous covariates) are not standardized.
    """
    lhs_ov = ~at.is_in(at.latent, "lhs") & ~at.is_in(keep_raw, "lhs")
    rhs_ov = ~at.is_in(at.latent, "rhs") & ~at.is_in(keep_raw, "rhs")
    same = at.lhs == at.rhs
    idx = np.flatnonzero(at.op["=~"] & rhs_ov)
    out[:, idx] /= _observed_variance(at, at.rhs[idx])[1]
    idx = np.flatnonzero(at.op["~"] & at.is_in(at.observed, "lhs") & lhs_ov)
    out[:, idx] /= _observed_variance(at, at.lhs[idx])[1]
    idx = np.flatnonzero(at.op["~"] & at.is_in(at.observed, "rhs") & rhs_ov)
    out[:, idx] *= _observed_variance(at, at.rhs[idx])[1]
    idx = np.flatnonzero(at.op["~~"] & lhs_ov & same)  # (residual) variances: proportions
    out[:, idx] /= _observed_variance(at, at.lhs[idx])[0]
    observed_variance_rows = {name: r for name, r in at.variance_rows.items() if name in set(at.lhs[idx])}
    _divide_covariances(out, rows, at, observed_variance_rows, lhs_ov & ~same, rhs_ov & ~same)
    idx = np.flatnonzero(at.op["~1"] & lhs_ov)
    out[:, idx] /= _observed_variance(at, at.lhs[idx])[1]


def _divide_covariances(
    out: np.ndarray,
    rows: np.ndarray,
    at: _LevelRows,
    variance_rows: dict[str, int],
    lhs_side: np.ndarray,
    rhs_side: np.ndarray,
) -> None:
    """Divide each covariance row by the SD parameter (``sqrt`` of the raw variance row) of each side.

    Only the variance rows in ``variance_rows`` count: lavaan matches a covariance's variable against the
    variance rows of the same pass (latent or observed), and a side without one gives NaN.
    """
    for side, mask in (("lhs", lhs_side), ("rhs", rhs_side)):
        idx = np.flatnonzero(at.op["~~"] & mask)
        names = getattr(at, side)[idx]
        sd = np.full((rows.shape[0], len(idx)), np.nan)
        for j, name in enumerate(names):
            if name in variance_rows:
                sd[:, j] = np.sqrt(np.abs(rows[:, variance_rows[name]]))
        out[:, idx] /= sd


# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------


def _check_type(type: str) -> None:
    if type not in STANDARDIZATION_TYPES:
        raise PymlsemError(
            f"unknown standardization type {type!r}; use one of {', '.join(map(repr, STANDARDIZATION_TYPES))}"
        )


def fit_standardized_draws(fit: SEMFit, type: str) -> np.ndarray:
    model = fit.model
    return standardize_draws(
        model.partable.table,
        row_value_draws(fit),
        implied_moment_draws(fit),
        type=type,
        exogenous=model.partable.exogenous,
    )


def _row_frame(fit: SEMFit) -> pd.DataFrame:
    return fit.model.partable.table[_ROW_COLUMNS].copy().reset_index(drop=True)


def _defined_draws(fit: SEMFit, std: np.ndarray) -> dict[str, np.ndarray]:
    """Defined parameters evaluated at the standardized values of the labelled rows (first row of a label)."""
    partable = fit.model.partable
    if not partable.defined:
        return {}
    values: dict[str, pt.TensorVariable] = {}
    for r, label in enumerate(partable.table["label"]):
        if label and label not in values:
            values[label] = pt.as_tensor(std[:, r])
    names = [str(statement.lhs) for statement in partable.defined]
    for name, statement in zip(names, partable.defined, strict=True):
        values[name] = pt.as_tensor(evaluate(str(statement.rhs), values))
    # evaluated once: skip the C compilation
    results = pytensor.function([], [values[name] for name in names], mode=compile_mode("FAST_COMPILE"))()
    return {
        name: np.broadcast_to(np.asarray(v, dtype=float), std.shape[:1])
        for name, v in zip(names, results, strict=True)
    }


def _summarize(fit: SEMFit, draws: np.ndarray, prob: float) -> pd.DataFrame:
    """Posterior summary of each column of ``draws`` (stacked chain by chain), as for the parameters.

    A column that is the same in every draw (a fixed row, the exogenous covariates' correlations) gets its
    value as mean and interval, SD 0 and no R-hat or ESS, without going through the diagnostics.
    """
    sizes = fit.idata.posterior["parameters"].sizes
    n_chains, n_draws = sizes["chain"], sizes["draw"]
    lo, hi = interval_names(prob)
    columns = ["mean", "sd", lo, hi, "r_hat", "ess_bulk", "ess_tail"]
    out = pd.DataFrame(np.nan, index=range(draws.shape[1]), columns=columns)
    constant = np.all(draws == draws[:1], axis=0)
    out.loc[constant, ["mean", lo, hi]] = np.repeat(draws[0, constant, None], 3, axis=1)
    out.loc[constant, "sd"] = 0.0
    varying = np.flatnonzero(~constant)
    if varying.size:
        array = xr.DataArray(
            draws[:, varying].reshape(n_chains, n_draws, varying.size),
            dims=("chain", "draw", "quantity"),
            coords={"quantity": varying},
        )
        out.loc[varying, columns] = summarize_draws(array, prob)[columns].to_numpy()
    return out


def _matching_factors(table: pd.DataFrame) -> list[tuple[str, str]]:
    """Pairs (level-1 factor, level-2 factor) measured by the same observed indicators.

    Where several factors of a level share one set of indicators (growth models), the pattern of fixed
    loadings tells them apart; a factor that still matches more than one factor is left out.
    """
    loadings = table[(table.op == "=~") & (table.lhs != table.rhs)]
    keys: dict[int, dict[str, tuple]] = {1: {}, 2: {}}
    for level in (1, 2):
        at = loadings[loadings.level == level]
        for factor, group in at.groupby("lhs", sort=False):
            fixed = tuple(sorted((str(r.rhs), r.value if r.free == 0 else None) for r in group.itertuples()))
            keys[level][str(factor)] = (frozenset(group.rhs), fixed)
    pairs = []
    for name_w, key_w in keys[1].items():
        candidates = [b for b, key_b in keys[2].items() if key_b[0] == key_w[0]]
        rivals = [w for w, key in keys[1].items() if key[0] == key_w[0]]
        if len(candidates) > 1 or len(rivals) > 1:  # the same indicators: tell apart by fixed loadings
            candidates = [b for b in candidates if keys[2][b] == key_w]
            rivals = [w for w in rivals if keys[1][w] == key_w]
        if len(candidates) == 1 and rivals == [name_w]:
            pairs.append((name_w, candidates[0]))
    return pairs


def _equal_loadings(table: pd.DataFrame, row_param: np.ndarray, within: str, between: str) -> bool:
    """Whether every loading of ``within`` is constrained equal to the same indicator's loading of
    ``between`` (one shared free parameter, or the same fixed value)."""
    loads = (table.op == "=~").to_numpy()
    lhs, rhs, level = table.lhs.to_numpy(), table.rhs.to_numpy(), table.level.to_numpy()
    values = table["value"].to_numpy(dtype=float)
    for r in np.flatnonzero(loads & (lhs == within) & (level == 1)):
        (b,) = np.flatnonzero(loads & (lhs == between) & (level == 2) & (rhs == rhs[r]))
        if row_param[r] >= 0 or row_param[b] >= 0:
            if row_param[r] != row_param[b]:
                return False
        elif values[r] != values[b]:
            return False
    return True
