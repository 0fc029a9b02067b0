"""Record the golden outputs: ``python -m tests.golden.record`` (from the repository root).

Run it only with code whose numerics are the reference; every later refactoring step is
checked against the file it writes (tests/test_golden.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .scenarios import SCENARIOS, run_scenario

GOLDEN_FILE = Path(__file__).resolve().parent.parent / "data" / "golden.npz"


def main() -> None:
    out = {}
    for name in SCENARIOS:
        out.update(run_scenario(name))
        print(f"recorded {name}")
    np.savez_compressed(GOLDEN_FILE, **out)
    print(f"wrote {len(out)} arrays to {GOLDEN_FILE}")


if __name__ == "__main__":
    main()
