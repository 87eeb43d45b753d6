"""The latent class model as a PyMC model, with every class summed out of its log-density.

Single level (Lazarsfeld's latent class model): person i is in class k with probability ``pi_k``, and given
its class the items are independent,

``p(y_i) = sum_k pi_k prod_h p(y_ih | k)``.

Two levels (Vermunt's 2003 nonparametric multilevel latent class model, multilevLCA's model): cluster j is in
cluster class m with probability ``pi_m``, and given it its persons are independently in class k with
probability ``pi_k|m``,

``p(y_j) = sum_m pi_m prod_{i in j} sum_k pi_k|m prod_h p(y_ih | k)``.

A categorical item's ``p(y_ih = c | k)`` is a free probability (a Dirichlet(1, ..., 1) prior per item and
class); a continuous item is normal with a class-specific mean (normal prior, SD 5 on the item's standardised
scale) and an SD shared by the classes (half-normal prior, SD 1 there), Mplus's default. The class
proportions have Dirichlet(1, ..., 1) priors. Classes are summed out with log-sum-exp, so NUTS samples only
these parameters; the classes' posterior probabilities come from the same terms afterwards
(:func:`mixture_terms`, which both the model and the fit's post-processing call).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from pymlsem.build.node_traces import without_node_traces
from pymlsem.latent_class.data import LCAData

__all__ = [
    "MEAN_PRIOR_SD",
    "SD_PRIOR_SD",
    "LCAStructure",
    "build_lca_model",
    "mixture_terms",
    "parameter_names",
]

#: SD of the normal prior on a continuous item's class means (standardised scale)
MEAN_PRIOR_SD = 5.0
#: SD of the half-normal prior on a continuous item's within-class SD (standardised scale)
SD_PRIOR_SD = 1.0


@dataclass(frozen=True)
class LCAStructure:
    """The numbers of classes and whether there are clusters.

    Attributes
    ----------
    n_classes
        K, the person-level classes.
    n_cluster_classes
        M, the cluster-level classes (1 without clusters).
    multilevel
        Whether persons sit in clusters with classes of their own.
    """

    n_classes: int
    n_cluster_classes: int
    multilevel: bool


def parameter_names(data: LCAData, structure: LCAStructure) -> list[str]:
    """The model's free variables, in the order :func:`build_lca_model` creates them."""
    names = ["cluster_class_proportions"] if structure.multilevel else []
    names.append("class_proportions")
    names += [f"item_probs_c{g.n_categories}" for g in data.groups]
    return names + (["item_means", "item_sds"] if data.continuous else [])


def mixture_terms(parameters: dict, data: dict, structure: LCAStructure) -> dict:
    """The log-likelihood of every unit and the classes' posterior probabilities, as tensors.

    Parameters
    ----------
    parameters
        Tensors by the names of :func:`parameter_names`: ``class_proportions`` (K; M x K with clusters,
        row m given cluster class m), ``cluster_class_proportions`` (M), ``item_probs_c<C>`` (items x K x C),
        ``item_means`` (continuous items x K) and ``item_sds`` (continuous items).
    data
        Tensors (or arrays) by the names of :meth:`LCAData.arrays`.
    structure
        The numbers of classes.

    Returns
    -------
    dict
        ``unit_loglik``: per cluster (per person without clusters); ``person_class``: rows x K posterior class
        probabilities; with clusters ``cluster_class``: clusters x M.
    """
    class_loglik = 0.0
    for name, probs in parameters.items():
        if name.startswith("item_probs_c"):
            items, classes, count = probs.shape[0], probs.shape[1], probs.shape[2]
            by_category = pt.log(probs).transpose(0, 2, 1).reshape((items * count, classes))
            class_loglik = class_loglik + pt.dot(data[f"one_hot_c{name[12:]}"], by_category)
    if "item_means" in parameters:
        values = pt.as_tensor(data["continuous_values"])[:, :, None]
        density = pm.logp(pm.Normal.dist(parameters["item_means"], parameters["item_sds"][:, None]), values)
        class_loglik = class_loglik + (density * pt.as_tensor(data["continuous_observed"])[:, :, None]).sum(1)
    log_class = pt.log(parameters["class_proportions"])
    if not structure.multilevel:
        joint = log_class[None, :] + class_loglik
        unit = pm.math.logsumexp(joint, axis=1, keepdims=False)
        return {"unit_loglik": unit, "person_class": pt.exp(joint - unit[:, None])}
    joint = log_class[None, :, :] + class_loglik[:, None, :]  # rows x M x K
    person = pm.math.logsumexp(joint, axis=2, keepdims=False)  # rows x M
    cluster = pt.as_tensor(data["cluster_index"])
    summed = pt.zeros((cluster.max() + 1, structure.n_cluster_classes))[cluster].inc(person)
    cluster_joint = pt.log(parameters["cluster_class_proportions"])[None, :] + summed
    unit = pm.math.logsumexp(cluster_joint, axis=1, keepdims=False)
    cluster_class = pt.exp(cluster_joint - unit[:, None])
    given_cluster_class = pt.exp(joint - person[:, :, None])
    person_class = (cluster_class[cluster][:, :, None] * given_cluster_class).sum(1)
    return {"unit_loglik": unit, "person_class": person_class, "cluster_class": cluster_class}


@without_node_traces
def build_lca_model(data: LCAData, structure: LCAStructure) -> pm.Model:
    """The PyMC model of a latent class model: its parameters under their priors and, as a potential named
    ``loglik``, the log-likelihood with the classes summed out.

    Parameters
    ----------
    data
        The items as arrays (:func:`pymlsem.latent_class.data.lca_data`).
    structure
        The numbers of classes.

    Returns
    -------
    pymc.Model
        Dims ``class``, ``cluster_class`` (with clusters), ``item_c<C>``, ``category_c<C>`` and
        ``continuous_item``; ``pm.Data`` named as :meth:`LCAData.arrays`.
    """
    k, m = structure.n_classes, structure.n_cluster_classes
    coords = {"class": np.arange(1, k + 1)}
    if structure.multilevel:
        coords["cluster_class"] = np.arange(1, m + 1)
    for group in data.groups:
        coords[f"item_c{group.n_categories}"] = list(group.items)
        coords[f"category_c{group.n_categories}"] = np.arange(group.n_categories)
    if data.continuous:
        coords["continuous_item"] = list(data.continuous)
    with pm.Model(coords=coords) as model:
        tensors = {name: pm.Data(name, value) for name, value in data.arrays().items()}
        parameters = {}
        if structure.multilevel:
            parameters["cluster_class_proportions"] = pm.Dirichlet(
                "cluster_class_proportions", a=np.ones(m), dims="cluster_class"
            )
            parameters["class_proportions"] = pm.Dirichlet(
                "class_proportions", a=np.ones((m, k)), dims=("cluster_class", "class")
            )
        else:
            parameters["class_proportions"] = pm.Dirichlet("class_proportions", a=np.ones(k), dims="class")
        for group in data.groups:
            c = group.n_categories
            parameters[f"item_probs_c{c}"] = pm.Dirichlet(
                f"item_probs_c{c}",
                a=np.ones((len(group.items), k, c)),
                dims=(f"item_c{c}", "class", f"category_c{c}"),
            )
        if data.continuous:
            # float64 SDs: PyTensor keeps a Python float such as 5.0 as a float32 constant, whose log is
            # 3e-8 off
            parameters["item_means"] = pm.Normal(
                "item_means", 0.0, np.float64(MEAN_PRIOR_SD), dims=("continuous_item", "class")
            )
            parameters["item_sds"] = pm.HalfNormal(
                "item_sds", np.float64(SD_PRIOR_SD), dims="continuous_item"
            )
        terms = mixture_terms(parameters, tensors, structure)
        pm.Potential("loglik", terms["unit_loglik"].sum())
    return model
