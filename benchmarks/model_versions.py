"""Whole-model epochs against the package as it was at another git revision, side by side.

Exports the package at ``--rev`` (``git archive``) into a temporary folder,
then alternates rounds between it and the working tree: each round is one
child process per side that fits the same configuration on the same
synthetic ratings (``make_synthetic_ratings(n_users, n_items, N, rank=16)``,
written once to an ``.npz`` both read) and reports the seconds of every epoch
after a warm-up fit that compiles the kernels. Both sides must also give
bit-identical models (a hash of every fitted array), or the script says so.
It prints, per configuration, the median rate of each side and quantiles of
the per-round ratio (current / ``--rev``, over epochs).

    python benchmarks/model_versions.py --rev b330f37
    python benchmarks/model_versions.py --rev b330f37 --configs adam mlp --rounds 6
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# name -> (model class, hyperparameters, ratings); all fit on n_threads threads.
CONFIGS = {
    "sgd": ("BiasedMF", {"n_factors": 32, "optimizer": "sgd"}, 4_000_000),
    "adam": ("BiasedMF", {"n_factors": 32, "optimizer": "adam"}, 1_000_000),
    "adam-1024": (
        "BiasedMF",
        {"n_factors": 32, "optimizer": "adam", "batch_size": 1024},
        1_000_000,
    ),
    "adam-dense": ("BiasedMF", {"n_factors": 8, "optimizer": "adam-dense"}, 200_000),
    "mlp": ("MLPMF", {}, 500_000),
}

CHILD = r"""
import hashlib, json, sys
import numpy as np
import latentfactors
from latentfactors import BiasedMF, MLPMF

cls_name, params, data_path, epochs, threads = sys.argv[1:6]
cls = {"BiasedMF": BiasedMF, "MLPMF": MLPMF}[cls_name]
params = json.loads(params)
with np.load(data_path) as npz:
    users, items, ratings = npz["users"], npz["items"], npz["ratings"]
common = dict(random_state=0, n_threads=int(threads), **params)
cls(n_epochs=1, **common).fit((users[:5000], items[:5000], ratings[:5000]))  # compile
model = cls(n_epochs=int(epochs), **common).fit((users, items, ratings))
h = hashlib.sha256()
for name, arr in sorted(model._get_state().items()):
    h.update(np.ascontiguousarray(arr).tobytes())
print(json.dumps({"seconds": model.history_["seconds"], "hash": h.hexdigest()[:16],
                  "where": latentfactors.__file__}))
"""


def export(rev: str, folder: Path) -> Path:
    """The package as it was at ``rev``, extracted under ``folder``."""
    archive = folder / "rev.tar"
    with archive.open("wb") as fh:
        subprocess.run(["git", "archive", rev, "latentfactors"], cwd=ROOT, stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "rev", filter="data")
    return folder / "rev"


def run(path: Path, config: str, data: Path, epochs: int, threads: int) -> dict:
    cls, params, _ = CONFIGS[config]
    env = {**os.environ, "PYTHONPATH": str(path)}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            cls,
            json.dumps(params),
            str(data),
            str(epochs),
            str(threads),
        ],
        env=env,
        cwd=data.parent,  # not the checkout: ``-c`` puts the working folder first on the path
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    if not result["where"].startswith(str(path)):
        raise RuntimeError(f"the child imported {result['where']}, not the tree under {path}")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rev", required=True, help="git revision to compare with")
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per config")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per fit")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the rating counts")
    parser.add_argument("--save", type=Path, help="append the report to this file")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from latentfactors import make_synthetic_ratings
    from latentfactors.data import IdIndex

    lines = []

    def say(text):
        print(text, flush=True)
        lines.append(text)

    say(f"# python benchmarks/model_versions.py --rev {args.rev} --threads {args.threads}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        old = export(args.rev, tmp)
        for config in args.configs:
            n = int(CONFIGS[config][2] * args.scale)
            frame, _ = make_synthetic_ratings(n // 20, n // 80, n, rank=16, random_state=0)
            data = tmp / f"{config}.npz"
            np.savez(
                data,
                users=IdIndex(frame["user"].to_numpy()).encode(frame["user"].to_numpy()),
                items=IdIndex(frame["item"].to_numpy()).encode(frame["item"].to_numpy()),
                ratings=frame["rating"].to_numpy(np.float32),
            )
            del frame
            ratios, rates = [], {"current": [], args.rev: []}
            same = True
            for r in range(args.rounds):
                # Alternate which side runs first, so neither always follows the other.
                order = [("current", ROOT), (args.rev, old)]
                if r % 2:
                    order.reverse()
                got = {
                    name: run(path, config, data, args.epochs, args.threads) for name, path in order
                }
                same &= got["current"]["hash"] == got[args.rev]["hash"]
                for name in rates:
                    rates[name] += [n / s / 1e6 for s in got[name]["seconds"]]
                ratios += [
                    b / a for a, b in zip(got["current"]["seconds"], got[args.rev]["seconds"])
                ]
            q = np.quantile(ratios, [0.25, 0.5, 0.75])
            say(
                f"{config}: {n:,} ratings, t={args.threads}, {len(ratios)} epochs, M ratings/s "
                f"median: current {np.median(rates['current']):.2f}  {args.rev} "
                f"{np.median(rates[args.rev]):.2f}; current/{args.rev} p25 {q[0]:.2f}x, "
                f"median {q[1]:.2f}x, p75 {q[2]:.2f}x; bit-identical models: {same}"
            )
    if args.save:
        with args.save.open("a") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
