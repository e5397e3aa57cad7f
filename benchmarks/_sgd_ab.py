"""Shared by the SGD kernel A/B benchmarks: the data laid out as a fit lays it
out, and the summary line of two ways timed side by side."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latentfactors import BiasedMF, make_synthetic_ratings  # noqa: E402
from latentfactors.models.base import encode_train  # noqa: E402
from latentfactors.models.biased_mf import BlockLayout, grid_plan  # noqa: E402


def sgd_layout(n_ratings: int, k: int):
    """``make_synthetic_ratings(200_000, 50_000, n_ratings, rank=16)`` in BiasedMF's
    block layout, with freshly initialised rows.

    Returns ``(layout, rows, scalars, width)``: ``rows`` are the layout's copies
    of ``P, Q, bu, bi`` and ``scalars`` the kernel's ``mu, lr, reg, reg_bias``.
    """
    frame, _ = make_synthetic_ratings(200_000, 50_000, n_ratings, rank=16, random_state=0)
    data = encode_train(frame)
    del frame
    n_users, n_items = len(data.user_index), len(data.item_index)
    width, by_user = grid_plan(n_users, n_items, len(data.ratings), k)
    rng = np.random.default_rng(0)
    model = BiasedMF(k, random_state=0)
    mu = float(np.mean(data.ratings, dtype=np.float64))
    start = model._init_state(rng, n_users, n_items)
    layout = BlockLayout(data, width, rng, by_user)
    del data
    rows = layout.to_layout(tuple(start[name] for name in model._state_names()))
    scalars = tuple(np.float32(x) for x in (mu, 0.01, 0.02, 0.02))
    return layout, rows, scalars, width


def report(threads: int, what: str, rates: dict, speedup: list, new: str) -> None:
    """One line: each way's median (and p90) rate, and the quartiles of ``new``'s speed-up."""
    line = "  ".join(
        f"{name} {np.quantile(r, 0.5):.1f} (p90 {np.quantile(r, 0.9):.1f})"
        for name, r in rates.items()
    )
    print(
        f"  t={threads}, {what}, M upd/s median: {line}; {new} speed-up "
        f"p25 {np.quantile(speedup, 0.25):.2f}x, median {np.quantile(speedup, 0.5):.2f}x, "
        f"p75 {np.quantile(speedup, 0.75):.2f}x"
    )
