"""Convergence checks of a fit's draws, as brms, blavaan and PyMC make them, and the warning they give.

Each check compares one diagnostic with the threshold the Stan and ArviZ teams recommend (Vehtari et al.
2021, "Rank-normalization, folding, and localization"; Betancourt 2017 for E-BFMI):

==============  =====================================================  =============================
check           value                                                   passes when
==============  =====================================================  =============================
``r_hat``       largest rank-normalised split R-hat                     < 1.01
``ess_bulk``    smallest bulk effective sample size                     >= 100 per chain
``ess_tail``    smallest tail effective sample size                     >= 100 per chain
``divergent``   number of divergent transitions after tuning            0
``e_bfmi``      smallest energy Bayesian fraction of missing info       >= 0.3 (every chain)
``tree_depth``  share of draws whose trajectory hit the maximum depth   <= 1%
``signs``       parameters whose chains sit on opposite sides of 0      0
                (chain means beyond 4 within-chain SDs of 0 each)
``modes``       largest gap between the chains' mean log densities      <= 4 within-chain SDs of it
==============  =====================================================  =============================

R-hat and ESS are computed over the parameters a fit reports (a SEM's free parameters, a mixed model's fixed
effects, standard deviations, correlations and family parameters); the worst ones are named, with what to
try. Checks that need what a sampler did not record (energy, tree depth, log density) are left out; constant
draws (a correlation's diagonal) have no R-hat and are skipped.

``signs`` tells why R-hat fails when chains found mirror images of one another: a latent variable whose
variance is fixed (``std.lv``-style, every loading free) has the same posterior density with the signs of
all its loadings and paths reversed, so each chain settles on one sign and their log densities agree (which
``modes`` cannot see); the check names the parameters whose chain means sit far apart on both sides of 0.

``modes`` tells why R-hat fails when it fails because chains sit in different modes of the posterior rather
than because they are short. Chains that sample one distribution have mean log densities a small fraction of
its within-chain SD apart; a chain whose mean lies several SDs below the best chain's explores another mode,
and the check names it with the gap. A gap of tens of units means a mode that holds a negligible share of
the posterior (a trap: a factor variance near zero with large loadings of either sign) or, where most chains
sit in the lower one, that a single start (an ML optimiser's, too) can end in a local mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats import bfmi, ess, rhat

__all__ = ["RHAT_MAX", "convergence_message", "diagnose", "sample_stat"]

RHAT_MAX = 1.01
ESS_PER_CHAIN = 100
BFMI_MIN = 0.3
TREE_DEPTH_SHARE = 0.01
MODE_GAP_SDS = 4.0  # chains' mean log densities further apart than this many within-chain SDs: two modes
SIGN_SDS = 4.0  # a chain's mean this many within-chain SDs away from 0 has settled on a sign
_WORST = 3  # parameters named per check

_ADVICE = {
    "r_hat": "run longer chains (draws=, tune=) or more chains",
    "ess_bulk": "run more draws",
    "ess_tail": "run more draws",
    "divergent": "raise target_accept (e.g. target_accept=0.95) or reparameterise (method=, centered=)",
    "e_bfmi": "the posterior's tails are hard to explore: reparameterise or use more informative priors",
    "tree_depth": "raise max_treedepth or reparameterise; sampling is inefficient",
    "signs": (
        "the chains found mirror images of one another (a latent variable whose variance is fixed has the "
        "same posterior with the signs of all its loadings and paths reversed). Keep the chains of one sign "
        "(fit.select_chains([...])), or identify the sign: fix one loading (a marker such as 1*y1, the "
        "variance then free; without std_lv=True a factor's first loading is its marker)"
    ),
    "modes": (
        "the chains found different modes, which also fails R-hat and ESS; a mode whose log density is tens "
        "of units below another's holds a negligible share of the posterior. Compare the chains "
        "(fit.idata.posterior.sel(chain=...)); keep those in the highest mode (fit.select_chains([...])) or "
        "refit with more chains or another random_seed; check the model's identification (a vanishing "
        "factor variance with large loadings is a weakly identified factor)"
    ),
}


def _flat(dataset: xr.Dataset) -> pd.Series:
    """Every scalar element of a Dataset of diagnostics, labelled ``name[coords]``."""
    values = {}
    for name, array in dataset.data_vars.items():
        if array.ndim == 0:
            values[name] = float(array)
            continue
        stacked = array.stack(element=array.dims)
        for index, value in zip(stacked["element"].values, stacked.values, strict=True):
            label = ", ".join(str(v) for v in np.atleast_1d(index))
            values[f"{name}[{label}]"] = float(value)
    return pd.Series(values, dtype=float)


def sample_stat(idata: Any, *names: str) -> xr.DataArray | None:
    """The first of ``names`` that the sampler recorded in ``sample_stats`` (samplers name some
    statistics differently: ``logp`` / ``lp``), or None."""
    stats = idata.get("sample_stats") if hasattr(idata, "get") else None
    if stats is None:
        return None
    for name in names:
        if name in stats:
            return stats[name]
    return None


def diagnose(idata: Any, var_names: list[str]) -> pd.DataFrame:
    """The convergence checks of a fit's draws (see the module docstring).

    Parameters
    ----------
    idata
        The fit's ArviZ DataTree (``posterior`` and, where the sampler recorded them, ``sample_stats``).
    var_names
        The posterior variables whose R-hat and ESS are checked.

    Returns
    -------
    pandas.DataFrame
        One row per check: ``value``, ``threshold``, ``ok``, ``worst`` (the worst parameters, for R-hat and
        ESS) and ``advice``.
    """
    posterior = idata.posterior
    posterior = (posterior.to_dataset() if hasattr(posterior, "to_dataset") else posterior)[var_names]
    chains = int(posterior.sizes["chain"])
    rows = []
    with np.errstate(invalid="ignore", divide="ignore"):  # constant draws: no R-hat (NaN, skipped)
        r_hat = _flat(rhat(posterior)).dropna() if var_names else pd.Series(dtype=float)
    if r_hat.size:
        worst = r_hat.sort_values(ascending=False)
        rows.append(("r_hat", worst.iloc[0], RHAT_MAX, worst.iloc[0] < RHAT_MAX, worst[worst >= RHAT_MAX]))
    for method in ("bulk", "tail"):
        with np.errstate(invalid="ignore", divide="ignore"):
            values = _flat(ess(posterior, method=method)).dropna() if var_names else pd.Series(dtype=float)
        if values.size:
            worst = values.sort_values()
            limit = ESS_PER_CHAIN * chains
            rows.append((f"ess_{method}", worst.iloc[0], limit, worst.iloc[0] >= limit, worst[worst < limit]))
    diverging = sample_stat(idata, "diverging")
    if diverging is not None:
        count = int(np.asarray(diverging).sum())
        rows.append(("divergent", count, 0, count == 0, pd.Series(dtype=float)))
    if sample_stat(idata, "energy") is not None:
        values = np.asarray(bfmi(idata)["energy"], dtype=float)
        rows.append(
            ("e_bfmi", float(values.min()), BFMI_MIN, bool(values.min() >= BFMI_MIN), pd.Series(dtype=float))
        )
    depth = sample_stat(idata, "reached_max_treedepth", "maxdepth_reached")
    if depth is not None:
        share = float(np.asarray(depth, dtype=float).mean())
        rows.append(
            ("tree_depth", share, TREE_DEPTH_SHARE, share <= TREE_DEPTH_SHARE, pd.Series(dtype=float))
        )
    if var_names and chains > 1:
        rows.append(_signs(posterior))
    log_density = sample_stat(idata, "logp", "lp")
    if log_density is not None and log_density.sizes.get("chain", 1) > 1:
        rows.append(_modes(log_density))
    return pd.DataFrame(
        {
            "value": [r[1] for r in rows],
            "threshold": [r[2] for r in rows],
            "ok": [bool(r[3]) for r in rows],
            "worst": [", ".join(list(r[4].index[:_WORST])) for r in rows],
            "advice": ["" if r[3] else _ADVICE[r[0]] for r in rows],
        },
        index=pd.Index([r[0] for r in rows], name="check"),
    )


def _signs(posterior: xr.Dataset) -> tuple:
    """The ``signs`` check: the parameters with a chain mean above :data:`SIGN_SDS` pooled within-chain SDs
    and another below minus as many."""
    means = posterior.mean("draw")
    spread = np.sqrt(posterior.var("draw").mean("chain")) * SIGN_SDS
    split = _flat(((means.max("chain") > spread) & (means.min("chain") < -spread)).astype(float))
    named = split[split > 0]
    return ("signs", float(named.size), 0, named.empty, named)


def _modes(log_density: xr.DataArray) -> tuple:
    """The ``modes`` check: the largest gap between chains' mean log densities against
    :data:`MODE_GAP_SDS` pooled within-chain SDs; the chains below the best one by more, with their gaps."""
    means = log_density.mean("draw")
    spread = float(np.sqrt(log_density.var("draw").mean()))
    gaps = (means - means.max()).to_series()
    threshold = MODE_GAP_SDS * spread
    gap = float(-gaps.min())
    lower = gaps[gaps < -threshold].sort_values()
    named = pd.Series(lower.values, index=[f"chain {c} at {v:.1f}" for c, v in lower.items()], dtype=float)
    return ("modes", gap, threshold, gap <= threshold, named)


def convergence_message(table: pd.DataFrame) -> str | None:
    """One paragraph naming the failed checks of :func:`diagnose` and what to try, or None when all pass."""
    failed = table[~table["ok"]]
    if failed.empty:
        return None
    causes_first = sorted(failed.index, key=lambda check: check not in ("signs", "modes"))
    failed = failed.loc[causes_first]
    parts = []
    for check, row in failed.iterrows():
        value = f"{row.value:.3g}" if check not in ("divergent", "signs") else f"{int(row.value)}"
        if check == "r_hat":  # three decimals: 1.012 is above 1.01, which ".3g" would print as 1.01
            value = f"{row.value:.3f}"
        worst = f" ({row.worst})" if row.worst else ""
        if check == "modes":
            value, worst = f"{row.value:.1f}", f" (log density below the best chain's: {row.worst})"
        parts.append(f"{check} {value} (threshold {row.threshold:.3g}){worst}: {row.advice}")
    return "the draws may not be trustworthy: " + "; ".join(parts) + ". See fit.diagnose()."
