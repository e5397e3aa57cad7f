"""Appending a benchmark's report to its file under ``benchmarks/results/``."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def append_report(name: str, lines: list[str]) -> Path:
    """Append ``lines`` and a blank line to ``results/<name>``; returns the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / name
    with out.open("a") as fh:
        fh.write("\n".join(lines) + "\n\n")
    print(f"appended to {out}")
    return out
