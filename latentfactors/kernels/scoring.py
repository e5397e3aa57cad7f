"""Batched prediction for biased matrix factorisation."""

from __future__ import annotations

import numba
import numpy as np

from latentfactors.kernels._config import (
    JIT,
    PARALLEL_MIN_VALUES,
    serial_and_parallel,
    with_threads,
)
from latentfactors.kernels.bundles import Embeddings


@numba.njit(**JIT)
def _predict_one(u, i, P, Q, bu, bi, mu, lo, hi):
    # Unknown ids (code -1) contribute nothing: no bias, no interaction.
    s = mu
    if u >= 0:
        s += bu[u]
    if i >= 0:
        s += bi[i]
    if u >= 0 and i >= 0:
        dot = 0.0
        for f in range(P.shape[1]):
            dot += P[u, f] * Q[i, f]
        s += dot
    return min(max(s, lo), hi)


def _predict(users, items, emb, mu, lo, hi, out):
    """Predictions for pairs of codes (``-1`` = unknown), clipped to ``[lo, hi]``.

    ``emb`` is the model's :class:`~latentfactors.kernels.bundles.Embeddings`.
    Each output depends only on its own pair, so threads cannot change results.
    """
    P, Q, bu, bi = emb
    for k in numba.prange(len(users)):
        out[k] = _predict_one(users[k], items[k], P, Q, bu, bi, mu, lo, hi)


_predict_serial, _predict_parallel = serial_and_parallel(_predict)


# Below this many pairs, the thread start-up costs more than it saves.
PARALLEL_PREDICT_MIN = 200_000


def predict_pairs(users, items, P, Q, bu, bi, mu, lo, hi, n_threads):
    """Dispatch to the serial or the parallel kernel; returns float64 predictions."""
    out = np.empty(len(users), dtype=np.float64)
    emb = Embeddings(P, Q, bu, bi)
    if n_threads > 1 and len(users) >= PARALLEL_PREDICT_MIN:
        with_threads(n_threads, _predict_parallel, users, items, emb, mu, lo, hi, out)
    else:
        _predict_serial(users, items, emb, mu, lo, hi, out)
    return out


# Buckets of the first pass of _csr_by_user: few enough that every bucket's
# write position stays in cache.
CSR_RADIX_BITS = 8


@numba.njit(**JIT)
def _csr_by_user(users, items, n_users):
    """Items each user rated, as CSR, not yet sorted within a user (see :func:`csr_by_user`).

    Two counting-sort passes (by the high bits of the user, then by user
    within each bucket), so that writes stay within a cache-sized range
    instead of going all over memory.
    """
    n = len(users)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    for k in range(n):
        indptr[users[k] + 1] += 1
    for u in range(n_users):
        indptr[u + 1] += indptr[u]
    shift = 0
    while (n_users - 1) >> (shift + CSR_RADIX_BITS) > 0:
        shift += 1
    n_high = ((max(n_users, 1) - 1) >> shift) + 1
    bucket = np.empty(n_high, dtype=np.int64)
    for h in range(n_high):
        bucket[h] = indptr[min(h << shift, n_users)]
    tmp_users = np.empty(n, dtype=np.int32)
    tmp_items = np.empty(n, dtype=np.int32)
    for k in range(n):
        h = users[k] >> shift
        tmp_users[bucket[h]] = users[k]
        tmp_items[bucket[h]] = items[k]
        bucket[h] += 1
    cursor = indptr[:-1].copy()
    indices = np.empty(n, dtype=np.int32)
    for k in range(n):
        u = tmp_users[k]
        indices[cursor[u]] = tmp_items[k]
        cursor[u] += 1
    return indptr, indices


def _sort_segments(indptr, indices):
    """Sort every ``indices[indptr[u]:indptr[u + 1]]`` in place."""
    for u in numba.prange(len(indptr) - 1):
        indices[indptr[u] : indptr[u + 1]].sort()


_sort_segments_serial, _sort_segments = serial_and_parallel(_sort_segments)


def csr_by_user(users, items, n_users, n_threads=1):
    """Items each user rated, as CSR (``indptr`` int64, ``indices`` int32, sorted per user)."""
    indptr, indices = _csr_by_user(users, items, n_users)
    threads = n_threads if len(indices) >= PARALLEL_MIN_VALUES else 1
    with_threads(threads, _sort_segments, indptr, indices)
    return indptr, indices
