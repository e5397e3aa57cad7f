"""Top-N at scale (time, peak memory, vs the full score matrix) and ranking quality.

Scale: ``recommend_all(n=10)`` for every user of a BiasedMF with random
factors (200,000 users x 50,000 items x 32 factors by default; the factors'
values do not change the work), each user with ``--seen`` training items to
exclude. Peak memory is the process's resident memory, sampled every 2 ms
during the call, minus what it held just before (the model, compiled
kernels); the numpy share of it is measured with ``tracemalloc``. The naive
approach -- the whole ``users x items`` score matrix, mask, ``argpartition``,
sort -- runs on the first ``--naive-users`` users for comparison.

Quality: MovieLens ``ml-latest-small`` (2018), ``user_holdout_split(0.2,
random_state=0)``; relevant = test rating >= 4; precision@10 and NDCG@10
over test users with a relevant item, training items excluded, against the
most-rated-items baseline. The model's ``center`` and the
``popularity_weight`` prior are chosen on a validation split of *train*
(``user_holdout_split(train, 0.2, random_state=1)``), never on test.

    python benchmarks/recommend.py                       # both parts, full size
    python benchmarks/recommend.py --part scale --users 20000 --items 20000
    python benchmarks/recommend.py --part quality --mlp
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from latentfactors import BiasedMF, load_movielens, user_holdout_split  # noqa: E402
from latentfactors.data import IdIndex  # noqa: E402
from latentfactors.metrics import evaluate_ranking, ranking_metrics  # noqa: E402

MB = 2**20


def rss() -> int:
    """Resident memory of this process in bytes."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Sample the resident memory in a thread; ``peak`` is the highest seen."""

    def __init__(self, every=0.002):
        self.every = every

    def __enter__(self):
        self.base = rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(self.every)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


def random_model(n_users, n_items, k, n_seen, n_threads, seed=0) -> BiasedMF:
    """A BiasedMF in fitted state with random parameters (no training needed)."""
    rng = np.random.default_rng(seed)
    m = BiasedMF(k, n_threads=n_threads, random_state=seed)
    m.user_index_ = IdIndex(np.arange(n_users))
    m.item_index_ = IdIndex(np.arange(n_items))
    m.global_mean_ = 3.5
    m.rating_range_ = (0.5, 5.0)
    m.user_factors_ = rng.standard_normal((n_users, k), dtype=np.float32) * 0.2
    m.item_factors_ = rng.standard_normal((n_items, k), dtype=np.float32) * 0.2
    m.user_bias_ = rng.standard_normal(n_users, dtype=np.float32) * 0.3
    m.item_bias_ = rng.standard_normal(n_items, dtype=np.float32) * 0.3
    seen = np.sort(rng.integers(0, n_items, size=(n_users, n_seen), dtype=np.int32), axis=1)
    m.seen_items_ = seen.ravel()
    m.seen_indptr_ = np.arange(n_users + 1, dtype=np.int64) * n_seen
    m.history_ = {}
    m.n_epochs_ = m.best_epoch_ = 0
    return m


def naive_topn(m, users, n):
    """The full users x items score matrix, seen items masked, argpartition, sort."""
    P, Q, bu, bi, mu = m._dot_parts()
    S = P[users] @ Q.T
    S += bi
    S += (bu[users] + np.float32(mu))[:, None]
    for r, u in enumerate(users):
        S[r, m.seen_items_[m.seen_indptr_[u] : m.seen_indptr_[u + 1]]] = -np.inf
    part = np.argpartition(-S, n - 1, axis=1)[:, :n]
    top = np.take_along_axis(S, part, axis=1)
    order = np.lexsort((part, -top), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(top, order, axis=1)


def bench_scale(args):
    nu, ni, k = args.users, args.items, args.factors
    m = random_model(nu, ni, k, args.seen, args.threads)
    model_mb = sum(a.nbytes for a in m._get_state().values()) / MB
    seen_mb = (m.seen_items_.nbytes + m.seen_indptr_.nbytes) / MB
    m.recommend_all(10, users=np.arange(64), as_frame=False, batch_size=16)  # compile
    print(
        f"## recommend_all(n=10): {nu:,} users x {ni:,} items x {k} factors, "
        f"{args.seen} seen items per user, {args.threads} thread(s)\n"
    )
    print(f"model parameters {model_mb:.0f} MB, seen-items CSR {seen_mb:.0f} MB")
    tracemalloc.start()
    with PeakRSS() as mem:
        start = time.perf_counter()
        top = m.recommend_all(10, as_frame=False, batch_size=args.batch_size)
        seconds = time.perf_counter() - start
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out_mb = (top.items.nbytes + top.scores.nbytes + top.item_codes.nbytes) / MB
    print(f"time {seconds:.1f} s = {1000 * seconds / nu:.3f} s per 1,000 users")
    print(
        f"peak memory over the model: {(mem.peak - mem.base) / MB:.0f} MB resident "
        f"(numpy allocations {traced / MB:.0f} MB, of which the result {out_mb:.0f} MB)\n"
    )

    nn = min(args.naive_users, nu)
    users = np.arange(nn)
    m.recommend_all(10, users=users[:64], as_frame=False)
    with PeakRSS() as mem_ours:
        start = time.perf_counter()
        ours = m.recommend_all(10, users=users, as_frame=False, batch_size=args.batch_size)
        t_ours = time.perf_counter() - start
    with PeakRSS() as mem_naive:
        start = time.perf_counter()
        codes, _ = naive_topn(m, users, 10)
        t_naive = time.perf_counter() - start
    same = np.mean([set(a) == set(b) for a, b in zip(ours.item_codes, codes)])
    print(f"## vs the full score matrix, first {nn:,} users\n")
    print("| method | s per 1,000 users | peak MB over the model |")
    print("|---|---:|---:|")
    print(
        f"| recommend_all (blocks) | {1000 * t_ours / nn:.3f} | "
        f"{(mem_ours.peak - mem_ours.base) / MB:.0f} |"
    )
    print(
        f"| naive full matrix | {1000 * t_naive / nn:.3f} | "
        f"{(mem_naive.peak - mem_naive.base) / MB:.0f} |"
    )
    print(
        f"\nsame top-10 sets for {100 * same:.2f}% of users (the naive float32 "
        "scores can swap near-ties)\n"
    )


def _binary(frame, users: IdIndex, items: IdIndex):
    """The 0/1 "rated" matrix of ``frame`` (scipy CSR, users x items)."""
    import scipy.sparse as sps

    u, i = users.encode(frame["user"].to_numpy()), items.encode(frame["item"].to_numpy())
    X = sps.csr_matrix((np.ones(len(u)), (u, i)), shape=(len(users), len(items)))
    X.data[:] = 1.0
    return X


def _scored(scores_of, fit_part, held_out):
    """Ranking metrics of a reference method given ``scores_of(X, user_codes)`` -> dense
    scores; training items excluded, k=10, users of ``held_out`` known to ``fit_part``."""
    users, items = IdIndex(fit_part["user"]), IdIndex(fit_part["item"])
    X = _binary(fit_part, users, items)
    who = np.intersect1d(held_out["user"].unique(), users.ids)
    codes = users.encode(who)
    top = np.empty((len(codes), 10), dtype=np.int64)
    for lo in range(0, len(codes), 1024):
        block = codes[lo : lo + 1024]
        S = np.asarray(scores_of(X, block), dtype=np.float64)
        S[X[block].toarray() > 0] = -np.inf
        part = np.argpartition(-S, 10, axis=1)[:, :10]
        order = np.argsort(-np.take_along_axis(S, part, 1), axis=1, kind="stable")
        top[lo : lo + len(block)] = np.take_along_axis(part, order, 1)
    return ranking_metrics((who, items.ids[top]), held_out, 10, catalogue=len(items))


def ease(lam):
    """EASE (Steck 2019) on the 0/1 matrix: ``B = I - P / diag(P)``, ``P = (X^T X + lam I)^-1``."""

    def fit(X):
        G = (X.T @ X).toarray()
        G[np.diag_indices_from(G)] += lam
        P = np.linalg.inv(G)
        B = -P / np.diag(P)
        B[np.diag_indices_from(B)] = 0.0
        return lambda X, rows: X[rows] @ B

    return fit


def pure_svd(k):
    """PureSVD (Cremonesi et al. 2010): the rank-k truncated SVD of the 0/1 matrix."""

    def fit(X):
        from scipy.sparse.linalg import svds

        _, _, Vt = svds(X, k=k, random_state=0)
        return lambda X, rows: (X[rows] @ Vt.T) @ Vt

    return fit


def implicit_als(factors, reg, alpha, threads):
    """benfred/implicit's CPU ALS (conjugate gradient, its default), 15 iterations."""

    def fit(X):
        from implicit.cpu.als import AlternatingLeastSquares

        model = AlternatingLeastSquares(
            factors=factors, regularization=reg, alpha=alpha, iterations=15,
            num_threads=threads, random_state=0,
        )  # fmt: skip
        model.fit(X.tocsr(), show_progress=False)
        return lambda X, rows: model.user_factors[rows] @ model.item_factors.T

    return fit


def _reference(name, fitter, fit_part, held_out):
    """``(metrics, fit seconds)`` of a reference method fitted on ``fit_part``."""
    users, items = IdIndex(fit_part["user"]), IdIndex(fit_part["item"])
    X = _binary(fit_part, users, items)
    start = time.perf_counter()
    scores_of = fitter(X)
    seconds = time.perf_counter() - start
    return _scored(scores_of, fit_part, held_out), seconds


def _choose(label, grid, fit_part, valid):
    """The grid point with the best validation NDCG@10 (printed as it goes)."""
    best = None
    for name, fitter in grid:
        r, seconds = _reference(name, fitter, fit_part, valid)
        print(f"| {label} | {name} | {r['ndcg']:.4f} | {seconds:.2f} |", flush=True)
        if best is None or r["ndcg"] > best[0]:
            best = (r["ndcg"], name, fitter)
    return best[1], best[2]


def _timed(model, frame):
    """``model`` fitted on ``frame``, and the seconds the fit took."""
    start = time.perf_counter()
    model.fit(frame)
    return model, time.perf_counter() - start


def bench_quality(args):
    from latentfactors import ImplicitMF

    data_home = args.data_home or os.environ.get("LATENTFACTORS_DATA")
    if data_home is None and (HERE.parent.parent / "shared" / "data").is_dir():
        data_home = str(HERE.parent.parent / "shared" / "data")
    threads = os.cpu_count() if args.threads == -1 else args.threads
    try:
        import implicit  # noqa: F401

        have_implicit = True
    except ImportError:
        have_implicit = False
        print("implicit is not installed (pip install implicit): its rows are left out\n")
    for dataset in args.datasets.split(","):
        ratings = load_movielens(dataset, data_home=data_home)
        train, test = user_holdout_split(ratings, 0.2, random_state=0)
        fit_part, valid = user_holdout_split(train, 0.2, random_state=1)
        print(
            f"## {dataset}: {len(train):,} train / {len(test):,} test ratings "
            "(user_holdout_split 0.2, seed 0); k=10, relevant = rating >= 4\n"
        )
        print("Choices on the validation split of train (user_holdout_split 0.2, seed 1):\n")
        print("| method | setting | valid NDCG@10 | fit s |")
        print("|---|---|---:|---:|")
        best = None
        for center in (True, False):
            model = BiasedMF(center=center, random_state=0).fit(fit_part)
            for w in (0.0, 0.3, 1.0, 3.0):
                r = evaluate_ranking(model, fit_part, valid, popularity_weight=w)
                print(f"| BiasedMF | center={center}, popularity_weight={w} | {r['ndcg']:.4f} | |")
                if best is None or r["ndcg"] > best[0]:
                    best = (r["ndcg"], center, w)
        _, center, w = best
        svd_name, svd = _choose(
            "PureSVD", [(f"k={k}", pure_svd(k)) for k in (20, 50, 100)], fit_part, valid
        )
        ease_name, ease_fit = _choose(
            "EASE", [(f"lambda={lam}", ease(lam)) for lam in (100, 300, 1000)], fit_part, valid
        )
        if have_implicit:
            grid = [
                (f"factors={f}, reg={reg}, alpha={a}", implicit_als(f, reg, a, threads))
                for f in (32, 64, 128)
                for reg in (0.01, 0.1, 1.0)
                for a in (1.0, 10.0, 40.0)
            ]
            als_name, als_fit = _choose("implicit ALS", grid, fit_part, valid)

        rows = []
        rows.append(("popularity (most-rated)", evaluate_ranking("popularity", train, test), None))
        default, seconds = _timed(BiasedMF(random_state=0), train)
        rows.append(("BiasedMF defaults, recommend_all", evaluate_ranking(default, train, test),
                     seconds))  # fmt: skip
        chosen = default if center else BiasedMF(center=False, random_state=0).fit(train)
        rows.append((
            f"BiasedMF center={center} + popularity_weight={w} (chosen on valid)",
            evaluate_ranking(chosen, train, test, popularity_weight=w), None,
        ))  # fmt: skip
        if args.mlp:
            from latentfactors import MLPMF

            mlp, seconds = _timed(MLPMF(random_state=0), train)
            rows.append(("MLPMF defaults, recommend_all", evaluate_ranking(mlp, train, test),
                         seconds))  # fmt: skip
        for label, name, fitter in [("PureSVD", svd_name, svd), ("EASE", ease_name, ease_fit)] + (
            [("implicit 0.7 ALS", als_name, als_fit)] if have_implicit else []
        ):
            r, seconds = _reference(label, fitter, train, test)
            rows.append((f"{label}, {name} (chosen on valid)", r, seconds))
        ImplicitMF(n_factors=4, n_epochs=1).fit(train)  # compile, untimed
        ours, seconds = _timed(ImplicitMF(random_state=0), train)
        rows.append(("ImplicitMF defaults", evaluate_ranking(ours, train, test), seconds))

        print(f"\ntest ({threads} threads where a method uses them):\n")
        print("| ranking | precision@10 | NDCG@10 | recall@10 | MAP@10 | coverage | fit s |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, r, seconds in rows:
            fit_s = "" if seconds is None else f"{seconds:.2f}"
            print(
                f"| {name} | {r['precision']:.4f} | {r['ndcg']:.4f} | {r['recall']:.4f} | "
                f"{r['map']:.4f} | {r['coverage']:.4f} | {fit_s} |"
            )
        print(f"\n{rows[0][1]['n_users']} test users with a relevant item\n", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["scale", "quality", "both"], default="both")
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--seen", type=int, default=20, help="training items per user")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=-1)
    parser.add_argument("--naive-users", type=int, default=5_000)
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--mlp", action="store_true", help="also rank with MLPMF defaults")
    parser.add_argument("--datasets", default="ml-latest-small,ml-100k")
    args = parser.parse_args(argv)
    if args.part in ("scale", "both"):
        bench_scale(args)
    if args.part in ("quality", "both"):
        bench_quality(args)


if __name__ == "__main__":
    main()
