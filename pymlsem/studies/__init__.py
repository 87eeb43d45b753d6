"""Simulation studies: Bayesian power analysis (:mod:`pymlsem.studies.power`)."""

from pymlsem.studies.power import PowerResult, power_sim, simulate_response

__all__ = ["PowerResult", "power_sim", "simulate_response"]
