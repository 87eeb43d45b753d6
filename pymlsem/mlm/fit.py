"""The result of fitting a mixed model: fixed effects and variance components, lme4/MCMCglmm style."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from pymlsem.diagnostics.autocorr import autocorr_array, autocorr_table
from pymlsem.diagnostics.dic import DIC, dic
from pymlsem.diagnostics.geweke import geweke_z
from pymlsem.diagnostics.pmcmc import pmcmc
from pymlsem.diagnostics.spectral import effective_size
from pymlsem.exceptions import PymlsemError
from pymlsem.mlm.parameters import MixedTheta, block_covariance_draws, mixed_loglik_function, vcv_terms
from pymlsem.mlm.predict import coef_tables, prediction_table
from pymlsem.mlm.ranef import conditional_effect_draws
from pymlsem.mlm.sampling import sample_mixed
from pymlsem.mlm.standardized import standardized_fixef_table
from pymlsem.mlm.variance import bayes_r2_table, icc_table, r_squared_table, variance_shares_table
from pymlsem.plots.clusters import plot_caterpillar, plot_cluster_lines
from pymlsem.plots.variance import plot_variance_partition
from pymlsem.results.fit_methods import FitMethods
from pymlsem.results.lme4_summary import lme4_summary
from pymlsem.results.mcmcglmm_summary import mcmcglmm_summary
from pymlsem.results.posterior import SAMPLE_DIMS, check_prob, columns, flat, group, summarize_draws
from pymlsem.sample import SamplerSettings
from pymlsem.workflow.information import data_digest
from pymlsem.workflow.mixed_loglik import gaussian_theta_draws, gaussian_total_loglik, glmm_dic
from pymlsem.workflow.pointwise import Pointwise, mixed_default_unit, mixed_fit_pointwise
from pymlsem.workflow.predictive import mixed_prior_predictive, mixed_replicated_data, posterior_predictive
from pymlsem.workflow.protocol import ParameterColumns
from pymlsem.workflow.refit import mixed_refit_spec

if TYPE_CHECKING:
    import pymc as pm

    from pymlsem.mlm.model import BuiltMixedModel

__all__ = ["MixedFit", "varcorr_groups"]


def varcorr_groups(spec: BuiltMixedModel) -> list[str]:
    """lme4's ``grp`` of each variance-component term: an uncorrelated block counts one term per effect."""
    seen: dict[str, int] = {}
    groups = []
    for block in spec.design.blocks:
        for _ in range(1 if block.correlated else block.q):
            count = seen.get(block.group, 0)
            groups.append(block.group if count == 0 else f"{block.group}.{count}")
            seen[block.group] = count + 1
    return groups


STYLES = ("mcmcglmm", "lme4")
PARTS = ("Sol", "VCV", "all")
#: posterior variables compared with their priors (``sd__<label>`` per block too)
PRIOR_VARIABLES = ("fixef", "sigma", "theta")


def _pmcmc(draws: xr.DataArray) -> np.ndarray:
    """MCMCglmm's two-sided pMCMC (chains pooled), floored at 1/n: see :func:`pymlsem.diagnostics.pmcmc`."""
    dim = [d for d in draws.dims if d not in SAMPLE_DIMS]
    pooled = draws.stack(sample=SAMPLE_DIMS).transpose("sample", *dim).values
    return pmcmc(pooled)


class MixedFit(FitMethods):
    """A fitted mixed model.

    Attributes
    ----------
    spec
        The :class:`~pymlsem.mlm.model.BuiltMixedModel` that was sampled.
    idata
        The posterior (ArviZ); variables ``fixef``, ``sigma``, ``sd__<label>``, ``corr__<label>``.
    sampler, chains, draws, tune, thin, timings, options
        How it was sampled (see :class:`~pymlsem.results.fit_methods.FitMethods`).
    """

    def __init__(self, spec: BuiltMixedModel, idata: Any, **sampled: Any) -> None:
        self.spec = spec
        super().__init__(idata, **sampled)
        self._loglik: Callable[[MixedTheta], float] | None = None
        self._ranef: dict[str, xr.DataArray] | None = None

    def _with_posterior(self, idata: Any, **sampled: Any) -> MixedFit:
        return type(self)(self.spec, idata, **sampled)

    def reported_variables(self) -> list[str]:
        """Fixed effects, standard deviations, correlations and family parameters: what :meth:`diagnose`
        checks (the random effects themselves are not reported)."""
        names = list(self.idata.posterior.data_vars)
        own = ("fixef", "sigma", "nu", "theta", "cutpoints")
        return [name for name in names if name in own or name.startswith(("sd__", "corr__"))]

    def __str__(self) -> str:
        return self.summary()

    @property
    def method(self) -> str:
        """How the random effects entered the likelihood, e.g. ``"marginal (nested Woodbury)"``.

        ``"marginal (...)"``: integrated out (one grouping factor per cluster, nested factors level by
        level, crossed factors densely); ``"latent"``: sampled explicitly, ``"latent (crossed factors)"``
        when crossed grouping factors chose that (see :func:`pymlsem.mlm.model.choose_method`).
        """
        return self.spec.likelihood

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
        check_prob(prob)
        if not self.spec.design.fixed_names:  # y ~ 0 + (...): no fixed effects
            return pd.DataFrame(columns=["mean", "sd", "pmcmc"], index=pd.Index([], name="term"))
        draws = self.idata.posterior["fixef"]
        table = summarize_draws(draws, prob)
        table["pmcmc"] = _pmcmc(draws)
        table.index.name = "term"
        return table

    def plot_caterpillar(
        self, group: str | None = None, term: str = "(Intercept)", prob: float = 0.95, path: Any = None
    ) -> Any:
        """Caterpillar plot of the cluster effects: see :func:`pymlsem.plots.plot_caterpillar`."""
        return plot_caterpillar(self, group, term, prob, path)

    def plot_cluster_lines(
        self, x: str, data: pd.DataFrame, group: str | None = None, path: Any = None
    ) -> Any:
        """Per-cluster fitted lines against ``x``: see :func:`pymlsem.plots.plot_cluster_lines`."""
        return plot_cluster_lines(self, x, data, group, path)

    def family_params(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior summary of the family's own parameters (brms's "Family Specific Parameters").

        ``sigma`` (Gaussian or Student-t residual scale), ``nu`` (Student-t degrees of freedom), ``theta``
        (negative binomial: ``var = mu + mu^2 / theta``, as glmer.nb's theta) and the ordinal cut-points
        (named ``"a|b"`` by the categories they separate, as R's ordinal package); no rows for binomial,
        bernoulli and Poisson models.

        Parameters
        ----------
        prob
            Probability of the central posterior interval.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``parameter``, columns ``mean, sd``, the interval, ``r_hat, ess_bulk, ess_tail``.
        """
        check_prob(prob)
        posterior = self.idata.posterior
        parts = []
        for name in ("sigma", "nu", "theta"):
            if name in posterior:
                parts.append(
                    posterior[name].expand_dims(parameter=[name]).transpose(*SAMPLE_DIMS, "parameter")
                )
        if "cutpoints" in posterior:
            cut = posterior["cutpoints"]
            (dim,) = [d for d in cut.dims if d not in SAMPLE_DIMS]
            parts.append(cut.rename({dim: "parameter"}).transpose(*SAMPLE_DIMS, "parameter"))
        if not parts:
            return pd.DataFrame(columns=["mean", "sd"], index=pd.Index([], name="parameter"))
        draws = xr.concat(
            [part.drop_vars(part.coords.keys() - set(SAMPLE_DIMS) - {"parameter"}) for part in parts],
            "parameter",
        )
        table = summarize_draws(draws, prob)
        table.index.name = "parameter"
        return table

    def icc(self, prob: float = 0.95) -> pd.DataFrame:
        """Intraclass correlations per grouping factor, per draw (Nakagawa et al. 2017; R's performance).

        The adjusted ICC of a factor is its random-effect variance over the random and residual variances;
        the conditional ICC adds the fixed effects' variance ``var(X beta)``. Non-Gaussian families are on
        the latent scale (``pi^2/3`` for logit, 1 for probit, the lognormal approximation for counts); a
        random slope counts with its variance at the observed covariate values. See
        :mod:`pymlsem.mlm.variance`.

        Parameters
        ----------
        prob
            Probability of the central posterior interval.

        Returns
        -------
        pandas.DataFrame
            Columns ``group`` (a grouping factor, or ``"all"`` for all together when there are several),
            ``type`` (``"adjusted"``, ``"conditional"``), ``mean, sd``, the interval, ``r_hat, ess_bulk,
            ess_tail``.
        """
        check_prob(prob)
        return icc_table(self, prob)

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        *,
        re_form: str | None = None,
        type: str = "response",
        allow_new_levels: bool = False,
        prob: float = 0.95,
    ) -> pd.DataFrame:
        """Posterior predictions of the expected response (lme4's ``predict``, brms's ``fitted``).

        Parameters
        ----------
        newdata
            Rows to predict, with the columns the formula uses (not the response); the fitted rows by
            default. Transformations and factor levels follow the fitted data.
        re_form
            ``None``: with the clusters' effects; ``"~0"``: the population level (lme4's ``re.form=NA``).
        type
            ``"response"`` (the mean, or a binomial model's probability) or ``"link"``.
        allow_new_levels
            A level the fitted data do not have gets a cluster effect of zero (otherwise an error).
        prob
            Probability of the central posterior interval.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``newdata`` (or the fitted rows), columns ``mean, sd``, the interval and the
            diagnostics; see :mod:`pymlsem.mlm.predict`.
        """
        return prediction_table(
            self, newdata, re_form=re_form, type=type, allow_new_levels=allow_new_levels, prob=prob
        )

    def fitted(self, prob: float = 0.95) -> pd.DataFrame:
        """The fitted rows' expected response, cluster effects included (lme4's ``fitted``; see predict)."""
        check_prob(prob)
        return prediction_table(self, prob=prob)

    def coef(self) -> dict[str, pd.DataFrame]:
        """lme4's ``coef()``: each cluster's coefficients, fixed effects plus its effects (posterior means).

        Returns
        -------
        dict
            Block label -> DataFrame, one row per level, one column per fixed effect.
        """
        return coef_tables(self)

    def bayes_r2(self, prob: float = 0.95) -> pd.DataFrame:
        """Bayesian R-squared (Gelman et al. 2019; brms's ``bayes_R2``): per draw, the variance of the
        expected responses over that plus the variance of the residuals (see :mod:`pymlsem.mlm.variance`).

        Parameters
        ----------
        prob
            Probability of the central posterior interval.

        Returns
        -------
        pandas.DataFrame
            One row, columns ``response, type`` (``"bayes"``), ``mean, sd``, the interval and diagnostics.
        """
        check_prob(prob)
        return bayes_r2_table(self, prob)

    def r_squared(self, prob: float = 0.95) -> pd.DataFrame:
        """Nakagawa's marginal and conditional R-squared per draw (R's performance ``r2_nakagawa``).

        Marginal: the fixed effects' share of the total latent-scale variance; conditional: the fixed and
        random effects' share (see :meth:`icc` and :mod:`pymlsem.mlm.variance`).

        Parameters
        ----------
        prob
            Probability of the central posterior interval.

        Returns
        -------
        pandas.DataFrame
            Columns ``response, type`` (``"marginal"``, ``"conditional"``), ``mean, sd``, the interval,
            ``r_hat, ess_bulk, ess_tail``.
        """
        check_prob(prob)
        return r_squared_table(self, prob)

    def variance_shares(self, prob: float = 0.95) -> pd.DataFrame:
        """Each part's share of the total latent-scale variance per draw: the fixed effects, each grouping
        factor and the residual (they sum to 1; a grouping factor's share is its conditional ICC, the fixed
        effects' the marginal R-squared; see :mod:`pymlsem.mlm.variance`).

        Parameters
        ----------
        prob
            Probability of the central posterior interval.

        Returns
        -------
        pandas.DataFrame
            Columns ``component, type`` (``"share"``), ``mean, sd``, the interval, ``r_hat, ess_bulk,
            ess_tail``.
        """
        check_prob(prob)
        return variance_shares_table(self, prob)

    def plot_variance_partition(self, prob: float = 0.95, path: Any = None) -> Any:
        """The variance partition as bars (:meth:`variance_shares`): see
        :func:`pymlsem.plots.plot_variance_partition`."""
        return plot_variance_partition(self.variance_shares(prob), prob, path)

    def standardized_solution(self, prob: float = 0.95) -> pd.DataFrame:
        """Standardized fixed effects per draw (R's ``effectsize::standardize_parameters(method="basic")``).

        Each effect times the standard deviation of its predictor column and, for a Gaussian or Student-t
        response, divided by the response's standard deviation (other families: the predictors only); see
        :mod:`pymlsem.mlm.standardized`. The SEM's :meth:`~pymlsem.results.fit.SEMFit.standardized_solution`
        answers the same question for a structural model (lavaan's ``std.all``).

        Parameters
        ----------
        prob
            Probability of the central posterior interval.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``term`` (no intercept), columns ``mean, sd``, the interval, ``r_hat, ess_bulk,
            ess_tail``.
        """
        check_prob(prob)
        return standardized_fixef_table(self, prob)

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
        check_prob(prob)
        posterior = self.idata.posterior
        rows: list[tuple[str, str | float, str | float]] = []
        sdcor, vcov = [], []
        groups = iter(varcorr_groups(self.spec))
        for block, label in zip(self.spec.design.blocks, self.spec.labels, strict=True):
            sd = np.asarray(posterior[f"sd__{label}"].transpose(*SAMPLE_DIMS, ...).values)
            # an uncorrelated block is one lme4 term per effect, a correlated one a single term
            grps = [next(groups)] * block.q if block.correlated else [next(groups) for _ in block.names]
            for r, (grp, name) in enumerate(zip(grps, block.names, strict=True)):
                rows.append((grp, name, np.nan))
                sdcor.append(sd[..., r])
                vcov.append(sd[..., r] ** 2)
            if block.correlated and block.q > 1:
                grp = grps[0]
                corr = np.asarray(posterior[f"corr__{label}"].transpose(*SAMPLE_DIMS, ...).values)
                for r in range(block.q):
                    for c in range(r + 1, block.q):
                        rows.append((grp, block.names[r], block.names[c]))
                        sdcor.append(corr[..., r, c])
                        vcov.append(corr[..., r, c] * sd[..., r] * sd[..., c])
        if "sigma" in posterior:  # Gaussian models; lme4's glmer has no residual row either
            sigma = np.asarray(posterior["sigma"].transpose(*SAMPLE_DIMS).values)
            rows.append(("Residual", np.nan, np.nan))
            sdcor.append(sigma)
            vcov.append(sigma**2)

        if not rows:  # a GLM without random terms: nothing to report
            return pd.DataFrame(columns=["grp", "var1", "var2", "vcov", "sdcor"])

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

    def ranef_draws(self, seed: int | None = 0) -> dict[str, xr.DataArray]:
        """Posterior draws of the cluster effects of each random block.

        For a model that sampled them (``method="latent"``, non-Gaussian families) these are the sampled
        ``u__<label>``; for the default marginal Gaussian model they are drawn from their conditional
        distribution given each posterior draw (:mod:`pymlsem.mlm.ranef`; ``seed`` fixes those draws). The
        result is cached on the fit.

        Returns
        -------
        dict
            Block label -> DataArray with dims ``(chain, draw, level, effect)``.
        """
        if self._ranef is None:
            posterior = self.idata.posterior
            labels = self.spec.labels
            if all(f"u__{label}" in posterior for label in labels):
                arrays = [
                    np.asarray(posterior[f"u__{label}"].transpose(*SAMPLE_DIMS, ...).values)
                    for label in labels
                ]
            elif self.spec.method == "marginal" and "sigma" in posterior:
                arrays = conditional_effect_draws(self.spec, posterior, seed=seed)
            else:
                raise PymlsemError("this fit has no cluster effects to report (no u__<label> draws)")
            self._ranef = {
                label: xr.DataArray(
                    values,
                    dims=(*SAMPLE_DIMS, "level", "effect"),
                    coords={"level": list(block.levels), "effect": list(block.names)},
                )
                for label, block, values in zip(labels, self.spec.design.blocks, arrays, strict=True)
            }
        return self._ranef

    def ranef(self, summary: bool = False, prob: float = 0.95) -> dict[str, pd.DataFrame] | pd.DataFrame:
        """Cluster effects, as lme4's ``ranef()``: posterior means per level of each grouping factor.

        Parameters
        ----------
        summary
            False: lme4's layout, a dict grouping factor -> DataFrame (levels x effects) of posterior means
            (blocks of one factor, as ``(1 | g) + (0 + x | g)``, side by side). True: one long table with
            columns ``grp, level, term, mean, sd, q<lo>, q<hi>`` (and ESS/R-hat).
        prob
            Probability of the central interval (``summary=True``).

        Returns
        -------
        dict of pandas.DataFrame, or pandas.DataFrame
        """
        check_prob(prob)
        draws = self.ranef_draws()
        if summary:
            tables = []
            for block, label in zip(self.spec.design.blocks, self.spec.labels, strict=True):
                values = draws[label].values
                flat = xr.DataArray(values.reshape(*values.shape[:2], -1), dims=(*SAMPLE_DIMS, "parameter"))
                table = summarize_draws(flat, prob).reset_index(drop=True)
                table.insert(0, "term", np.tile(block.names, block.n_levels))
                table.insert(0, "level", np.repeat(block.levels, block.q))
                table.insert(0, "grp", block.group)
                tables.append(table.reset_index(drop=True))
            return pd.concat(tables, ignore_index=True)
        out: dict[str, pd.DataFrame] = {}
        for block, label in zip(self.spec.design.blocks, self.spec.labels, strict=True):
            means = draws[label].mean(SAMPLE_DIMS).to_pandas()
            means.index.name, means.columns.name = block.group, None
            out[block.group] = (
                means if block.group not in out else pd.concat([out[block.group], means], axis=1)
            )
        return out

    # --- MCMCglmm's Sol and VCV ------------------------------------------------------------------------

    def sol_draws(self) -> xr.DataArray:
        """Fixed-effect draws as MCMCglmm's ``Sol``: dims ``(chain, draw, parameter)``."""
        names = list(self.spec.design.fixed_names)
        if not names:
            shape = (self.chains, self.draws, 0)
            return xr.DataArray(np.zeros(shape), dims=(*SAMPLE_DIMS, "parameter"), coords={"parameter": []})
        draws = self.idata.posterior["fixef"].transpose(*SAMPLE_DIMS, ...)
        return xr.DataArray(
            np.asarray(draws.values, dtype=float),
            dims=(*SAMPLE_DIMS, "parameter"),
            coords={"parameter": names},
        )

    def vcv_draws(self) -> xr.DataArray:
        """Variance-component draws as MCMCglmm's ``VCV``: dims ``(chain, draw, parameter)``.

        Columns are the elements of each random block's covariance matrix, named as MCMCglmm names them
        (``(Intercept):Days.Subject``; see :func:`pymlsem.mlm.parameters.vcv_terms`), then ``units``, the
        residual variance.
        """
        posterior = self.idata.posterior
        covs = block_covariance_draws(posterior, self.spec)
        terms = vcv_terms(self.spec)
        if "sigma" not in posterior:  # a family without a residual variance (e.g. Poisson)
            terms = [t for t in terms if t.block is not None]
        columns = [
            covs[t.block][..., t.row, t.col]
            if t.block is not None
            else np.asarray(posterior["sigma"].transpose(*SAMPLE_DIMS).values, dtype=float) ** 2
            for t in terms
        ]
        shape = (posterior.sizes["chain"], posterior.sizes["draw"], 0)  # a GLM: no variance components
        return xr.DataArray(
            np.stack(columns, axis=-1) if columns else np.zeros(shape),
            dims=(*SAMPLE_DIMS, "parameter"),
            coords={"parameter": [t.name for t in terms]},
        )

    def _parts(self, which: str) -> xr.DataArray:
        if which not in PARTS:
            raise PymlsemError(f"unknown which={which!r}; choose one of {', '.join(PARTS)}")
        if which == "Sol":
            return self.sol_draws()
        if which == "VCV":
            return self.vcv_draws()
        return xr.concat([self.sol_draws(), self.vcv_draws()], dim="parameter")

    # --- diagnostics ---------------------------------------------------------------------------------

    def autocorr(self, lags: Sequence[int] = (0, 10, 50, 100, 500), which: str = "all") -> pd.DataFrame:
        """Auto- and cross-correlations at the given lags, as coda's ``autocorr(fit$Sol)``.

        Correlations are computed per chain (each chain centred on its own mean, divisor n, as R's ``acf``)
        and averaged over chains. Lags are in iterations, as coda prints them: with thinning interval
        ``thin`` a lag must be a multiple of it; lags at or beyond the chain length are left out.

        Parameters
        ----------
        lags
            Lags in iterations.
        which
            ``"Sol"`` (fixed effects), ``"VCV"`` (variance components) or ``"all"`` (both, with the
            cross-correlations between them).

        Returns
        -------
        pandas.DataFrame
            Rows (``lag``, ``parameter``), one column per parameter: ``table.loc["Lag 10"]`` is the
            parameter x parameter matrix at lag 10 (autocorrelations on the diagonal).

        Raises
        ------
        PymlsemError
            A lag that is negative or not a multiple of the thinning interval, or an unknown ``which``.
        """
        bad = [lag for lag in lags if lag < 0 or lag % self.thin]
        if bad:
            raise PymlsemError(
                f"lags {bad} are not non-negative multiples of the thinning interval {self.thin}"
            )
        draws = self._parts(which)
        n = draws.sizes["draw"]
        kept = [int(lag) for lag in lags if lag // self.thin < n]
        array = autocorr_array(draws.values, [lag // self.thin for lag in kept])
        return autocorr_table(array, [str(name) for name in draws["parameter"].values], kept)

    def geweke(self, first: float = 0.1, last: float = 0.5, which: str = "all") -> pd.DataFrame:
        """Geweke z-scores of each parameter in each chain, as coda's ``geweke.diag``.

        Parameters
        ----------
        first, last
            Fractions of each chain compared (the first 10% against the last 50% by default).
        which
            ``"Sol"``, ``"VCV"`` or ``"all"``.

        Returns
        -------
        pandas.DataFrame
            Indexed by parameter, one column per chain; roughly standard normal at convergence.
        """
        draws = self._parts(which)
        values = draws.transpose("parameter", *SAMPLE_DIMS).values
        table = pd.DataFrame(
            [[geweke_z(chain, first, last) for chain in parameter] for parameter in values],
            index=pd.Index([str(name) for name in draws["parameter"].values], name="parameter"),
            columns=pd.Index(range(values.shape[1]), name="chain"),
        )
        return table

    def diagnostics(self, which: str = "all") -> pd.DataFrame:
        """Bulk and tail ESS and R-hat (ArviZ) and coda's effective size of every parameter.

        Parameters
        ----------
        which
            ``"Sol"``, ``"VCV"`` or ``"all"``.

        Returns
        -------
        pandas.DataFrame
            Indexed by parameter, columns ``mean, sd, ess_bulk, ess_tail, r_hat, eff.samp``.
        """
        draws = self._parts(which)
        table = summarize_draws(draws)[["mean", "sd", "ess_bulk", "ess_tail", "r_hat"]]
        values = draws.transpose("parameter", *SAMPLE_DIMS).values
        table["eff.samp"] = [effective_size(parameter) for parameter in values]
        return table

    def dic(self) -> DIC:
        """Deviance information criterion of the marginal likelihood (random effects integrated out).

        Non-Gaussian families have no closed-form marginal likelihood: their DIC is conditional on the
        random effects, as MCMCglmm's (:func:`pymlsem.workflow.mixed_loglik.glmm_dic`).

        ``DIC = Dbar + pD`` with ``Dbar`` the posterior mean of ``-2 log p(y | beta, G, sigma)`` and
        ``pD = Dbar - D(theta_bar)``, ``theta_bar`` the posterior means of the fixed effects, of each
        random block's covariance matrix and of the residual variance (MCMCglmm plugs in the means of
        ``Sol`` and ``VCV``). MCMCglmm's own DIC is conditional on the random effects, so the two differ
        in ``pD``; this one is invariant to how the random effects are parameterised.

        Returns
        -------
        DIC
            ``dic``, ``dbar``, ``dhat``, ``pd``.
        """
        if getattr(self.spec, "family", "gaussian") != "gaussian" or not self.spec.design.blocks:
            return glmm_dic(self)
        if "sigma" not in self.idata.posterior:
            raise PymlsemError("dic() needs the residual SD sigma in the posterior")
        if self._loglik is None:
            self._loglik = mixed_loglik_function(self.spec)
        posterior = self.idata.posterior
        covs = block_covariance_draws(posterior, self.spec)
        sigma = np.asarray(posterior["sigma"].transpose(*SAMPLE_DIMS).values, dtype=float).reshape(-1)
        beta = self.sol_draws().values.reshape(sigma.size, -1)
        flat = [cov.reshape(sigma.size, *cov.shape[-2:]) for cov in covs]
        draws = (MixedTheta(beta[i], sigma[i], tuple(cov[i] for cov in flat)) for i in range(sigma.size))
        mean = MixedTheta(
            beta.mean(axis=0), float(np.sqrt((sigma**2).mean())), tuple(cov.mean(axis=0) for cov in flat)
        )
        return dic(self._loglik, draws, mean)

    # --- Bayesian workflow: information criteria, predictive draws, prior sensitivity, refits ----------

    def posterior_predictive(
        self, n_draws: int | None = 500, seed: int | None = None, random_effects: str = "fitted"
    ) -> Any:
        """Replicated responses stored as the ``posterior_predictive`` group (variable ``y``).

        See :func:`pymlsem.workflow.predictive.posterior_predictive`; ``random_effects="new"`` draws new
        cluster effects instead of each draw's.
        """

        return posterior_predictive(self, n_draws, seed, random_effects=random_effects)

    def prior_predictive(self, n_draws: int = 500, seed: int | None = None) -> Any:
        """Prior draws and replicated responses, stored as the ``prior`` and ``prior_predictive`` groups."""

        tree = mixed_prior_predictive(self.spec, n_draws, seed)
        for name in ("prior", "prior_predictive"):
            self.idata[name] = tree[name].to_dataset()
        return self.idata

    # --- what the workflow tools and plots ask of a fit (pymlsem.workflow.protocol.Fitted) -------------

    @property
    def pymc_model(self) -> pm.Model:
        """The mixed model's PyMC model."""
        return self.spec.model

    def default_unit(self) -> str:
        """``"cluster"`` for a Gaussian model with one or nested grouping factors, else ``"observation"``."""
        return mixed_default_unit(self.spec)

    def pointwise_log_likelihood(self, unit: str) -> Pointwise:
        """The log-likelihood of every draw by cluster or by row
        (:func:`pymlsem.workflow.pointwise.mixed_fit_pointwise`)."""
        return mixed_fit_pointwise(self, unit)

    def total_log_likelihood(self) -> np.ndarray | None:
        """The marginal log-likelihood of all the data per draw for a Gaussian model whose pointwise one is by
        row (crossed factors: one marginal density is far cheaper than a density per row); else None."""
        if self.spec.family != "gaussian" or self.default_unit() != "observation":
            return None
        return gaussian_total_loglik(self.spec, *gaussian_theta_draws(self.spec, self.idata.posterior))

    def replicated_data(
        self, posterior: xr.Dataset, seed: int | None, random_effects: str
    ) -> tuple[xr.Dataset, xr.Dataset]:
        """Replicated responses (:func:`pymlsem.workflow.predictive.mixed_replicated_data`)."""
        return mixed_replicated_data(self.spec, posterior, seed, random_effects)

    def replicated_variables(self, available: Sequence[str]) -> list[str]:
        """Every replicated variable (the response ``y``)."""
        return list(available)

    def observed_values(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """The observed response ``y`` (the only replicated variable)."""
        response = self.spec.response
        return {"y": np.asarray(self.spec.design.y if response is None else response.y, dtype=float)}

    def data_identity(self) -> tuple[tuple[str, ...], int, str]:
        """The response, the number of rows and a digest of the responses and the first grouping factor."""
        design, response = self.spec.design, self.spec.response
        y = design.y if response is None else response.y
        return (design.response,), design.nobs, data_digest(y, *(block.codes for block in design.blocks[:1]))

    def parameter_draws(self) -> xr.DataArray:
        """MCMCglmm's ``Sol`` and ``VCV`` columns (fixed effects, then variance components)."""
        return xr.concat([self.sol_draws(), self.vcv_draws()], dim="parameter")

    def parameter_columns(self) -> ParameterColumns:
        """:meth:`parameter_draws` as plot columns, each named by its own name; the fixed effects by default
        (the variance components when there are none)."""
        draws = self.parameter_draws().transpose(*SAMPLE_DIMS, "parameter")
        names = [str(name) for name in draws["parameter"].values]
        n_fixed = len(self.spec.design.fixed_names)
        default = list(range(n_fixed)) if n_fixed else list(range(len(names)))
        return columns(draws.values, names), {name: [i] for i, name in enumerate(names)}, default

    def parameter_priors(self) -> dict[str, str]:
        """Empty: the priors are set on the model's own parameters (:meth:`prior_variables`), not on
        MCMCglmm's ``Sol``/``VCV`` columns."""
        return {}

    def prior_variables(self) -> list[str]:
        """The posterior variables with a prior: ``fixef``, ``sigma``, ``theta`` and ``sd__<label>`` (those
        the model has)."""
        posterior = group(self.idata, "posterior")
        named = self.spec.model.named_vars
        wanted = [*PRIOR_VARIABLES, *(f"sd__{label}" for label in self.spec.labels)]
        return [name for name in wanted if name in posterior and name in named]

    def prior_columns(self, source: xr.Dataset) -> ParameterColumns:
        """:meth:`prior_variables` of ``source`` as columns: ``fixef`` by term, ``sd__<label>[effect]``,
        ``sigma``, ``theta``; each variable also selects all its columns by its name. All by default."""
        variables = self.prior_variables()
        blocks = dict(zip(self.spec.labels, self.spec.design.blocks, strict=True))
        parts, names = [], []
        for name in variables:
            values = flat(source[name])
            if name == "fixef":
                labels = list(self.spec.design.fixed_names)
            elif name.startswith("sd__"):
                labels = [f"{name}[{effect}]" for effect in blocks[name[4:]].names]
            elif values.shape[-1] == 1:
                labels = [name]
            else:
                labels = [f"{name}[{k}]" for k in range(values.shape[-1])]
            parts.append(values)
            names += labels
        lookup = {label: [i] for i, label in enumerate(names)}
        start = 0
        for name, values in zip(variables, parts, strict=True):
            lookup.setdefault(name, list(range(start, start + values.shape[-1])))
            start += values.shape[-1]
        return columns(np.concatenate(parts, axis=-1), names), lookup, list(range(len(names)))

    def fit_with_priors(self, priors: Mapping[str, str | float], settings: SamplerSettings) -> MixedFit:
        """The same model with the priors ``priors`` changed
        (:func:`pymlsem.workflow.refit.mixed_refit_spec`), sampled with ``settings``."""
        spec = mixed_refit_spec(self.spec, priors)
        idata, timings = sample_mixed(spec, settings)
        return type(self)(spec, idata, **settings.fit_record(thin=True), timings=timings)

    # --- printouts and plots --------------------------------------------------------------------------

    def summary(self, style: str = "mcmcglmm", prob: float = 0.95) -> str:
        """A printout like MCMCglmm's ``summary(model)`` or lme4's ``summary(lmer(...))``.

        Parameters
        ----------
        style
            ``"mcmcglmm"`` (HPD intervals, effective sizes, pMCMC, DIC) or ``"lme4"`` (random effects with
            variances, SDs and correlations; fixed effects with posterior mean, SD and interval).
        prob
            Probability of the intervals.

        Returns
        -------
        str

        Raises
        ------
        PymlsemError
            An unknown style.
        """
        check_prob(prob)
        if style == "mcmcglmm":
            return mcmcglmm_summary(self, prob) + f"\n Likelihood: {self.method}\n"
        if style == "lme4":
            return lme4_summary(self, prob) + f"\nLikelihood: {self.method}\n"
        raise PymlsemError(f"unknown summary style {style!r}; choose one of {', '.join(STYLES)}")
