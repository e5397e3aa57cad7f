"""SGD training throughput against LIBMF and Surprise, measured side by side.

Data: ``make_synthetic_ratings(200_000, 50_000, 20_000_000, rank=16)``.
For 8, 32 and 128 factors and 1 and 2 threads it prints seconds per epoch and
million ratings updated per second, excluding one-off set-up (encoding ids,
laying out blocks, compiling). For the peers, whose epochs cannot be timed
from outside, an epoch is timed as LIBMF's own loop does: a fit of ``1 + D``
epochs minus a fit of 1 epoch, divided by ``D``. For latentfactors the
model's own per-epoch wall times (``history_["seconds"]``, which include the
Python work between epochs) are used, the first epoch left out; both
measure the same thing, but the difference of two whole fits is much
noisier. Configurations are measured in interleaved rounds and the median
is shown.

    python benchmarks/throughput.py                      # the full table
    python benchmarks/throughput.py --ratings 2000000 --rounds 1   # quick look
    python benchmarks/throughput.py --big                # + 100M ratings with peak RSS
    python benchmarks/throughput.py --adam               # + Adam epochs, 1 and 2 threads

Peers (``pip install libmf scikit-surprise``) run in the same process when
installed: PyPI ``libmf`` (its default build), and, with ``--libmf-avx
PATH``, a build of the same sources with AVX and OpenMP, made for example by

    g++ -O3 -march=native -DUSEAVX -DUSEOMP -fopenmp -std=c++11 -shared -fPIC \\
        src_cpp/mf.cpp src_cpp/libmf_interface.cpp -o libmf_avx.so

from the ``libmf`` source distribution. Surprise SVD (one thread, Cython) is
timed on a 2M-rating sample of the same data (its per-rating cost does not
depend on the size).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from latentfactors import BiasedMF, make_synthetic_ratings  # noqa: E402
from latentfactors.data import IdIndex  # noqa: E402
from latentfactors.kernels.layout import grid_plan  # noqa: E402
from latentfactors.models.biased_mf import ADAM_PARALLEL_MIN_BATCH  # noqa: E402


def fit_seconds(make_model, data, epochs) -> float:
    model = make_model(epochs)
    start = time.perf_counter()
    model.fit(data)
    return time.perf_counter() - start


def epoch_seconds(make_model, data, extra) -> float:
    """Seconds per epoch: (fit of 1 + extra epochs) - (fit of 1 epoch), over extra."""
    one = fit_seconds(make_model, data, 1)
    many = fit_seconds(make_model, data, 1 + extra)
    return max(1e-9, (many - one) / extra)


SETUP = {}  # configuration -> seconds of one-off set-up per fit (fit time minus epochs)


def ours_epoch_seconds(k, threads, data, extra, **kwargs) -> float:
    """Median wall time of epochs 2..1+extra of one fit (epoch 1 also warms the caches)."""
    model = BiasedMF(k, n_epochs=1 + extra, n_threads=threads, random_state=0, **kwargs)
    start = time.perf_counter()
    model.fit(data)
    total = time.perf_counter() - start
    SETUP.setdefault((k, threads), []).append(total - sum(model.history_["seconds"]))
    return statistics.median(model.history_["seconds"][1:])


class LibMF:
    """PyPI ``libmf`` (or another build of it via ``LIBMF_OBJ``) with LIBMF's defaults."""

    def __init__(self, k, threads, codes):
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            from libmf import mf
        self.mf, self.k, self.threads = mf, k, threads
        self.matrix = codes

    def __call__(self, epochs):
        outer = self

        class Runner:
            def fit(self, _):
                engine = outer.mf.MF(
                    k=outer.k, nr_threads=outer.threads, nr_iters=epochs, quiet=True
                )
                engine.fit(outer.matrix)

        return Runner()


def surprise_epoch_seconds(frame, k, extra, sample=2_000_000) -> float:
    from surprise import SVD, Dataset, Reader

    part = frame.iloc[:sample]
    trainset = Dataset.load_from_df(
        part[["user", "item", "rating"]], Reader(rating_scale=(0.5, 5.0))
    ).build_full_trainset()
    times = []
    for epochs in (1, 1 + extra):
        algo = SVD(n_factors=k, n_epochs=epochs, random_state=0)
        start = time.perf_counter()
        algo.fit(trainset)
        times.append(time.perf_counter() - start)
    return (times[1] - times[0]) / extra * len(frame) / len(part)


def bytes_per_update(k, n, n_items, n_groups, width) -> tuple[float, float]:
    """(bytes from memory per update on the block schedule; bytes if nothing were cached).

    On the schedule an epoch streams each rating's item and value once (8
    bytes), each group's user code once (4 bytes) and its user row (factors +
    bias) once in and once out, and each block's item stripe once in and once
    out; everything else hits the core's cache. Without any cache, every
    update would read its user, item and value and read and write a user row
    and an item row. (Data small enough for one block is instead reshuffled in
    place every epoch, which also rewrites every triple; it never comes to
    that here.)
    """
    row = 4 * k + 4
    streamed = 8 + ((4 + 2 * row) * n_groups + 2 * row * n_items * width) / n
    return streamed, 12 + 2 * 2 * row


def schedule_shape(frame, k) -> tuple[int, int]:
    """``(B, groups)`` of the SGD layout for these ratings: ``groups`` counts
    (user, item stripe) pairs, with items spread over stripes at random."""
    users = frame["user"].to_numpy()
    items = frame["item"].to_numpy()
    width, by_user = grid_plan(len(np.unique(users)), len(np.unique(items)), len(frame), k)
    if not by_user:
        return width, width * width
    stripe = np.random.default_rng(0).integers(0, width, int(items.max()) + 1)
    return width, len(np.unique(users.astype(np.int64) * width + stripe[items]))


@numba.njit(parallel=True, fastmath=True)
def _read_all(x):
    total = 0.0
    for i in numba.prange(len(x)):
        total += x[i]
    return total


def read_bandwidth(threads) -> tuple[int, float]:
    """``(threads used, GB/s)`` of a plain parallel sum over 1 GB: what the memory
    gives a pass that only reads."""
    big = np.ones(2**28, dtype=np.float32)
    _read_all(big[:16])
    used = min(threads, numba.config.NUMBA_NUM_THREADS)
    prev = numba.get_num_threads()
    numba.set_num_threads(used)
    try:
        seconds = []
        for _ in range(5):
            start = time.perf_counter()
            _read_all(big)
            seconds.append(time.perf_counter() - start)
    finally:
        numba.set_num_threads(prev)
    return used, big.nbytes / min(seconds) / 1e9


def peak_rss_child(n_ratings, k, threads):
    """Fit in a fresh process; report RSS before fit, peak during fit, and the bound."""
    code = f"""
import json, threading, time, os, sys
sys.path.insert(0, {str(HERE.parent)!r})
from latentfactors import BiasedMF, make_synthetic_ratings
def rss():
    with open('/proc/self/status') as fh:
        for line in fh:
            if line.startswith('VmRSS'):
                return int(line.split()[1]) * 1024
frame, _ = make_synthetic_ratings(200_000, 50_000, {n_ratings}, rank=16, random_state=0)
BiasedMF(8, n_epochs=1).fit(frame.iloc[:10_000])
import gc; gc.collect()
base = rss(); peak = [base]; done = [False]
def watch():
    while not done[0]:
        peak[0] = max(peak[0], rss()); time.sleep(0.01)
t = threading.Thread(target=watch); t.start()
start = time.perf_counter()
model = BiasedMF({k}, n_epochs=3, n_threads={threads}, random_state=0).fit(frame)
secs = time.perf_counter() - start
done[0] = True; t.join()
n = len(frame)
params = sum(a.nbytes for a in model._get_state().values())
print(json.dumps(dict(base=base, peak=peak[0], encoded=12 * n, params=params, seconds=secs,
                      epochs=model.history_["seconds"])))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", type=int, default=20_000_000)
    parser.add_argument("--factors", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=4, help="D in (1 + D) - 1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--libmf-avx", default=None, help="path to an AVX/OpenMP libmf .so")
    parser.add_argument("--big", action="store_true", help="also 100M ratings, peak RSS")
    parser.add_argument("--adam", action="store_true", help="also Adam (batch 256) at 32 factors")
    parser.add_argument(
        "--adam-epochs", type=int, default=2, help="Adam epochs timed per fit (after the first)"
    )
    parser.add_argument("--adam-rounds", type=int, default=2, help="Adam fits per thread count")
    parser.add_argument("--adam-batch", type=int, default=256, help="Adam's batch size")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    frame, _ = make_synthetic_ratings(200_000, 50_000, args.ratings, rank=16, random_state=0)
    n = len(frame)
    print(
        f"data: {n:,} ratings, 200,000 users x 50,000 items "
        f"(generated in {time.perf_counter() - t0:.1f}s)"
    )
    BiasedMF(8, n_epochs=1).fit(frame.iloc[:10_000])  # compile once, outside the timings

    configs = [
        (f"latentfactors k={k} t={t}", None, k, t) for k in args.factors for t in args.threads
    ]
    if not args.no_peers:
        try:
            ui, ii = IdIndex(frame["user"]), IdIndex(frame["item"])
            codes = np.column_stack(
                [ui.encode(frame["user"]), ii.encode(frame["item"]), frame["rating"]]
            ).astype(np.float32)
            for k in args.factors:
                for t in args.threads:
                    configs.append((f"libmf (PyPI) k={k} t={t}", LibMF(k, t, codes), k, t))
        except ImportError:
            print("libmf not installed: pip install libmf  (skipped)")
    timings = {name: [] for name, *_ in configs}
    for r in range(args.rounds):
        for name, make, k, t in configs:
            if make is None:
                timings[name].append(ours_epoch_seconds(k, t, frame, args.epochs))
            else:
                timings[name].append(epoch_seconds(make, frame, args.epochs))
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    extra = {}
    if args.libmf_avx and not args.no_peers:
        for k in args.factors:
            for t in args.threads:
                extra[f"libmf AVX k={k} t={t}"] = _libmf_child(args, k, t)
    surprise = {}
    if not args.no_peers:
        try:
            for k in args.factors:
                surprise[k] = surprise_epoch_seconds(frame, k, args.epochs)
        except ImportError:
            print("scikit-surprise not installed: pip install scikit-surprise  (skipped)")

    print(
        f"\n{'configuration':<30} {'s/epoch':>8} {'M upd/s':>8} {'memory GB/s':>11} "
        f"{'if uncached':>12}"
    )
    rows = {}
    for name, _, k, _ in configs:
        sec = statistics.median(timings[name])
        rows[name] = (sec, k)
    for name, sec in extra.items():
        rows[name] = (sec, int(name.split("k=")[1].split()[0]))
    for k, sec in surprise.items():
        rows[f"surprise SVD k={k} t=1"] = (sec, k)
    shapes = {k: schedule_shape(frame, k) for k in args.factors}
    n_items = frame["item"].nunique()
    for name, (sec, k) in rows.items():
        rate = n / sec
        width, groups = shapes[k]
        memory, uncached = bytes_per_update(k, n, n_items, groups, width)
        # Peers lay out their data and rows in their own ways: no estimate for them.
        mine = name.startswith("latentfactors")
        print(
            f"{name:<30} {sec:8.3f} {rate / 1e6:8.1f} "
            f"{(f'{rate * memory / 1e9:.1f}' if mine else '-'):>11} "
            f"{(f'{rate * uncached / 1e9:.1f}' if mine else '-'):>12}"
        )
    bandwidth = dict(read_bandwidth(t) for t in sorted(set(args.threads)))
    print(
        "(memory GB/s: what our block schedule must move to and from memory at that rate "
        "(each rating once, each group's user row and each block's item stripe in and out), "
        "against a read bandwidth measured here of "
        + ", ".join(
            f"{bw:.1f} GB/s on {t} thread{'s' if t > 1 else ''}" for t, bw in bandwidth.items()
        )
        + "; 'if uncached' counts a user and an item row read and written per update: "
        "where that exceeds the bandwidth, the rows must be coming from the cores' caches)"
    )
    for k, (width, groups) in shapes.items():
        print(
            f"(k={k}: {width} x {width} blocks, {groups:,} user groups, "
            f"{n / groups:.1f} ratings per group)"
        )
    _ratios(rows, n)
    if SETUP:
        print(
            "\nlatentfactors one-off set-up per fit (encoding ids, CSR of seen items, layout, "
            "final write-back of renumbered rows):"
        )
        for (k, t), secs in SETUP.items():
            print(f"  k={k} t={t}: {statistics.median(secs):.1f}s (median of {len(secs)} fits)")
    if args.adam:
        last, batch = 1 + args.adam_epochs, args.adam_batch
        print(
            f"\nlatentfactors Adam, k=32, batch {batch} (median of epochs 2..{last} of a fit, "
            f"thread counts alternating over {args.adam_rounds} rounds):"
        )
        if batch < ADAM_PARALLEL_MIN_BATCH:
            print(
                f"  (batches under {ADAM_PARALLEL_MIN_BATCH} run on one thread whatever "
                "n_threads is: the rows below differ only by noise)"
            )
        adam = {t: [] for t in args.threads}
        for r in range(args.adam_rounds):
            for t in args.threads if r % 2 == 0 else args.threads[::-1]:
                adam[t].append(
                    ours_epoch_seconds(
                        32, t, frame, args.adam_epochs, optimizer="adam", batch_size=batch
                    )
                )
        for t, secs in adam.items():
            sec = statistics.median(secs)
            print(f"  t={t}: {sec:.2f} s/epoch, {n / sec / 1e6:.2f} M ratings/s")
    if args.big:
        res = peak_rss_child(100_000_000, 32, max(args.threads))
        extra_mb = (res["peak"] - res["base"]) / 2**20
        bound = 2 * (res["encoded"] + res["params"]) / 2**20
        print(
            f"\n100M ratings, k=32, {max(args.threads)} threads: fit of 3 epochs "
            f"{res['seconds']:.1f}s, epochs {[round(s, 2) for s in res['epochs']]}; "
            f"peak RSS over the frame {extra_mb:,.0f} MB "
            f"(bound: 2 x (encoded {res['encoded'] / 2**20:,.0f} MB + "
            f"params {res['params'] / 2**20:,.0f} MB) = {bound:,.0f} MB)"
        )


def _libmf_child(args, k, t):
    code = f"""
import sys, time, json
sys.path.insert(0, {str(HERE)!r})
import throughput as tp
from latentfactors import make_synthetic_ratings
from latentfactors.data import IdIndex
import numpy as np
frame, _ = make_synthetic_ratings(200_000, 50_000, {args.ratings}, rank=16, random_state=0)
ui, ii = IdIndex(frame["user"]), IdIndex(frame["item"])
codes = np.column_stack([ui.encode(frame["user"]), ii.encode(frame["item"]),
                         frame["rating"]]).astype(np.float32)
runs = [tp.epoch_seconds(tp.LibMF({k}, {t}, codes), None, {args.epochs})
        for _ in range({args.rounds})]
print(json.dumps(sorted(runs)[len(runs) // 2]))
"""
    env = {**os.environ, "LIBMF_OBJ": args.libmf_avx}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _ratios(rows, n):
    def rate(name):
        return n / rows[name][0] if name in rows else None

    print()
    for k in sorted({k for _, k in rows.values()}):
        for t in (1, 2):
            mine = rate(f"latentfactors k={k} t={t}")
            if mine is None:
                continue
            parts = []
            for peer in (
                f"libmf (PyPI) k={k} t={t}",
                f"libmf AVX k={k} t={t}",
                f"surprise SVD k={k} t=1",
            ):
                other = rate(peer)
                if other:
                    parts.append(f"{mine / other:.2f}x {peer.rsplit(' k=', 1)[0]}")
            if parts:
                print(f"latentfactors k={k} t={t}: " + ", ".join(parts))


if __name__ == "__main__":
    main()
