"""Scenario files: a network and its run settings as TOML.

A scenario file describes populations, Poisson sources, connections and how to run them;
``popdens run FILE.toml`` (or :func:`load_scenario` then :meth:`Scenario.run`) simulates it.
The whole file is validated before anything runs, with the same schema for ``popdens
check`` and ``popdens run`` (:data:`popdens.scenario.schema.SECTIONS`, backend options
included): unknown keys, missing fields, wrong types and invalid values of every entry are
reported at once, each as ``FILE:LINE: dotted.key: message`` (:class:`ScenarioError`, a
``ValueError``). Any text ends either in a :class:`Scenario` or in a
:class:`ScenarioError` (a missing file: ``FileNotFoundError``); never another exception.
Nothing in a file is ever evaluated as code:
model names are looked up in a registry of known model classes (:func:`model_registry`),
rates and delays are tables of numbers with a named shape.

Format (SI units: s, V, Hz)::

    title = "LIF population, step input"        # optional

    [run]
    t_end = 0.3                 # s, required, a whole number of dt
    dt = 1e-4                   # s, reporting step (default 1e-4)
    backend = "density"         # or "montecarlo" (default "density")
    record_times = [0.1, 0.3]   # s, when to store densities (default none)

    [run.density]               # options of the density backend (optional)
    scheme = "mc"

    [run.montecarlo]            # options of the Monte Carlo backend (optional)
    n_neurons = 100000
    seed = 1

    [populations.E]
    model = "LIF"                                  # a name from model_registry()
    params = { tau_m = 0.02, v_th = 0.02, v_reset = 0.01, t_ref = 0.002 }
    grid = { v = [0.0, 0.02, 400] }                # optional: [lower, upper, num_cells]

    [sources.ext]
    rate = 800.0                                   # Hz, or a table with a shape:
    # rate = { shape = "piecewise", times = [0.0, 0.1], rates = [500.0, 1000.0] }
    # rate = { shape = "step", time = 0.1, before = 0.0, after = 800.0 }
    # rate = { shape = "sinusoid", mean = 1000.0, amplitude = 500.0, frequency = 10.0 }
    #        (optional: phase (rad), start (s), before (Hz))
    # rate = { shape = "ramp", start = 0.0, stop = 0.2, initial = 0.0, final = 1000.0 }

    [[connections]]
    pre = "ext"                 # a source or a population
    post = "E"                  # a population (not a source)
    weight = 0.5e-3             # V per event (dimensionless with reversal)
    n_syn = 1                   # optional, default 1
    delay = 0.0                 # optional: s, or a table:
    # delay = { distribution = "exponential", mean = 2e-3, offset = 0.0 }
    # delay = { distribution = "gamma", mean = 2e-3, shape = 4.0 }
    # delay = { distribution = "uniform", low = 1e-3, high = 3e-3 }
    # delay = { distribution = "kernel", weights = [0.5, 0.5], bin_width = 1e-3 }
    input = "jump"              # optional: "jump" or "diffusion"
    # reversal = 0.0            # optional: V, makes it a conductance synapse

The same layout, as a dict, is what :func:`popdens.describe` returns, so
:func:`network_from_dict` rebuilds a saved result's network.

Modules: :mod:`~popdens.scenario.parsing` (text to data, key lines, the error format),
:mod:`~popdens.scenario.schema` (the declared keys and the checker),
:mod:`~popdens.scenario.building` (data to a network, :class:`Scenario`).
"""

from .building import (
    KNOWN_MODELS,
    Scenario,
    load_scenario,
    model_registry,
    network_from_dict,
    parse_scenario,
    ramp,
)
from .parsing import MAX_NESTING, Problem, ScenarioError, locate_keys
from .schema import DELAY_DISTRIBUTIONS, RATE_SHAPES, SECTIONS, reference_table

__all__ = ["Scenario", "ScenarioError", "Problem", "load_scenario", "parse_scenario",
           "network_from_dict", "model_registry", "ramp", "locate_keys", "RATE_SHAPES",
           "DELAY_DISTRIBUTIONS", "SECTIONS", "KNOWN_MODELS", "MAX_NESTING",
           "reference_table"]
