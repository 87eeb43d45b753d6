"""MCMCglmm's prior forms, for users who come from the book's MCMCglmm code.

``pymlsem.mixed(formula, data, prior={...})`` takes MCMCglmm's ``prior = list(B=, R=, G=)`` as a dict:

``B = {"mu": mu, "V": V}``
    Fixed effects ``b ~ MvNormal(mu, V)`` on the data scale, in the order of the fixed-effect terms
    (``fit.fixef().index``). MCMCglmm's default is ``mu = 0``, ``V = 1e10 I``; ``V`` may be a number, a
    vector (a diagonal) or a matrix.
``R = {"V": V, "nu": nu}``
    The residual variance (Gaussian models): ``sigma^2 ~ InverseGamma(shape = nu / 2, scale = nu V / 2)``,
    the one-dimensional inverse-Wishart. ``V = 1, nu = 0.002`` is the book's "weakly informative" choice.
``G = {"G1": {...}, "G2": {...}}``
    One entry per random-effect block, in formula order (``(1 + x || g)`` is two blocks, as lme4 splits it;
    ``(1 + x | g)`` is one block with a 2 x 2 ``V``). Each is ``{"V": V, "nu": nu}``, optionally with
    ``"alpha.mu"`` and ``"alpha.V"`` (parameter expansion):

    * inverse-Wishart: the block covariance ``G ~ IW(scale = nu V, df = nu)``, MCMCglmm's
      parametrisation, so that ``E[G] = nu V / (nu - q - 1)`` and a single variance has the marginal prior
      ``InverseGamma((nu - q + 1) / 2, nu V_ii / 2)``. For ``q > 1`` it needs ``nu > q - 1`` (a proper
      prior); a variance (``q = 1``) needs ``nu > 0``.
    * parameter expansion: ``G = diag(alpha) G* diag(alpha)`` with ``G* ~ IW(nu V, nu)`` and
      ``alpha ~ MvNormal(alpha.mu, alpha.V)``. With ``V = 1, nu = 1, alpha.mu = 0, alpha.V = A^2`` the SD of a
      variance component has a half-Cauchy prior with scale ``A`` (Gelman 2006), MCMCglmm's usual choice for
      small variances; ``nu = 0.002`` with ``alpha.V = 1000`` is the book's "parameter-expanded" prior.

      Parameter expansion speeds up MCMCglmm's Gibbs sampler; for NUTS it adds modes (the signs of
      ``alpha``), a ridge along which ``alpha`` and ``G*`` trade scale, and a funnel where they shrink
      together, hence divergences. When ``alpha.mu = 0`` and ``alpha.V`` and ``V`` are diagonal (the usual
      case) ``alpha`` integrates out in closed form, and NUTS samples G itself: a variance's SD is
      ``sqrt(V alpha.V) |t_nu|``, and a covariance matrix has the density (:func:`expanded_log_density`)

      ``p(G) = c |G|^(-(nu + q + 1) / 2) prod_i (nu V_ii (G^-1)_ii + 1 / alpha.V_ii)^(-(nu + 1) / 2)``,

      sampled through its Cholesky factor, from its SDs and correlations (:class:`SdCorrelationFactor`).
      Other expansions are sampled as written.

What is a prior of one parameter becomes pymlsem's own ``priors=`` entry (:func:`as_pymlsem_priors`), so
that the engine families take it as data: a diagonal ``B`` (``"fixef:<term>"``), ``R`` (``"sigma"`` on the
variance), a G entry on one variance (``"sd:<label>"``: on the variance, or the half-t SD above). A G entry
on a covariance matrix stays a Bartlett decomposition (:func:`block_root`), which the engine families also
take as data (:func:`bartlett_form`), and so is the closed form of a symmetric expansion; only ``B`` with
correlations and an asymmetric expansion are sampled in a model's own graph.

Entries that are not given keep pymlsem's defaults (weakly informative and scaled to the data, see
:mod:`pymlsem.mlm.model`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.distributions.transforms import CholeskyCorrTransform, Transform

from pymlsem.exceptions import PriorError
from pymlsem.formula.design import MixedDesign
from pymlsem.priors import Prior

__all__ = [
    "CovariancePrior",
    "FixedPrior",
    "McmcglmmPrior",
    "SdCorrelationFactor",
    "as_pymlsem_priors",
    "bartlett_form",
    "expanded_log_density",
    "integrates_alpha",
    "lower_inverse_entries",
    "parse_mcmcglmm_prior",
]


@dataclasses.dataclass(frozen=True)
class FixedPrior:
    """``B = list(mu, V)``: multivariate normal prior of the fixed effects (data scale)."""

    mu: np.ndarray
    cov: np.ndarray


@dataclasses.dataclass(frozen=True)
class CovariancePrior:
    """``list(V, nu)`` (and ``alpha.mu``, ``alpha.V``) for a q x q covariance (q = 1: a variance)."""

    v: np.ndarray
    nu: float
    alpha_mu: np.ndarray | None = None
    alpha_v: np.ndarray | None = None

    @property
    def q(self) -> int:
        """Dimension of the covariance matrix."""
        return int(self.v.shape[0])

    @property
    def expanded(self) -> bool:
        """Whether the prior is parameter expanded."""
        return self.alpha_mu is not None


@dataclasses.dataclass(frozen=True)
class McmcglmmPrior:
    """A parsed MCMCglmm prior; ``None`` parts keep pymlsem's defaults."""

    b: FixedPrior | None
    r: CovariancePrior | None
    g: tuple[CovariancePrior | None, ...]

    def key(self) -> tuple:
        """Hashable description (for the compiled-model cache)."""

        def describe(part: Any) -> Any:
            if part is None:
                return None
            return tuple(
                (f.name, None if (v := getattr(part, f.name)) is None else np.asarray(v).round(12).tobytes())
                for f in dataclasses.fields(part)
            )

        return (describe(self.b), describe(self.r), tuple(describe(g) for g in self.g))


def _matrix(value: Any, q: int, where: str) -> np.ndarray:
    """A q x q symmetric positive definite matrix from a number, a vector (diagonal) or a matrix."""
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        array = array * np.eye(q)
    elif array.ndim == 1 and array.size == q:
        array = np.diag(array)
    if array.shape != (q, q):
        raise PriorError(f"{where}: V must be a number or a {q} x {q} matrix, not shape {np.shape(value)}")
    if not np.allclose(array, array.T) or np.any(np.linalg.eigvalsh(array) <= 0):
        raise PriorError(f"{where}: V must be symmetric positive definite")
    return array


def _vector(value: Any, size: int, where: str) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    array = np.full(size, float(array)) if array.ndim == 0 else array.reshape(-1)
    if array.size != size:
        raise PriorError(f"{where}: expected {size} values, got {array.size}")
    return array


def _keys(spec: Mapping, allowed: tuple[str, ...], where: str) -> None:
    if not isinstance(spec, Mapping):
        raise PriorError(f"{where} must be a dict such as {{'V': 1, 'nu': 0.002}}, not {spec!r}")
    unknown = set(spec) - set(allowed)
    if unknown:
        raise PriorError(f"{where}: unknown key(s) {sorted(unknown)}; use {', '.join(allowed)}")


def _covariance_prior(spec: Mapping, q: int, where: str) -> CovariancePrior:
    _keys(spec, ("V", "nu", "alpha.mu", "alpha.V"), where)
    if "V" not in spec or "nu" not in spec:
        raise PriorError(f"{where}: give both V and nu (e.g. {{'V': 1, 'nu': 0.002}})")
    nu = float(spec["nu"])
    if q == 1 and not nu > 0:
        raise PriorError(f"{where}: nu must be positive, not {nu}")
    if q > 1 and not nu > q - 1:
        raise PriorError(
            f"{where}: for a {q} x {q} covariance nu must exceed {q - 1} (a proper inverse-Wishart), not {nu}"
        )
    v = _matrix(spec["V"], q, where)
    if ("alpha.mu" in spec) != ("alpha.V" in spec):
        raise PriorError(f"{where}: parameter expansion needs both alpha.mu and alpha.V")
    if "alpha.mu" not in spec:
        return CovariancePrior(v, nu)
    alpha_mu = _vector(spec["alpha.mu"], q, f"{where} alpha.mu")
    alpha_v = _matrix(spec["alpha.V"], q, f"{where} alpha.V")
    return CovariancePrior(v, nu, alpha_mu, alpha_v)


def parse_mcmcglmm_prior(prior: Mapping[str, Any], design: MixedDesign, *, gaussian: bool) -> McmcglmmPrior:
    """Check an MCMCglmm-style prior against the model and parse it.

    Parameters
    ----------
    prior
        ``{"B": {"mu", "V"}, "R": {"V", "nu"}, "G": {"G1": {...}, ...}}``; every part optional.
    design
        The model's design (number of fixed effects, random blocks and their sizes).
    gaussian
        Whether the family has a residual variance (``R`` is only for Gaussian models).

    Returns
    -------
    McmcglmmPrior

    Raises
    ------
    PriorError
        Unknown keys, a wrong number of G entries, a V of the wrong shape or not positive definite, an
        improper inverse-Wishart, or ``R`` for a non-Gaussian family.
    """
    _keys(prior, ("B", "R", "G"), "prior")
    b = None
    if "B" in prior:
        _keys(prior["B"], ("mu", "V"), "prior B")
        p = len(design.fixed_names)
        mu = _vector(prior["B"].get("mu", 0.0), p, "prior B mu")
        cov = _matrix(prior["B"].get("V", 1e10), p, "prior B")
        b = FixedPrior(mu, cov)
    r = None
    if "R" in prior:
        if not gaussian:
            raise PriorError("prior R (the residual variance) is for family='gaussian' only")
        r = _covariance_prior(prior["R"], 1, "prior R")
        if r.expanded:
            raise PriorError("prior R: parameter expansion (alpha.mu, alpha.V) is for G-structures only")
    g: list[CovariancePrior | None] = [None] * len(design.blocks)
    if "G" in prior:
        entries = prior["G"]
        if not isinstance(entries, Mapping):
            raise PriorError("prior G must be a dict {'G1': {...}, 'G2': {...}}, one entry per random block")
        names = [f"G{k + 1}" for k in range(len(design.blocks))]
        unknown = set(entries) - set(names)
        if unknown:
            blocks = [
                f"{n} = ({' + '.join(b.names)} | {b.group})"
                for n, b in zip(names, design.blocks, strict=True)
            ]
            raise PriorError(
                f"prior G: unknown entries {sorted(unknown)}; this model has {len(names)} random block(s): "
                + ", ".join(blocks)
            )
        for k, (name, block) in enumerate(zip(names, design.blocks, strict=True)):
            if name in entries:
                g[k] = _covariance_prior(entries[name], block.q, f"prior G {name}")
    return McmcglmmPrior(b, r, tuple(g))


def fixed_effects(prior: FixedPrior) -> pt.TensorVariable:
    """``fixef ~ MvNormal(mu, V)`` (dims ``term``) in the current model."""
    if prior.cov.shape[0] == 0:
        return pt.zeros(0)
    diagonal = np.allclose(prior.cov, np.diag(np.diag(prior.cov)))
    if diagonal:
        return pm.Normal("fixef", prior.mu, np.sqrt(np.diag(prior.cov)), dims="term")
    return pm.MvNormal("fixef", prior.mu, cov=prior.cov, dims="term")


def _inverse_wishart_root(name: str, prior: CovariancePrior) -> pt.TensorVariable:
    """A square root R (R R' = G) of ``G ~ IW(nu V, nu)``, by the Bartlett decomposition of ``G^-1``.

    ``G^-1 ~ Wishart((nu V)^-1, nu)`` is ``C A A' C'`` with C the Cholesky factor of ``(nu V)^-1``, A lower
    triangular with ``A_ii^2 ~ chi^2(nu - i + 1)`` and standard normal entries below the diagonal. Then
    ``G = (C A)^-T (C A)^-1`` and ``R = (C A)^-T`` (upper triangular; any square root serves the likelihood).
    """
    q = prior.q
    if q == 1:
        variance = pm.InverseGamma(
            f"{name}_var", alpha=prior.nu / 2, beta=prior.nu * float(prior.v[0, 0]) / 2
        )
        return pt.sqrt(variance).reshape((1, 1))
    chol_inv = np.linalg.cholesky(np.linalg.inv(prior.nu * prior.v))
    chi2 = pm.ChiSquared(f"{name}_chi2", nu=prior.nu - np.arange(q), shape=q)
    below = pm.Normal(f"{name}_z", 0.0, 1.0, shape=q * (q - 1) // 2)
    rows, cols = np.tril_indices(q, -1)
    bartlett = pt.set_subtensor(pt.diag(pt.sqrt(chi2))[rows, cols], below)
    factor = pt.dot(chol_inv, bartlett)
    return pt.linalg.solve_triangular(factor, pt.eye(q), lower=True).T


def _symmetric(prior: CovariancePrior) -> bool:
    """Whether a parameter-expanded prior has ``alpha.mu = 0`` and diagonal ``alpha.V`` and ``V``: then
    ``alpha`` integrates out in closed form (:func:`expanded_log_density`)."""

    return bool(np.all(prior.alpha_mu == 0)) and _diagonal(prior.alpha_v) and _diagonal(prior.v)


def bartlett_form(prior: CovariancePrior) -> bool:
    """Whether :func:`block_root` samples a G entry by the Bartlett decomposition of an inverse-Wishart (not
    expanded); the engine families take these blocks as data (:mod:`pymlsem.engine.kernels.effects`)."""
    return not prior.expanded


def integrates_alpha(prior: CovariancePrior) -> bool:
    """Whether :func:`block_root` samples a G entry through its Cholesky factor with ``alpha`` integrated
    out (a symmetric expansion, :func:`expanded_log_density`); the engine families take these blocks as data
    too."""
    return prior.expanded and _symmetric(prior)


def lower_inverse_entries(entries: list[list[pt.TensorVariable]]) -> list[list[pt.TensorVariable]]:
    """The inverse of a lower triangular matrix, entry by entry by forward substitution, from its entries
    ``entries[i][t]`` (``t <= i``; tensors of one shape, a batch of matrices): ``inverse[i][j]``, zero above
    the diagonal."""
    q = len(entries)
    zero = pt.zeros_like(entries[0][0])
    inverse = [[zero] * q for _ in range(q)]
    for j in range(q):
        for i in range(j, q):
            total = (1.0 if i == j else 0.0) - sum((entries[i][t] * inverse[t][j] for t in range(j, i)), zero)
            inverse[i][j] = total / entries[i][i]
    return inverse


def expanded_log_density(
    factor: pt.TensorVariable,
    nu: pt.TensorVariable,
    psi: pt.TensorVariable,
    inverse_alpha_v: pt.TensorVariable,
) -> pt.TensorVariable:
    """Log-density of the Cholesky factor ``L`` of ``G = diag(alpha) G* diag(alpha)``, ``G* ~ IW(Psi, nu)``,
    ``alpha_i ~ N(0, alpha.V_ii)``, with ``alpha`` integrated out (``Psi = nu V`` diagonal).

    Given ``alpha`` the density of G is the inverse-Wishart's at ``D^-1 G D^-1`` times ``|D|^-(q + 1)``
    (``D = diag(alpha)``), that is ``|G|^-(nu + q + 1) / 2 prod_i |alpha_i|^nu exp(-alpha_i^2 Psi_ii
    (G^-1)_ii / 2)`` and the inverse-Wishart's constant; each ``alpha_i`` then integrates against its normal
    prior to ``Gamma((nu + 1) / 2) (2 / c_i)^((nu + 1) / 2) / sqrt(2 pi alpha.V_ii)`` with ``c_i = Psi_ii
    (G^-1)_ii + 1 / alpha.V_ii``. The factor adds the Jacobian of ``G = L L'``, ``2^q prod_i L_ii^(q - i)``
    (i from 0). tests/mlm/test_mcmcglmm_prior.py checks it against the integral over ``alpha`` by
    quadrature.

    Parameters
    ----------
    factor
        Lower triangular factors with a positive diagonal, ``(..., q, q)``.
    nu, psi, inverse_alpha_v
        The degrees of freedom ``(...)``, ``Psi_ii = nu V_ii`` and ``1 / alpha.V_ii`` ``(..., q)``.

    Returns
    -------
    TensorVariable
        The log-densities, ``(...)``.
    """
    q = int(factor.type.shape[-1])
    inverse = lower_inverse_entries([[factor[..., i, t] for t in range(i + 1)] for i in range(q)])
    half = (nu + 1.0) / 2.0
    log_norm = nu / 2.0 * pt.sum(pt.log(psi), axis=-1) - nu * q / 2.0 * np.log(2.0) + q * np.log(2.0)
    log_norm -= q * (q - 1) / 4.0 * np.log(np.pi) + sum(pt.gammaln(nu / 2.0 - j / 2.0) for j in range(q))
    log_norm += q * (half * np.log(2.0) + pt.gammaln(half) - 0.5 * np.log(2.0 * np.pi))
    log_norm += 0.5 * pt.sum(pt.log(inverse_alpha_v), axis=-1)
    total = log_norm
    for i in range(q):
        g_inverse_ii = sum(inverse[k][i] ** 2 for k in range(i, q))  # (G^-1)_ii
        total -= (nu + i + 1.0) * pt.log(factor[..., i, i])  # |G|^-(nu + q + 1) / 2, and L_ii^(q - i)
        total -= half * pt.log(psi[..., i] * g_inverse_ii + inverse_alpha_v[..., i])
    return total


def _expanded_draws(nu, psi, inverse_alpha_v, start, rng=None, size=None) -> np.ndarray:
    """Packed Cholesky factors of ``diag(alpha) G* diag(alpha)`` drawn by definition (prior predictive)."""
    q = psi.shape[-1]
    shape = tuple(np.atleast_1d(size)) if size is not None else ()
    rows, cols = np.tril_indices(q)
    chol_inv = np.linalg.cholesky(np.linalg.inv(np.diag(psi)))
    out = np.empty((*shape, rows.size))
    for index in np.ndindex(shape):
        bartlett = np.diag(np.sqrt(rng.chisquare(nu - np.arange(q))))
        bartlett[np.tril_indices(q, -1)] = rng.standard_normal(q * (q - 1) // 2)
        inverse = np.linalg.inv(chol_inv @ bartlett)  # G* = (C A)^-T (C A)^-1
        alpha = rng.normal(0.0, 1.0 / np.sqrt(inverse_alpha_v))
        g = (alpha[:, None] * inverse.T @ inverse) * alpha[None, :]
        out[index] = np.linalg.cholesky(g)[rows, cols]
    return out


class SdCorrelationFactor(Transform):
    """The packed Cholesky factor ``L`` of a covariance (row by row) from q log SDs and PyMC's
    ``CholeskyCorrTransform`` values of its correlation factor ``F``: ``L = diag(exp(y[:q])) F(y[q:])``.

    NUTS samples a covariance's SDs and correlations apart this way, as it does the default priors' (a
    correlation's scale does not shrink with an SD). Row i of ``L`` (its i + 1 entries) is ``s_i`` times a
    unit row ``F_i``; from ``(s_i, F_i's i entries below the diagonal)`` to it the Jacobian is ``s_i^i /
    F_ii``; with ``exp``'s ``s_i`` and the correlation transform's ``F_ii^(i + 2)`` (i from 0) the
    log-Jacobian is ``sum_i (i + 1) log L_ii``.
    """

    name = "sd-correlation-factor"
    ndim_supp = 1

    def __init__(self, q: int) -> None:
        self.q = q
        self.correlation = CholeskyCorrTransform(n=q, upper=False)
        self.rows, self.cols = np.tril_indices(q)

    def factor(self, value) -> pt.TensorVariable:
        """``L`` (..., q, q) at the unconstrained values (..., q (q + 1) / 2)."""
        sd = pt.exp(value[..., : self.q])
        return sd[..., :, None] * self.correlation.backward(value[..., self.q :])

    def backward(self, value, *inputs):
        return self.factor(value)[..., self.rows, self.cols]

    def forward(self, value, *inputs):
        factor = pt.zeros((*value.shape[:-1], self.q, self.q))[..., self.rows, self.cols].set(value)
        sd = pt.sqrt(pt.sum(factor**2, axis=-1))
        correlation = self.correlation.forward(factor / sd[..., :, None])
        return pt.concatenate([pt.log(sd), correlation], axis=-1)

    def log_jac_det(self, value, *inputs):
        diagonal = pt.diagonal(self.factor(value), axis1=-2, axis2=-1)
        return pt.sum(np.arange(1, self.q + 1) * pt.log(diagonal), axis=-1)


def _expanded_root(name: str, prior: CovariancePrior) -> pt.TensorVariable:
    """The Cholesky factor of G under a symmetric expansion, ``alpha`` integrated out
    (:func:`expanded_log_density`): one variable ``<name>_chol``, the factor's lower triangle row by row,
    sampled as the SDs (log scale) and the correlations (:class:`SdCorrelationFactor`)."""
    q = prior.q
    psi = prior.nu * np.diag(prior.v)
    inverse_alpha_v = 1.0 / np.diag(prior.alpha_v)

    def logp(value, nu, psi, inverse_alpha_v, start):
        factor = pm.expand_packed_triangular(q, value, lower=True)
        return expanded_log_density(pt.specify_shape(factor, (q, q)), nu, psi, inverse_alpha_v)

    def support_point(rv, size, nu, psi, inverse_alpha_v, start):
        return start

    packed = pm.CustomDist(
        f"{name}_chol",
        float(prior.nu),
        psi,
        inverse_alpha_v,
        np.eye(q)[np.tril_indices(q)],  # chains start at G = I (also the value's shape)
        logp=logp,
        random=_expanded_draws,
        support_point=support_point,
        transform=SdCorrelationFactor(q),
        signature="(),(q),(q),(n)->(n)",
    )
    return pm.expand_packed_triangular(q, packed, lower=True)


def _diagonal(matrix: np.ndarray) -> bool:
    return bool(np.allclose(matrix, np.diag(np.diag(matrix))))


def _half_t_sd(prior: CovariancePrior) -> bool:
    """Whether an expanded prior on one variance is a half-t prior on its SD (:func:`as_pymlsem_priors`)."""
    return prior.expanded and prior.q == 1 and _symmetric(prior)


def as_pymlsem_priors(
    prior: McmcglmmPrior, terms: Sequence[str], labels: Sequence[str], residual_scale: float | None = None
) -> tuple[McmcglmmPrior, dict[str, Prior]]:
    """The parts of an MCMCglmm prior that are pymlsem priors of single parameters, as ``priors=`` entries.

    * ``B`` with a diagonal ``V``: independent normal priors on the data scale, ``"fixef:<term>":
      normal(mu_k, sqrt(V_kk))`` (the intercept's then has its lme4 meaning, as MCMCglmm's).
    * ``R``: ``sigma^2 ~ IG(nu / 2, nu V / 2)`` is the residual SD's prior on the variance; ``priors``'
      ``"sigma"`` is on the standardised scale (``sigma = sd(y) t``), so it becomes ``"sigma":
      inv_gamma(nu / 2, nu V / (2 sd(y)^2))[var]``, the same prior.
    * a G entry on one variance, inverse-Wishart: ``"sd:<label>": inv_gamma(nu / 2, nu V / 2)[var]``;
      parameter expanded with ``alpha.mu = 0``: ``|alpha| sqrt(G*)`` with ``G* ~ IG(nu / 2, nu V / 2)`` and
      ``alpha ~ N(0, alpha.V)`` is ``sqrt(V alpha.V) |t_nu|``, the SD prior ``"sd:<label>": halft(nu,
      sqrt(V alpha.V))`` (data or link scale).

    The engine families take these as data, like any prior of those keys. What remains (a ``B`` with
    correlations, G entries on covariance matrices) is sampled as written (:func:`block_root`); the engine
    families take the G entries on covariance matrices as data too (:func:`bartlett_form`).

    Parameters
    ----------
    prior
        The parsed MCMCglmm prior.
    terms
        The fixed-effect terms, in the order of ``prior.b``.
    labels
        The random-effect blocks' labels, in the order of ``prior.g``.
    residual_scale
        ``sd(y)`` of a Gaussian model (the unit of the standardised ``"sigma"``); None without ``R``.

    Returns
    -------
    prior, priors
        The prior without the parts converted (None there), and the ``priors=`` entries that replace them.
    """
    converted: dict[str, Prior] = {}
    b, r = prior.b, prior.r
    if b is not None and b.cov.shape[0] and _diagonal(b.cov):
        sds = np.sqrt(np.diag(b.cov))
        converted |= {
            f"fixef:{term}": Prior("normal", (float(mu), float(sd)))
            for term, mu, sd in zip(terms, b.mu, sds, strict=True)
        }
        b = None
    if r is not None and residual_scale is not None:
        converted["sigma"] = _variance_prior(r, residual_scale**2)
        r = None
    entries = list(prior.g)
    for k, (entry, label) in enumerate(zip(prior.g, labels, strict=True)):
        if entry is not None and entry.q == 1 and not entry.expanded:
            converted[f"sd:{label}"] = _variance_prior(entry, 1.0)
            entries[k] = None
        elif entry is not None and _half_t_sd(entry):
            scale = float(np.sqrt(entry.v[0, 0] * entry.alpha_v[0, 0]))
            converted[f"sd:{label}"] = Prior("halft", (float(entry.nu), scale))
            entries[k] = None
    return McmcglmmPrior(b, r, tuple(entries)), converted


def _variance_prior(prior: CovariancePrior, unit: float) -> Prior:
    """``IG(nu / 2, nu V / 2)`` on one variance, in ``unit`` (a variance in the data's units), on the SD."""
    return Prior("inv_gamma", (prior.nu / 2, prior.nu * float(prior.v[0, 0]) / 2 / unit), scale="var")


def block_root(design: MixedDesign, k: int, label: str, prior: CovariancePrior) -> pt.TensorVariable:
    """Square root of block k's covariance under an MCMCglmm G prior, recording ``sd__`` and ``corr__``."""
    block = design.blocks[k]
    dim = f"{label}__effect"
    model = pm.modelcontext(None)
    model.add_coord(dim, list(block.names))
    if integrates_alpha(prior):  # G itself, alpha integrated out: no sign modes, no ridge
        root = _expanded_root(f"G_{label}", prior)
    else:
        root = _inverse_wishart_root(f"G_{label}", prior)
    if prior.expanded and not _symmetric(prior):
        if prior.q == 1:
            alpha = pm.Normal(f"alpha__{label}", prior.alpha_mu[0], np.sqrt(prior.alpha_v[0, 0]), shape=1)
        else:
            alpha = pm.MvNormal(f"alpha__{label}", prior.alpha_mu, cov=prior.alpha_v)
        root = alpha[:, None] * root
    cov = pt.dot(root, root.T)
    sd = pm.Deterministic(f"sd__{label}", pt.sqrt(pt.diagonal(cov)), dims=dim)
    if block.correlated and block.q > 1:
        model.add_coord(f"{dim}_", list(block.names))
        pm.Deterministic(f"corr__{label}", cov / pt.outer(sd, sd), dims=(dim, f"{dim}_"))
    return root
