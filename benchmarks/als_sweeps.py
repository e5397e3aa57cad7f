"""Seconds per ALS sweep: ImplicitMF against implicit's CPU ALS, side by side.

Planted ratings (``make_synthetic_ratings``), every observed pair a positive
of confidence 2 in both libraries (ours ``1 + alpha`` with ``alpha=1``,
implicit's ``alpha * 1`` with ``alpha=2``), the same factors, conjugate-gradient
solves with 3 steps (implicit's default) and the same threads. A sweep solves
every user, then every item. ImplicitMF's figure is its ``history_["seconds"]``
(the two half sweeps); implicit's the time between its per-iteration callbacks.

    python benchmarks/als_sweeps.py                      # 20M ratings, k=64, 2 threads
    python benchmarks/als_sweeps.py --ratings 2000000 --threads 1
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from latentfactors import ImplicitMF, make_synthetic_ratings  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", type=int, default=20_000_000)
    parser.add_argument("--users", type=int, default=138_000)
    parser.add_argument("--items", type=int, default=27_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--sweeps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    frame, _ = make_synthetic_ratings(args.users, args.items, args.ratings, rank=8, random_state=0)
    print(f"{len(frame):,} ratings, {args.users:,} users, {args.items:,} items, "
          f"k={args.factors}, {args.threads} threads")  # fmt: skip
    common = {"n_factors": args.factors, "confidence": "binary", "alpha": 1.0}
    ImplicitMF(**{**common, "n_factors": 4}, n_epochs=1, n_threads=args.threads).fit(
        frame.iloc[:100_000]
    )  # compile
    ours = ImplicitMF(**common, n_epochs=args.sweeps, n_threads=args.threads, random_state=0)
    ours.fit(frame)
    print("ImplicitMF (cg, 3 steps) s/sweep:", [round(s, 2) for s in ours.history_["seconds"]])
    try:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        import scipy.sparse as sps
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError:
        print("implicit is not installed (pip install implicit)")
        return
    u = ours.user_index_.encode(frame["user"].to_numpy())
    i = ours.item_index_.encode(frame["item"].to_numpy())
    X = sps.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)))
    X.sum_duplicates()
    X.data[:] = 1.0
    marks = []
    model = AlternatingLeastSquares(
        factors=args.factors, iterations=args.sweeps, alpha=2.0, num_threads=args.threads,
        random_state=0,
    )  # fmt: skip
    start = time.perf_counter()
    marks.append(start)
    model.fit(X, show_progress=False, callback=lambda *a: marks.append(time.perf_counter()))
    print(
        "implicit ALS (cg, 3 steps) s/sweep:", [round(b - a, 2) for a, b in zip(marks, marks[1:])]
    )


if __name__ == "__main__":
    main()
