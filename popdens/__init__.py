"""popdens: population-density simulation of spiking neuron populations.

A population of neurons is described by its probability density rho(v, t) in phase space,
which obeys d rho / dt = -div J (Omurtag, Knight & Sirovich 2000). The density backend
advances it on a finite-volume grid with numba kernels; a Monte Carlo backend simulates the
same network neuron by neuron for validation.
"""

from . import balanced, delays, markov, synapses, transfer
from ._limits import ResourceLimitError
from ._version import __version__
from .grid import Axis, Grid
from .models import LIF, HodgkinHuxley, LIFSynaptic, Model, ReducedHH, SpikeSurface, ThresholdReset
from .network import Network, piecewise, sinusoid
from .result import Result
from .theory import (
                     StationaryState,
                     brunel_mean_field_rate,
                     brunel_threshold_rate,
                     convergence_order,
                     diffusion_params,
                     richardson_extrapolate,
                     siegert_rate,
                     threshold_integration,
                     threshold_integration_1d,
)

__all__ = ["Axis", "Grid", "LIF", "Network", "Result", "ResourceLimitError", "delays",
           "transfer", "synapses",
           "piecewise", "sinusoid",
           "HodgkinHuxley", "ReducedHH", "LIFSynaptic", "Model", "ThresholdReset",
           "SpikeSurface", "__version__",
           "StationaryState", "brunel_mean_field_rate", "brunel_threshold_rate",
           "convergence_order", "diffusion_params", "richardson_extrapolate",
           "siegert_rate", "threshold_integration", "threshold_integration_1d"]

# Importing the backends registers them with Network.run.
from .backends import density as _density  # noqa: E402,F401
from .backends import montecarlo as _montecarlo  # noqa: E402,F401
from .backends import rate_units as _rate_units  # noqa: E402,F401
from .backends.stationary import steady_state  # noqa: E402
from .backends.steady_common import SteadyState  # noqa: E402
from .backends.steady_nd import step_operator  # noqa: E402

__all__ += ["SteadyState", "steady_state", "step_operator", "balanced", "markov"]

# Model text (Brian2-style equations): parser, dimension checks, generated code.
from .equations import EquationError, ParsedModel, parse_equations  # noqa: E402
from .models import EquationModel  # noqa: E402

__all__ += ["EquationError", "ParsedModel", "parse_equations", "EquationModel"]

# The integrate-and-fire family and FitzHugh-Nagumo (popdens.models).
from .models import EIF, QIF, AdEx, FitzHughNagumo, Izhikevich  # noqa: E402

__all__ += ["EIF", "QIF", "AdEx", "Izhikevich", "FitzHughNagumo"]

# Front layer: saving/loading results, the network description, scenario files.
from .io import describe, load  # noqa: E402
from .scenario import load_scenario  # noqa: E402

__all__ += ["describe", "load", "load_scenario"]
