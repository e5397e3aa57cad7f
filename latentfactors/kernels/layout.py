"""The block layout of SGD's training ratings, built once per fit.

The ratings are laid out so that each block of a ``B x B`` grid (users split
into ``B`` stripes, items into ``B`` stripes) is contiguous: an epoch
(:func:`latentfactors.kernels.sgd._sgd_block_epoch`) runs blocks that share
no stripe side by side on threads. :func:`grid_plan` picks ``B`` from the
data alone, never from the thread count, so the layout and the model are the
same on any number of threads.

Inside a block the ratings form *groups*: either the whole block (when all
factor rows fit in the cache, ``B == 1``), Fisher-Yates shuffled every
epoch, or the ratings of one user in that block. The user's row then stays in
the core's cache for the group while the item rows of the block's item stripe
stay in cache too. Such a group is shuffled once here, and every epoch sweeps
it from a fresh random starting point: a user's dozen-odd ratings in a block
gain nothing from a full reshuffle, which costs a random draw and three swaps
per rating.

Consecutive groups form *runs* of about :data:`RUN_RATINGS` ratings, and an
epoch visits a block's runs in a fresh random order. Within a run the
ratings, the user rows and the next groups are read in storage order, so the
hardware prefetchers stream them, where visiting single groups in random
order leaves every group's first loads waiting on memory
(``benchmarks/results/sgd-runs-20M.txt``). Users are in random order within
their stripe, so they land in runs at random.

What streams through the cache is kept small, so that the item stripe stays
there: the rows are renumbered so that every stripe's users (items) are
consecutive, a block's item rows being one compact slice of memory; a
group's user code is read once per group (``group_users``), not with every
rating; and the training copies of the factor rows start on a cache line, so
a row straddles no more lines than it must (``python
benchmarks/row_alignment.py``, ``benchmarks/results/sgd-adam-layout.txt``).

This module imports only NumPy, Numba and the kernels' own modules: the
layout takes plain arrays, not a model's training data.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numba
import numpy as np

from latentfactors.kernels._config import (
    JIT,
    PARALLEL_MIN_VALUES,
    serial_and_parallel,
    with_threads,
)
from latentfactors.kernels._prefetch import aligned_empty
from latentfactors.kernels._random import _shuffle_triples
from latentfactors.kernels.bundles import Embeddings

# Factor rows (users + items) that fit in this many bytes stay in cache anyway:
# one block, shuffled as a whole.
CACHE_BYTES = 2 * 1024 * 1024
# Beyond that, a block's item rows should stay in the core's own cache while
# the user rows stream by group. Smaller stripes (larger B) keep them there on
# cores with less of it, at the price of more, smaller blocks; the measured
# budgets and grids are in benchmarks/results/grid-sizes-20M.txt
# (`python benchmarks/grid_sizes.py`).
STRIPE_BYTES = 2 * 1024 * 1024
# ...a block must hold enough ratings to amortise the round barrier...
MIN_RATINGS_PER_BLOCK = 1024
# ...and there should be enough blocks per round to balance the threads: B is
# rounded up to a multiple of GRID_STEP, so 1, 2 or 4 threads get equal shares.
MIN_GRID = 4
GRID_STEP = 4
# Groups are visited in runs of consecutive groups holding about this many
# ratings, long enough for the prefetchers to stream a run; a wide range of
# sizes does as well (benchmarks/results/sgd-runs-20M.txt,
# `python benchmarks/sgd_runs.py --run-ratings 1600 26000`).
RUN_RATINGS = 4096
# Buckets of the first pass of _group_by_user: few enough that every bucket's
# write position stays in cache.
RADIX_BITS = 8

#: The layout as :func:`~latentfactors.kernels.sgd._sgd_block_epoch` reads it
#: (see :class:`BlockLayout` for the fields; ``reshuffle`` is ``not by_user`` and
#: ``sync`` the threads' shared scratch).
Blocks = namedtuple(
    "Blocks",
    "users group_users items ratings group_ptr run_ptr block_runs run_order reshuffle sync",
)

#: One epoch's plan: ``schedule`` (n_rounds, B) int64, the blocks of each round,
#: which share no stripe; ``seeds`` (B * B,) uint64, every block's non-zero seed.
EpochPlan = namedtuple("EpochPlan", "schedule seeds")


def grid_plan(n_users: int, n_items: int, n_ratings: int, n_factors: int) -> tuple[int, bool]:
    """Side ``B`` of the ``B x B`` block grid, and whether to group ratings by user.

    Depends on the data only, never on the thread count. When all factor rows
    fit in :data:`CACHE_BYTES` there is one block, shuffled as a whole.
    Otherwise the ratings of each block are grouped by user (a user's row is
    reused across the group) and ``B`` is the smallest multiple of
    :data:`GRID_STEP` whose item stripes fit in :data:`STRIPE_BYTES`, but at
    least :data:`MIN_GRID`, and capped so that an average block holds
    :data:`MIN_RATINGS_PER_BLOCK` ratings.
    """
    row_bytes = 4 * (n_factors + 1)
    if (n_users + n_items) * row_bytes <= CACHE_BYTES:
        return 1, False
    by_cache = max(MIN_GRID, math.ceil(n_items * row_bytes / STRIPE_BYTES))
    by_cache = -(-by_cache // GRID_STEP) * GRID_STEP
    by_size = max(1, math.isqrt(n_ratings // MIN_RATINGS_PER_BLOCK))
    return int(max(1, min(by_cache, by_size))), True


def grid_size(n_users: int, n_items: int, n_ratings: int, n_factors: int) -> int:
    """Side ``B`` of the block grid (see :func:`grid_plan`)."""
    return grid_plan(n_users, n_items, n_ratings, n_factors)[0]


def balanced_stripes(codes: np.ndarray, n: int, width: int, rng) -> np.ndarray:
    """Assign ``n`` ids to ``width`` stripes of about equal rating counts, in random order."""
    if width == 1:
        return np.zeros(n, dtype=np.int32)
    counts = np.bincount(codes, minlength=n).astype(np.int64)
    order = rng.permutation(n)
    before = np.cumsum(counts[order]) - counts[order]
    stripes = np.empty(n, dtype=np.int32)
    stripes[order] = np.minimum(width - 1, before * width // max(1, counts.sum()))
    return stripes


class BlockLayout:
    """Training ratings laid out once per fit: blocks contiguous, groups inside them.

    Parameters
    ----------
    columns : dict
        ``{"users": int32, "items": int32, "ratings": float32}`` arrays of equal
        length, the encoded ratings. The layout takes them over: it renumbers
        the codes in place and pops each column from the dict as soon as it has
        a reordered copy, so that no second copy stays alive (the caller should
        hold no other reference).
    n_users, n_items : int
        Number of user and item codes.
    width : int
        Side ``B`` of the block grid (see :func:`grid_plan`).
    rng : numpy.random.Generator
    by_user : bool, default False
        Group each block's ratings by user (and renumber the rows).
    n_threads : int, default 1
        Only sets how many threads build it; the layout is the same.

    Attributes
    ----------
    users, items, ratings : the encoded ratings, reordered (the layout owns them).
    group_ptr : int64 array
        Group ``g`` is ``[group_ptr[g], group_ptr[g + 1])``.
    group_users : int32 array
        With ``by_user``, the user of every group; empty without.
    block_groups : int64 array, shape (B * B + 1,)
        Block ``b``'s groups are ``block_groups[b]`` to ``block_groups[b + 1] - 1``.
    run_ptr : int64 array
        Run ``r`` is the groups ``run_ptr[r]`` to ``run_ptr[r + 1] - 1``: consecutive
        groups of one block holding about :data:`RUN_RATINGS` ratings (with
        ``by_user``), or one group per run (without).
    block_runs : int64 array, shape (B * B + 1,)
        Block ``b``'s runs are ``run_order[block_runs[b]:block_runs[b + 1]]``.
    run_order : int64 array
        The order in which a block visits its runs; reshuffled every epoch.
    user_rows, item_rows : int32 arrays or None
        With ``by_user``, the rows are renumbered so that every stripe's users
        (items) are consecutive: ``users`` and ``items`` hold the new numbers,
        and new row ``r`` is the model's row ``user_rows[r]`` (``item_rows[r]``).
        A block's item rows and biases are then one compact slice of memory
        instead of rows scattered over the whole array. Users are in random
        order within their stripe, and a block's groups follow that order, so
        a run reads its user rows in storage order. ``None`` without.
    """

    def __init__(
        self,
        columns: dict,
        n_users: int,
        n_items: int,
        width: int,
        rng,
        by_user: bool = False,
        n_threads: int = 1,
    ):
        self.width = width
        self.by_user = by_user
        ublock = balanced_stripes(columns["users"], n_users, width, rng)
        iblock = balanced_stripes(columns["items"], n_items, width, rng)
        self.user_rows = self.item_rows = None
        if by_user:
            # Random order within each stripe: runs then hold users drawn at random.
            self.user_rows = np.lexsort((rng.permutation(n_users), ublock)).astype(np.int32)
            self.item_rows = np.argsort(iblock, kind="stable").astype(np.int32)
            _renumber(columns["users"], _inverse(self.user_rows))
            _renumber(columns["items"], _inverse(self.item_rows))
            ublock, iblock = ublock[self.user_rows], iblock[self.item_rows]
        stripe = 0
        urank = np.zeros(n_users, dtype=np.int32)
        if by_user:
            # Number the users of each stripe 0..size-1, so (block, user) is a dense key.
            order = np.argsort(ublock, kind="stable")
            sizes = np.bincount(ublock, minlength=width)
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            urank[order] = np.arange(n_users) - np.repeat(starts, sizes)
            stripe = int(sizes.max())
        keys = np.empty(len(columns["ratings"]), dtype=np.int32)
        ptr = _cell_keys(columns["users"], columns["items"], ublock, iblock, width, keys)
        # Scatter one column at a time into block order and drop the source at
        # once, so the peak stays near one extra column beyond the encoded arrays.
        for name in ("users", "items", "ratings"):
            src = columns.pop(name)
            out = np.empty_like(src)
            _scatter(_bits(src, readonly=True), keys, ptr, _bits(out))
            setattr(self, name, out)
            del src
        del keys
        if by_user:
            # Then group each block by user (the users column last: it holds the keys).
            block_ptr = ptr
            ptr = _user_cells(self.users, urank, block_ptr, stripe)
            for col in (self.items, self.ratings, self.users):
                threads = n_threads if len(col) >= PARALLEL_MIN_VALUES else 1
                with_threads(
                    threads, _group_by_user, _bits(col), self.users, urank, block_ptr, stripe
                )
            cells = np.flatnonzero(np.diff(ptr))
            self.group_ptr = np.append(ptr[cells], ptr[-1])
            self.block_groups = np.searchsorted(
                cells, np.arange(width * width + 1, dtype=np.int64) * stripe
            ).astype(np.int64)
            # Shuffled once here; each epoch then only picks where to start (see the kernel).
            _shuffle_groups(
                self.users,
                self.items,
                self.ratings,
                self.group_ptr,
                rng.integers(1, 2**63, dtype=np.uint64),
            )
            self.run_ptr, self.block_runs = _runs(self.group_ptr, self.block_groups, RUN_RATINGS)
            self.group_users = self.users[self.group_ptr[:-1]]
        else:
            self.group_ptr = ptr
            self.block_groups = np.arange(width * width + 1, dtype=np.int64)
            self.run_ptr = self.block_runs = self.block_groups
            self.group_users = np.zeros(0, dtype=np.int32)
        self.run_order = np.arange(len(self.run_ptr) - 1, dtype=np.int64)
        self.sync = np.zeros(width * width + 1, dtype=np.int64)

    @property
    def block_ptr(self) -> np.ndarray:
        """Start of every block in the layout."""
        return self.group_ptr[self.block_groups]

    def schedule(self, rng) -> EpochPlan:
        """A fresh epoch plan: shuffled rounds of disjoint blocks, and per-block seeds."""
        w = self.width
        pu = rng.permutation(w)
        pi = rng.permutation(w)
        shifts = rng.permutation(w)
        a = np.arange(w)
        schedule = (pu[None, :] * w + pi[(a[None, :] + shifts[:, None]) % w]).astype(np.int64)
        seeds = rng.integers(1, 2**63, size=w * w, dtype=np.uint64)
        return EpochPlan(schedule, seeds)

    def blocks(self) -> Blocks:
        """The layout's arrays as :func:`~latentfactors.kernels.sgd._sgd_block_epoch` reads them."""
        return Blocks(
            self.users,
            self.group_users,
            self.items,
            self.ratings,
            self.group_ptr,
            self.run_ptr,
            self.block_runs,
            self.run_order,
            not self.by_user,
            self.sync,
        )

    def epoch_args(self, rng) -> tuple[Blocks, EpochPlan]:
        """``(blocks, plan)``: the layout arguments of one epoch of
        :func:`~latentfactors.kernels.sgd._sgd_block_epoch`."""
        return self.blocks(), self.schedule(rng)

    def to_layout(self, arrays) -> Embeddings:
        """The model's ``(P, Q, bu, bi)`` in the layout's row numbering (copies if renumbered)."""
        if self.user_rows is None:
            return Embeddings(*arrays)
        rows = (self.user_rows, self.item_rows) * 2
        return Embeddings(*(_gather(arr, r) for arr, r in zip(arrays, rows)))

    def to_model(self, layout_arrays, arrays) -> None:
        """Write layout-numbered ``(P, Q, bu, bi)`` back into the model's arrays, in place."""
        if self.user_rows is None:
            return
        for src, dst, rows in zip(layout_arrays, arrays, (self.user_rows, self.item_rows) * 2):
            dst[rows] = src


def _runs(group_ptr: np.ndarray, block_groups: np.ndarray, size: int):
    """Cut each block's groups into runs: ``(run_ptr, block_runs)``.

    A run is the consecutive groups of one block whose first rating falls in
    the same ``size``-rating stretch of the block, so runs hold about
    ``size`` ratings, never cross a block and are never empty.
    """
    n_groups = len(group_ptr) - 1
    block_of = np.repeat(np.arange(len(block_groups) - 1), np.diff(block_groups))
    offset = group_ptr[:-1] - group_ptr[block_groups[block_of]]
    stretch = offset // size
    first = np.ones(n_groups, dtype=bool)
    first[1:] = (block_of[1:] != block_of[:-1]) | (stretch[1:] != stretch[:-1])
    starts = np.flatnonzero(first)
    run_ptr = np.append(starts, n_groups).astype(np.int64)
    return run_ptr, np.searchsorted(starts, block_groups).astype(np.int64)


def _gather(arr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``arr[rows]`` in a new array whose rows start on a cache line (see
    :func:`~latentfactors.kernels._prefetch.aligned_empty`): an SGD epoch
    reads fewer lines per row (``python benchmarks/row_alignment.py``)."""
    out = aligned_empty((len(rows), *arr.shape[1:]), arr.dtype)
    # mode="clip" writes straight into out (the default buffers a second copy);
    # the rows are the layout's own permutation, so none is out of range.
    np.take(arr, rows, axis=0, out=out, mode="clip")
    return out


def _inverse(perm: np.ndarray) -> np.ndarray:
    """``inv[perm[r]] = r``."""
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm), dtype=perm.dtype)
    return inv


# ---------------------------------------------------------------- jitted builders


@numba.njit(**JIT)
def _renumber(codes, new_of_old):
    """``codes[k] = new_of_old[codes[k]]`` in place (no temporary the size of ``codes``)."""
    for k in range(len(codes)):
        codes[k] = new_of_old[codes[k]]


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


def _bits(a, readonly=False):
    """``a`` viewed as integers of its item size, optionally read-only.

    The kernels that only move values then compile once for every 4-byte
    column (int32 codes, float32 ratings, writable or not) instead of once per
    dtype and flag: the first fit compiles less.
    """
    view = a.view(f"i{a.itemsize}")
    if readonly:
        view.flags.writeable = False
    return view


@numba.njit(**JIT)
def _scatter(src, keys, ptr, out):
    """Stable counting-sort scatter of ``src`` into ``out`` by key."""
    cursor = ptr[:-1].copy()
    for k in range(len(src)):
        c = keys[k]
        out[cursor[c]] = src[k]
        cursor[c] += 1


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


_group_by_user_serial, _group_by_user = serial_and_parallel(_group_by_user)


@numba.njit(**JIT)
def _shuffle_groups(users, items, ratings, group_ptr, seed):
    """Fisher-Yates shuffle of every group ``[group_ptr[g], group_ptr[g + 1])``, in place."""
    state = np.uint64(seed) | np.uint64(1)
    for g in range(len(group_ptr) - 1):
        state = _shuffle_triples(users, items, ratings, group_ptr[g], group_ptr[g + 1], state)
