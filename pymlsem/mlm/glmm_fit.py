"""The fit of a non-Gaussian mixed model: as :class:`~pymlsem.mlm.fit.MixedFit`, without a residual SD."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from pymlsem.mlm.fit import MixedFit, varcorr_groups
from pymlsem.results.posterior import SAMPLE_DIMS, summarize_draws

__all__ = ["GLMMFit"]


class GLMMFit(MixedFit):
    """A fitted generalised linear mixed model (``family`` other than ``"gaussian"``).

    ``fixef()`` is on the link scale. ``varcorr()`` has no ``Residual`` row, as lme4's ``glmer``; the
    negative binomial size is in the posterior as ``theta`` and ordinal cut-points as ``cutpoints``.
    """

    @property
    def family(self) -> str:
        """The response family."""
        return self.spec.family

    def varcorr(self, prob: float = 0.95) -> pd.DataFrame:
        """Variance components in lme4's ``as.data.frame(VarCorr())`` layout, without a residual row.

        Parameters
        ----------
        prob
            Probability of the central interval of ``sdcor``.

        Returns
        -------
        pandas.DataFrame
            Columns ``grp, var1, var2, vcov, sdcor``, then the interval, ``r_hat``, ``ess_bulk`` and
            ``ess_tail`` of ``sdcor``.
        """
        posterior = self.idata.posterior
        rows: list[tuple[str, str, str | float]] = []
        sdcor: list[np.ndarray] = []
        vcov: list[np.ndarray] = []
        groups = iter(varcorr_groups(self.spec))
        for block, label in zip(self.spec.design.blocks, self.spec.labels, strict=True):
            sd = np.asarray(posterior[f"sd__{label}"].transpose(*SAMPLE_DIMS, ...).values)
            grp = next(groups)
            for r, name in enumerate(block.names):
                if not block.correlated and r > 0:
                    grp = next(groups)
                rows.append((grp, name, np.nan))
                sdcor.append(sd[..., r])
                vcov.append(sd[..., r] ** 2)
            if block.correlated and block.q > 1:
                corr = np.asarray(posterior[f"corr__{label}"].transpose(*SAMPLE_DIMS, ...).values)
                for r in range(block.q):
                    for c in range(r + 1, block.q):
                        rows.append((grp, block.names[r], block.names[c]))
                        sdcor.append(corr[..., r, c])
                        vcov.append(corr[..., r, c] * sd[..., r] * sd[..., c])

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
