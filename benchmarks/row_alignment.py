"""Why SGD trains on factor rows that start on a cache line.

Lays out ``make_synthetic_ratings(200_000, 50_000, N, rank=16)`` as a fit
does, then runs the SGD epoch kernel on two copies of the same parameters:
rows starting on a 64-byte cache line (what ``BlockLayout.to_layout`` makes)
and the same rows 16 bytes past a line (where NumPy's allocator puts a large
array). The rounds of the block schedule alternate between the two, so both
see the same moments of a noisy machine, and it prints quantiles of each
rate and of the per-round speed-up. First it checks that a whole epoch gives
bit-identical parameters on both: alignment moves values, not arithmetic.

    python benchmarks/row_alignment.py                  # 20M ratings, 1 and 2 threads
    python benchmarks/row_alignment.py --ratings 4000000 --factors 128 --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latentfactors import BiasedMF, make_synthetic_ratings  # noqa: E402
from latentfactors.kernels import sgd as sgd_kernels  # noqa: E402
from latentfactors.kernels._prefetch import LINE_BYTES, aligned_empty  # noqa: E402
from latentfactors.kernels.scoring import with_threads  # noqa: E402
from latentfactors.models.base import encode_train  # noqa: E402
from latentfactors.models.biased_mf import BlockLayout, grid_plan  # noqa: E402


def line_copy(arr: np.ndarray, offset: int) -> np.ndarray:
    """A copy of ``arr`` starting ``offset`` bytes past a cache line."""
    buf = aligned_empty(arr.nbytes + LINE_BYTES, np.uint8)
    out = buf[offset : offset + arr.nbytes].view(arr.dtype).reshape(arr.shape)
    out[...] = arr
    return out


def quantile(values, q):
    return float(np.quantile(values, q))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", type=int, default=20_000_000)
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of rounds per thread count")
    args = parser.parse_args(argv)

    frame, _ = make_synthetic_ratings(200_000, 50_000, args.ratings, rank=16, random_state=0)
    data = encode_train(frame)
    del frame
    n_users, n_items = len(data.user_index), len(data.item_index)
    width, by_user = grid_plan(n_users, n_items, len(data.ratings), args.factors)
    rng = np.random.default_rng(0)
    model = BiasedMF(args.factors, random_state=0)
    model.global_mean_ = float(np.mean(data.ratings, dtype=np.float64))
    start = model._init_state(rng, n_users, n_items)
    layout = BlockLayout(data, width, rng, by_user)
    del data
    arrays = tuple(start[name] for name in model._state_names())
    rows = layout.to_layout(arrays)
    offsets = {"aligned": 0, "offset 16": 16}
    scalars = tuple(np.float32(x) for x in (model.global_mean_, 0.01, 0.02, 0.02))
    n = len(layout.ratings)
    print(
        f"{n:,} ratings, k={args.factors}, {width} x {width} blocks; the layout's rows start "
        f"{rows[0].ctypes.data % LINE_BYTES} bytes past a {LINE_BYTES}-byte line"
    )

    order = layout.run_order.copy()
    results = {}
    for name, offset in offsets.items():
        layout.run_order[:] = order
        trial = tuple(line_copy(a, offset) for a in rows)
        epoch_args = layout.epoch_args(np.random.default_rng(1))
        results[name] = (sgd_kernels._sgd_block_epoch(*epoch_args, *trial, *scalars), trial)
    same = results["aligned"][0] == results["offset 16"][0] and all(
        np.array_equal(a, b) for a, b in zip(results["aligned"][1], results["offset 16"][1])
    )
    print(f"one epoch on each, same seed: bit-identical parameters: {same}")

    copies = {name: tuple(line_copy(a, offset) for a in rows) for name, offset in offsets.items()}
    for threads in args.threads:
        rates = {name: [] for name in copies}
        speedup = []
        for epoch in range(args.epochs):
            epoch_args = list(layout.epoch_args(np.random.default_rng(epoch)))
            schedule = epoch_args[8]
            for t in range(len(schedule)):
                epoch_args[8] = schedule[t : t + 1]
                size = int(np.sum(np.diff(layout.block_ptr)[schedule[t]]))
                seconds = {}
                names = list(copies) if (epoch + t) % 2 == 0 else list(copies)[::-1]
                for name in names:
                    tick = time.perf_counter()
                    with_threads(
                        threads, sgd_kernels._sgd_block_epoch, *epoch_args, *copies[name], *scalars
                    )
                    seconds[name] = time.perf_counter() - tick
                for name in copies:
                    rates[name].append(size / seconds[name] / 1e6)
                speedup.append(seconds["offset 16"] / seconds["aligned"])
        line = "  ".join(
            f"{name} {quantile(r, 0.5):.1f} (p90 {quantile(r, 0.9):.1f})"
            for name, r in rates.items()
        )
        print(
            f"  t={threads}, {len(speedup)} rounds, M upd/s median: {line}; aligned speed-up "
            f"p25 {quantile(speedup, 0.25):.2f}x, median {quantile(speedup, 0.5):.2f}x, "
            f"p75 {quantile(speedup, 0.75):.2f}x"
        )


if __name__ == "__main__":
    main()
