"""Neuron models: physics as data (state variables, drift, threshold/reset, default grid)."""

from .adaptive_if import AdEx, Izhikevich
from .base import Model, SpikeSurface, ThresholdReset
from .equation import EquationModel
from .fitzhugh_nagumo import FitzHughNagumo
from .hh import HodgkinHuxley, ReducedHH
from .lif import LIF
from .lif_synaptic import LIFSynaptic
from .nonlinear_if import EIF, QIF

__all__ = ["Model", "ThresholdReset", "SpikeSurface", "LIF", "HodgkinHuxley", "ReducedHH",
           "LIFSynaptic", "EIF", "QIF", "AdEx", "Izhikevich", "FitzHughNagumo",
           "EquationModel"]
