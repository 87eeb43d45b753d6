"""The two-parameter logistic (2PL) and graded response IRT models as a PyMC model, with each person's trait
integrated out of its log-density on a grid.

Person i (in cluster j) has a trait ``theta_ij = u_j + e_ij`` with ``e_ij ~ N(0, 1)`` (the scale of the
trait) and, with clusters, a cluster part ``u_j ~ N(0, sigma_b^2)``. The answer to a binary item k is 1 with
probability ``logistic(a_k theta + d_k)``: discrimination ``a_k`` and intercept ``d_k`` (difficulty
``b_k = -d_k / a_k``), mirt's slope-intercept form. An ordinal item with C categories follows Samejima's
graded response model, ``P(y >= c) = logistic(a_k theta - kappa_kc)`` for c = 1..C-1 with ascending
thresholds ``kappa_k1 < ... < kappa_k,C-1`` (PyMC's ``ordered`` transform; ``kappa / a`` are the category
boundaries on the trait's scale), so

``log P(y = c) = log sigma(a theta - kappa_c) + log sigma(-(a theta - kappa_c+1)) + log(1 - exp(kappa_c -
kappa_c+1))``

(the first term absent for c = 0, the second for c = C-1, the third for both): each term stable in floating
point. Given ``u_j`` the items are independent, so

``log p(y_i | u_j) = log integral prod_k p(y_ik | theta) phi(theta - u_j) dtheta``,

computed on a grid of ``G`` equally spaced points ``theta_g = s x_g``, ``x_g`` from -7 to 7 and ``s`` the
trait's marginal SD ``sqrt(1 + sigma_b^2)``: the trapezoid rule, whose error falls exponentially with
``G`` for an integrand as smooth as this one (``n_nodes``; the tests show it converging to scipy's adaptive
integral). The logit makes the sum over items linear in theta except for its softplus terms,

``sum_k y_ik (a_k theta + d_k) - softplus(a_k theta + d_k) = theta A_i + D_i - S_p(theta)``,

with ``A_i = sum_k y_ik a_k``, ``D_i = sum_k y_ik d_k`` and ``S_p`` summed over the items that the rows of
missingness pattern p answered: the softplus terms are computed once per pattern and grid point, not per
person, so a gradient costs about rows x (items + G). An ordinal item's log-probabilities are a table by
grid point and category, computed once; each person adds its answers' rows (rows x ordinal items x G).

With ``link="probit"`` the item response functions are normal CDFs in place of logistic ones (the
normal-ogive model, ``P(y = 1) = Phi(a_k theta + d_k)``, ``P(y >= c) = Phi(a_k theta - kappa_kc)``: the
model of the SEM path's ordered indicators, whose loadings are the ``a_k``). Nothing is linear in theta
then, so binary items are a table by grid point and answer as ordinal ones are.

With a common discrimination (``IRTStructure.common_discrimination``) every item has the same ``a``: for
binary items the one-parameter logistic (1PL) model, which is the Rasch model with the trait's SD ``a`` free
(lme4's ``glmer(y ~ 0 + item + (1 | person), family = binomial)``: its person SD is ``a`` and its item
coefficients are the ``d_k``).

NUTS samples the item parameters and, with clusters, ``sigma_b`` and the cluster parts (non-centred,
``u_j = sigma_b z_j``). Priors: ``a_k ~ LogNormal(0, 1)`` (positive: it fixes the trait's direction),
``d_k ~ N(0, 5^2)``, each threshold ``kappa_kc ~ N(0, 5^2)`` (ordered), ``sigma_b ~ HalfNormal(1)``.
:func:`integrated_terms` is used by the model and by the fit's post-processing (person log-likelihoods,
trait posteriors), so the formula is written once; the engine family's kernel
(:mod:`pymlsem.engine.kernels.irt`) is tested against this graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from pymlsem.build.categorical import interval_loglik, softplus
from pymlsem.build.log_ndtr import log_ndtr
from pymlsem.build.node_traces import without_node_traces
from pymlsem.irt.data import IRTData

__all__ = [
    "BETWEEN_SD_PRIOR_SD",
    "DEFAULT_NODES",
    "DISCRIMINATION_PRIOR_SD",
    "GRID_HALF_WIDTH",
    "INTERCEPT_PRIOR_SD",
    "LINKS",
    "IRTStructure",
    "build_irt_model",
    "category_log_probabilities",
    "grid",
    "integrated_terms",
    "parameter_names",
]

#: default number of grid points
DEFAULT_NODES = 61
#: the item response functions: logistic (2PL, graded response) or the standard normal CDF (normal ogive)
LINKS = ("logit", "probit")
#: the grid runs from -GRID_HALF_WIDTH to GRID_HALF_WIDTH marginal SDs of the trait
GRID_HALF_WIDTH = 7.0
#: sigma of the log-normal prior on the discriminations
DISCRIMINATION_PRIOR_SD = 1.0
#: SD of the normal prior on the intercepts
INTERCEPT_PRIOR_SD = 5.0
#: SD of the half-normal prior on the SD of the trait's cluster part
BETWEEN_SD_PRIOR_SD = 1.0


@dataclass(frozen=True)
class IRTStructure:
    """The grid, whether there are clusters and whether the items share one discrimination.

    Attributes
    ----------
    n_nodes
        G, the number of grid points of the integral over each person's trait.
    multilevel
        Whether the trait has a cluster part.
    common_discrimination
        One discrimination shared by every item (1PL) instead of one per item.
    link
        ``"logit"`` (the logistic item response function) or ``"probit"`` (the normal ogive).
    """

    n_nodes: int
    multilevel: bool
    common_discrimination: bool = False
    link: str = "logit"


def grid(n_nodes: int) -> tuple[np.ndarray, float]:
    """The standardised grid ``x_g`` and its spacing."""
    x = np.linspace(-GRID_HALF_WIDTH, GRID_HALF_WIDTH, n_nodes)
    return x, float(x[1] - x[0])


def parameter_names(data: IRTData, structure: IRTStructure) -> list[str]:
    """The model's free variables, in the order :func:`build_irt_model` creates them."""
    names = ["discrimination"] + (["intercept"] if data.binary else [])
    names += [f"thresholds_c{count}" for count in data.ordinal_groups()]
    return names + (["between_sd", "between_z"] if structure.multilevel else [])


def category_log_probabilities(eta, thresholds, link: str = "logit"):
    """The graded response model's ``log P(y = c)`` for every category (a binary item is the case C = 2 with
    ``kappa = -d``): ``eta`` (... x items) the items' ``a theta``, ``thresholds`` (... x items x C-1,
    ascending, broadcasting against ``eta``); returns ... x items x C. With ``link="probit"``,
    ``P(y >= c) = Phi(eta - kappa_c)`` and a middle category's probability is a difference of normal CDFs,
    computed on the side of the distribution where it does not cancel (the SEM path's
    :func:`pymlsem.build.categorical.interval_loglik`)."""
    x = eta[..., None] - thresholds  # ... x items x C-1
    if link == "probit":
        parts = [log_ndtr(-x[..., :1])]  # P(y = 0) = Phi(kappa_1 - eta)
        if thresholds.type.shape[-1] != 1:  # middle categories: Phi(eta - kappa_c) - Phi(eta - kappa_c+1)
            parts.append(interval_loglik(-x[..., :-1], -x[..., 1:], "probit"))
        parts.append(log_ndtr(x[..., -1:]))  # P(y = C-1) = Phi(eta - kappa_C-1)
        return pt.concatenate(parts, axis=-1)
    zero = pt.zeros_like(x[..., :1])
    above = pt.concatenate([zero, -softplus(-x)], axis=-1)  # log P(y >= c), c = 0..C-1
    below = pt.concatenate([-softplus(x), zero], axis=-1)  # log P(y < c + 1), c = 0..C-1
    gaps = pt.log1mexp(thresholds[..., :-1] - thresholds[..., 1:])  # ... x items x C-2
    ends = pt.zeros_like(thresholds[..., :1])
    return above + below + pt.concatenate([ends, gaps, ends], axis=-1)


def integrated_terms(parameters: dict, data: dict, structure: IRTStructure) -> dict:
    """Each person's log-likelihood with the trait integrated out, and the trait's posterior on the grid.

    Parameters
    ----------
    parameters
        Tensors by the names of :func:`parameter_names`: ``discrimination`` (items, or a scalar with a
        common discrimination), ``intercept`` (binary
        items), ``thresholds_c<C>`` (ordinal items with C categories x C-1), ``between_sd`` and
        ``between_z`` (with clusters).
    data
        Tensors (or arrays) by the names of :meth:`IRTData.arrays`.
    structure
        The grid and whether there are clusters.

    Returns
    -------
    dict
        ``person_loglik`` (rows), ``theta`` (grid points) and ``weights`` (rows x grid points: each person's
        posterior probability of each grid point given the cluster part).
    """
    x, step = grid(structure.n_nodes)
    a = parameters["discrimination"]

    def slopes_of(index) -> pt.TensorVariable:  # the discriminations of the items at ``index``
        index = pt.as_tensor(index)
        return pt.alloc(a, index.shape[0]) if structure.common_discrimination else a[index]

    if structure.multilevel:
        scale = pt.sqrt(1.0 + parameters["between_sd"] ** 2)
        centre = (parameters["between_sd"] * parameters["between_z"])[pt.as_tensor(data["cluster_index"])]
    else:
        scale, centre = pt.as_tensor(np.float64(1.0)), pt.zeros(pt.as_tensor(data["pattern"]).shape[0])
    theta = scale * x
    log_joint = -0.5 * (theta[None, :] - centre[:, None]) ** 2
    if "intercept" in parameters and structure.link == "probit":
        # no linear split: a table of log Phi(-(a theta + d)) and log Phi(a theta + d) by grid point
        binary = slopes_of(data["binary_index"])
        d, responses = parameters["intercept"], pt.as_tensor(data["binary_responses"])
        observed = pt.as_tensor(data["binary_pattern_observed"])[pt.as_tensor(data["pattern"])]
        table = category_log_probabilities(theta[:, None] * binary[None, :], -d[:, None], "probit")
        log_joint = (
            log_joint + pt.dot(observed - responses, table[:, :, 0].T) + pt.dot(responses, table[:, :, 1].T)
        )
    elif "intercept" in parameters:
        binary = slopes_of(data["binary_index"])
        d, responses = parameters["intercept"], pt.as_tensor(data["binary_responses"])
        binary_terms = softplus(theta[:, None] * binary[None, :] + d[None, :])  # grid x binary items
        by_pattern = pt.dot(pt.as_tensor(data["binary_pattern_observed"]), binary_terms.T)  # patterns x grid
        log_joint = (
            log_joint
            + theta[None, :] * pt.dot(responses, binary)[:, None]
            + pt.dot(responses, d)[:, None]
            - by_pattern[pt.as_tensor(data["pattern"])]
        )
    for name, value in parameters.items():
        if name.startswith("thresholds_c"):
            count = int(name.removeprefix("thresholds_c"))
            slopes = slopes_of(data[f"index_c{count}"])
            table = category_log_probabilities(theta[:, None] * slopes[None, :], value, structure.link)
            by_answer = table.reshape((x.size, -1)).T  # (items x C) x grid
            log_joint = log_joint + pt.dot(pt.as_tensor(data[f"one_hot_c{count}"]), by_answer)
    top = pm.math.logsumexp(log_joint, axis=1, keepdims=False)
    person = top + pt.log(step * scale) - 0.5 * math.log(2.0 * math.pi)
    return {"person_loglik": person, "theta": theta, "weights": pt.exp(log_joint - top[:, None])}


@without_node_traces
def build_irt_model(data: IRTData, structure: IRTStructure) -> pm.Model:
    """The PyMC model of an IRT model (2PL for binary items, graded response for ordinal ones): its
    parameters under their priors and, as a potential named ``loglik``, the log-likelihood with each
    person's trait integrated out.

    Parameters
    ----------
    data
        The answers as arrays (:func:`pymlsem.irt.data.irt_data`).
    structure
        The grid and whether there are clusters.

    Returns
    -------
    pymc.Model
        Dims ``item`` (of ``discrimination``, a scalar with a common discrimination), ``binary_item``,
        ``item_c<C>`` and ``cut_c<C>`` (the ordinal items with C categories
        and their thresholds) and (with clusters) ``cluster``; ``pm.Data`` named as
        :meth:`IRTData.arrays`.
    """
    coords = {"item": list(data.items)}
    if data.binary:
        coords["binary_item"] = list(data.binary)
    for count, names in data.ordinal_groups().items():
        coords[f"item_c{count}"] = list(names)
        coords[f"cut_c{count}"] = np.arange(1, count)
    if structure.multilevel:
        coords["cluster"] = list(data.cluster_labels)
    with pm.Model(coords=coords) as model:
        tensors = {name: pm.Data(name, value) for name, value in data.arrays().items()}
        # float64 SDs: PyTensor keeps a Python float such as 5.0 as a float32 constant, whose log is 3e-8 off
        parameters = {
            "discrimination": pm.LogNormal(
                "discrimination",
                0.0,
                np.float64(DISCRIMINATION_PRIOR_SD),
                dims=None if structure.common_discrimination else "item",
            )
        }
        if data.binary:
            parameters["intercept"] = pm.Normal(
                "intercept", 0.0, np.float64(INTERCEPT_PRIOR_SD), dims="binary_item"
            )
        for count, names in data.ordinal_groups().items():
            parameters[f"thresholds_c{count}"] = pm.Normal(
                f"thresholds_c{count}",
                0.0,
                np.float64(INTERCEPT_PRIOR_SD),
                dims=(f"item_c{count}", f"cut_c{count}"),
                transform=pm.distributions.transforms.ordered,
                initval=np.tile(np.linspace(-1.0, 1.0, count - 1), (len(names), 1)),
            )
        if structure.multilevel:
            parameters["between_sd"] = pm.HalfNormal("between_sd", np.float64(BETWEEN_SD_PRIOR_SD))
            parameters["between_z"] = pm.Normal("between_z", 0.0, np.float64(1.0), dims="cluster")
        terms = integrated_terms(parameters, tensors, structure)
        pm.Potential("loglik", terms["person_loglik"].sum())
    return model
