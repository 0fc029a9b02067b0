"""Brian2-style model equations: a safe parser, dimension checks and code generation.

>>> from popdens.equations import parse_equations
>>> m = parse_equations("dv/dt = (mu - v)/tau + sigma*xi/sqrt(tau) : volt",
...                     parameters=dict(mu=15e-3, tau=20e-3, sigma=5e-3),
...                     units=dict(mu="volt", tau="second", sigma="volt"),
...                     threshold="v > 0.02*volt", reset="v = 0.01*volt")
>>> m.state_names, m.noise_kind
(('v',), {'v': 'additive'})
"""

from .codegen import ScalarFunctions, generate_source
from .errors import EquationError
from .model import ParsedModel, parse_equations

__all__ = ["EquationError", "ParsedModel", "ScalarFunctions", "parse_equations",
           "generate_source"]
