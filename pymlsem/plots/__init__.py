"""Plots of fitted models (matplotlib, an optional dependency: ``pip install 'pymlsem[plots]'``).

Every function returns the matplotlib figure and saves it to ``path=`` when given. They take a SEM fit
(:class:`~pymlsem.results.fit.SEMFit`) or a mixed-model fit (:class:`~pymlsem.mlm.fit.MixedFit`), or
(:func:`plot_class_profiles`) a latent class fit, or (:func:`plot_item_curves`) an IRT fit; the fits'
methods (``fit.plot()``, ``fit.plot_autocorr()``, ``fit.plot_profiles()``, ...) call them. Path diagrams
of SEM fits: :mod:`pymlsem.plots.path_figure` (matplotlib) and :mod:`pymlsem.plots.path_diagram` (graphviz,
optional).
"""

from pymlsem.plots.calibration import plot_rank_histograms
from pymlsem.plots.classes import plot_class_profiles
from pymlsem.plots.clusters import plot_caterpillar, plot_cluster_lines
from pymlsem.plots.diagnostics import plot_autocorr, plot_rank
from pymlsem.plots.items import plot_item_curves
from pymlsem.plots.path_figure import plot_path_diagram
from pymlsem.plots.power import plot_power_curve
from pymlsem.plots.ppc import plot_fit_ppc, plot_ppc
from pymlsem.plots.prior import plot_prior_posterior, prior_draws, prior_posterior_draws
from pymlsem.plots.trace import plot_trace_density
from pymlsem.plots.variance import plot_variance_partition

__all__ = [
    "plot_autocorr",
    "plot_caterpillar",
    "plot_class_profiles",
    "plot_cluster_lines",
    "plot_fit_ppc",
    "plot_item_curves",
    "plot_path_diagram",
    "plot_power_curve",
    "plot_ppc",
    "plot_prior_posterior",
    "plot_rank",
    "plot_rank_histograms",
    "plot_trace_density",
    "plot_variance_partition",
    "prior_draws",
    "prior_posterior_draws",
]
