"""Where the ReducedHH density's rate error comes from: space, time and which axis.

Scenario and reference: ``benchmarks/errest_references.py`` (``reduced_hh``: 2 mV jumps
at 4 kHz from rest, mean rate over [30, 100) ms; Monte Carlo 85.771 +- 0.021 Hz, block
standard error, ``tests/data/errest_references.json``). Each argument ``V,N,H`` runs the
density on ``V`` cells of ``v`` (the default range) times ``N`` cells of ``n`` over
[0, 1] with the internal step ``max_substep = H`` us, and prints its rate and its error
against the reference. Run::

    python benchmarks/diag_space_time_nd.py 278,100,12.5 278,200,12.5 278,400,12.5

Measured 2026-12-06 (2 cores shared with other jobs; ``mc`` limiter), error in Hz:

- in space only, at 12.5 us: 70 x 25 -2.35, 139 x 50 -1.20, 278 x 100 -0.88,
  556 x 200 -0.16 (the former default grid), 1112 x 400 +0.003 (monotone);
- in time only, on 1112 x 400: +0.441, +0.203, +0.062, +0.003 at 100, 50, 25, 12.5 us
  (monotone, but successive differences 0.238, 0.141, 0.059 Hz: orders 0.76 and 1.26,
  not 2; the grid's own error, negative and growing as the step shrinks, still mixes
  in at 25 and 12.5 us). 556 x 200 and 1112 x 400 agree to
  0.002 Hz at 100 us: there the error is the splitting's, +0.44 Hz (0.51 %);
- per axis, at 12.5 us: ``v`` refined at 100 ``n`` cells, 278 / 556 / 1112 ``v`` cells:
  -0.88, -0.84, -0.81; ``n`` refined at 278 ``v`` cells, 100 / 200 / 400 ``n`` cells:
  -0.88, -0.16, +0.01; 70 x 100 -0.95, 139 x 200 -0.17. At small steps the grid
  error is that of the ``n`` axis alone; the former default ``v`` resolution (556) is 4x more
  than the rate needs there;
- at 100 us the grid error is small once ``n`` has 50 cells: 70 x 50 -0.06, 139 x 100
  +0.27, 278 x 200 +0.43 (the splitting's +0.44 left), 35 x 50 +1.03 (``v`` too coarse).

The ``n`` sweep's grid error grows as the step shrinks at a fixed grid (at 200 ``n``
cells: about -0.01 Hz at 100 us, -0.16 Hz at 12.5 us) although its Courant numbers are
small. A likely cause (not isolated): the density along ``n`` is a narrow ridge
(relaxation toward ``n_inf(v)``) whose maximum a limiter clips to first order in every
sweep, with a numerical diffusion ``|a| dx (1 - C) / 2`` that grows as the Courant
number ``C`` falls. A third-order
reconstruction does not remove it: a prototype with limited PPM edges (Colella and
Woodward's limiter, which also flattens extrema) in the sweeps gave 84.10, 84.75, 84.83,
85.63 Hz on 70 x 25 .. 556 x 200 at 12.5 us (the ``mc`` rows: 83.42, 84.57, 84.89,
85.61); it helped only at 100 us on coarse grids (70 x 25: -0.44 against -1.60 Hz).
Keeping the centred slope at extrema, limited only to keep the profile non-negative
(``|g| <= 2 p``), removes about 40 % of it: -0.73, -0.56, -0.10 Hz on 139 x 50,
278 x 100, 278 x 200 at 12.5 us (``mc``: -1.20, -0.88, -0.16), so clipped extrema are
part of the cause, not all of it. Neither prototype is in the package.

The former default grid's proportions were not those the error needs: 139 x 200 at 100 us
gives +0.421 Hz in 0.58 s against +0.440 Hz in about 5 s for the former default 556 x 200
(the default is now 139 x 200: ``benchmarks/bench_rhh_default_grid.py``), and
139 x 400 gives +0.42, +0.19, +0.077 Hz at 100, 50, 25 us (1.9, 2.5, 5.2 s).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from errest_references import T_END, WINDOW, reduced_hh

import popdens as pd

REFS = Path(__file__).resolve().parent.parent / "tests" / "data" / "errest_references.json"
V_RANGE = (-0.082, 0.057)   # the default grid's v axis for this scenario


def rate(v_cells: int, n_cells: int, step: float, scheme: str) -> tuple[float, float]:
    """Mean rate over the window (Hz) and the integration wall time (s) of one run."""
    grid = pd.Grid(v=(*V_RANGE, v_cells), n=(0.0, 1.0, n_cells))
    res = reduced_hh(grid).run(T_END, 1e-4, max_substep=step, scheme=scheme,
                               progress=False)
    return res.mean_rate("P", *WINDOW), res.wall_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="V,N,H: v cells, n cells, step (us)")
    parser.add_argument("--scheme", default="mc", choices=("mc", "vanleer", "upwind"))
    args = parser.parse_args()
    ref = json.loads(REFS.read_text())["reduced_hh"]["rate"]
    for spec in args.runs:
        v_cells, n_cells, step_us = spec.split(",")
        value, wall = rate(int(v_cells), int(n_cells), float(step_us) * 1e-6, args.scheme)
        print(f"{v_cells} x {n_cells}, {step_us} us: {value:.4f} Hz, error "
              f"{value - ref:+.4f} Hz ({100 * (value - ref) / ref:+.3f} %), "
              f"{wall:.2f} s", flush=True)


if __name__ == "__main__":
    main()
