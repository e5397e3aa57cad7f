"""One place for the compiler flags every kernel uses.

``fastmath`` is on without ``nnan``/``ninf``, so NaN and inf still propagate
and divergence stays detectable. ``cache=True`` keeps compiled kernels on disk
next to the sources, so a second process starts fast.
"""

import types

import numba

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
JIT = {"nogil": True, "cache": True, "fastmath": FASTMATH}
PARALLEL_JIT = {**JIT, "parallel": True}


def resolve_threads(n_threads: int) -> int:
    """``-1`` means every core Numba may use; otherwise at most that many."""
    limit = numba.config.NUMBA_NUM_THREADS
    if n_threads == -1:
        return limit
    return max(1, min(int(n_threads), limit))


def with_threads(n_threads, kernel, *args):
    """Run a parallel kernel on ``n_threads`` threads, then restore the previous count."""
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(previous)


def serial_and_parallel(func):
    """``(serial, parallel)``: ``func`` compiled once with :data:`JIT` and once with
    :data:`PARALLEL_JIT`.

    ``func`` loops with ``numba.prange``, which is a plain ``range`` in the
    serial compilation, so the two share every line. The parallel one is
    compiled from a copy of ``func`` named ``<name>_parallel``: Numba's disk
    cache files a function by its name and signature, not by its flags, and
    would otherwise hand one compilation to both.
    """
    twin = types.FunctionType(
        func.__code__, func.__globals__, func.__name__ + "_parallel", func.__defaults__
    )
    twin.__qualname__ = func.__qualname__ + "_parallel"
    twin.__module__ = func.__module__
    twin.__doc__ = func.__doc__
    return numba.njit(**JIT)(func), numba.njit(**PARALLEL_JIT)(twin)


# Work of one kernel call, in nanoseconds of one core of the machine the estimates
# were measured on (benchmarks/results/). Numba kernels cannot be interrupted, so an
# epoch is cut into calls of about this much work and Python sees Ctrl-C between them.
# The cut follows the data and a fixed work estimate, never a clock, so it (and every
# result, bit for bit) never depends on the machine's speed.
CALL_NS = 250_000_000


def units_per_call(n_units: int, ns_per_unit: float) -> int:
    """How many consecutive units (batches, rounds) one call runs: at least 1, at most all."""
    return int(max(1, min(n_units, CALL_NS // max(ns_per_unit, 1.0))))
