"""The README's mixed-model, latent class and IRT examples run as written (with short chains): every method
they show exists and returns, on the data sets they name."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pymlsem

README = Path(__file__).parent.parent / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


@pytest.mark.sampling
def test_readme_mixed_model_example_runs(monkeypatch, tmp_path) -> None:
    (block,) = [b for b in _python_blocks() if 'sleepstudy = load_dataset("sleepstudy")' in b]
    real = pymlsem.mixed

    def short(*args, **kwargs):  # the README's calls with short chains (MCMCglmm's controls scaled down)
        if "nitt" in kwargs:
            kwargs.update(nitt=1300, burnin=300, thin=10)
        else:
            kwargs = {"draws": 100, "tune": 100, **kwargs}
        return real(*args, chains=2, progressbar=False, **kwargs)

    monkeypatch.setattr(pymlsem, "mixed", short)
    real_fit = pymlsem.MixedModel.fit
    short_run = {"draws": 100, "tune": 100, "chains": 2, "progressbar": False}
    monkeypatch.setattr(pymlsem.MixedModel, "fit", lambda self, **k: real_fit(self, **{**short_run, **k}))
    power = pymlsem.power_sim
    monkeypatch.setattr(
        pymlsem,
        "power_sim",
        lambda *a, **k: power(*a, **{**k, "nsim": 2, "draws": 100, "tune": 100, "chains": 2}),
    )
    monkeypatch.chdir(tmp_path)  # fit.plot(path="trace.png") writes there
    namespace = {
        "pymlsem": pymlsem,  # the block loads sleepstudy, cbpp and grouseticks itself
        "newdata": pd.DataFrame({"Days": [0, 5], "Subject": ["308", "309"]}),
        "formula": "Reaction ~ Days + (1 | Subject)",
        "data": pymlsem.load_dataset("sleepstudy"),
        "design": pd.DataFrame(
            {"x1": np.tile(np.arange(1, 21), 25), "cluster": np.repeat(np.arange(25), 20)}
        ),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains warn about convergence, as they should
        exec(compile(block, str(README), "exec"), namespace)
    assert (tmp_path / "trace.png").exists()


@pytest.mark.sampling
def test_readme_latent_class_example_runs(monkeypatch) -> None:
    (block,) = [b for b in _python_blocks() if "pymlsem.lca(" in b]
    real = pymlsem.lca
    short = {"draws": 200, "tune": 200, "chains": 2, "progressbar": False}
    monkeypatch.setattr(pymlsem, "lca", lambda *a, **k: real(*a, **{**short, **k}))
    namespace = {"pymlsem": pymlsem}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains may warn about convergence, as they should
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["fit"].membership(2).shape == (100, 3)


@pytest.mark.sampling
def test_readme_irt_example_runs(monkeypatch) -> None:
    (block,) = [b for b in _python_blocks() if "pymlsem.irt(" in b]
    real = pymlsem.irt
    short = {"draws": 200, "tune": 200, "chains": 2, "progressbar": False}
    monkeypatch.setattr(pymlsem, "irt", lambda *a, **k: real(*a, **{**short, **k}))
    namespace = {"pymlsem": pymlsem}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short chains may warn about convergence, as they should
        exec(compile(block, str(README), "exec"), namespace)
    assert namespace["fit"].trait_scores().shape == (len(namespace["sim"].data), 3)
