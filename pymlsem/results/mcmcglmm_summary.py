"""MCMCglmm-style printout of a mixed model: G-structure, R-structure, location effects, DIC."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from pymlsem.diagnostics.hpd import hpd_interval
from pymlsem.diagnostics.pmcmc import SIGNIF_LEGEND, pmcmc, signif_stars
from pymlsem.diagnostics.spectral import effective_size
from pymlsem.exceptions import PymlsemError
from pymlsem.mlm.parameters import vcv_terms
from pymlsem.results.posterior import SAMPLE_DIMS, interval_names

if TYPE_CHECKING:
    from pymlsem.mlm.fit import MixedFit

__all__ = ["family_params_lines", "format_number", "format_table", "mcmcglmm_summary", "mcmcglmm_table"]


def format_number(value: float, digits: int = 4) -> str:
    """A number with ``digits`` significant digits, as R prints a summary column (NaN as ``NA``)."""
    if not np.isfinite(value):
        return "NA"
    return f"{value:.{digits}g}"


def format_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """Right-aligned text of a table whose float columns are printed with ``digits`` significant digits."""
    text = frame.copy()
    for column in text.columns:
        if pd.api.types.is_float_dtype(text[column]):
            text[column] = [format_number(v, digits) for v in text[column]]
    return text.to_string()


def _format_pmcmc(value: float) -> str:
    return "<0.001" if value <= 0.001 else f"{value:.3f}"


def mcmcglmm_table(draws: xr.DataArray, prob: float = 0.95, with_pmcmc: bool = False) -> pd.DataFrame:
    """``post.mean``, HPD interval, coda's ``eff.samp`` (and ``pMCMC``) of each parameter.

    Parameters
    ----------
    draws
        Dims ``(chain, draw, parameter)``; chains are pooled for the mean, interval and pMCMC, and the
        effective sizes of the chains are summed (coda's ``effectiveSize`` of an ``mcmc.list``).
    prob
        Probability of the HPD interval (columns ``l-95% CI``, ``u-95% CI`` for 0.95).
    with_pmcmc
        Add MCMCglmm's ``pMCMC`` column.

    Returns
    -------
    pandas.DataFrame
        Indexed by parameter.
    """
    values = draws.transpose(*SAMPLE_DIMS, "parameter").values
    pooled = values.reshape(-1, values.shape[-1])
    bounds = hpd_interval(pooled, prob) if pooled.shape[1] else np.zeros((0, 2))
    level = f"{100 * prob:g}%"
    table = pd.DataFrame(
        {
            "post.mean": pooled.mean(axis=0),
            f"l-{level} CI": bounds[:, 0],
            f"u-{level} CI": bounds[:, 1],
            "eff.samp": [effective_size(values[..., k]) for k in range(values.shape[-1])],
        },
        index=pd.Index([str(name) for name in draws["parameter"].values]),
    )
    if with_pmcmc:
        table["pMCMC"] = pmcmc(pooled)
    return table


def _header(fit: MixedFit) -> list[str]:
    first = fit.tune + 1
    last = fit.tune + 1 + (fit.draws - 1) * fit.thin
    size = f"{fit.draws}" + (f" (x {fit.chains} chains)" if fit.chains > 1 else "")
    lines = [
        "",
        f" Iterations = {first}:{last}",
        f" Thinning interval  = {fit.thin}",
        f" Sample size  = {size}",
        "",
    ]
    try:
        lines.append(f" DIC: {fit.dic().dic:.6g} ")
    except (PymlsemError, KeyError, ValueError) as err:  # e.g. a family without a marginal likelihood
        lines.append(f" DIC: not available ({err})")
    return lines


def mcmcglmm_summary(fit: MixedFit, prob: float = 0.95) -> str:
    """The printout of MCMCglmm's ``summary(model)`` for a fitted mixed model.

    Parameters
    ----------
    fit
        The fitted model.
    prob
        Probability of the HPD intervals.

    Returns
    -------
    str
        Header (iterations, thinning, sample size), DIC, one G-structure table per random block, the
        R-structure (``units``) and the location effects with pMCMC and significance stars.
    """
    lines = _header(fit)
    vcv = fit.vcv_draws()
    table = mcmcglmm_table(vcv, prob) if vcv.sizes["parameter"] else pd.DataFrame()
    terms = vcv_terms(fit.spec)
    structures = list(dict.fromkeys(t.structure for t in terms if t.block is not None))
    for structure in structures:
        names = [t.name for t in terms if t.structure == structure]
        lines += ["", f" G-structure:  {structure}", "", format_table(table.loc[names])]
    if "units" in table.index:
        lines += ["", " R-structure:  ~units", "", format_table(table.loc[["units"]])]
    lines += ["", f" Location effects: {fit.spec.design.formula} ", ""]
    sol = mcmcglmm_table(fit.sol_draws(), prob, with_pmcmc=True)
    if len(sol):
        stars = [signif_stars(p) for p in sol["pMCMC"]]
        sol["pMCMC"] = [_format_pmcmc(p) for p in sol["pMCMC"]]
        sol[""] = stars
        lines += [format_table(sol), "---", SIGNIF_LEGEND]
    else:
        lines.append(" (no fixed effects)")
    lines += family_params_lines(fit, prob)
    for note in fit.warning_notes():
        lines += ["", f" WARNING: {note}"]
    return "\n".join(lines) + "\n"


def family_params_lines(fit: MixedFit, prob: float) -> list[str]:
    """The ``Family parameters:`` block (negative binomial theta, ordinal cut-points), or nothing."""
    table = fit.family_params(prob).drop(index="sigma", errors="ignore")  # sigma: the Residual row
    if not len(table):
        return []
    lo, hi = interval_names(prob)
    shown = table[["mean", "sd", lo, hi]].rename(columns={"mean": "Estimate", "sd": "Est.Error"})
    shown.index.name = None
    return ["", "Family parameters:", format_table(shown)]
