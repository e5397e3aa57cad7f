"""The SGD epoch kernel against its version at another git revision, side by side.

Lays out ``make_synthetic_ratings(200_000, 50_000, N, rank=16)`` as a fit
does, loads ``latentfactors/kernels/sgd.py`` as it was at ``--rev`` (from
``git show``) next to the current one, and first checks that one epoch of
each from the same start gives bit-identical parameters (a change of speed
only must not change a value). Then the rounds of the block schedule
alternate between the two, on copies of the same parameters, so both see
the same moments of a noisy machine; it prints quantiles of each rate and of
the current kernel's per-round speed-up. The kernel's calling convention
changed after b330f37 (bundles instead of one argument per array);
``_sgd_ab.run_epoch`` drives either.

    python benchmarks/sgd_versions.py --rev HEAD~1
    python benchmarks/sgd_versions.py --rev e7f22ca --ratings 2000000 --factors 8
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _sgd_ab import (  # noqa: E402
    alternate_rounds,
    offset_copies,
    report,
    same_epoch,
    sgd_layout,
)

from latentfactors.kernels import sgd as current  # noqa: E402

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
        ways = {name: (module, offset_copies(rows, 0)) for name, module in kernels.items()}
        same = same_epoch(layout, ways, scalars)
        print(f"one epoch of each, same seed: bit-identical parameters: {same}")
        for threads in args.threads:
            rates, speedup = alternate_rounds(
                layout, ways, scalars, threads, args.epochs, args.rev, "current"
            )
            report(threads, f"{len(speedup)} rounds", rates, speedup, "current")


if __name__ == "__main__":
    main()
