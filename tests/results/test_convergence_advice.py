"""The convergence warning of a SEM names std_lv=True when the slow parameters belong to factors scaled by
a marker loading (no sampling: the fit's checks are set by hand)."""

from __future__ import annotations

import pandas as pd
from reference import ONE_FACTOR, data

import pymlsem
from pymlsem.results.fit import SEMFit


def _fit_whose_checks_name(model: str, worst: str, **kwargs) -> SEMFit:
    spec = pymlsem.SEM(model, data("HolzingerSwineford1939"), model_type="cfa", **kwargs)
    fit = SEMFit(spec, None, sampler="nutpie", chains=4, draws=1000, tune=1000)
    checks = pd.DataFrame(
        {
            "value": [1.021, 196.0, 0.0],
            "threshold": [1.01, 400.0, 0.0],
            "ok": [False, False, True],
            "worst": [worst, worst, ""],
            "advice": ["run longer chains (draws=, tune=) or more chains", "run more draws", ""],
        },
        index=pd.Index(["r_hat", "ess_bulk", "divergent"], name="check"),
    )
    fit.__dict__["_diagnosis"] = checks  # what diagnose() computes once from the draws
    return fit


def test_slow_loadings_of_a_marker_scaled_factor_suggest_std_lv() -> None:
    note = _fit_whose_checks_name(ONE_FACTOR, "parameters[g=~x4], parameters[g~~g]").convergence_note()
    assert note.startswith("the draws may not be trustworthy: r_hat 1.021 (threshold 1.01)")
    assert note.endswith("scaled by a marker loading (g): std_lv=True (lavaan's std.lv, the same model "
                         "with each factor's variance fixed at 1) often samples them better.")  # fmt: skip


def test_no_std_lv_advice_for_other_parameters_or_models_without_markers() -> None:
    residual = _fit_whose_checks_name(ONE_FACTOR, "parameters[x1~~x1]").convergence_note()
    assert "r_hat 1.021" in residual and "std_lv" not in residual
    scaled = _fit_whose_checks_name(ONE_FACTOR, "parameters[g=~x4]", std_lv=True).convergence_note()
    assert "r_hat 1.021" in scaled and "std_lv" not in scaled
    growth = "i =~ 1*x1 + 1*x2 + 1*x3\ns =~ 0*x1 + 1*x2 + 2*x3"  # loadings all fixed: no marker
    slow_growth = _fit_whose_checks_name(growth, "parameters[i~~i]").convergence_note()
    assert "r_hat 1.021" in slow_growth and "std_lv" not in slow_growth
