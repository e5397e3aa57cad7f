"""One place for the compiler flags every kernel uses, and for how many threads run them.

``fastmath`` is on without ``nnan``/``ninf``, so NaN and inf still propagate
and divergence stays detectable. ``cache=True`` keeps compiled kernels on disk
next to the sources, so a second process starts fast (or elsewhere when that
folder is read-only: :mod:`latentfactors._numba_setup`).

A kernel that runs on threads is written once and compiled twice
(:func:`serial_and_parallel`); :func:`with_threads` runs the serial build on
one thread, so a process that never asks for more never starts Numba's thread
pool, and in a process forked from one whose pool had started: GNU OpenMP's
pool does not survive ``fork()``, and the child would hang in its first
parallel region. The two builds give bit-identical results.
:func:`intrinsic_or` gives every intrinsic a pure-Python twin for runs with
the JIT disabled.
"""

import os
import sys
import threading
import types

import numba
from numba.extending import intrinsic

from latentfactors._numba_setup import CACHE

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
JIT = {"nogil": True, "cache": CACHE, "fastmath": FASTMATH}
PARALLEL_JIT = {**JIT, "parallel": True}

#: Below this many values, the sorting and grouping passes of a fit run on one
#: thread: they take milliseconds there, and a first fit on small data then
#: compiles no parallel build of them.
PARALLEL_MIN_VALUES = 200_000

# id(parallel build) -> (parallel build, serial build), for serial_and_parallel's kernels.
_BUILDS = {}


def _serial_build_of(obj):
    """The serial build of ``obj`` if it is a parallel build from :func:`serial_and_parallel`."""
    builds = _BUILDS.get(id(obj))
    return builds[1] if builds is not None and builds[0] is obj else None


# Whether this process has started Numba's thread pool (set before starting it,
# so a fork racing with the start errs on the safe side).
_started_threads = False
# Whether this process was forked from one that had: its pool is unusable here.
_forked_from_threads = False


def _threads_started() -> bool:
    # Numba's own flag also covers a pool started by code outside this package.
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    return _started_threads or bool(getattr(parallel, "_is_initialized", False))


def _after_fork_in_child():
    global _forked_from_threads
    _forked_from_threads = _forked_from_threads or _threads_started()


os.register_at_fork(after_in_child=_after_fork_in_child)


def threads_usable() -> bool:
    """``False`` in a process forked after its parent started Numba's thread pool."""
    return not _forked_from_threads


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_threads(n_threads: int) -> int:
    """The thread count to run with: ``-1`` means every core this process may use.

    Never more than ``NUMBA_NUM_THREADS``; ``-1`` is also bounded by the CPU
    affinity (``taskset``, a container's CPU set). Always 1 in a process that
    cannot use threads (see :func:`threads_usable`).
    """
    if not threads_usable():
        return 1
    limit = numba.config.NUMBA_NUM_THREADS
    if n_threads == -1:
        return max(1, min(limit, available_cores()))
    return max(1, min(int(n_threads), limit))


def with_threads(n_threads, kernel, *args):
    """``kernel(*args)`` on ``n_threads`` threads; Numba's thread count is restored after.

    ``kernel`` is a ``(serial, parallel)`` pair or the parallel build from
    :func:`serial_and_parallel`: the serial build runs when ``n_threads`` is 1
    or when this process cannot use threads (:func:`threads_usable`), without
    touching Numba's thread pool. Any other callable (Python code that calls
    kernels through :func:`run_kernel`, such as an epoch cut into several
    kernel calls) runs with that choice made for the kernels it calls.
    """
    global _started_threads
    if isinstance(kernel, tuple):
        serial, kernel = kernel
    else:
        serial = _serial_build_of(kernel)
    one = n_threads <= 1 or not threads_usable()
    if serial is not None and one:
        return serial(*args)
    outer = getattr(_requested, "n", None)
    _requested.n = 1 if one else n_threads
    try:
        # One thread: kernels called through run_kernel take their serial builds,
        # and a pool that is not running stays so; one that is (started by other
        # code) runs whatever the callable calls directly on one thread.
        if one and not (threads_usable() and _threads_started()):
            return kernel(*args)
        _started_threads = True
        previous = numba.get_num_threads()
        numba.set_num_threads(1 if one else n_threads)
        try:
            return kernel(*args)
        finally:
            numba.set_num_threads(previous)
    finally:
        _requested.n = outer


# The thread count that with_threads runs Python code with, for run_kernel; unset
# outside with_threads. Per Python thread, as Numba's own thread count is: two
# fits on two Python threads each keep their own choice.
_requested = threading.local()


def run_kernel(kernel, *args):
    """Call a :func:`serial_and_parallel` kernel from Python code: its serial build
    where :func:`with_threads` chose one thread (or threads are unusable), else its
    parallel build on Numba's current thread count."""
    serial = _serial_build_of(kernel)
    if serial is not None and (getattr(_requested, "n", None) == 1 or not threads_usable()):
        return serial(*args)
    return kernel(*args)


def serial_and_parallel(func, parallel_flags=PARALLEL_JIT):
    """``(serial, parallel)``: ``func`` compiled once with :data:`JIT` and once with
    ``parallel_flags``.

    ``func`` loops with ``numba.prange``, which is a plain ``range`` in the
    serial build, so the two share every line. In the serial build, a call to
    the parallel build of another :func:`serial_and_parallel` kernel goes to
    that kernel's serial build (which must be bound to a name of the module),
    so the serial build never starts a thread; with ``parallel_flags=JIT``,
    ``func`` has no ``prange`` of its own and only its callees differ. The
    parallel build is compiled from a copy of ``func`` named
    ``<name>_parallel``: Numba's disk cache files a function by its name and
    signature, not by its flags, and would otherwise hand one compilation to both.
    """
    names = {id(value): name for name, value in func.__globals__.items()}
    swaps = {}
    for name in func.__code__.co_names:
        serial_callee = _serial_build_of(func.__globals__.get(name))
        if serial_callee is None:
            continue
        if id(serial_callee) not in names:
            raise ValueError(
                f"{func.__name__} calls {name}, whose serial build has no name in its module"
            )
        swaps[name] = names[id(serial_callee)]
    serial_code = func.__code__.replace(
        co_names=tuple(swaps.get(name, name) for name in func.__code__.co_names)
    )
    serial = types.FunctionType(serial_code, func.__globals__, func.__name__, func.__defaults__)
    twin = types.FunctionType(
        func.__code__, func.__globals__, func.__name__ + "_parallel", func.__defaults__
    )
    for build, suffix in ((serial, ""), (twin, "_parallel")):
        build.__qualname__ = func.__qualname__ + suffix
        build.__module__ = func.__module__
        build.__doc__ = func.__doc__
    serial_build = numba.njit(**JIT)(serial)
    parallel_build = numba.njit(**parallel_flags)(twin)
    _BUILDS[id(parallel_build)] = (parallel_build, serial_build)
    return serial_build, parallel_build


# Work of one kernel call, in nanoseconds of one core of the machine the estimates
# were measured on (benchmarks/results/). Numba kernels cannot be interrupted, so an
# epoch is cut into calls of about this much work and Python sees Ctrl-C between them.
# The cut follows the data and a fixed work estimate, never a clock, so it (and every
# result, bit for bit) never depends on the machine's speed.
CALL_NS = 250_000_000


def units_per_call(n_units: int, ns_per_unit: float) -> int:
    """How many consecutive units (batches, rounds) one call runs: at least 1, at most all."""
    return int(max(1, min(n_units, CALL_NS // max(ns_per_unit, 1.0))))


def intrinsic_or(python_twin):
    """Decorator: a Numba intrinsic, or ``python_twin`` when the JIT is disabled.

    With ``NUMBA_DISABLE_JIT=1`` (the coverage run) kernels run as plain Python,
    where an intrinsic cannot be called; its twin then takes the same arguments
    (without the typing context) and gives the same result. Nothing runs on
    several threads then (``prange`` is ``range``), so a twin need not be atomic.
    Compiled kernels never see the twin.
    """

    def decorate(defn):
        if numba.config.DISABLE_JIT:
            return python_twin
        return intrinsic(defn)

    return decorate
