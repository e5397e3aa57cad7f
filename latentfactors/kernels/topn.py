"""Top-N selection: the best ``n`` candidates of each row of scores.

One order everywhere: **score descending, then item code ascending**, so ties
go to the smaller code and the result never depends on threads or blocks.
NaN scores are never selected. A row with fewer than ``n`` eligible
candidates is padded with code ``-1`` and score NaN.

Selection keeps a binary heap of the ``n`` best candidates seen so far whose
root is the *worst* of them; a candidate replaces the root only when it is
strictly better, which costs one comparison per candidate in the common case.
Candidates arrive in ascending code order, so a later candidate with an equal
score is worse and never enters: that is the tie rule. The heap is then
heap-sorted in place into best-first order. It lives in the output row
itself, so the kernels allocate nothing per row.

Two kernels:

* :func:`_topn_scores` selects from given scores (any model; float64).
* :func:`_topn_dot` is for models scored as ``mu + bu + bi + p . q``. Its
  input is a block of *approximate* scores ``p . q`` from a BLAS product
  (whose rounding depends on the block's shape). It first finds the ``n``-th
  best approximate score ``t``; every item whose exact score can reach the
  exact top ``n`` has an approximate score of at least ``t - 2 eps`` (``eps``
  a bound on the rounding error of both computations), and only those are
  rescored exactly with :func:`latentfactors.kernels.scoring._predict_one`, the
  arithmetic of ``predict``. The result is therefore exactly what a full
  exact scoring would give, whatever the block.
"""

from __future__ import annotations

import numba
import numpy as np

from latentfactors.kernels._config import JIT, serial_and_parallel, with_threads
from latentfactors.kernels.scoring import _predict_one


@numba.njit(**JIT)
def _worse(sa, ca, sb, cb):
    """Whether candidate ``(sa, ca)`` ranks below ``(sb, cb)``."""
    return sa < sb or (sa == sb and ca > cb)


@numba.njit(**JIT)
def _sift_down(hs, hc, size, pos):
    s = hs[pos]
    c = hc[pos]
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        right = child + 1
        if right < size and _worse(hs[right], hc[right], hs[child], hc[child]):
            child = right
        if not _worse(hs[child], hc[child], s, c):
            break
        hs[pos] = hs[child]
        hc[pos] = hc[child]
        pos = child
    hs[pos] = s
    hc[pos] = c


@numba.njit(**JIT)
def _offer(hs, hc, size, s, c):
    """Offer candidate ``(s, c)`` to a heap of capacity ``len(hs)``; returns the new size.

    ``hs``/``hc`` hold a min-heap (root = worst kept candidate) of ``size`` entries.
    """
    n = len(hs)
    if size < n:
        pos = size
        while pos > 0:
            parent = (pos - 1) // 2
            if not _worse(s, c, hs[parent], hc[parent]):
                break
            hs[pos] = hs[parent]
            hc[pos] = hc[parent]
            pos = parent
        hs[pos] = s
        hc[pos] = c
        return size + 1
    if _worse(hs[0], hc[0], s, c):
        hs[0] = s
        hc[0] = c
        _sift_down(hs, hc, size, 0)
    return size


@numba.njit(**JIT)
def _finish(hs, hc, size):
    """Heap-sort the ``size`` kept entries best-first, then pad the rest (-1, NaN)."""
    end = size
    while end > 1:
        end -= 1
        ts = hs[0]
        tc = hc[0]
        hs[0] = hs[end]
        hc[0] = hc[end]
        hs[end] = ts
        hc[end] = tc
        _sift_down(hs, hc, end, 0)
    for j in range(size, len(hs)):
        hs[j] = np.nan
        hc[j] = -1


@numba.njit(**JIT)
def _scores_row(scores, cands, seen, s0, s1, hs, hc):
    """Top ``len(hs)`` of one row of scores, skipping the sorted codes ``seen[s0:s1]``."""
    size = 0
    n = len(hs)
    p = s0
    worst = -np.inf  # the root of a full heap, kept in a register
    for c in range(len(cands)):
        s = scores[c]
        if s != s:  # NaN is never recommended
            continue
        if size == n and s <= worst:
            continue  # fast path: not better than the worst kept (ties: later code loses)
        code = cands[c]
        while p < s1 and seen[p] < code:
            p += 1
        if p < s1 and seen[p] == code:
            continue
        size = _offer(hs, hc, size, s, code)
        worst = hs[0]
    _finish(hs, hc, size)


def _topn_scores_rows(scores, cands, seen_start, seen_end, seen, out_codes, out_scores):
    for r in numba.prange(scores.shape[0]):
        _scores_row(scores[r], cands, seen, seen_start[r], seen_end[r], out_scores[r], out_codes[r])


_topn_scores_serial, _topn_scores_parallel = serial_and_parallel(_topn_scores_rows)


def _topn_scores(scores, cands, seen_start, seen_end, seen, out_codes, out_scores, n_threads):
    """Top ``n`` of each row of ``scores``; ``n = out_codes.shape[1]``.

    Parameters
    ----------
    scores : float array, (b, c)
        ``scores[r, j]`` is row ``r``'s score for candidate ``cands[j]``.
    cands : int32 array, (c,)
        Candidate item codes, strictly increasing.
    seen_start, seen_end : int64 arrays, (b,)
        Row ``r`` skips the codes ``seen[seen_start[r]:seen_end[r]]`` (sorted
        ascending; repeats allowed). Give equal starts and ends to skip nothing.
    seen : int32 array
    out_codes : int32 array, (b, n)
        Filled best-first; ``-1`` where fewer than ``n`` candidates qualify.
    out_scores : float64 array, (b, n)
        Their scores; NaN in empty slots.
    n_threads : int
        Threads to run on: rows are independent, so results are identical.
    """
    with_threads(
        n_threads,
        _topn_scores_parallel,
        scores,
        cands,
        seen_start,
        seen_end,
        seen,
        out_codes,
        out_scores,
    )


@numba.njit(**JIT)
def _dot_stage1(approx, prior32, cands, seen, s0, s1, hs, hc):
    """Add ``prior32`` to ``approx`` in place and heap its best ``len(hs)``; returns the count."""
    n = len(hs)
    size = 0
    p = s0
    worst = np.float32(-np.inf)  # the root of a full heap, kept in a register
    for c in range(len(cands)):
        a = approx[c] + prior32[c]
        approx[c] = a  # kept for stage 2
        if size == n and not a > worst:
            continue  # also skips NaN
        if a != a:
            continue
        code = cands[c]
        while p < s1 and seen[p] < code:
            p += 1
        if p < s1 and seen[p] == code:
            continue
        size = _offer(hs, hc, size, np.float64(a), code)
        worst = np.float32(hs[0])
    return size


@numba.njit(**JIT)
def _dot_stage2(r, approx, threshold, prior, cands, seen, s0, s1, emb, mu, heap):
    """Exact top ``len(hs)`` among the candidates whose approximate score is >= threshold
    (``emb`` the block's ``(Pu, Q, bu, bi)``, ``heap`` its row's ``(hs, hc)``)."""
    Pu, Q, bu, bi = emb
    hs, hc = heap
    size = 0
    p = s0
    for c in range(len(cands)):
        if not approx[c] >= threshold:  # also skips NaN
            continue
        code = cands[c]
        while p < s1 and seen[p] < code:
            p += 1
        if p < s1 and seen[p] == code:
            continue
        s = _predict_one(r, code, Pu, Q, bu, bi, mu, -np.inf, np.inf) + prior[c]
        if s != s:
            continue
        size = _offer(hs, hc, size, s, code)
    _finish(hs, hc, size)


@numba.njit(**JIT)
def _dot_row(r, approx, prior32, prior, eps, cands, seen, s0, s1, emb, mu, heap):
    """Exact top ``len(hs)`` of block row ``r`` (see the module docstring), into
    ``heap = (hs, hc)``; ``emb`` is the block's ``(Pu, Q, bu, bi)``.

    Two functions rather than one loop nest: LLVM optimises each scan better alone.
    """
    hs, hc = heap
    size = _dot_stage1(approx, prior32, cands, seen, s0, s1, hs, hc)
    threshold = -np.inf
    if size == len(hs):
        # Stage 1's n-th best approximate score, less twice the error bound.
        threshold = hs[0] - 2.0 * eps
    _dot_stage2(r, approx, threshold, prior, cands, seen, s0, s1, emb, mu, heap)


def _topn_dot_rows(approx, prior32, prior, eps, cands, seen, emb, mu, out_codes, out_scores):
    """Rows of :func:`_topn_dot`; ``seen`` is ``(seen_start, seen_end, seen)`` and
    ``emb`` the :class:`~latentfactors.kernels.bundles.Embeddings` ``(Pu, Q, bu, bi)``."""
    seen_start, seen_end, seen_codes = seen
    for r in numba.prange(approx.shape[0]):
        heap = (out_scores[r], out_codes[r])
        _dot_row(
            r, approx[r], prior32, prior, eps[r], cands, seen_codes, seen_start[r], seen_end[r],
            emb, mu, heap,
        )  # fmt: skip


_topn_dot_serial, _topn_dot_parallel = serial_and_parallel(_topn_dot_rows)


def _topn_dot(approx, prior32, prior, eps, cands, seen, emb, mu, out_codes, out_scores, n_threads):
    """Exact top ``n`` for a dot-product model from a block of approximate scores.

    Parameters
    ----------
    approx : float32 array, (b, c)
        ``Pu @ Q[cands].T`` from any BLAS (its rounding may depend on the block).
        Overwritten: stage 1 adds ``prior32`` in place.
    prior32 : float32 array, (c,)
        ``bi[cands] + prior`` rounded to float32: added to ``approx`` for stage 1.
    prior : float64 array, (c,)
        An extra per-candidate term added to the exact score (zeros for none).
    eps : float64 array, (b,)
        Bound on ``|approx + prior32 - (bi + p . q + prior)|`` plus the exact
        score's own rounding error (see :func:`dot_error_bound`).
    cands, out_codes, out_scores :
        As :func:`_topn_scores`.
    seen : tuple
        ``(seen_start, seen_end, seen)`` as :func:`_topn_scores` takes them.
    emb : :class:`~latentfactors.kernels.bundles.Embeddings`
        ``(Pu, Q, bu, bi)``: the block's user vectors (b, k) and biases (b,),
        all item vectors (n_items, k) and biases (n_items,), float32, by code.
    mu : float
        Global mean.
    n_threads : int
    """
    with_threads(
        n_threads,
        _topn_dot_parallel,
        approx,
        prior32,
        prior,
        eps,
        cands,
        seen,
        emb,
        float(mu),
        out_codes,
        out_scores,
    )


def dot_error_bound(Pu, bu, mu, q_norm_max, prior32_abs_max, k):
    """Per-row bound ``eps`` for :func:`_topn_dot`.

    A float32 dot product of length ``k`` is within ``gamma_k * sum|p_f q_f|
    <= gamma_k |p| |q|`` of the real value in any summation order
    (``gamma_k ~= k u``, ``u = 2**-24``); adding the item term in float32 costs
    one more rounding, and the exact path rounds each float32 product once
    (``<= u |p| |q|``) and sums in float64. The bound below doubles the sum of
    these terms for safety.
    """
    u32 = 2.0**-24
    u64 = 2.0**-53
    p_norm = np.sqrt(np.einsum("ij,ij->i", Pu, Pu, dtype=np.float64))
    inner = p_norm * q_norm_max
    eps32 = (k + 3) * u32 * (inner + prior32_abs_max)
    eps64 = (k + 6) * u64 * (inner + prior32_abs_max + abs(mu) + np.abs(bu.astype(np.float64)))
    return 2.0 * (eps32 + eps64) + 1e-300


def auto_batch(n_cands: int, bytes_per_score: int, budget: int = 64 * 2**20) -> int:
    """Rows per block so that a block of scores takes about ``budget`` bytes."""
    return int(max(1, min(4096, budget // max(1, n_cands * bytes_per_score))))
