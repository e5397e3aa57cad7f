"""Why SGD visits groups in runs: epoch time with runs against single groups.

Fits ``BiasedMF`` on ``make_synthetic_ratings(200_000, 50_000, N, rank=16)``
with the layout's runs at their default size and with runs of one group each
(every user group of a block then visited in a fresh random order, as before
runs existed), in interleaved rounds, and prints the median epoch time of
each (epochs after the first) and the valid MSE after the last epoch on a 5%
holdout.

    python benchmarks/sgd_runs.py                    # 20M ratings, 1 thread
    python benchmarks/sgd_runs.py --threads 2 --ratings 2000000
    python benchmarks/sgd_runs.py --run-ratings 1600 26000   # other run sizes too
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latentfactors import BiasedMF, make_synthetic_ratings  # noqa: E402
from latentfactors.kernels import layout as block_layout  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", type=int, default=20_000_000)
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--run-ratings", type=int, nargs="*", default=[], help="also runs of about N ratings"
    )
    args = parser.parse_args(argv)

    frame, _ = make_synthetic_ratings(200_000, 50_000, args.ratings, rank=16, random_state=0)
    held = np.random.default_rng(1).random(len(frame)) < 0.05
    train, valid = frame[~held], frame[held]
    BiasedMF(8, n_epochs=1).fit(train.iloc[:10_000])  # compile outside the timings
    sizes = {"runs (default)": block_layout.RUN_RATINGS, "single groups": 1}
    sizes.update({f"runs of {size:,}": size for size in args.run_ratings})
    seconds = {name: [] for name in sizes}
    mse = {}
    try:
        for _ in range(args.rounds):
            for name, size in sizes.items():
                block_layout.RUN_RATINGS = size
                model = BiasedMF(
                    args.factors,
                    n_epochs=1 + args.epochs,
                    n_threads=args.threads,
                    random_state=0,
                    early_stopping=False,
                )
                model.fit(train)
                seconds[name].append(statistics.median(model.history_["seconds"][1:]))
                mse[name] = model.evaluate(valid)["mse"]
    finally:
        block_layout.RUN_RATINGS = sizes["runs (default)"]
    n = len(train)
    print(f"{n:,} ratings, k={args.factors}, {args.threads} thread(s), median of {args.rounds}")
    for name in sizes:
        sec = statistics.median(seconds[name])
        print(
            f"  {name:<18} {sec:7.3f} s/epoch  {n / sec / 1e6:6.1f} M upd/s  "
            f"valid MSE {mse[name]:.4f}"
        )
    single = statistics.median(seconds["single groups"])
    for name in sizes:
        if name != "single groups":
            ratio = single / statistics.median(seconds[name])
            print(f"  {name} are {ratio:.2f}x as fast as single groups")


if __name__ == "__main__":
    main()
