"""Design matrices of a mixed model from an lme4 formula and a DataFrame.

:func:`mixed_design` checks the data against the formula (columns, numeric response, missing values,
identifiability of random slopes), then builds the fixed-effects matrix X and one random block per bar term
with ``formulae``; column names follow lme4 (``(Intercept)``, ``period2``, ``Days:fb``).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from formulae import design_matrices, model_description

from pymlsem.data.prepare import check_frame
from pymlsem.exceptions import DataError, ModelSpecificationError, ModelSyntaxError
from pymlsem.formula.split import BarTerm, SplitFormula, split_formula
from pymlsem.formula.transforms import NAMESPACE, from_formulae, to_formulae

__all__ = ["MixedDesign", "RandomBlock", "level_keys", "mixed_design"]

INTERCEPT = "(Intercept)"


@dataclasses.dataclass(frozen=True, eq=False)
class RandomBlock:
    """One random-effect block ``(expr | group)``.

    Attributes
    ----------
    group
        Name of the grouping factor as lme4 prints it (``"Subject"``, ``"school:class"``).
    codes
        Level index (0-based) of each row, shape (n,).
    levels
        Level names, in lme4's order (sorted; for ``a:b`` the first factor varies slowest).
    z
        The block's design columns, shape (n, q).
    names
        lme4 names of the columns of ``z``.
    correlated
        False for ``||``: the effects have a diagonal covariance matrix.
    columns
        The grouping factor's data columns (two or more for ``a:b``).
    terms
        The ``formulae`` design of ``z`` (evaluates it on new data).
    """

    group: str
    codes: np.ndarray
    levels: tuple[str, ...]
    z: np.ndarray
    names: tuple[str, ...]
    correlated: bool
    columns: tuple[str, ...] = ()
    terms: Any = None

    @property
    def n_levels(self) -> int:
        """Number of levels of the grouping factor."""
        return len(self.levels)

    @property
    def q(self) -> int:
        """Number of effects per level."""
        return self.z.shape[1]


@dataclasses.dataclass(frozen=True, eq=False)
class MixedDesign:
    """A mixed model's data, ready for a builder.

    Attributes
    ----------
    formula
        The formula as given.
    response
        Name of the response.
    y
        Response values, shape (n,).
    x
        Fixed-effects design matrix, shape (n, p).
    fixed_names
        lme4 names of the columns of ``x``.
    blocks
        Random-effect blocks, in formula order.
    rows
        Index labels (of the caller's DataFrame) of the rows used.
    fixed_terms
        The ``formulae`` design of ``x`` (evaluates it on new data); None without fixed effects.
    """

    formula: str
    response: str
    y: np.ndarray
    x: np.ndarray
    fixed_names: tuple[str, ...]
    blocks: tuple[RandomBlock, ...]
    rows: pd.Index
    fixed_terms: Any = None

    @property
    def nobs(self) -> int:
        """Number of rows used."""
        return int(self.y.shape[0])


def lme4_name(label: str) -> str:
    """Turn a ``formulae`` column label into lme4's: ``Intercept`` -> ``(Intercept)``, ``f[b]`` -> ``fb``."""
    if label == "Intercept":
        return INTERCEPT
    return re.sub(r"\[([^\]]*)\]", r"\1", from_formulae(label))


def _variables(text: str, source: str) -> set[str]:
    try:
        names = model_description(to_formulae(text)).var_names
    except Exception as err:  # formulae raises its own ParseError / ScanError / ValueError
        column = max(source.find(text), 0) + 1
        raise ModelSyntaxError(f"cannot parse {text!r}: {err}", source, 1, column) from err
    return {name for name in names if name}


def _check_columns(names: Iterable[str], data: pd.DataFrame, what: str) -> None:
    columns = [str(c) for c in data.columns]
    for name in sorted(names):
        if name not in data.columns:
            close = difflib.get_close_matches(name, columns, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; the columns are {columns}"
            raise DataError(f"{what} {name!r} is not a column of the data{hint}")


def _drop_missing(data: pd.DataFrame, used: list[str]) -> pd.DataFrame:
    subset = data.loc[:, used]
    missing = subset.isna().any(axis=1).to_numpy()
    if missing.all():
        raise DataError(f"every row has a missing value in the columns the formula uses ({used})")
    if missing.any():
        warnings.warn(
            f"{int(missing.sum())} of {len(data)} rows have missing values in the columns the formula uses "
            f"({', '.join(used)}) and were dropped",
            UserWarning,
            stacklevel=3,
        )
    return data.loc[~missing, used].copy()


def _design(formula: str, data: pd.DataFrame) -> Any:
    """``formulae``'s design matrices, with an unknown name explained."""
    try:
        return design_matrices(to_formulae(formula), data, na_action="error", extra_namespace=NAMESPACE)
    except KeyError as err:  # formulae looks a name up in the data, then in its namespace
        raise ModelSpecificationError(
            f"the formula {formula!r} uses {err.args[0]!r}, which is neither a column of the data nor a "
            "function the formula knows (scale(x), center(x), C(x), poly(x, 2), or numpy's, as np.log(x))"
        ) from err


def _matrix(rhs: str, data: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...], Any]:
    """The design matrix of ``rhs``, its lme4 column names and its ``formulae`` design (None if empty)."""
    common = _design(rhs, data).common
    if common is None:
        return np.zeros((len(data), 0)), (), None
    labels = [label for term in common.terms.values() for label in term.labels]
    return np.asarray(common.design_matrix, dtype=float), tuple(lme4_name(label) for label in labels), common


def level_keys(data: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """Each row's level name of the grouping factor of ``columns`` (``"a:b"`` for an interaction)."""
    keys = data[columns[0]].astype(str).to_numpy(dtype=object)
    for name in columns[1:]:
        keys = keys + ":" + data[name].astype(str).to_numpy(dtype=object)
    return keys


def _grouping(bar: BarTerm, data: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    """Level codes and names of a grouping factor (an interaction for ``a:b``)."""
    factors = [pd.Categorical(data[name]).remove_unused_categories() for name in bar.group_columns]
    if len(factors) == 1:
        return factors[0].codes.astype(np.int64), tuple(str(c) for c in factors[0].categories)
    keys = np.stack([f.codes for f in factors], axis=1)
    unique, codes = np.unique(keys, axis=0, return_inverse=True)  # lexicographic: first factor slowest
    levels = tuple(
        ":".join(str(f.categories[k]) for f, k in zip(factors, row, strict=True)) for row in unique
    )
    return codes.reshape(-1).astype(np.int64), levels


def _check_finite(data: pd.DataFrame) -> None:
    """Refuse complex columns and infinite values in the used numeric columns (missing ones were dropped
    with a warning)."""
    complex_columns = [str(c) for c in data.columns if pd.api.types.is_complex_dtype(data[c])]
    if complex_columns:
        raise DataError(
            f"column(s) {', '.join(map(repr, complex_columns))} have complex values; give real numbers"
        )
    numeric = data.select_dtypes("number")
    infinite = [str(c) for c in numeric.columns if np.isinf(numeric[c].to_numpy(dtype=float)).any()]
    if infinite:
        raise DataError(
            f"column(s) {', '.join(map(repr, infinite))} have infinite values; remove or recode them"
        )


def _check_rank(x: np.ndarray, names: tuple[str, ...]) -> None:
    """Refuse fixed effects that are linear combinations of the others (lme4 would drop them)."""
    if x.shape[1] == 0 or np.linalg.matrix_rank(x) == x.shape[1]:
        return
    kept: list[int] = []
    for k in range(x.shape[1]):
        if np.linalg.matrix_rank(x[:, [*kept, k]]) > len(kept):
            kept.append(k)
        else:
            raise ModelSpecificationError(
                f"the fixed effect {names[k]!r} is a linear combination of "
                f"{', '.join(repr(names[j]) for j in kept)} in these data (collinear columns), so it cannot "
                "be estimated; drop it from the formula"
            )


def _check_slopes(block: RandomBlock) -> None:
    """Refuse a random slope whose variable does not vary within any group (it is a random intercept)."""
    if INTERCEPT not in block.names:
        return
    frame = pd.DataFrame(block.z)
    grouped = frame.groupby(block.codes)
    sizes = grouped.size().to_numpy()
    if not (sizes > 1).any():
        return
    spread = (grouped.max() - grouped.min()).to_numpy()[sizes > 1]
    scale = np.maximum(np.abs(block.z).max(axis=0), 1.0)
    for k, name in enumerate(block.names):
        if name != INTERCEPT and np.all(spread[:, k] <= 1e-12 * scale[k]):
            raise ModelSpecificationError(
                f"random slope {name!r} in ({name} | {block.group}) is constant within every level of "
                f"{block.group!r}, so it cannot be told apart from the random intercept; drop it from the "
                "random part (keep it as a fixed effect)"
            )


def _block(bar: BarTerm, data: pd.DataFrame, observation_level: bool) -> RandomBlock:
    codes, levels = _grouping(bar, data)
    if len(levels) < 2:
        raise ModelSpecificationError(f"grouping factor {bar.group!r} has fewer than 2 levels in the data")
    if len(levels) >= len(data) and not observation_level:
        raise ModelSpecificationError(
            f"grouping factor {bar.group!r} has as many levels as rows ({len(data)}): its random effects "
            "cannot be told apart from the Gaussian residual (an observation-level effect is for counts "
            "and proportions: family='poisson' or 'binomial')"
        )
    z, names, terms = _matrix(bar.expr, data)
    if not names:
        raise ModelSyntaxError(
            f"random-effect term ({bar.expr} | {bar.group}) has no columns", "", 1, bar.column
        )
    block = RandomBlock(bar.group, codes, levels, z, names, bar.correlated, tuple(bar.group_columns), terms)
    _check_slopes(block)
    return block


def _check_response(split: SplitFormula, data: pd.DataFrame) -> None:
    name = split.response
    if name in data.columns:
        column = data[name]
        kinds = pd.api.types
        real = kinds.is_numeric_dtype(column) and not kinds.is_bool_dtype(column)
        if not real or kinds.is_complex_dtype(column):
            raise DataError(
                f"response {name!r} is not numeric (dtype {column.dtype}); a Gaussian mixed model needs a "
                "numeric response"
            )


def mixed_design(
    formula: str | SplitFormula, data: pd.DataFrame, *, observation_level: bool = False
) -> MixedDesign:
    """Parse an lme4 formula and build its design matrices from ``data``.

    Parameters
    ----------
    formula
        An lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``. Supported: ``0 +``/``-1``,
        categorical predictors (treatment contrasts, lme4 names), ``x:w``, ``x*w``, calls ``formulae``
        knows (``scale(x)``, ``np.log(x)``, ``C(x)``), bar terms ``(expr | g)``, ``(expr || g)`` (one block
        with uncorrelated effects), ``(expr | a/b)`` (nested: ``a`` and ``a:b``), ``(expr | a:b)``. Or the
        formula already split (:func:`~pymlsem.formula.split.split_formula`), its offsets taken out by the
        caller (:func:`pymlsem.mlm.families.glmm_design`).
    data
        The data; never modified.
    observation_level
        Allow a grouping factor with one level per row (an observation-level random effect, the usual
        overdispersion term of a count model); a Gaussian model cannot tell it from the residual.

    Returns
    -------
    MixedDesign
        Response, fixed-effects matrix and random blocks for the complete rows.

    Raises
    ------
    ModelSyntaxError
        A formula that cannot be parsed.
    DataError
        A column the formula names is not in the data (the message suggests a close match); the response
        is not numeric; no complete rows.
    ModelSpecificationError
        A grouping factor with one level, or as many levels as rows without ``observation_level``; a random
        slope of a variable that is constant within every group; an ``offset()`` term (Gaussian models take
        none).

    Warns
    -----
    UserWarning
        When rows with missing values in the used columns are dropped (the warning counts them).
    """
    check_frame(data)
    split = formula if isinstance(formula, SplitFormula) else split_formula(formula)
    if split.offsets:
        raise ModelSpecificationError(
            f"offset({split.offsets[0]}) is for non-Gaussian families (e.g. a count's exposure); a Gaussian "
            "model takes no offset: subtract it from the response (a column y - offset) instead"
        )
    fixed_formula = f"{split.response} ~ {split.fixed}"
    used = _variables(fixed_formula, split.source)
    _check_columns(used, data, "variable")
    for bar in split.bars:
        names = _variables(bar.expr, split.source)
        _check_columns(names, data, "variable")
        _check_columns(bar.group_columns, data, "grouping factor")
        used |= names | set(bar.group_columns)
    _check_response(split, data)
    ordered = [str(c) for c in data.columns if c in used]
    clean = _drop_missing(data, ordered)
    rows = clean.index
    clean = clean.reset_index(drop=True)

    _check_finite(clean)
    matrices = _design(fixed_formula, clean)
    if matrices.response is None:
        raise ModelSyntaxError("missing response before '~'", split.source, 1, 1)
    if getattr(matrices.response, "kind", "numeric") != "numeric":
        raise DataError(f"response {split.response!r} is not numeric")
    y = np.asarray(matrices.response.design_matrix, dtype=float).reshape(len(clean), -1)
    if y.shape[1] != 1:
        raise DataError(f"response {split.response!r} must be one numeric column")
    x, fixed_names, fixed_terms = _matrix(split.fixed, clean)
    _check_rank(x, fixed_names)
    blocks = tuple(_block(bar, clean, observation_level) for bar in split.bars)
    return MixedDesign(split.source, split.response, y[:, 0], x, fixed_names, blocks, rows, fixed_terms)
