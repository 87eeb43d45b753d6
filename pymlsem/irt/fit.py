"""A fitted IRT model: item parameters (discrimination, intercept or thresholds, difficulty), the trait's
cluster part and intraclass correlation, trait scores, item characteristic curves, LOO.

Person-level quantities (log-likelihoods, trait scores) come from the same expressions as the model's
log-density (:func:`pymlsem.irt.model.integrated_terms`), evaluated for every draw: each person's trait given
the draw's parameters and cluster part has its posterior on the grid, from which its mean and SD follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import pytensor.tensor as pt

from pymlsem.build.rewrites import python_thunks
from pymlsem.exceptions import PymlsemError
from pymlsem.irt.data import IRTData
from pymlsem.irt.model import IRTStructure, category_log_probabilities, integrated_terms, parameter_names
from pymlsem.plots.items import plot_item_curves
from pymlsem.results.checked_draws import CheckedDraws
from pymlsem.results.posterior import draw_summary
from pymlsem.workflow.information import data_digest, loo
from pymlsem.workflow.pointwise import Pointwise

__all__ = ["GRID_TOLERANCE", "IRTFit"]

#: the largest change of a person's log-likelihood when the grid's spacing halves that passes silently
GRID_TOLERANCE = 1e-3


@dataclass
class IRTFit(CheckedDraws):
    """A fitted IRT model (:func:`pymlsem.irt`): 2PL (or 1PL) for binary items, graded response for ordinal
    ones.

    Attributes
    ----------
    data
        The answers as arrays.
    structure
        The grid and whether there are clusters.
    model
        The PyMC model (inspectable: ``model.to_graphviz()``).
    idata
        The ArviZ DataTree: ``posterior`` (``discrimination``, ``intercept`` of the binary items,
        ``thresholds_c<C>`` of the ordinal items with C categories; with clusters ``between_sd`` and
        ``between_z``), ``sample_stats`` and, after :meth:`loo`, ``log_likelihood``.
    sampler, compile_seconds, sampling_seconds
        How the draws were made.
    """

    data: IRTData
    structure: IRTStructure
    model: Any
    idata: Any
    sampler: str = "nutpie"
    compile_seconds: float = 0.0
    sampling_seconds: float = 0.0
    _cache: dict = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------- draws
    def _evaluate(self) -> dict[str, np.ndarray]:
        """Per draw: each person's log-likelihood; over draws: each person's trait mean and SD."""
        if "terms" in self._cache:
            return self._cache["terms"]

        def terms_of(inputs: dict) -> dict:
            terms = integrated_terms(inputs, self.data.arrays(), self.structure)
            terms["trait_mean"] = pt.dot(terms["weights"], terms["theta"])
            terms["trait_square"] = pt.dot(terms["weights"], terms["theta"] ** 2)
            return terms

        values = self._over_draws(
            parameter_names(self.data, self.structure),
            terms_of,
            ["person_loglik", "trait_mean", "trait_square"],
        )
        mean = values["trait_mean"]
        result = {
            "person_loglik": values["person_loglik"],
            "trait_mean": mean,
            "trait_sd": np.sqrt(np.maximum(values["trait_square"] - mean**2, 0.0)),
        }
        self._cache["terms"] = result
        return result

    # ----------------------------------------------------------------- tables
    def _discriminations(self) -> np.ndarray:
        """Every item's discrimination, draws x items (a common discrimination repeated)."""
        a = self._draws("discrimination")
        return np.repeat(a[:, None], len(self.data.items), 1) if a.ndim == 1 else a

    def _item_draws(self) -> list[tuple[str, str, np.ndarray]]:
        """(item, parameter, draws) of every item parameter, item by item."""
        a = self._discriminations()
        binary = list(self.data.binary)
        d = self._draws("intercept") if binary else None
        ordinal = {
            item: (count, h)
            for count, names in self.data.ordinal_groups().items()
            for h, item in enumerate(names)
        }
        out = []
        for k, item in enumerate(self.data.items):
            out.append((item, "a", a[:, k]))
            if item in ordinal:
                count, h = ordinal[item]
                kappa = self._draws(f"thresholds_c{count}")[:, h]
                out += [(item, f"t{c}", kappa[:, c - 1]) for c in range(1, count)]
                out += [(item, f"b{c}", kappa[:, c - 1] / a[:, k]) for c in range(1, count)]
            else:
                intercept = d[:, binary.index(item)]
                out += [(item, "d", intercept), (item, "b", -intercept / a[:, k])]
        return out

    def item_parameters(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior summaries of every item's parameters.

        Parameters
        ----------
        prob
            Mass of the central interval.

        Returns
        -------
        pandas.DataFrame
            One row per item and ``parameter``: ``a`` (discrimination); for a binary item ``d``
            (intercept) and ``b = -d/a`` (difficulty, the trait at which the answer 1 has probability 1/2);
            for an ordinal item its thresholds ``t1, ..., t<C-1>`` and category boundaries ``b_c = t_c/a``
            (the trait at which ``P(y >= c)`` is 1/2). Columns ``item``, ``parameter``, ``mean``, ``sd`` and
            the interval's quantiles.
        """
        parts = self._item_draws()
        summary = draw_summary(np.column_stack([draws for *_, draws in parts]), prob)
        frame = pd.DataFrame({"item": [p[0] for p in parts], "parameter": [p[1] for p in parts]})
        return frame.assign(**summary)

    def item_curves(
        self, theta: np.ndarray, max_draws: int = 1000, items: list[str] | None = None
    ) -> np.ndarray:
        """Every item's expected score over the trait, divided by its number of categories minus one (a
        binary item's probability of the answer 1), for evenly spaced draws.

        Parameters
        ----------
        theta
            The trait values.
        max_draws
            At most this many draws (evenly spaced over the chains).
        items
            The items (all by default), in this order.

        Returns
        -------
        numpy.ndarray
            draws x items x trait values.

        Raises
        ------
        PymlsemError
            An item that is not in the model.
        """
        chosen = list(self.data.items) if items is None else list(items)
        unknown = [item for item in chosen if item not in self.data.items]
        if unknown:
            raise PymlsemError(f"items {unknown} are not in the model; its items are {list(self.data.items)}")
        a = self._discriminations()
        keep = np.linspace(0, len(a) - 1, min(len(a), max_draws)).astype(int)
        theta = np.asarray(theta, dtype=np.float64)
        out = np.empty((len(keep), len(chosen), theta.size))
        groups = dict(self.data.ordinal_groups())
        if self.data.binary:
            groups[2] = self.data.binary
        for count, names in groups.items():
            # only the chosen items' curves: the graph runs as written, element by element for some functions
            place = [h for h, name in enumerate(names) if name in chosen]
            if not place:
                continue
            index = [self.data.items.index(names[h]) for h in place]
            if count == 2:
                kappa = -self._draws("intercept")[keep][:, place, None]
            else:
                kappa = self._draws(f"thresholds_c{count}")[keep][:, place]
            eta = a[keep][:, None, index] * theta[None, :, None]  # draws x trait x items
            log_p = category_log_probabilities(
                pt.as_tensor(eta), pt.as_tensor(kappa[:, None]), self.structure.link
            )
            score = pt.exp(log_p) @ pt.as_tensor(np.arange(count) / (count - 1.0))
            where = [chosen.index(names[h]) for h in place]
            with python_thunks():
                out[:, where, :] = score.eval().transpose(0, 2, 1)
        return out

    def trait_parameters(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior summaries of the trait's levels: the within variance (1, the trait's scale), with
        clusters the cluster part's SD and variance and the intraclass correlation
        ``sigma_b^2 / (1 + sigma_b^2)``.

        Returns
        -------
        pandas.DataFrame
            Columns ``parameter``, ``mean``, ``sd`` and the interval's quantiles.
        """
        rows = [{"parameter": "within variance (fixed)", "mean": 1.0, "sd": 0.0}]
        if self.structure.multilevel:
            sd = self._draws("between_sd")
            for name, draws in (
                ("between sd", sd),
                ("between variance", sd**2),
                ("trait icc", sd**2 / (1.0 + sd**2)),
            ):
                rows.append({"parameter": name} | {c: float(v) for c, v in draw_summary(draws, prob).items()})
        return pd.DataFrame(rows)

    def trait_scores(self) -> pd.DataFrame:
        """Each person's trait: its posterior mean (EAP) and SD over the parameters' draws and the grid.

        Returns
        -------
        pandas.DataFrame
            Indexed like the data: ``mean``, ``sd`` (and ``cluster`` with clusters).
        """
        terms = self._evaluate()
        out = pd.DataFrame({"mean": terms["trait_mean"], "sd": terms["trait_sd"]}, index=self.data.index)
        if self.structure.multilevel:
            out["cluster"] = self.data.cluster_labels[self.data.cluster]
        return out

    def cluster_effects(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior summaries of every cluster's part of the trait, ``u_j = sigma_b z_j``.

        Returns
        -------
        pandas.DataFrame
            Columns ``cluster``, ``mean``, ``sd`` and the interval's quantiles.
        """
        if not self.structure.multilevel:
            raise PymlsemError("a model without clusters has no cluster effects: fit with cluster=")
        draws = self._draws("between_sd")[:, None] * self._draws("between_z")
        return pd.DataFrame({"cluster": self.data.cluster_labels} | draw_summary(draws, prob))

    def plot_item_curves(self, items: list[str] | None = None, prob: float = 0.95, path: Any = None) -> Any:
        """The items' characteristic (expected score) curves (:func:`pymlsem.plots.plot_item_curves`); needs
        matplotlib."""
        return plot_item_curves(self, items, prob, path)

    # ----------------------------------------------------------------- checks and comparison
    def grid_error(self) -> float:
        """How far the grid's integral is from the exact one: the largest change of a person's log-likelihood
        at the posterior means when the grid's spacing halves (``2 n_nodes - 1`` points). The trapezoid
        rule's error falls exponentially, so this is about the error of the fit's grid; above
        :data:`GRID_TOLERANCE` the fit warns (very discriminating items on a long test make each person's
        posterior narrower than the grid's spacing: refit with more ``n_nodes``)."""
        if "grid_error" not in self._cache:
            names = parameter_names(self.data, self.structure)
            means = {name: pt.as_tensor(self._draws(name).mean(0)) for name in names}
            loglik = []
            for nodes in (self.structure.n_nodes, 2 * self.structure.n_nodes - 1):
                structure = replace(self.structure, n_nodes=nodes)
                terms = integrated_terms(means, self.data.arrays(), structure)
                with python_thunks():
                    loglik.append(terms["person_loglik"].eval())
            self._cache["grid_error"] = float(np.abs(loglik[1] - loglik[0]).max())
        return self._cache["grid_error"]

    def grid_note(self) -> str | None:
        """A sentence when the grid is too coarse (:meth:`grid_error` above :data:`GRID_TOLERANCE`), or
        None."""
        error = self.grid_error()
        if error <= GRID_TOLERANCE:
            return None
        return (
            f"the trait's grid of {self.structure.n_nodes} points is coarse for these items: a person's "
            f"log-likelihood changes by {error:.2g} when its spacing halves; refit with "
            f"n_nodes={2 * self.structure.n_nodes - 1}"
        )

    def _checked_names(self) -> list[str]:
        return parameter_names(self.data, self.structure)

    def _other_notes(self) -> list[str | None]:
        return [self.grid_note()]

    def default_unit(self) -> str:
        """The unit of LOO: ``"observation"`` (a person, given its cluster's sampled part of the trait)."""
        return "observation"

    def pointwise_log_likelihood(self, unit: str) -> Pointwise:
        """The log-likelihood of every draw per person, the trait integrated out (given the cluster part).

        Parameters
        ----------
        unit
            ``"observation"``.
        """
        if unit != "observation":
            raise PymlsemError(
                f"unit={unit!r}: an IRT fit's log-likelihood is per person given the sampled cluster parts; "
                "use unit='observation'"
            )
        return Pointwise(self._evaluate()["person_loglik"], unit, self.data.index.to_numpy(), True)

    def data_identity(self) -> tuple[tuple[str, ...], int, str]:
        """The items, the number of rows and a digest of the answers and clusters (:func:`pymlsem.compare`
        compares fits to the same data only)."""
        digest = data_digest(self.data.codes, self.data.cluster)
        return tuple(sorted(self.data.items)), self.data.n_rows, digest

    def loo(self, **kwargs: Any) -> Any:
        """PSIS leave-one-out cross-validation (ArviZ), one person at a time.

        Parameters
        ----------
        **kwargs
            Passed to :func:`arviz_stats.loo`.
        """
        return loo(self, self.default_unit(), **kwargs)

    # ----------------------------------------------------------------- the report
    def summary(self, prob: float = 0.95) -> str:
        """The fit as text: sampling, convergence, the trait's levels and every item's parameters (posterior
        means), as a mirt user reads them."""
        items = self.item_parameters(prob)
        wide = items.pivot_table(index="item", columns="parameter", values="mean", sort=False)
        wide = wide[list(dict.fromkeys(items["parameter"]))]  # a, d, b, then thresholds and boundaries
        wide.columns.name = None
        head = [
            f"pymlsem {'two-level ' if self.structure.multilevel else ''}IRT model ({self.structure.link}: "
            + ("1PL" if self.structure.common_discrimination else "2PL")
            + (", graded response" if self.data.ordinal_groups() else "")
            + (", one discrimination for all items" if self.structure.common_discrimination else "")
            + ")",
            f"  persons {self.data.n_rows}, items {len(self.data.items)}"
            + (f", clusters {self.data.n_clusters}" if self.structure.multilevel else ""),
            f"  each person's trait integrated on {self.structure.n_nodes} grid points: "
            + (self.grid_note() or f"grid error {self.grid_error():.1g} (log-likelihood of a person)"),
            f"  sampler {self.sampler}: {self.idata.posterior.sizes['chain']} chains x "
            f"{self.idata.posterior.sizes['draw']} draws",
            f"  convergence: {self.convergence_note() or 'all checks pass'}",
            "",
            "Trait:",
            self.trait_parameters(prob).to_string(index=False, float_format=lambda v: f"{v:.3f}"),
            "",
            "Items, posterior means (a: discrimination, d: intercept, b = -d/a: difficulty; t_c: thresholds,",
            "b_c = t_c/a: category boundaries; SDs and intervals in fit.item_parameters()):",
            wide.to_string(float_format=lambda v: f"{v:.3f}"),
        ]
        return "\n".join(head)

    def __str__(self) -> str:
        return self.summary()
