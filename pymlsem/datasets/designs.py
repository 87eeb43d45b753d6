"""Simulated two-level data with known parameter values, and the lavaan model that fits them.

Each function draws one data set from a named data-generating design and returns a :class:`Design`:
the data, the model string (lavaan syntax with ``level: 1`` / ``level: 2`` blocks), and ``truth``, the
true parameter values keyed by the labels used in the model (and by the names of ``:=`` defined
parameters), on lavaan's scale (variances and covariances, not standard deviations). They serve
parameter-recovery tests and benchmarks of the two-level latent-variable features: random slopes and
cross-level interactions, latent group-mean centering, multilevel IRT and ordinal factor models, and
multilevel mediation (1-1-1, 2-1-1, 2-2-1), and multilevel latent classes
(:func:`multilevel_latent_classes`, a :class:`LatentClassDesign`: a latent class model has no lavaan syntax).

Every function takes ``n_clusters``, ``cluster_size`` (one size, or one per cluster) and ``seed``
(passed to :func:`numpy.random.default_rng`), plus the design's key parameter values as keywords.
Clusters are numbered 1, 2, ... in the ``cluster`` column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "Design",
    "LatentClassDesign",
    "latent_centering",
    "mediation_111",
    "mediation_211",
    "mediation_221",
    "multilevel_latent_classes",
    "observed_centering_estimates",
    "random_slope_cross_level",
    "two_level_irt",
    "two_level_ordinal_cfa",
]


@dataclass(frozen=True)
class Design:
    """One simulated data set with the model that generated it and the true parameter values.

    Attributes
    ----------
    name
        The design's name (the function that made it).
    data
        One row per level-1 unit; the observed variables and the cluster column.
    model
        lavaan syntax of the data-generating model (two levels).
    truth
        True values by parameter label (and ``:=`` name), on lavaan's scale.
    cluster
        Name of the cluster column.
    ordered
        Binary/ordinal variables (integer codes 0, 1, ..., K-1).
    formula
        The same model as an lme4 formula, where there is one.
    notes
        How the data were generated and how the truth maps onto other parametrisations.
    """

    name: str
    data: pd.DataFrame
    model: str
    truth: dict[str, float]
    cluster: str = "cluster"
    ordered: tuple[str, ...] = ()
    formula: str | None = None
    notes: str = ""

    @property
    def n_categories(self) -> dict[str, int]:
        """Number of categories of each ordered variable (largest code + 1)."""
        return {v: int(self.data[v].max()) + 1 for v in self.ordered}


# ----------------------------------------------------------------------------------------------------
# helpers


def _clusters(n_clusters: int, cluster_size: int | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Cluster sizes as an integer array of length ``n_clusters``, and the zero-based cluster of every row."""
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be at least 1, not {n_clusters}")
    sizes = np.asarray(cluster_size, dtype=int)
    if sizes.ndim == 0:
        sizes = np.full(n_clusters, int(sizes))
    elif sizes.shape != (n_clusters,):
        raise ValueError(f"cluster_size has {sizes.size} entries for {n_clusters} clusters")
    if (sizes < 1).any():
        raise ValueError("every cluster needs at least one row")
    return sizes, np.repeat(np.arange(n_clusters), sizes)


def _center(values: np.ndarray, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
    """Subtract each cluster's mean."""
    means = np.bincount(cluster, weights=values, minlength=n_clusters) / np.bincount(
        cluster, minlength=n_clusters
    )
    return values - means[cluster]


def _frame(cluster: np.ndarray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    frame = pd.DataFrame(columns)
    frame["cluster"] = cluster + 1
    return frame


def _bivariate_normal(
    rng: np.random.Generator, size: int, means: tuple[float, float], var1: float, var2: float, cov: float
) -> np.ndarray:
    """``size`` draws of a bivariate normal vector, shape ``(size, 2)``."""
    cov_matrix = np.array([[var1, cov], [cov, var2]])
    if np.linalg.eigvalsh(cov_matrix).min() < 0:
        raise ValueError(f"the covariance {cov} is too large for the variances {var1} and {var2}")
    return rng.multivariate_normal(np.asarray(means, dtype=float), cov_matrix, size=size, method="eigh")


def _model(level1: list[str], level2: list[str], defined: Sequence[str] = ()) -> str:
    lines = ["level: 1", *(f"  {s}" for s in level1), "level: 2", *(f"  {s}" for s in level2)]
    return "\n".join([*lines, *defined]) + "\n"


def _between_mediation(
    rng: np.random.Generator,
    n_clusters: int,
    *,
    a: float,
    b: float,
    cp: float,
    s2m: float,
    s2yb: float,
    mum: float,
    muy: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The level-2 chain of the 2-1-1 and 2-2-1 designs: ``x_j``, ``m_j`` (or its between part) and ``yb_j``.

    ``x_j ~ N(0, 1)``, ``m_j = mum + a x_j + um_j`` with ``um_j ~ N(0, s2m)`` and
    ``yb_j = muy + b m_j + cp x_j + uy_j`` with ``uy_j ~ N(0, s2yb)``.
    """
    x = rng.standard_normal(n_clusters)
    m = mum + a * x + rng.normal(0.0, np.sqrt(s2m), n_clusters)
    yb = muy + b * m + cp * x + rng.normal(0.0, np.sqrt(s2yb), n_clusters)
    return x, m, yb


def _between_mediation_model(m_variance: str) -> list[str]:
    """Level-2 statements of :func:`_between_mediation`, with ``m_variance`` the label of ``m``'s variance."""
    return ["m ~ a*x", "y ~ b*m + cp*x", "m ~ mum*1", "y ~ muy*1", f"m ~~ {m_variance}*m", "y ~~ s2yb*y"]


def _floats(values: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items()}


def _item_values(given: Sequence[float] | None, n_items: int, default: np.ndarray, what: str) -> np.ndarray:
    if given is None:
        return default
    out = np.asarray(given, dtype=float)
    if out.shape != (n_items,):
        raise ValueError(f"{what} has {out.size} entries for {n_items} items")
    return out


# ----------------------------------------------------------------------------------------------------
# 1. random slope with a cross-level interaction


def random_slope_cross_level(
    *,
    n_clusters: int = 100,
    cluster_size: int | Sequence[int] = 20,
    seed: int | None = None,
    g00: float = 0.5,
    g01: float = 0.3,
    g10: float = 0.5,
    g11: float = 0.25,
    tau00: float = 0.3,
    tau11: float = 0.1,
    tau01: float = 0.05,
    s2e: float = 1.0,
    center_x: bool = False,
) -> Design:
    """Random intercept and random slope, the slope predicted by a cluster-level covariate.

    Parameters
    ----------
    n_clusters, cluster_size
        Number of clusters and their size (one size or one per cluster).
    seed
        Random seed.
    g00, g01
        Intercept and effect of ``w`` on the intercept.
    g10, g11
        Mean slope of ``x`` (at ``w = 0``) and the cross-level interaction (effect of ``w`` on the slope).
    tau00, tau11, tau01
        Variances of the random intercept and slope residuals and their covariance.
    s2e
        Level-1 residual variance.
    center_x
        Subtract each cluster's mean from ``x`` (then ``x`` has exactly no between part).

    Returns
    -------
    Design
        Columns ``y``, ``x`` (within only), ``w`` (between only, constant in a cluster), ``cluster``.

    Notes
    -----
    For row :math:`i` of cluster :math:`j`::

        w_j ~ N(0, 1)
        (u0_j, u1_j) ~ N(0, [[tau00, tau01], [tau01, tau11]])
        x_ij ~ N(0, 1)                       (cluster means 0 in the population)
        y_ij = g00 + g01 w_j + (g10 + g11 w_j + u1_j) x_ij + u0_j + e_ij,   e_ij ~ N(0, s2e)

    ``x`` has no cluster-level component in the population, so treating it as within-only (fixed.x
    at level 1) matches the data; its observed cluster means scatter around 0 unless ``center_x``.
    In the model the random slope ``s`` (``rv("s")``) is a level-2 latent variable with mean ``g10``,
    regression ``s ~ g11*w`` and residual variance ``tau11``; the between part of ``y`` is the random
    intercept with ``y ~ g01*w``, intercept ``g00`` and residual variance ``tau00``.
    """
    rng = np.random.default_rng(seed)
    _, cl = _clusters(n_clusters, cluster_size)
    w = rng.standard_normal(n_clusters)
    u = _bivariate_normal(rng, n_clusters, (0.0, 0.0), tau00, tau11, tau01)
    x = rng.standard_normal(len(cl))
    if center_x:
        x = _center(x, cl, n_clusters)
    slope = g10 + g11 * w + u[:, 1]
    intercept = g00 + g01 * w + u[:, 0]
    y = intercept[cl] + slope[cl] * x + rng.normal(0.0, np.sqrt(s2e), len(cl))
    data = _frame(cl, {"y": y, "x": x, "w": w[cl]})
    model = _model(
        ['y ~ rv("s")*x', "y ~~ s2e*y"],
        ["y ~ g01*w", "s ~ g11*w", "y ~ g00*1", "s ~ g10*1", "y ~~ tau00*y", "s ~~ tau11*s", "y ~~ tau01*s"],
    )
    truth = _floats(
        {
            "g00": g00,
            "g01": g01,
            "g10": g10,
            "g11": g11,
            "tau00": tau00,
            "tau11": tau11,
            "tau01": tau01,
            "s2e": s2e,
        }
    )
    notes = (
        "lme4 formula y ~ x*w + (1 + x | cluster): (Intercept) = g00, w = g01, x = g10, x:w = g11; "
        "random-effect variances (Intercept) = tau00, x = tau11, their covariance tau01 "
        "(correlation tau01/sqrt(tau00*tau11)); residual variance sigma^2 = s2e. "
        f"x {'is' if center_x else 'is not'} centred at its cluster means."
    )
    return Design("random_slope_cross_level", data, model, truth, formula="y ~ x*w + (1 + x | cluster)",
                  notes=notes)  # fmt: skip


# ----------------------------------------------------------------------------------------------------
# 2. latent group-mean centering


def latent_centering(
    *,
    n_clusters: int = 200,
    cluster_size: int | Sequence[int] = 5,
    seed: int | None = None,
    bw: float = 0.3,
    bb: float = 0.8,
    icc_x: float = 0.2,
    var_x: float = 1.0,
    mux: float = 1.0,
    b0: float = 0.5,
    tau00: float = 0.2,
    s2e: float = 1.0,
) -> Design:
    """A covariate with within and between parts and different effects at each level (Lüdtke et al. 2008).

    Parameters
    ----------
    n_clusters, cluster_size
        Number of clusters and their size (one size or one per cluster); small clusters (the default 5)
        make observed cluster means unreliable.
    seed
        Random seed.
    bw, bb
        Within and between effects of ``x`` on ``y``; the contextual effect is ``bb - bw``.
    icc_x, var_x
        Intraclass correlation and total variance of ``x``: between variance ``icc_x * var_x``, within
        variance ``(1 - icc_x) * var_x``.
    mux, b0
        Mean of ``x``; level-2 intercept of ``y`` (see the equations).
    tau00, s2e
        Residual variances of ``y`` at level 2 (random intercept) and level 1.

    Returns
    -------
    Design
        Columns ``y``, ``x`` and ``cluster``; ``truth`` includes ``contextual``.

    Notes
    -----
    ::

        xb_j ~ N(0, s2xb),  xw_ij ~ N(0, s2xw),  s2xb = icc_x var_x,  s2xw = (1 - icc_x) var_x
        x_ij = mux + xb_j + xw_ij
        y_ij = b0 + bb (mux + xb_j) + bw xw_ij + u_j + e_ij,   u_j ~ N(0, tau00),  e_ij ~ N(0, s2e)

    so ``b0`` is lavaan's level-2 intercept of ``y`` (its value where the between part of ``x``,
    ``mux + xb_j``, is 0).

    Regressing ``y`` on the observed cluster mean ``xbar_j`` instead of the latent ``mux + xb_j`` (see
    :func:`observed_centering_estimates`) estimates the between effect
    ``bw + (bb - bw) r`` with the reliability ``r = s2xb / (s2xb + s2xw / n_j)`` of the cluster means,
    so the contextual effect is attenuated to ``r (bb - bw)``: with the defaults ``r = 0.2 / (0.2 +
    0.8/5) = 0.56``, and the observed contextual estimate is about 0.28 instead of 0.5.
    """
    if not 0.0 < icc_x < 1.0:
        raise ValueError(f"icc_x must lie strictly between 0 and 1, not {icc_x}")
    rng = np.random.default_rng(seed)
    sizes, cl = _clusters(n_clusters, cluster_size)
    s2xb, s2xw = icc_x * var_x, (1.0 - icc_x) * var_x
    xb = rng.normal(0.0, np.sqrt(s2xb), n_clusters)
    xw = rng.normal(0.0, np.sqrt(s2xw), len(cl))
    u = rng.normal(0.0, np.sqrt(tau00), n_clusters)
    x = mux + xb[cl] + xw
    y = b0 + bb * (mux + xb[cl]) + bw * xw + u[cl] + rng.normal(0.0, np.sqrt(s2e), len(cl))
    data = _frame(cl, {"y": y, "x": x})
    model = _model(
        ["y ~ bw*x", "y ~~ s2e*y", "x ~~ s2xw*x"],
        ["y ~ bb*x", "y ~ b0*1", "x ~ mux*1", "y ~~ tau00*y", "x ~~ s2xb*x"],
        ["contextual := bb - bw"],
    )
    truth = _floats(
        {
            "bw": bw,
            "bb": bb,
            "contextual": bb - bw,
            "b0": b0,
            "mux": mux,
            "s2xw": s2xw,
            "s2xb": s2xb,
            "tau00": tau00,
            "s2e": s2e,
        }
    )
    mean_size = float(np.mean(sizes))
    reliability = s2xb / (s2xb + s2xw / mean_size)
    notes = (
        "x is decomposed into latent within (variance s2xw) and between (variance s2xb, mean mux) parts; "
        f"Reliability of the observed cluster means at the mean cluster size {mean_size:g}: "
        f"{reliability:.3f}; observed group-mean centering gives a contextual effect near "
        f"{reliability * (bb - bw):.3f} instead of {bb - bw:g}."
    )
    return Design("latent_centering", data, model, truth, notes=notes)


def observed_centering_estimates(design: Design) -> dict[str, float]:
    """Observed group-mean centering: OLS of ``y`` on ``x - xbar_j`` and ``xbar_j``.

    The comparison method for :func:`latent_centering`: the cluster means of ``x`` stand in for the latent
    between part, so with small clusters the between effect is pulled toward the within effect and
    the contextual effect is attenuated by the reliability of the cluster means (Lüdtke et al. 2008).

    Parameters
    ----------
    design
        A design with columns ``y`` and ``x`` and a cluster column (e.g. from :func:`latent_centering`).

    Returns
    -------
    dict
        ``bw`` (coefficient of ``x - xbar_j``), ``bb`` (coefficient of ``xbar_j``) and
        ``contextual`` (``bb - bw``), keyed like the design's truth.
    """
    data = design.data
    x = data["x"].to_numpy(dtype=float)
    y = data["y"].to_numpy(dtype=float)
    xbar = data.groupby(design.cluster)["x"].transform("mean").to_numpy(dtype=float)
    design_matrix = np.column_stack([np.ones_like(x), x - xbar, xbar])
    coef, *_ = np.linalg.lstsq(design_matrix, y, rcond=None)
    return {"bw": float(coef[1]), "bb": float(coef[2]), "contextual": float(coef[2] - coef[1])}


# ----------------------------------------------------------------------------------------------------
# 3. two-level IRT


def two_level_irt(
    *,
    n_items: int = 30,
    n_clusters: int = 95,
    cluster_size: int | Sequence[int] | None = None,
    seed: int | None = None,
    tau2: float = 0.3,
    loadings: Sequence[float] | None = None,
    thresholds: Sequence[float] | None = None,
    item_seed: int = 0,
    scale: Literal["marker", "unit"] = "marker",
    link: Literal["probit", "logit"] = "probit",
) -> Design:
    """Two-level 2PL IRT model: binary items, a student trait with a school part.

    Parameters
    ----------
    n_items
        Number of binary items ``y1, ..., y<n_items>``.
    n_clusters, cluster_size
        Number of clusters (schools) and their sizes; ``None`` draws each size uniformly from 10 to 24
        with ``seed`` (about 1,600 students in the default 95 clusters).
    seed
        Random seed of the sizes and the data.
    tau2
        Variance of the between (school) part of the trait; the within part has variance 1.
    loadings, thresholds
        Item loadings (discriminations) ``lambda_k`` and thresholds ``tau_k``; ``None`` draws them
        once from ``item_seed`` (``lambda_k ~ U(0.5, 1.5)``, ``tau_k ~ N(0, 0.8^2)``), independently
        of ``seed``.
    item_seed
        Seed of the default item parameters.
    scale
        How the model sets the factors' scale: ``"marker"`` (``l1`` fixed at 1, free ``psi_w``) or
        ``"unit"`` (``fw ~~ 1*fw``, every loading free); see the notes.
    link
        ``"probit"``: normal errors ``e_ijk`` (the normal-ogive model that the lavaan syntax states);
        ``"logit"``: logistic errors, the logistic 2PL model of :func:`pymlsem.irt`, whose discrimination
        and intercept are ``a_k = lambda_k`` and ``d_k = -tau_k`` (truth entries ``a<k>``, ``d<k>``,
        ``b<k>`` and ``between_sd`` = ``sqrt(tau2)``; the lavaan syntax's other entries are then not the
        truth).

    Returns
    -------
    Design
        Integer 0/1 columns ``y1, ...`` (all in ``ordered``) and ``cluster``.

    Notes
    -----
    ::

        fw_ij ~ N(0, 1),  fb_j ~ N(0, tau2),  e_ijk ~ N(0, 1)
        y*_ijk = lambda_k (fw_ij + fb_j) + e_ijk
        y_ijk  = 1 if y*_ijk > tau_k else 0

    so ``P(y_ijk = 1 | theta) = Phi(lambda_k theta - tau_k)`` with ``theta = fw + fb``: a normal-ogive
    2PL model with discrimination ``a_k = lambda_k`` and difficulty ``b_k = tau_k / lambda_k``
    (``1.7 a_k`` approximates the logistic discrimination). Marginally
    ``P(y_k = 1) = Phi(-tau_k / sqrt(1 + lambda_k^2 (1 + tau2)))``.

    The model uses the same loadings at both levels (shared labels ``l1, l2, ...``), thresholds at
    level 2, level-2 residual variances of the items fixed at 0 and level-1 residual variances of
    ``y*`` fixed at 1 (probit). By default it is scaled by a marker: ``l1`` is fixed at 1 at both levels
    and the within factor variance ``psi_w`` is free. On that scale the truth is
    ``l_k = lambda_k / lambda_1``, ``psi_w = lambda_1^2``, ``psi_b = lambda_1^2 tau2`` and
    ``th_k = tau_k``; the defined parameters ``a_k := l_k*sqrt(psi_w)`` (= ``lambda_k``),
    ``b_k := th_k/a_k`` and ``trait_icc := psi_b/(psi_w + psi_b)`` (= ``tau2 / (1 + tau2)``) give the
    IRT parametrisation.

    ``scale="unit"`` writes ``fw =~ NA*l1*y1 + l2*y2 + ...`` with ``fw ~~ 1*fw`` and the same labelled
    loadings for ``fb`` with ``fb ~~ psi_b*fb``; then ``l_k = lambda_k``, ``psi_b = tau2`` and
    ``a_k := l_k``. It is identified through the shared labels, but ``build_partable`` currently rejects
    it ("latent variable 'fb' has no scale"): its scale check ignores equality constraints. (The
    lavaan idiom ``NA*y1 + l1*y1`` does not work here: the second term counts as a duplicated
    statement and is dropped with its label; chain the modifiers, ``NA*l1*y1``, instead.)
    """
    if n_items < 2:
        raise ValueError("a factor model needs at least 2 items")
    if scale not in ("marker", "unit"):
        raise ValueError(f"scale must be 'marker' or 'unit', not {scale!r}")
    if link not in ("probit", "logit"):
        raise ValueError(f"link must be 'probit' or 'logit', not {link!r}")
    rng = np.random.default_rng(seed)
    if cluster_size is None:
        cluster_size = rng.integers(10, 25, size=n_clusters)
    _, cl = _clusters(n_clusters, cluster_size)
    item_rng = np.random.default_rng(item_seed)
    lam = _item_values(loadings, n_items, item_rng.uniform(0.5, 1.5, n_items), "loadings")
    tau = _item_values(thresholds, n_items, item_rng.normal(0.0, 0.8, n_items), "thresholds")
    fw = rng.standard_normal(len(cl))
    fb = rng.normal(0.0, np.sqrt(tau2), n_clusters)
    theta = fw + fb[cl]
    shape = (len(cl), n_items)
    noise = rng.standard_normal(shape) if link == "probit" else rng.logistic(size=shape)
    ystar = theta[:, None] * lam[None, :] + noise
    items = [f"y{k}" for k in range(1, n_items + 1)]
    data = _frame(cl, {v: (ystar[:, k] > tau[k]).astype(int) for k, v in enumerate(items)})

    marker = scale == "marker"
    first = "" if marker else "NA*"
    loading_terms = " + ".join((first if k == 1 else "") + f"l{k}*{v}" for k, v in enumerate(items, start=1))
    level1 = [f"fw =~ {loading_terms}", "fw ~~ psi_w*fw" if marker else "fw ~~ 1*fw"]
    level2 = [f"fb =~ {loading_terms}", "fb ~~ psi_b*fb"]
    level2 += [f"{v} | th{k}*t1" for k, v in enumerate(items, start=1)]
    level2 += [f"{v} ~~ 0*{v}" for v in items]
    sd_w = "*sqrt(psi_w)" if marker else ""
    defined = [f"a{k} := l{k}{sd_w}" for k in range(1, n_items + 1)]
    defined += [f"b{k} := th{k}/a{k}" for k in range(1, n_items + 1)]
    defined += [f"trait_icc := psi_b/({'psi_w' if marker else '1'} + psi_b)"]
    model = _model(level1, level2, defined)

    unit = lam[0] if marker else 1.0
    truth: dict[str, float] = {"psi_w": unit**2} if marker else {}
    truth["psi_b"] = unit**2 * tau2
    truth |= {f"l{k}": lam[k - 1] / unit for k in range(1, n_items + 1)}
    truth |= {f"th{k}": tau[k - 1] for k in range(1, n_items + 1)}
    truth |= {f"a{k}": lam[k - 1] for k in range(1, n_items + 1)}
    truth |= {f"b{k}": tau[k - 1] / lam[k - 1] for k in range(1, n_items + 1)}
    truth["trait_icc"] = tau2 / (1.0 + tau2)
    if link == "logit":
        truth = {f"a{k}": lam[k - 1] for k in range(1, n_items + 1)}
        truth |= {f"d{k}": -tau[k - 1] for k in range(1, n_items + 1)}
        truth |= {f"b{k}": tau[k - 1] / lam[k - 1] for k in range(1, n_items + 1)}
        truth |= {"between_sd": float(np.sqrt(tau2)), "trait_icc": tau2 / (1.0 + tau2)}
    notes = (
        "Generated with fw ~ N(0,1), fb ~ N(0, tau2), y*_k = lambda_k (fw + fb) + N(0,1), "
        "y_k = [y*_k > tau_k]. "
        + (
            "Model scaled by the marker l1 = 1 (both levels) with psi_w free: l_k = lambda_k/lambda_1, "
            "psi_w = lambda_1^2, psi_b = lambda_1^2 tau2, th_k = tau_k. "
            if marker
            else "Model scaled by fw ~~ 1*fw: l_k = lambda_k, psi_b = tau2, th_k = tau_k. "
        )
        + (
            "Logistic errors: the logistic 2PL model P(y_k = 1) = logistic(a_k theta + d_k), a_k = lambda_k, "
            "d_k = -tau_k. "
            if link == "logit"
            else ""
        )
        + f"IRT ({'logistic' if link == 'logit' else 'normal ogive'}) discrimination "
        "a_k = lambda_k and difficulty b_k = tau_k/lambda_k are the defined parameters a_k, b_k; "
        f"trait_icc = tau2/(1 + tau2). {len(cl)} students in {n_clusters} clusters."
    )
    return Design("two_level_irt", data, model, _floats(truth), ordered=tuple(items), notes=notes)


# ----------------------------------------------------------------------------------------------------
# 4. two-level ordinal CFA


def two_level_ordinal_cfa(
    *,
    n_clusters: int = 100,
    cluster_size: int | Sequence[int] = 15,
    seed: int | None = None,
    within_loadings: Sequence[float] = (0.8, 0.9, 1.0, 0.7, 1.1, 0.6),
    between_variance: float = 0.4,
    between_loadings: Sequence[float] | None = None,
    thresholds: Sequence[Sequence[float]] | None = None,
    between_residual: float = 0.05,
) -> Design:
    """One ordinal factor at each level: 6 items with 4 categories (by default).

    Parameters
    ----------
    n_clusters, cluster_size
        Number of clusters and their size (one size or one per cluster).
    seed
        Random seed.
    within_loadings
        Level-1 loadings ``lw_k`` (one per item; their number sets the number of items).
    between_variance
        Variance of the between factor on the within factor's loadings: the default between loadings
        are ``sqrt(between_variance) * lw_k`` (cross-level invariance with factor variance 0.4).
    between_loadings
        Level-2 loadings ``lb_k`` on a between factor of variance 1; overrides ``between_variance``.
    thresholds
        Per item, the increasing thresholds (their number + 1 is the number of categories);
        by default ``(-1.5, 0, 1.5)`` shifted by ``linspace(-0.5, 0.5)`` over the items.
    between_residual
        Level-2 residual variance of every ``y*`` (free and labelled ``thb<k>``); 0 fixes them at 0
        in the model and leaves them out of ``truth``.

    Returns
    -------
    Design
        Integer columns ``y1, ...`` coded 0..K-1 (all in ``ordered``) and ``cluster``.

    Notes
    -----
    ::

        fw_ij ~ N(0, 1),  fb_j ~ N(0, 1),  eb_jk ~ N(0, between_residual),  ew_ijk ~ N(0, 1)
        y*_ijk = lw_k fw_ij + lb_k fb_j + eb_jk + ew_ijk
        y_ijk  = number of thresholds tau_kc below y*_ijk

    Both factor variances are fixed at 1 in the model (``NA*`` frees the first loading, written
    ``fw =~ NA*lw1*y1 + lw2*y2 + ...``), the loadings are free and labelled per level, the thresholds
    ``th<k>_<c>`` sit at level 2, and the level-1 residual variances of ``y*`` are 1 (probit).
    """
    rng = np.random.default_rng(seed)
    _, cl = _clusters(n_clusters, cluster_size)
    lw = np.asarray(within_loadings, dtype=float)
    n_items = lw.size
    if between_loadings is None:
        lb = np.sqrt(between_variance) * lw
    else:
        lb = _item_values(between_loadings, n_items, lw, "between_loadings")
    if thresholds is None:
        tau = np.array([-1.5, 0.0, 1.5])[None, :] + np.linspace(-0.5, 0.5, n_items)[:, None]
    else:
        tau = np.asarray(thresholds, dtype=float)
        if tau.ndim != 2 or tau.shape[0] != n_items:
            raise ValueError(f"thresholds must give one row of thresholds per item ({n_items} items)")
    if (np.diff(tau, axis=1) <= 0).any():
        raise ValueError("each item's thresholds must increase")
    fw = rng.standard_normal(len(cl))
    fb = rng.standard_normal(n_clusters)
    eb = rng.normal(0.0, np.sqrt(between_residual), (n_clusters, n_items))
    ystar = fw[:, None] * lw + (fb[:, None] * lb + eb)[cl] + rng.standard_normal((len(cl), n_items))
    codes = (ystar[:, :, None] > tau[None, :, :]).sum(axis=2)
    items = [f"y{k}" for k in range(1, n_items + 1)]
    data = _frame(cl, {v: codes[:, k].astype(int) for k, v in enumerate(items)})

    def loadings(prefix: str) -> str:
        return " + ".join(
            ("NA*" if k == 1 else "") + f"{prefix}{k}*{v}" for k, v in enumerate(items, start=1)
        )

    level1 = [f"fw =~ {loadings('lw')}", "fw ~~ 1*fw"]
    level2 = [f"fb =~ {loadings('lb')}", "fb ~~ 1*fb"]
    for k, v in enumerate(items, start=1):
        level2.append(f"{v} | " + " + ".join(f"th{k}_{c}*t{c}" for c in range(1, tau.shape[1] + 1)))
    for k, v in enumerate(items, start=1):
        level2.append(f"{v} ~~ thb{k}*{v}" if between_residual > 0 else f"{v} ~~ 0*{v}")
    model = _model(level1, level2)

    truth: dict[str, float] = {}
    truth |= {f"lw{k}": lw[k - 1] for k in range(1, n_items + 1)}
    truth |= {f"lb{k}": lb[k - 1] for k in range(1, n_items + 1)}
    for k in range(1, n_items + 1):
        truth |= {f"th{k}_{c}": tau[k - 1, c - 1] for c in range(1, tau.shape[1] + 1)}
    if between_residual > 0:
        truth |= {f"thb{k}": between_residual for k in range(1, n_items + 1)}
    notes = (
        f"{n_items} items with {tau.shape[1] + 1} categories; y*_k = lw_k fw + lb_k fb + eb_k + ew_k, "
        "fw, fb ~ N(0, 1), ew_k ~ N(0, 1) (probit), eb_k ~ N(0, between_residual). "
        f"Default between loadings sqrt({between_variance:g}) * lw_k: equal loadings with a between factor "
        f"variance {between_variance:g}. Between residual variances "
        + ("free (thb<k>)." if between_residual > 0 else "fixed at 0.")
    )
    return Design("two_level_ordinal_cfa", data, model, _floats(truth), ordered=tuple(items), notes=notes)


# ----------------------------------------------------------------------------------------------------
# 5-7. multilevel mediation


def mediation_111(
    *,
    n_clusters: int = 100,
    cluster_size: int | Sequence[int] = 20,
    seed: int | None = None,
    ma: float = 0.6,
    mb: float = 0.5,
    va: float = 0.16,
    vb: float = 0.16,
    cab: float = 0.1,
    cp: float = 0.2,
    s2m: float = 1.0,
    s2y: float = 1.0,
    mum: float = 0.0,
    muy: float = 0.0,
    vdm: float = 0.3,
    vdy: float = 0.3,
    cmy: float = 0.1,
) -> Design:
    """1-1-1 mediation with random a and b paths (Bauer, Preacher & Gil 2006).

    Parameters
    ----------
    n_clusters, cluster_size
        Number of clusters and their size (one size or one per cluster).
    seed
        Random seed.
    ma, mb, va, vb, cab
        Means, variances and covariance of the random paths ``a_j`` (x -> m) and ``b_j`` (m -> y).
    cp
        Direct effect of ``x`` on ``y`` (fixed).
    s2m, s2y
        Level-1 residual variances of ``m`` and ``y``.
    mum, muy, vdm, vdy, cmy
        Means, variances and covariance of the random intercepts ``dm_j``, ``dy_j``.

    Returns
    -------
    Design
        Columns ``x`` (within only, centred at its cluster means), ``m``, ``y`` and ``cluster``;
        ``truth`` includes ``ind = ma*mb + cab`` and ``total = ind + cp``.

    Notes
    -----
    ::

        (a_j, b_j) ~ N((ma, mb), [[va, cab], [cab, vb]])
        (dm_j, dy_j) ~ N((mum, muy), [[vdm, cmy], [cmy, vdy]])   (independent of a_j, b_j)
        x_ij = z_ij - mean_j(z),  z_ij ~ N(0, 1)
        mw_ij = a_j x_ij + em_ij,            em_ij ~ N(0, s2m)
        m_ij  = dm_j + mw_ij
        y_ij  = dy_j + b_j mw_ij + cp x_ij + ey_ij,   ey_ij ~ N(0, s2y)

    The mediator has a between part (the random intercept ``dm_j``): in the model ``m`` is named at
    both levels, its level-2 part has mean ``mum`` and variance ``vdm`` and covaries with ``y``'s
    (``m ~~ cmy*y``). The random slope ``b_j`` multiplies the *within* part of ``m`` (``m_ij - dm_j``),
    matching the latent decomposition of a variable named at both levels; with the observed ``m`` the
    between part of ``y`` would gain the non-normal term ``b_j dm_j``. The average indirect effect of
    ``x`` is ``E[a_j b_j] = ma*mb + cab``. Random slopes are uncorrelated with the random intercepts
    (those covariances are not in the model).
    """
    rng = np.random.default_rng(seed)
    _, cl = _clusters(n_clusters, cluster_size)
    ab = _bivariate_normal(rng, n_clusters, (ma, mb), va, vb, cab)
    d = _bivariate_normal(rng, n_clusters, (mum, muy), vdm, vdy, cmy)
    x = _center(rng.standard_normal(len(cl)), cl, n_clusters)
    mw = ab[cl, 0] * x + rng.normal(0.0, np.sqrt(s2m), len(cl))
    m = d[cl, 0] + mw
    y = d[cl, 1] + ab[cl, 1] * mw + cp * x + rng.normal(0.0, np.sqrt(s2y), len(cl))
    data = _frame(cl, {"y": y, "m": m, "x": x})
    model = _model(
        ['m ~ rv("a")*x', 'y ~ rv("b")*m + cp*x', "m ~~ s2m*m", "y ~~ s2y*y"],
        [
            "a ~ ma*1",
            "b ~ mb*1",
            "a ~~ va*a",
            "b ~~ vb*b",
            "a ~~ cab*b",
            "m ~ mum*1",
            "y ~ muy*1",
            "m ~~ vdm*m",
            "y ~~ vdy*y",
            "m ~~ cmy*y",
        ],
        ["ind := ma*mb + cab", "total := ind + cp"],
    )
    truth = _floats(
        {
            "ma": ma,
            "mb": mb,
            "va": va,
            "vb": vb,
            "cab": cab,
            "cp": cp,
            "s2m": s2m,
            "s2y": s2y,
            "mum": mum,
            "muy": muy,
            "vdm": vdm,
            "vdy": vdy,
            "cmy": cmy,
            "ind": ma * mb + cab,
            "total": ma * mb + cab + cp,
        }
    )
    notes = (
        "x within only, centred at its cluster means. a_j, b_j correlated random paths "
        f"(correlation {cab / np.sqrt(va * vb):.2f}); b_j multiplies the within part of m. "
        "ind = ma*mb + cab (Bauer, Preacher & Gil 2006); total = ind + cp."
    )
    return Design("mediation_111", data, model, truth, notes=notes)


def mediation_211(
    *,
    n_clusters: int = 100,
    cluster_size: int | Sequence[int] = 10,
    seed: int | None = None,
    a: float = 0.5,
    b: float = 0.6,
    cp: float = 0.2,
    bw: float = 0.3,
    s2mw: float = 1.0,
    s2yw: float = 1.0,
    s2mb: float = 0.2,
    s2yb: float = 0.2,
    mum: float = 0.0,
    muy: float = 0.0,
) -> Design:
    """2-1-1 mediation: a cluster-level ``x`` acting through the between part of ``m`` (Preacher et al. 2010).

    Parameters
    ----------
    n_clusters, cluster_size
        Number of clusters and their size (one size or one per cluster).
    seed
        Random seed.
    a, b, cp
        Between-level paths x -> m_b, m_b -> y_b and x -> y_b; the indirect effect is ``a*b``.
    bw
        Within-level effect of ``m`` on ``y``.
    s2mw, s2yw, s2mb, s2yb
        Residual variances of ``m`` and ``y`` at levels 1 and 2.
    mum, muy
        Level-2 intercepts of ``m`` and ``y``.

    Returns
    -------
    Design
        Columns ``x`` (between only), ``m``, ``y`` and ``cluster``; ``truth`` includes ``ind = a*b``.

    Notes
    -----
    ::

        x_j  ~ N(0, 1)
        mb_j = mum + a x_j + um_j,            um_j ~ N(0, s2mb)
        yb_j = muy + b mb_j + cp x_j + uy_j,  uy_j ~ N(0, s2yb)
        mw_ij ~ N(0, s2mw),  yw_ij = bw mw_ij + ey_ij,  ey_ij ~ N(0, s2yw)
        m_ij = mb_j + mw_ij,  y_ij = yb_j + yw_ij

    Both ``m`` and ``y`` are named at both levels, so the model splits them into latent within and
    between parts: the within regression ``y ~ bw*m`` uses the within parts and the between
    regressions the between parts (no conflation of the two effects, Preacher, Zyphur & Zhang 2010).
    """
    rng = np.random.default_rng(seed)
    _, cl = _clusters(n_clusters, cluster_size)
    x, mb_, yb_ = _between_mediation(rng, n_clusters, a=a, b=b, cp=cp, s2m=s2mb, s2yb=s2yb, mum=mum, muy=muy)
    mw = rng.normal(0.0, np.sqrt(s2mw), len(cl))
    yw = bw * mw + rng.normal(0.0, np.sqrt(s2yw), len(cl))
    data = _frame(cl, {"y": yb_[cl] + yw, "m": mb_[cl] + mw, "x": x[cl]})
    model = _model(
        ["y ~ bw*m", "m ~~ s2mw*m", "y ~~ s2yw*y"],
        _between_mediation_model("s2mb"),
        ["ind := a*b"],
    )
    truth = _floats(
        {
            "a": a,
            "b": b,
            "cp": cp,
            "bw": bw,
            "s2mw": s2mw,
            "s2yw": s2yw,
            "s2mb": s2mb,
            "s2yb": s2yb,
            "mum": mum,
            "muy": muy,
            "ind": a * b,
        }
    )
    notes = "x between only; indirect effect a*b at level 2; within effect of m on y bw."
    return Design("mediation_211", data, model, truth, notes=notes)


def mediation_221(
    *,
    n_clusters: int = 100,
    cluster_size: int | Sequence[int] = 10,
    seed: int | None = None,
    a: float = 0.5,
    b: float = 0.6,
    cp: float = 0.2,
    s2m: float = 0.5,
    s2yw: float = 1.0,
    s2yb: float = 0.2,
    mum: float = 0.0,
    muy: float = 0.0,
) -> Design:
    """2-2-1 mediation: cluster-level ``x`` and ``m``, an outcome with a between part.

    Parameters
    ----------
    n_clusters, cluster_size
        Number of clusters and their size (one size or one per cluster).
    seed
        Random seed.
    a, b, cp
        Between-level paths x -> m, m -> y_b and x -> y_b; the indirect effect is ``a*b``.
    s2m
        Residual variance of ``m`` (a cluster-level variable).
    s2yw, s2yb
        Residual variances of ``y`` at levels 1 and 2.
    mum, muy
        Intercepts of ``m`` and of the between part of ``y``.

    Returns
    -------
    Design
        Columns ``x`` and ``m`` (between only, constant in a cluster), ``y`` and ``cluster``;
        ``truth`` includes ``ind = a*b``.

    Notes
    -----
    ::

        x_j ~ N(0, 1)
        m_j  = mum + a x_j + um_j,           um_j ~ N(0, s2m)
        yb_j = muy + b m_j + cp x_j + uy_j,  uy_j ~ N(0, s2yb)
        y_ij = yb_j + ey_ij,                 ey_ij ~ N(0, s2yw)

    The level-1 model has only the variance of ``y`` (``y ~~ s2yw*y``); all paths are at level 2.
    """
    rng = np.random.default_rng(seed)
    _, cl = _clusters(n_clusters, cluster_size)
    x, m, yb_ = _between_mediation(rng, n_clusters, a=a, b=b, cp=cp, s2m=s2m, s2yb=s2yb, mum=mum, muy=muy)
    y = yb_[cl] + rng.normal(0.0, np.sqrt(s2yw), len(cl))
    data = _frame(cl, {"y": y, "m": m[cl], "x": x[cl]})
    model = _model(
        ["y ~~ s2yw*y"],
        _between_mediation_model("s2m"),
        ["ind := a*b"],
    )
    truth = _floats(
        {
            "a": a,
            "b": b,
            "cp": cp,
            "s2m": s2m,
            "s2yw": s2yw,
            "s2yb": s2yb,
            "mum": mum,
            "muy": muy,
            "ind": a * b,
        }
    )
    notes = "x and m between only; y has within and between parts; indirect effect a*b at level 2."
    return Design("mediation_221", data, model, truth, notes=notes)


@dataclass(frozen=True)
class LatentClassDesign:
    """One simulated data set of a (multilevel) latent class model and its true parameter values.

    Attributes
    ----------
    data
        One row per person: the items and the cluster column.
    items
        The items, in order.
    truth
        ``cluster_class_proportions`` (M), ``class_proportions`` (M x K, row m given cluster class m) and,
        per item, ``item_probs[item]`` (K x categories).
    cluster
        Name of the cluster column.
    """

    data: pd.DataFrame
    items: tuple[str, ...]
    truth: dict
    cluster: str = "cluster"


def multilevel_latent_classes(
    *,
    n_clusters: int = 100,
    cluster_size: int | Sequence[int] = 15,
    seed: int | None = None,
    cluster_class_proportions: Sequence[float] = (0.35, 0.65),
    class_proportions: Sequence[Sequence[float]] = ((0.8, 0.2), (0.25, 0.75)),
    binary: Sequence[Sequence[float]] = ((0.85, 0.8, 0.3, 0.9), (0.2, 0.25, 0.75, 0.15)),
    ordinal: Sequence[Sequence[float]] = ((0.6, 0.3, 0.1), (0.1, 0.3, 0.6)),
) -> LatentClassDesign:
    """Vermunt's nonparametric multilevel latent class model: cluster classes that set the proportions of
    the person classes, binary items and one 3-category item.

    Parameters
    ----------
    n_clusters, cluster_size, seed
        As the other designs.
    cluster_class_proportions
        ``pi_m``, the M cluster classes' proportions.
    class_proportions
        ``pi_k|m``: row m, the K person classes' proportions in clusters of class m.
    binary
        ``P(y_h = 1 | k)``: row k, one entry per binary item ``y1, y2, ...``.
    ordinal
        ``P(y = c | k)``: row k, the categories 0, 1, 2 of the last item.

    Returns
    -------
    LatentClassDesign
        Items ``y1, ...`` (integer codes) and ``cluster``.

    Notes
    -----
    ::

        W_j ~ Categorical(pi_m),  X_ij | W_j = m ~ Categorical(pi_k|m),
        y_ijh | X_ij = k ~ Bernoulli(binary[k, h]),  y_ij,last | X_ij = k ~ Categorical(ordinal[k])
    """
    rng = np.random.default_rng(seed)
    _, cluster = _clusters(n_clusters, cluster_size)
    pi_m, pi_km = np.asarray(cluster_class_proportions), np.asarray(class_proportions)
    binary, ordinal = np.asarray(binary), np.asarray(ordinal)
    cluster_class = rng.choice(len(pi_m), size=n_clusters, p=pi_m)
    person_class = np.array([rng.choice(pi_km.shape[1], p=pi_km[cluster_class[j]]) for j in cluster])
    n_binary = binary.shape[1]
    columns = {
        f"y{h + 1}": (rng.random(len(cluster)) < binary[person_class, h]).astype(int) for h in range(n_binary)
    }
    uniform = rng.random(len(cluster))[:, None]
    columns[f"y{n_binary + 1}"] = (uniform > np.cumsum(ordinal[person_class], axis=1)[:, :-1]).sum(1)
    items = tuple(columns)
    probs = {f"y{h + 1}": np.column_stack([1 - binary[:, h], binary[:, h]]) for h in range(n_binary)}
    truth = {
        "cluster_class_proportions": pi_m,
        "class_proportions": pi_km,
        "item_probs": probs | {items[-1]: ordinal},
    }
    return LatentClassDesign(_frame(cluster, columns), items, truth)
