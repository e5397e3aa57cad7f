"""Seconds per Gibbs sweep and peak memory of BayesianMF with the implicit groups at scale.

Each configuration runs in a child process on the same planted ratings
(``make_synthetic_ratings``, ml-20m's shape by default): a fit of a few sweeps
at rank 32 with ``implicit=True``; the child reports its sweep times and its
peak resident memory (``ru_maxrss``), which includes the ratings themselves.

    python benchmarks/bayes_sweeps.py                      # 20M ratings, 1 and 2 threads
    python benchmarks/bayes_sweeps.py --ratings 2000000 --sweeps 3

Results are appended to ``benchmarks/results/bayes-sweeps.txt``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _results import append_report  # noqa: E402

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from latentfactors import BayesianMF, make_synthetic_ratings
n_users, n_items, n_ratings, k, sweeps, threads = (int(x) for x in sys.argv[2:8])
ratings, _ = make_synthetic_ratings(n_users, n_items, n_ratings, random_state=0)
BayesianMF(n_factors=k, n_samples=2, implicit=True, n_threads=threads).fit(ratings.iloc[:5000])
start = time.perf_counter()
model = BayesianMF(n_factors=k, n_samples=sweeps, implicit=True, n_threads=threads,
                   random_state=0).fit(ratings)
fit = time.perf_counter() - start
print(json.dumps({"sweep_seconds": model.history_["seconds"], "fit_seconds": fit,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", type=int, default=20_000_000)
    parser.add_argument("--users", type=int, default=138_493)
    parser.add_argument("--items", type=int, default=26_744)
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--sweeps", type=int, default=2)
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args(argv)
    lines = [
        f"# {datetime.date.today()}: python benchmarks/bayes_sweeps.py --ratings {args.ratings} "
        f"--users {args.users} --items {args.items} --factors {args.factors} "
        f"--sweeps {args.sweeps} --threads {args.threads}  (implicit=True)"
    ]
    print(lines[0], flush=True)
    for threads in (int(t) for t in args.threads.split(",")):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(ROOT), str(args.users), str(args.items),
             str(args.ratings), str(args.factors), str(args.sweeps), str(threads)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        report = json.loads(done.stdout.strip().splitlines()[-1])
        sweeps = ", ".join(f"{s:.1f}" for s in report["sweep_seconds"])
        line = (
            f"{threads} thread(s): seconds per sweep {sweeps}; fit {report['fit_seconds']:.1f} s "
            f"(building the sets included); peak RSS {report['peak_rss_mb']:,.0f} MB"
        )
        lines.append(line)
        print(line, flush=True)
    append_report("bayes-sweeps.txt", lines)


if __name__ == "__main__":
    main()
