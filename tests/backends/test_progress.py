"""The progress tracker: silent unless asked, text fallback, tqdm when available."""

from __future__ import annotations

import io

import pytest

from popdens.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_silent_when_not_a_terminal_or_disabled():
    for stream, enabled in ((io.StringIO(), True), (_Terminal(), False)):
        with Progress(100, enabled=enabled, stream=stream) as bar:
            bar.update(50)
            bar.update(100)
        assert stream.getvalue() == ""
        assert bar.done == 100 and bar.closed


def test_text_fallback_on_a_terminal():
    stream = _Terminal()
    bar = Progress(200, description="density", stream=stream, use_tqdm=False)
    bar.update(200)
    bar.close()
    bar.close()   # idempotent
    text = stream.getvalue()
    assert "density: [" in text and "100.0 %" in text and "(200/200 steps" in text
    assert text.endswith("\n") and text.count("\n") == 1


def test_forced_output_and_clamping():
    stream = io.StringIO()
    bar = Progress(10, stream=stream, force=True, use_tqdm=False)
    bar.update(25)            # more than total: clamped
    assert bar.done == 10
    bar.update(-3)
    assert bar.done == 0
    bar.close()
    bar.update(5)             # after close: ignored
    assert bar.done == 0
    assert "steps" in stream.getvalue()


def test_tqdm_bar_when_installed():
    pytest.importorskip("tqdm")
    stream = io.StringIO()
    with Progress(1000, stream=stream, force=True, description="mc") as bar:
        for done in (100, 400, 1000):
            bar.update(done)
        assert bar._bar is not None and bar._bar.n == 1000
    assert "mc" in stream.getvalue()


@pytest.mark.parametrize("total", [-1, 2.5, True])
def test_progress_rejects_an_invalid_total_steps(total):
    with pytest.raises(ValueError, match="total_steps"):
        Progress(total)


def test_closes_on_keyboard_interrupt():
    stream = _Terminal()
    with pytest.raises(KeyboardInterrupt):
        with Progress(10, stream=stream, use_tqdm=False) as bar:
            bar.update(3)
            raise KeyboardInterrupt
    assert bar.closed and stream.getvalue().endswith("\n")
