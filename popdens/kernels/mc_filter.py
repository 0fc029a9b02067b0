r"""Monte Carlo of LIF neurons with a synaptic state per neuron (filtered input current).

Each neuron carries ``x = (v - e_l, s_1, ..., s_m)``: its membrane potential relative to
rest and the states of the synaptic filters of its inputs. Between input events the
system is linear,

.. math:: \dot x = A x, \qquad A = \begin{pmatrix} -1/\tau_m & c^T \\ 0 & B \end{pmatrix},

the filtered current :math:`I = c^T s` (V/s) driving ``v`` and ``B`` the filters'
dynamics, so one step is the exact propagator :math:`x \to e^{A\,dt} x` (precomputed
by the caller). An input event of connection ``j`` adds ``counts * weight_j * e_j`` to
``x`` (``e_j`` the filter's input vector; ``(1, 0, ...)`` for an unfiltered jump of
``v``). Per step: the events of the step act at its start (their counts are Poisson,
drawn by the caller's driver), a neuron pushed to threshold by them spikes at once; then
the step's propagator; a neuron at or above threshold at the step end spikes. A spike
resets ``v`` and holds it there for ``ref_steps`` steps, during which the neuron ignores
input and its filter states keep decaying (as :class:`popdens.LIFSynaptic`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

__all__ = ["FilterParams", "filter_step", "simulate", "seed_numba"]


class FilterParams(NamedTuple):
    """The arrays of one population (``n = 1 + m`` state entries).

    ``propagator`` (n, n): :math:`e^{A\\,dt}`; ``inputs`` (J, n): ``weight_j e_j`` per
    connection; ``threshold``, ``reset``: ``v_th - e_l``, ``v_reset - e_l`` (V);
    ``ref_steps``: refractory steps (int)."""

    propagator: np.ndarray
    inputs: np.ndarray
    threshold: float
    reset: float
    ref_steps: int


@njit(cache=True)
def filter_step(x, ref, counts, p):
    """Advance every neuron one step with the given event ``counts`` (N, J).

    ``x`` (N, n) and ``ref`` (N,) are updated in place; returns the number of spikes."""
    n_neurons, n = x.shape
    spikes = 0
    row = np.empty(n)
    for i in range(n_neurons):
        held = ref[i] > 0
        if not held:
            for j in range(counts.shape[1]):
                if counts[i, j] > 0:
                    for a in range(n):
                        x[i, a] += counts[i, j] * p.inputs[j, a]
            if x[i, 0] >= p.threshold:       # pushed over by this step's events
                spikes += 1
                x[i, 0] = p.reset
                ref[i] = p.ref_steps
                held = ref[i] > 0
        for a in range(n):
            acc = 0.0
            for b in range(n):
                acc += p.propagator[a, b] * x[i, b]
            row[a] = acc
        for a in range(n):
            x[i, a] = row[a]
        if held:
            x[i, 0] = p.reset
            ref[i] -= 1
        elif x[i, 0] >= p.threshold:
            spikes += 1
            x[i, 0] = p.reset
            ref[i] = p.ref_steps
    return spikes


@njit(cache=True)
def seed_numba(seed):
    """Seed numba's generator (used by :func:`simulate`)."""
    # numba's per-thread legacy generator: the one a compiled loop can draw from cheaply
    np.random.seed(seed)  # noqa: NPY002


@njit(cache=True)
def simulate(x, ref, mean_counts, p, spikes):
    """Steps ``0 .. mean_counts.shape[1] - 1``: Poisson counts of mean
    ``mean_counts[j, k]`` per neuron and connection, then :func:`filter_step`;
    ``spikes[k]`` gets the spikes of step ``k``."""
    n_neurons = x.shape[0]
    n_inputs, n_steps = mean_counts.shape
    counts = np.zeros((n_neurons, n_inputs), dtype=np.int64)
    for k in range(n_steps):
        for i in range(n_neurons):
            for j in range(n_inputs):
                lam = mean_counts[j, k]
                counts[i, j] = np.random.poisson(lam) if lam > 0.0 else 0  # noqa: NPY002
        spikes[k] = filter_step(x, ref, counts, p)
