"""Saving and loading results; the JSON-able description of a network.

A :class:`popdens.Result` is written with :meth:`popdens.Result.save` to

* ``.npz`` (numpy, always available): every array as a named entry, everything else as
  one JSON document (``__meta__``); read back without pickle;
* ``.nc`` (NetCDF, needs the optional ``xarray`` extra: ``pip install 'popdens[xarray]'``):
  the :meth:`popdens.Result.to_xarray` dataset, written with the first NetCDF engine that
  is installed (``netCDF4``, ``h5netcdf``, else scipy's NetCDF-3 writer, which needs
  nothing beyond popdens' own dependencies).

Both files hold the popdens version and the network description of :func:`describe`, so a
figure can be regenerated from the file alone. :func:`load` reads either back into a
:class:`popdens.Result` with equal arrays.

The description is a plain dict (JSON-able) in the same shape as a scenario file
(:mod:`popdens.scenario`): ``populations`` (model class name, parameters, grid), ``sources``
(rate spec), ``connections`` (pre, post, weight, n_syn, delay spec, input, reversal).
Callables (rates given as Python functions, ``init=`` densities) cannot be stored; they
appear as ``{"shape": "callable", "repr": ..., "note": "callable, not serialisable"}``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .description import (  # re-exported: the description travels with saved files
    NOT_SERIALISABLE,
    describe,
    describe_delay,
    describe_model,
    describe_rate,
)
from .result import Result
from .saving import (  # save and to_xarray re-exported
    _META_KEY,
    FORMAT_VERSION,
    _require_xarray,
    _suffix,
    save,
    to_xarray,
)

__all__ = ["describe", "describe_rate", "describe_delay", "describe_model", "save", "load",
           "to_xarray", "FORMAT_VERSION", "NOT_SERIALISABLE", "ResultFileError"]

# The first bytes of a zip archive (.npz) and of the NetCDF-3 / HDF5 (NetCDF-4) formats
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NETCDF_MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")


class ResultFileError(ValueError):
    """A file that cannot be read as a popdens result: truncated, of another format, or
    with missing or inconsistent entries. The message starts with the file name."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read {self.path!r} as a popdens result: {reason}")


def _decode(value, arrays):
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        return np.asarray(arrays[value["__array__"]]).astype(value["dtype"], copy=False)
    if "__tuple__" in value:
        return tuple(_decode(v, arrays) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: _decode(v, arrays) for k, v in value["__dict__"].items()}
    if "__float__" in value:
        return float(value["__float__"])
    return value   # a "not serialisable" marker, kept as is


def _grids_from_json(data: dict) -> dict:
    from .grid import Grid

    return {name: Grid(**{a[0]: (float(a[1]), float(a[2]), int(a[3])) for a in axes})
            for name, axes in data.items()}


def _real_array(arrays, key: str, ndim: int | None = None) -> np.ndarray:
    """A saved numeric array, checked: present, real numbers, ``ndim`` dimensions."""
    if key not in arrays:
        raise ValueError(f"the array {key!r} is missing")
    values = np.asarray(arrays[key])
    if values.dtype.kind not in "biuf":
        raise ValueError(f"the array {key!r} holds {values.dtype} values, not numbers")
    if ndim is not None and values.ndim != ndim:
        raise ValueError(f"the array {key!r} has {values.ndim} dimensions, expected {ndim}")
    return values


def _checked_arrays(meta: dict, arrays, grids: dict) -> dict:
    """The result's arrays, with every shape checked against the metadata."""
    t = _real_array(arrays, "t", 1)
    record_times = _real_array(arrays, "record_times", 1)
    out = {"t": t, "record_times": record_times, "rates": {}, "refractory": {},
           "densities": {}}
    for group in ("rates", "refractory"):
        for name in meta[group if group == "refractory" else "populations"]:
            values = _real_array(arrays, f"{group}/{name}", 1)
            if values.size != t.size:
                raise ValueError(f"{group}/{name} has {values.size} entries but t has "
                                 f"{t.size}")
            out[group][name] = values
    for name in meta["densities"]:
        if name not in grids:
            raise ValueError(f"no grid for the density of {name!r}")
        shape = (record_times.size, *grids[name].shape)
        values = _real_array(arrays, f"densities/{name}")
        if values.size != int(np.prod(shape)):
            raise ValueError(f"densities/{name} has {values.size} values, expected "
                             f"{shape} = {int(np.prod(shape))}")
        out["densities"][name] = values.reshape(shape)
    return out


def _join(meta: dict, arrays) -> object:
    if not isinstance(meta, dict) or meta.get("format") != "popdens.Result":
        raise ValueError("not a popdens result file (no popdens.Result metadata)")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"result file format version {version!r} is newer than this "
                         f"popdens reads ({FORMAT_VERSION}); upgrade popdens")
    for key, kind in (("populations", list), ("densities", list), ("refractory", list),
                      ("grids", dict), ("info", dict), ("backend", str)):
        if not isinstance(meta.get(key), kind):
            raise ValueError(f"metadata entry {key!r} is missing or not a "
                             f"{kind.__name__}")
    dt = meta.get("dt")
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or \
            not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"metadata entry 'dt' must be a number > 0, got {dt!r}")
    grids = _grids_from_json(meta["grids"])
    checked = _checked_arrays(meta, arrays, grids)
    return Result(
        t=checked["t"], dt=float(dt), rates=checked["rates"],
        record_times=checked["record_times"], densities=checked["densities"],
        grids=grids, backend=meta["backend"],
        wall_time=float(meta.get("wall_time", 0.0)), n_neurons=meta.get("n_neurons"),
        refractory=checked["refractory"], info=_decode(meta["info"], arrays),
        description=meta.get("description"), saved_version=meta.get("popdens_version"))


# --------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------
def load(path):
    """Read a result written by :meth:`popdens.Result.save`.

    Nothing in the file is unpickled or evaluated: arrays are read with
    ``allow_pickle=False``, the metadata is JSON, and every shape is checked.

    Parameters
    ----------
    path : str or Path
        A ``.npz`` or ``.nc`` file.

    Returns
    -------
    popdens.Result
        With the saved arrays, ``description`` (the network) and ``saved_version`` (the
        popdens version that wrote the file).

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ResultFileError
        (a ``ValueError``) If the file is empty, truncated, of another format, or has
        missing or inconsistent entries; the message names the file.
    """
    path = Path(path)
    suffix = _suffix(path)
    if path.is_dir():
        raise ResultFileError(path, "it is a folder, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    with open(path, "rb") as f:
        head = f.read(8)
    if suffix == ".npz":
        if not head.startswith(_ZIP_MAGIC):
            raise ResultFileError(path, _not_this_format(head, "a .npz (zip) archive"))
        return _load_npz(path)
    if not head.startswith(_NETCDF_MAGIC):
        raise ResultFileError(path, _not_this_format(head, "a NetCDF file"))
    xarray = _require_xarray("loading NetCDF (.nc)")
    try:
        with xarray.open_dataset(path) as ds:   # the engine is guessed from the file
            ds.load()
            return from_xarray(ds)
    except (ValueError, TypeError, KeyError, IndexError, OSError, RuntimeError,
            EOFError, OverflowError) as exc:
        raise ResultFileError(path, _reason(exc)) from None


def _not_this_format(head: bytes, what: str) -> str:
    if not head:
        return f"the file is empty, not {what}"
    return f"the file is not {what} (it starts with {head[:4]!r})"


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, ValueError) else f"{type(exc).__name__}: {text}"


def _load_npz(path: Path):
    """Read a .npz result; no entry is ever unpickled (``allow_pickle=False``)."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as data:
            if _META_KEY not in data.files:
                raise ValueError(f"not a popdens result file (no {_META_KEY} entry)")
            stored = data[_META_KEY]
            if stored.dtype.kind != "U" or stored.ndim != 0:
                raise ValueError(f"the {_META_KEY} entry is not one string")
            try:
                meta = json.loads(str(stored[()]))
            except json.JSONDecodeError as exc:
                raise ValueError(f"the {_META_KEY} entry is not JSON ({exc})") from None
            arrays = {k: data[k] for k in data.files if k != _META_KEY}
        return _join(meta, arrays)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise ResultFileError(path, f"damaged or truncated zip archive ({exc})") from None
    except (ValueError, TypeError, KeyError, IndexError, OSError, EOFError, OverflowError,
            NotImplementedError, RuntimeError) as exc:   # RecursionError: a RuntimeError
        raise ResultFileError(path, _reason(exc)) from None


def from_xarray(dataset):
    """The :class:`popdens.Result` of a dataset made by :func:`to_xarray`."""
    attrs = dataset.attrs
    if attrs.get("title") != "popdens result":
        raise ValueError("not a popdens result dataset (attribute title != 'popdens "
                         "result')")
    names = json.loads(attrs["populations_json"])
    refractory = json.loads(attrs["refractory_json"])
    stored = attrs["n_neurons"]
    # format 1 wrote an int (-1: density run); now JSON: null, an int or {name: int}
    n_neurons = json.loads(stored) if isinstance(stored, str) else int(stored)
    n_neurons = None if n_neurons is None or n_neurons == -1 else n_neurons
    meta = {"format": "popdens.Result", "format_version": int(attrs["format_version"]),
            "popdens_version": str(attrs["popdens_version"]), "dt": float(attrs["dt"]),
            "backend": str(attrs["backend"]), "wall_time": float(attrs["wall_time"]),
            "n_neurons": n_neurons, "populations": names,
            "densities": json.loads(attrs["densities_json"]), "refractory": refractory,
            "grids": json.loads(attrs["grids"]), "info": json.loads(attrs["info"]),
            "density_shapes": json.loads(attrs.get("density_shapes", "{}")),
            "description": json.loads(attrs["description"])}
    arrays = {"t": dataset["time"].values, "record_times": dataset["record_time"].values}
    for k, name in enumerate(names):
        arrays[f"rates/{name}"] = dataset["rate"].values[k]
    for name in refractory:
        if "refractory_fraction" in dataset:
            arrays[f"refractory/{name}"] = dataset["refractory_fraction"].values[
                names.index(name)]
        else:
            arrays[f"refractory/{name}"] = dataset[f"refractory__{name}"].values
    for name in meta["densities"]:
        arrays[f"densities/{name}"] = dataset[f"density__{name}"].values
    for key in dataset.data_vars:
        if str(key).startswith("info/"):
            arrays[str(key)] = dataset[key].values
    return _join(meta, arrays)
