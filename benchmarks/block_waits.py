"""Why SGD threads take any block whose stripes are free instead of running rounds.

Lays out ``make_synthetic_ratings(200_000, 50_000, N, rank=16)`` as a fit
does and runs SGD epochs two ways on the same parameters, alternating:

* ``rounds``: one call of the epoch kernel per round, so every thread waits
  at the end of each round for the slowest block (a barrier per round);
* ``free blocks``: one call per epoch, in which a thread takes the first block
  whose earlier blocks on its user and item stripes are done.

It prints quantiles of each rate and of the per-epoch speed-up. First it
checks that both give bit-identical parameters: they apply the same updates
in the same order to every row.

    python benchmarks/block_waits.py                  # 20M ratings, 2 threads
    python benchmarks/block_waits.py --threads 1 2 --epochs 20
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _sgd_ab import report, run_epoch, sgd_layout  # noqa: E402

from latentfactors.kernels import sgd as sgd_kernels  # noqa: E402
from latentfactors.kernels.scoring import with_threads  # noqa: E402


def by_rounds(threads, epoch_args, rows, scalars):
    """The epoch as one kernel call per round: a barrier after each."""
    blocks, plan = epoch_args
    sse = 0.0
    for t in range(len(plan.schedule)):
        one_round = plan._replace(schedule=plan.schedule[t : t + 1])
        sse += with_threads(threads, run_epoch, sgd_kernels, blocks, one_round, rows, scalars)
    return sse


def free_blocks(threads, epoch_args, rows, scalars):
    return with_threads(threads, run_epoch, sgd_kernels, *epoch_args, rows, scalars)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", type=int, default=20_000_000)
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--epochs", type=int, default=16, help="epochs per way and thread count")
    args = parser.parse_args(argv)

    layout, rows, scalars, width = sgd_layout(args.ratings, args.factors)
    ways = {"rounds": by_rounds, "free blocks": free_blocks}
    n = len(layout.ratings)
    print(f"{n:,} ratings, k={args.factors}, {width} x {width} blocks")

    order = layout.run_order.copy()
    results = {}
    for name, run in ways.items():
        layout.run_order[:] = order
        trial = tuple(a.copy() for a in rows)
        sse = run(max(args.threads), layout.epoch_args(np.random.default_rng(1)), trial, scalars)
        results[name] = (sse, trial)
    same = results["rounds"][0] == results["free blocks"][0] and all(
        np.array_equal(a, b) for a, b in zip(results["rounds"][1], results["free blocks"][1])
    )
    print(f"one epoch each way, same seed, {max(args.threads)} threads: bit-identical: {same}")

    for threads in args.threads:
        rates = {name: [] for name in ways}
        speedup = []
        for epoch in range(args.epochs):
            epoch_args = layout.epoch_args(np.random.default_rng(epoch))
            seconds = {}
            for name in list(ways) if epoch % 2 == 0 else list(ways)[::-1]:
                tick = time.perf_counter()
                ways[name](threads, epoch_args, rows, scalars)
                seconds[name] = time.perf_counter() - tick
                rates[name].append(n / seconds[name] / 1e6)
            speedup.append(seconds["rounds"] / seconds["free blocks"])
        report(threads, f"{args.epochs} epochs", rates, speedup, "free blocks")


if __name__ == "__main__":
    main()
