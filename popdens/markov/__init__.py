"""Markov-approximation reduction of a spiking E/I network (Chang et al. 2025)."""

from ._model import POPULATIONS, MarkovResult, MIFNetwork, MIFParams
from .analysis import (
                       METHODS,
                       SCAN_METHODS,
                       ScanResult,
                       rate_peaks,
                       run_method,
                       scan,
                       ssi,
                       ssi_poisson,
)
from .density import DensityReduction, MIFVoltage
from .reduction import REFRACTORY_RULES, MarkovODE, MarkovSDE
from .spiking import simulate

__all__ = ["MIFNetwork", "MIFParams", "MarkovResult", "POPULATIONS", "simulate",
           "MarkovODE", "MarkovSDE", "DensityReduction", "MIFVoltage", "REFRACTORY_RULES",
           "METHODS", "SCAN_METHODS", "ScanResult", "rate_peaks", "run_method", "scan", "ssi",
           "ssi_poisson"]
