"""Ordered (binary/ordinal) indicators: likelihood, category probabilities and threshold variables.

An ordered variable y with K categories coded 0..K-1 is the discretised latent response
y* = eta + e (theta parameterization: e has variance 1 at level 1), with thresholds
tau_1 < ... < tau_{K-1} and tau_0 = -inf, tau_K = +inf:

    P(y = c | eta) = F(tau_{c+1} - eta) - F(tau_c - eta)         (c = 0..K-1, 1-based taus)

where F is the standard normal CDF (``link="probit"``) or the logistic CDF (``link="logit"``).
With K = 2 this is the probit/logit Bernoulli model P(y = 1) = F(eta - tau_1).

:func:`ordinal_loglik` builds the PyTensor log-likelihood from log-CDFs only (no CDF differences that
underflow), so that it and its gradient stay finite far in the tails; :func:`ordinal_probabilities` is
the numpy version for simulation and posterior predictive checks. :func:`threshold_variable` creates the
random variable of one variable's free thresholds, increasing by construction (used by
:func:`pymlsem.build.parameters.make_random_variables`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc.logprob.transforms import Transform
from pytensor.tensor.special import log_softmax, softmax
from scipy import special, stats

from pymlsem.build.log_ndtr import log_ndtr
from pymlsem.exceptions import DataError, ModelSpecificationError, PriorError

LINKS: tuple[str, ...] = ("probit", "logit")

Bounds = tuple[float, float]


# --------------------------------------------------------------------------------------------------
# log-likelihood
# --------------------------------------------------------------------------------------------------


def softplus(x: pt.TensorLike) -> pt.TensorVariable:
    """``log(1 + exp(x))`` as ``max(x, 0) + log1p(exp(-|x|))``, made of operations with numpy
    implementations: PyTensor's ``softplus`` has none, so a graph evaluated as written (the post-fit
    evaluations over draws) called it once per element in Python.

    Written with switches on ``x > 0`` so that autodiff's gradient is the logistic function to full
    precision everywhere (``(x + |x|) / 2`` would add and cancel one half for negative ``x``) and 1/2 at 0
    (where ``|x|``'s derivative is 0); both branches stay finite.
    """
    x = pt.as_tensor_variable(x)
    positive = pt.gt(x, 0.0)
    return pt.switch(positive, x, 0.0) + pt.log1p(pt.exp(pt.switch(positive, -x, x)))


def log_expit(x: pt.TensorLike) -> pt.TensorVariable:
    """log of the logistic CDF, ``-log(1 + exp(-x))``, computed as ``-softplus(-x)``."""
    return -softplus(-pt.as_tensor_variable(x))


_LOG_CDF: dict[str, Callable[[pt.TensorLike], pt.TensorVariable]] = {"probit": log_ndtr, "logit": log_expit}
_CDF: dict[str, Callable[[np.ndarray], np.ndarray]] = {"probit": special.ndtr, "logit": special.expit}


def _check_link(link: str) -> None:
    if link not in LINKS:
        raise ModelSpecificationError(f"link must be one of {', '.join(LINKS)}, not {link!r}")


def ordinal_loglik(
    eta: pt.TensorLike,
    thresholds: pt.TensorLike,
    codes: np.ndarray,
    *,
    link: str = "probit",
    n_categories: int | None = None,
) -> pt.TensorVariable:
    """Sum of log P(y = code) over the observed entries of one ordered variable.

    Parameters
    ----------
    eta
        Linear predictor of the latent response, shape ``(n,)`` (a scalar is broadcast to all entries).
    thresholds
        The variable's K - 1 increasing thresholds, a 1-D tensor (or array).
    codes
        Integer array ``(n,)``: the category 0..K-1 of each entry, ``-1`` for a missing value (skipped),
        as :func:`pymlsem.data.categorical.ordinal_codes` gives them.
    link
        ``"probit"`` (standard normal F, the default) or ``"logit"``.
    n_categories
        K; needed only when the length of ``thresholds`` is not known statically.

    Returns
    -------
    TensorVariable
        A scalar. The first and last categories use one log-CDF each, middle categories
        ``log(F(b) - F(a)) = log F(b) + log1mexp(log F(a) - log F(b))`` on the side of the distribution
        where the interval is far from the centre (F is symmetric), so that nothing underflows.

    Raises
    ------
    DataError
        When ``codes`` are not integers in -1..K-1 or do not match ``eta`` in length.
    ModelSpecificationError
        For an unknown ``link`` or thresholds of unknown length.
    """
    _check_link(link)
    log_cdf = _LOG_CDF[link]
    eta = pt.as_tensor_variable(eta)
    thresholds = pt.as_tensor_variable(thresholds)
    if eta.ndim == 0:
        eta = pt.alloc(eta, np.asarray(codes).shape[0])
    if eta.ndim != 1 or thresholds.ndim != 1:
        raise ValueError(f"eta and thresholds must be 1-D, got {eta.ndim}-D and {thresholds.ndim}-D")
    n_thresholds = thresholds.type.shape[0]
    if n_categories is not None:
        if n_thresholds is not None and n_thresholds != n_categories - 1:
            raise ModelSpecificationError(
                f"n_categories={n_categories} does not match the {n_thresholds} threshold(s) given"
            )
        n_thresholds = n_categories - 1
    if n_thresholds is None:
        raise ModelSpecificationError("the number of thresholds is not known statically: pass n_categories=K")
    if n_thresholds < 1:
        raise ModelSpecificationError("an ordered variable needs at least one threshold (two categories)")
    codes = _check_codes(codes, n_thresholds + 1, eta.type.shape[0])

    # one term per category: the thresholds are only ever indexed by scalars (a long constant index
    # into a vector built with pt.stack would be rewritten into a huge MakeVector that numba rejects)
    terms = []
    for c in range(n_thresholds + 1):
        at = np.flatnonzero(codes == c)
        if not at.size:
            continue
        eta_c = eta[at]
        if c == 0:
            terms.append(pt.sum(log_cdf(thresholds[0] - eta_c)))
        elif c == n_thresholds:
            terms.append(pt.sum(log_cdf(eta_c - thresholds[c - 1])))
        else:
            terms.append(pt.sum(interval_loglik(thresholds[c - 1] - eta_c, thresholds[c] - eta_c, link)))
    if not terms:
        return pt.as_tensor_variable(np.float64(0.0))
    return terms[0] if len(terms) == 1 else pt.add(*terms)


def ordinal_loglik_matrix(
    eta: pt.TensorLike,
    thresholds: pt.TensorLike,
    codes: np.ndarray | pt.TensorVariable,
    *,
    link: str = "probit",
    per_row: bool = False,
) -> pt.TensorVariable:
    """Sum of log P(y = code) over the observed entries of several ordered variables with K categories each.

    The vectorised form of :func:`ordinal_loglik` (same tail-safe terms): one elementwise expression per
    category over the whole ``(n, m)`` matrix, selected by masks, so that the graph does not grow with the
    number of variables.

    Parameters
    ----------
    eta
        Linear predictors, shape ``(n, m)``: one column per variable.
    thresholds
        Shape ``(m, K - 1)``: each variable's increasing thresholds.
    codes
        Integer array ``(n, m)`` of categories 0..K-1, ``-1`` for missing values (skipped): the data
        (constant masks, only the categories present are computed), or a symbolic integer matrix (e.g.
        replicated data: every category's term is computed and selected).
    link
        ``"probit"`` or ``"logit"``.
    per_row
        Return each row's sum (shape ``(n,)``) instead of the total.

    Returns
    -------
    TensorVariable
        A scalar, or shape ``(n,)`` with ``per_row``.
    """
    _check_link(link)
    eta = pt.as_tensor_variable(eta)
    thresholds = pt.as_tensor_variable(thresholds)
    symbolic = isinstance(codes, pt.Variable)
    if not symbolic:
        codes = np.asarray(codes)

    def total(value: pt.TensorVariable) -> pt.TensorVariable:
        return pt.sum(value, axis=-1) if per_row else pt.sum(value)

    def where(mask, a: float, b: float):
        return pt.switch(mask, a, b) if symbolic else np.where(mask, a, b)

    def anywhere(mask) -> bool:  # whether the term is needed: always for symbolic codes
        return True if symbolic else bool(mask.any())

    def everywhere(mask) -> bool:  # whether the term needs no mask
        return False if symbolic else bool(mask.all())

    n_thresholds = thresholds.type.shape[-1]
    if n_thresholds is None or codes.ndim != 2:
        raise ModelSpecificationError("thresholds need a static shape (m, K-1) and codes a 2-D array")
    if not symbolic:
        _check_codes(codes.ravel(), n_thresholds + 1, None)
    last = n_thresholds
    # first and last categories: log F(sign * (eta - edge)), one evaluation for all entries
    is_first, is_last = _equals(codes, 0), _equals(codes, last)
    edge_mask = is_first | is_last
    terms = []
    if anywhere(edge_mask):
        edge = _select(is_first, thresholds[:, 0]) + _select(is_last, thresholds[:, last - 1])
        value = edge_category_loglik(eta, edge, is_last, link)
        terms.append(total(value if everywhere(edge_mask) else pt.switch(edge_mask, value, 0.0)))
    middle_mask = (codes > 0) & (codes < last)
    if anywhere(middle_mask):
        # a dummy interval (-1, 1) where the entry is not a middle category keeps every branch finite
        lower = pt.as_tensor(where(middle_mask, 0.0, -1.0))
        upper = pt.as_tensor(where(middle_mask, 0.0, 1.0))
        for c in range(1, last):
            lower = lower + _select(_equals(codes, c), thresholds[:, c - 1])
            upper = upper + _select(_equals(codes, c), thresholds[:, c])
        eta_middle = pt.switch(middle_mask, eta, 0.0)
        value = interval_loglik(lower - eta_middle, upper - eta_middle, link)
        terms.append(total(pt.switch(middle_mask, value, 0.0)))
    if not terms:
        return pt.zeros(codes.shape[0]) if per_row else pt.as_tensor_variable(np.float64(0.0))
    return terms[0] if len(terms) == 1 else pt.add(*terms)


def category_loglik(below, above, is_last, is_middle, link: str) -> pt.TensorVariable:
    """log P(y = c) of every answer in one pass: two evaluations of the link's log-CDF per answer.

    ``below`` and ``above`` are the thresholds below and above the answer's category minus its linear
    predictor (``tau_c - eta``, ``tau_c+1 - eta``; for the first category ``above`` is used, for the last
    ``below``, and the other one only needs to be finite); ``is_last`` and ``is_middle`` masks (boolean
    tensors). The first category is ``log F(above)``, the last ``log F(-below)``. A middle one is
    ``F(b) - F(a)`` with ``F(above) - F(below) = F(-below) - F(-above)`` (``F`` symmetric): the side where
    ``a + b <= 0`` puts ``a < 0`` in the lower tail, where ``log F(a)`` is accurate; then
    ``log F(b) + log(1 - F(a) / F(b))``. At the edges ``a`` is a stand-in whose term is not used, far enough
    below ``b`` that it and its gradient stay finite.
    """
    log_cdf = _LOG_CDF[link]
    flip = is_last | (is_middle & pt.gt(below + above, 0.0))
    b = pt.switch(flip, -below, above)
    a = pt.switch(is_middle, pt.switch(flip, -above, below), pt.minimum(b, 0.0) - 1.0)
    log_b = log_cdf(b)
    return log_b + pt.switch(is_middle, pt.log1mexp(log_cdf(a) - log_b), 0.0)


def edge_category_loglik(eta, edge, is_last, link: str) -> pt.TensorVariable:
    """log P(y = first category) = log F(edge - eta), or log P(y = last) = log F(eta - edge) where
    ``is_last`` (a mask, numpy or symbolic): one evaluation of the link's log-CDF for both."""
    sign = pt.switch(is_last, 1.0, -1.0) if isinstance(is_last, pt.Variable) else np.where(is_last, 1.0, -1.0)
    return _LOG_CDF[link](sign * (eta - edge))


def interval_loglik(lower, upper, link: str) -> pt.TensorVariable:
    """log(F(upper) - F(lower)) for ``lower < upper`` (thresholds minus the linear predictor), tail-safe:
    :func:`category_loglik` of a middle category."""
    return category_loglik(lower, upper, pt.as_tensor(np.array(False)), pt.as_tensor(np.array(True)), link)


def _equals(codes: np.ndarray | pt.TensorVariable, c: int):
    """``codes == c``: a numpy mask, or a symbolic one (``==`` on a PyTensor variable is identity)."""
    return pt.eq(codes, c) if isinstance(codes, pt.Variable) else codes == c


def _select(mask: np.ndarray | pt.TensorVariable, row: pt.TensorVariable) -> pt.TensorVariable:
    """``row[j]`` where ``mask[i, j]``, else 0: an (n, m) matrix from a mask and an (m,) vector."""
    if isinstance(mask, pt.Variable):
        return pt.switch(mask, row[None, :], 0.0)
    return pt.as_tensor(mask.astype(float)) * row[None, :]


def _check_codes(codes: np.ndarray, n_categories: int, n: int | None) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 1:
        raise DataError(f"ordinal codes must be a 1-D array, got shape {codes.shape}")
    if not np.issubdtype(codes.dtype, np.integer):
        raise DataError(
            f"ordinal codes must be integers (0..K-1, -1 for missing), got dtype {codes.dtype}; "
            "build them with pymlsem.data.categorical.ordinal_codes"
        )
    if n is not None and codes.shape[0] != n:
        raise DataError(f"{codes.shape[0]} ordinal codes for a linear predictor of length {n}")
    bad = (codes < -1) | (codes >= n_categories)
    if bad.any():
        raise DataError(
            f"ordinal codes must be -1 (missing) or 0..{n_categories - 1} for {n_categories} categories; "
            f"found {sorted(set(codes[bad].tolist()))[:5]}"
        )
    return codes.astype(np.int64)


def ordinal_probabilities(eta: np.ndarray, thresholds: np.ndarray, link: str = "probit") -> np.ndarray:
    """Category probabilities P(y = c | eta), c = 0..K-1, in numpy (simulation, predictive checks).

    Parameters
    ----------
    eta
        Linear predictor(s), shape ``(..., n)``.
    thresholds
        Increasing thresholds, shape ``(..., K-1)`` (leading dimensions, e.g. draws, broadcast with those
        of ``eta``).
    link
        ``"probit"`` or ``"logit"``.

    Returns
    -------
    numpy.ndarray
        Shape ``(..., n, K)``; rows sum to 1.
    """
    _check_link(link)
    cdf = _CDF[link]
    eta = np.asarray(eta, dtype=np.float64)
    tau = np.asarray(thresholds, dtype=np.float64)
    if tau.ndim == 0 or tau.shape[-1] < 1:
        raise ModelSpecificationError("an ordered variable needs at least one threshold (two categories)")
    if np.any(np.diff(tau, axis=-1) <= 0):
        raise ModelSpecificationError("thresholds must be strictly increasing")
    pad = np.broadcast_to(np.inf, (*tau.shape[:-1], 1))
    lower = np.concatenate([-pad, tau], axis=-1)[..., None, :] - eta[..., :, None]
    upper = np.concatenate([tau, pad], axis=-1)[..., None, :] - eta[..., :, None]
    with np.errstate(invalid="ignore"):
        flip = (lower + upper) > 0  # compute far-tail intervals on the other side (F symmetric)
    a = np.where(flip, -upper, lower)
    b = np.where(flip, -lower, upper)
    return cdf(b) - cdf(a)


# --------------------------------------------------------------------------------------------------
# threshold random variables
# --------------------------------------------------------------------------------------------------


def _segments(bounds: Sequence[Bounds]) -> list[tuple[int, int, float, float]]:
    """Runs of consecutive thresholds with the same bounds: (start, stop, lower, upper)."""
    out: list[tuple[int, int, float, float]] = []
    for i, (lo, hi) in enumerate(bounds):
        if out and (out[-1][2], out[-1][3]) == (lo, hi):
            start, _, _, _ = out[-1]
            out[-1] = (start, i + 1, lo, hi)
        else:
            out.append((i, i + 1, float(lo), float(hi)))
    return out


class BoundedOrdered(Transform):
    """An increasing vector whose runs of elements lie between fixed bounds.

    Used for the free thresholds of a variable with some thresholds fixed (``y | 0*t1 + t2 + t3``):
    ``t2 < t3`` must both exceed 0. Each run ("segment") of consecutive free thresholds between the same
    fixed neighbours maps R^m onto ``lower < x_1 < ... < x_m < upper``:

    * no bounds: ``x_1 = v_1``, ``x_j = x_{j-1} + exp(v_j)`` (PyMC's ordered transform);
    * lower bound only: ``x_j = lower + sum_{i<=j} exp(v_i)``;
    * upper bound only: ``x_j = upper - sum_{i>=j} exp(v_i)``;
    * both: ``x = lower + (upper - lower) cumsum(softmax(v, 0))[:m]`` (stick-breaking gaps), whose
      log-Jacobian is ``m log(upper - lower) + sum log softmax(v, 0)``.

    Parameters
    ----------
    bounds
        ``(lower, upper)`` of each element, ``-inf``/``inf`` where there is no fixed neighbour; equal
        consecutive pairs form one segment.
    """

    name = "bounded_ordered"
    ndim_supp = 1

    def __init__(self, bounds: Sequence[Bounds]) -> None:
        self.segments = _segments(bounds)

    def backward(self, value, *inputs):
        parts = []
        for start, stop, lo, hi in self.segments:
            v = value[..., start:stop]
            if np.isinf(lo) and np.isinf(hi):
                steps = pt.concatenate([v[..., :1], pt.exp(v[..., 1:])], axis=-1)
                parts.append(pt.cumsum(steps, axis=-1))
            elif np.isinf(hi):
                parts.append(lo + pt.cumsum(pt.exp(v), axis=-1))
            elif np.isinf(lo):
                parts.append(hi - pt.cumsum(pt.exp(v)[..., ::-1], axis=-1)[..., ::-1])
            else:
                gaps = softmax(pt.concatenate([v, pt.zeros_like(v[..., :1])], axis=-1), axis=-1)
                parts.append(lo + (hi - lo) * pt.cumsum(gaps, axis=-1)[..., : stop - start])
        return parts[0] if len(parts) == 1 else pt.concatenate(parts, axis=-1)

    def forward(self, value, *inputs):
        parts = []
        for start, stop, lo, hi in self.segments:
            x = value[..., start:stop]
            if np.isinf(lo) and np.isinf(hi):
                parts.append(pt.concatenate([x[..., :1], pt.log(pt.diff(x, axis=-1))], axis=-1))
                continue
            edges = [x]
            if not np.isinf(lo):
                edges.insert(0, pt.full_like(x[..., :1], lo))
            if not np.isinf(hi):
                edges.append(pt.full_like(x[..., :1], hi))
            log_gaps = pt.log(pt.diff(pt.concatenate(edges, axis=-1), axis=-1))
            if np.isinf(hi) or np.isinf(lo):
                parts.append(log_gaps)
            else:
                parts.append(log_gaps[..., :-1] - pt.shape_padright(log_gaps[..., -1]))
        return parts[0] if len(parts) == 1 else pt.concatenate(parts, axis=-1)

    def log_jac_det(self, value, *inputs):
        total = pt.zeros_like(value[..., 0])
        for start, stop, lo, hi in self.segments:
            v = value[..., start:stop]
            if np.isinf(lo) and np.isinf(hi):
                total = total + pt.sum(v[..., 1:], axis=-1)
            elif np.isinf(lo) or np.isinf(hi):
                total = total + pt.sum(v, axis=-1)
            else:
                z = pt.concatenate([v, pt.zeros_like(v[..., :1])], axis=-1)
                total = total + (stop - start) * math.log(hi - lo) + pt.sum(log_softmax(z, axis=-1), axis=-1)
        return total


#: prior family -> (PyMC distribution, scipy frozen distribution from the arguments in FAMILIES order)
_THRESHOLD_FAMILIES: dict[str, tuple[type, Callable[..., stats.rv_continuous]]] = {
    "normal": (pm.Normal, lambda mu, sigma: stats.norm(loc=mu, scale=sigma)),
    "student_t": (pm.StudentT, lambda nu, mu, sigma: stats.t(df=nu, loc=mu, scale=sigma)),
    "cauchy": (pm.Cauchy, lambda alpha, beta: stats.cauchy(loc=alpha, scale=beta)),
    "uniform": (pm.Uniform, lambda lower, upper: stats.uniform(loc=lower, scale=upper - lower)),
}


def increasing_initial_values(starts: Sequence[float] | None, bounds: Sequence[Bounds]) -> np.ndarray:
    """Initial threshold values that are increasing and inside their bounds.

    ``starts`` are kept, per segment, when they already are; otherwise a segment gets evenly spread
    values: ``linspace(-1, 1, m)`` without bounds, steps of 0.5 from a single bound, equal gaps
    between two bounds.
    """
    m = len(bounds)
    values = np.full(m, np.nan) if starts is None else np.asarray(starts, dtype=np.float64).copy()
    for start, stop, lo, hi in _segments(bounds):
        x = values[start:stop]
        k = stop - start
        fine = np.all(np.isfinite(x)) and np.all(np.diff(x) > 0) and x[0] > lo and x[-1] < hi
        if fine:
            continue
        if np.isinf(lo) and np.isinf(hi):
            values[start:stop] = np.linspace(-1.0, 1.0, k) if k > 1 else 0.0
        elif np.isinf(hi):
            values[start:stop] = lo + 0.5 * np.arange(1, k + 1)
        elif np.isinf(lo):
            values[start:stop] = hi - 0.5 * np.arange(k, 0, -1)
        else:
            values[start:stop] = lo + (hi - lo) * np.arange(1, k + 1) / (k + 1)
    return values


def threshold_variable(
    name: str,
    family: str,
    hyper: Mapping[str, pt.TensorVariable],
    bounds: Sequence[Bounds],
    *,
    dims: str,
    initval: np.ndarray | None = None,
) -> pt.TensorVariable:
    """The random variable of one ordered variable's free thresholds (inside a model context).

    The density is the product of the elementwise priors restricted to increasing values inside the
    bounds set by fixed thresholds (blavaan's and Stan's ordered-vector prior; its normalising constant
    does not depend on the parameters and is left out). The values are made increasing by PyMC's
    ordered transform, or by :class:`BoundedOrdered` when some thresholds are fixed. Forward draws
    (``pm.draw``, prior predictive) take each element from its prior truncated to its bounds and sort
    each segment: exact when the thresholds of a segment share one prior (the default), an
    approximation otherwise.

    Parameters
    ----------
    name
        Variable name, e.g. ``"thresholds_y1"``.
    family
        Prior family (a key of :data:`pymlsem.priors.FAMILIES` on the real line: normal, student_t,
        cauchy, uniform).
    hyper
        The family's arguments by name (vectors over ``dims``, typically ``pm.Data``).
    bounds
        ``(lower, upper)`` per free threshold from the fixed thresholds around it.
    dims
        Dimension name (its coordinates are the thresholds, ``t1``, ...).
    initval
        Increasing initial values (see :func:`increasing_initial_values`).
    """
    if family not in _THRESHOLD_FAMILIES:
        raise PriorError(
            f"the prior of {name} must be on the real line ({', '.join(_THRESHOLD_FAMILIES)}), got {family}"
        )
    dist_class, frozen = _THRESHOLD_FAMILIES[family]
    arg_names = tuple(hyper)
    lower = np.array([b[0] for b in bounds], dtype=np.float64)
    upper = np.array([b[1] for b in bounds], dtype=np.float64)
    segments = _segments(bounds)

    def logp(value, *params):
        elementwise = pm.logp(dist_class.dist(**dict(zip(arg_names, params, strict=True))), value)
        ok = pt.all(pt.ge(value, lower)) & pt.all(pt.le(value, upper))
        for start, stop, _, _ in segments:
            if stop - start > 1:
                ok = ok & pt.all(pt.ge(pt.diff(value[..., start:stop], axis=-1), 0.0))
        return pt.switch(ok, pt.sum(elementwise, axis=-1), -np.inf)

    def random(*params, rng=None, size=None):
        params = [np.asarray(p, dtype=np.float64) for p in params]
        core = np.broadcast_shapes(*(p.shape for p in params), lower.shape)
        shape = core if size is None else (*tuple(size), core[-1])
        dist = frozen(*params)
        low, high = dist.cdf(lower), dist.cdf(upper)
        u = rng.uniform(size=shape)
        draws = np.clip(dist.ppf(low + u * (high - low)), lower, upper)
        for start, stop, _, _ in segments:
            draws[..., start:stop] = np.sort(draws[..., start:stop], axis=-1)
        return draws

    has_bounds = bool(np.isfinite(lower).any() or np.isfinite(upper).any())
    kwargs = {}
    if has_bounds:
        kwargs["transform"] = BoundedOrdered(bounds)
    elif len(bounds) > 1:
        kwargs["transform"] = pm.distributions.transforms.ordered
    signature = ",".join(["(k)"] * len(arg_names)) + "->(k)"
    return pm.CustomDist(
        name,
        *(hyper[a] for a in arg_names),
        logp=logp,
        random=random,
        signature=signature,
        dims=dims,
        initval=initval,
        **kwargs,
    )
