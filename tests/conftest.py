"""Fixtures shared by the whole test suite.

The tests mirror the package: ``kernels/`` (compiled kernels and their NumPy twins),
``models/``, ``backends/`` (density and Monte Carlo engines, stepping, interrupts,
resume), ``accuracy/`` (against theory and direct simulation), ``network/`` (coupling,
matrices, rate units, synapses), ``scenario/`` (files, CLI, hostile input), ``io/``
(saving, loading, plots) and ``reductions/`` (balanced and Markov descriptions); the
checks of the whole repository (golden outputs, import layers, README, notebooks) sit at
the top. Shared reference solutions live in ``reference.py``.
"""

import sys

import pytest


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every matplotlib figure a test left open (memory across 1000+ tests)."""
    yield
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")
