"""A fitted latent class model: class proportions at both levels, item-response probabilities, posterior
class membership, classification quality, LOO.

The draws are relabelled when the fit is made (:mod:`pymlsem.latent_class.relabel`); every table reads the
relabelled posterior. Posterior class membership is the posterior mean over the draws of each class's
conditional probability given the person's (or cluster's) answers and the draw's parameters, computed by the
same expressions as the model's log-density (:func:`pymlsem.latent_class.model.mixture_terms`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from pymlsem.exceptions import PymlsemError
from pymlsem.latent_class.data import LCAData
from pymlsem.latent_class.model import LCAStructure, mixture_terms, parameter_names
from pymlsem.latent_class.relabel import pivot_permutations, relabel
from pymlsem.plots.classes import plot_class_profiles
from pymlsem.results.checked_draws import CheckedDraws
from pymlsem.results.posterior import draw_summary
from pymlsem.workflow.information import data_digest, loo
from pymlsem.workflow.pointwise import Pointwise

__all__ = ["LCAFit", "relabelled_posterior"]


def _class_axes(data: LCAData, structure: LCAStructure) -> tuple[dict, dict]:
    """The axes (with the draw axis first) that index person classes, and those that index cluster
    classes, of every parameter."""
    person = {"class_proportions": (2,) if structure.multilevel else (1,)}
    person |= {f"item_probs_c{g.n_categories}": (2,) for g in data.groups}
    if data.continuous:
        person["item_means"] = (2,)
    cluster = {"cluster_class_proportions": (1,), "class_proportions": (1,)} if structure.multilevel else {}
    return person, cluster


def relabelled_posterior(posterior: xr.Dataset, data: LCAData, structure: LCAStructure, pivot: int) -> tuple:
    """The posterior's draws relabelled to the pivot draw (:mod:`pymlsem.latent_class.relabel`).

    Parameters
    ----------
    posterior
        The sampler's posterior (chain, draw, ...).
    data, structure
        The model's data and numbers of classes.
    pivot
        Position of the pivot draw among the chain-major flattened draws.

    Returns
    -------
    tuple
        The relabelled posterior (same dims) and the number of draws whose labels changed.
    """
    names = parameter_names(data, structure)
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    draws = {name: posterior[name].values.reshape(-1, *posterior[name].shape[2:]) for name in names}
    person_axes, cluster_axes = _class_axes(data, structure)
    features = [draws[f"item_probs_c{g.n_categories}"].transpose(0, 2, 1, 3) for g in data.groups]
    features = [f.reshape(f.shape[0], f.shape[1], -1) for f in features]
    if data.continuous:
        features.append(draws["item_means"].transpose(0, 2, 1))
    permutations = pivot_permutations(np.concatenate(features, axis=2), pivot)
    draws = relabel(draws, person_axes, permutations)
    changed = (permutations != np.arange(permutations.shape[1])).any(1)
    if structure.multilevel:
        cluster_permutations = pivot_permutations(draws["class_proportions"], pivot)
        draws = relabel(draws, cluster_axes, cluster_permutations)
        changed |= (cluster_permutations != np.arange(cluster_permutations.shape[1])).any(1)
    out = posterior.copy()
    for name in names:
        out[name] = (posterior[name].dims, draws[name].reshape(*shape, *draws[name].shape[1:]))
    return out, int(changed.sum())


@dataclass
class LCAFit(CheckedDraws):
    """A fitted latent class model (:func:`pymlsem.lca`).

    Attributes
    ----------
    data
        The items as arrays.
    structure
        The numbers of classes.
    model
        The PyMC model (inspectable: ``model.to_graphviz()``).
    idata
        The ArviZ DataTree: the relabelled ``posterior``, ``sample_stats`` and, after :meth:`loo`,
        ``log_likelihood`` (variable ``loglik``).
    relabelled_draws
        How many draws had their class labels changed to match the pivot draw.
    sampler, compile_seconds, sampling_seconds
        How the draws were made.
    """

    data: LCAData
    structure: LCAStructure
    model: Any
    idata: Any
    relabelled_draws: int
    sampler: str = "nutpie"
    compile_seconds: float = 0.0
    sampling_seconds: float = 0.0
    _cache: dict = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------- draws and derived quantities
    def _evaluate(self) -> dict[str, np.ndarray]:
        """Per draw: each unit's log-likelihood; averaged over draws: the class membership probabilities."""
        if "terms" in self._cache:
            return self._cache["terms"]
        outputs = ["unit_loglik", "person_class"] + (["cluster_class"] if self.structure.multilevel else [])
        result = self._over_draws(
            parameter_names(self.data, self.structure),
            lambda inputs: mixture_terms(inputs, self.data.arrays(), self.structure),
            outputs,
        )
        self._cache["terms"] = result
        return result

    # ----------------------------------------------------------------- tables
    def class_proportions(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior summaries of the class proportions.

        Parameters
        ----------
        prob
            Mass of the central interval.

        Returns
        -------
        pandas.DataFrame
            Columns ``level``, ``cluster_class``, ``class``, ``mean``, ``sd`` and the interval's quantiles
            (``q2.5``, ``q97.5`` for 0.95). Without clusters: the K classes at level 1. With clusters: the M
            cluster classes at level 2 (``class`` the cluster class), then at level 1 the class
            proportions given each cluster class (``cluster_class`` 1..M) and overall (``cluster_class``
            missing: ``sum_m pi_m pi_k|m``).
        """
        k = self.structure.n_classes
        person = self._draws("class_proportions")
        if not self.structure.multilevel:
            return self._table(1, [pd.NA] * k, range(1, k + 1), person, prob)
        m = self.structure.n_cluster_classes
        cluster = self._draws("cluster_class_proportions")
        overall = (cluster[:, :, None] * person).sum(1)
        return pd.concat(
            [
                self._table(2, [pd.NA] * m, range(1, m + 1), cluster, prob),
                self._table(
                    1,
                    np.repeat(np.arange(1, m + 1), k),
                    np.tile(np.arange(1, k + 1), m),
                    person.reshape(len(person), -1),
                    prob,
                ),
                self._table(1, [pd.NA] * k, range(1, k + 1), overall, prob),
            ],
            ignore_index=True,
        )

    @staticmethod
    def _table(level: int, cluster_class, classes, draws: np.ndarray, prob: float) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "level": level,
                "cluster_class": pd.array(list(cluster_class), dtype="Int64"),
                "class": np.asarray(list(classes), dtype=np.int64),
            }
        )
        return frame.assign(**draw_summary(draws, prob))

    def item_probabilities(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior summaries of every categorical item's category probabilities in every class.

        Parameters
        ----------
        prob
            Mass of the central interval.

        Returns
        -------
        pandas.DataFrame
            Columns ``item``, ``class``, ``category`` (the data's value), ``mean``, ``sd`` and the interval's
            quantiles, in the order of ``items=``.
        """
        frames = []
        for group in self.data.groups:
            draws = self._draws(f"item_probs_c{group.n_categories}")  # (S, items, K, C)
            _, items, k, c = draws.shape
            frame = pd.DataFrame(
                {
                    "item": np.repeat(group.items, k * c),
                    "class": np.tile(np.repeat(np.arange(1, k + 1), c), items),
                    "category": [cat for cats in group.categories for _ in range(k) for cat in cats],
                }
            )
            frames.append(frame.assign(**draw_summary(draws.reshape(len(draws), -1), prob)))
        if not frames:
            return pd.DataFrame(columns=["item", "class", "category", "mean", "sd"])
        table = pd.concat(frames, ignore_index=True)
        order = {name: i for i, name in enumerate(self.data.items)}
        return table.sort_values("item", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)

    def item_means(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior summaries of the continuous items' class means and within-class SDs, on the data's
        scale.

        Returns
        -------
        pandas.DataFrame
            Columns ``item``, ``class`` (``pd.NA`` for the SD, which the classes share), ``parameter``
            (``"mean"`` or ``"sd"``), ``mean``, ``sd`` and the interval's quantiles.
        """
        if not self.data.continuous:
            raise PymlsemError("this model has no continuous items; see item_probabilities()")
        means = self._draws("item_means") * self.data.scale[:, None] + self.data.center[:, None]
        sds = self._draws("item_sds") * self.data.scale
        items, k = means.shape[1:]
        rows = pd.DataFrame(
            {
                "item": np.repeat(self.data.continuous, k),
                "class": pd.array(np.tile(np.arange(1, k + 1), items), dtype="Int64"),
                "parameter": "mean",
            }
        ).assign(**draw_summary(means.reshape(len(means), -1), prob))
        spread = pd.DataFrame(
            {
                "item": list(self.data.continuous),
                "class": pd.array([pd.NA] * items, dtype="Int64"),
                "parameter": "sd",
            }
        ).assign(**draw_summary(sds, prob))
        return pd.concat([rows, spread], ignore_index=True)

    def membership(self, level: int = 1) -> pd.DataFrame:
        """Posterior class membership probabilities.

        Parameters
        ----------
        level
            1: per person (row of the data, with clusters summed over the cluster's class); 2: per cluster.

        Returns
        -------
        pandas.DataFrame
            One column per class (``class_1``, ...; ``cluster_class_1``, ... at level 2) and ``modal`` (the
            most probable class), indexed by the data's row index (level 1) or the cluster labels (level 2).
        """
        if level not in (1, 2):
            raise PymlsemError(f"level must be 1 (persons) or 2 (clusters), not {level!r}")
        if level == 2 and not self.structure.multilevel:
            raise PymlsemError("level=2 needs a model with clusters (cluster= and n_cluster_classes=)")
        terms = self._evaluate()
        if level == 1:
            probs, prefix, index = terms["person_class"], "class", self.data.index
        else:
            probs, prefix = terms["cluster_class"], "cluster_class"
            index = pd.Index(self.data.cluster_labels, name="cluster")
        frame = pd.DataFrame(
            probs, index=index, columns=[f"{prefix}_{j}" for j in range(1, probs.shape[1] + 1)]
        )
        return frame.assign(modal=probs.argmax(1) + 1)

    def classification(self, level: int = 1) -> pd.DataFrame:
        """Average posterior class probabilities of the persons (or clusters) by their modal class: Mplus's
        "average latent class probabilities for most likely latent class membership" (rows: modal class;
        a diagonal near 1 means classes told apart well), with the count per modal class.

        Parameters
        ----------
        level
            1 (persons) or 2 (clusters).

        Returns
        -------
        pandas.DataFrame
        """
        frame = self.membership(level)
        columns = [c for c in frame.columns if c != "modal"]
        table = frame.groupby("modal")[columns].mean()
        table.insert(0, "count", frame.groupby("modal").size())
        return table.rename_axis("modal class")

    def entropy(self, level: int = 1) -> float:
        """Relative entropy of the posterior class membership (Mplus's "entropy"): 1 - sum of
        ``-p log p`` over persons and classes / (persons x log classes). 1: every person certainly in one
        class; 0: the classes tell nothing apart.

        Parameters
        ----------
        level
            1 (persons) or 2 (clusters).
        """
        probs = self.membership(level).drop(columns="modal").to_numpy()
        if probs.shape[1] < 2:
            return 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(probs > 0, -probs * np.log(probs), 0.0)
        return float(1 - terms.sum() / (probs.shape[0] * np.log(probs.shape[1])))

    def plot_profiles(self, prob: float = 0.95, path: Any = None) -> Any:
        """The classes' item profiles (:func:`pymlsem.plots.plot_class_profiles`); needs matplotlib."""
        return plot_class_profiles(self, prob, path)

    # ----------------------------------------------------------------- checks and comparison
    def _checked_names(self) -> list[str]:
        return parameter_names(self.data, self.structure)

    def default_unit(self) -> str:
        """The unit of LOO: ``"cluster"`` with clusters (a cluster's persons share its class), else
        ``"observation"`` (a person)."""
        return "cluster" if self.structure.multilevel else "observation"

    def pointwise_log_likelihood(self, unit: str) -> Pointwise:
        """The log-likelihood of every draw per unit, the classes summed out.

        Parameters
        ----------
        unit
            The fit's :meth:`default_unit`; with clusters, persons are not independent given the
            parameters (they share the cluster's class), so ``"observation"`` is refused.
        """
        if unit != self.default_unit():
            raise PymlsemError(
                f"unit={unit!r}: a multilevel latent class model's persons share their cluster's class, so "
                "its log-likelihood factorises over clusters only; use unit='cluster'"
            )
        labels = self.data.cluster_labels if self.structure.multilevel else self.data.index.to_numpy()
        return Pointwise(self._evaluate()["unit_loglik"], unit, labels, True)

    def data_identity(self) -> tuple[tuple[str, ...], int, str]:
        """The items, the number of rows and a digest of the answers and clusters (:func:`pymlsem.compare`
        compares fits to the same data only)."""
        parts = [g.one_hot for g in self.data.groups] + [self.data.values, self.data.cluster]
        return tuple(sorted(self.data.items)), self.data.n_rows, data_digest(*parts)

    def loo(self, **kwargs: Any) -> Any:
        """PSIS leave-one-out cross-validation (ArviZ), leaving out one cluster at a time (one person without
        clusters); compare numbers of classes with :func:`pymlsem.compare`.

        Parameters
        ----------
        **kwargs
            Passed to :func:`arviz_stats.loo`.
        """
        return loo(self, self.default_unit(), **kwargs)

    # ----------------------------------------------------------------- the report
    def summary(self, prob: float = 0.95) -> str:
        """The fit as text: sampling, convergence, class proportions, classification quality and the item
        probabilities of every class (means), as a multilevLCA or Mplus user reads them."""
        k, m = self.structure.n_classes, self.structure.n_cluster_classes
        head = [
            f"pymlsem {'multilevel ' if self.structure.multilevel else ''}latent class model: "
            f"{k} class{'es' * (k != 1)}"
            + (f", {m} cluster class{'es' * (m != 1)}" if self.structure.multilevel else ""),
            f"  persons {self.data.n_rows}"
            + (f", clusters {self.data.n_clusters}" if self.structure.multilevel else ""),
            f"  sampler {self.sampler}: {self.idata.posterior.sizes['chain']} chains x "
            f"{self.idata.posterior.sizes['draw']} draws; {self.relabelled_draws} draws relabelled to the "
            "pivot",
            f"  convergence: {self.convergence_note() or 'all checks pass'}",
            f"  entropy (persons): {self.entropy(1):.3f}"
            + (f", (clusters): {self.entropy(2):.3f}" if self.structure.multilevel else ""),
            "",
            "Class proportions:",
            self.class_proportions(prob).to_string(index=False, float_format=lambda v: f"{v:.3f}"),
        ]
        items = self.item_probabilities(prob)
        if len(items):
            wide = items.pivot_table(index=["item", "category"], columns="class", values="mean", sort=False)
            wide.columns = [f"class {c}" for c in wide.columns]
            head += [
                "",
                "Item probabilities (posterior means):",
                wide.to_string(float_format=lambda v: f"{v:.3f}"),
            ]
        if self.data.continuous:
            head += [
                "",
                "Continuous items:",
                self.item_means(prob).to_string(index=False, float_format=lambda v: f"{v:.3f}"),
            ]
        return "\n".join(head)

    def __str__(self) -> str:
        return self.summary()
