"""Predictions of a fitted mixed model per posterior draw: lme4's ``predict``, ``fitted`` and ``coef``.

The linear predictor of a row is ``x beta + sum over blocks of z u[level]`` (plus the model's offset on
its own rows), at each posterior draw of the fixed effects and the cluster effects
(:meth:`pymlsem.mlm.fit.MixedFit.ranef_draws`); on the response scale it goes through the inverse link
(the mean for Gaussian and count models, the probability of a success for binomial ones). New data are
evaluated by the model's own ``formulae`` designs, so transformations (``scale(x)``, categorical
contrasts) use the fitted data's centering, scaling and levels, as R's ``predict`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special

from pymlsem.exceptions import DataError, ModelSpecificationError
from pymlsem.formula.design import level_keys
from pymlsem.results.posterior import SAMPLE_DIMS, summarize_draws

if TYPE_CHECKING:
    from pymlsem.mlm.fit import MixedFit

__all__ = ["coef_tables", "linear_predictor_draws", "prediction_table", "response_mean"]

TYPES = ("link", "response")
_INVERSE_LINK = {
    "identity": lambda eta: eta,
    "logit": special.expit,
    "probit": special.ndtr,
    "log": np.exp,
}


def linear_predictor_draws(
    fit: MixedFit,
    newdata: pd.DataFrame | None = None,
    *,
    re_form: str | None = None,
    allow_new_levels: bool = False,
) -> np.ndarray:
    """The linear predictor per draw and row, shape (chain, draw, rows).

    Parameters
    ----------
    fit
        A fitted mixed model.
    newdata
        Rows to predict (the fitted rows by default); needs the columns the formula uses, except the
        response.
    re_form
        ``None``: with every cluster effect (conditional on the clusters); ``"~0"`` or ``"NA"``: without
        them (the population level), as lme4's ``re.form``.
    allow_new_levels
        Give a level not in the fitted data a cluster effect of zero (lme4's ``allow.new.levels``);
        otherwise such a level is an error.

    Raises
    ------
    DataError
        A missing column, missing values, or a new level without ``allow_new_levels``.
    ModelSpecificationError
        An unknown ``re_form``, or new data for a model with an offset.
    """
    spec, posterior = fit.spec, fit.idata.posterior
    design = spec.design
    with_effects = _with_effects(re_form)
    if newdata is None:
        x, blocks = design.x, [(block.z, block.codes) for block in design.blocks]
        offset = spec.response.offset if spec.response is not None else None
    else:
        x, blocks = _new_design(fit, newdata, allow_new_levels or not with_effects)
        offset = None
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    eta = np.zeros((*shape, x.shape[0]))
    if design.fixed_names:
        eta += np.einsum("cdp,np->cdn", posterior["fixef"].transpose(*SAMPLE_DIMS, "term").values, x)
    if offset is not None:
        eta += offset
    if with_effects and design.blocks:
        effects = fit.ranef_draws()
        for label, (z, codes) in zip(spec.labels, blocks, strict=True):
            u = effects[label].transpose(*SAMPLE_DIMS, "level", "effect").values
            known = codes >= 0
            eta[..., known] += np.einsum("cdnq,nq->cdn", u[:, :, codes[known], :], z[known])
    return eta


def _with_effects(re_form: str | None) -> bool:
    if re_form is None:
        return True
    if isinstance(re_form, str) and re_form.replace(" ", "") in ("~0", "NA", "~-1"):
        return False
    raise ModelSpecificationError(
        f"re_form={re_form!r}: use None (with the cluster effects) or '~0' (the population level); other "
        "subsets of the random terms are not supported yet"
    )


def _new_design(
    fit: MixedFit, newdata: pd.DataFrame, allow_new_levels: bool
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """X and each block's (Z, level codes; -1 for a new level) of new rows, by the model's own designs."""
    spec = fit.spec
    design = spec.design
    if not isinstance(newdata, pd.DataFrame):
        raise DataError(f"newdata must be a pandas DataFrame, not {type(newdata).__name__}")
    if spec.response is not None and spec.response.offset is not None:
        raise ModelSpecificationError(
            "the model has an offset, which new data do not carry: predict the fitted rows (newdata=None)"
        )
    x = np.zeros((len(newdata), 0))
    try:
        if design.fixed_terms is not None:
            x = np.asarray(design.fixed_terms.evaluate_new_data(newdata).design_matrix, dtype=float)
        blocks = []
        for block in design.blocks:
            z = np.asarray(block.terms.evaluate_new_data(newdata).design_matrix, dtype=float)
            missing = [name for name in block.columns if name not in newdata.columns]
            if missing:
                raise DataError(f"newdata has no column {missing[0]!r} (grouping factor {block.group!r})")
            keys = level_keys(newdata, block.columns)
            index = {level: k for k, level in enumerate(block.levels)}
            codes = np.array([index.get(key, -1) for key in keys], dtype=np.int64)
            if (codes < 0).any() and not allow_new_levels:
                new = sorted({str(k) for k, c in zip(keys, codes, strict=True) if c < 0})
                raise DataError(
                    f"newdata has levels of {block.group!r} that the fitted data do not have "
                    f"({', '.join(new[:5])}{', ...' if len(new) > 5 else ''}); pass allow_new_levels=True "
                    "to give them a cluster effect of zero, or re_form='~0' for the population level"
                )
            blocks.append((z, codes))
    except DataError:
        raise
    except Exception as err:  # formulae: a missing column, missing values, an unknown category
        raise DataError(f"cannot evaluate the model's formula on newdata: {err}") from err
    return x, blocks


def response_mean(spec: Any, eta: np.ndarray) -> np.ndarray:
    """The expected response at linear predictors ``eta``: the inverse link (a binomial model's success
    probability).

    Raises
    ------
    ModelSpecificationError
        For an ordinal model, whose response is a category.
    """
    if spec.family == "ordinal":
        raise ModelSpecificationError(
            "an ordinal model's response is a category: predict type='link' (the latent scale)"
        )
    link = spec.response.link if spec.response is not None else "identity"
    return _INVERSE_LINK[link](eta)


def prediction_table(
    fit: MixedFit,
    newdata: pd.DataFrame | None = None,
    *,
    re_form: str | None = None,
    type: str = "response",
    allow_new_levels: bool = False,
    prob: float = 0.95,
) -> pd.DataFrame:
    """Posterior summary of the prediction of each row (see :func:`linear_predictor_draws`).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``newdata`` (or the fitted rows), columns ``mean, sd``, the central interval, and
        the diagnostics of each prediction.
    """
    if type not in TYPES:
        raise ModelSpecificationError(f"type must be 'link' or 'response', not {type!r}")
    spec = fit.spec
    eta = linear_predictor_draws(fit, newdata, re_form=re_form, allow_new_levels=allow_new_levels)
    if type == "response":
        eta = response_mean(spec, eta)
    index = spec.design.rows if newdata is None else newdata.index
    draws = xr.DataArray(eta, dims=(*SAMPLE_DIMS, "row"), coords={"row": np.arange(eta.shape[-1])})
    table = summarize_draws(draws, prob)
    table.index = index
    return table


def coef_tables(fit: MixedFit) -> dict[str, pd.DataFrame]:
    """lme4's ``coef()``: per grouping factor, each level's fixed effects plus its cluster effects.

    Returns
    -------
    dict
        Block label -> DataFrame indexed by the levels, one column per fixed effect (lme4's order), the
        posterior means of ``beta + u``; a cluster effect without a fixed effect of its name gets its own
        column, as in lme4.
    """
    spec, posterior = fit.spec, fit.idata.posterior
    names = list(spec.design.fixed_names)
    beta = posterior["fixef"].mean(SAMPLE_DIMS).values if names else np.zeros(0)
    out = {}
    for label, block in zip(spec.labels, spec.design.blocks, strict=True):
        effects = fit.ranef_draws()[label].mean(SAMPLE_DIMS)
        columns = names + [n for n in block.names if n not in names]
        table = pd.DataFrame(0.0, index=pd.Index(list(block.levels), name=block.group), columns=columns)
        table[names] = beta
        for name in block.names:
            table[name] += effects.sel(effect=name).values
        out[label] = table
    return out
