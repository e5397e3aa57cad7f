"""Per-rating SGD for biased matrix factorisation, on a block schedule.

The ratings come laid out in a ``B x B`` grid of blocks, groups and runs
(:mod:`latentfactors.kernels.layout`, which explains why). An epoch runs
``B`` rounds; a round holds ``B`` blocks that share no user stripe and no
item stripe, so they can run side by side on threads without touching the
same rows.

A thread takes the first block, in round order, that no thread has taken
and whose last earlier block on its user stripe and last on its item stripe
are done. Every row then sees the same updates in the same order as if the
rounds ran one after another, so one and many threads give bit-identical
models, but a thread that is ahead need not wait for the rest of its round,
which matters on a shared machine whose cores run at unequal speeds
(``python benchmarks/block_waits.py``, ``benchmarks/results/sgd-adam-layout.txt``).
A thread that finds no free block spins, which suits one thread per core,
the default.

Every epoch visits a block's runs in a fresh random order, and each run's
groups in turn from a random first group, wrapping round. Each block draws
its random numbers from its own seed: first the order of its runs, then,
run by run, the first group (for runs of more than one) and each group's
starting point. A group that is the whole block is Fisher-Yates shuffled
instead.

Within a run, grouped ratings go two groups at a time, one rating of each in
turn: consecutive updates of one user each wait for the last (the user's row
is read right after it was written), while two users' updates can overlap in
the core. That is just another fixed order of the same updates.

The loop is bound by the latency of loading factor rows, so the kernel
prefetches them (see :mod:`latentfactors.kernels._prefetch`; a prefetch
changes no value): the item rows a few updates ahead along each group's
sweep, wrapping round with it, and, as a pair of groups starts, the next
pair's user rows and first item rows. For that, a run draws the starting
points of all its groups before it starts, in the order they were always
drawn. Prefetching past a group's wrap and into the next pair matters most
when users have few ratings per block, so that most updates are among a
group's first few (``python benchmarks/sgd_versions.py --rev REV``,
``benchmarks/results/sgd-versions.txt``).

Update for a rating ``r`` of user ``u`` on item ``i`` (``lr`` learning rate):

    e     = r - (mu + bu[u] + bi[i] + P[u] . Q[i])
    bu[u] += lr * (e - reg_bias * bu[u])
    bi[i] += lr * (e - reg_bias * bi[i])
    P[u]  += lr * (e * Q[i] - reg * P[u])      (both with the old P[u], Q[i])
    Q[i]  += lr * (e * P[u] - reg * Q[i])

An epoch runs as calls of :func:`_sgd_rounds` over consecutive rounds, about a
quarter second of work each, so that Ctrl-C takes effect between them (Numba
code cannot be interrupted). Each block writes its squared errors to its own
slot, summed in block order after the last call, so the cut changes no bit.
"""

from __future__ import annotations

from collections import namedtuple

import numba
import numpy as np

from latentfactors.kernels import _atomic
from latentfactors.kernels._config import JIT, run_kernel, serial_and_parallel, units_per_call
from latentfactors.kernels._prefetch import prefetch_row
from latentfactors.kernels._random import _below, _shuffle_ints, _shuffle_triples
from latentfactors.kernels.layout import EpochPlan

# Item rows are fetched this many updates ahead of their use (see _prefetch).
PREFETCH_AHEAD = 4

#: The scalars of an update, all float32: the global mean ``mu``, the learning
#: rate ``lr`` and the penalties ``reg`` (factors) and ``reg_bias`` (biases).
SGDHyper = namedtuple("SGDHyper", "mu lr reg reg_bias")


@numba.njit(inline="always", **JIT)
def _update(u, items, ratings, idx, P, Q, bu, bi, mu, lr, shrink, reg_bias):
    """The SGD update for rating ``idx`` by user ``u``; returns e**2.

    ``shrink`` is ``1 - lr * reg``.
    """
    i = items[idx]
    p = P[u]
    q = Q[i]
    dot = np.float32(0.0)
    for f in range(P.shape[1]):
        dot += p[f] * q[f]
    e = ratings[idx] - (mu + bu[u] + bi[i] + dot)
    bu[u] += lr * (e - reg_bias * bu[u])
    bi[i] += lr * (e - reg_bias * bi[i])
    step = lr * e
    for f in range(P.shape[1]):
        pf = p[f]
        qf = q[f]
        p[f] = shrink * pf + step * qf
        q[f] = shrink * qf + step * pf
    return e * e


@numba.njit(**JIT)
def _sgd_range(users, user, items, ratings, lo, hi, emb, hyper):
    """Per-rating SGD over ratings ``[lo, hi)`` in storage order; returns the sum of e**2.

    The ratings are all by ``user`` if it is a code (``>= 0``), else by ``users[idx]``.
    ``emb`` is the :class:`~latentfactors.kernels.bundles.Embeddings` to update,
    ``hyper`` the :class:`SGDHyper`.
    """
    P, Q, bu, bi = emb
    mu, lr, reg, reg_bias = hyper
    loss = 0.0
    shrink = np.float32(1.0) - lr * reg
    for idx in range(lo, hi):
        if idx + PREFETCH_AHEAD < hi:
            prefetch_row(Q, items[idx + PREFETCH_AHEAD])
        u = user if user >= 0 else users[idx]
        loss += _update(u, items, ratings, idx, P, Q, bu, bi, mu, lr, shrink, reg_bias)
    return loss


@numba.njit(**JIT)
def _sgd_pair(ua, ub, items, ratings, a_lo, a_hi, a, b_lo, b_hi, b, emb, hyper):
    """Two groups' ratings interleaved: one of ``a``'s, one of ``b``'s, and so on.

    The groups hold the ratings of users ``ua`` and ``ub``.

    Each group is swept from its start (``a``, ``b``) to its end and then from
    its beginning, as a single group would be; when the shorter one is done the
    longer one goes on alone. Two users' updates do not wait on each other, so
    the core overlaps them. Item rows are prefetched along each sweep, past its
    wrap. (Written out four times: a Numba helper for it, even inlined, made
    the loop slower.) Returns the sum of e**2.
    """
    P, Q, bu, bi = emb
    mu, lr, reg, reg_bias = hyper
    loss = 0.0
    shrink = np.float32(1.0) - lr * reg
    na = a_hi - a_lo
    nb = b_hi - b_lo
    for _ in range(min(na, nb)):
        pa = a + PREFETCH_AHEAD
        if pa >= a_hi:
            pa -= na
        if pa < a_hi:
            prefetch_row(Q, items[pa])
        pb = b + PREFETCH_AHEAD
        if pb >= b_hi:
            pb -= nb
        if pb < b_hi:
            prefetch_row(Q, items[pb])
        loss += _update(ua, items, ratings, a, P, Q, bu, bi, mu, lr, shrink, reg_bias)
        a = a + 1 if a + 1 < a_hi else a_lo
        loss += _update(ub, items, ratings, b, P, Q, bu, bi, mu, lr, shrink, reg_bias)
        b = b + 1 if b + 1 < b_hi else b_lo
    for _ in range(na - nb):
        pa = a + PREFETCH_AHEAD
        if pa >= a_hi:
            pa -= na
        if pa < a_hi:
            prefetch_row(Q, items[pa])
        loss += _update(ua, items, ratings, a, P, Q, bu, bi, mu, lr, shrink, reg_bias)
        a = a + 1 if a + 1 < a_hi else a_lo
    for _ in range(nb - na):
        pb = b + PREFETCH_AHEAD
        if pb >= b_hi:
            pb -= nb
        if pb < b_hi:
            prefetch_row(Q, items[pb])
        loss += _update(ub, items, ratings, b, P, Q, bu, bi, mu, lr, shrink, reg_bias)
        b = b + 1 if b + 1 < b_hi else b_lo
    return loss


# Inlined into the rounds' parallel region, its only caller: compiled once there
# instead of also on its own, which shortens a first fit's compilation.
@numba.njit(inline="always", **JIT)
def _sgd_block(b, blocks, seeds, emb, hyper):
    """The SGD updates of block ``b``; returns their sum of e**2 (see :func:`_sgd_block_epoch`)."""
    users = blocks.users
    group_users = blocks.group_users
    items = blocks.items
    ratings = blocks.ratings
    group_ptr = blocks.group_ptr
    run_ptr = blocks.run_ptr
    block_runs = blocks.block_runs
    run_order = blocks.run_order
    reshuffle = blocks.reshuffle
    P = emb.P
    Q = emb.Q
    state = seeds[b] | np.uint64(1)
    state = _shuffle_ints(run_order, block_runs[b], block_runs[b + 1], state)
    # Scratch for a run: its groups in visiting order, and where each one's sweep starts.
    most = 0
    for j in range(block_runs[b], block_runs[b + 1]):
        run = run_order[j]
        most = max(most, run_ptr[run + 1] - run_ptr[run])
    visit = np.empty(most, dtype=np.int64)
    starts = np.empty(most, dtype=np.int64)
    loss = 0.0
    for j in range(block_runs[b], block_runs[b + 1]):
        run = run_order[j]
        g_lo = run_ptr[run]
        g_hi = run_ptr[run + 1]
        n = g_hi - g_lo
        g = g_lo
        if n > 1:
            state, s = _below(state, n)
            g += s
        if reshuffle:
            for _ in range(n):
                lo = group_ptr[g]
                hi = group_ptr[g + 1]
                g = g + 1 if g + 1 < g_hi else g_lo
                state = _shuffle_triples(users, items, ratings, lo, hi, state)
                loss += _sgd_range(users, np.int32(-1), items, ratings, lo, hi, emb, hyper)
            continue
        # Every group's starting point, drawn up front in visiting order, so
        # that each pair can prefetch the next pair's first item rows.
        for c in range(n):
            lo = group_ptr[g]
            hi = group_ptr[g + 1]
            start = lo
            if hi > lo:
                state, s = _below(state, hi - lo)
                start += s
            visit[c] = g
            starts[c] = start
            g = g + 1 if g + 1 < g_hi else g_lo
        for c in range(0, n, 2):
            ga = visit[c]
            lo = group_ptr[ga]
            hi = group_ptr[ga + 1]
            if c + 1 == n:  # the last group of an odd run, alone
                u = group_users[ga]
                loss += _sgd_range(users, u, items, ratings, starts[c], hi, emb, hyper)
                loss += _sgd_range(users, u, items, ratings, lo, starts[c], emb, hyper)
                continue
            for nxt in range(c + 2, min(c + 4, n)):  # the next pair's user rows and first items
                prefetch_row(P, group_users[visit[nxt]])
                n_lo = group_ptr[visit[nxt]]
                n_hi = group_ptr[visit[nxt] + 1]
                x = starts[nxt]
                for _ in range(min(PREFETCH_AHEAD, n_hi - n_lo)):
                    prefetch_row(Q, items[x])
                    x = x + 1 if x + 1 < n_hi else n_lo
            gb = visit[c + 1]
            loss += _sgd_pair(
                group_users[ga],
                group_users[gb],
                items,
                ratings,
                lo,
                hi,
                starts[c],
                group_ptr[gb],
                group_ptr[gb + 1],
                starts[c + 1],
                emb,
                hyper,
            )
    return loss


@numba.njit(**JIT)
def _block_waits(schedule):
    """What each block waits for: ``(after_u, after_i)``, indexed by round-order position.

    Block ``k`` (``schedule.ravel()[k]``; block ``b`` covers user stripe
    ``b // B`` and item stripe ``b % B`` of a ``B``-wide grid) may start once
    block ``after_u[k]``, the last earlier one on its user stripe, and block
    ``after_i[k]``, the last earlier one on its item stripe, are done; ``-1``
    where there is none. Waiting for the last one of each is enough: it
    waited for the one before it.
    """
    n_rounds, width = schedule.shape
    n_blocks = n_rounds * width
    after_u = np.empty(n_blocks, dtype=np.int64)
    after_i = np.empty(n_blocks, dtype=np.int64)
    last_u = np.full(width, -1, dtype=np.int64)
    last_i = np.full(width, -1, dtype=np.int64)
    for k in range(n_blocks):
        b = schedule[k // width, k % width]
        if b < 0 or b >= width * width:
            raise ValueError("schedule holds a block id outside the grid")
        after_u[k] = last_u[b // width]
        after_i[k] = last_i[b % width]
        last_u[b // width] = k
        last_i[b % width] = k
    return after_u, after_i


# A block's state in ``sync[1 + k]``.
WAITING, RUNNING, DONE = 0, 1, 2


@numba.njit(**JIT)
def _free_block(sync, after_u, after_i):
    """Take the first waiting block whose stripes are free; its position, or -1 if none."""
    for k in range(len(after_u)):
        if _atomic.load(sync, k + 1) != WAITING:
            continue
        u = after_u[k]
        i = after_i[k]
        if u >= 0 and _atomic.load(sync, u + 1) != DONE:
            continue
        if i >= 0 and _atomic.load(sync, i + 1) != DONE:
            continue
        if _atomic.compare_exchange(sync, k + 1, WAITING, RUNNING):
            return k
    return -1


# Estimated nanoseconds of one core per rating of an SGD update (near what
# benchmarks/results/sgd-adam-layout.txt measured). Only sizes an epoch's calls.
SGD_NS_PER_RATING = 10.0
SGD_NS_PER_FACTOR = 0.6


def _sgd_block_epoch(blocks, plan, emb, hyper):
    """One SGD epoch over the block schedule, on the current number of threads.

    Parameters
    ----------
    blocks : :class:`~latentfactors.kernels.layout.Blocks`
        The layout's arrays (from :meth:`~latentfactors.kernels.layout.BlockLayout.blocks`):

        * ``users``, ``items`` (int32) and ``ratings`` (float32), shape (n,):
          group ``g`` is ``[group_ptr[g], group_ptr[g + 1])`` (int64).
        * ``group_users``, int32 (n_groups,): without ``reshuffle``, the user
          of each group, ``users[group_ptr[g]]``: a group is read from its own
          ratings, not the user codes of every rating, which keeps that stream
          out of the cache. Unused (may be empty) with ``reshuffle``.
        * ``run_ptr``, int64 (n_runs + 1,): run ``r`` is the consecutive
          groups ``[run_ptr[r], run_ptr[r + 1])``; never empty.
        * ``block_runs``, int64 (B * B + 1,): block ``b`` owns the entries
          ``block_runs[b]:block_runs[b + 1]`` of ``run_order``.
        * ``run_order``, int64 (n_runs,): run ids, each block's segment
          reshuffled in place every epoch.
        * ``reshuffle``, bool: ``True``: Fisher-Yates shuffle every group in
          place before sweeping it. ``False``: sweep every group from a random
          starting point to its end, then from its start (one random draw per
          group; the groups were shuffled once when the layout was built), the
          groups of a run taken in pairs whose sweeps are interleaved (see
          :func:`_sgd_pair`). Every group must then hold the ratings of one user.
        * ``sync``, int64, at least ``n_blocks + 1`` long: scratch shared by
          the threads, overwritten: how many blocks have been taken, then each
          block's state (0 waiting, 1 running, 2 done).
    plan : :class:`~latentfactors.kernels.layout.EpochPlan`
        ``schedule`` (n_rounds, B) int64: ``schedule[t]`` lists the blocks of
        round ``t``; they share no row or column stripe. Usually all ``B``
        rounds; fewer run just those. ``seeds`` (B * B,) uint64: per-block
        seeds for this epoch (non-zero).
    emb : :class:`~latentfactors.kernels.bundles.Embeddings`
        float32 ``P`` (n_users, k), ``Q`` (n_items, k), ``bu``, ``bi``; updated in place.
    hyper : :class:`SGDHyper`
        float32 ``mu``, ``lr``, ``reg``, ``reg_bias``.

    Returns
    -------
    float
        Sum of squared errors seen during the epoch (each before its update).

    The rounds run in calls of :func:`_sgd_rounds` over consecutive ranges of
    about :data:`~latentfactors.kernels._config.CALL_NS` of work, so that
    Python handles an interrupt between them (a 100M-rating epoch takes
    seconds on one core). A block's updates depend only on its seed and on the
    blocks before it on its stripes, which earlier calls finished; each
    block's squared errors go to its slot of one array, summed in block order
    at the end. So any cut gives bit-identical results.
    """
    schedule, seeds = plan
    n_rounds, width = schedule.shape
    ns_per_round = (
        len(blocks.ratings) / width * (SGD_NS_PER_RATING + SGD_NS_PER_FACTOR * emb.P.shape[1])
    )
    per_call = units_per_call(n_rounds, ns_per_round)
    losses = np.zeros(len(blocks.block_runs) - 1)
    for first in range(0, n_rounds, per_call):
        part = EpochPlan(schedule[first : first + per_call], seeds)
        run_kernel(_sgd_rounds, blocks, part, emb, hyper, losses)
    return _sum_losses(losses)


def _sgd_rounds(blocks, plan, emb, hyper, losses):
    """The rounds ``plan.schedule`` of :func:`_sgd_block_epoch`: each block ``b``'s
    updates, its sum of squared errors to ``losses[b]``."""
    schedule, seeds = plan
    sync = blocks.sync
    block_runs = blocks.block_runs
    n_rounds, width = schedule.shape
    n_blocks = n_rounds * width
    if len(sync) < n_blocks + 1:
        raise ValueError("sync must hold a counter and a flag per scheduled block")
    if len(block_runs) - 1 != width * width:
        raise ValueError("schedule must have one column per stripe of the grid")
    after_u, after_i = _block_waits(schedule)
    sync[: n_blocks + 1] = 0
    # One worker per block of a round: on fewer threads, a thread's first
    # worker takes blocks until none are left and the others find none. A
    # worker only ever waits holding no block, so none can wait for another.
    for _ in numba.prange(width):
        while _atomic.load(sync, 0) < n_blocks:
            k = _free_block(sync, after_u, after_i)
            if k < 0:
                continue  # every untaken block still waits for its stripes
            _atomic.fetch_add(sync, 0, 1)
            b = schedule[k // width, k % width]
            losses[b] = _sgd_block(b, blocks, seeds, emb, hyper)
            _atomic.store(sync, k + 1, DONE)


@numba.njit(**JIT)
def _sum_losses(losses):
    """The blocks' sums of squared errors, added in block order."""
    total = 0.0
    for b in range(len(losses)):
        total += losses[b]
    return total


_sgd_rounds_serial, _sgd_rounds = serial_and_parallel(_sgd_rounds)
