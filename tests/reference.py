"""Reference models and lavaan results shared by the tests (see data/reference/ORIGIN.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE = Path(__file__).parent / "data" / "reference"
LAVAAN = REFERENCE / "lavaan"

SEED = """
level: 1
    fw =~ y1 + y2 + y3
    fw ~ x1 + x2 + x3
level: 2
    fb =~ y1 + y2 + y3
    fb ~ w1 + w2
"""
M2 = """
level: within
    fw1 =~ y1+y2+y3
    fw2 =~ y4+y5+y6
level: between
    fb =~ y1+y2+y3+y4+y5+y6
"""
HS = "visual =~ x1+x2+x3; textual =~ x4+x5+x6; speed =~ x7+x8+x9"
#: one factor for HolzingerSwineford1939's nine tests: its marker x1 loads weakly (lavaan/hs_cfa.R)
ONE_FACTOR = "g =~ x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9"
POLDEM = """
# Bollen's political democracy model, equal loadings across time
ind60 =~ x1 + x2 + x3
dem60 =~ y1 + a*y2 + b*y3 + c*y4
dem65 =~ y5 + a*y6 + b*y7 + c*y8
dem60 ~ ind60
dem65 ~ ind60 + dem60
y1 ~~ y5
y2 ~~ y4 + y6
y3 ~~ y7
y4 ~~ y8
y6 ~~ y8
"""

#: name -> (model, data set, cluster column, lavaan file prefix)
REFERENCE_FITS = {
    "seed": (SEED, "Demo.twolevel", "cluster", "demo_twolevel"),
    "m2": (M2, "Demo.twolevel", "cluster", "demo_twolevel_m2"),
    "hs_cfa": (HS, "HolzingerSwineford1939", None, "hs_cfa"),
    "poldem": (POLDEM, "PoliticalDemocracy", None, "poldem_sem"),
}


#: lavaan's std.lv = TRUE fits (the ends of lavaan/demo_twolevel.R, hs_cfa.R, poldem.R):
#: name -> (model, data set, cluster, model_type, file prefix)
STD_LV_FITS = {
    "seed": (SEED, "Demo.twolevel", "cluster", "sem", "std_lv_seed"),
    "hs_one_factor": (ONE_FACTOR, "HolzingerSwineford1939", None, "cfa", "std_lv_hs_one_factor"),
    "poldem": (POLDEM, "PoliticalDemocracy", None, "sem", "std_lv_poldem"),
}


def data(name: str) -> pd.DataFrame:
    """A reference data set by its lavaan name."""
    return pd.read_csv(REFERENCE / "data" / f"{name}.csv")


def lavaan_estimates(prefix: str) -> pd.DataFrame:
    """lavaan's parameterEstimates() of a reference fit."""
    return pd.read_csv(LAVAAN / f"{prefix}_estimates.csv")


def lavaan_fitmeasure(prefix: str, measure: str) -> float:
    """One of lavaan's fitMeasures() of a reference fit."""
    table = pd.read_csv(LAVAAN / f"{prefix}_fitmeasures.csv")
    return float(table.loc[table.measure == measure, "value"].iloc[0])


_FACTORS_W = "f1w =~ V1+V2+V3+V4\n    f2w =~ V5+V6+V7+V8\n    f3w =~ V9+V10+V11+V12"
_FACTORS_B = "f1b =~ V1+V2+V3+V4\n    f2b =~ V5+V6+V7+V8\n    f3b =~ V9+V10+V11+V12"

#: The two-level model shapes of the book's chapter 10 ("Multilevel Modeling Using R"), by model number.
BOOK_MODELS = {
    "10.3": (f"level: 1\n    {_FACTORS_W}\nlevel: 2\n    {_FACTORS_B}\n", "sem"),
    "10.4": (
        """level: 1
    f1w =~ V1 + a*V2 + b*V3 + c*V4
    f2w =~ V5 + d*V6 + e*V7 + g*V8
    f3w =~ V9 + h*V10 + i*V11 + j*V12
level: 2
    f1b =~ V1 + a*V2 + b*V3 + c*V4
    f2b =~ V5 + d*V6 + e*V7 + g*V8
    f3b =~ V9 + h*V10 + i*V11 + j*V12
""",
        "sem",
    ),
    "10.5": (
        f"level: 1\n    {_FACTORS_W}\n    f1w ~ f2w + f3w\nlevel: 2\n    {_FACTORS_B}\n    f1b ~ f2b + f3b\n"
        "    V1 ~~ 0*V1\n    V5 ~~ 0*V5\n    V9 ~~ 0*V9\n",
        "sem",
    ),
    "10.6": (
        "level: 1\n    iw =~ 1*V1 + 1*V2 + 1*V3 + 1*V4 + 1*V5 + 1*V6\n"
        "    sw =~ 0*V1 + 1*V2 + 2*V3 + 3*V4 + 4*V5 + 5*V6\n"
        + "".join(f"    V{t} ~~ a*V{t}\n" for t in range(1, 7))
        + "level: 2\n    ib =~ 1*V1 + 1*V2 + 1*V3 + 1*V4 + 1*V5 + 1*V6\n"
        "    sb =~ 0*V1 + 1*V2 + 2*V3 + 3*V4 + 4*V5 + 5*V6\n"
        + "".join(f"    V{t} ~~ 0*V{t}\n" for t in range(1, 7)),
        "growth",
    ),
}

MEDIATION = """
dem60 =~ y1 + y2 + y3 + y4
ind60 =~ x1 + x2 + x3
dem65 =~ y5 + y6 + y7 + y8
dem60 ~ a*ind60
dem65 ~ b*dem60 + c*ind60
indirect := a*b
total := c + a*b
"""


#: a two-level regression with a random slope of ``x`` (the latent builder)
RANDOM_SLOPE = 'level: 1\n    y ~ rv("s")*x\nlevel: 2\n    y ~ w\n    s ~ w\n    y ~~ s\n'


def random_slope_data(n_clusters: int = 80, size: int = 8, seed: int = 1) -> pd.DataFrame:
    """``y = b0 + b1 w + (g0 + g1 w) x + u0 + u1 x + e`` with correlated (u0, u1); rows shuffled."""
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(n_clusters), size)
    w = rng.normal(size=n_clusters)
    u = rng.multivariate_normal([0.0, 0.0], [[0.5, 0.1], [0.1, 0.2]], size=n_clusters)
    x = rng.normal(size=cluster.size)
    y = 1.0 + 0.3 * w[cluster] + (0.5 + 0.2 * w[cluster]) * x + u[cluster, 0] + u[cluster, 1] * x
    y += rng.normal(size=cluster.size)
    frame = pd.DataFrame({"y": y, "x": x, "w": w[cluster], "cluster": 100 + 7 * cluster})
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def inlavaan_posterior() -> pd.DataFrame:
    """INLAvaan 0.2.4's posterior summary of the seed model (blavaan default priors)."""
    return pd.read_csv(REFERENCE / "inlavaan" / "demo_twolevel_posterior.csv")
