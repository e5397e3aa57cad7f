"""MLPMF on the original notebook's protocol: accuracy, fit time and training throughput.

Protocol: MovieLens ``ml-latest-small-2016``, ``random_split`` 80/12/8 with
the seed, test MSE on the 8%. Each seed draws both the split and the model.

* the notebook's "complex model" (5 factors, one linear hidden layer of 5,
  Keras's Adam at 1e-2, 5 epochs, batch 64, no regularisation, no global
  mean), fitted on train only, as the notebook did;
* ``MLPMF()`` defaults, with ``valid`` for early stopping;
* ``BiasedMF()`` defaults on the same splits, for comparison;
* training throughput (ratings per second, single thread) of the default
  architecture at batch 64 and 1024.

With ``--variants`` it instead compares the defaults with one change at a
time, over seeds 0-4, each with ``valid`` for early stopping: Adam on the
embeddings too, a head that does not learn (its learning rate 1e-12, so it
stays at its random initialisation), a linear head, and the defaults fitted
without ``valid``. It prints the median validation MSE of the kept epoch (what
the defaults were tuned on) and the median test MSE (also over seeds 0-2).

    python benchmarks/mlp.py                      # 5 seeds notebook, 3 seeds defaults
    python benchmarks/mlp.py --seeds-notebook 2 --seeds-defaults 1 --threads 2
    python benchmarks/mlp.py --variants           # the MLPMF docstring's comparison
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from latentfactors import MLPMF, BiasedMF, load_movielens, random_split  # noqa: E402
from latentfactors.presets import NOTEBOOK_PUBLISHED, notebook_mlp  # noqa: E402

# The notebook printed 0.842; its Keras code gives 0.865-0.888 (median 0.876) here.


def run(name, factory, splits, uses_valid):
    factory(0).fit(splits[0][0].iloc[:2000])  # compile outside the timings
    mses, secs = [], []
    for seed, (train, valid, test) in enumerate(splits):
        model = factory(seed)
        start = time.perf_counter()
        model.fit(train, valid=valid if uses_valid else None)
        secs.append(time.perf_counter() - start)
        mses.append(model.evaluate(test)["mse"])
    print(
        f"{name:<34} test MSE median {statistics.median(mses):.4f} "
        f"[{min(mses):.4f}-{max(mses):.4f}]  fit {statistics.median(secs):.2f}s  "
        f"per seed {[round(m, 4) for m in mses]}",
        flush=True,
    )
    return mses


VARIANTS = {
    "defaults": ({}, True),
    "Adam on the embeddings too": ({"embedding_optimizer": "adam"}, True),
    "head not learning (lr 1e-12)": ({"learning_rate": 1e-12}, True),
    "linear head": ({"activation": "linear"}, True),
    "defaults without valid": ({}, False),
}


def variants(splits, n_threads) -> None:
    """Median validation and test MSE of the defaults and of one change at a time."""
    MLPMF(random_state=0).fit(splits[0][0].iloc[:2000])  # compile outside the timings
    for name, (params, uses_valid) in VARIANTS.items():
        valid_mses, test_mses, secs = [], [], []
        for seed, (train, valid, test) in enumerate(splits):
            model = MLPMF(random_state=seed, n_threads=n_threads, **params)
            start = time.perf_counter()
            model.fit(train, valid=valid if uses_valid else None)
            secs.append(time.perf_counter() - start)
            test_mses.append(model.evaluate(test)["mse"])
            valid_mses.append(model.evaluate(valid)["mse"])
        note = "" if uses_valid else " (valid not used in fitting)"
        print(
            f"{name:<30} valid MSE median {statistics.median(valid_mses):.4f}{note}; "
            f"test MSE median {statistics.median(test_mses):.4f} "
            f"(seeds 0-2: {statistics.median(test_mses[:3]):.4f}) "
            f"[{min(test_mses):.4f}-{max(test_mses):.4f}]  fit {statistics.median(secs):.2f}s",
            flush=True,
        )


def throughput(train, batch_size, n_threads, epochs=3) -> float:
    """Ratings per second of default-architecture epochs (first epoch excluded)."""
    model = MLPMF(
        batch_size=batch_size,
        n_epochs=epochs,
        early_stopping=False,
        n_threads=n_threads,
        random_state=0,
    )
    model.fit(train)
    seconds = model.history_["seconds"][1:]
    return len(train) * len(seconds) / sum(seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-latest-small-2016")
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--seeds-notebook", type=int, default=5)
    parser.add_argument("--seeds-defaults", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--variants", action="store_true", help="the defaults against one change at a time"
    )
    args = parser.parse_args(argv)

    data_home = args.data_home or os.environ.get("LATENTFACTORS_DATA")
    if data_home is None and (HERE.parent.parent / "shared" / "data").is_dir():
        data_home = str(HERE.parent.parent / "shared" / "data")
    frame = load_movielens(args.dataset, data_home=data_home)
    n_splits = 5 if args.variants else max(args.seeds_notebook, args.seeds_defaults)
    splits = [random_split(frame, random_state=s) for s in range(n_splits)]
    print(
        f"{args.dataset}: {len(frame):,} ratings, 80/12/8 random splits; n_threads={args.threads}\n"
    )

    t = args.threads
    if args.variants:
        variants(splits, t)
        return
    run(
        f"notebook MLP (printed {NOTEBOOK_PUBLISHED['mlp']})",
        lambda s: notebook_mlp(random_state=s, n_threads=t),
        splits[: args.seeds_notebook],
        uses_valid=False,
    )
    run(
        "MLPMF defaults + valid",
        lambda s: MLPMF(random_state=s, n_threads=t),
        splits[: args.seeds_defaults],
        uses_valid=True,
    )
    run(
        "BiasedMF defaults + valid",
        lambda s: BiasedMF(random_state=s, n_threads=t),
        splits[: args.seeds_defaults],
        uses_valid=True,
    )
    train = splits[0][0]
    for batch in (64, 1024):
        rate = throughput(train, batch, t)
        print(f"training throughput, defaults, batch {batch:>4}: {rate:,.0f} ratings/s")


if __name__ == "__main__":
    main()
