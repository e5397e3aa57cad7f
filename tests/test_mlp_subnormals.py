"""MLPMF's head never holds subnormal floats: they make every operation on them ~100x slower."""

from __future__ import annotations

import io

import numpy as np
import pytest

from latentfactors import MLPMF, make_synthetic_ratings
from latentfactors.kernels import mlp as K
from latentfactors.models import mlp as mlp_model

TINY = np.finfo(np.float32).tiny


def n_subnormal(a) -> int:
    a = np.abs(np.asarray(a))
    return int(np.count_nonzero((a > 0) & (a < TINY)))


def n_below_floor(a) -> int:
    a = np.abs(np.asarray(a))
    return int(np.count_nonzero((a > 0) & (a < K.PARAM_FLOOR)))


@pytest.fixture(scope="module")
def small_ratings():
    return make_synthetic_ratings(600, 400, 30000, random_state=5)[0]


def fit_capturing_state(monkeypatch, ratings, **params):
    """Fit, returning the model and its fit state (which holds the head's Adam moments)."""
    captured = {}
    setup = mlp_model.MLPMF._setup

    def capture(self, data, rng):
        captured["state"] = setup(self, data, rng)
        return captured["state"]

    monkeypatch.setattr(mlp_model.MLPMF, "_setup", capture)
    model = MLPMF(random_state=0, **params).fit(ratings)
    return model, captured["state"]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_fit_leaves_no_subnormal_in_the_head(monkeypatch, small_ratings, optimizer):
    # Batches of 8 give ~15,000 steps in 4 epochs: before the flush, ~500 head weights
    # and Adam moments of dead ReLU units had decayed into the subnormals by then.
    model, state = fit_capturing_state(
        monkeypatch, small_ratings, n_epochs=4, batch_size=8, optimizer=optimizer
    )
    assert n_subnormal(model.dense_) == 0
    assert n_below_floor(model.dense_) == 0
    for weights, intercepts in zip(model.weights_, model.intercepts_):
        assert n_subnormal(weights) == 0 and n_subnormal(intercepts) == 0
    assert n_subnormal(state.moments.mW) == 0
    assert n_subnormal(state.moments.vW) == 0
    # The last batch's gradient comes from the head's state: none there either.
    assert n_subnormal(state.scratch.gflat) == 0
    if optimizer == "adam":  # the configuration that bred them: they were flushed, not absent
        assert np.count_nonzero(model.dense_ == 0) > 100


def test_loaded_head_with_subnormals_predicts_from_flushed_weights(small_ratings):
    model = MLPMF(8, hidden=(6,), n_epochs=1, random_state=0).fit(small_ratings)
    tiny_values = np.array([1e-40, -3e-42, 1e-36, -2e-31], np.float32)  # two below TINY
    where = np.arange(len(tiny_values)) * 7
    model.dense_[where] = tiny_values
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    loaded = MLPMF.load(buffer)

    assert n_below_floor(loaded.dense_) == 0
    assert np.all(loaded.dense_[where] == 0)
    flushed = model.dense_.copy()
    flushed[where] = 0
    model.dense_[:] = flushed
    users = small_ratings["user"].to_numpy()[:500]
    items = small_ratings["item"].to_numpy()[:500]
    np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
    np.testing.assert_array_equal(loaded.dense_, flushed)
