"""One place for the compiler flags every kernel uses.

``fastmath`` is on without ``nnan``/``ninf``, so NaN and inf still propagate
and divergence stays detectable. ``cache=True`` keeps compiled kernels on disk
next to the sources, so a second process starts fast.
"""

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
