"""What the workflow tools and plots ask of a fit: one small protocol that every kind of fit implements.

:class:`~pymlsem.results.fit.SEMFit` and :class:`~pymlsem.mlm.fit.MixedFit` (with
:class:`~pymlsem.mlm.glmm_fit.GLMMFit`) answer these questions each for its own kind of model; the tools in
:mod:`pymlsem.workflow` (LOO, comparison, prior sensitivity, refits, predictive draws) and
:mod:`pymlsem.plots` ask only through them, never which kind of fit they hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import pymc as pm
    import xarray as xr

    from pymlsem.sample import SamplerSettings
    from pymlsem.workflow.pointwise import Pointwise

__all__ = ["Fitted", "ParameterColumns"]

#: draws as named columns (dims ``chain``, ``draw``, ``parameter``), every name a user may give for the
#: columns (name -> positions; an empty list marks an ambiguous name), and the positions shown by default
ParameterColumns = tuple["xr.DataArray", dict[str, list[int]], list[int]]


@runtime_checkable
class Fitted(Protocol):
    """A fitted model as the workflow tools and plots see it.

    ``isinstance(fit, Fitted)`` checks that ``fit`` has every member (not their signatures).

    Attributes
    ----------
    idata
        The posterior (an ArviZ DataTree) to which the tools add groups.
    sampler, chains, draws, tune
        How it was sampled (see ``settings``).
    """

    idata: Any
    sampler: str
    chains: int
    draws: int
    tune: int

    @property
    def pymc_model(self) -> pm.Model:
        """The per-model PyMC model (its free variables carry the priors)."""

    def default_unit(self) -> str:
        """The unit of the pointwise log-likelihood by default: ``"cluster"`` or ``"observation"``."""

    def pointwise_log_likelihood(self, unit: str) -> Pointwise:
        """The log-likelihood of every draw by ``unit`` (a checked ``"cluster"`` or ``"observation"``)."""

    def total_log_likelihood(self) -> np.ndarray | None:
        """The log-likelihood of all the data per draw when no factorizing pointwise one is at hand (a fit to
        summary statistics) or it is much cheaper; None to sum the pointwise one."""

    def replicated_data(
        self, posterior: xr.Dataset, seed: int | None, random_effects: str
    ) -> tuple[xr.Dataset, xr.Dataset | None]:
        """Replicated data sets from the given draws (``posterior_predictive``) and the observed data they
        replicate (``observed_data``; None when the fit has no raw data)."""

    def replicated_variables(self, available: Sequence[str]) -> list[str]:
        """The replicated variables a predictive check shows by default, among ``available``."""

    def observed_values(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """The observed values of replicated variables ``names``."""

    def data_identity(self) -> tuple[tuple[str, ...], int, str]:
        """Which data the fit models: its variables, number of rows and a digest of the values."""

    def parameter_draws(self) -> xr.DataArray:
        """Every reported parameter's draws, dims ``(chain, draw, parameter)``."""

    def parameter_columns(self) -> ParameterColumns:
        """:meth:`parameter_draws` as plot columns, the names that select them and the default selection."""

    def parameter_priors(self) -> dict[str, str]:
        """The prior of each reported parameter, by its name in :meth:`parameter_draws` (where known)."""

    def prior_variables(self) -> list[str]:
        """The posterior variables compared with their priors (each drawn from its prior by PyMC)."""

    def prior_columns(self, source: xr.Dataset) -> ParameterColumns:
        """:meth:`prior_variables` of ``source`` (the posterior or draws from the prior) as plot columns."""

    @property
    def settings(self) -> SamplerSettings:
        """How the fit was sampled (a refit starts from these settings)."""

    def fit_with_priors(self, priors: Mapping[str, Any], settings: SamplerSettings) -> Fitted:
        """The same model on the same data with the priors ``priors`` changed, sampled with ``settings``."""
