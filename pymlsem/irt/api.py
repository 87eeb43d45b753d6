"""``pymlsem.irt``: fit a (two-level) 1PL / 2PL / graded response IRT model, logistic or normal ogive,
with NUTS, each person's trait integrated out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from pymlsem.engine.irt import bind, free_shapes
from pymlsem.engine.kernel_sampling import sample
from pymlsem.exceptions import ModelSpecificationError
from pymlsem.irt.data import irt_data
from pymlsem.irt.fit import IRTFit
from pymlsem.irt.model import DEFAULT_NODES, LINKS, IRTStructure, build_irt_model
from pymlsem.sample import SamplerSettings, is_integer, with_nutpie_adaptation

__all__ = ["irt"]

#: fewer grid points than this cannot integrate a trait
_MIN_NODES = 11
#: the values of ``discrimination``
_DISCRIMINATIONS = ("item", "common")


def irt(
    data: pd.DataFrame,
    items: Sequence[str],
    cluster: str | None = None,
    *,
    discrimination: str = "item",
    link: str = "logit",
    n_nodes: int = DEFAULT_NODES,
    sampler: str = "nutpie",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | None = None,
    progressbar: bool = True,
    **sampler_kw: Any,
) -> IRTFit:
    """Fit an IRT model with one trait, single-level or with a cluster part of the trait: the
    two-parameter logistic (2PL) model for binary items, Samejima's graded response model for ordinal ones,
    or either with one discrimination shared by every item (the 1PL model for binary items).

    ``P(y_ik = 1) = logistic(a_k theta_i + d_k)`` for a binary item,
    ``P(y_ik >= c) = logistic(a_k theta_i - kappa_kc)`` (ascending thresholds) for an ordinal one, with
    ``theta_i = u_j + e_i``, ``e_i ~ N(0, 1)`` and, with ``cluster``, ``u_j ~ N(0, sigma_b^2)`` (the
    two-level IRT model with one trait whose school part shifts every item, as mirt's ``mixedmirt`` with a
    random intercept). Each person's trait is integrated out of
    the log-density on a grid of ``n_nodes`` points, so NUTS samples only the item parameters and the
    clusters' parts (priors and the integral: :mod:`pymlsem.irt.model`); trait scores are computed
    afterwards from each person's posterior on the grid.

    Parameters
    ----------
    data
        One row per person (not modified). Missing answers are allowed (missing at random).
    items
        The items: binary (0/1, two numbers, or an ordered Categorical with two categories; the second
        category is the answer 1) or ordinal (numbers or an ordered Categorical, 3-20 categories).
    cluster
        The column of cluster labels, for a trait with a cluster part.
    discrimination
        ``"item"`` (default): each item its own discrimination ``a_k``. ``"common"``: one ``a`` for all
        items; for binary items the 1PL model, the Rasch model with the trait's SD ``a`` free, which is
        lme4's ``glmer(y ~ 0 + item + (1 | person), family = binomial)`` (its person SD is ``a``, its item
        coefficients the intercepts ``d_k``; the tests compare both on lme4's VerbAgg data).
    link
        ``"logit"`` (default: logistic item response functions, mirt's 2PL and graded response model) or
        ``"probit"`` (the normal ogive, ``P(y = 1) = Phi(a theta + d)``: the model of ``pymlsem.sem`` with
        ordered indicators, whose loadings are the ``a_k``).
    n_nodes
        Grid points of each person's integral (default 61; the log-likelihood converges exponentially in it,
        the tests show 41 within 1e-9 of scipy's adaptive integral for short tests; long tests with very
        discriminating items want more).
    sampler, draws, tune, chains, random_seed, progressbar
        The sampler and its chains, as for :func:`pymlsem.sem`.
    **sampler_kw
        The sampler's own settings (``target_accept``, ...). With nutpie, ``adaptation="low_rank"`` unless
        given: the intercepts and the mean of the clusters' parts are correlated, which a diagonal mass
        matrix samples slowly.

    Returns
    -------
    IRTFit
        ``item_parameters()``, ``trait_parameters()``, ``trait_scores()``, ``cluster_effects()``,
        ``item_curves()``, ``plot_item_curves()``, ``grid_error()``, ``summary()``, ``loo()``,
        ``diagnose()``.

    Raises
    ------
    ModelSpecificationError
        ``n_nodes`` that is not an integer of at least 11, ``discrimination`` other than ``"item"`` or
        ``"common"``, or an unknown ``link``.
    DataError
        See :func:`pymlsem.irt.data.irt_data`.
    SamplerError, ControlError
        Unknown sampler or bad chain controls.

    Examples
    --------
    >>> fit = pymlsem.irt(data, items=[f"y{k}" for k in range(1, 31)], cluster="school")  # doctest: +SKIP
    >>> fit.item_parameters()  # doctest: +SKIP
    """
    if not is_integer(n_nodes) or n_nodes < _MIN_NODES:
        raise ModelSpecificationError(
            f"n_nodes must be an integer of at least {_MIN_NODES} (grid points of the trait's integral), "
            f"not {n_nodes!r}"
        )
    if discrimination not in _DISCRIMINATIONS:
        raise ModelSpecificationError(
            f"discrimination must be 'item' (one per item: 2PL) or 'common' (one for all items: 1PL), "
            f"not {discrimination!r}"
        )
    if link not in LINKS:
        raise ModelSpecificationError(
            f"link must be 'logit' (logistic) or 'probit' (normal ogive), not {link!r}"
        )
    # the intercepts move with the mean of the cluster parts: nutpie's low-rank mass matrix follows that
    # ridge (book-size model: min ESS 1347 against 319 with the diagonal one, benchmarks/README.md)
    sampler_kw = with_nutpie_adaptation(sampler, sampler_kw, "low_rank")
    settings = SamplerSettings(sampler, draws, tune, chains, random_seed, progressbar, options=sampler_kw)
    arrays = irt_data(data, items, cluster)
    structure = IRTStructure(int(n_nodes), cluster is not None, discrimination == "common", link)
    model = build_irt_model(arrays, structure)
    shapes = [free for _, free in free_shapes(arrays, structure).values()]
    idata, compile_seconds, sampling_seconds = sample(bind(arrays, structure), model, settings, shapes)
    fit = IRTFit(
        data=arrays,
        structure=structure,
        model=model,
        idata=idata,
        sampler=settings.sampler,
        compile_seconds=compile_seconds,
        sampling_seconds=sampling_seconds,
    )
    fit.warn_if_unconverged()
    return fit
