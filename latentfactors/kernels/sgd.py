"""Per-rating SGD for biased matrix factorisation, on a block schedule.

The ratings are laid out once per fit so that each block of a ``B x B`` grid
(users split into ``B`` stripes, items into ``B`` stripes) is contiguous. An
epoch runs ``B`` rounds; a round holds ``B`` blocks that share no user stripe
and no item stripe, so they can run side by side on threads without touching
the same rows. Each block shuffles its own ratings in place with its own seed
and then applies the per-rating updates in that order. Nothing depends on how
blocks are spread over threads, so one and many threads give bit-identical
models. With ``B == 1`` this is the classic loop over a fresh shuffle.

Update for a rating ``r`` of user ``u`` on item ``i`` (``lr`` learning rate):

    e     = r - (mu + bu[u] + bi[i] + P[u] . Q[i])
    bu[u] += lr * (e - reg_bias * bu[u])
    bi[i] += lr * (e - reg_bias * bi[i])
    P[u]  += lr * (e * Q[i] - reg * P[u])      (both with the old P[u], Q[i])
    Q[i]  += lr * (e * P[u] - reg * Q[i])
"""

from __future__ import annotations

import numba
import numpy as np

from latentfactors.kernels._config import JIT, PARALLEL_JIT


@numba.njit(**JIT)
def _xorshift(state):
    state ^= state << np.uint64(13)
    state ^= state >> np.uint64(7)
    state ^= state << np.uint64(17)
    return state


@numba.njit(**JIT)
def _shuffle_range(users, items, ratings, lo, hi, seed):
    """Fisher-Yates shuffle of the triples in ``[lo, hi)``, in place."""
    state = np.uint64(seed) | np.uint64(1)
    for j in range(hi - 1, lo, -1):
        state = _xorshift(state)
        k = lo + np.int64((state >> np.uint64(11)) % np.uint64(j - lo + 1))
        tu = users[j]
        users[j] = users[k]
        users[k] = tu
        ti = items[j]
        items[j] = items[k]
        items[k] = ti
        tr = ratings[j]
        ratings[j] = ratings[k]
        ratings[k] = tr


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


@numba.njit(**JIT)
def _sgd_range(users, items, ratings, lo, hi, P, Q, bu, bi, mu, lr, reg, reg_bias):
    """Per-rating SGD over ratings ``[lo, hi)`` in storage order; returns the sum of e**2."""
    k = P.shape[1]
    loss = 0.0
    shrink = np.float32(1.0) - lr * reg
    for idx in range(lo, hi):
        u = users[idx]
        i = items[idx]
        p = P[u]
        q = Q[i]
        dot = np.float32(0.0)
        for f in range(k):
            dot += p[f] * q[f]
        e = ratings[idx] - (mu + bu[u] + bi[i] + dot)
        loss += e * e
        bu[u] += lr * (e - reg_bias * bu[u])
        bi[i] += lr * (e - reg_bias * bi[i])
        step = lr * e
        for f in range(k):
            pf = p[f]
            qf = q[f]
            p[f] = shrink * pf + step * qf
            q[f] = shrink * qf + step * pf
    return loss


@numba.njit(**PARALLEL_JIT)
def _sgd_block_epoch(
    users, items, ratings, block_ptr, schedule, seeds, P, Q, bu, bi, mu, lr, reg, reg_bias
):
    """One SGD epoch over the block schedule.

    Parameters
    ----------
    users, items : int32 arrays, shape (n,)
        Dense codes, laid out so that block ``b`` is ``[block_ptr[b], block_ptr[b + 1])``.
    ratings : float32 array, shape (n,)
    block_ptr : int64 array, shape (B * B + 1,)
    schedule : int64 array, shape (B, B)
        ``schedule[t]`` lists the blocks of round ``t``; they share no row or column stripe.
    seeds : uint64 array, shape (B * B,)
        Per-block shuffle seeds; 0 leaves a block in its current order.
    P, Q : float32 arrays, shapes (n_users, k) and (n_items, k); updated in place.
    bu, bi : float32 arrays; updated in place.
    mu, lr, reg, reg_bias : float32 scalars.

    Returns
    -------
    float
        Sum of squared errors seen during the epoch (each before its update).
    """
    n_rounds, width = schedule.shape
    losses = np.zeros(len(block_ptr) - 1)
    for t in range(n_rounds):
        for a in numba.prange(width):
            b = schedule[t, a]
            lo = block_ptr[b]
            hi = block_ptr[b + 1]
            if seeds[b] != 0:
                _shuffle_range(users, items, ratings, lo, hi, seeds[b])
            losses[b] = _sgd_range(
                users, items, ratings, lo, hi, P, Q, bu, bi, mu, lr, reg, reg_bias
            )
    total = 0.0
    for b in range(len(losses)):
        total += losses[b]
    return total


@numba.njit(**JIT)
def _block_ids(users, items, ublock, iblock, width):
    """Block id of every rating, and the start of every block in the sorted layout."""
    n = len(users)
    bid = np.empty(n, dtype=np.int32)
    counts = np.zeros(width * width + 1, dtype=np.int64)
    for k in range(n):
        b = ublock[users[k]] * width + iblock[items[k]]
        bid[k] = b
        counts[b + 1] += 1
    for b in range(width * width):
        counts[b + 1] += counts[b]
    return bid, counts


@numba.njit(**JIT)
def _scatter(src, bid, block_ptr, out):
    """Stable counting-sort scatter of ``src`` into ``out`` by block id."""
    cursor = block_ptr[:-1].copy()
    for k in range(len(src)):
        b = bid[k]
        out[cursor[b]] = src[k]
        cursor[b] += 1
