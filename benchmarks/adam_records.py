"""Why Adam keeps a row's state in one record: epoch time against separate arrays.

Fits ``BiasedMF(optimizer="adam")`` (batches of 256) on
``make_synthetic_ratings(200_000, 50_000, N, rank=16)`` with each row's
parameters, moments and gradient side by side (``adam_records``, the
default) and with four separate arrays, in interleaved rounds, and prints the
median epoch time of each (epochs after the first) and the final training
MSE, which must agree: the layout changes where values live, not their
arithmetic.

    python benchmarks/adam_records.py                    # 4M ratings, 1 and 2 threads
    python benchmarks/adam_records.py --ratings 20000000 --threads 1
    python benchmarks/adam_records.py --batch-size 4096
    python benchmarks/adam_records.py --parallel-min-batch 256   # 2 threads at batch 256

Batches smaller than ``ADAM_PARALLEL_MIN_BATCH`` (1024) run on one thread
whatever ``n_threads`` says, so at the default 256 both rows time one thread
unless ``--parallel-min-batch`` lowers that threshold for the run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latentfactors import BiasedMF, make_synthetic_ratings  # noqa: E402
from latentfactors.kernels import adam as adam_kernels  # noqa: E402
from latentfactors.models import biased_mf  # noqa: E402


def separate_arrays(W, b):
    """The layout before records: parameters, moments and gradient apart."""
    zeros = np.zeros_like
    return (W.copy(), zeros(W), zeros(W), zeros(W)), (b.copy(), zeros(b), zeros(b), zeros(b))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", type=int, default=4_000_000)
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--parallel-min-batch",
        type=int,
        default=biased_mf.ADAM_PARALLEL_MIN_BATCH,
        help="smallest batch that runs on several threads",
    )
    args = parser.parse_args(argv)

    frame, _ = make_synthetic_ratings(200_000, 50_000, args.ratings, rank=16, random_state=0)
    layouts = {"records": adam_kernels.adam_records, "separate": separate_arrays}
    biased_mf.ADAM_PARALLEL_MIN_BATCH = args.parallel_min_batch
    seconds, mse = {}, {}
    try:
        for _ in range(args.rounds):
            for threads in args.threads:
                for name, make in layouts.items():
                    adam_kernels.adam_records = make
                    model = BiasedMF(
                        args.factors,
                        optimizer="adam",
                        batch_size=args.batch_size,
                        n_epochs=args.epochs,
                        n_threads=threads,
                        random_state=0,
                    ).fit(frame)
                    seconds.setdefault((threads, name), []).extend(model.history_["seconds"][1:])
                    mse[threads, name] = model.history_["train_mse"][-1]
    finally:
        adam_kernels.adam_records = layouts["records"]
    n = len(frame)
    print(
        f"{n:,} ratings, k={args.factors}, Adam batch {args.batch_size}, "
        f"median of epochs 2..{args.epochs}"
    )
    for threads in args.threads:
        rec = statistics.median(seconds[threads, "records"])
        sep = statistics.median(seconds[threads, "separate"])
        print(
            f"  t={threads}: records {rec:.2f} s/epoch ({n / rec / 1e6:.2f} M/s), separate "
            f"{sep:.2f} s/epoch ({n / sep / 1e6:.2f} M/s): {sep / rec:.2f}x; train MSE "
            f"{mse[threads, 'records']:.6f} / {mse[threads, 'separate']:.6f}"
        )


if __name__ == "__main__":
    main()
