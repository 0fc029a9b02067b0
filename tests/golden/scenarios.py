"""The golden scenarios: short versions of the README examples, the notebooks' cases and
the benchmark scenarios, on both backends with fixed seeds.

Each entry builds a fresh network and runs it; :func:`outputs` turns the results into
flat arrays keyed ``"<scenario>/<run>/<quantity>/<population>"``. Durations are short
(a few ms to 50 ms): the point is bit-for-bit identity of the numerics, not physics.
"""

from __future__ import annotations

import numpy as np

import popdens as pd
from popdens.examples import brunel_network, brunel_sizes


def _demo():
    net = pd.Network()
    ext = net.add_poisson("ext", rate=800.0)
    pop = net.add_population("E", pd.LIF(tau_m=0.05, v_th=1.0, v_reset=0.0))
    net.connect(ext, pop, weight=0.03)
    return net


def _api_tour():
    lif = pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3, e_l=0.0, t_ref=2e-3)
    net = pd.Network()
    ext = net.add_poisson("ext", rate=pd.piecewise([0.0, 0.02], [18000.0, 22000.0]))
    pop = net.add_population("E", lif)
    net.connect(ext, pop, weight=0.1e-3)
    inh = net.add_poisson("inh", rate=2000.0)
    net.connect(inh, pop, weight=-0.3e-3)
    return net


def _api_tour_diffusion():
    net = _api_tour()
    noise = net.add_poisson("noise", rate=500.0)
    net.connect(noise, "E", weight=0.2e-3, input="diffusion")
    return net


def _ei_network(conductance: bool = False):
    lif = pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3, e_l=0.0, t_ref=2e-3)
    net = pd.Network()
    drive = net.add_poisson("ext", rate=pd.sinusoid(mean=2000.0, amplitude=800.0,
                                                    frequency=20.0, start=0.01))
    E = net.add_population("E", lif, grid=pd.Grid(v=(-0.01, 0.02, 300)))
    I = net.add_population("I", lif, grid=pd.Grid(v=(-0.01, 0.02, 300)))
    for post in (E, I):
        net.connect(drive, post, weight=0.5e-3)
        net.connect(E, post, weight=0.2e-3, n_syn=40, delay=1e-3)
        net.connect(I, post, weight=-0.5e-3, n_syn=20,
                    delay=pd.delays.gamma(mean=3e-3, shape=4.0))
    if conductance:
        ampa = net.add_poisson("ampa", rate=500.0)
        net.connect(ampa, E, weight=0.01, reversal=60e-3)
    return net


def _no_refractory():
    net = pd.Network()
    ext = net.add_poisson("ext", rate=1200.0)
    pop = net.add_population("E", pd.LIF(tau_m=0.02, v_th=1.0, v_reset=0.2),
                             grid=pd.Grid(v=(-0.2, 1.0, 240)))
    net.connect(ext, pop, weight=0.07)
    inh = net.add_poisson("inh", rate=300.0)
    net.connect(inh, pop, weight=-0.05)
    return net


def _reduced_hh():
    net = pd.Network()
    ext = net.add_poisson("ext", rate=pd.piecewise([0.0, 0.01], [2000.0, 4000.0]))
    pop = net.add_population("H", pd.ReducedHH(),
                             grid=pd.Grid(v=(-0.082, 0.057, 139), n=(0.0, 1.0, 50)))
    net.connect(ext, pop, weight=2e-3)
    inh = net.add_poisson("inh", rate=500.0)
    net.connect(inh, pop, weight=0.1, reversal=-0.08)
    return net


def _hh4d():
    net = pd.Network()
    ext = net.add_poisson("ext", rate=4000.0)
    grid = pd.Grid(v=(-0.084, 0.057, 47), m=(0.0, 1.0, 10), h=(0.0, 1.0, 10),
                   n=(0.0, 1.0, 10))
    pop = net.add_population("H", pd.HodgkinHuxley(), grid=grid)
    net.connect(ext, pop, weight=2e-3)
    return net


def _lif_synaptic_ei():
    model = pd.LIFSynaptic(tau_m=20e-3, tau_syn=5e-3, v_th=20e-3, v_reset=10e-3,
                           t_ref=2e-3)
    net = pd.Network()
    ext = net.add_poisson("ext", rate=16000.0)
    grid = pd.Grid(v=(-0.005, 0.02, 50), i_syn=(-1.0, 3.0, 80))
    E = net.add_population("E", model, grid=grid)
    I = net.add_population("I", model, grid=grid)
    for post in (E, I):
        net.connect(ext, post, weight=0.1e-3)
        net.connect(E, post, weight=0.1e-3, n_syn=50, delay=1.5e-3)
        net.connect(I, post, weight=-0.2e-3, n_syn=20, delay=2e-3)
    return net


def _brunel():
    return brunel_network(g=5.0, eta=2.0, grid=pd.Grid(v=(-0.02, 0.02, 400)))


def _mc(n, seed=1, **options):
    return dict(backend="montecarlo", n_neurons=n, seed=seed, **options)


# name -> (network factory, t_end, dt, {run name: options})
SCENARIOS = {
    "demo": (_demo, 0.05, 1e-4, {
        "density": dict(record_times=[0.05]),
        "upwind": dict(scheme="upwind"),
        "vanleer": dict(scheme="vanleer"),
        "mc": _mc(2000, record_times=[0.05])}),
    "api_tour": (_api_tour, 0.04, 1e-4, {
        "density": dict(record_times=[0.04]),
        "mc": _mc(2000)}),
    "api_tour_diffusion": (_api_tour_diffusion, 0.04, 1e-4, {
        "density": dict(record_times=[0.04]),
        "mc": _mc(2000)}),
    "ei_network": (_ei_network, 0.04, 1e-4, {
        "density": dict(record_times=[0.04]),
        "mc_poisson": _mc(1000, connectivity="poisson"),
        "mc_indegree": _mc(1000, connectivity="fixed_indegree")}),
    "ei_conductance": (lambda: _ei_network(conductance=True), 0.03, 1e-4, {
        "density": dict(record_times=[0.03]),
        "mc": _mc(1000, connectivity="poisson")}),
    "no_refractory": (_no_refractory, 0.04, 2e-4, {
        "density": dict(record_times=[0.04]),
        "mc": _mc(2000)}),
    "brunel": (_brunel, 0.02, 1e-4, {
        "density": dict(record_times=[0.02]),
        "mc": _mc(brunel_sizes(0.1))}),
    "reduced_hh": (_reduced_hh, 0.02, 1e-4, {
        "density": dict(record_times=[0.02]),
        "mc": _mc(300, record_times=[0.02])}),
    "hh4d": (_hh4d, 0.004, 1e-4, {
        "density": dict(record_times=[0.004]),
        "mc": _mc(100)}),
    "lif_synaptic_ei": (_lif_synaptic_ei, 0.04, 1e-4, {
        "density": dict(record_times=[0.04]),
        "mc": _mc(500)}),
}

STEADY = {
    "api_tour": dict(at=0.03),
    "ei_network": {},
}


def run_scenario(name: str) -> dict:
    """Flat ``{key: array}`` of every run of scenario ``name``."""
    factory, t_end, dt, runs = SCENARIOS[name]
    out = {}
    for run_name, options in runs.items():
        res = factory().run(t_end, dt, progress=False, **options) if options.get(
            "backend", "density") == "density" else factory().run(t_end, dt, **options)
        for pop, rate in res.rates.items():
            out[f"{name}/{run_name}/rates/{pop}"] = np.asarray(rate)
        for pop, dens in res.densities.items():
            if dens.size:
                out[f"{name}/{run_name}/density/{pop}"] = np.asarray(dens[-1])
    if name in STEADY:
        ss = pd.steady_state(factory(), **STEADY[name])
        for pop, rate in ss.rates.items():
            out[f"{name}/steady/rate/{pop}"] = np.atleast_1d(float(rate))
            out[f"{name}/steady/density/{pop}"] = np.asarray(ss.densities[pop])
    return out
