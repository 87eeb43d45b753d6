"""Integrated Gaussian mixed-model log-likelihood: lme4's logLik at its ML estimates, and brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
from reference import REFERENCE
from scipy.stats import multivariate_normal

from pymlsem.formula import MixedDesign, mixed_design
from pymlsem.mlm import gaussian_marginal_loglik, gaussian_stats

LME4 = REFERENCE / "lme4"
DATA = REFERENCE / "data"

# Each graph here is evaluated once: Python implementations compile in milliseconds, C takes seconds.
MODE = "FAST_COMPILE"

CASES = {
    "sleepstudy_ml": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "sleepstudy_uncorrelated_ml": ("sleepstudy", "Reaction ~ Days + (Days || Subject)"),
    "reading_public_ri_ml": ("reading_public", "geread ~ gevocab + (1 | school)"),
    "reading_public_rs_ml": ("reading_public", "geread ~ gevocab + (1 + gevocab | school)"),
}


def lme4_estimates(name: str, design: MixedDesign) -> tuple[np.ndarray, float, list[np.ndarray]]:
    """lme4's fixed effects, residual SD and per-block covariance matrices, in the design's order."""
    fixef = pd.read_csv(LME4 / f"{name}_fixef.csv").set_index("term")
    varcorr = pd.read_csv(LME4 / f"{name}_varcorr.csv")
    beta = fixef.loc[list(design.fixed_names), "est"].to_numpy()
    covs = {block.group: np.zeros((block.q, block.q)) for block in design.blocks}
    names = {block.group: block.names for block in design.blocks}
    sigma = np.nan
    for row in varcorr.itertuples():
        if row.grp == "Residual":
            sigma = row.sdcor
            continue
        group = row.grp.split(".")[0]  # lme4 names the split blocks of (x || g) g, g.1, ...
        i = names[group].index(row.var1)
        j = i if pd.isna(row.var2) else names[group].index(row.var2)
        covs[group][i, j] = covs[group][j, i] = row.vcov
    return beta, float(sigma), [covs[block.group] for block in design.blocks]


@pytest.mark.parametrize("name", list(CASES))
def test_matches_lme4_loglik_at_ml_estimates(name: str) -> None:
    data_name, formula = CASES[name]
    design = mixed_design(formula, pd.read_csv(DATA / f"{data_name}.csv"))
    beta, sigma, covs = lme4_estimates(name, design)
    stats = gaussian_stats(design)
    assert stats.layout == "clustered"
    value = gaussian_marginal_loglik(stats, beta, sigma, covs).eval(mode=MODE)
    expected = pd.read_csv(LME4 / f"{name}_loglik.csv")["logLik"].iloc[0]
    np.testing.assert_allclose(value, expected, rtol=1e-6)


def test_gradient_in_beta_vanishes_at_lme4_ml_estimates() -> None:
    design = mixed_design(CASES["sleepstudy_ml"][1], pd.read_csv(DATA / "sleepstudy.csv"))
    beta_hat, sigma, covs = lme4_estimates("sleepstudy_ml", design)
    beta = pt.vector("beta")
    loglik = gaussian_marginal_loglik(gaussian_stats(design), beta, sigma, covs)
    grad = pytensor.function([beta], pt.grad(loglik, beta), mode=MODE)
    se = pd.read_csv(LME4 / "sleepstudy_ml_fixef.csv")["se"].to_numpy()
    # the ML fixed effects are the GLS estimates: d logL / d beta = 0 (scaled by the SEs)
    assert np.all(np.abs(grad(beta_hat) * se) < 1e-5)
    assert np.all(np.abs(grad(beta_hat + se) * se) > 0.1)


def simulated_data(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 60
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "w": rng.normal(size=n),
            "g": rng.choice([f"g{k}" for k in range(5)], size=n),
            "h": rng.choice([f"h{k}" for k in range(4)], size=n),
        }
    )


def random_cov(q: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=(q, q))
    return a @ a.T + 0.3 * np.eye(q)


def _brute_force(design: MixedDesign, beta: np.ndarray, sigma: float, covs: list[np.ndarray]) -> float:
    """scipy's multivariate normal with V = sigma^2 I + sum_k [same level of factor k] * z_ik' G_k z_jk."""
    n = design.nobs
    cov = sigma**2 * np.eye(n)
    for block, g in zip(design.blocks, covs, strict=True):
        same = block.codes[:, None] == block.codes[None, :]
        cov += same * (block.z @ g @ block.z.T)
    return float(multivariate_normal(design.x @ beta, cov).logpdf(design.y))


@pytest.mark.parametrize(
    ("formula", "layout"),
    [
        ("y ~ x + (1 + x | g)", "clustered"),
        ("y ~ x * w + (1 + x | g) + (0 + w | g)", "clustered"),
        ("y ~ x + (1 + x + w || g)", "clustered"),
        ("y ~ x + (1 + x | g) + (1 | h)", "crossed"),
        ("y ~ 0 + x + (1 | g) + (1 + w | h)", "crossed"),
        ("y ~ x + (1 + x | g/h)", "nested"),
        ("y ~ 0 + (1 | g)", "clustered"),
        ("y ~ 0 + (1 | g) + (1 | h)", "crossed"),
    ],
)
def test_matches_dense_multivariate_normal(formula: str, layout: str) -> None:
    rng = np.random.default_rng(7)
    design = mixed_design(formula, simulated_data())
    beta = rng.normal(size=len(design.fixed_names))
    covs = [random_cov(block.q, rng) for block in design.blocks]
    covs = [c if b.correlated else np.diag(np.diag(c)) for c, b in zip(covs, design.blocks, strict=True)]
    stats = gaussian_stats(design)
    assert stats.layout == layout
    value = gaussian_marginal_loglik(stats, beta, 0.7, covs).eval(mode=MODE)
    np.testing.assert_allclose(value, _brute_force(design, beta, 0.7, covs), rtol=1e-10)
    chols = [np.linalg.cholesky(c) for c in covs]
    np.testing.assert_allclose(
        gaussian_marginal_loglik(stats, beta, 0.7, chols=chols).eval(mode=MODE), value, rtol=1e-12
    )


@pytest.mark.parametrize("formula", ["y ~ x + (1 + x | g)", "y ~ x + (1 + x | g) + (1 | h)"])
def test_not_positive_definite_gives_minus_inf(formula: str) -> None:
    design = mixed_design(formula, simulated_data())
    stats = gaussian_stats(design)
    beta = np.zeros(2)
    covs = [np.eye(block.q) for block in design.blocks]
    bad = [np.array([[1.0, 2.0], [2.0, 1.0]]), *covs[1:]]
    assert gaussian_marginal_loglik(stats, beta, 1.0, bad).eval(mode=MODE) == -np.inf
    assert gaussian_marginal_loglik(stats, beta, 0.0, covs).eval(mode=MODE) == -np.inf
    assert np.isfinite(gaussian_marginal_loglik(stats, beta, 1.0, covs).eval(mode=MODE))


def test_wrong_number_of_covariances() -> None:
    stats = gaussian_stats(mixed_design("y ~ x + (1 | g)", simulated_data()))
    with pytest.raises(ValueError, match="2 covariance matrices for 1 random blocks"):
        gaussian_marginal_loglik(stats, np.zeros(2), 1.0, [np.eye(1), np.eye(1)])
    with pytest.raises(ValueError, match="exactly one"):
        gaussian_marginal_loglik(stats, np.zeros(2), 1.0)
