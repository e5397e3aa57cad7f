"""The SGD epoch kernel against its version at another git revision, side by side.

Lays out ``make_synthetic_ratings(200_000, 50_000, N, rank=16)`` as a fit
does, loads ``latentfactors/kernels/sgd.py`` as it was at ``--rev`` (from
``git show``) next to the current one, and first checks that one epoch of
each from the same start gives bit-identical parameters (a change of speed
only must not change a value). Then the rounds of the block schedule
alternate between the two, on copies of the same parameters, so both see
the same moments of a noisy machine; it prints quantiles of each rate and of
the current kernel's per-round speed-up.

    python benchmarks/sgd_versions.py --rev HEAD~1
    python benchmarks/sgd_versions.py --rev e7f22ca --ratings 2000000 --factors 8
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _sgd_ab import report, sgd_layout  # noqa: E402

from latentfactors.kernels import sgd as current  # noqa: E402
from latentfactors.kernels._prefetch import aligned_empty  # noqa: E402
from latentfactors.kernels.scoring import with_threads  # noqa: E402

KERNEL = "latentfactors/kernels/sgd.py"


def kernel_at(rev: str, folder: Path):
    """The SGD kernel module as it was at git revision ``rev``."""
    source = subprocess.run(
        ["git", "show", f"{rev}:{KERNEL}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    path = folder / "sgd_at_rev.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("sgd_at_rev", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["sgd_at_rev"] = module
    spec.loader.exec_module(module)
    return module


def line_copy(arr: np.ndarray) -> np.ndarray:
    out = aligned_empty(arr.shape, arr.dtype)
    out[...] = arr
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rev", required=True, help="git revision to compare with")
    parser.add_argument("--ratings", type=int, default=20_000_000)
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=8, help="epochs of rounds per thread count")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        kernels = {"current": current, args.rev: kernel_at(args.rev, Path(folder))}
        layout, rows, scalars, width = sgd_layout(args.ratings, args.factors)
        print(
            f"{len(layout.ratings):,} ratings, k={args.factors}, {width} x {width} blocks, "
            f"{len(layout.ratings) / (len(layout.group_ptr) - 1):.1f} ratings per group"
        )
        order = layout.run_order.copy()
        results = {}
        for name, module in kernels.items():
            layout.run_order[:] = order
            trial = tuple(line_copy(a) for a in rows)
            epoch_args = layout.epoch_args(np.random.default_rng(1))
            results[name] = (module._sgd_block_epoch(*epoch_args, *trial, *scalars), trial)
        (loss_a, arrays_a), (loss_b, arrays_b) = results.values()
        same = loss_a == loss_b and all(np.array_equal(a, b) for a, b in zip(arrays_a, arrays_b))
        print(f"one epoch of each, same seed: bit-identical parameters: {same}")

        copies = {name: tuple(line_copy(a) for a in rows) for name in kernels}
        for threads in args.threads:
            rates = {name: [] for name in kernels}
            speedup = []
            for epoch in range(args.epochs):
                epoch_args = list(layout.epoch_args(np.random.default_rng(epoch)))
                schedule = epoch_args[8]
                for t in range(len(schedule)):
                    epoch_args[8] = schedule[t : t + 1]
                    size = int(np.sum(np.diff(layout.block_ptr)[schedule[t]]))
                    seconds = {}
                    names = list(kernels) if (epoch + t) % 2 == 0 else list(kernels)[::-1]
                    for name in names:
                        tick = time.perf_counter()
                        with_threads(
                            threads,
                            kernels[name]._sgd_block_epoch,
                            *epoch_args,
                            *copies[name],
                            *scalars,
                        )
                        seconds[name] = time.perf_counter() - tick
                    for name in kernels:
                        rates[name].append(size / seconds[name] / 1e6)
                    speedup.append(seconds[args.rev] / seconds["current"])
            report(threads, f"{len(speedup)} rounds", rates, speedup, "current")


if __name__ == "__main__":
    main()
