"""Neuron models: physics as data (state variables, drift, threshold/reset, default grid)."""

from .base import Model, SpikeSurface, ThresholdReset
from .hh import HodgkinHuxley, ReducedHH
from .lif import LIF
from .lif_synaptic import LIFSynaptic

__all__ = ["Model", "ThresholdReset", "SpikeSurface", "LIF", "HodgkinHuxley", "ReducedHH",
           "LIFSynaptic"]

# The integrate-and-fire family (one-dimensional and adaptive) and FitzHugh-Nagumo.
from .adaptive_if import AdEx, Izhikevich  # noqa: E402
from .fitzhugh_nagumo import FitzHughNagumo  # noqa: E402
from .nonlinear_if import EIF, QIF  # noqa: E402

__all__ += ["EIF", "QIF", "AdEx", "Izhikevich", "FitzHughNagumo"]
