"""The result of fitting a mixed model: fixed effects and variance components, lme4/MCMCglmm style."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from pymlsem.results.posterior import SAMPLE_DIMS, summarize_draws

if TYPE_CHECKING:
    from pymlsem.mlm.model import MixedModel

__all__ = ["MixedFit", "varcorr_groups"]


def varcorr_groups(spec: MixedModel) -> list[str]:
    """lme4's ``grp`` of each variance-component term: an uncorrelated block counts one term per effect."""
    seen: dict[str, int] = {}
    groups = []
    for block in spec.design.blocks:
        for _ in range(1 if block.correlated else block.q):
            count = seen.get(block.group, 0)
            groups.append(block.group if count == 0 else f"{block.group}.{count}")
            seen[block.group] = count + 1
    return groups


def _pmcmc(draws: xr.DataArray) -> np.ndarray:
    """MCMCglmm's two-sided pMCMC: ``2 min(P(b > 0), P(b < 0))``, at most 1."""
    above = (draws > 0).mean(SAMPLE_DIMS).values
    below = (draws < 0).mean(SAMPLE_DIMS).values
    return np.minimum(2.0 * np.minimum(above, below), 1.0)


class MixedFit:
    """A fitted mixed model.

    Attributes
    ----------
    spec
        The :class:`~pymlsem.mlm.model.MixedModel` that was sampled.
    idata
        The posterior (ArviZ); variables ``fixef``, ``sigma``, ``sd__<label>``, ``corr__<label>``.
    sampler, chains, draws, tune
        How it was sampled.
    """

    def __init__(
        self, spec: MixedModel, idata: Any, *, sampler: str, chains: int, draws: int, tune: int
    ) -> None:
        self.spec = spec
        self.idata = idata
        self.sampler = sampler
        self.chains = chains
        self.draws = draws
        self.tune = tune

    def fixef(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior summary of the fixed effects.

        Parameters
        ----------
        prob
            Probability of the central interval (columns ``q2.5``/``q97.5`` for 0.95).

        Returns
        -------
        pandas.DataFrame
            Indexed by lme4's term names (``term``), columns ``mean, sd, q<lo>, q<hi>, r_hat, ess_bulk,
            ess_tail, pmcmc``.
        """
        if not self.spec.design.fixed_names:  # y ~ 0 + (...): no fixed effects
            return pd.DataFrame(columns=["mean", "sd", "pmcmc"], index=pd.Index([], name="term"))
        draws = self.idata.posterior["fixef"]
        table = summarize_draws(draws, prob)
        table["pmcmc"] = _pmcmc(draws)
        table.index.name = "term"
        return table

    def varcorr(self, prob: float = 0.95) -> pd.DataFrame:
        """Variance components in lme4's ``as.data.frame(VarCorr())`` layout.

        Parameters
        ----------
        prob
            Probability of the central interval of ``sdcor``.

        Returns
        -------
        pandas.DataFrame
            Columns ``grp, var1, var2, vcov, sdcor`` (posterior means of the variance/covariance and of the
            SD/correlation), then the interval, ``r_hat``, ``ess_bulk`` and ``ess_tail`` of ``sdcor``; the
            last row is ``grp="Residual"``.
        """
        posterior = self.idata.posterior
        rows: list[tuple[str, str | float, str | float]] = []
        sdcor, vcov = [], []
        groups = iter(varcorr_groups(self.spec))
        for block, label in zip(self.spec.design.blocks, self.spec.labels, strict=True):
            sd = np.asarray(posterior[f"sd__{label}"].transpose(*SAMPLE_DIMS, ...).values)
            if not block.correlated:
                for r, name in enumerate(block.names):
                    rows.append((next(groups), name, np.nan))
                    sdcor.append(sd[..., r])
                    vcov.append(sd[..., r] ** 2)
                continue
            grp = next(groups)
            for r, name in enumerate(block.names):
                rows.append((grp, name, np.nan))
                sdcor.append(sd[..., r])
                vcov.append(sd[..., r] ** 2)
            if block.q > 1:
                corr = np.asarray(posterior[f"corr__{label}"].transpose(*SAMPLE_DIMS, ...).values)
                for r in range(block.q):
                    for c in range(r + 1, block.q):
                        rows.append((grp, block.names[r], block.names[c]))
                        sdcor.append(corr[..., r, c])
                        vcov.append(corr[..., r, c] * sd[..., r] * sd[..., c])
        sigma = np.asarray(posterior["sigma"].transpose(*SAMPLE_DIMS).values)
        rows.append(("Residual", np.nan, np.nan))
        sdcor.append(sigma)
        vcov.append(sigma**2)

        def as_array(values: list[np.ndarray]) -> xr.DataArray:
            return xr.DataArray(
                np.stack(values, axis=-1), dims=(*SAMPLE_DIMS, "row"), coords={"row": np.arange(len(rows))}
            )

        summary = summarize_draws(as_array(sdcor), prob)
        table = pd.DataFrame(rows, columns=["grp", "var1", "var2"])
        table["vcov"] = as_array(vcov).mean(SAMPLE_DIMS).values
        table["sdcor"] = summary["mean"].to_numpy()
        for column in summary.columns.drop(["mean", "sd"]):
            table[column] = summary[column].to_numpy()
        return table
