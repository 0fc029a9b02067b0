"""Helpers shared by the backends (below every backend module, so none imports another
for them)."""

from __future__ import annotations

import numpy as np

__all__ = ["POISSON_TAIL", "record_steps_for"]

# Relative probability below which the Poisson event-count series is truncated (the rest
# is lumped into the last term, so mass is still conserved exactly).
POISSON_TAIL = 1e-10


def record_steps_for(record_times, t_end: float, dt: float, n_steps: int) -> np.ndarray:
    """Step indices (0 .. n_steps) at whose start the state is recorded: the first step
    start at or after each requested time."""
    if record_times is None:
        return np.zeros(0, dtype=np.int64)
    times = np.atleast_1d(np.asarray(record_times, dtype=float))
    if times.ndim != 1 or not np.all(np.isfinite(times)):
        raise ValueError(f"record_times must be finite times, got {record_times!r}")
    if np.any(times < 0) or np.any(times > t_end * (1 + 1e-12)):
        raise ValueError(f"record_times must lie in [0, t_end={t_end}], got "
                         f"{times.tolist()}")
    steps = np.minimum(np.ceil(times / dt - 1e-9).astype(np.int64), n_steps)
    return np.sort(steps)
