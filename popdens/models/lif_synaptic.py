"""Leaky integrate-and-fire neuron with an exponentially decaying synaptic current."""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_real, check_nonnegative, check_positive
from ..grid import Grid
from ..kernels.mc_lif_synaptic import LIFSynapticParams, lif_synaptic_params
from .base import Model, ThresholdReset, check_grid_axes

__all__ = ["LIFSynaptic"]

# Default resolution: v cells between reset and threshold, i_syn cells over its range
_V_CELLS_PER_RESET_GAP = 200
_I_CELLS = 200
_MAX_DEFAULT_CELLS = 5_000
# i_syn extends this many stationary standard deviations beyond its mean
_I_SPREAD_SDS = 6.0


class LIFSynaptic(Model):
    r"""Leaky integrate-and-fire neuron driven by an exponential synaptic current
    (2D state ``v, i_syn``).

    .. math::

        \frac{dv}{dt} &= \frac{e_l - v}{\tau_m} + i_{syn},\\
        \frac{di_{syn}}{dt} &= -\frac{i_{syn}}{\tau_{syn}}
            + \sum_k \frac{w_k}{\tau_{syn}}\,\delta(t - t_k).

    ``i_syn`` is the synaptic drive in volts per second (a current divided by the
    capacitance). An input event of ``weight`` :math:`w` (V) jumps ``i_syn`` by
    :math:`w / \tau_{syn}`, so that the drive it adds to ``v`` integrates to
    :math:`\int w/\tau_{syn}\, e^{-t/\tau_{syn}} dt = w`: as :math:`\tau_{syn} \to 0` each
    event becomes a jump of ``v`` by :math:`w`, the input of :class:`popdens.LIF` with the
    same ``weight``. Under Poisson input of rate :math:`s` the stationary mean of ``i_syn``
    is :math:`s w` and its variance :math:`s w^2 / (2 \tau_{syn})`.

    Threshold and reset. ``v`` moves continuously (only ``i_syn`` jumps), so a neuron
    reaches ``v_th`` with ``dv/dt > 0``, i.e. with
    :math:`i_{syn} > (v_{th} - e_l)/\tau_m`. It then spikes and is refractory for
    ``t_ref``: off the grid, ignoring input, while its ``i_syn`` keeps decaying. It
    re-enters at ``v = v_reset`` with ``i_syn`` multiplied by
    :math:`e^{-t_{ref}/\tau_{syn}}` (its value at the spike otherwise unchanged). On a
    grid, the mass leaving through the face ``v = v_th`` in the cell of ``i_syn`` value
    :math:`i` re-enters after ``t_ref`` at ``v_reset`` at :math:`i e^{-t_{ref}/\tau_{syn}}`.

    Parameters
    ----------
    tau_m : float
        Membrane time constant (s), > 0.
    tau_syn : float
        Synaptic time constant (s), > 0.
    v_th : float
        Threshold (V); the upper face of the ``v`` axis of the grid.
    v_reset : float
        Reset potential (V), < ``v_th``.
    e_l : float, default 0.0
        Leak reversal potential (V).
    t_ref : float, default 0.0
        Refractory period (s), >= 0.

    Attributes
    ----------
    state_vars : ("v", "i_syn")
    input_var : "i_syn"
        Events jump ``i_syn`` by ``weight / tau_syn``; ``weight`` is in volts.
    spike_rule : ThresholdReset("v", v_th, v_reset, t_ref)
    """

    state_vars = ("v", "i_syn")
    exact_flow = True
    state_units = {"v": "V", "i_syn": "V/s"}

    def __init__(self, tau_m: float, tau_syn: float, v_th: float, v_reset: float,
                 e_l: float = 0.0, t_ref: float = 0.0):
        self.tau_m = check_positive("tau_m", tau_m)
        self.tau_syn = check_positive("tau_syn", tau_syn)
        self.v_th = as_real("v_th", v_th)
        self.v_reset = as_real("v_reset", v_reset)
        self.e_l = as_real("e_l", e_l)
        self.t_ref = check_nonnegative("t_ref", t_ref)
        if not self.v_reset < self.v_th:
            raise ValueError(f"v_reset must be < v_th, got v_reset={self.v_reset!r}, "
                             f"v_th={self.v_th!r}")

    def params(self) -> dict:
        return {"tau_m": self.tau_m, "tau_syn": self.tau_syn, "v_th": self.v_th,
                "v_reset": self.v_reset, "e_l": self.e_l, "t_ref": self.t_ref}

    @property
    def input_var(self) -> str:
        """``"i_syn"``: events jump the synaptic current."""
        return "i_syn"

    @property
    def spike_rule(self) -> ThresholdReset:
        """Threshold ``v_th`` on ``v``, reset ``v_reset``, refractory period ``t_ref``."""
        return ThresholdReset("v", self.v_th, self.v_reset, self.t_ref)

    # --- physics as data -------------------------------------------------------------
    def drift(self, v, i_syn):
        """Deterministic velocities ``((e_l - v)/tau_m + i_syn, -i_syn/tau_syn)``
        (V/s, V/s^2), vectorised over broadcastable arrays."""
        v, i_syn = np.broadcast_arrays(np.asarray(v, dtype=float),
                                       np.asarray(i_syn, dtype=float))
        return ((self.e_l - v) / self.tau_m + i_syn, -i_syn / self.tau_syn)

    def jump_size(self, weight: float) -> float:
        """Jump of ``i_syn`` (V/s) caused by one event of ``weight`` (V)."""
        return weight / self.tau_syn

    def flow(self, v, i_syn, t: float):
        """Exact deterministic flow: the state reached after time ``t`` (negative: back).

        With :math:`a = e^{-t/\\tau_m}`, :math:`b = e^{-t/\\tau_{syn}}`:
        ``i_syn -> i_syn b`` and ``v -> e_l + (v - e_l) a + i_syn K(t)`` with
        ``K = tau_m tau_syn (a - b) / (tau_m - tau_syn)`` (``t a`` when they are equal).
        """
        v = np.asarray(v, dtype=float)
        i_syn = np.asarray(i_syn, dtype=float)
        a = math.exp(-t / self.tau_m)
        b = math.exp(-t / self.tau_syn)
        return (self.e_l + (v - self.e_l) * a + i_syn * self.kernel(t), i_syn * b)

    def kernel(self, t: float) -> float:
        """``K(t)``: the ``v`` displacement at ``t`` per unit of initial ``i_syn``."""
        a = math.exp(-t / self.tau_m)
        if math.isclose(self.tau_m, self.tau_syn, rel_tol=1e-9):
            return t * a
        b = math.exp(-t / self.tau_syn)
        return self.tau_m * self.tau_syn * (a - b) / (self.tau_m - self.tau_syn)

    def refractory_map(self, i_syn):
        """``i_syn`` at release of a neuron that spiked with ``i_syn``:
        ``i_syn * exp(-t_ref / tau_syn)`` (it decays and ignores input while refractory)."""
        return np.asarray(i_syn, dtype=float) * math.exp(-self.t_ref / self.tau_syn)

    def nullclines(self, v) -> dict:
        """Nullclines as ``i_syn`` values over ``v`` (V): ``"v"``: ``(v - e_l) / tau_m``
        (``dv/dt = 0``); ``"i_syn"``: zeros (``di_syn/dt = 0``)."""
        v = np.asarray(v, dtype=float)
        return {"v": (v - self.e_l) / self.tau_m, "i_syn": np.zeros_like(v)}

    @property
    def resting_state(self) -> tuple[float, float]:
        """``(e_l, 0)``, or ``(v_reset, 0)`` if ``e_l`` is not below threshold."""
        return (self.e_l if self.e_l < self.v_th else self.v_reset, 0.0)

    def validate_grid(self, grid: Grid) -> None:
        """Raise ``ValueError`` unless the grid's axes are ``(v, i_syn)`` in that order,
        the upper ``v`` face is ``v_th`` and the ``v`` axis contains ``v_reset``."""
        check_grid_axes(grid, self.state_vars, "LIFSynaptic")
        ax = grid.axes[0]
        if ax.face_index(self.v_th) != ax.num_cells:
            raise ValueError(f"grid v upper={ax.upper!r} must equal the threshold v_th="
                             f"{self.v_th!r}: the threshold is the grid's upper v face")
        if not ax.contains(self.v_reset) or self.v_reset >= ax.upper:
            raise ValueError(f"grid v=({ax.lower:g}, {ax.upper:g}) must contain v_reset="
                             f"{self.v_reset:g} below its upper face")

    def default_grid(self, inputs=(), v_cells: int = _V_CELLS_PER_RESET_GAP,
                     i_cells: int = _I_CELLS) -> Grid:
        """A ``(v, i_syn)`` grid for the given inputs.

        Parameters
        ----------
        inputs : iterable of (peak_rate, weight, kind)
            Peak Poisson rate (Hz), weight (V) and kind of every connection.
        v_cells : int, default 200
            Cells between ``v_reset`` and ``v_th``.
        i_cells : int, default 200
            Cells of ``i_syn`` over its range.

        Notes
        -----
        ``i_syn`` spans its stationary mean ``sum s w`` plus and minus 6 standard
        deviations ``sqrt(sum s w^2 / (2 tau_syn))``, widened to contain 0 and one
        largest jump ``w / tau_syn`` of each sign beyond; with excitatory input only its
        lower face is 0 (``i_syn`` never becomes negative). Its cell width is shrunk so
        that the smallest jump is a whole number of cells. ``v`` runs from
        ``min(e_l, v_reset)`` (with inhibition: 6 standard deviations of the white-noise
        estimate below the mean drive, as :meth:`popdens.LIF.default_grid`) to ``v_th``.
        """
        inputs = [(float(r), float(w), kind) for (r, w, kind) in inputs]
        mean_i = sum(r * w for (r, w, _) in inputs)
        sd_i = math.sqrt(sum(r * w * w for (r, w, _) in inputs) / (2.0 * self.tau_syn))
        jumps = [w / self.tau_syn for (_, w, _) in inputs if w != 0.0]
        # with no input the range of a drive that covers the reset gap in one tau_m
        scale = (self.v_th - self.v_reset) / self.tau_m
        i_hi = max(mean_i + _I_SPREAD_SDS * sd_i, 0.0) + max([j for j in jumps if j > 0],
                                                             default=0.0)
        excitatory_only = all(w > 0.0 for (_, w, _) in inputs)
        if excitatory_only:
            i_lo = 0.0
        else:
            i_lo = min(mean_i - _I_SPREAD_SDS * sd_i, 0.0) - max(
                [-j for j in jumps if j < 0], default=0.0)
        if not inputs:
            i_lo, i_hi = -scale, scale
        if i_hi <= i_lo:
            i_hi = i_lo + scale
        n_i = _check_cells("i_cells", i_cells)
        di = (i_hi - i_lo) / n_i
        if jumps:
            h = min(abs(j) for j in jumps)
            di = h / math.ceil(h / di - 1e-9)
            n_i = min(max(2, math.ceil((i_hi - i_lo) / di - 1e-9)), _MAX_DEFAULT_CELLS)
            i_hi = i_lo + n_i * di if n_i * di >= i_hi - i_lo else i_hi

        n_gap = _check_cells("v_cells", v_cells)
        dv = (self.v_th - self.v_reset) / n_gap
        v_lo = min(self.e_l, self.v_reset)
        if not excitatory_only:
            mean_v = self.e_l + self.tau_m * mean_i
            var_v = self.tau_m * sum(r * w * w for (r, w, _) in inputs) / 2.0
            v_lo = min(v_lo, mean_v - _I_SPREAD_SDS * math.sqrt(var_v))
        n_v = min(max(2, math.ceil((self.v_th - v_lo) / dv - 1e-9)), _MAX_DEFAULT_CELLS)
        dv = (self.v_th - v_lo) / n_v
        return Grid(v=(self.v_th - n_v * dv, self.v_th, n_v), i_syn=(i_lo, i_hi, n_i))

    def compiled_params(self) -> LIFSynapticParams:
        """Parameters of the compiled single-neuron update
        (:mod:`popdens.kernels.mc_lif_synaptic`)."""
        return lif_synaptic_params(self.tau_m, self.tau_syn, self.v_th, self.v_reset,
                                   self.e_l, self.t_ref)


def _check_cells(name, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 2:
        raise ValueError(f"{name} must be >= 2, got {value!r}")
    return int(value)
