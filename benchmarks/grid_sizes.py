"""SGD epochs on the block grids that other item-stripe budgets would choose.

``grid_plan`` picks the side ``B`` of the block grid so that a block's item
rows fit in ``STRIPE_BYTES``. This script fits ``BiasedMF`` on the 20M
synthetic set (``make_synthetic_ratings(200_000, 50_000, N, rank=16)``)
with that budget set to 2 MiB (the default: ``B = 4`` at 32 factors), 1 MiB
(``B = 8``) and 0.6 MiB (``B = 12``), in interleaved rounds, and prints the
median epoch rate of each (epochs 2..5 of every fit). Run it on a new kind of
machine to see whether its caches favour another budget.

    python benchmarks/grid_sizes.py                       # 1 and 2 threads, 3 rounds
    python benchmarks/grid_sizes.py --ratings 2000000 --threads 1 --rounds 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latentfactors import BiasedMF, make_synthetic_ratings  # noqa: E402
from latentfactors.kernels import layout as block_layout  # noqa: E402

BUDGETS_MIB = (2.0, 1.0, 0.6)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", type=int, default=20_000_000)
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5, help="per fit; the first is left out")
    args = parser.parse_args(argv)

    frame, _ = make_synthetic_ratings(200_000, 50_000, args.ratings, rank=16, random_state=0)
    default = block_layout.STRIPE_BYTES
    rates = {}
    try:
        for r in range(args.rounds):
            for t in args.threads:
                for mib in BUDGETS_MIB:
                    block_layout.STRIPE_BYTES = int(mib * 2**20)
                    width = block_layout.grid_size(200_000, 50_000, args.ratings, args.factors)
                    model = BiasedMF(
                        args.factors, n_epochs=args.epochs, n_threads=t, random_state=0
                    )
                    model.fit(frame)
                    seconds = statistics.median(model.history_["seconds"][1:])
                    rates.setdefault((mib, width, t), []).append(args.ratings / seconds / 1e6)
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    finally:
        block_layout.STRIPE_BYTES = default

    print(f"\n{args.ratings:,} ratings, {args.factors} factors; M updates/s, median of rounds")
    for (mib, width, t), values in sorted(rates.items(), key=lambda kv: (kv[0][2], -kv[0][0])):
        line = ", ".join(f"{v:.1f}" for v in values)
        grid = f"({width} x {width} blocks):"
        print(
            f"  t={t}  stripes <= {mib:.1f} MiB {grid:<18} "
            f"{statistics.median(values):6.1f}   rounds: {line}"
        )


if __name__ == "__main__":
    main()
