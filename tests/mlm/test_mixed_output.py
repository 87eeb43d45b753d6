"""MCMCglmm- and lme4-style output, diagnostics and plots of MixedFit on hand-made draws (no sampling)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import multivariate_normal

from pymlsem.diagnostics import hpd_interval
from pymlsem.exceptions import PymlsemError
from pymlsem.mlm.api import mixed_model
from pymlsem.mlm.fit import MixedFit
from pymlsem.mlm.model import BuiltMixedModel
from pymlsem.results.mcmcglmm_summary import format_number, mcmcglmm_table
from tests.diagnostics.test_diagnostics import ar1


def output_data(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "g": rng.choice(list("abcdef"), n),
            "h": rng.choice(list("uvw"), n),
        }
    )


def fit_output(
    spec: BuiltMixedModel,
    *,
    chains: int = 2,
    draws: int = 400,
    seed: int = 0,
    fixef_center: float = 0.0,
    rho: float = 0.0,
    thin: int = 1,
    tune: int = 0,
) -> MixedFit:
    """A MixedFit whose posterior is hand-made: fixed effects AR(1) with coefficient ``rho``."""
    rng = np.random.default_rng(seed)
    design = spec.design
    p = len(design.fixed_names)
    fixef = fixef_center + ar1(rng, rho, (chains, p, draws)).transpose(0, 2, 1) * np.sqrt(1 - rho**2)
    posterior = {
        "fixef": xr.DataArray(
            fixef, dims=("chain", "draw", "term"), coords={"term": list(design.fixed_names)}
        ),
        "sigma": xr.DataArray(rng.gamma(20.0, 0.05, size=(chains, draws)), dims=("chain", "draw")),
    }
    for block, label in zip(design.blocks, spec.labels, strict=True):
        dim = f"{label}__effect"
        posterior[f"sd__{label}"] = xr.DataArray(
            rng.gamma(20.0, 0.03, size=(chains, draws, block.q)), dims=("chain", "draw", dim)
        )
        if block.correlated and block.q > 1:
            corr = np.broadcast_to(np.eye(block.q), (chains, draws, block.q, block.q)).copy()
            corr[..., 0, 1] = corr[..., 1, 0] = rng.uniform(-0.5, 0.9, size=(chains, draws))
            posterior[f"corr__{label}"] = xr.DataArray(corr, dims=("chain", "draw", dim, f"{dim}_"))
    idata = types.SimpleNamespace(posterior=xr.Dataset(posterior))
    return MixedFit(spec, idata, sampler="none", chains=chains, draws=draws, tune=tune, thin=thin)


@pytest.fixture(scope="module")
def correlated() -> BuiltMixedModel:
    return mixed_model("y ~ x + (1 + x | g)", output_data())


# --- MCMCglmm's VCV ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "names"),
    [
        ("y ~ x + (1 + x | g)", ["(Intercept):(Intercept).g", "x:(Intercept).g", "(Intercept):x.g", "x:x.g"]),
        ("y ~ x + (1 + x || g)", ["(Intercept).g", "x.g"]),
        ("y ~ x + (1 | g) + (1 | h)", ["g", "h"]),
    ],
)
def test_vcv_names_follow_mcmcglmm(formula: str, names: list[str]) -> None:
    fit = fit_output(mixed_model(formula, output_data()))
    assert list(fit.vcv_draws()["parameter"].values) == [*names, "units"]


def test_vcv_values(correlated: BuiltMixedModel) -> None:
    fit = fit_output(correlated)
    vcv = fit.vcv_draws()
    post = fit.idata.posterior
    sd, corr = post["sd__g"].values, post["corr__g"].values
    np.testing.assert_allclose(vcv.sel(parameter="x:x.g"), sd[..., 1] ** 2)
    np.testing.assert_allclose(
        vcv.sel(parameter="x:(Intercept).g"), corr[..., 0, 1] * sd[..., 0] * sd[..., 1]
    )
    np.testing.assert_allclose(vcv.sel(parameter="units"), post["sigma"].values ** 2)


# --- summary(style="mcmcglmm") -----------------------------------------------------------------------


def test_mcmcglmm_summary_sections(correlated: BuiltMixedModel) -> None:
    fit = fit_output(correlated, chains=1, draws=1000, tune=3000, thin=10, fixef_center=40.0)
    text = fit.summary()
    assert text == str(fit)
    for piece in (
        "Iterations = 3001:12991",
        "Thinning interval  = 10",
        "Sample size  = 1000",
        "DIC:",
        "G-structure:  ~us(1 + x):g",
        "(Intercept):(Intercept).g",
        "R-structure:  ~units",
        "Location effects: y ~ x + (1 + x | g)",
        "post.mean",
        "l-95% CI",
        "eff.samp",
        "pMCMC",
        "Signif. codes",
    ):
        assert piece in text, piece
    units = fit.vcv_draws().sel(parameter="units").values.mean()
    assert format_number(units) in text.split("R-structure")[1]
    stars = [line.split()[-2:] for line in text.splitlines() if line.startswith(("(Intercept) ", "x "))]
    assert stars == [["<0.001", "***"]] * 2  # pMCMC = 1/1000 for effects far from zero


def test_mcmcglmm_table_values(correlated: BuiltMixedModel) -> None:
    fit = fit_output(correlated, draws=500, fixef_center=40.0)
    sol = fit.sol_draws()
    table = mcmcglmm_table(sol, with_pmcmc=True)
    pooled = sol.values.reshape(-1, 2)
    np.testing.assert_allclose(table["post.mean"], pooled.mean(axis=0))
    np.testing.assert_allclose(table[["l-95% CI", "u-95% CI"]], hpd_interval(pooled))
    np.testing.assert_allclose(table["pMCMC"], 1 / 1000)
    np.testing.assert_allclose(table["eff.samp"], 1000, rtol=0.15)  # iid draws


def test_summary_rejects_unknown_style(correlated: BuiltMixedModel) -> None:
    with pytest.raises(PymlsemError, match="style"):
        fit_output(correlated).summary(style="brms")


# --- summary(style="lme4") ---------------------------------------------------------------------------


def test_family_params_of_gaussian_and_negative_binomial_fits(correlated: BuiltMixedModel) -> None:
    fit = fit_output(correlated)
    table = fit.family_params()
    assert list(table.index) == ["sigma"]
    assert table.loc["sigma", "mean"] == pytest.approx(float(fit.idata.posterior["sigma"].mean()))
    assert "Family parameters:" not in fit.summary(style="lme4")  # sigma is the Residual row
    rng = np.random.default_rng(2)
    data = pd.DataFrame(
        {"count": rng.poisson(3.0, 60), "x": rng.normal(size=60), "g": np.repeat(list("abcdef"), 10)}
    )
    spec = mixed_model("count ~ x + (1 | g)", data, "negbinomial")
    theta = rng.gamma(50.0, 0.1, size=(2, 40))
    posterior = xr.Dataset(
        {
            "fixef": (("chain", "draw", "term"), rng.normal(size=(2, 40, 2))),
            "sd__g": (("chain", "draw", "e"), rng.gamma(20.0, 0.03, size=(2, 40, 1))),
            "u__g": (("chain", "draw", "level", "e"), rng.normal(size=(2, 40, 6, 1))),
            "theta": (("chain", "draw"), theta),
        }
    )
    nb = MixedFit(
        spec, types.SimpleNamespace(posterior=posterior), sampler="none", chains=2, draws=40, tune=0
    )
    assert list(nb.family_params().index) == ["theta"]
    assert nb.family_params().loc["theta", "mean"] == pytest.approx(theta.mean())
    text = nb.summary(style="lme4")
    assert (
        text.startswith("Bayesian generalized linear mixed model") and "Family: negbinomial  ( log )" in text
    )
    block = text.splitlines()[text.splitlines().index("Family parameters:") + 2]
    assert block.split()[0] == "theta"


def test_lme4_summary(correlated: BuiltMixedModel) -> None:
    fit = fit_output(correlated, fixef_center=3.0)
    text = fit.summary(style="lme4")
    assert text.startswith("Bayesian linear mixed model")
    lines = text.splitlines()
    assert "Random effects:" in lines and "Fixed effects:" in lines
    header = lines[lines.index("Random effects:") + 1].split()
    assert header == ["Groups", "Name", "Variance", "Std.Dev.", "Corr"]
    varcorr = fit.varcorr()
    corr = varcorr["sdcor"].iloc[2]
    x_row = next(line for line in lines if line.split()[:1] == ["x"])
    assert x_row.split()[-1] == format_number(corr, 2)
    assert "Number of obs: 60, groups:  g, 6" in text
    fixed = lines[lines.index("Fixed effects:") + 1].split()
    assert fixed == ["Estimate", "Est.Error", "l-95%", "CI", "u-95%", "CI"]
    intercept = next(line for line in lines if line.startswith("(Intercept)"))
    assert intercept.split()[1] == format_number(fit.fixef()["mean"].iloc[0])


# --- diagnostics -------------------------------------------------------------------------------------


def test_autocorr_of_ar1_fixed_effects(correlated: BuiltMixedModel) -> None:
    rho = 0.7
    fit = fit_output(correlated, chains=2, draws=8000, rho=rho, thin=10)
    table = fit.autocorr(lags=(0, 10, 30, 500000), which="Sol")
    assert list(table.index.get_level_values("lag").unique()) == ["Lag 0", "Lag 10", "Lag 30"]
    for label, lag in (("Lag 0", 0), ("Lag 10", 1), ("Lag 30", 3)):
        np.testing.assert_allclose(np.diag(table.loc[label]), rho**lag, atol=0.05)
    everything = fit.autocorr(lags=(0,))
    assert list(everything.columns) == ["(Intercept)", "x", *fit.vcv_draws()["parameter"].values]
    with pytest.raises(PymlsemError, match="thinning interval"):
        fit.autocorr(lags=(0, 15))


def test_geweke_and_diagnostics(correlated: BuiltMixedModel) -> None:
    fit = fit_output(correlated, chains=2, draws=1000)
    z = fit.geweke()
    assert z.shape == (2 + 5, 2)
    assert np.all(np.abs(z.to_numpy()) < 5)
    fit.idata.posterior["fixef"][..., 0] += np.linspace(0, 10, 1000)  # a trend in the intercept
    assert np.all(np.abs(fit.geweke(which="Sol").loc["(Intercept)"]) > 4)
    table = fit.diagnostics()
    assert {"ess_bulk", "ess_tail", "r_hat", "eff.samp"} <= set(table.columns)
    assert table.loc["(Intercept)", "r_hat"] > 1.5  # two chains, one trend: not mixed
    np.testing.assert_allclose(table.loc["units", "eff.samp"], 2000, rtol=0.15)


def _marginal_loglik_by_hand(spec: BuiltMixedModel, beta, sigma, covs) -> float:
    design = spec.design
    v = sigma**2 * np.eye(design.nobs)
    for block, cov in zip(design.blocks, covs, strict=True):
        same = block.codes[:, None] == block.codes[None, :]
        v += (block.z @ cov @ block.z.T) * same
    return float(multivariate_normal(design.x @ beta, v).logpdf(design.y))


@pytest.mark.parametrize("formula", ["y ~ x + (1 + x | g)", "y ~ x + (1 | g) + (1 | h)"])
def test_dic_is_mean_deviance_plus_pd(formula: str) -> None:
    spec = mixed_model(formula, output_data(30, seed=3))
    fit = fit_output(spec, chains=1, draws=12)
    post = fit.idata.posterior
    beta = post["fixef"].values[0]
    sigma = post["sigma"].values[0]
    covs = []
    for block, label in zip(spec.design.blocks, spec.labels, strict=True):
        sd = post[f"sd__{label}"].values[0]
        corr = post[f"corr__{label}"].values[0] if block.q > 1 else np.ones((12, 1, 1))
        covs.append(corr * sd[:, :, None] * sd[:, None, :])
    deviance = [
        -2 * _marginal_loglik_by_hand(spec, beta[i], sigma[i], [c[i] for c in covs]) for i in range(12)
    ]
    dhat = -2 * _marginal_loglik_by_hand(
        spec, beta.mean(0), np.sqrt((sigma**2).mean()), [c.mean(0) for c in covs]
    )
    result = fit.dic()
    np.testing.assert_allclose(result.dbar, np.mean(deviance), rtol=1e-9)
    np.testing.assert_allclose(result.dhat, dhat, rtol=1e-9)
    np.testing.assert_allclose(result.dic, 2 * np.mean(deviance) - dhat, rtol=1e-9)


# --- plots -------------------------------------------------------------------------------------------


def test_plot_writes_png(correlated: BuiltMixedModel, tmp_path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    fit = fit_output(correlated, draws=100)
    path = tmp_path / "trace.png"
    fig = fit.plot(path=path)
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 2 * 2
    fig = fit.plot(var_names=["x:x.g", "units"])
    assert [ax.get_title() for ax in fig.axes][::2] == ["Trace of x:x.g", "Trace of units"]
    with pytest.raises(PymlsemError, match="no parameter"):
        fit.plot(var_names=["slope"])
    matplotlib.pyplot.close("all")


def test_plot_without_matplotlib(correlated: BuiltMixedModel, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        fit_output(correlated, draws=20).plot()


def test_output_without_residual_variance(correlated: BuiltMixedModel) -> None:
    """A posterior without a residual SD: no ``units`` column, no R-structure, no (Gaussian) DIC."""
    fit = fit_output(correlated, draws=50)
    fit.idata.posterior = fit.idata.posterior.drop_vars("sigma")
    assert "units" not in fit.vcv_draws()["parameter"].values
    with pytest.raises(PymlsemError, match="residual SD sigma"):
        fit.dic()
    text = fit.summary()
    assert "DIC: not available" in text and "R-structure" not in text and "G-structure" in text
