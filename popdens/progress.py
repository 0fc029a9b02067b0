"""Progress and Ctrl-C for long runs, shared by every backend.

:class:`Progress` shows how many of a run's steps are done. It draws a ``tqdm`` bar when
tqdm is installed, else a one-line text bar on standard error, and stays silent when
disabled or when standard error is not a terminal (unless ``force=True``), so batch jobs,
tests and CI logs stay clean.

:func:`run_chunks` drives a backend's compiled loop in slices of steps sized to about
``CHUNK_SECONDS`` of wall time: the bar moves between slices, and Ctrl-C (SIGINT), which
compiled code cannot see, is deferred to the end of the slice running (:class:`Deferred
Interrupt`), so the run stops within about ``CHUNK_SECONDS`` with a consistent state and
the steps done.

Examples
--------
>>> from popdens.progress import Progress
>>> with Progress(1000, description="density") as bar:
...     for done in range(0, 1001, 250):
...         bar.update(done)
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import warnings

__all__ = ["Progress", "DeferredInterrupt", "run_chunks", "CHUNK_SECONDS"]

# Wall time aimed at per compiled call: the progress bar moves and Ctrl-C is honoured at
# about this interval.
CHUNK_SECONDS = 0.5
# Steps of the first compiled call (its duration sizes the next ones).
FIRST_CHUNK = 100

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


class DeferredInterrupt:
    """Within the block, Ctrl-C (SIGINT) sets :attr:`requested` instead of raising.

    Only in the main thread and while Python's default SIGINT handler is installed (a
    handler of the caller's own is left alone); elsewhere ``KeyboardInterrupt`` is raised
    as usual and :func:`run_chunks` catches it.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame) -> None:
        self.requested = True

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def run_chunks(advance, begin: int, total: int, description: str, progress: bool = True,
               max_chunk: int | None = None, dt: float = 0.0) -> tuple[int, bool]:
    """Advance a run from step ``begin`` to ``total`` in slices, honouring Ctrl-C.

    Parameters
    ----------
    advance : callable
        ``advance(step, stop) -> reached``: integrate steps ``step .. stop - 1`` and
        return the step reached (``stop``, or less when the backend must pause, e.g. to
        grow a buffer). It must leave a consistent state at ``reached``.
    begin, total : int
        First step and number of steps of the run.
    description : str
        Label of the progress bar and of the interruption warning.
    progress : bool, default True
        Show a progress bar (on a terminal only).
    max_chunk : int, optional
        Most steps per call (e.g. the shortest coupling lag).
    dt : float, optional
        Step (s), for the time in the interruption warning.

    Returns
    -------
    (reached, interrupted) : (int, bool)
        The last step done; whether Ctrl-C stopped the run (a ``RuntimeWarning`` then
        says so).
    """
    step = begin
    chunk = FIRST_CHUNK if max_chunk is None else max(1, min(FIRST_CHUNK, max_chunk))
    interrupted = False
    with Progress(total, enabled=progress, description=description) as bar, \
            DeferredInterrupt() as interrupt:
        bar.update(step)
        try:
            while step < total and not interrupt.requested:
                began = time.perf_counter()
                step = advance(step, min(step + chunk, total))
                bar.update(step)
                chunk = _next_chunk(chunk, time.perf_counter() - began, max_chunk)
        except KeyboardInterrupt:
            interrupted = True
        interrupted = interrupted or (interrupt.requested and step < total)
    if interrupted:
        warnings.warn(f"{description} run interrupted at t={step * dt:g} s (Ctrl-C, {step} "
                      f"of {total} steps); returning the steps done, marked "
                      f"info['interrupted']",
                      RuntimeWarning, stacklevel=3)
    return step, interrupted


def _next_chunk(chunk: int, spent: float, max_chunk: int | None) -> int:
    """The next slice: aimed at ``CHUNK_SECONDS``, growing at most 4x per call."""
    grown = int(max(1, chunk * min(4.0, CHUNK_SECONDS / max(spent, 1e-6))))
    return grown if max_chunk is None else max(1, min(grown, max_chunk))
