"""Model checking of fitted SEMs: saturated-model sample statistics, SRMR and posterior predictive p-values.

- :func:`sample_statistics`: the saturated (h1) model's ML means and covariance matrices per level (lavaan's
  ``lavInspect(fit, "sampstat")``; two levels by lavaan's EM).
- :func:`srmr`, :func:`srmr_draws`: lavaan's SRMR (two levels: within and between) per posterior draw.
- :func:`posterior_predictive_pvalue`: blavaan's PPP from the chi-square discrepancy, single- and two-level.
- :func:`add_log_likelihood`, :func:`loo`, :func:`compare`, :func:`sem_dic`: pointwise log-likelihoods per
  cluster or per observation (SEMs and mixed models), PSIS-LOO and model comparison with ArviZ, DIC with pD.
- :func:`posterior_predictive`, :func:`sem_prior_predictive`, :func:`mixed_prior_predictive`: replicated data
  sets stored in the fit's DataTree.
- :func:`add_log_prior`, :func:`prior_sensitivity`: ArviZ's power-scaling prior sensitivity and diagnosis.
- :func:`refit`, :func:`prior_grid`: refits with other prior arguments that reuse the compiled model.

Models with implied moments work in numpy on sufficient statistics, batched over posterior draws and
replicated data sets; with missing values the pointwise log-likelihood is the model's full-information graph
(:mod:`pymlsem.workflow.incomplete`), and models with random slopes or ordered indicators are evaluated given
their sampled latent variables from the latent builder's own graph (:mod:`pymlsem.workflow.conditional`).
"""

from pymlsem.workflow.information import WAIC, compare, loo, loo_outliers, sem_dic, waic
from pymlsem.workflow.loglik import ImpliedMoments, implied_moments, model_loglik
from pymlsem.workflow.pointwise import add_log_likelihood, pointwise_log_likelihood
from pymlsem.workflow.ppp import PPPResult, chisq_discrepancy, posterior_predictive_pvalue, ppp_from_rows
from pymlsem.workflow.predictive import mixed_prior_predictive, posterior_predictive, sem_prior_predictive
from pymlsem.workflow.refit import prior_grid, refit
from pymlsem.workflow.replicate import simulate_replicates
from pymlsem.workflow.saturated import SaturatedMoments, sample_statistics, two_level_h1
from pymlsem.workflow.sensitivity import add_log_prior, prior_sensitivity
from pymlsem.workflow.srmr import srmr, srmr_draws, srmr_from_rows

__all__ = [
    "WAIC",
    "ImpliedMoments",
    "PPPResult",
    "SaturatedMoments",
    "add_log_likelihood",
    "add_log_prior",
    "chisq_discrepancy",
    "compare",
    "implied_moments",
    "loo",
    "loo_outliers",
    "mixed_prior_predictive",
    "model_loglik",
    "pointwise_log_likelihood",
    "posterior_predictive",
    "posterior_predictive_pvalue",
    "ppp_from_rows",
    "prior_grid",
    "prior_sensitivity",
    "refit",
    "sample_statistics",
    "sem_dic",
    "sem_prior_predictive",
    "simulate_replicates",
    "srmr",
    "srmr_draws",
    "srmr_from_rows",
    "two_level_h1",
    "waic",
]
