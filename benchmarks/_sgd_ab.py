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
from latentfactors.kernels.bundles import Embeddings  # noqa: E402
from latentfactors.kernels.layout import BlockLayout, grid_plan  # noqa: E402
from latentfactors.kernels.scoring import with_threads  # noqa: E402
from latentfactors.models.base import encode_train  # noqa: E402


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
    columns = {"users": data.users, "items": data.items, "ratings": data.ratings}
    data.users = data.items = data.ratings = None
    layout = BlockLayout(columns, n_users, n_items, width, rng, by_user)
    rows = layout.to_layout(tuple(start[name] for name in model._state_names()))
    scalars = tuple(np.float32(x) for x in (mu, 0.01, 0.02, 0.02))
    return layout, rows, scalars, width


def run_epoch(module, blocks, plan, rows, scalars):
    """One call of ``module._sgd_block_epoch``, in whichever convention it takes.

    ``module`` is this revision's SGD kernel or one loaded from another git
    revision: from this revision on the kernel takes bundles
    ``(blocks, plan, Embeddings, SGDHyper)``; before it (up to b330f37) it took
    the layout's arrays, the plan, then ``P, Q, bu, bi, mu, lr, reg, reg_bias``
    one by one.
    """
    if hasattr(module, "SGDHyper"):
        return module._sgd_block_epoch(blocks, plan, Embeddings(*rows), module.SGDHyper(*scalars))
    return module._sgd_block_epoch(*blocks[:8], *plan, *blocks[8:], *rows, *scalars)


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
        blocks, plan = layout.epoch_args(np.random.default_rng(1))
        results.append((run_epoch(module, blocks, plan, trial, scalars), trial))
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
        blocks, plan = layout.epoch_args(np.random.default_rng(epoch))
        for t in range(len(plan.schedule)):
            one_round = plan._replace(schedule=plan.schedule[t : t + 1])
            size = int(np.sum(np.diff(layout.block_ptr)[plan.schedule[t]]))
            seconds = {}
            for name in list(ways) if (epoch + t) % 2 == 0 else list(ways)[::-1]:
                module, rows = ways[name]
                tick = time.perf_counter()
                with_threads(threads, run_epoch, module, blocks, one_round, rows, scalars)
                seconds[name] = time.perf_counter() - tick
            for name in ways:
                rates[name].append(size / seconds[name] / 1e6)
            speedup.append(seconds[old] / seconds[new])
    return rates, speedup
