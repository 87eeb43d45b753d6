"""lme4-style printout of a mixed model: random effects (variances, SDs, correlations) and fixed effects."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from pymlsem.results.mcmcglmm_summary import family_params_lines, format_number, format_table
from pymlsem.results.posterior import interval_names

if TYPE_CHECKING:
    from pymlsem.mlm.fit import MixedFit

__all__ = ["lme4_summary", "random_effects_table"]


def random_effects_table(fit: MixedFit, digits: int = 4) -> pd.DataFrame:
    """The ``Random effects:`` table of ``print(summary(lmer))``, from posterior means.

    Parameters
    ----------
    fit
        The fitted model.
    digits
        Significant digits of the numbers.

    Returns
    -------
    pandas.DataFrame
        Columns ``Groups, Name, Variance, Std.Dev.`` and ``Corr`` (one column per earlier effect of a
        correlated block, lower triangle as lme4 prints it), all as text; ``Variance`` is the posterior
        mean of the variance and ``Std.Dev.`` that of the SD.
    """
    varcorr = fit.varcorr()
    rows: list[dict[str, str]] = []
    position: dict[tuple[str, str], int] = {}
    order: dict[str, list[str]] = {}
    width = 0
    for row in varcorr.itertuples(index=False):
        grp, var1, var2 = row.grp, row.var1, row.var2
        if isinstance(var2, str):  # a correlation: goes in var2's row, under var1's column
            col = order[grp].index(var1)
            rows[position[(grp, var2)]][f"corr{col}"] = format_number(row.sdcor, 2)
            width = max(width, col + 1)
            continue
        name = "" if not isinstance(var1, str) else var1
        order.setdefault(grp, []).append(name)
        position[(grp, name)] = len(rows)
        rows.append(
            {
                "Groups": grp if len(order[grp]) == 1 else "",
                "Name": name,
                "Variance": format_number(row.vcov, digits),
                "Std.Dev.": format_number(row.sdcor, digits),
            }
        )
    columns = ["Groups", "Name", "Variance", "Std.Dev."] + [f"corr{k}" for k in range(width)]
    table = pd.DataFrame(rows, columns=columns).fillna("")
    return table.rename(columns={f"corr{k}": "Corr" if k == 0 else "" for k in range(width)})


def _left_aligned(table: pd.DataFrame) -> list[str]:
    """Rows of a text table with every column left-aligned, as lme4 prints ``VarCorr``."""
    cells = [list(table.columns), *table.astype(str).values.tolist()]
    widths = [max(len(row[k]) for row in cells) for k in range(len(table.columns))]
    return [" ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in cells]


def lme4_summary(fit: MixedFit, prob: float = 0.95) -> str:
    """The printout of lme4's ``summary(lmer(...))`` with posterior summaries in place of ML estimates.

    Parameters
    ----------
    fit
        The fitted model.
    prob
        Probability of the equal-tailed interval of the fixed effects.

    Returns
    -------
    str
        The formula and sampler, ``Random effects:`` (Groups, Name, Variance, Std.Dev., Corr), the numbers
        of observations and groups, and ``Fixed effects:`` (Estimate = posterior mean, Est.Error =
        posterior SD, interval).
    """
    design = fit.spec.design
    kind = "linear" if fit.spec.family == "gaussian" else "generalized linear"
    mixed = " mixed" if design.blocks else ""
    lines = [f"Bayesian {kind}{mixed} model ({fit.sampler}: {fit.chains} chains x {fit.draws} draws)"]
    if fit.spec.response is not None:
        lines.append(f" Family: {fit.spec.family}  ( {fit.spec.response.link} )")
    lines += [f"Formula: {design.formula}", "", "Random effects:"]
    table = random_effects_table(fit)
    lines += [" " + line for line in _left_aligned(table)] if len(table) else [" (none)"]
    groups = {block.group: block.n_levels for block in design.blocks}
    counts = "; ".join(f"{group}, {n}" for group, n in groups.items())
    lines += [
        f"Number of obs: {design.nobs}" + (f", groups:  {counts}" if groups else ""),
        "",
        "Fixed effects:",
    ]
    fixef = fit.fixef(prob)
    if len(fixef):
        lo, hi = interval_names(prob)
        level = f"{100 * prob:g}%"
        table = pd.DataFrame(
            {
                "Estimate": fixef["mean"],
                "Est.Error": fixef["sd"],
                f"l-{level} CI": fixef[lo],
                f"u-{level} CI": fixef[hi],
            }
        )
        table.index.name = None
        lines.append(format_table(table))
    else:
        lines.append(" (no fixed effects)")
    lines += family_params_lines(fit, prob)
    for note in fit.warning_notes():
        lines += ["", f"WARNING: {note}"]
    return "\n".join(lines) + "\n"
