"""Accuracy and fit time on the original notebook's protocol, median over seeds.

Protocol: MovieLens ``ml-latest-small-2016`` (100,004 ratings), one random
permutation cut 80/12/8 into train/valid/test (``random_split``), test MSE on
the 8%. Each seed draws both the split and the model's initialisation.

    python benchmarks/accuracy.py                 # 5 seeds, every configuration
    python benchmarks/accuracy.py --seeds 3 --only biased
    python benchmarks/accuracy.py --dataset ml-latest-small

Optional peers run in the same process when installed (``pip install
scikit-surprise libmf myfm``); missing ones are listed and skipped. Results go
to ``benchmarks/results/accuracy-<dataset>.{md,json}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from latentfactors import BiasedMF, load_movielens, random_split  # noqa: E402
from latentfactors.presets import NOTEBOOK_PUBLISHED, notebook_dot  # noqa: E402


def _ours():
    """(name, group, factory(seed) -> estimator, uses_valid, published figure)."""
    rows = [
        (
            "notebook dot product (Keras config)",
            "biased",
            lambda s: notebook_dot(random_state=s),
            False,
            NOTEBOOK_PUBLISHED["dot"],
        ),
        (
            "BiasedMF defaults (SGD) + valid",
            "biased",
            lambda s: BiasedMF(random_state=s),
            True,
            None,
        ),
        (
            "BiasedMF defaults (SGD), no valid",
            "biased",
            lambda s: BiasedMF(random_state=s),
            False,
            None,
        ),
        (
            "BiasedMF Adam + valid",
            "biased",
            lambda s: BiasedMF(optimizer="adam", random_state=s),
            True,
            None,
        ),
    ]
    try:
        from latentfactors import MLPMF
        from latentfactors.presets import notebook_mlp
    except ImportError:
        return rows
    rows += [
        (
            "notebook MLP head (Keras config)",
            "mlp",
            lambda s: notebook_mlp(random_state=s),
            False,
            NOTEBOOK_PUBLISHED["mlp"],
        ),
        ("MLPMF defaults + valid", "mlp", lambda s: MLPMF(random_state=s), True, None),
    ]
    from latentfactors import BayesianMF

    rows += [
        (
            "BayesianMF defaults (users + items)",
            "bayes",
            lambda s: BayesianMF(random_state=s),
            False,
            None,
        ),
        (
            "BayesianMF implicit=True",
            "bayes",
            lambda s: BayesianMF(implicit=True, random_state=s),
            False,
            None,
        ),
        (
            "BayesianMF implicit=True, 1 thread",
            "bayes",
            lambda s: BayesianMF(implicit=True, random_state=s, n_threads=1),
            False,
            None,
        ),
        (
            "BayesianMF implicit=True, time='day'",
            "bayes",
            lambda s: BayesianMF(implicit=True, time="day", random_state=s),
            False,
            None,
        ),
        (
            "BayesianMF implicit=True, time='day', 1 thread",
            "bayes",
            lambda s: BayesianMF(implicit=True, time="day", random_state=s, n_threads=1),
            False,
            None,
        ),
    ]
    return rows


def _peers():
    """Peers that are installed, as (name, fit_predict(train, test, seed) -> predictions)."""
    peers, missing = [], []
    try:
        import surprise  # noqa: F401

        def surprise_model(algo_factory):
            def run(train, test, seed):
                from surprise import Dataset, Reader

                reader = Reader(rating_scale=(0.5, 5.0))
                data = Dataset.load_from_df(train[["user", "item", "rating"]], reader)
                algo = algo_factory(seed)
                algo.fit(data.build_full_trainset())
                return np.array(
                    [algo.predict(u, i).est for u, i in zip(test["user"], test["item"])]
                )

            return run

        from surprise import SVD, BaselineOnly, SVDpp

        peers += [
            ("Surprise SVD (defaults)", surprise_model(lambda s: SVD(random_state=s)), None),
            ("Surprise SVD++ (defaults)", surprise_model(lambda s: SVDpp(random_state=s)), None),
            (
                "Surprise BaselineOnly",
                surprise_model(lambda s: BaselineOnly(verbose=False)),
                None,
            ),
        ]
    except ImportError:
        missing.append("scikit-surprise")
    try:
        from libmf import mf as libmf_mf

        def run_libmf(train, test, seed):
            from latentfactors.data import IdIndex

            ui, ii = IdIndex(train["user"]), IdIndex(train["item"])
            tr = np.column_stack(
                [ui.encode(train["user"]), ii.encode(train["item"]), train["rating"]]
            ).astype(np.float64)
            engine = libmf_mf.MF(k=32, nr_iters=40, nr_threads=1)
            engine.fit(tr)
            pairs = np.column_stack([ui.encode(test["user"]), ii.encode(test["item"])])
            known = (pairs >= 0).all(axis=1)
            pred = np.full(len(test), float(train["rating"].mean()))
            pred[known] = engine.predict(pairs[known].astype(np.float64))
            return pred

        peers.append(("LIBMF (k=32, 40 iters)", run_libmf, None))
    except ImportError:
        missing.append("libmf")
    try:
        import myfm  # noqa: F401

        for implicit, day in ((False, False), (True, False), (True, True)):
            name = "myFM Bayesian FM, users + items" + (" + implicit" if implicit else "")
            name += " + day" if day else ""
            peers.append((f"{name} (rank 10, 200 samples)", _myfm_runner(implicit, day), "bayes"))
    except ImportError:
        missing.append("myfm")
    return peers, missing


def _myfm_runner(implicit, day=False):
    """myFM's Gibbs sampler on the features BayesianMF uses: users and items, and with
    ``implicit`` the items each user rated and the users who rated each item, each
    weighted 1/sqrt(n), through myFM's relation blocks (one row per user or item);
    with ``day`` the rating's calendar day as a one-hot group (unseen days: none)."""

    def run(train, test, seed):
        import myfm
        import scipy.sparse as sps

        from latentfactors.data import IdIndex

        ui, ii = IdIndex(train["user"]), IdIndex(train["item"])
        nu, ni = len(ui), len(ii)
        tu, ti = ui.encode(train["user"]), ii.encode(train["item"])
        pairs = np.unique(tu.astype(np.int64) * ni + ti)
        pu, pi = pairs // ni, pairs % ni

        def block(n_rows, n_other, owner, member):
            # Row n_rows (all zeros) stands for an id the training data never saw.
            eye = sps.eye(n_rows + 1, n_rows, format="csr")
            if not implicit:
                return eye, [n_rows]
            counts = np.bincount(owner, minlength=n_rows)
            sets = sps.csr_matrix(
                (1 / np.sqrt(counts[owner]), (owner, member)), shape=(n_rows + 1, n_other)
            )
            return sps.hstack([eye, sets], format="csr"), [n_rows, n_other]

        user_block, user_groups = block(nu, ni, pu, pi)
        item_block, item_groups = block(ni, nu, pi, pu)

        def relations(users, items):
            return [
                myfm.RelationBlock(np.where(users >= 0, users, nu), user_block),
                myfm.RelationBlock(np.where(items >= 0, items, ni), item_block),
            ]

        days = np.unique(train["timestamp"].to_numpy() // 86_400) if day else np.zeros(0)

        def day_matrix(frame):
            if not day:
                return sps.csr_matrix((len(frame), 0))
            d = frame["timestamp"].to_numpy() // 86_400
            code = np.minimum(np.searchsorted(days, d), len(days) - 1)
            seen = days[code] == d
            rows = np.flatnonzero(seen)
            return sps.csr_matrix(
                (np.ones(len(rows)), (rows, code[seen])), shape=(len(frame), len(days))
            )

        fm = myfm.MyFMRegressor(rank=10, random_seed=seed)
        with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):
            fm.fit(  # its progress bar goes to stderr
                day_matrix(train),
                train["rating"].to_numpy(np.float64),
                X_rel=relations(tu, ti),
                n_iter=200,
                group_shapes=([len(days)] if day else []) + user_groups + item_groups,
            )
        test_u, test_i = ui.encode(test["user"]), ii.encode(test["item"])
        return fm.predict(day_matrix(test), relations(test_u, test_i))

    return run


def _ml100k_u1(data_home, seeds):
    """GroupLens's canonical ``u1.base``/``u1.test``; valid = a random 10% of u1.base."""
    from latentfactors.data import get_data_home, load_ratings

    folder = get_data_home(data_home) / "ml-100k"
    base = load_ratings(folder / "u1.base", columns=["user", "item", "rating", "timestamp"])
    test = load_ratings(folder / "u1.test", columns=["user", "item", "rating", "timestamp"])
    out = []
    for seed in range(seeds):
        train, valid = random_split(base, (0.9, 0.1), random_state=seed)
        out.append((train, valid, test))
    return out


def sgd_throughput(n_factors=32, n_ratings=2_000_000) -> float:
    """Million ratings per second of single-thread SGD epochs on synthetic data."""
    from latentfactors.data import make_synthetic_ratings

    frame, _ = make_synthetic_ratings(50_000, 10_000, n_ratings, rank=8, random_state=0)
    BiasedMF(n_factors, n_epochs=1, random_state=0).fit(frame)  # compile
    timings = []
    for epochs in (1, 6):
        model = BiasedMF(n_factors, n_epochs=epochs, random_state=0).fit(frame)
        timings.append(sum(model.history_["seconds"]))
    return 5 * n_ratings / (timings[1] - timings[0]) / 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dataset",
        default="ml-latest-small-2016",
        help="a MovieLens variant, or ml-100k-u1 for the canonical u1.base/u1.test split",
    )
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--only", choices=["biased", "mlp", "bayes"], default=None)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--no-throughput", action="store_true")
    args = parser.parse_args(argv)

    data_home = args.data_home or os.environ.get("LATENTFACTORS_DATA")
    if data_home is None and (HERE.parent.parent / "shared" / "data").is_dir():
        data_home = str(HERE.parent.parent / "shared" / "data")
    if args.dataset == "ml-100k-u1":
        splits = _ml100k_u1(data_home, args.seeds)
        frame = pd.concat([splits[0][0], splits[0][1]])  # all of u1.base
    else:
        frame = load_movielens(args.dataset, data_home=data_home)
        splits = [random_split(frame, random_state=s) for s in range(args.seeds)]
    protocol = (
        "u1.base (90% train / 10% valid, per seed) and u1.test"
        if args.dataset == "ml-100k-u1"
        else "80/12/8 random splits"
    )
    print(
        f"{args.dataset}: {len(frame):,} ratings; {protocol}, seeds "
        f"0..{args.seeds - 1}; test MSE median over seeds\n"
    )

    results = []
    for name, group, factory, uses_valid, published in _ours():
        if args.only and group != args.only:
            continue
        factory(0).fit(splits[0][0].iloc[:2000])  # compile outside the timings
        mses, secs = [], []
        for seed, (train, valid, test) in enumerate(splits):
            model = factory(seed)
            start = time.perf_counter()
            model.fit(train, valid=valid if uses_valid else None)
            secs.append(time.perf_counter() - start)
            mses.append(model.evaluate(test)["mse"])
        if args.dataset != "ml-latest-small-2016":
            published = None  # the notebook's figures are for the 2016 snapshot only
        results.append(_row(name, mses, secs, published))
        _print(results[-1])
    if not args.no_peers and args.only in (None, "bayes"):
        peers, missing = _peers()
        for name, run, group in peers:
            if args.only and group != args.only:
                continue
            mses, secs = [], []
            for seed, (train, _, test) in enumerate(splits):
                start = time.perf_counter()
                pred = np.clip(run(train, test, seed), 0.5, 5.0)
                secs.append(time.perf_counter() - start)
                mses.append(float(np.mean((pred - test["rating"].to_numpy()) ** 2)))
            results.append(_row(name, mses, secs, None))
            _print(results[-1])
        if missing:
            print(f"\npeers not installed (skipped): {', '.join(missing)}")
    throughput = None
    if not args.no_throughput:
        throughput = sgd_throughput()
        print(
            f"\nsingle-thread SGD, 32 factors, 2M synthetic ratings: {throughput:.1f} M ratings/s"
        )
    _write(args, results, throughput)


def _row(name, mses, secs, published):
    return {
        "model": name,
        "test_mse_median": statistics.median(mses),
        "test_mse_min": min(mses),
        "test_mse_max": max(mses),
        "test_rmse_median": statistics.median(np.sqrt(mses)),
        "fit_seconds_median": statistics.median(secs),
        "published": published,
        "test_mse_per_seed": mses,
    }


def _print(row):
    pub = f"  (notebook printed {row['published']:.3f})" if row["published"] else ""
    print(
        f"{row['model']:<40} MSE {row['test_mse_median']:.4f} "
        f"[{row['test_mse_min']:.4f}-{row['test_mse_max']:.4f}]  "
        f"RMSE {row['test_rmse_median']:.4f}  fit {row['fit_seconds_median']:.2f}s{pub}",
        flush=True,
    )


def _write(args, results, throughput):
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    # A partial run (--only) must not overwrite the full table.
    stem = (
        out / f"accuracy-{args.dataset}"
        if not args.only
        else out / f"accuracy-{args.dataset}-{args.only}"
    )
    meta = {
        "dataset": args.dataset,
        "seeds": args.seeds,
        "command": "python benchmarks/accuracy.py " + " ".join(sys.argv[1:]),
        "sgd_million_ratings_per_second": throughput,
    }
    stem.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": results}, indent=2))
    lines = [
        f"Test MSE on `{args.dataset}`, 80/12/8 random split, median of {args.seeds} seeds "
        f"(`{meta['command'].strip()}`).",
        "",
        "| model | test MSE (median) | range | RMSE | fit s | notebook printed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        pub = f"{r['published']:.3f}" if r["published"] else ""
        lines.append(
            f"| {r['model']} | {r['test_mse_median']:.4f} | "
            f"{r['test_mse_min']:.3f}-{r['test_mse_max']:.3f} | "
            f"{r['test_rmse_median']:.4f} | {r['fit_seconds_median']:.2f} | {pub} |"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"\nwrote {stem}.md and {stem}.json")


if __name__ == "__main__":
    main()
