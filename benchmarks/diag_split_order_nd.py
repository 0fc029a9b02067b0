"""Time error of the N-D density's split step for ReducedHH, without any grid.

The density engine (``popdens.kernels.nd.advance_nd``) advances ReducedHH per internal
step ``h`` by a ``v`` sweep (non-affine: backward RK4 with ``n`` frozen at its mean over
the step, "anchored"), an ``n`` sweep (exact exponential relaxation with ``v`` frozen)
and the jump stage, in reverse order on odd steps. This script applies the same maps to
neurons instead of cells, so its only error is the splitting's, and compares the rate
with the exact trajectories of the same neurons and input events (RK4 at 2 us, events at
their times): the ``errest_references`` scenario (2 mV jumps at 4 kHz from rest, rate
over 30-100 ms). Variants of the split step:

- ``face``: the engine's: in backward steps ``n``'s mean is taken with ``v`` at its
  value after the ``v`` sweep (the face of the density's departure tables);
- ``departure``: taken with ``v`` before the sweep (what the ``n`` sweep saw), which
  makes the backward step the adjoint of the forward one;
- ``center``: ``n`` frozen at its current value (no anchoring);
- ``lie``: ``face`` without the alternation (every step in forward order).

Measured (2 shared cores, loaded), rate in Hz at h = 100, 50, 25 us, error against the
exact trajectories of the same neurons and events::

    N = 4000, exact 85.821:  face       +0.207  +0.064  +0.004
                             departure  +0.061  +0.033  -0.010
    N = 1000, exact 86.214:  face       +0.229  +0.143  +0.129
                             departure  +0.229  +0.086  +0.129
                             center     +1.072  +0.415  +0.129
                             lie        +2.529  +1.472  +0.843

One spike more or less in the window is 1 / (N 0.07 s) (0.0036 Hz at N = 4000); the
step-to-step differences of a variant scatter by about 0.05 Hz at N = 4000 and 0.1 Hz at
N = 1000 (neurons whose spike moves across the window's ends), so only N = 4000 resolves
the ``face`` / ``departure`` difference. The split step alone converges: ``face`` falls
from +0.21 to +0.06 Hz per halving at 100 us (order about 1.7, within that scatter),
``lie`` is first order. The density on the default grid (556, 200) moves more with the
step: 86.211, 85.915, 85.750, 85.611 Hz at 100, 50, 25, 12.5 us (0.30, 0.17, 0.14 Hz per
halving, against 0.14 and 0.06 for ``face`` alone), and on (278, 100) 86.067, 85.637,
85.331, 84.893 Hz: at a fixed grid most of the step dependence is a grid error that
grows as the step shrinks (more semi-Lagrangian remaps), not the splitting. Run::

    python benchmarks/diag_split_order_nd.py face --neurons 1000   # ~5 min per variant
"""

from __future__ import annotations

import argparse

import numpy as np
from errest_references import T_END, WINDOW

import popdens as pd
from popdens.models.hh import hh_rate_functions

LEVEL = 0.6       # ReducedHH's default spike level of n
JUMP = 2e-3       # V per input event
INPUT_RATE = 4000.0
RK_SUBSTEPS = 8   # RK4 steps per v sweep (12.5 us or less at h = 100 us)


def _n_relaxation(v):
    r = hh_rate_functions(v)
    rate = r["alpha_n"] + r["beta_n"]
    return r["alpha_n"] / rate, rate


def _n_flow(v, n, h):
    n_inf, rate = _n_relaxation(v)
    return n_inf + (n - n_inf) * np.exp(-rate * h)


def _n_mean(v, n, h, anchor):
    """Mean of n's relaxation over the step after (+1) or before (-1) the value n."""
    n_inf, rate = _n_relaxation(v)
    z = rate * h
    factor = -np.expm1(-z) / z if anchor > 0 else np.expm1(z) / z
    return n_inf + (n - n_inf) * factor


def _v_flow(model, v, n_frozen, h):
    s = h / RK_SUBSTEPS
    for _ in range(RK_SUBSTEPS):
        k1 = model.drift(v, n_frozen)[0]
        k2 = model.drift(v + 0.5 * s * k1, n_frozen)[0]
        k3 = model.drift(v + 0.5 * s * k2, n_frozen)[0]
        k4 = model.drift(v + s * k3, n_frozen)[0]
        v = v + s / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return v


def _v_sweep(model, v, n, h, anchor, variant):
    if variant == "center":
        return _v_flow(model, v, n, h)
    if variant == "departure" and anchor < 0:
        return _v_flow(model, v, _n_mean(v, n, h, anchor), h)
    arrival = v
    for _ in range(2):   # the mean at the arrival point (fixed point, 2 passes)
        arrival = _v_flow(model, v, _n_mean(arrival, n, h, anchor), h)
    return arrival


def split_rate(model, events, n_neurons, h, variant):
    """Rate over WINDOW of the split step (``variant``) with internal step ``h``."""
    times, who = events
    v = np.full(n_neurons, model.resting_state[0])
    n = np.full(n_neurons, model.resting_state[1])
    spikes = 0
    step_of = np.floor(times / h).astype(np.int64)
    for k in range(int(round(T_END / h))):
        kicks = np.bincount(who[step_of == k], minlength=n_neurons) * JUMP
        counted = k * h >= WINDOW[0] - 1e-12
        if k % 2 == 0 or variant == "lie":
            v = _v_sweep(model, v, n, h, +1, variant)
            after = _n_flow(v, n, h)
            spikes += counted * np.sum((n < LEVEL) & (after >= LEVEL))
            n, v = after, v + kicks
        else:
            v = v + kicks
            after = _n_flow(v, n, h)
            spikes += counted * np.sum((n < LEVEL) & (after >= LEVEL))
            n = after
            v = _v_sweep(model, v, n, h, -1, variant)
    return spikes / n_neurons / (WINDOW[1] - WINDOW[0])


def exact_rate(model, events, n_neurons, h=2e-6):
    """Rate over WINDOW of RK4 trajectories (step ``h``), events at their times."""
    times, who = events
    order = np.argsort(times)
    times, who = times[order], who[order]
    v = np.full(n_neurons, model.resting_state[0])
    n = np.full(n_neurons, model.resting_state[1])
    spikes = 0
    bounds = np.searchsorted(times, np.arange(int(round(T_END / h)) + 1) * h)
    for k in range(int(round(T_END / h))):
        a1, b1 = model.drift(v, n)
        a2, b2 = model.drift(v + 0.5 * h * a1, n + 0.5 * h * b1)
        a3, b3 = model.drift(v + 0.5 * h * a2, n + 0.5 * h * b2)
        a4, b4 = model.drift(v + h * a3, n + h * b3)
        after = n + h / 6.0 * (b1 + 2.0 * b2 + 2.0 * b3 + b4)
        v = v + h / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
        if k * h >= WINDOW[0] - 1e-12:
            spikes += np.sum((n < LEVEL) & (after >= LEVEL))
        n = after
        np.add.at(v, who[bounds[k]:bounds[k + 1]], JUMP)
    return spikes / n_neurons / (WINDOW[1] - WINDOW[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=("face", "departure", "center", "lie"))
    parser.add_argument("--neurons", type=int, default=1000)
    parser.add_argument("--steps", default="1e-4,5e-5,2.5e-5")
    parser.add_argument("--no-exact", action="store_true")
    args = parser.parse_args()
    model = pd.ReducedHH()
    rng = np.random.default_rng(1)
    counts = rng.poisson(INPUT_RATE * T_END, args.neurons)
    events = (np.concatenate([rng.uniform(0.0, T_END, c) for c in counts]),
              np.repeat(np.arange(args.neurons), counts))
    steps = [float(s) for s in args.steps.split(",")]
    rates = [split_rate(model, events, args.neurons, h, args.variant) for h in steps]
    exact = None if args.no_exact else exact_rate(model, events, args.neurons)
    for h, rate in zip(steps, rates):
        error = "" if exact is None else f", error {rate - exact:+.3f} Hz"
        print(f"{args.variant}: h = {h * 1e6:g} us: {rate:.3f} Hz{error}")
    if exact is not None:
        print(f"exact: {exact:.3f} Hz")


if __name__ == "__main__":
    main()
