"""Writing a :class:`popdens.Result`: ``.npz`` files, NetCDF and the xarray dataset.

The half of :mod:`popdens.io` that :meth:`popdens.Result.save` and
:meth:`popdens.Result.to_xarray` need, below :mod:`popdens.result` so that it does not
import the reading half (which builds Results); the file layout is described in
:mod:`popdens.io`, which re-exports :func:`save` and :func:`to_xarray`.
"""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path

import numpy as np

from ._version import __version__

__all__ = ["save", "to_xarray", "FORMAT_VERSION", "SUFFIXES"]

# Bump when the layout of saved files changes; io.load() reads every version up to this one.
FORMAT_VERSION = 1
_META_KEY = "__meta__"
# --------------------------------------------------------------------------------------
# encoding of nested values: JSON + named arrays
# --------------------------------------------------------------------------------------
class _Encoder:
    """Splits a nested structure into JSON and a dict of named numpy arrays."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.arrays: dict[str, np.ndarray] = {}

    def __call__(self, value):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            value = float(value)
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biufc" or value.dtype.kind == "c":
                return {"__repr__": repr(value), "note": "not serialisable"}
            key = f"{self.prefix}{len(self.arrays)}"
            self.arrays[key] = value
            return {"__array__": key, "dtype": value.dtype.str}
        if isinstance(value, tuple):
            return {"__tuple__": [self(v) for v in value]}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value):
                return {"__dict__": {k: self(v) for k, v in value.items()}}
            return {"__repr__": repr(value), "note": "dict with non-string keys"}
        return {"__repr__": repr(value), "note": "not serialisable"}


def _grids_to_json(grids: dict) -> dict:
    return {name: [[a.name, a.lower, a.upper, a.num_cells] for a in grid.axes]
            for name, grid in grids.items()}


def _sizes_to_json(n_neurons):
    """``Result.n_neurons`` as JSON: None, an int, or ``{population: int}``."""
    if n_neurons is None:
        return None
    if isinstance(n_neurons, dict):
        return {str(name): int(n) for name, n in n_neurons.items()}
    return int(n_neurons)


def _split(result) -> tuple[dict, dict]:
    """Metadata (JSON-able, arrays replaced by references) and named arrays."""
    arrays: dict[str, np.ndarray] = {"t": np.asarray(result.t),
                                     "record_times": np.asarray(result.record_times)}
    names = list(result.rates)
    for name in names:
        arrays[f"rates/{name}"] = np.asarray(result.rates[name])
    for name, values in result.densities.items():
        arrays[f"densities/{name}"] = np.asarray(values)
    for name, values in result.refractory.items():
        arrays[f"refractory/{name}"] = np.asarray(values)
    info_encoder = _Encoder("info/")
    info = info_encoder(dict(result.info))
    arrays.update(info_encoder.arrays)
    meta = {
        "format": "popdens.Result", "format_version": FORMAT_VERSION,
        "popdens_version": __version__, "dt": float(result.dt), "backend": result.backend,
        "wall_time": float(result.wall_time),
        "n_neurons": _sizes_to_json(result.n_neurons),
        "populations": names, "densities": list(result.densities),
        "refractory": list(result.refractory), "grids": _grids_to_json(result.grids),
        "density_shapes": {n: list(np.shape(v)) for n, v in result.densities.items()},
        "info": info, "description": result.description,
    }
    return meta, arrays


SUFFIXES = (".npz", ".nc")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"cannot tell the file format of {str(path)!r}: use a name ending "
                         f"in .npz (numpy) or .nc (NetCDF, needs xarray)")
    return suffix


def _require_xarray(what: str):
    try:
        import xarray
    except ImportError:
        raise ImportError(f"{what} needs xarray, which is not installed: pip install "
                          f"'popdens[xarray]' (or pip install xarray), or use a .npz "
                          f"file") from None
    return xarray


def _netcdf_engine() -> str:
    import importlib.util

    for module, engine in (("netCDF4", "netcdf4"), ("h5netcdf", "h5netcdf")):
        if importlib.util.find_spec(module) is not None:
            return engine
    return "scipy"


def save(result, path) -> Path:
    """Write ``result`` to ``path`` (``.npz`` or ``.nc``); see :meth:`popdens.Result.save`."""
    path = Path(path)
    suffix = _suffix(path)
    if not path.resolve().parent.is_dir():
        raise FileNotFoundError(f"the folder of {str(path)!r} does not exist")
    if suffix == ".npz":
        meta, arrays = _split(result)
        arrays = {k: v for k, v in arrays.items()}
        arrays[_META_KEY] = np.array(json.dumps(meta))
        with open(path, "wb") as f:     # np.savez would append .npz to other names
            np.savez_compressed(f, **arrays)
    else:
        _require_xarray("saving to NetCDF (.nc)")
        dataset = to_xarray(result)
        dataset.to_netcdf(path, engine=_netcdf_engine())
    return path


# --------------------------------------------------------------------------------------
# xarray
# --------------------------------------------------------------------------------------
def _dim(name: str, var: str) -> str:
    return f"{name}__{var}"


def to_xarray(result):
    """The result as an :class:`xarray.Dataset` (needs xarray).

    Layout: coordinate ``time`` (step starts, s) and ``population``; ``rate``
    (population, time) in Hz; ``refractory_fraction`` (population, time); per population
    ``density__<name>`` over (``record_time``, ``<name>__<var>`` ...) with the cell
    centers as coordinates (1/V in 1D; per unit phase-space volume in N-D) and
    ``<name>__<var>_faces`` the cell faces. Attributes: ``popdens_version``, ``backend``,
    ``dt``, ``wall_time``, ``n_neurons`` (-1 for density runs), and JSON strings
    ``description`` (the network), ``info`` and ``grids``. Arrays inside ``info`` are
    variables ``info/<k>`` with their own dimensions. Written by
    :meth:`popdens.Result.save` to ``.nc``; :func:`popdens.io.load` reads it back.

    Returns
    -------
    xarray.Dataset
    """
    xarray = _require_xarray("Result.to_xarray")
    meta, arrays = _split(result)
    names = meta["populations"]
    t = arrays["t"]
    data_vars = {}
    coords = {"time": ("time", t, {"units": "s", "long_name": "start of reporting step"}),
              "population": ("population", np.array(names, dtype=str)),
              "record_time": ("record_time", arrays["record_times"],
                              {"units": "s", "long_name": "time of recorded density"})}
    if names:
        data_vars["rate"] = (("population", "time"),
                             np.stack([arrays[f"rates/{n}"] for n in names]),
                             {"units": "Hz", "long_name": "mean firing rate over "
                              "[t, t + dt)"})
    if meta["refractory"] and meta["refractory"] == names:
        data_vars["refractory_fraction"] = (
            ("population", "time"), np.stack([arrays[f"refractory/{n}"] for n in names]),
            {"units": "1", "long_name": "fraction of neurons refractory at step end"})
        refractory_separate = []
    else:
        refractory_separate = meta["refractory"]
    for name in refractory_separate:
        data_vars[f"refractory__{name}"] = ("time", arrays[f"refractory/{name}"],
                                            {"units": "1"})
    for name in meta["densities"]:
        grid = result.grids[name]
        dims = ["record_time"]
        for axis in grid.axes:
            dim = _dim(name, axis.name)
            dims.append(dim)
            coords[dim] = (dim, axis.centers, {"long_name": f"cell centers of {axis.name}"})
            coords[f"{dim}_faces"] = (f"{dim}_faces", axis.faces)
        values = arrays[f"densities/{name}"].reshape((-1, *grid.shape))
        data_vars[f"density__{name}"] = (tuple(dims), values, {
            "long_name": f"probability density of {name}",
            "units": "1/V" if grid.names == ("v",) else "per unit phase-space volume"})
    for key, value in arrays.items():
        if key.startswith("info/"):
            dims = tuple(f"{key}_dim{j}" for j in range(value.ndim))
            stored = value.astype(np.int8) if value.dtype.kind == "b" else value
            data_vars[key] = (dims, stored)
    attrs = {"title": "popdens result", "popdens_version": meta["popdens_version"],
             "format_version": FORMAT_VERSION, "backend": meta["backend"],
             "dt": meta["dt"], "wall_time": meta["wall_time"],
             "n_neurons": json.dumps(meta["n_neurons"]),
             "populations_json": json.dumps(names),
             "densities_json": json.dumps(meta["densities"]),
             "refractory_json": json.dumps(meta["refractory"]),
             "grids": json.dumps(meta["grids"]), "info": json.dumps(meta["info"]),
             "density_shapes": json.dumps(meta["density_shapes"]),
             "description": json.dumps(meta["description"])}
    return xarray.Dataset(data_vars=data_vars, coords=coords, attrs=attrs)
