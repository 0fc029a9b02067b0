"""Run every benchmark script and collect their tables: ``python -m benchmarks``.

Run from the repository root (the folder that holds ``benchmarks/``)::

    python -m benchmarks               # every benchmarks/bench_*.py, full size
    python -m benchmarks --quick       # the reduced sizes of each script
    python -m benchmarks --only error_cost lif_1d
    python -m benchmarks --list

Discovery: every ``benchmarks/bench_*.py`` is a benchmark, so a new script is picked up
by adding the file. Each one runs in its own subprocess (``python benchmarks/bench_X.py``,
with ``--quick`` passed on), so the scripts stay standalone programs, a crash or a stuck
script (``--timeout``) cannot take the others down, and numba's compilation state does not
leak between them. The convention every script follows: it accepts ``--quick`` and prints
its results as markdown on standard output (it may also write its own files into
``benchmarks/results/``).

Scripts that write their own tables (``bench_lif_1d.py`` writes ``results/lif_1d.md``,
``bench_error_cost.py`` writes ``results/error_cost_lif.md`` and the figure
``results/error_vs_cost_lif.png``) overwrite them on every run, ``--quick`` included:
commit the full-size versions.

The output of every script, with its command, exit status and wall time, is collected
into ``benchmarks/results/summary.md`` (``--summary`` to write elsewhere). The exit status
is 1 if any script failed.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUMMARY = HERE / "results" / "summary.md"


def discover() -> list[Path]:
    """The benchmark scripts, sorted by name."""
    return sorted(HERE.glob("bench_*.py"))


def short_name(path: Path) -> str:
    return path.stem[len("bench_"):]


def run_script(path: Path, quick: bool, timeout: float) -> dict:
    """Run one script; return its command, status, wall time and output."""
    command = [sys.executable, str(path)] + (["--quick"] if quick else [])
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              cwd=HERE.parent)
        status, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        status = "timeout"
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = f"stopped after {timeout:g} s (--timeout)"
    wall = time.perf_counter() - start
    shown = " ".join([f"python benchmarks/{path.name}"] + (["--quick"] if quick else []))
    return {"name": short_name(path), "command": shown, "status": status, "wall": wall,
            "stdout": stdout, "stderr": stderr}


def summary_text(runs: list[dict], quick: bool) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# popdens benchmarks", "",
             f"`python -m benchmarks{' --quick' if quick else ''}`, {stamp}, python "
             f"{platform.python_version()} on {platform.machine()}.", "",
             "| benchmark | status | wall time |", "| --- | --- | ---: |"]
    for run in runs:
        ok = "ok" if run["status"] == 0 else f"FAILED ({run['status']})"
        lines.append(f"| [{run['name']}](#{run['name'].replace('_', '-')}) | {ok} | "
                     f"{run['wall']:.0f} s |")
    for run in runs:
        lines += ["", f"## {run['name']}", "", f"`{run['command']}`", ""]
        body = run["stdout"].strip()
        # demote the scripts' own headings below this section's
        body = "\n".join("##" + line if line.startswith("#") else line
                         for line in body.splitlines())
        lines.append(body or "(no output)")
        if run["status"] != 0:
            tail = "\n".join(run["stderr"].strip().splitlines()[-20:])
            lines += ["", "stderr (last lines):", "", "```", tail, "```"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="pass --quick to every script (reduced sizes)")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only these (bench_NAME.py or NAME)")
    parser.add_argument("--list", action="store_true", help="list the scripts and exit")
    parser.add_argument("--timeout", type=float, default=3600.0, metavar="SECONDS",
                        help="stop a script after this long (default 3600)")
    parser.add_argument("--summary", type=Path, default=SUMMARY, metavar="MD",
                        help=f"where to write the summary (default {SUMMARY})")
    args = parser.parse_args(argv)
    scripts = discover()
    if args.list:
        for path in scripts:
            print(f"{short_name(path):20} benchmarks/{path.name}")
        return 0
    if args.only:
        wanted = {name.removeprefix("bench_").removesuffix(".py") for name in args.only}
        unknown = wanted - {short_name(p) for p in scripts}
        if unknown:
            parser.error(f"unknown benchmark(s) {sorted(unknown)}; available: "
                         f"{[short_name(p) for p in scripts]}")
        scripts = [p for p in scripts if short_name(p) in wanted]
    runs = []
    for path in scripts:
        print(f"running {path.name}{' --quick' if args.quick else ''} ...", flush=True)
        run = run_script(path, args.quick, args.timeout)
        status = "ok" if run["status"] == 0 else f"FAILED ({run['status']})"
        print(f"  {status} in {run['wall']:.0f} s", flush=True)
        runs.append(run)
    args.summary.parent.mkdir(parents=True, exist_ok=True)
    args.summary.write_text(summary_text(runs, args.quick))
    print(f"summary written to {args.summary}")
    return 0 if all(run["status"] == 0 for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
