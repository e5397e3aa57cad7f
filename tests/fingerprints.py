"""Hashes of every fitted array, for configurations that cover every kernel path.

``python -m tests.fingerprints`` prints the table that
``tests/test_fingerprints.py`` pins: a refactor must leave every model
bit-identical for fixed seeds.
"""

from __future__ import annotations

import hashlib

import numpy as np

from latentfactors import MLPMF, BiasedMF, make_synthetic_ratings, presets, random_split


def _data(n_users, n_items, n_ratings, seed):
    ratings, _ = make_synthetic_ratings(n_users, n_items, n_ratings, random_state=seed)
    return random_split(ratings, fractions=0.8, random_state=seed)


# name -> (model factory, data arguments); the large one takes the block-grid path.
CASES = {
    "sgd-one-block": (lambda: BiasedMF(16, n_epochs=3, random_state=1), (300, 200, 6000, 0)),
    "sgd-grid": (
        lambda: BiasedMF(32, n_epochs=2, random_state=2),
        (20000, 12000, 200000, 1),
    ),
    "adam": (
        lambda: BiasedMF(8, optimizer="adam", n_epochs=3, random_state=3),
        (300, 200, 6000, 0),
    ),
    "adam-parallel": (
        lambda: BiasedMF(8, optimizer="adam", batch_size=1024, n_epochs=2, random_state=3),
        (300, 200, 6000, 0),
    ),
    "adam-dense": (
        lambda: BiasedMF(8, optimizer="adam-dense", batch_size=64, n_epochs=3, random_state=4),
        (300, 200, 6000, 0),
    ),
    "mlp-default": (lambda: MLPMF(n_epochs=3, random_state=5), (300, 200, 6000, 0)),
    "mlp-tanh-dropout-sgd-head": (
        lambda: MLPMF(
            8,
            hidden=(6, 4),
            activation="tanh",
            dropout=0.2,
            optimizer="sgd",
            n_epochs=3,
            random_state=6,
        ),
        (300, 200, 6000, 0),
    ),
    "mlp-adam-embeddings": (
        lambda: MLPMF(8, embedding_optimizer="adam", n_epochs=3, random_state=7),
        (300, 200, 6000, 0),
    ),
    "mlp-parallel-batch": (
        lambda: MLPMF(8, batch_size=1024, n_epochs=2, random_state=8),
        (300, 200, 6000, 0),
    ),
    "notebook-dot": (lambda: presets.notebook_dot(random_state=9), (300, 200, 6000, 0)),
    "notebook-mlp": (lambda: presets.notebook_mlp(random_state=10), (300, 200, 6000, 0)),
}


def fingerprint(model) -> str:
    """SHA-256 over every learned array (state, seen items), the global mean and history."""
    h = hashlib.sha256()
    for name, arr in sorted(model._get_state().items()):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    for arr in (model.seen_indptr_, model.seen_items_):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(np.float64(model.global_mean_).tobytes())
    h.update(np.asarray(model.history_["train_mse"], dtype=np.float64).tobytes())
    h.update(np.asarray(model.history_["valid_mse"], dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def fit_case(name, n_threads=1):
    make, args = CASES[name]
    train, valid = _data(*args)
    model = make().set_params(n_threads=n_threads)
    return model.fit(train, valid=valid)


if __name__ == "__main__":
    for name in CASES:
        print(f'    "{name}": "{fingerprint(fit_case(name))}",')
