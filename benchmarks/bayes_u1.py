"""BayesianMF and myFM on MovieLens 100k's canonical split: all of ``u1.base`` to fit,
``u1.test`` to score (RMSE), the same features, rank and number of samples side by side.

    python benchmarks/bayes_u1.py            # seed 0
    python benchmarks/bayes_u1.py --seeds 3

myFM runs when installed (``pip install myfm``). Results go to
``benchmarks/results/bayes-ml-100k-u1.txt``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _results import append_report  # noqa: E402
from accuracy import _myfm_runner  # noqa: E402

from latentfactors import BayesianMF  # noqa: E402
from latentfactors.data import get_data_home, load_ratings  # noqa: E402

CONFIGS = [  # (name, BayesianMF parameters, myFM's implicit, myFM's day)
    ("users + items", {}, False, False),
    ("+ implicit", {"implicit": True}, True, False),
    ("+ implicit + day", {"implicit": True, "time": "day"}, True, True),
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--data-home", default=os.environ.get("LATENTFACTORS_DATA"))
    args = parser.parse_args(argv)
    folder = get_data_home(args.data_home) / "ml-100k"
    columns = ["user", "item", "rating", "timestamp"]
    base = load_ratings(folder / "u1.base", columns=columns)
    test = load_ratings(folder / "u1.test", columns=columns)
    truth = test["rating"].to_numpy(np.float64)
    try:
        import myfm  # noqa: F401

        have_myfm = True
    except ImportError:
        have_myfm = False
    BayesianMF(n_samples=2, implicit=True, time="day").fit(base.iloc[:2000])  # compile first
    lines = [
        f"# {datetime.date.today()}: python benchmarks/bayes_u1.py --seeds {args.seeds} "
        f"(u1.base {len(base):,} -> u1.test {len(test):,}; RMSE, median over seeds; "
        "rank 10, 200 sweeps; fit seconds on all cores / myFM on one)",
        f"{'features':<20} {'BayesianMF':>10} {'fit s':>6} {'myFM':>8} {'fit s':>6}",
    ]
    print(lines[0])
    for name, params, implicit, day in CONFIGS:
        ours, ours_s, peer, peer_s = [], [], [], []
        for seed in range(args.seeds):
            start = time.perf_counter()
            model = BayesianMF(random_state=seed, **params).fit(base)
            ours_s.append(time.perf_counter() - start)
            ours.append(model.evaluate(test)["rmse"])
            if have_myfm:
                start = time.perf_counter()
                pred = np.clip(_myfm_runner(implicit, day)(base, test, seed), 1, 5)
                peer_s.append(time.perf_counter() - start)
                peer.append(float(np.sqrt(np.mean((pred - truth) ** 2))))
        row = f"{name:<20} {statistics.median(ours):>10.4f} {statistics.median(ours_s):>6.1f}"
        if have_myfm:
            row += f" {statistics.median(peer):>8.4f} {statistics.median(peer_s):>6.1f}"
        lines.append(row)
        print(row, flush=True)
    if not have_myfm:
        lines.append("myFM not installed: pip install myfm")
    append_report("bayes-ml-100k-u1.txt", lines)


if __name__ == "__main__":
    main()
