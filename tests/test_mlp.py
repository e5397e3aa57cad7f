"""MLPMF: gradient checks, a NumPy twin, thread determinism and the estimator contract."""

from __future__ import annotations

import io
import json
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

from latentfactors import (
    MLPMF,
    BiasedMF,
    DivergenceError,
    NotFittedError,
    load_model,
    load_movielens,
    random_split,
)
from latentfactors.kernels import mlp as K
from latentfactors.kernels.bundles import Embeddings, Ratings
from latentfactors.kernels.scoring import with_threads
from latentfactors.models.base import encode_train
from tests import naive_mlp as naive
from tests.conftest import two_threads

# ---------------------------------------------------------------- helpers


def layout(k, hidden):
    sizes = K.layer_sizes(k, hidden)
    return sizes, K.dense_offsets(sizes), K.unit_offsets(sizes)


def split_flat(flat, sizes, offsets):
    weights, intercepts = [], []
    for layer in range(len(sizes) - 1):
        n_in, n_out, w0 = int(sizes[layer]), int(sizes[layer + 1]), int(offsets[layer])
        weights.append(flat[w0 : w0 + n_in * n_out].reshape(n_in, n_out))
        intercepts.append(flat[w0 + n_in * n_out : w0 + n_in * n_out + n_out])
    return weights, intercepts


def kernel_objective(batch_data, params, cfg):
    """``L_b`` and every gradient from the kernel, for float64 parameters."""
    users, items, ratings, order = batch_data
    P, Q, bu, bi, flat = params["P"], params["Q"], params["bu"], params["bi"], params["flat"]
    sizes, offsets, uoff = cfg["layout"]
    m = len(order)
    grads = {name: np.zeros_like(arr) for name, arr in params.items()}
    scratch = K.batch_scratch(m, sizes, np.float64)
    # one thread: hundreds of tiny calls, where waking a second thread costs more than it saves
    value = with_threads(
        1,
        K._loss_grad,
        Ratings(users, items, ratings),
        order,
        0,
        m,
        Embeddings(P, Q, bu, bi),
        cfg["mu"],
        K.Head(flat, offsets, sizes, uoff, K.ACTIVATIONS[cfg["activation"]]),
        K.Dropout(cfg["dropout"], np.uint64(cfg["seed"])),
        K.Penalties(cfg["reg"], cfg["reg_bias"], cfg["reg_weights"]),
        scratch,
        Embeddings(grads["P"], grads["Q"], grads["bu"], grads["bi"]),
    )
    grads["flat"] = scratch.gflat
    return value, grads


def synthetic(n_users=30, n_items=25, n=600, seed=0):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n)
    items = rng.integers(0, n_items, n)
    ratings = np.clip(
        3.5 + 0.5 * np.sin(users) + 0.4 * np.cos(items) + rng.normal(0, 0.3, n), 0.5, 5.0
    )
    return pd.DataFrame({"user": users, "item": items, "rating": ratings.astype(np.float32)})


def state_equal(a, b):
    return all(
        np.array_equal(x, y) for x, y in zip(a._get_state().values(), b._get_state().values())
    )


SMALL = dict(n_factors=4, hidden=(8, 4), n_epochs=3, batch_size=32, random_state=0)

# ---------------------------------------------------------------- gradients


GRAD_CASES = [
    (activation, reg, dropout)
    for activation in ("relu", "tanh", "linear")
    for reg in (0.0, 0.3)
    for dropout in (0.0, 0.3)
]


@pytest.mark.parametrize("activation,reg,dropout", GRAD_CASES)
def test_gradients_match_central_differences(activation, reg, dropout):
    rng = np.random.default_rng(1)
    k, hidden = 3, (5, 4)
    n_users, n_items, m = 5, 4, 23  # 23 ratings: two chunks, the last one partial
    sizes, offsets, uoff = layout(k, hidden)
    params = {
        "P": rng.normal(0, 0.7, (n_users, k)),
        "Q": rng.normal(0, 0.7, (n_items, k)),
        "bu": rng.normal(0, 0.3, n_users),
        "bi": rng.normal(0, 0.3, n_items),
        "flat": rng.normal(0, 0.6, int(offsets[-1])),
    }
    users = rng.integers(0, n_users, m).astype(np.int32)
    items = rng.integers(0, n_items, m).astype(np.int32)
    ratings = rng.uniform(1, 5, m)
    order = rng.permutation(m).astype(np.int32)
    cfg = dict(
        layout=(sizes, offsets, uoff),
        mu=3.0,
        activation=activation,
        dropout=dropout,
        seed=12345,
        reg=reg,
        reg_bias=reg / 2,
        reg_weights=reg / 3,
    )
    data = (users, items, ratings, order)
    value, grads = kernel_objective(data, params, cfg)

    weights, intercepts = split_flat(params["flat"], sizes, offsets)
    expected = naive.naive_objective(
        users,
        items,
        ratings,
        order,
        dict(
            P=params["P"],
            Q=params["Q"],
            bu=params["bu"],
            bi=params["bi"],
            weights=weights,
            intercepts=intercepts,
        ),
        mu=3.0,
        activation=activation,
        dropout=dropout,
        seed=12345,
        start=0,
        reg=reg,
        reg_bias=reg / 2,
        reg_weights=reg / 3,
    )
    assert value == pytest.approx(expected, rel=1e-12)

    eps = 1e-6
    for name, arr in params.items():
        numeric = np.zeros_like(arr)
        flat_view = arr.reshape(-1)
        for p in range(flat_view.size):
            old = flat_view[p]
            flat_view[p] = old + eps
            up = kernel_objective(data, params, cfg)[0]
            flat_view[p] = old - eps
            down = kernel_objective(data, params, cfg)[0]
            flat_view[p] = old
            numeric.reshape(-1)[p] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-6, atol=1e-8, err_msg=name)
    # every layer's weights and intercepts were exercised
    gw, gb = split_flat(grads["flat"], sizes, offsets)
    assert all(np.abs(g).max() > 0 for g in gw + gb)


# ---------------------------------------------------------------- the NumPy twin


def run_one_epoch(model, frame):
    """Run the model's own first epoch; return (initial state, final state, order, seed, sse)."""
    model._validate()
    data = encode_train(frame)
    rng = np.random.default_rng(model.random_state)
    model._threads = 1
    model.global_mean_ = float(np.mean(data.ratings, dtype=np.float64)) if model.center else 0.0
    model._set_state(model._init_state(rng, len(data.user_index), len(data.item_index)))
    before = model._copy_state()
    users, items, ratings = data.users.copy(), data.items.copy(), data.ratings.copy()
    state = model._setup(data, rng)
    sse = model._epoch(state, 1, rng)
    return before, model._copy_state(), (users, items, ratings), state, sse


@pytest.mark.parametrize(
    "optimizer,embed_optimizer,activation,dropout,batch_size",
    [
        ("adam", None, "relu", 0.0, 40),
        ("adam", None, "tanh", 0.25, 40),
        ("adam-dense", None, "linear", 0.0, 40),
        ("sgd", None, "relu", 0.25, 40),
        ("adam", "sgd", "relu", 0.0, 40),
        ("sgd", "adam-dense", "tanh", 0.0, 40),
        ("adam", None, "relu", 0.1, 300),
    ],  # 19 chunks in 16 groups: groups of one and two chunks
)
def test_epoch_matches_numpy_twin(optimizer, embed_optimizer, activation, dropout, batch_size):
    frame = synthetic(n_users=12, n_items=10, n=150 if batch_size < 300 else 700)
    model = MLPMF(
        n_factors=3,
        hidden=(6, 4),
        activation=activation,
        dropout=dropout,
        optimizer=optimizer,
        embedding_optimizer=embed_optimizer,
        batch_size=batch_size,
        reg=0.05,
        reg_bias=0.02,
        reg_weights=0.01,
        learning_rate=0.01,
        embedding_learning_rate=0.03,
        random_state=3,
    )
    before, after, (users, items, ratings), state, sse = run_one_epoch(model, frame)
    sizes, offsets = state.sizes, state.offsets
    dense = before["dense_"].astype(np.float64)
    weights, intercepts = split_flat(dense, sizes, offsets)
    params = dict(
        P=before["user_factors_"].astype(np.float64),
        Q=before["item_factors_"].astype(np.float64),
        bu=before["user_bias_"].astype(np.float64),
        bi=before["item_bias_"].astype(np.float64),
        weights=weights,
        intercepts=intercepts,
    )
    moments = {
        name + s: np.zeros_like(params[name])
        for name in ("P", "Q", "bu", "bi")
        for s in ("_m", "_v")
    }
    moments.update(
        W_m=[np.zeros_like(w) for w in weights],
        W_v=[np.zeros_like(w) for w in weights],
        B_m=[np.zeros_like(b) for b in intercepts],
        B_v=[np.zeros_like(b) for b in intercepts],
    )
    expected_sse = naive.naive_epoch(
        users,
        items,
        ratings.astype(np.float64),
        state.order,
        batch_size,
        params,
        moments,
        mu=float(np.float32(model.global_mean_)),
        activation=activation,
        dropout=dropout,
        seed=int(state.dropout_seed),
        optimizer=optimizer,
        embed_optimizer=embed_optimizer,
        lr=0.01,
        lr_embed=0.03,
        reg=0.05,
        reg_bias=0.02,
        reg_weights=0.01,
        step0=0,
    )
    assert sse == pytest.approx(expected_sse, rel=1e-4)
    tol = dict(rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(after["user_factors_"], params["P"], **tol)
    np.testing.assert_allclose(after["item_factors_"], params["Q"], **tol)
    np.testing.assert_allclose(after["user_bias_"], params["bu"], **tol)
    np.testing.assert_allclose(after["item_bias_"], params["bi"], **tol)
    np.testing.assert_allclose(after["dense_"], dense, **tol)
    assert not np.allclose(after["dense_"], before["dense_"])


def test_dropout_mask_matches_twin_hash():
    for position, unit in [(0, 0), (5, 17), (123456, 3)]:
        for p in (0.1, 0.5, 0.9):
            assert K._keep(np.uint64(99), position, unit, p) == naive.keep(99, position, unit, p)
    kept = [naive.keep(7, j, 10, 0.3) for j in range(4000)]
    assert np.mean(kept) == pytest.approx(0.7, abs=0.03)


# ---------------------------------------------------------------- determinism


@two_threads
def test_threads_give_bit_identical_models():
    frame = synthetic(n=2000)
    kw = dict(SMALL, dropout=0.2, batch_size=300, n_epochs=2)  # 19 chunks in 16 groups
    one = MLPMF(n_threads=1, **kw).fit(frame)
    two = MLPMF(n_threads=2, **kw).fit(frame)
    assert state_equal(one, two)
    assert one.history_["train_mse"] == two.history_["train_mse"]


def test_same_seed_same_model_other_seed_differs():
    frame = synthetic()
    a = MLPMF(**SMALL).fit(frame)
    b = MLPMF(**SMALL).fit(frame)
    c = MLPMF(**{**SMALL, "random_state": 1}).fit(frame)
    assert state_equal(a, b)
    assert not np.array_equal(a.dense_, c.dense_)


# ---------------------------------------------------------------- what the head can learn


def test_linear_head_is_additive():
    """The notebook's linear head: pred(u, i) - pred(u, j) does not depend on u."""
    frame = synthetic(n=800)
    model = MLPMF(
        n_factors=5,
        hidden=(5, 3),
        activation="linear",
        n_epochs=5,
        batch_size=16,
        learning_rate=0.01,
        reg=0.0,
        reg_bias=0.0,
        reg_weights=0.0,
        clip=False,
        random_state=0,
    ).fit(frame)
    users = np.unique(frame["user"])
    items = np.unique(frame["item"])
    grid = model.predict(np.repeat(users, len(items)), np.tile(items, len(users)))
    grid = grid.reshape(len(users), len(items))
    diffs = grid - grid[:, :1]  # p(u, i) - p(u, first item)
    np.testing.assert_allclose(diffs, np.broadcast_to(diffs[0], diffs.shape), atol=1e-5)
    # ...while a ReLU head is not additive
    relu = MLPMF(**{**model.get_params(), "activation": "relu"}).fit(frame)
    grid = relu.predict(np.repeat(users, len(items)), np.tile(items, len(users)))
    diffs = grid.reshape(len(users), len(items)) - grid.reshape(len(users), len(items))[:, :1]
    assert np.abs(diffs - diffs[0]).max() > 1e-3


@pytest.mark.jit("fits MLPs for 40 epochs")
def test_learns_planted_interaction_linear_head_cannot():
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 40
    su = rng.choice([-1.0, 1.0], n_users)
    si = rng.choice([-1.0, 1.0], n_items)
    uu, ii = np.meshgrid(np.arange(n_users), np.arange(n_items), indexing="ij")
    uu, ii = uu.ravel(), ii.ravel()
    r = 3.0 + su[uu] * si[ii] + rng.normal(0, 0.1, len(uu))  # XOR-like: not f(u) + g(i)
    frame = pd.DataFrame({"user": uu, "item": ii, "rating": r})
    held = rng.random(len(frame)) < 0.2
    train, test = frame[~held], frame[held]
    kw = dict(
        n_factors=4,
        hidden=(16,),
        n_epochs=40,
        batch_size=32,
        learning_rate=0.01,
        reg=0.0,
        reg_bias=0.0,
        reg_weights=0.0,
        random_state=0,
    )
    relu = MLPMF(activation="relu", **kw).fit(train).evaluate(test)["mse"]
    linear = MLPMF(activation="linear", **kw).fit(train).evaluate(test)["mse"]
    assert linear > 0.8  # the interaction's variance is 1: an additive model cannot explain it
    assert relu < 0.15


# ---------------------------------------------------------------- hyperparameters


@pytest.mark.parametrize(
    "change",
    [
        dict(hidden=(8,)),
        dict(hidden=(8, 5)),
        dict(hidden=(8, 4, 4)),
        dict(activation="tanh"),
        dict(activation="linear"),
        dict(dropout=0.3),
        dict(learning_rate=0.003),
        dict(embedding_learning_rate=0.02),
        dict(lr_decay=0.3),
        dict(init="uniform"),
        dict(reg=0.2),
        dict(reg_weights=0.05),
        dict(reg_bias=0.5),
        dict(batch_size=17),
        dict(n_factors=5),
        # the same rates for both, so that only the optimizer differs
        dict(embedding_optimizer="adam", learning_rate=1e-4, embedding_learning_rate=1.536),
        dict(
            embedding_optimizer="adam-dense",
            optimizer="adam-dense",
            learning_rate=1e-4,
            embedding_learning_rate=1.536,
        ),
        dict(optimizer="sgd"),
        dict(init_std=0.2),
        dict(center=False),
        dict(n_epochs=2),
    ],
)
def test_every_hyperparameter_changes_the_result(change):
    frame = synthetic()
    base = MLPMF(**SMALL).fit(frame)
    other = MLPMF(**{**SMALL, **change}).fit(frame)
    users, items = frame["user"].to_numpy(), frame["item"].to_numpy()
    assert not np.allclose(base.predict(users, items), other.predict(users, items), atol=1e-6)


@pytest.mark.parametrize(
    "params,match",
    [
        (dict(hidden=()), "hidden must be a non-empty tuple or list"),
        (dict(hidden=[]), "hidden must be a non-empty tuple or list"),
        (dict(hidden=64), "hidden must be a non-empty tuple or list"),
        (dict(hidden=(8, -2)), r"hidden\[1\] must be a positive integer"),
        (dict(hidden=(8, 0)), r"hidden\[1\] must be a positive integer"),
        (dict(hidden=(8.5,)), r"hidden\[0\] must be a positive integer"),
        (dict(activation="sigmoid"), "activation must be one of"),
        (dict(optimizer="rmsprop"), "optimizer must be one of"),
        (dict(embedding_optimizer="rmsprop"), "embedding_optimizer must be one of"),
        (dict(dropout=1.0), "dropout must be a finite number >= 0 and < 1"),
        (dict(dropout=-0.1), "dropout must be a finite number"),
        (dict(reg_weights=-1.0), "reg_weights must be a finite number >= 0"),
        (dict(reg=-1.0), "reg must be a finite number >= 0"),
        (dict(learning_rate=0.0), "learning_rate must be a finite number > 0"),
        (
            dict(embedding_learning_rate=-1e-3),
            "embedding_learning_rate must be a finite number > 0",
        ),
        (dict(lr_decay=0.0), "lr_decay must be a finite number > 0 and <= 1"),
        (dict(lr_decay=1.5), "lr_decay must be a finite number > 0 and <= 1"),
        (dict(init="keras"), "init must be one of"),
        (dict(batch_size=0), "batch_size must be an integer >= 1"),
        (dict(n_factors=0), "n_factors must be an integer >= 1"),
    ],
)
def test_bad_hyperparameters_raise_clear_errors(params, match):
    with pytest.raises(ValueError, match=match):
        MLPMF(**params).fit(synthetic(n=50))


def test_hidden_list_is_kept_as_given():
    model = MLPMF(**{**SMALL, "hidden": [8, 4]}).fit(synthetic())
    assert model.hidden == [8, 4]
    assert [w.shape for w in model.weights_] == [(8, 8), (8, 4), (4, 1)]
    assert [b.shape for b in model.intercepts_] == [(8,), (4,), (1,)]
    assert np.shares_memory(model.weights_[1], model.dense_)


# ---------------------------------------------------------------- estimator contract


@pytest.fixture(scope="module")
def fitted():
    frame = synthetic()
    return MLPMF(**{**SMALL, "dropout": 0.1}).fit(frame), frame


def test_numpy_layer_sizes_save_and_load(tmp_path):
    frame = synthetic()
    model = MLPMF(**{**SMALL, "hidden": (np.int64(8), np.int32(4))}).fit(frame)
    model.save(tmp_path / "m.npz")
    loaded = MLPMF.load(tmp_path / "m.npz")
    assert loaded.hidden == (8, 4)  # a tuple, as given (JSON stores a list)
    assert "hidden=(8, 4)" in repr(loaded)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


def test_save_load_path_file_object_and_pickle(fitted, tmp_path):
    model, frame = fitted
    users, items = frame["user"].to_numpy(), frame["item"].to_numpy()
    expected = model.predict(users, items)
    path = tmp_path / "mlp.npz"
    model.save(path)
    from_path = MLPMF.load(path)
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    from_file = load_model(buffer)
    from_pickle = pickle.loads(pickle.dumps(model))
    for other in (from_path, from_file, from_pickle):
        assert isinstance(other, MLPMF)
        np.testing.assert_array_equal(other.predict(users, items), expected)
        assert [w.shape for w in other.weights_] == [w.shape for w in model.weights_]
        assert other.history_["train_mse"] == model.history_["train_mse"]


def test_load_rejects_dense_of_wrong_size(fitted, tmp_path):
    model, _ = fitted
    good = tmp_path / "good.npz"
    model.save(good)
    with np.load(good, allow_pickle=False) as npz:
        contents = dict(npz)
    params = json.loads(str(contents["hyperparams"]))
    params["hidden"] = [8, 5]  # the saved hyperparameters no longer match dense_
    contents["hyperparams"] = np.array(json.dumps(params))
    path = tmp_path / "broken.npz"
    np.savez(path, **contents)
    with pytest.raises(ValueError, match="dense_ has shape"):
        MLPMF.load(path)
    with pytest.raises(ValueError, match="holds a MLPMF, not a BiasedMF"):
        BiasedMF.load(tmp_path / "broken.npz")


def numpy_head(model, x):
    a = x
    for w, b in zip(model.weights_[:-1], model.intercepts_[:-1]):
        a = np.maximum(a @ w + b, 0.0)  # fitted with ReLU
    return float(a @ model.weights_[-1][:, 0] + model.intercepts_[-1][0])


def test_unknown_ids_fall_back_to_mean_known_bias_and_zero_vector(fitted):
    """An unknown id has no bias and a zero vector (its prior mean); the head still runs."""
    model, frame = fitted
    u = frame["user"].iloc[0]
    i = frame["item"].iloc[0]
    cu, ci = model.user_index_.encode(np.array([u]))[0], model.item_index_.encode(np.array([i]))[0]
    model = pickle.loads(pickle.dumps(model)).set_params(clip=False)
    pred = model.predict([u, -7, -7, u], [-9, i, -9, i])
    mu, k = model.global_mean_, model.n_factors
    zero = np.zeros(k)
    P, Q = model.user_factors_, model.item_factors_
    expected = [
        mu + model.user_bias_[cu] + numpy_head(model, np.concatenate([P[cu], zero])),
        mu + model.item_bias_[ci] + numpy_head(model, np.concatenate([zero, Q[ci]])),
        mu + numpy_head(model, np.zeros(2 * k)),
        mu
        + model.user_bias_[cu]
        + model.item_bias_[ci]
        + numpy_head(model, np.concatenate([P[cu], Q[ci]])),
    ]
    np.testing.assert_allclose(pred, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.jit("predicts 300,000 pairs, twice")
def test_predict_frame_clip_evaluate_and_parallel_predict(fitted):
    model, frame = fitted
    pred = model.predict(frame)
    lo, hi = model.rating_range_
    assert pred.min() >= lo and pred.max() <= hi
    assert set(model.evaluate(frame)) == {"mse", "rmse", "mae"}
    # a large request takes the parallel path and must agree with the serial one
    big = frame.sample(300_000, replace=True, random_state=0)
    serial = pickle.loads(pickle.dumps(model)).set_params(n_threads=1).predict(big)
    parallel = pickle.loads(pickle.dumps(model)).set_params(n_threads=2).predict(big)
    np.testing.assert_array_equal(serial, parallel)


def test_valid_early_stopping_history_callback_and_verbose(capsys):
    frame = synthetic(n=1500)
    train, valid = frame.iloc[:1200], frame.iloc[1200:]
    seen = []
    model = MLPMF(
        **{
            **SMALL,
            "n_epochs": 40,
            "learning_rate": 0.05,
            "patience": 2,
            "reg": 0.0,
            "reg_weights": 0.0,
        },
        verbose=1,
        callback=lambda epoch, logs: seen.append((epoch, logs)),
    ).fit(train, valid=valid)
    assert model.n_epochs_ < 40  # stopped early
    assert model.best_epoch_ == int(np.argmin(model.history_["valid_mse"])) + 1
    assert model.evaluate(valid)["mse"] == pytest.approx(min(model.history_["valid_mse"]))
    assert [e for e, _ in seen] == model.history_["epoch"]
    assert {"train_mse", "valid_mse", "seconds"} <= set(seen[0][1])
    assert "valid_mse" in capsys.readouterr().out


def test_not_fitted_and_divergence():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        MLPMF().predict([1], [2])
    with pytest.raises(NotFittedError, match="not fitted yet"):
        MLPMF().weights_  # noqa: B018
    with pytest.raises(DivergenceError, match="training diverged"):
        MLPMF(**{**SMALL, "optimizer": "sgd", "learning_rate": 1e4}).fit(synthetic())


# ---------------------------------------------------------------- real data


@pytest.mark.slow
def test_notebook_configuration_on_movielens(shared_data):
    df = load_movielens("ml-latest-small-2016", data_home=shared_data)
    train, _, test = random_split(df, random_state=0)
    from latentfactors.presets import notebook_mlp

    model = notebook_mlp(random_state=0)  # the notebook printed 0.842; Keras gives 0.865-0.888
    assert 0.80 < model.fit(train).evaluate(test)["mse"] < 0.95


@pytest.mark.slow
def test_defaults_on_movielens(shared_data):
    df = load_movielens("ml-latest-small-2016", data_home=shared_data)
    train, valid, test = random_split(df, random_state=0)
    model = MLPMF(random_state=0).fit(train, valid=valid)
    assert model.evaluate(test)["mse"] < 0.79


def test_learning_rates_and_their_decay():
    model = MLPMF()  # an Adam head over SGD embeddings
    assert model.embedding_optimizer_ == "sgd"
    assert (model.learning_rate_, model.embedding_learning_rate_) == (1e-4, 0.006 * 256)
    # SGD embeddings: the step scales with the batch, the step per rating does not
    assert MLPMF(batch_size=16).embedding_learning_rate_ == pytest.approx(0.096)
    # the head's rate does not carry over to embeddings with another kind of optimizer ...
    assert MLPMF(learning_rate=0.01).embedding_learning_rate_ == 0.006 * 256
    # ... but does to embeddings with the same kind, unless they get their own
    adam = MLPMF(embedding_optimizer="adam")
    assert (adam.learning_rate_, adam.embedding_learning_rate_) == (1e-3, 0.005)
    assert MLPMF(learning_rate=0.01, embedding_optimizer="adam").embedding_learning_rate_ == 0.01
    assert MLPMF(optimizer="sgd", learning_rate=0.3).embedding_learning_rate_ == 0.3
    assert MLPMF(optimizer="sgd", embedding_optimizer=None).learning_rate_ == 0.1
    assert MLPMF(optimizer="adam-dense", embedding_optimizer=None).embedding_learning_rate_ == 0.001
    kw = dict(learning_rate=0.01, embedding_learning_rate=0.1)
    assert MLPMF(**kw).embedding_learning_rate_ == 0.1
    # lr_decay multiplies both rates once per epoch: the same as halving them by hand
    # between epochs (the rates are read at the start of every epoch).
    frame = synthetic(n=400)
    kw = dict(SMALL, n_epochs=3, learning_rate=0.004, embedding_learning_rate=0.02)
    decayed = MLPMF(**kw, lr_decay=0.5).fit(frame)
    by_hand = MLPMF(**kw, lr_decay=1.0)

    def halve(epoch, logs):
        by_hand.learning_rate /= 2
        by_hand.embedding_learning_rate /= 2

    by_hand.callback = halve
    by_hand.fit(frame)
    assert state_equal(decayed, by_hand)
    assert not state_equal(decayed, MLPMF(**kw, lr_decay=1.0).fit(frame))


def test_both_adam_spellings_train_the_head_alike():
    # every dense parameter moves at every step, so "adam-dense" only matters for embeddings
    frame = synthetic(n=400)
    kw = dict(SMALL, n_epochs=2, embedding_optimizer="adam-dense")
    assert state_equal(
        MLPMF(**kw, optimizer="adam").fit(frame), MLPMF(**kw, optimizer="adam-dense").fit(frame)
    )


def test_uniform_init_draws_vectors_and_biases_like_keras():
    model = MLPMF(64, init="uniform", init_std=0.05)
    state = model._init_embeddings(np.random.default_rng(0), 300, 200)
    half = 0.05 * np.sqrt(3.0)
    for name, arr in state.items():
        assert arr.dtype == np.float32
        assert np.abs(arr).max() <= half
        assert np.std(arr) == pytest.approx(0.05, rel=0.1), name
    normal = MLPMF(init_std=0.05)._init_embeddings(np.random.default_rng(0), 300, 200)
    assert not normal["user_bias_"].any() and not normal["item_bias_"].any()


def test_files_saved_before_embedding_optimizer_load_as_they_were_trained(tmp_path):
    # Such files have no embedding_optimizer: the embeddings then used the head's optimizer.
    model = MLPMF(**SMALL, embedding_optimizer=None).fit(synthetic(n=400))
    path = tmp_path / "old.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as f:
        contents = dict(f)
    params = json.loads(str(contents["hyperparams"]))
    del params["embedding_optimizer"]
    contents["hyperparams"] = np.array(json.dumps(params))
    np.savez(path, **contents)
    loaded = MLPMF.load(path)
    assert loaded.embedding_optimizer is None and loaded.embedding_optimizer_ == "adam"
    assert state_equal(loaded, model)
    # and pickles of such models
    model.embedding_optimizer = "sgd"
    del model.embedding_optimizer
    unpickled = pickle.loads(pickle.dumps(model))
    assert unpickled.embedding_optimizer is None and state_equal(unpickled, loaded)


def test_adam_dense_head_needs_adam_dense_embeddings():
    with pytest.raises(ValueError, match="pass embedding_optimizer='adam-dense'"):
        MLPMF(optimizer="adam-dense").fit(synthetic(n=100))
    MLPMF(**SMALL, optimizer="adam-dense", embedding_optimizer=None).fit(synthetic(n=100))


@pytest.mark.parametrize("change", [{"hidden": (2,)}, {"activation": "tanh"}, {"n_factors": 2}])
def test_changing_the_network_after_fit_is_a_clear_error(fitted, change):
    import copy

    model = copy.deepcopy(fitted[0])
    model.set_params(**change)
    name = next(iter(change))
    with pytest.raises(ValueError, match=rf"{name}=.*\(fitted with .*fit again"):
        model.predict([0], [0])


def test_batch_size_beyond_the_data_keeps_the_per_rating_step():
    frame = synthetic().head(300)
    big = MLPMF(4, hidden=(4,), n_epochs=3, batch_size=10**5, random_state=0).fit(frame)
    whole = MLPMF(4, hidden=(4,), n_epochs=3, batch_size=300, random_state=0).fit(frame)
    # a batch larger than the data is the whole data: the same model as batch_size=300
    assert big.history_["train_mse"] == whole.history_["train_mse"]
    assert big.history_["train_mse"][-1] < 2.0


def test_a_short_last_batch_moves_sgd_rows_as_a_full_one_would():
    """A batch of one rating at the end of an epoch once took a step batch_size times too big."""
    from latentfactors import make_synthetic_ratings

    frame, _ = make_synthetic_ratings(300, 200, 6000, random_state=0)
    params = dict(n_factors=8, hidden=(8,), batch_size=1024, n_epochs=2, random_state=0)
    full = MLPMF(**params).fit(frame.iloc[:4096])
    plus_one = MLPMF(**params).fit(frame.iloc[:4097])  # a last batch of one rating
    for name in ("item_bias_", "item_factors_", "user_bias_", "user_factors_"):
        grown = np.abs(getattr(plus_one, name)).max() / np.abs(getattr(full, name)).max()
        assert grown < 1.2, (name, grown)  # it was about 10x


def test_divergence_with_heavy_dropout_names_dropout(monkeypatch):
    from latentfactors.models import base

    monkeypatch.setattr(base, "MSE_BLOWUP", 1e-3)
    with pytest.raises(DivergenceError, match=r"dropout=0.9 scales the units it keeps by 10"):
        MLPMF(**{**SMALL, "dropout": 0.9}).fit(synthetic())


@pytest.mark.jit("fits the default MLP on 20,000 ratings, twice")
def test_heavy_dropout_that_stays_finite_warns_once():
    """dropout=0.9 stays finite here but its training MSE runs in the thousands."""
    from latentfactors import UnstableTrainingWarning, make_synthetic_ratings

    frame, _ = make_synthetic_ratings(500, 300, 20_000, random_state=0)
    with pytest.warns(UnstableTrainingWarning) as record:
        model = MLPMF(dropout=0.9, n_epochs=3, random_state=0).fit(frame)
    assert max(model.history_["train_mse"]) > 100 * np.mean(frame["rating"] ** 2)
    unstable = [w for w in record if issubclass(w.category, UnstableTrainingWarning)]
    assert len(unstable) == 1
    assert "dropout=0.9 scales the units it keeps by 10" in str(unstable[0].message)
    assert unstable[0].filename == __file__  # points at the call of fit
    # healthy training does not warn
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnstableTrainingWarning)
        MLPMF(dropout=0.5, n_epochs=3, random_state=0).fit(frame)


@pytest.mark.jit("fits the default MLP on 3,000 ratings, twice")
def test_batches_larger_than_the_data():
    """One batch of all ratings: the reported step is the one training used."""
    from latentfactors import make_synthetic_ratings

    frame, _ = make_synthetic_ratings(100, 80, 3000, random_state=1)
    model = MLPMF(batch_size=100_000, n_epochs=1, random_state=0)
    assert model.embedding_learning_rate_ == pytest.approx(0.006 * 100_000)  # not fitted yet
    model.fit(frame)
    assert model.embedding_learning_rate_ == pytest.approx(0.006 * 3000)
    same = MLPMF(batch_size=3000, n_epochs=1, random_state=0).fit(frame)
    np.testing.assert_array_equal(model.dense_, same.dense_)


@pytest.mark.jit("fits the default MLP on 3,000 ratings, twice")
def test_divergence_hint_weighs_the_penalties_against_the_embedding_step():
    from latentfactors import make_synthetic_ratings

    frame, _ = make_synthetic_ratings(100, 80, 3000, random_state=1)
    with pytest.raises(DivergenceError) as info:
        MLPMF(learning_rate=1e6, n_epochs=2, random_state=0).fit(frame)
    assert "reg=" not in str(info.value)  # the head's rate does not multiply reg
    assert "smaller learning_rate (now 1e+06)" in str(info.value)
    with pytest.raises(DivergenceError, match=r"times the embeddings' step per rating \(7812.5\)"):
        MLPMF(embedding_learning_rate=1e6, n_epochs=2, random_state=0).fit(frame)
