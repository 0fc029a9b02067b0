"""A small progress tracker for long runs.

:class:`Progress` shows how many of a run's steps are done. It draws a ``tqdm`` bar when
tqdm is installed, else a one-line text bar on standard error, and stays silent when
disabled or when standard error is not a terminal (unless ``force=True``), so batch jobs,
tests and CI logs stay clean.

Examples
--------
>>> from popdens.progress import Progress
>>> with Progress(1000, description="density") as bar:
...     for done in range(0, 1001, 250):
...         bar.update(done)
"""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]

# The text fallback redraws at most this often (s), so a fast chunk loop costs nothing.
MIN_INTERVAL = 0.2
BAR_WIDTH = 30


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """Progress of a run of ``total_steps`` steps.

    Parameters
    ----------
    total_steps : int
        Steps in the run (>= 0).
    enabled : bool, default True
        ``False`` makes every method a no-op.
    description : str, default ""
        Label in front of the bar.
    force : bool, default False
        Draw even when the output stream is not a terminal.
    stream : text stream, optional
        Where to draw; default ``sys.stderr``.
    use_tqdm : bool or None, default None
        ``None`` uses tqdm when it is installed; ``False`` always uses the text fallback.

    Notes
    -----
    :meth:`update` takes the number of steps done so far (not an increment), so a caller
    can report after each compiled chunk without bookkeeping. The tracker is also a
    context manager that closes itself, on errors and ``KeyboardInterrupt`` too.
    """

    def __init__(self, total_steps: int, enabled: bool = True, description: str = "",
                 force: bool = False, stream=None, use_tqdm: bool | None = None):
        if isinstance(total_steps, bool) or int(total_steps) != total_steps or \
                total_steps < 0:
            raise ValueError(f"total_steps must be a whole number >= 0, got {total_steps!r}")
        self.total_steps = int(total_steps)
        self.description = str(description)
        self.stream = sys.stderr if stream is None else stream
        self.active = bool(enabled) and (force or _is_tty(self.stream))
        self.done = 0
        self.closed = False
        self._bar = None
        self._started = time.perf_counter()
        self._last_draw = -float("inf")
        if not self.active:
            return
        if use_tqdm is None or use_tqdm:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                if use_tqdm:
                    raise
            else:
                self._bar = tqdm(total=self.total_steps, desc=self.description or None,
                                 file=self.stream, unit="step", leave=False,
                                 dynamic_ncols=True)

    def update(self, done_steps: int) -> None:
        """Report that ``done_steps`` steps (cumulative) are done."""
        if self.closed:
            return
        done = min(max(int(done_steps), 0), self.total_steps)
        advance = done - self.done
        self.done = done
        if not self.active:
            return
        if self._bar is not None:
            if advance > 0:
                self._bar.update(advance)
            return
        now = time.perf_counter()
        if now - self._last_draw >= MIN_INTERVAL or done == self.total_steps:
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        fraction = self.done / self.total_steps if self.total_steps else 1.0
        filled = int(round(BAR_WIDTH * fraction))
        elapsed = now - self._started
        eta = ""
        if 0 < fraction < 1:
            eta = f", {elapsed * (1 - fraction) / fraction:.0f} s left"
        label = f"{self.description}: " if self.description else ""
        self.stream.write(f"\r{label}[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                          f"{100 * fraction:5.1f} % ({self.done}/{self.total_steps} steps"
                          f"{eta})")
        self.stream.flush()

    def close(self) -> None:
        """Remove the bar (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if not self.active:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
