"""Active tiles (``kernels.nd_tiles``): a stage acts only on the columns of tiles that hold
mass, and must give the full sweep's numbers to the last bit (same arithmetic; cells
outside the processed range receive exactly 0 in the full sweep too). Checked stage by
stage against the NumPy twins of ``test_nd`` and the full-sweep kernels, and over whole
runs (2D, 3D with reset, 4D, HH 4D, conductance jumps) against ``tiles=False``."""

from __future__ import annotations

import numpy as np
import pytest

import popdens as pd
from popdens.assembly_nd import axis_views, tile_plan
from popdens.backends.density_nd import NDDensitySimulation
from popdens.kernels.nd import (
    SCHEME_MC,
    SCHEME_UPWIND,
    SCHEME_VANLEER,
    TOP_FIRE,
    TOP_REFLECT,
    drift_sweep_gather,
    drift_sweep_local,
    jump_whole,
)
from popdens.kernels.nd_tiles import (
    STAGE_GATHER,
    STAGE_LOCAL,
    STAGE_WHOLE,
    mark_tiles,
    tiled_stage,
)

from .test_nd import RandomField, StillMembrane, _blob_init, _naive_sweep, _naive_whole_jump

SHAPE = (17, 12, 10)


def _sparse_state(rng, shape, box):
    """Random masses inside ``box`` (slices), 0 elsewhere, with scattered zeros."""
    p = np.zeros(shape)
    inside = rng.random(p[box].shape) ** 3
    inside[rng.random(inside.shape) < 0.2] = 0.0
    p[box] = inside
    return p


def _departures(rng, shape, axis, far):
    """Monotone departure points of every face of ``axis`` (end faces fixed): up to
    several cells away (``far``) or within one cell of their face."""
    n = shape[axis]
    face_shape = list(shape)
    face_shape[axis] += 1
    faces = np.arange(n + 1).reshape([-1 if k == axis else 1 for k in range(len(shape))])
    if far:
        steps = rng.uniform(0.0, 1.0, size=face_shape) ** 4
        dep = np.cumsum(steps, axis=axis)
        dep -= np.take(dep, [0], axis=axis)
        return dep * n / np.take(dep, [n], axis=axis)
    amplitude = np.take(rng.uniform(-0.95, 0.95, size=face_shape), [0], axis=axis)
    phase = np.take(rng.uniform(0, 2 * np.pi, size=face_shape), [0], axis=axis)
    dep = np.clip(faces + amplitude * np.sin(0.5 * faces + phase), 0.0, n)
    return np.where((faces == 0) | (faces == n), faces, dep)


def _stage(kind, p, dep, axis, size, scheme=SCHEME_MC, m=0, weights=None,
           watch=-1, top_mode=TOP_REFLECT):
    """One tiled stage on ``p``: (new masses, watched, crossed, flags, src after)."""
    weights = np.zeros(1) if weights is None else weights
    shape = p.shape
    ndim = len(shape)
    tables = [np.zeros(1)] * (2 * ndim)
    tables[axis] = dep.ravel()
    tables[ndim + axis] = dep.ravel()
    # departure ranges of the other axes are not used by this stage
    for k in range(ndim):
        if k != axis:
            face_shape = list(shape)
            face_shape[k] += 1
            flat = np.broadcast_to(np.arange(shape[k] + 1.0).reshape(
                [-1 if j == k else 1 for j in range(ndim)]), face_shape).ravel()
            tables[k] = tables[ndim + k] = flat
    plan = tile_plan(shape, tables, size=size)
    src = p.ravel().copy()
    dst = np.zeros(src.size)
    mark_tiles(src, plan, plan.flags)
    outer, n, inner = axis_views(shape)
    lines = outer[axis] * inner[axis]
    watched, crossed = np.zeros(lines), np.zeros(lines)
    scratch = np.zeros(2 * max(inner.max(), n.max() + 1))
    cum = np.zeros(src.size + inner.max())
    tiled_stage(kind, src, dst, np.zeros(src.size), dep.ravel(), axis, axis, n[axis],
                inner[axis], scheme, plan, cum, scratch, watch, watched, m, float(m), 1.0,
                weights, weights.size, top_mode, False, crossed)
    return dst.reshape(shape), watched, crossed, plan, src


@pytest.mark.parametrize("scheme", [SCHEME_MC, SCHEME_VANLEER, SCHEME_UPWIND])
@pytest.mark.parametrize("kind", [STAGE_GATHER, STAGE_LOCAL])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_tiled_sweep_matches_naive_twin_and_full_sweep(axis, kind, scheme):
    """Mass in a sub-box: the tiled sweep equals the NumPy remap of every line (1e-11:
    the twin sums in another order) and the full-sweep kernel bit for bit; its source is
    left all 0 and its flags are exactly the tiles holding mass."""
    rng = np.random.default_rng([axis, kind, scheme])
    box = (slice(5, 11), slice(3, 8), slice(2, 7))
    p = _sparse_state(rng, SHAPE, box)
    dep = _departures(rng, SHAPE, axis, far=kind == STAGE_GATHER)
    got, watched, _, plan, src = _stage(kind, p, dep, axis, (3, 2, 4), scheme, watch=6)
    expected = _naive_sweep(p, dep, axis, scheme)
    # round-off: the same remap summed in another order (measured 8.9e-16 abs)
    np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-15)
    outer, n, inner = axis_views(SHAPE)
    full = np.zeros(p.size)
    full_watched = np.zeros(outer[axis] * inner[axis])
    scratch = np.zeros(2 * max(inner.max(), n.max() + 1))
    if kind == STAGE_GATHER:
        drift_sweep_gather(p.ravel().copy(), full, dep.ravel(), outer[axis], n[axis],
                           inner[axis], scheme, np.zeros(p.size + inner.max()), scratch,
                           6, full_watched)
    else:
        drift_sweep_local(p.ravel().copy(), full, dep.ravel(), outer[axis], n[axis],
                          inner[axis], scheme, scratch, 6, full_watched)
    np.testing.assert_array_equal(got.ravel(), full)
    np.testing.assert_array_equal(watched, full_watched)
    assert not src.any()
    held = np.zeros_like(plan.flags)
    mark_tiles(got.ravel(), plan, held)
    np.testing.assert_array_equal(plan.flags, held)
    assert 0 < held.mean() < 1      # the tiles did restrict the work


@pytest.mark.parametrize("m, top_mode", [(2, TOP_FIRE), (3, TOP_REFLECT), (-1, TOP_REFLECT)])
def test_tiled_whole_jump_matches_event_by_event_twin(m, top_mode):
    """Whole-cell jumps of a sub-box, near the upper edge so that mass fires or piles:
    the event-by-event twin (1e-12: summation order) and ``jump_whole`` bit for bit."""
    rng = np.random.default_rng(40 + m)
    p = _sparse_state(rng, SHAPE, (slice(1, 16), slice(4, 9), slice(0, 5)))
    weights = np.array([0.4, 0.3, 0.15, 0.1, 0.05])
    # departure table of axis 0 (unused by a jump; the plan needs one): the faces
    dep = np.broadcast_to(np.arange(SHAPE[0] + 1.0).reshape(-1, 1, 1),
                          (SHAPE[0] + 1,) + SHAPE[1:])
    watch = 13
    got, watched, crossed, _, _ = _stage(STAGE_WHOLE, p, dep, 0, (2, 3, 2), m=m,
                                         weights=weights, watch=watch, top_mode=top_mode)
    lines_in = p.reshape(SHAPE[0], -1).T
    for line, src in enumerate(lines_in):
        expected, fired, _, seen = _naive_whole_jump(src, m, weights, top_mode, False, watch)
        # round-off: the same weighted terms per cell (measured 4.5e-16 rel, 4.4e-16 abs)
        np.testing.assert_allclose(got.reshape(SHAPE[0], -1)[:, line], expected,
                                   rtol=1e-12, atol=1e-15)
        # round-off of the same sums (measured 3.2e-16 rel, 1.1e-16 abs)
        assert crossed[line] == pytest.approx(fired, rel=1e-12, abs=1e-15)
        # round-off of the same sums (measured 4.8e-16 rel, 2.2e-16 abs)
        assert watched[line] == pytest.approx(seen, rel=1e-12, abs=1e-15)
    full = np.zeros(p.size)
    full_crossed, full_watched = np.zeros(crossed.size), np.zeros(watched.size)
    jump_whole(p.ravel().copy(), full, 1, SHAPE[0], p.size // SHAPE[0], m, weights,
               weights.size, top_mode, False, full_crossed, watch, full_watched,
               np.zeros(2 * p.size))
    np.testing.assert_array_equal(got.ravel(), full)
    np.testing.assert_array_equal(crossed, full_crossed)
    if top_mode == TOP_FIRE:
        assert crossed.max() > 0.0


def _compact_blob(grid, center, sigma):
    """A Gaussian blob cut to 0 below 1e-3 of its peak (starts on few tiles)."""
    blob = _blob_init(grid, center, sigma)

    def init(*_):
        values = blob()
        return np.where(values > 1e-3 * values.max(), values, 0.0)
    return init


def _network(case):
    """(network, run options) of a whole-run comparison; each starts concentrated."""
    net = pd.Network()
    if case == "hh4d":
        hh = pd.HodgkinHuxley()
        grid = hh.default_grid([(4000.0, 2e-3, "jump")], v_cells_per_mv=0.25, gate_cells=8)
        pop = net.add_population("P", hh, grid=grid)
        net.connect(net.add_poisson("e", pd.piecewise([0.0, 0.01], [2000.0, 4000.0])), pop,
                    weight=2e-3)
        return net, dict(t_end=0.02, dt=1e-4)
    if case == "conductance":
        model = StillMembrane(spike_level=0.6)
        grid = pd.Grid(v=(0.0, 1.0, 48), y=(0.0, 1.0, 20))
        pop = net.add_population("P", model, grid=grid,
                                 init=_compact_blob(grid, (0.2, 0.5), 0.05))
        net.connect(net.add_poisson("s", 300.0), pop, weight=0.07, reversal=0.9)
        net.connect(net.add_poisson("i", 200.0), pop, weight=0.05, reversal=0.05)
        return net, dict(t_end=0.02, dt=1e-3)
    ndim, reset = {"random2d": (2, False), "random3d_reset": (3, True),
                   "random4d": (4, False)}[case]
    model = RandomField(ndim, seed=ndim, reset=reset)
    shape = {2: (60, 48), 3: (30, 16, 14), 4: (16, 12, 10, 9)}[ndim]
    grid = pd.Grid(**{n: (0.0, 1.0, s) for n, s in zip(model.state_vars, shape)})
    pop = net.add_population("P", model, grid=grid,
                             init=_compact_blob(grid, (0.3,) + (0.5,) * (ndim - 1), 0.06))
    net.connect(net.add_poisson("exc", pd.piecewise([0.0, 0.02], [300.0, 900.0])), pop,
                weight=0.071)     # a fractional number of cells
    net.connect(net.add_poisson("inh", 150.0), pop, weight=-0.05)
    return net, dict(t_end=0.006, dt=1e-3, max_substep=5e-4)


# mass may pile at the grid ends of these small test grids; identity is the point
@pytest.mark.filterwarnings("ignore:.*edge cells:RuntimeWarning")
@pytest.mark.parametrize("case", ["random2d", "random3d_reset", "random4d", "hh4d",
                                  "conductance"])
def test_tiled_run_equals_full_sweep(case):
    """Whole runs: rates, refractory mass and final masses of the tiled engine equal the
    full sweep's exactly (tolerance 0: the same floating-point operations), starting
    with most tiles inactive; mass (grid + refractory) stays 1 to 1e-12."""
    results = {}
    initial = None
    for tiles in (False, True):
        net, options = _network(case)
        t_end, dt = options.pop("t_end"), options.pop("dt")
        sim = NDDensitySimulation(net, t_end, dt, tiles=tiles, **options)
        if tiles:
            held = np.zeros_like(sim.pops[0].tiles.flags)
            mark_tiles(sim.pops[0].mass, sim.pops[0].tiles, held)
            initial = held.mean()
        res = sim.run(progress=False)
        results[tiles] = (res, sim.pops[0])
    (full, full_pop), (tiled, tiled_pop) = results[False], results[True]
    assert tiled_pop.tiles.enabled and not full_pop.tiles.enabled
    np.testing.assert_array_equal(tiled.rates["P"], full.rates["P"])
    np.testing.assert_array_equal(tiled.refractory["P"], full.refractory["P"])
    np.testing.assert_array_equal(tiled_pop.mass, full_pop.mass)
    assert tiled.rates["P"].max() > 0.0
    # round-off of the run's steps (measured 2.0e-15)
    assert abs(tiled_pop.mass.sum() + tiled_pop.pipe.sum() - 1.0) < 1e-12
    # the start is concentrated: most tiles were skipped at first (the mass then
    # spreads over up to the whole of these small grids)
    assert initial < 0.2


def test_tile_sizes_are_checked():
    with pytest.raises(ValueError, match="tile sizes"):
        tile_plan((4, 5), [np.zeros(20)] * 4, size=(0, 2))
