"""One ``Result.info`` schema: the keys every backend and dimension reports."""

import warnings

import pytest

import popdens as pd

COMMON = {"interrupted": bool, "steps_done": int, "n_steps": int}


def _network(kind):
    net = pd.Network()
    ext = net.add_poisson("ext", rate=8000.0)
    models = {"lif": [pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3)],
              "reduced_hh": [pd.ReducedHH()],
              "eif": [pd.EIF()],
              "mixed": [pd.LIF(tau_m=20e-3, v_th=20e-3, v_reset=10e-3), pd.ReducedHH()]}
    for k, model in enumerate(models[kind]):
        net.connect(ext, net.add_population(f"P{k}", model), weight=1e-3)
    return net


@pytest.mark.parametrize("backend", ["density", "montecarlo"])
@pytest.mark.parametrize("kind", ["lif", "reduced_hh", "eif", "mixed"])
def test_every_backend_reports_the_common_keys(kind, backend):
    options = {"n_neurons": 50, "seed": 1} if backend == "montecarlo" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = _network(kind).run(2e-3, 1e-4, backend=backend, **options)
    for key, kind_of in COMMON.items():
        assert isinstance(res.info[key], kind_of), key
    assert res.info["interrupted"] is False
    assert res.info["steps_done"] == res.info["n_steps"] == 20 == res.t.size
    dt_sub = res.info["dt_sub"]
    values = dt_sub.values() if isinstance(dt_sub, dict) else [dt_sub]
    # the internal step never exceeds the report step here (1e-4 s)
    assert all(0.0 < float(v) <= 1e-4 * (1 + 1e-12) for v in values)
