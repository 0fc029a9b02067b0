"""Continuing runs and checkpoints, shared by every backend.

A backend stores what a continued run needs in ``Result.info["state"]``: its arrays, the
absolute step reached, and a stamp of what produced it (:func:`stamp`: backend, engine,
reporting step, populations with their models, parameters and grids, connections).
:func:`checked_state` compares that stamp with the network about to run and refuses a
mismatch before any work, naming what differs. :class:`Checkpointer` writes the result so
far to a ``.npz`` file (atomically) every ``checkpoint_every`` seconds of wall time.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from .._checks import as_real
from ..description import describe
from ..saving import save
from .common import check_seed

__all__ = ["stamp", "checked_state", "saved_grids", "check_checkpoint", "write_atomically",
           "Checkpointer", "continued_seed", "copy_into", "monte_carlo_start"]


def _populations_and_connections(network) -> dict:
    """The part of a network's description a continued run must share: models with their
    parameters, boundaries and connections (sources' rates may change between parts)."""
    text = describe(network)
    pops = {name: {key: entry.get(key) for key in ("model", "params", "boundaries")}
            for name, entry in text["populations"].items()}
    conns = [{key: conn.get(key) for key in ("pre", "post", "weight", "n_syn", "delay",
                                             "input", "reversal")}
             for conn in text["connections"] if conn["pre"] in network.populations]
    return {"populations": pops, "connections": conns}


def stamp(network, backend: str, engine: str, dt: float, grids: dict, **extra) -> dict:
    """What produced a state: checked by :func:`checked_state` before a continued run.

    ``grids`` is ``{population: Grid}`` (the grids used); ``extra`` holds other settings
    that must not change (scheme, seed, connectivity, ...)."""
    return {"backend": backend, "engine": engine, "dt": float(dt),
            "network": json.dumps(_populations_and_connections(network), sort_keys=True,
                                  default=repr),
            "grids": json.dumps({name: [list(map(float, (ax.lower, ax.upper)))
                                        + [int(ax.num_cells)] for ax in grid.axes]
                                 for name, grid in grids.items()}, sort_keys=True),
            "settings": json.dumps(extra, sort_keys=True, default=repr)}


def _differences(saved: dict, now: dict) -> list[str]:
    """What differs between two network descriptions (see :func:`stamp`)."""
    out = []
    if sorted(saved["populations"]) != sorted(now["populations"]):
        return [f"the result has populations {sorted(saved['populations'])}, the network "
                f"{sorted(now['populations'])}"]
    for name, entry in saved["populations"].items():
        for key in ("model", "params", "boundaries"):
            if entry.get(key) != now["populations"][name].get(key):
                out.append(f"population {name!r}: {key} {entry.get(key)!r} in the result, "
                           f"{now['populations'][name].get(key)!r} now")
    if saved["connections"] != now["connections"]:
        out.append(f"the connections between populations differ: "
                   f"{saved['connections']!r} in the result, {now['connections']!r} now")
    return out


def checked_state(previous, network, backend: str, engine: str, dt: float,
                  grids: dict | None = None, **extra) -> dict:
    """The state to continue ``previous`` from, after checking that it was produced by
    this backend and engine for this network, reporting step and settings.

    Parameters
    ----------
    previous : Result
        A finished or interrupted result of ``backend`` (``info["state"]``).
    network : popdens.Network
    backend, engine : str
        This run's backend and engine (``"1d"``, ``"nd"``, ``"generic"``).
    dt : float
        This run's reporting step (s).
    grids : dict, optional
        ``{population: Grid}`` set explicitly on the populations now (None entries
        skipped): each must equal the grid of the result.
    **extra
        Settings that must not change (compared with those of :func:`stamp`).

    Raises
    ------
    ValueError
        Naming what differs.
    """
    info = getattr(previous, "info", None)
    if not isinstance(info, dict) or not isinstance(info.get("state"), dict) \
            or "stamp" not in info["state"]:
        raise ValueError(f"init must be a Result of backend={backend!r} that carries its "
                         f"final state (Result.info['state']), got {type(previous).__name__}")
    state = info["state"]
    mark = state["stamp"]
    if mark["backend"] != backend:
        raise ValueError(f"init: the result is from backend={mark['backend']!r}, this run "
                         f"is backend={backend!r}")
    problems = _differences(json.loads(mark["network"]),
                            json.loads(json.dumps(_populations_and_connections(network),
                                                  default=repr)))
    if not problems and mark["engine"] != engine:
        problems.append(f"the result was computed by the {mark['engine']!r} engine, this "
                        f"network needs the {engine!r} engine")
    if not np.isclose(float(mark["dt"]), dt, rtol=1e-12, atol=0.0):
        problems.append(f"the result has dt={mark['dt']!r}, this run dt={dt!r} (a "
                        f"continued run keeps the reporting step)")
    saved_grids = json.loads(mark["grids"])
    for name, grid in (grids or {}).items():
        if grid is None or name not in saved_grids:
            continue
        now = [[float(ax.lower), float(ax.upper), int(ax.num_cells)] for ax in grid.axes]
        if now != saved_grids[name]:
            problems.append(f"population {name!r}: grid {saved_grids[name]} in the result, "
                            f"{now} now")
    saved_extra = json.loads(mark["settings"])
    now_extra = json.loads(json.dumps(extra, sort_keys=True, default=repr))
    for key, value in now_extra.items():
        if key in saved_extra and saved_extra[key] != value:
            problems.append(f"the result used {key}={saved_extra[key]!r}, this run "
                            f"{key}={value!r}")
    if problems:
        raise ValueError("init: cannot continue this result: " + "; ".join(problems))
    return state


def saved_grids(state: dict) -> dict:
    """``{population: {axis index: (lower, upper, cells)}}`` as lists from a state."""
    return json.loads(state["stamp"]["grids"])


def check_checkpoint(checkpoint, checkpoint_every) -> float:
    """Check the ``checkpoint`` path (a ``.npz`` file in an existing folder) and return
    ``checkpoint_every`` (s of wall time, > 0)."""
    checkpoint_every = as_real("checkpoint_every", checkpoint_every)
    if not checkpoint_every > 0:
        raise ValueError(f"checkpoint_every must be > 0 s, got {checkpoint_every!r}")
    if Path(checkpoint).suffix != ".npz" or not Path(checkpoint).resolve().parent.is_dir():
        raise ValueError(f"checkpoint must be a .npz path in an existing folder, got "
                         f"{str(checkpoint)!r}")
    return checkpoint_every


def write_atomically(path, result) -> None:
    """Save ``result`` to ``path`` through a temporary file in the same folder, so that
    ``path`` always holds a whole file (the previous one or the new one)."""
    path = Path(path)
    temporary = path.with_name(path.name + ".partial.npz")
    save(result, temporary)
    os.replace(temporary, path)


class Checkpointer:
    """Writes the run so far to ``path`` every ``every`` seconds of wall time.

    ``writer`` (default :func:`write_atomically`) is looked up by the backend at call
    time, so tests can watch the files written."""

    def __init__(self, path, every: float, writer=None):
        self.path, self.every = path, every
        self.writer = writer or write_atomically
        self.last = time.perf_counter()

    def due(self) -> bool:
        return self.path is not None and time.perf_counter() - self.last >= self.every

    def save_partial(self, result) -> None:
        """Write ``result`` marked ``info["checkpoint"]`` and ``info["interrupted"]``: a
        checkpoint is never taken for a finished run."""
        result.info["checkpoint"] = True
        result.info["interrupted"] = True
        self.writer(self.path, result)
        self.last = time.perf_counter()

    def save_final(self, result) -> None:
        if self.path is not None:
            self.writer(self.path, result)


def continued_seed(start: dict | None, seed) -> int:
    """The seed of a run: checked (a fresh one for None); for a continued run (``start``)
    the seed of the result it continues, which fixed the wiring (another seed given is
    an error)."""
    if start is None:
        return check_seed(seed)
    saved = json.loads(start["stamp"]["settings"])["seed"]
    if seed is not None and check_seed(seed) != saved:
        raise ValueError(f"init: the result used seed={saved!r}, this run seed={seed!r} "
                         f"(a continued run keeps the seed, which fixed the wiring)")
    return int(saved)


def copy_into(kept: np.ndarray, saved) -> None:
    """Copy a saved state array into the run's array of the same shape."""
    saved = np.asarray(saved)
    if saved.shape != kept.shape:
        raise ValueError(f"init: the saved state has an array of shape {saved.shape} where "
                         f"this network needs {kept.shape} (a changed network, grid or "
                         f"delay cannot continue a run)")
    kept[...] = saved


def shifted_record_times(record_times, start: float, t_end: float):
    """``record_times`` (absolute, s) of a run continued from time ``start`` for
    ``t_end`` more seconds, relative to its start; times outside
    ``[start, start + t_end]`` are an error naming that interval."""
    if start == 0.0 or record_times is None:
        return record_times
    times = np.atleast_1d(np.asarray(record_times, dtype=float))
    outside = (times < start * (1 - 1e-12)) | (times > (start + t_end) * (1 + 1e-12))
    if np.any(outside):
        raise ValueError(f"record_times of a continued run are absolute and must lie in "
                         f"[{start!r}, {start + t_end!r}] s (it starts at t={start!r} s), "
                         f"got {times[outside].tolist()}")
    return np.clip(times - start, 0.0, t_end)


def monte_carlo_start(init, network, engine: str, dt: float, seed, checkpoint,
                      checkpoint_every, **settings):
    """The start of a Monte Carlo run of ``engine``: ``(start, seed, checkpoint_every)``,
    the state to continue (``None`` for a fresh run; :func:`checked_state`), its seed
    (:func:`continued_seed`) and the checked checkpoint interval."""
    start = None
    if init is not None:
        start = checked_state(init, network, "montecarlo", engine, dt,
                              {n: p.grid for n, p in network.populations.items()},
                              **settings)
    seed = continued_seed(start, seed)
    if checkpoint is not None:
        checkpoint_every = check_checkpoint(checkpoint, checkpoint_every)
    return start, seed, checkpoint_every
