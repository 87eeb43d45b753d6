"""Chain diagnostics and posterior summaries in the style of coda and MCMCglmm.

Modules: :mod:`~pymlsem.diagnostics.hpd` (HPD intervals), :mod:`~pymlsem.diagnostics.pmcmc` (pMCMC and
significance stars), :mod:`~pymlsem.diagnostics.spectral` (spectral density at zero, coda's effective size),
:mod:`~pymlsem.diagnostics.geweke`, :mod:`~pymlsem.diagnostics.autocorr`, :mod:`~pymlsem.diagnostics.dic`
and :mod:`~pymlsem.diagnostics.controls` (MCMCglmm's ``nitt``/``burnin``/``thin``).
"""

from pymlsem.diagnostics.autocorr import autocorr_array, autocorr_table
from pymlsem.diagnostics.controls import mcmcglmm_controls
from pymlsem.diagnostics.dic import DIC, dic
from pymlsem.diagnostics.geweke import geweke_z
from pymlsem.diagnostics.hpd import hpd_interval
from pymlsem.diagnostics.pmcmc import pmcmc, signif_stars
from pymlsem.diagnostics.spectral import effective_size, spectrum0_ar

__all__ = [
    "DIC",
    "autocorr_array",
    "autocorr_table",
    "dic",
    "effective_size",
    "geweke_z",
    "hpd_interval",
    "mcmcglmm_controls",
    "pmcmc",
    "signif_stars",
    "spectrum0_ar",
]
