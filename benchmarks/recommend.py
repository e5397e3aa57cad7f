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
from latentfactors.metrics import evaluate_ranking  # noqa: E402

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


def bench_quality(args):
    data_home = args.data_home or os.environ.get("LATENTFACTORS_DATA")
    if data_home is None and (HERE.parent.parent / "shared" / "data").is_dir():
        data_home = str(HERE.parent.parent / "shared" / "data")
    ratings = load_movielens("ml-latest-small", data_home=data_home)
    train, test = user_holdout_split(ratings, 0.2, random_state=0)
    fit_part, valid = user_holdout_split(train, 0.2, random_state=1)
    print(
        f"## ml-latest-small: {len(train):,} train / {len(test):,} test ratings "
        "(user_holdout_split 0.2, seed 0); k=10, relevant = rating >= 4\n"
    )

    # Choose center and popularity_weight on the validation split of train.
    weights = (0.0, 0.3, 1.0, 3.0)
    best = None
    print("validation (fit on 80% of train):\n")
    print("| center | popularity_weight | precision@10 | NDCG@10 |")
    print("|---|---:|---:|---:|")
    for center in (True, False):
        model = BiasedMF(center=center, random_state=0).fit(fit_part)
        for w in weights:
            r = evaluate_ranking(model, fit_part, valid, popularity_weight=w)
            print(f"| {center} | {w} | {r['precision']:.4f} | {r['ndcg']:.4f} |")
            if best is None or r["ndcg"] > best[0]:
                best = (r["ndcg"], center, w)
    _, center, w = best
    print(f"\nchosen on validation: center={center}, popularity_weight={w}\n")

    rows = [("popularity (most-rated)", evaluate_ranking("popularity", train, test))]
    default = BiasedMF(random_state=0).fit(train)
    rows.append(("BiasedMF defaults, model score only", evaluate_ranking(default, train, test)))
    chosen = default if center else BiasedMF(center=False, random_state=0).fit(train)
    if not center:
        rows.append(
            ("BiasedMF center=False, model score only", evaluate_ranking(chosen, train, test))
        )
    rows.append(
        (
            f"BiasedMF center={center} + popularity_weight={w}",
            evaluate_ranking(chosen, train, test, popularity_weight=w),
        )
    )
    if args.mlp:
        from latentfactors import MLPMF

        mlp = MLPMF(random_state=0).fit(train)
        rows.append(("MLPMF defaults, model score only", evaluate_ranking(mlp, train, test)))
        rows.append(
            (
                f"MLPMF defaults + popularity_weight={w}",
                evaluate_ranking(mlp, train, test, popularity_weight=w),
            )
        )
    pop = rows[0][1]
    print("test:\n")
    print(
        "| ranking | precision@10 | NDCG@10 | recall@10 | MAP@10 | hit rate | coverage "
        "| vs popularity (P@10 / NDCG@10) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        dp = 100 * (r["precision"] / pop["precision"] - 1)
        dn = 100 * (r["ndcg"] / pop["ndcg"] - 1)
        print(
            f"| {name} | {r['precision']:.4f} | {r['ndcg']:.4f} | {r['recall']:.4f} | "
            f"{r['map']:.4f} | {r['hit_rate']:.3f} | {r['coverage']:.4f} | "
            f"{dp:+.1f}% / {dn:+.1f}% |"
        )
    print(f"\n{pop['n_users']} test users with a relevant item\n")


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
    args = parser.parse_args(argv)
    if args.part in ("scale", "both"):
        bench_scale(args)
    if args.part in ("quality", "both"):
        bench_quality(args)


if __name__ == "__main__":
    main()
