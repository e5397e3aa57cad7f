"""Wall time of ``python -m latentfactors demo`` cold (nothing compiled yet), then warm.

Copies the package (the working tree's, or ``--rev``'s through ``git
archive``) into a temporary folder and points ``NUMBA_CACHE_DIR`` at a fresh
temporary folder, so the run compiles every kernel it uses and the caches of
the working tree and of the user are left alone. It then runs the same demo
again on the cache the first run filled. The demo reads the data home as
usual (``LATENTFACTORS_DATA``). The cold run also reports the seconds Numba
spent compiling each kernel signature (a kernel's time includes the helpers
it compiled on the way, which are listed too).

    python benchmarks/cold_start.py
    python benchmarks/cold_start.py --rev aee89a7 --save
    python benchmarks/cold_start.py -- --quick
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "cold-start.txt"

# Runs the command line as `python -m latentfactors` does, then writes Numba's
# compile timers of every jitted function of the package to a JSON file.
RUNNER = r"""
import atexit, json, os, runpy, sys

def _report():
    from numba.core.registry import CPUDispatcher
    rows, seen = [], set()
    for name, module in list(sys.modules.items()):
        if not name.startswith("latentfactors"):
            continue
        for attr, obj in list(vars(module).items()):
            if not isinstance(obj, CPUDispatcher) or id(obj) in seen:
                continue
            seen.add(id(obj))
            for sig in obj.signatures:
                timers = (obj.get_metadata(sig) or {}).get("timers") or {}
                rows.append([f"{name}.{attr}", str(sig), timers.get("compiler_lock", 0.0)])
    with open(os.environ["COLD_START_REPORT"], "w") as fh:
        json.dump(rows, fh)

atexit.register(_report)
sys.argv = ["latentfactors", *sys.argv[1:]]
runpy.run_module("latentfactors", run_name="__main__", alter_sys=True)
"""


def _export(rev: str | None, dest: Path) -> str:
    """Copy the package into ``dest``; returns a description of what was copied."""
    if rev is None:
        shutil.copytree(
            ROOT / "latentfactors",
            dest / "latentfactors",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        return "working tree"
    archive = dest / "package.tar"
    subprocess.run(
        ["git", "-C", str(ROOT), "archive", "-o", str(archive), rev, "latentfactors"], check=True
    )
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    archive.unlink()
    return f"revision {rev}"


def _run(tmp: Path, demo_args: list[str], report: Path) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp / "src"),
        "NUMBA_CACHE_DIR": str(tmp / "numba-cache"),
        "COLD_START_REPORT": str(report),
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, "demo", *demo_args],
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the demo failed:\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", help="measure the package at this git revision instead")
    parser.add_argument("--top", type=int, default=25, help="kernel signatures to list")
    parser.add_argument("--save", action="store_true", help=f"append the report to {RESULTS}")
    parser.add_argument("demo_args", nargs="*", help="arguments for the demo (after --)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lf-cold-start-") as name:
        tmp = Path(name)
        (tmp / "src").mkdir()
        what = _export(args.rev, tmp / "src")
        cold = _run(tmp, args.demo_args, tmp / "cold.json")
        warm = _run(tmp, args.demo_args, tmp / "warm.json")
        rows = json.loads((tmp / "cold.json").read_text())
        # A signature the warm run compiled again missed the cache.
        misses = [r[0] for r in json.loads((tmp / "warm.json").read_text()) if r[2] > 0]

    rows.sort(key=lambda row: -row[2])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"# {datetime.date.today()}: python -m latentfactors demo {' '.join(args.demo_args)} "
        f"({what}, {cores} cores, LATENTFACTORS_DATA={os.environ.get('LATENTFACTORS_DATA', '-')})",
        f"cold: {cold:.1f} s   warm: {warm:.1f} s   "
        f"({len(rows)} compiled signatures of {len({r[0] for r in rows})} functions; "
        f"warm cache misses: {', '.join(misses) or 'none'})",
        "compile seconds per signature (a kernel's includes the helpers it compiled first):",
    ]
    for kernel, sig, seconds in rows[: args.top]:
        short = sig if len(sig) <= 60 else sig[:57] + "..."
        lines.append(f"  {seconds:6.2f}  {kernel.removeprefix('latentfactors.')}  {short}")
    report = "\n".join(lines)
    print(report)
    if args.save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with RESULTS.open("a") as fh:
            fh.write(report + "\n\n")


if __name__ == "__main__":
    main()
