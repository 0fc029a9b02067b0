"""Neuron models: physics as data (state variables, drift, threshold/reset, default grid)."""

from .hh import HodgkinHuxley, ReducedHH
from .lif import LIF
from .lif_synaptic import LIFSynaptic

__all__ = ["LIF", "HodgkinHuxley", "ReducedHH", "LIFSynaptic"]
