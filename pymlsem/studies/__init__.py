"""Simulation studies: Bayesian power analysis (:mod:`pymlsem.studies.power`)."""

from pymlsem.studies.power import (
    PowerCurve,
    PowerResult,
    power_curve,
    power_sim,
    sem_power_sim,
    simulate_response,
)

__all__ = ["PowerCurve", "PowerResult", "power_curve", "power_sim", "sem_power_sim", "simulate_response"]
