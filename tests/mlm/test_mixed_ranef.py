"""Cluster effects of marginal Gaussian mixed models (``MixedFit.ranef``) against closed forms.

No sampling: the conditional distribution of the random effects at a parameter value is checked against the
textbook formulas (BLUP ``G Z' V^-1 (y - X b)`` and ``Cov = G - G Z' V^-1 Z G``), built densely with n x n
matrices, for one grouping factor (per-cluster path) and for crossed factors (dense path).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import xarray as xr
from reference import REFERENCE

from pymlsem.exceptions import PymlsemError
from pymlsem.formula import mixed_design
from pymlsem.mlm.api import mixed_model
from pymlsem.mlm.fit import MixedFit
from pymlsem.mlm.ranef import conditional_effects
from pymlsem.mlm.stats import gaussian_stats, sparse_z
from tests.mlm.test_mixed_loglik import CASES, lme4_estimates

DATA = REFERENCE / "data"


def closed_form(design, beta, sigma, covs):
    """BLUPs and their conditional covariance from the n x n marginal covariance."""
    z = sparse_z(design).toarray()
    g = scipy.linalg.block_diag(
        *[np.kron(np.eye(b.n_levels), c) for b, c in zip(design.blocks, covs, strict=True)]
    )
    v = z @ g @ z.T + sigma**2 * np.eye(design.nobs)
    gz_vinv = np.linalg.solve(v, z @ g).T
    mean = gz_vinv @ (design.y - design.x @ beta)
    cov = g - gz_vinv @ z @ g
    return mean, cov


def flat_effects(effects: list[np.ndarray]) -> np.ndarray:
    """Stack per-block (S, levels, q) arrays in Z's column order (block, level, effect)."""
    return np.concatenate([e.reshape(e.shape[0], -1) for e in effects], axis=1)


def _crossed():
    data = pd.read_csv(DATA / "grouseticks.csv")
    design = mixed_design("np.log1p(TICKS) ~ YEAR + (1 | BROOD) + (1 | LOCATION)", data)
    beta = np.linspace(0.5, 1.0, design.x.shape[1])
    return design, beta, 0.7, [np.array([[0.6]]), np.array([[0.3]])]


def _sleepstudy():
    name = "sleepstudy_ml"
    design = mixed_design(CASES[name][1], pd.read_csv(DATA / "sleepstudy.csv"))
    beta, sigma, covs = lme4_estimates(name, design)
    return design, beta, sigma, covs


@pytest.mark.parametrize("case", [_sleepstudy, _crossed], ids=["one factor", "crossed factors"])
def test_conditional_means_are_the_blups(case) -> None:
    design, beta, sigma, covs = case()
    stats = gaussian_stats(design)
    ours = conditional_effects(stats, beta[None], np.array([sigma]), [c[None] for c in covs])
    mean, _ = closed_form(design, beta, sigma, covs)
    np.testing.assert_allclose(flat_effects(ours)[0], mean, rtol=1e-7, atol=1e-9 * np.abs(mean).max())


@pytest.mark.parametrize("case", [_sleepstudy, _crossed], ids=["one factor", "crossed factors"])
def test_conditional_draws_have_the_conditional_covariance(case) -> None:
    design, beta, sigma, covs = case()
    stats = gaussian_stats(design)
    n_draws = 4000 if gaussian_stats(design).layout == "clustered" else 400
    draws = conditional_effects(
        stats,
        np.repeat(beta[None], n_draws, axis=0),
        np.full(n_draws, sigma),
        [np.repeat(c[None], n_draws, axis=0) for c in covs],
        np.random.default_rng(5),
    )
    mean, cov = closed_form(design, beta, sigma, covs)
    flat = flat_effects(draws)
    sd = np.sqrt(np.diag(cov))
    # Monte Carlo: the mean of n draws is off by about sd / sqrt(n), a variance by about sqrt(2 / n)
    z = (flat.mean(axis=0) - mean) / (sd / np.sqrt(n_draws))
    assert np.abs(z).max() < 4.5
    ratio = flat.var(axis=0, ddof=1) / sd**2
    assert np.abs(ratio - 1).max() < 6 * np.sqrt(2 / n_draws)


def _stand_in_fit(method: str = "marginal") -> MixedFit:
    data = pd.read_csv(DATA / "sleepstudy.csv")
    spec = mixed_model("Reaction ~ Days + (Days | Subject)", data, method=method)
    beta, sigma, covs = lme4_estimates("sleepstudy_ml", spec.design)
    sd = np.sqrt(np.diag(covs[0]))
    shape = (2, 3)
    posterior = xr.Dataset(
        {
            "fixef": (("chain", "draw", "term"), np.broadcast_to(beta, (*shape, beta.size))),
            "sigma": (("chain", "draw"), np.full(shape, sigma)),
            "sd__Subject": (("chain", "draw", "e"), np.broadcast_to(sd, (*shape, 2))),
            "corr__Subject": (
                ("chain", "draw", "e", "e_"),
                np.broadcast_to(covs[0] / np.outer(sd, sd), (*shape, 2, 2)),
            ),
        }
    )
    return MixedFit(spec, SimpleNamespace(posterior=posterior), sampler="nutpie", chains=2, draws=3, tune=0)


def test_ranef_has_lme4s_layout() -> None:
    fit = _stand_in_fit()
    table = fit.ranef()
    assert list(table) == ["Subject"]
    frame = table["Subject"]
    assert list(frame.columns) == ["(Intercept)", "Days"]
    assert frame.shape == (18, 2)
    # lme4's conditional modes sum to zero over subjects (balanced design, intercept in the model)
    assert abs(frame["(Intercept)"].mean()) < 3.0 and abs(frame["Days"].mean()) < 1.0
    long = fit.ranef(summary=True)
    assert list(long.columns[:5]) == ["grp", "level", "term", "mean", "sd"]
    assert len(long) == 36
    np.testing.assert_allclose(long["mean"].to_numpy(), frame.to_numpy().ravel())
    assert fit.ranef_draws() is fit.ranef_draws()  # drawn once, cached


def test_ranef_without_effects_is_our_error() -> None:
    fit = _stand_in_fit(method="latent")
    with pytest.raises(PymlsemError, match="no cluster effects"):
        fit.ranef()
