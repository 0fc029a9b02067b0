"""Neuron models: physics as data (state variables, drift, threshold/reset, default grid)."""

from .lif import LIF

__all__ = ["LIF"]
