"""Standardized fixed effects of mixed models (pymlsem.mlm.standardized) against R's effectsize.

effectsize's ``standardize_parameters(method = "basic")`` of an lme4 fit scales its point estimates; a
posterior of that one point must give effectsize's numbers (data/reference/effectsize/standardized_fixef.R).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from reference import REFERENCE

from pymlsem.mlm.api import mixed_model
from pymlsem.mlm.fit import MixedFit
from pymlsem.mlm.glmm_fit import GLMMFit
from tests.mlm.test_mixed_variance import load_case_data

EFFECTSIZE = pd.read_csv(REFERENCE / "effectsize" / "standardized_fixef.csv")
#: effectsize's model -> (data set, formula, family)
MODELS = {
    "sleepstudy": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", "gaussian"),
    "reading": ("reading_public", "geread ~ gevocab + (1 | school)", "gaussian"),
    "cbpp": ("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial"),
}


def _at(spec, fixef: np.ndarray) -> MixedFit:
    """A fit whose posterior is one point of the fixed effects (repeated: two chains of three draws)."""
    draws = np.broadcast_to(fixef, (2, 3, fixef.size))
    posterior = xr.Dataset({"fixef": (("chain", "draw", "term"), draws)}, coords={"term": list(fixef.index)})
    fit_class = MixedFit if spec.family == "gaussian" else GLMMFit
    return fit_class(spec, SimpleNamespace(posterior=posterior), sampler="none", chains=2, draws=3, tune=0)


@pytest.mark.parametrize("name", list(MODELS))
def test_standardized_fixed_effects_match_effectsize(name: str) -> None:
    """The response is standardized for Gaussian models and not for the binomial one (its scale is the
    log-odds), the dummy columns of a factor by their own SDs; effectsize's intercept (0) has no row."""
    source, formula, family = MODELS[name]
    spec = mixed_model(formula, load_case_data(source), family)
    expected = EFFECTSIZE[EFFECTSIZE.model == name].set_index("term")
    table = _at(spec, expected["est"]).standardized_solution()
    slopes = expected.drop(index="(Intercept)")
    assert list(table.index) == list(slopes.index)
    np.testing.assert_allclose(table["mean"], slopes["std"], rtol=1e-10)
    assert np.allclose(table["sd"], 0.0)


def test_standardized_effects_do_not_depend_on_the_units() -> None:
    """Days in hours and reaction times in seconds: every draw's standardized effect is unchanged."""
    frame = load_case_data("sleepstudy")
    spec = mixed_model("Reaction ~ Days + (Days | Subject)", frame)
    hours = frame.assign(Days=frame["Days"] * 24.0, Reaction=frame["Reaction"] / 1000.0)
    rescaled = mixed_model("Reaction ~ Days + (Days | Subject)", hours)
    rng = np.random.default_rng(1)
    draws = pd.Series([250.0, 10.0], index=["(Intercept)", "Days"]) + rng.normal(size=2)
    converted = draws * np.array([1.0, 1.0 / 24.0]) / 1000.0
    ours = _at(spec, draws).standardized_solution()
    theirs = _at(rescaled, converted).standardized_solution()
    np.testing.assert_allclose(ours["mean"], theirs["mean"], rtol=1e-12)
    # and the number itself: the slope times sd(Days) / sd(Reaction)
    expected = draws["Days"] * frame["Days"].std() / frame["Reaction"].std()
    np.testing.assert_allclose(ours.loc["Days", "mean"], expected, rtol=1e-12)


def test_a_model_without_slopes_has_an_empty_table() -> None:
    spec = mixed_model("Reaction ~ 1 + (1 | Subject)", load_case_data("sleepstudy"))
    table = _at(spec, pd.Series([250.0], index=["(Intercept)"])).standardized_solution()
    assert table.empty and table.index.name == "term"
