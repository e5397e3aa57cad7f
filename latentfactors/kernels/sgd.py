"""Per-rating SGD for biased matrix factorisation, on a block schedule.

The ratings are laid out once per fit so that each block of a ``B x B`` grid
(users split into ``B`` stripes, items into ``B`` stripes) is contiguous. An
epoch runs ``B`` rounds; a round holds ``B`` blocks that share no user stripe
and no item stripe, so they can run side by side on threads without touching
the same rows.

A thread takes the first block, in round order, that no thread has taken
and whose last earlier block on its user stripe and last on its item stripe
are done. Every row then sees the same updates in the same order as if the
rounds ran one after another, so one and many threads give bit-identical
models, but a thread that is ahead need not wait for the rest of its round.
The cores of a shared machine run at unequal speeds: at 20M ratings two
threads ran a median 1.19x faster than with a barrier after every round
(``python benchmarks/block_waits.py``). A thread that finds no free block
spins, which suits one thread per core, the default.

Inside a block the ratings form *groups*: either the whole block (the
classic loop when ``B == 1``), Fisher-Yates shuffled every epoch, or, on data
too large for the cache, the ratings of one user in that block. The user's
row then stays in the core's cache for the group while the item rows of the
block's item stripe stay in cache too. Such a group was shuffled once when
the layout was built, and every epoch sweeps it from a fresh random starting
point: a user's dozen-odd ratings in a block gain nothing from a full
reshuffle, which costs a random draw and three swaps per rating.

Consecutive groups form *runs* of a few thousand ratings. Every epoch visits
a block's runs in a fresh random order, and each run's groups in turn from a
random first group, wrapping round. Within a run the ratings, the user rows
(numbered in group order) and the next groups are read in storage order, so
the hardware prefetchers stream them: visiting single groups in random order
instead made an epoch 1.7-2.3x slower at 20M ratings over several runs,
for no gain in accuracy (users land in runs at random when the layout is built). Each block
draws its random numbers from its own seed: first the order of its runs,
then, run by run, the first group (for runs of more than one) and each
group's starting point.

Within a run, grouped ratings go two groups at a time, one rating of each in
turn: consecutive updates of one user each wait for the last (the user's row
is read right after it was written), while two users' updates can overlap in
the core. This is about 1.25x faster with the rows in cache, and is just
another fixed order of the same updates.

The loop is bound by the latency of loading factor rows, so the kernel
prefetches them (see :mod:`latentfactors.kernels._prefetch`; a prefetch
changes no value): the item rows a few updates ahead along each group's
sweep, wrapping round with it, and, as a pair of groups starts, the next
pair's user rows and first item rows. For that, a run draws the starting
points of all its groups before it starts, in the order they were always
drawn. When a user has only a few ratings in a block, most updates are among
a group's first few: at 2M ratings (3.1 per group) this ran 1.22x (one
thread) and 1.27x (two) as fast as prefetching within a group only, 1.17x
at 5M (6.5 per group), and the same at 20M (25 per group)
(``python benchmarks/sgd_versions.py --rev e7f22ca --ratings N``).
What streams through the cache is kept small, so that the item stripe stays
there: a group's user code is read once per group (``group_users``), not
with every rating, and the layout's factor rows start on a cache line (1.1-1.2x
faster at 20M ratings with 32 factors: ``python benchmarks/row_alignment.py``).

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

from latentfactors.kernels import _atomic
from latentfactors.kernels._config import JIT, PARALLEL_JIT
from latentfactors.kernels._prefetch import prefetch_row

# Item rows are fetched this many updates ahead of their use (see _prefetch).
PREFETCH_AHEAD = 4


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
def _shuffle_groups(users, items, ratings, group_ptr, seed):
    """Fisher-Yates shuffle of every group ``[group_ptr[g], group_ptr[g + 1])``, in place."""
    state = np.uint64(seed) | np.uint64(1)
    for g in range(len(group_ptr) - 1):
        state = _shuffle_triples(users, items, ratings, group_ptr[g], group_ptr[g + 1], state)


@numba.njit(**JIT)
def _renumber(codes, new_of_old):
    """``codes[k] = new_of_old[codes[k]]`` in place (no temporary the size of ``codes``)."""
    for k in range(len(codes)):
        codes[k] = new_of_old[codes[k]]


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
def _sgd_range(users, user, items, ratings, lo, hi, P, Q, bu, bi, mu, lr, reg, reg_bias):
    """Per-rating SGD over ratings ``[lo, hi)`` in storage order; returns the sum of e**2.

    The ratings are all by ``user`` if it is a code (``>= 0``), else by ``users[idx]``.
    """
    loss = 0.0
    shrink = np.float32(1.0) - lr * reg
    for idx in range(lo, hi):
        if idx + PREFETCH_AHEAD < hi:
            prefetch_row(Q, items[idx + PREFETCH_AHEAD])
        u = user if user >= 0 else users[idx]
        loss += _update(u, items, ratings, idx, P, Q, bu, bi, mu, lr, shrink, reg_bias)
    return loss


@numba.njit(**JIT)
def _sgd_pair(
    ua, ub, items, ratings, a_lo, a_hi, a, b_lo, b_hi, b, P, Q, bu, bi, mu, lr, reg, reg_bias
):
    """Two groups' ratings interleaved: one of ``a``'s, one of ``b``'s, and so on.

    The groups hold the ratings of users ``ua`` and ``ub``.

    Each group is swept from its start (``a``, ``b``) to its end and then from
    its beginning, as a single group would be; when the shorter one is done the
    longer one goes on alone. Two users' updates do not wait on each other, so
    the core overlaps them: about 1.25x the updates per second of one group at
    a time when the rows are in cache. Item rows are prefetched along each
    sweep, past its wrap. (Written out four times: a Numba helper for it,
    even inlined, made the loop 1.1-1.2x slower.) Returns the sum of e**2.
    """
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


@numba.njit(**JIT)
def _sgd_block(
    b,
    users,
    group_users,
    items,
    ratings,
    group_ptr,
    run_ptr,
    block_runs,
    run_order,
    seeds,
    reshuffle,
    P,
    Q,
    bu,
    bi,
    mu,
    lr,
    reg,
    reg_bias,
):
    """The SGD updates of block ``b``; returns their sum of e**2 (see :func:`_sgd_block_epoch`)."""
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
                loss += _sgd_range(
                    users, -1, items, ratings, lo, hi, P, Q, bu, bi, mu, lr, reg, reg_bias
                )
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
                loss += _sgd_range(
                    users, u, items, ratings, starts[c], hi, P, Q, bu, bi, mu, lr, reg, reg_bias
                )
                loss += _sgd_range(
                    users, u, items, ratings, lo, starts[c], P, Q, bu, bi, mu, lr, reg, reg_bias
                )
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
                P,
                Q,
                bu,
                bi,
                mu,
                lr,
                reg,
                reg_bias,
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


@numba.njit(**PARALLEL_JIT)
def _sgd_block_epoch(
    users,
    group_users,
    items,
    ratings,
    group_ptr,
    run_ptr,
    block_runs,
    run_order,
    schedule,
    seeds,
    reshuffle,
    sync,
    P,
    Q,
    bu,
    bi,
    mu,
    lr,
    reg,
    reg_bias,
):
    """One SGD epoch over the block schedule, on the current number of threads.

    Parameters
    ----------
    users, items : int32 arrays, shape (n,)
        Dense codes; group ``g`` is ``[group_ptr[g], group_ptr[g + 1])``.
    group_users : int32 array, shape (n_groups,)
        Without ``reshuffle``, the user of each group, ``users[group_ptr[g]]``:
        a group is read from its own ratings, not the user codes of every
        rating, which keeps that stream out of the cache. Unused (may be
        empty) with ``reshuffle``.
    ratings : float32 array, shape (n,)
    group_ptr : int64 array, shape (n_groups + 1,)
    run_ptr : int64 array, shape (n_runs + 1,)
        Run ``r`` is the consecutive groups ``[run_ptr[r], run_ptr[r + 1])``; never empty.
    block_runs : int64 array, shape (B * B + 1,)
        Block ``b`` owns the entries ``block_runs[b]:block_runs[b + 1]`` of ``run_order``.
    run_order : int64 array, shape (n_runs,)
        Run ids, each block's segment reshuffled in place every epoch.
    schedule : int64 array, shape (n_rounds, B)
        ``schedule[t]`` lists the blocks of round ``t``; they share no row or column
        stripe. Usually all ``B`` rounds; fewer run just those.
    seeds : uint64 array, shape (B * B,)
        Per-block seeds for this epoch (non-zero).
    reshuffle : bool
        ``True``: Fisher-Yates shuffle every group in place before sweeping
        it. ``False``: sweep every group from a random starting point to its
        end, then from its start (one random draw per group; the groups were
        shuffled once when the layout was built), the groups of a run taken
        in pairs whose sweeps are interleaved (see :func:`_sgd_pair`). Every
        group must then hold the ratings of one user.
    sync : int64 array, at least ``n_blocks + 1`` long
        Scratch shared by the threads, overwritten: how many blocks have been
        taken, then each block's state (0 waiting, 1 running, 2 done).
    P, Q : float32 arrays, shapes (n_users, k) and (n_items, k); updated in place.
    bu, bi : float32 arrays; updated in place.
    mu, lr, reg, reg_bias : float32 scalars.

    Returns
    -------
    float
        Sum of squared errors seen during the epoch (each before its update).
    """
    n_rounds, width = schedule.shape
    n_blocks = n_rounds * width
    if len(sync) < n_blocks + 1:
        raise ValueError("sync must hold a counter and a flag per scheduled block")
    if len(block_runs) - 1 != width * width:
        raise ValueError("schedule must have one column per stripe of the grid")
    after_u, after_i = _block_waits(schedule)
    sync[: n_blocks + 1] = 0
    losses = np.zeros(len(block_runs) - 1)
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
            losses[b] = _sgd_block(
                b,
                users,
                group_users,
                items,
                ratings,
                group_ptr,
                run_ptr,
                block_runs,
                run_order,
                seeds,
                reshuffle,
                P,
                Q,
                bu,
                bi,
                mu,
                lr,
                reg,
                reg_bias,
            )
            _atomic.store(sync, k + 1, DONE)
    total = 0.0
    for b in range(len(losses)):
        total += losses[b]
    return total


@numba.njit(**JIT)
def _cell_keys(users, items, ublock, iblock, width, keys):
    """Block of every rating, ``ublock[u] * width + iblock[i]``; returns each block's start."""
    ptr = np.zeros(width * width + 1, dtype=np.int64)
    for k in range(len(users)):
        c = ublock[users[k]] * width + iblock[items[k]]
        keys[k] = c
        ptr[c + 1] += 1
    for c in range(width * width):
        ptr[c + 1] += ptr[c]
    return ptr


@numba.njit(**JIT)
def _user_cells(users, urank, block_ptr, stripe):
    """Start of every (block, user) cell, users numbered ``urank`` within their stripe.

    ``users`` must already be in block order (``block_ptr``); cell
    ``b * stripe + urank[u]`` holds block ``b``'s ratings by user ``u``.
    """
    n_blocks = len(block_ptr) - 1
    ptr = np.zeros(n_blocks * stripe + 1, dtype=np.int64)
    for b in range(n_blocks):
        for k in range(block_ptr[b], block_ptr[b + 1]):
            ptr[b * stripe + urank[users[k]] + 1] += 1
    for c in range(n_blocks * stripe):
        ptr[c + 1] += ptr[c]
    return ptr


# Buckets of the first pass of _group_by_user: few enough that every bucket's
# write position stays in cache.
RADIX_BITS = 8


@numba.njit(**PARALLEL_JIT)
def _group_by_user(col, users, urank, block_ptr, stripe):
    """Within every block, stably reorder ``col`` by the user rank of ``users``.

    A two-pass counting sort per block (by the high bits of the rank, then by
    the low bits within each bucket): every pass writes to few places at a
    time, where one counting sort over every (block, user) cell of the whole
    array writes all over memory. Blocks are independent and run in
    parallel. ``col`` may be ``users`` itself, but then it must come last.
    """
    low_bits = 0
    while (stripe - 1) >> (low_bits + RADIX_BITS) > 0:
        low_bits += 1
    n_high = ((stripe - 1) >> low_bits) + 1
    n_low = 1 << low_bits
    for b in numba.prange(len(block_ptr) - 1):
        lo = block_ptr[b]
        hi = block_ptr[b + 1]
        tmp = np.empty(hi - lo, dtype=col.dtype)
        tmp_rank = np.empty(hi - lo, dtype=np.int32)
        high = np.zeros(n_high + 1, dtype=np.int64)
        for k in range(lo, hi):
            high[(urank[users[k]] >> low_bits) + 1] += 1
        for h in range(n_high):
            high[h + 1] += high[h]
        bounds = high.copy()
        for k in range(lo, hi):
            r = urank[users[k]]
            h = r >> low_bits
            tmp[high[h]] = col[k]
            tmp_rank[high[h]] = r
            high[h] += 1
        low = np.empty(n_low, dtype=np.int64)
        for h in range(n_high):
            start = bounds[h]
            stop = bounds[h + 1]
            low[:] = 0
            for k in range(start, stop):
                low[tmp_rank[k] & (n_low - 1)] += 1
            total = lo + start
            for r in range(n_low):
                count = low[r]
                low[r] = total
                total += count
            for k in range(start, stop):
                r = tmp_rank[k] & (n_low - 1)
                col[low[r]] = tmp[k]
                low[r] += 1


@numba.njit(**JIT)
def _scatter(src, keys, ptr, out):
    """Stable counting-sort scatter of ``src`` into ``out`` by key."""
    cursor = ptr[:-1].copy()
    for k in range(len(src)):
        c = keys[k]
        out[cursor[c]] = src[k]
        cursor[c] += 1
