"""Post-fit terms over draws (IRT and latent class fits): batched, without C, equal to one draw at a time."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr
from scipy import special

from pymlsem.build.categorical import softplus
from pymlsem.results.checked_draws import DRAWS_PER_CALL, CheckedDraws


class _Draws(CheckedDraws):
    def __init__(self, posterior: xr.Dataset):
        self.idata = type("Idata", (), {"posterior": posterior})()
        self._cache = {}


def _terms(inputs: dict) -> dict:
    # a person x class table per draw, as the latent class terms: log-sum-exp and softmax over classes
    table = pt.log(inputs["share"])[None, :] + pt.as_tensor(np.arange(12.0).reshape(4, 3)) @ inputs["weight"]
    return {
        "loglik": pt.logsumexp(table, axis=1),
        "membership": pt.special.softmax(table, axis=1),
        "spread": softplus(inputs["weight"]).sum(),
    }


def test_batched_terms_equal_each_draws_and_compile_no_c() -> None:
    rng = np.random.default_rng(4)
    chains, draws = 3, 2 * DRAWS_PER_CALL // 3 + 7  # the draws do not fill the last batch
    share = rng.dirichlet(np.ones(3), size=(chains, draws))
    weight = rng.normal(size=(chains, draws, 3, 3))
    posterior = xr.Dataset(
        {
            "share": (("chain", "draw", "class"), share),
            "weight": (("chain", "draw", "row", "class"), weight),
        }
    )
    with pytensor.config.change_flags(cxx="/nonexistent/c-compiler"):  # any C compile would fail
        values = _Draws(posterior)._over_draws(
            ["share", "weight"], _terms, ["loglik", "membership", "spread"]
        )
    flat_share, flat_weight = share.reshape(-1, 3), weight.reshape(-1, 3, 3)
    table = np.log(flat_share)[:, None, :] + np.einsum(
        "ij,sjk->sik", np.arange(12.0).reshape(4, 3), flat_weight
    )
    assert values["loglik"].shape == (chains * draws, 4)
    np.testing.assert_allclose(values["loglik"], special.logsumexp(table, axis=2), rtol=1e-13)
    np.testing.assert_allclose(values["membership"], special.softmax(table, axis=2).mean(axis=0), rtol=1e-13)
    spread = np.logaddexp(0.0, flat_weight).sum(axis=(1, 2)).mean()
    assert float(values["spread"]) == pytest.approx(spread, rel=1e-13)


def test_softplus_equals_numpy_in_both_tails_with_its_gradient() -> None:
    x = np.concatenate([np.linspace(-800.0, 800.0, 161), [-37.5, -1e-300, 0.0, 18.5, 33.5]])
    v = pt.dvector("x")
    value = softplus(v)
    f = pytensor.function([v], [value, pytensor.grad(value.sum(), v)], mode="FAST_COMPILE")
    got, grad = f(x)
    np.testing.assert_allclose(got, np.logaddexp(0.0, x), rtol=2e-16, atol=0.0)
    np.testing.assert_allclose(grad, special.expit(x), rtol=1e-15, atol=1e-300)
