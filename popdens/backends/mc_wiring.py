"""Fixed in-degree wiring of the Monte Carlo backends: partners drawn per connection, the
out-going adjacency (CSR) with per-synapse delays, and the spike ring buffers.

Shared by the 1D LIF kernels (:mod:`popdens.kernels.montecarlo`) and the model-agnostic
loop (:mod:`popdens.kernels.mc_engine`), which deliver spikes through these arrays the
same way.
"""

from __future__ import annotations

import math

import numpy as np

from ..kernels import montecarlo as kernels

__all__ = ["check_indegree", "wire"]


def check_indegree(conn, sizes) -> None:
    n_syn = conn.n_syn
    n_pre = sizes[conn.pre.name]
    if not float(n_syn).is_integer():
        raise ValueError(f"connection {conn.label}: connectivity='fixed_indegree' needs an "
                         f"integer n_syn, got n_syn={n_syn!r} (use connectivity='poisson' "
                         f"for a mean in-degree)")
    if n_syn > n_pre:
        raise ValueError(f"connection {conn.label}: n_syn={n_syn!r} exceeds the "
                         f"{n_pre} neurons of {conn.pre.name!r}; with "
                         f"connectivity='fixed_indegree' partners are drawn without "
                         f"replacement")


# Ring buffers larger than this (bytes) are refused rather than allocated.
_MAX_RING_BYTES = 4 * 2**30


def wire(prepared, dt, wiring_seq, delay_rng, n_total) -> dict:
    """Kernel arrays of the coupling: rate-coupled connections and the out-going adjacency
    (CSR) of the spiking ones, with their ring buffers."""
    index, pop_offsets = prepared["index"], prepared["pop_offsets"]
    rc = prepared["rate_coupled"]
    # lag 0 (this step's rate, not known yet) moved to lag 1: explicit coupling
    lags = [conn.delay.explicit_lag_weights(dt) for conn, _, _ in rc]
    rate_coupling = (
        np.array([index[conn.pre.name] for conn, _, _ in rc], dtype=np.int64),
        np.array([conn.n_syn for conn, _, _ in rc], dtype=float),
        np.concatenate([[0], np.cumsum([w.size for w in lags])]).astype(np.int64),
        np.concatenate(lags) if lags else np.zeros(0),
        np.array([row for _, row, _ in rc], dtype=np.int64),
        np.array([post for _, _, post in rc], dtype=np.int64),
        np.array([conn.weight for conn, _, _ in rc], dtype=float))

    conns = prepared["spiking"]
    reversals = sorted({c.reversal for c in conns if c.reversal is not None})
    channel_reversal = np.array([np.nan] + reversals)
    conn_channel = np.array([0 if c.reversal is None else 1 + reversals.index(c.reversal)
                             for c in conns], dtype=np.int64)
    conn_value = np.array([c.weight if c.reversal is None else math.log1p(-c.weight)
                           for c in conns], dtype=float)
    conn_fixed = np.array([c.delay.is_fixed for c in conns], dtype=np.bool_)
    conn_delay_steps = np.array([c.delay.offset / dt for c in conns], dtype=float)
    receives = np.zeros(len(prepared["names"]), dtype=np.bool_)

    # segments: neuron g of population P owns one per out-going spiking connection of P
    outgoing = {p: [c for c, conn in enumerate(conns) if index[conn.pre.name] == p]
                for p in range(len(prepared["names"]))}
    per_neuron = np.zeros(n_total, dtype=np.int64)
    for p, cs in outgoing.items():
        per_neuron[pop_offsets[p]:pop_offsets[p + 1]] = len(cs)
    out_offsets = np.concatenate([[0], np.cumsum(per_neuron)]).astype(np.int64)
    seg_conn = np.empty(int(out_offsets[-1]), dtype=np.int64)
    seg_size = np.zeros(int(out_offsets[-1]), dtype=np.int64)
    partners, delay_steps = [], []
    bits = wiring_seq.generate_state(max(len(conns), 1), dtype=np.uint64)
    longest = 0.0
    for c, conn in enumerate(conns):
        pre, post = index[conn.pre.name], index[conn.post.name]
        receives[post] = True
        n_pre = int(pop_offsets[pre + 1] - pop_offsets[pre])
        n_post = int(pop_offsets[post + 1] - pop_offsets[post])
        drawn = kernels.draw_fixed_indegree(n_post, int(conn.n_syn), n_pre, bits[c])
        partners.append(drawn)
        rank = outgoing[pre].index(c)
        segs = out_offsets[pop_offsets[pre]:pop_offsets[pre + 1]] + rank
        seg_conn[segs] = c
        seg_size[segs] = np.bincount(drawn, minlength=n_pre)
        if conn.delay.is_fixed:
            delay_steps.append(np.zeros(0, dtype=np.float32))
            longest = max(longest, conn_delay_steps[c])
        else:
            sampled = np.asarray(conn.delay.sample(delay_rng, drawn.size), dtype=float) / dt
            delay_steps.append(sampled.astype(np.float32))
            if sampled.size:
                longest = max(longest, float(np.max(delay_steps[-1])))
    seg_offsets = np.concatenate([[0], np.cumsum(seg_size)]).astype(np.int64)
    n_synapses = int(seg_offsets[-1])
    if n_total >= 2**32:
        raise ValueError(f"connectivity='fixed_indegree' supports fewer than 2**32 neurons, "
                         f"got {n_total}")
    # unsigned: indexing with it skips the negative-index wrap-around test (~20 % faster)
    syn_target = np.empty(n_synapses, dtype=np.uint32)
    distributed = any(d.size for d in delay_steps)
    syn_delay = np.zeros(n_synapses if distributed else 0, dtype=np.float32)
    for c, conn in enumerate(conns):
        pre, post = index[conn.pre.name], index[conn.post.name]
        rank = outgoing[pre].index(c)
        cursor = seg_offsets[out_offsets[pop_offsets[pre]:pop_offsets[pre + 1]] + rank].copy()
        kernels.fill_out_synapses(partners[c], int(conn.n_syn), pop_offsets[post], cursor,
                                  delay_steps[c], syn_target, syn_delay)
    partners.clear()
    # a spike at the end of its step with the longest delay lands floor(longest + 1.5)
    # boundaries ahead; one more slot keeps that apart from the step being read
    ring_length = int(math.floor(longest + 1.5)) + 2 if conns else 1
    n_rows = channel_reversal.size * ring_length
    if conns and n_rows * n_total * 8 > _MAX_RING_BYTES:
        raise ValueError(f"the spike ring buffers would need {n_rows * n_total * 8 / 2**30:.1f}"
                         f" GiB (longest delay {longest * dt!r} s = {longest:.0f} steps of "
                         f"dt={dt!r}, {n_total} neurons); use a larger dt or "
                         f"connectivity='poisson'")
    inbox = np.zeros((n_rows, n_total) if conns else (1, 1))
    spiking_arrays = (out_offsets if conns else np.zeros(1, dtype=np.int64), seg_conn,
                      seg_offsets, syn_target, syn_delay, conn_fixed, conn_delay_steps,
                      conn_channel, conn_value, channel_reversal, receives, inbox,
                      np.zeros(len(conns), dtype=np.int64))
    return {"rate_coupling": rate_coupling, "spiking": spiking_arrays,
            "labels": [c.label for c in conns],
            "synapses": [int(c.n_syn) * int(pop_offsets[index[c.post.name] + 1]
                                             - pop_offsets[index[c.post.name]])
                         for c in conns]}
