"""Neuron models: physics as data (state variables, drift, threshold/reset, default grid)."""

from .base import Model, SpikeSurface, ThresholdReset
from .equation import EquationModel
from .hh import HodgkinHuxley, ReducedHH
from .lif import LIF
from .lif_synaptic import LIFSynaptic

__all__ = ["Model", "ThresholdReset", "SpikeSurface", "LIF", "HodgkinHuxley", "ReducedHH",
           "LIFSynaptic", "EquationModel"]
