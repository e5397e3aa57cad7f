"""Shared by the SGD kernel A/B benchmarks: the data laid out as a fit lays it
out, one epoch of two ways compared value for value, their rounds timed
alternately, and the summary line."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latentfactors import BiasedMF, make_synthetic_ratings  # noqa: E402
from latentfactors.kernels._prefetch import LINE_BYTES, aligned_empty  # noqa: E402
from latentfactors.kernels.scoring import with_threads  # noqa: E402
from latentfactors.models.base import encode_train  # noqa: E402
from latentfactors.models.biased_mf import BlockLayout, grid_plan  # noqa: E402

SCHEDULE = 8  # position of the schedule in BlockLayout.epoch_args()


def sgd_layout(n_ratings: int, k: int):
    """``make_synthetic_ratings(200_000, 50_000, n_ratings, rank=16)`` in BiasedMF's
    block layout, with freshly initialised rows.

    Returns ``(layout, rows, scalars, width)``: ``rows`` are the layout's copies
    of ``P, Q, bu, bi`` and ``scalars`` the kernel's ``mu, lr, reg, reg_bias``.
    """
    frame, _ = make_synthetic_ratings(200_000, 50_000, n_ratings, rank=16, random_state=0)
    data = encode_train(frame)
    del frame
    n_users, n_items = len(data.user_index), len(data.item_index)
    width, by_user = grid_plan(n_users, n_items, len(data.ratings), k)
    rng = np.random.default_rng(0)
    model = BiasedMF(k, random_state=0)
    mu = float(np.mean(data.ratings, dtype=np.float64))
    start = model._init_state(rng, n_users, n_items)
    layout = BlockLayout(data, width, rng, by_user)
    del data
    rows = layout.to_layout(tuple(start[name] for name in model._state_names()))
    scalars = tuple(np.float32(x) for x in (mu, 0.01, 0.02, 0.02))
    return layout, rows, scalars, width


def report(threads: int, what: str, rates: dict, speedup: list, new: str) -> None:
    """One line: each way's median (and p90) rate, and the quartiles of ``new``'s speed-up."""
    line = "  ".join(
        f"{name} {np.quantile(r, 0.5):.1f} (p90 {np.quantile(r, 0.9):.1f})"
        for name, r in rates.items()
    )
    print(
        f"  t={threads}, {what}, M upd/s median: {line}; {new} speed-up "
        f"p25 {np.quantile(speedup, 0.25):.2f}x, median {np.quantile(speedup, 0.5):.2f}x, "
        f"p75 {np.quantile(speedup, 0.75):.2f}x"
    )


def offset_copies(rows, offset: int) -> tuple:
    """Copies of the arrays ``rows``, each starting ``offset`` bytes past a cache line."""
    out = []
    for arr in rows:
        buf = aligned_empty(arr.nbytes + LINE_BYTES, np.uint8)
        copy = buf[offset : offset + arr.nbytes].view(arr.dtype).reshape(arr.shape)
        copy[...] = arr
        out.append(copy)
    return tuple(out)


def same_epoch(layout, ways: dict, scalars) -> bool:
    """Whether one epoch of each way, from the same start and seed, ends bit-identical.

    ``ways`` maps a name to ``(kernel module, rows)``; each runs on its own
    copy of its rows (as far past a cache line as they are), with the
    layout's run order reset in between.
    """
    order = layout.run_order.copy()
    results = []
    for module, rows in ways.values():
        layout.run_order[:] = order
        trial = tuple(offset_copies([a], a.ctypes.data % LINE_BYTES)[0] for a in rows)
        epoch_args = layout.epoch_args(np.random.default_rng(1))
        results.append((module._sgd_block_epoch(*epoch_args, *trial, *scalars), trial))
    (loss_a, rows_a), (loss_b, rows_b) = results
    return loss_a == loss_b and all(np.array_equal(a, b) for a, b in zip(rows_a, rows_b))


def alternate_rounds(layout, ways: dict, scalars, threads: int, epochs: int, old: str, new: str):
    """Time every round of ``epochs`` epochs on each way, the order alternating.

    ``ways`` maps a name to ``(kernel module, rows)``. Both ways see the same
    moments of a noisy machine. Returns each way's rates (M updates/s, one
    per round) and the per-round speed-up of ``new`` over ``old``.
    """
    rates = {name: [] for name in ways}
    speedup = []
    for epoch in range(epochs):
        epoch_args = list(layout.epoch_args(np.random.default_rng(epoch)))
        schedule = epoch_args[SCHEDULE]
        for t in range(len(schedule)):
            epoch_args[SCHEDULE] = schedule[t : t + 1]
            size = int(np.sum(np.diff(layout.block_ptr)[schedule[t]]))
            seconds = {}
            for name in list(ways) if (epoch + t) % 2 == 0 else list(ways)[::-1]:
                module, rows = ways[name]
                tick = time.perf_counter()
                with_threads(threads, module._sgd_block_epoch, *epoch_args, *rows, *scalars)
                seconds[name] = time.perf_counter() - tick
            for name in ways:
                rates[name].append(size / seconds[name] / 1e6)
            speedup.append(seconds[old] / seconds[new])
    return rates, speedup
