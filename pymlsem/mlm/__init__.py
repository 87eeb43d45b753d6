"""Mixed models from lme4 formulas: sufficient statistics, integrated log-likelihood, PyMC model."""

from pymlsem.mlm.loglik import gaussian_marginal_loglik
from pymlsem.mlm.stats import GaussianStats, gaussian_stats

__all__ = ["GaussianStats", "gaussian_marginal_loglik", "gaussian_stats"]
