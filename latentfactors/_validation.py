"""The one place for argument checks shared by ``data/``, ``models/`` and ``metrics``.

Each ``check_*`` raises :class:`ValueError` naming the argument, the values it
accepts and the value given, and returns the value in plain Python form, so
that a caller can write ``n = check_int("n", n, 1)``. Booleans are never
numbers here: ``True`` is not a count of 1.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["check_bool", "check_choice", "check_int", "check_real", "is_int", "is_real"]


def is_int(value) -> bool:
    """Whether ``value`` is an integer (Python or NumPy), and not a boolean."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value) -> bool:
    """Whether ``value`` is a real number (Python or NumPy), and not a boolean.

    NaN and infinities count: :func:`check_real` is the check for finite numbers.
    """
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_int(name, value, low, high=None, *, none_ok=False):
    """``value`` as an ``int`` in ``[low, high]`` (or ``None`` with ``none_ok``)."""
    if none_ok and value is None:
        return None
    if not is_int(value) or value < low or (high is not None and value > high):
        upper = f" and <= {high}" if high is not None else ""
        none = "None or " if none_ok else ""
        raise ValueError(f"{name} must be {none}an integer >= {low}{upper}, got {value!r}")
    return int(value)


def check_real(name, value, low=None, high=None, *, low_open=False, high_open=False):
    """``value`` as a finite ``float`` within the bounds (each closed unless ``*_open``)."""
    ok = is_real(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else (f"> {low}" if low_open else f">= {low}")
        hi = "" if high is None else (f"< {high}" if high_open else f"<= {high}")
        bounds = " and ".join(p for p in (lo, hi) if p)
        bounds = f" {bounds}" if bounds else ""
        raise ValueError(f"{name} must be a finite number{bounds}, got {value!r}")
    return float(value)


def check_choice(name, value, choices):
    """``value``, which must be one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_bool(name, value):
    """``value`` as a ``bool``; only ``True``/``False`` (Python or NumPy) are accepted."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)
