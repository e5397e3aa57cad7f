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

from _sgd_ab import report, sgd_layout  # noqa: E402

from latentfactors.kernels import sgd as sgd_kernels  # noqa: E402
from latentfactors.kernels._prefetch import LINE_BYTES, aligned_empty  # noqa: E402
from latentfactors.kernels.scoring import with_threads  # noqa: E402


def line_copy(arr: np.ndarray, offset: int) -> np.ndarray:
    """A copy of ``arr`` starting ``offset`` bytes past a cache line."""
    buf = aligned_empty(arr.nbytes + LINE_BYTES, np.uint8)
    out = buf[offset : offset + arr.nbytes].view(arr.dtype).reshape(arr.shape)
    out[...] = arr
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", type=int, default=20_000_000)
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of rounds per thread count")
    args = parser.parse_args(argv)

    layout, rows, scalars, width = sgd_layout(args.ratings, args.factors)
    offsets = {"aligned": 0, "offset 16": 16}
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
        report(threads, f"{len(speedup)} rounds", rates, speedup, "aligned")


if __name__ == "__main__":
    main()
