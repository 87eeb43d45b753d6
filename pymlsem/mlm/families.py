"""GLMM families: names, links, and the response (with trials and offset) checked against the family.

:func:`glmm_design` turns a formula and data into a :class:`~pymlsem.formula.design.MixedDesign` plus a
:class:`GLMMResponse`: the response as the family needs it (integer counts, 0/1, category codes), the
binomial trials and the offset, all on the rows the design uses. The response may be

* a column (``y ~ ...``); for ``"ordinal"`` an ordered ``pandas.Categorical`` or integer codes;
* ``cbind(successes, failures)`` for ``"binomial"`` (R's two-column response; the parts may be expressions
  of columns such as ``size - incidence``).

An offset is written ``offset(expr)`` in the fixed part (``offset(log(exposure))``) or given as
``offset=`` (a column name or an array); both add up. Every check raises
:class:`~pymlsem.exceptions.DataError` before anything is compiled.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pymlsem.exceptions import DataError, ModelSpecificationError, ModelSyntaxError
from pymlsem.formula.design import MixedDesign, mixed_design
from pymlsem.formula.split import split_formula

__all__ = ["FAMILIES", "LINEAR_PREDICTOR", "LINKS", "GLMMResponse", "check_family", "glmm_design"]

#: the name of the linear predictor in a GLMM's graph (each row's, random effects and offset included)
LINEAR_PREDICTOR = "eta"

#: Link functions each family accepts; the first is the default.
LINKS: dict[str, tuple[str, ...]] = {
    "gaussian": ("identity",),
    "bernoulli": ("logit", "probit"),
    "binomial": ("logit", "probit"),
    "poisson": ("log",),
    "negbinomial": ("log",),
    "ordinal": ("logit", "probit"),
    "student": ("identity",),
}
FAMILIES = tuple(LINKS)
_COUNT_FAMILIES = ("poisson", "negbinomial")
_PRIVATE = "pymlsem_response"

ArrayLike = Sequence[float] | np.ndarray | pd.Series


@dataclasses.dataclass(frozen=True, eq=False)
class GLMMResponse:
    """The response of a non-Gaussian mixed model, on the rows of the design.

    Attributes
    ----------
    family, link
        The family and its link function.
    y
        The response: counts or 0/1 (int64), 0-based category codes for ``"ordinal"``, or the values
        (float) for ``"student"``.
    trials
        Binomial trials per row (int64), ``None`` for other families.
    offset
        Offset added to the linear predictor (float), ``None`` when there is none.
    categories
        Category labels of an ordinal response, in order; empty otherwise.
    """

    family: str
    link: str
    y: np.ndarray
    trials: np.ndarray | None = None
    offset: np.ndarray | None = None
    categories: tuple[str, ...] = ()


def check_family(family: str, link: str | None) -> tuple[str, str]:
    """Validate ``family`` and ``link``; return them with the default link filled in.

    Raises
    ------
    ModelSpecificationError
        An unknown family, or a link the family does not support.
    """
    if family not in LINKS:
        raise ModelSpecificationError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    links = LINKS[family]
    if link is None:
        return family, links[0]
    if link not in links:
        raise ModelSpecificationError(
            f"family={family!r} supports link {' or '.join(map(repr, links))}, not {link!r}"
        )
    return family, link


def _evaluate(expr: str, data: pd.DataFrame, formula: str, what: str) -> np.ndarray:
    """Evaluate a column expression (``size - incidence``, ``log(x)``) on the data."""
    expr = expr.strip()
    if expr in data.columns:
        value = data[expr].to_numpy()
        if not pd.api.types.is_numeric_dtype(value) or pd.api.types.is_bool_dtype(value):
            raise DataError(f"the {what} {expr!r} must be numeric, not dtype {value.dtype}")
        return value
    try:
        value = data.eval(re.sub(r"\bnp\.", "", expr), engine="python")
    except Exception as err:  # pandas raises UndefinedVariableError, SyntaxError, ...
        column = max(formula.find(expr), 0) + 1
        raise ModelSyntaxError(
            f"cannot evaluate the {what} {expr!r} on the data: {err}", formula, 1, column
        ) from err
    return np.broadcast_to(np.asarray(value), (len(data),))


def _column_or_array(value: str | ArrayLike, data: pd.DataFrame, what: str) -> np.ndarray:
    if isinstance(value, str):
        if value not in data.columns:
            raise DataError(f"{what}={value!r} is not a column of the data")
        values = data[value].to_numpy()
    else:
        values = np.asarray(value)
        if values.shape != (len(data),):
            raise DataError(
                f"{what}= must have one value per row of the data ({len(data)}), not shape {values.shape}"
            )
    if not np.issubdtype(values.dtype, np.number) or values.dtype == bool:
        raise DataError(f"{what} must be numeric, not dtype {values.dtype}")
    return values.astype(float)


def _cbind(lhs: str) -> tuple[str, str] | None:
    if not (lhs.startswith("cbind(") and lhs.endswith(")")):
        return None
    pieces = _top_level_pieces_commas(lhs[len("cbind(") : -1])
    if len(pieces) != 2:
        raise ModelSyntaxError("cbind() takes two parts: cbind(successes, failures)", lhs, 1, 1)
    return pieces[0], pieces[1]


def _top_level_pieces_commas(text: str) -> list[str]:
    pieces, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            pieces.append(text[start:i].strip())
            start = i + 1
    pieces.append(text[start:].strip())
    return pieces


def _check_integers(values: np.ndarray, name: str, family: str) -> None:
    seen = values[~np.isnan(values)]
    if np.any(seen < 0):
        raise DataError(
            f"response {name!r} has negative values; family={family!r} needs counts (0, 1, 2, ...)"
        )
    if np.any(seen != np.round(seen)):
        raise DataError(
            f"response {name!r} has non-integer values; family={family!r} needs whole counts"
            + ("; use family='gaussian' for a continuous response" if family in _COUNT_FAMILIES else "")
        )


def _bernoulli(values: np.ndarray, name: str) -> np.ndarray:
    values = values.astype(float)
    seen = values[~np.isnan(values)]
    if not np.isin(seen, (0.0, 1.0)).all():
        found = np.unique(seen)[:5]
        raise DataError(
            f"response {name!r} must be 0/1 (or True/False) for family='bernoulli'; found {found.tolist()}"
            "; for counts out of n trials use family='binomial' with cbind(successes, failures) or trials="
        )
    return values


def _ordinal(column: pd.Series, name: str) -> tuple[np.ndarray, tuple[str, ...]]:
    if isinstance(column.dtype, pd.CategoricalDtype):
        if not column.cat.ordered:
            raise DataError(
                f"response {name!r} is an unordered categorical; make it ordered "
                "(pd.Categorical(values, categories=[...], ordered=True)) so the category order is known"
            )
        categories = tuple(str(c) for c in column.cat.categories)
        codes = column.cat.codes.to_numpy().astype(float)
        codes[codes < 0] = np.nan
    elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype=float)
        seen = values[~np.isnan(values)]
        if np.any(seen != np.round(seen)):
            raise DataError(f"ordinal response {name!r} must be integer codes or an ordered categorical")
        levels = np.unique(seen)
        categories = tuple(str(int(v)) for v in levels)
        codes = np.full(values.shape, np.nan)
        known = ~np.isnan(values)
        codes[known] = np.searchsorted(levels, values[known])
    else:
        raise DataError(
            f"ordinal response {name!r} has dtype {column.dtype}; give an ordered pandas Categorical or "
            "integer codes"
        )
    if len(categories) < 3:
        raise DataError(
            f"ordinal response {name!r} has {len(categories)} categories; an ordinal model needs at least 3 "
            "(for two categories use family='bernoulli')"
        )
    return codes, categories


def _response_values(
    lhs: str, data: pd.DataFrame, family: str, trials: str | ArrayLike | None, formula: str
) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]:
    """Response (float, NaN where missing), trials and ordinal categories, before rows are dropped."""
    parts = _cbind(lhs)
    if parts is not None:
        if family != "binomial":
            raise ModelSpecificationError(
                f"cbind(successes, failures) needs family='binomial', not {family!r}"
            )
        if trials is not None:
            raise ModelSpecificationError(
                "give the binomial trials by cbind(successes, failures) or trials=, not both"
            )
        successes = _evaluate(parts[0], data, formula, "successes").astype(float)
        failures = _evaluate(parts[1], data, formula, "failures").astype(float)
        _check_integers(successes, parts[0], family)
        _check_integers(failures, parts[1], family)
        return successes, successes + failures, ()
    if lhs not in data.columns:
        _evaluate(lhs, data, formula, "response")  # raises the error with a position
        raise DataError(
            f"response {lhs!r} must be a column of the data (or cbind(...) for family='binomial')"
        )
    column = data[lhs]
    if family == "ordinal":
        codes, categories = _ordinal(column, lhs)
        return codes, None, categories
    if pd.api.types.is_bool_dtype(column) and family == "bernoulli":
        column = column.astype(float)
    if not pd.api.types.is_numeric_dtype(column):
        raise DataError(f"response {lhs!r} is not numeric (dtype {column.dtype})")
    values = column.to_numpy(dtype=float)
    if family == "student":  # a continuous response
        return values, None, ()
    if family == "bernoulli":
        return _bernoulli(values, lhs), None, ()
    _check_integers(values, lhs, family)
    if family == "binomial":
        if trials is None:
            raise ModelSpecificationError(
                "family='binomial' needs the number of trials: write cbind(successes, failures) ~ ... or "
                "give "
                "trials= (a column name or an array); for a 0/1 response use family='bernoulli'"
            )
        n = _column_or_array(trials, data, "trials")
        _check_integers(n, "trials", family)
        return values, n, ()
    return values, None, ()


def glmm_design(
    formula: str,
    data: pd.DataFrame,
    family: str,
    link: str | None = None,
    *,
    trials: str | ArrayLike | None = None,
    offset: str | ArrayLike | None = None,
) -> tuple[MixedDesign, GLMMResponse]:
    """Design matrices and the checked response of a non-Gaussian mixed model.

    Parameters
    ----------
    formula
        An lme4 formula; the response may be ``cbind(successes, failures)`` (binomial) and the fixed part
        may hold ``offset(expr)`` terms.
    data
        The data; never modified. Rows with a missing value in a used column (response, trials, offset,
        predictors, grouping factors) are dropped with a warning.
    family
        ``"bernoulli"``, ``"binomial"``, ``"poisson"``, ``"negbinomial"`` or ``"ordinal"``.
    link
        ``None`` for the family's default (see :data:`LINKS`).
    trials
        Binomial trials: a column name or one value per row (instead of ``cbind``).
    offset
        A column name or one value per row, added to the linear predictor (on the link scale).

    Returns
    -------
    tuple of MixedDesign and GLMMResponse
        The design (its ``y`` holds the family's response as floats) and the response in the family's terms.

    Raises
    ------
    DataError
        Negative or non-integer counts, a non-binary Bernoulli response, successes above trials, an ordinal
        response with fewer than 3 categories, a non-numeric offset or trials, bad shapes.
    ModelSpecificationError
        An unknown family or link, binomial without trials, ``cbind`` with another family.
    """
    family, link = check_family(family, link)
    if family == "gaussian":
        raise ModelSpecificationError("glmm_design is for non-Gaussian families; use mixed_design")
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    split = split_formula(formula)  # raises ModelSyntaxError on a malformed formula
    source, lhs, offset_exprs = split.source, split.response, split.offsets
    frame = data.reset_index(drop=True)
    y, n, categories = _response_values(lhs, frame, family, trials, source)
    if n is not None:
        over = np.nan_to_num(y) > np.nan_to_num(n, nan=np.inf)
        if over.any():
            raise DataError(
                f"{int(over.sum())} row(s) have more successes than trials "
                f"(first: row {data.index[over.argmax()]!r})"
            )
    total = np.zeros(len(frame))
    for expr in offset_exprs:
        total = total + _evaluate(expr, frame, source, "offset").astype(float)
    if offset is not None:
        total = total + _column_or_array(offset, frame, "offset")
    has_offset = bool(offset_exprs) or offset is not None
    if has_offset and np.isinf(total).any():
        raise DataError("the offset has infinite values (log of zero?)")

    missing = np.isnan(y) | (np.isnan(n) if n is not None else False) | np.isnan(total)
    name = lhs if lhs in frame.columns and re.fullmatch(r"[A-Za-z_]\w*", lhs) else _PRIVATE
    frame = frame.copy()
    frame[name] = np.where(missing, np.nan, y)
    fixed_and_random = dataclasses.replace(split, response=name, offsets=())  # the offsets are taken
    design = mixed_design(fixed_and_random, frame, observation_level=True)
    keep = design.rows.to_numpy()
    design = dataclasses.replace(design, formula=source, response=lhs, rows=data.index[keep])
    response = GLMMResponse(
        family=family,
        link=link,
        y=y[keep] if family == "student" else y[keep].astype(np.int64),
        trials=None if n is None else n[keep].astype(np.int64),
        offset=total[keep] if has_offset else None,
        categories=categories,
    )
    return design, response
