"""The xorshift64 generator behind every shuffle in the kernels.

Each stream starts from a non-zero seed drawn by the caller's NumPy
generator, so a fit is reproducible from its ``random_state`` and a block's
draws never depend on which thread runs it.
"""

from __future__ import annotations

import numba
import numpy as np

from latentfactors.kernels._config import JIT


@numba.njit(**JIT)
def _xorshift(state):
    state ^= state << np.uint64(13)
    state ^= state >> np.uint64(7)
    state ^= state << np.uint64(17)
    return state


@numba.njit(**JIT)
def _below(state, m):
    """Next state, and a draw in ``[0, m)`` from it."""
    state = _xorshift(state)
    return state, np.int64((state >> np.uint64(11)) % np.uint64(m))


@numba.njit(**JIT)
def _shuffle_triples(users, items, ratings, lo, hi, state):
    """Fisher-Yates shuffle of the triples in ``[lo, hi)``, in place; returns the RNG state."""
    for j in range(hi - 1, lo, -1):
        state, d = _below(state, j - lo + 1)
        k = lo + d
        tu = users[j]
        users[j] = users[k]
        users[k] = tu
        ti = items[j]
        items[j] = items[k]
        items[k] = ti
        tr = ratings[j]
        ratings[j] = ratings[k]
        ratings[k] = tr
    return state


@numba.njit(**JIT)
def _shuffle_ints(values, lo, hi, state):
    """Fisher-Yates shuffle of ``values[lo:hi]`` in place; returns the RNG state."""
    for j in range(hi - 1, lo, -1):
        state, d = _below(state, j - lo + 1)
        k = lo + d
        t = values[j]
        values[j] = values[k]
        values[k] = t
    return state


@numba.njit(**JIT)
def _shuffle_order(order, seed):
    """Fisher-Yates shuffle of a whole index array, in place."""
    state = np.uint64(seed) | np.uint64(1)
    n = len(order)
    for j in range(n - 1, 0, -1):
        state = _xorshift(state)
        k = np.int64((state >> np.uint64(11)) % np.uint64(j + 1))
        t = order[j]
        order[j] = order[k]
        order[k] = t
