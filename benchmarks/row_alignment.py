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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _sgd_ab import (  # noqa: E402
    alternate_rounds,
    offset_copies,
    report,
    same_epoch,
    sgd_layout,
)

from latentfactors.kernels import sgd as sgd_kernels  # noqa: E402
from latentfactors.kernels._prefetch import LINE_BYTES  # noqa: E402


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

    ways = {name: (sgd_kernels, offset_copies(rows, offset)) for name, offset in offsets.items()}
    same = same_epoch(layout, ways, scalars)
    print(f"one epoch on each, same seed: bit-identical parameters: {same}")
    for threads in args.threads:
        rates, speedup = alternate_rounds(
            layout, ways, scalars, threads, args.epochs, "offset 16", "aligned"
        )
        report(threads, f"{len(speedup)} rounds", rates, speedup, "aligned")


if __name__ == "__main__":
    main()
