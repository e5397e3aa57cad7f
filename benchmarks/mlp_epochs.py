"""MLPMF's epochs must not slow down as training goes on; nor must prediction afterwards.

Fits ``MLPMF(n_epochs=E, random_state=0)`` with its defaults on
``make_synthetic_ratings(6040, 3706, N, random_state=5)`` (MovieLens ml-1m's
shape at N = 1,000,000) and prints each epoch's seconds, the ratio of the last
epoch to the first, how many of the head's parameters are subnormal floats
after each epoch, and the seconds ``predict`` takes on ``--predict`` pairs.
Subnormals (nonzero floats below ``np.finfo(np.float32).tiny``) cost x86 cores
about a hundred times more per operation: when the head held ~1,200 of them
from epoch 3 on, epochs ran 10-45x slower than the first and prediction 40x.
Kernels are compiled by a small fit first, so the first epoch is not a compile.

    python benchmarks/mlp_epochs.py --save
    python benchmarks/mlp_epochs.py --ratings 20000 --epochs 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from latentfactors import MLPMF, make_synthetic_ratings

RESULTS = Path(__file__).resolve().parent / "results"


def n_subnormal(a: np.ndarray) -> int:
    """Nonzero entries of ``a`` below the smallest normal float32 in magnitude."""
    a = np.abs(a)
    return int(np.count_nonzero((a > 0) & (a < np.finfo(np.float32).tiny)))


def short(n: int) -> str:
    """``1000000 -> "1M"``, ``20000 -> "20k"``: the ratings count in a file name."""
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=6040)
    parser.add_argument("--items", type=int, default=3706)
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--predict", type=int, default=1_000_000, help="pairs to predict")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--save", action="store_true", help="also write benchmarks/results/mlp-epochs-<N>.txt"
    )
    args = parser.parse_args(argv)

    lines = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    say(f"# python benchmarks/mlp_epochs.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    ratings, _ = make_synthetic_ratings(args.users, args.items, args.ratings, random_state=5)
    say(
        f"MLPMF defaults, {len(ratings):,} ratings ({args.users} users x {args.items} items), "
        f"{args.epochs} epochs, {args.threads} thread(s)"
    )
    MLPMF(n_epochs=1, random_state=0).fit(ratings.iloc[:5000])  # compile the kernels

    def report(epoch, logs):
        say(
            f"  epoch {epoch}: {logs['seconds']:6.2f} s  train MSE {logs['train_mse']:.6f}  "
            f"subnormal head parameters {n_subnormal(model.dense_)}"
        )

    model = MLPMF(n_epochs=args.epochs, random_state=0, n_threads=args.threads, callback=report)
    model.fit(ratings)
    seconds = model.history_["seconds"]
    say(f"last / first epoch: {seconds[-1] / seconds[0]:.2f}x")
    say(f"subnormal head parameters after fit: {n_subnormal(model.dense_)} of {model.dense_.size}")

    rng = np.random.default_rng(0)
    users = rng.choice(ratings["user"].unique(), size=args.predict)
    items = rng.choice(ratings["item"].unique(), size=args.predict)
    model.predict(users[:1000], items[:1000])  # compile prediction
    start = time.perf_counter()
    model.predict(users, items)
    say(f"predict {args.predict:,} pairs: {time.perf_counter() - start:.2f} s")

    if args.save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"mlp-epochs-{short(args.ratings)}.txt"
        path.write_text("\n".join(lines) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
