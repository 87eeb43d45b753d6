"""Simulation studies: Bayesian power analysis (:mod:`pymlsem.studies.power`) and simulation-based
calibration (:mod:`pymlsem.studies.calibration`)."""

from pymlsem.studies.calibration import Calibration, sbc, sem_sbc
from pymlsem.studies.power import (
    PowerCurve,
    PowerResult,
    power_curve,
    power_sim,
    sem_power_sim,
    simulate_response,
)

__all__ = [
    "Calibration",
    "PowerCurve",
    "PowerResult",
    "power_curve",
    "power_sim",
    "sbc",
    "sem_power_sim",
    "sem_sbc",
    "simulate_response",
]
