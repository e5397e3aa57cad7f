"""Where a command writes: results on stdout (text or JSON), progress and notes on stderr."""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np

from latentfactors._progress import EpochProgress, format_duration

__all__ = [
    "EpochProgress",
    "Output",
    "examples",
    "finite",
    "format_duration",
    "plain_id",
    "table",
]


class Output:
    """The ``--json`` and ``--quiet`` choices of a command, and its two streams."""

    def __init__(self, args):
        self.json = bool(getattr(args, "json", False))
        self.quiet = bool(getattr(args, "quiet", False))

    def note(self, text: str) -> None:
        """A progress or context line on stderr (silenced by ``--quiet``)."""
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)

    def progress(self, n_epochs: int, *, label: str = "", early_stopping: bool = False):
        """An epoch ``callback`` printing on stderr, or ``None`` with ``--quiet``."""
        if self.quiet:
            return None
        return EpochProgress(n_epochs, label=label, early_stopping=early_stopping)

    def result(self, payload: dict, text: str) -> None:
        """The command's result: ``payload`` as JSON with ``--json``, else ``text``."""
        if self.json:
            print(json.dumps(_no_nan(payload), default=json_default, allow_nan=False))
        else:
            print(text)
        sys.stdout.flush()


def _no_nan(obj):
    """``obj`` with NaN and infinities replaced by ``None`` (JSON has neither)."""
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_no_nan(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not math.isfinite(obj):
        return None
    return obj


def json_default(obj):
    """``json.dumps(default=...)`` for NumPy scalars and arrays and paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def finite(value):
    """``None`` for NaN/inf (JSON has no NaN), a plain float otherwise."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def plain_id(raw):
    """A raw id as a Python value to print: ``1`` for a whole-number float id ``1.0``."""
    raw = raw.item() if isinstance(raw, np.generic) else raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    return raw


def examples(ids) -> str:
    """The first three ids, e.g. ``1, 2, 3, ...``."""
    shown = ", ".join(str(plain_id(x)) for x in ids[:3].tolist())
    return shown + (", ..." if len(ids) > 3 else "")


def table(header, rows, numeric=()) -> str:
    """Columns padded to their widest cell; the columns in ``numeric`` right-aligned."""
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    out = []
    for row in [header, *rows]:
        cells = [
            str(v).rjust(w) if c in numeric else str(v).ljust(w)
            for c, (v, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)
