"""One place for the compiler flags every kernel uses.

``fastmath`` is on without ``nnan``/``ninf``, so NaN and inf still propagate
and divergence stays detectable. ``cache=True`` keeps compiled kernels on disk
next to the sources, so a second process starts fast. :func:`intrinsic_or`
gives every intrinsic a pure-Python twin for runs with the JIT disabled.
"""

import numba
from numba.extending import intrinsic

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
JIT = {"nogil": True, "cache": True, "fastmath": FASTMATH}
PARALLEL_JIT = {**JIT, "parallel": True}


def resolve_threads(n_threads: int) -> int:
    """``-1`` means every core Numba may use; otherwise at most that many."""
    limit = numba.config.NUMBA_NUM_THREADS
    if n_threads == -1:
        return limit
    return max(1, min(int(n_threads), limit))


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
