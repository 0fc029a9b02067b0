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


def pytest_collection_modifyitems(items):
    """Modules holding a ``slow`` test run first, each module kept together (its
    module-scoped fixtures are built once). pytest-xdist's ``worksteal`` hands each worker
    a contiguous share of this list: the long tests then start early and the run ends on
    short ones, instead of one core finishing a long notebook alone (before: 953 s of wall
    time for 891 s of CPU time per core, a cold run on 2 cores)."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
