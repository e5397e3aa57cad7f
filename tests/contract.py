"""The contract every model keeps, as a mixin: a model's test class inherits it.

A model is held to all of it by one class::

    class TestMyModel(ModelContract):
        model_class = MyModel
        params = {"n_factors": 4, "n_epochs": 2}  # small and fast

``params`` are keyword arguments of a small, fast configuration; the contract
adds ``random_state`` (unless given) and whatever a test needs on top. Every
test fits on a few hundred synthetic ratings, so the contract stays quick for
every model, with the JIT or without it.
"""

from __future__ import annotations

import io
import pickle

import numpy as np
import pandas as pd
import pytest

from latentfactors import NotFittedError, load_model, make_synthetic_ratings
from tests.conftest import two_threads

# Ids no training frame below holds: the synthetic ids are 0..n-1.
UNKNOWN = 10**6

# Hyperparameters every model shares, with a value each must refuse and the
# words its error must hold (those a model lacks are skipped).
BAD_PARAMS = [
    ("n_factors", 0, "n_factors must be an integer >= 1"),
    ("n_epochs", 0, "n_epochs must be an integer >= 1"),
    ("reg", -1.0, "reg must be a finite number >= 0"),
    ("learning_rate", 0.0, "learning_rate must be a finite number > 0"),
    ("batch_size", 0, "batch_size must be an integer >= 1"),
    ("init_std", float("nan"), "init_std must be a finite number > 0"),
    ("random_state", -1, "random_state must be a non-negative integer"),
    ("n_threads", 0, "n_threads must be an integer >= 1"),
    ("callback", 5, "callback must be callable"),
]


def learned(model) -> dict:
    """Copies of everything fitting produced: the state arrays, seen items, mean, history."""
    out = {name: np.array(arr, copy=True) for name, arr in model._get_state().items()}
    out["seen_indptr_"] = model.seen_indptr_.copy()
    out["seen_items_"] = model.seen_items_.copy()
    out["global_mean_"] = np.float64(model.global_mean_)
    out["user_ids"] = model.user_index_.to_array().copy()
    out["item_ids"] = model.item_index_.to_array().copy()
    out["train_mse"] = np.asarray(model.history_["train_mse"], dtype=np.float64)
    return out


def assert_same_learned(got: dict, want: dict) -> None:
    """Bit for bit: same names, dtypes, shapes and values (NaN equal to NaN)."""
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        np.testing.assert_array_equal(got[name], want[name], err_msg=name, strict=True)


class CallbackFailed(RuntimeError):
    """Raised by a callback on purpose."""


def failing_callback(epoch, logs):
    raise CallbackFailed(f"stopped by the test at epoch {epoch}")


class ModelContract:
    """Fit/predict/save/load/pickle/clone/unknown-id checks that every model passes."""

    model_class: type
    params: dict = {}

    # ---- the model and the data

    def make(self, **params):
        """A small, fast, seeded model of the class under test."""
        return self.model_class(**{"random_state": 0, **self.params, **params})

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls):
        """``(train, valid)``: disjoint pairs of a planted model, ids ``0..n-1``."""
        frame, _ = make_synthetic_ratings(60, 40, 900, rank=3, random_state=0)
        return frame.iloc[:800].reset_index(drop=True), frame.iloc[800:].reset_index(drop=True)

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, data):
        """One fitted model per class: tests must not change it (they fit their own)."""
        return cls().make().fit(data[0], valid=data[1])

    # ---- fitting and predicting

    def test_fit_returns_self_and_a_finite_float32_state(self, data):
        model = self.make()
        assert model.fit(data[0], valid=data[1]) is model
        n_users, n_items = len(model.user_index_), len(model.item_index_)
        assert n_users == data[0]["user"].nunique() and n_items == data[0]["item"].nunique()
        state = model._get_state()
        assert state, "a fitted model has learned arrays"
        for name, arr in state.items():
            assert arr.dtype == np.float32, name
            assert np.isfinite(arr).all(), name
        assert model.user_factors_.shape == (n_users, model.n_factors)
        assert model.item_factors_.shape == (n_items, model.n_factors)
        assert model.user_bias_.shape == (n_users,) and model.item_bias_.shape == (n_items,)
        assert 1 <= model.best_epoch_ <= model.n_epochs_ <= model.n_epochs
        assert {len(v) for v in model.history_.values()} == {model.n_epochs_}

    def test_predict_and_evaluate(self, fitted, data):
        valid = data[1]
        pred = fitted.predict(valid["user"], valid["item"])
        assert pred.dtype == np.float64 and pred.shape == (len(valid),)
        assert np.isfinite(pred).all()
        low, high = fitted.rating_range_
        assert (pred >= low).all() and (pred <= high).all()  # clip is on by default
        np.testing.assert_array_equal(fitted.predict(valid), pred)
        scores = fitted.evaluate(valid)
        assert set(scores) == {"mse", "rmse", "mae"}
        assert scores["mse"] == pytest.approx(np.mean((pred - valid["rating"]) ** 2), rel=1e-6)
        assert scores["rmse"] == pytest.approx(np.sqrt(scores["mse"]))

    def test_same_seed_gives_a_bit_identical_model(self, data, fitted):
        again = self.make().fit(data[0], valid=data[1])
        assert_same_learned(learned(again), learned(fitted))
        other = self.make(random_state=1).fit(data[0], valid=data[1])
        assert not np.array_equal(other.user_factors_, fitted.user_factors_)

    @two_threads
    def test_thread_count_does_not_change_the_model(self, data):
        one = self.make(n_threads=1).fit(data[0], valid=data[1])
        two = self.make(n_threads=2).fit(data[0], valid=data[1])
        assert_same_learned(learned(two), learned(one))

    # ---- persistence

    def _assert_same_model(self, got, want, data):
        assert type(got) is type(want)
        assert_same_learned(learned(got), learned(want))
        params = {**want.get_params(), "callback": None}
        assert got.get_params() == params
        assert got.history_ == want.history_
        assert (got.n_epochs_, got.best_epoch_) == (want.n_epochs_, want.best_epoch_)
        assert got.rating_range_ == want.rating_range_
        valid = data[1]
        np.testing.assert_array_equal(got.predict(valid), want.predict(valid), strict=True)

    def test_save_and_load_through_a_path(self, fitted, data, tmp_path):
        path = tmp_path / "model.npz"
        fitted.save(path)
        self._assert_same_model(self.model_class.load(path), fitted, data)
        self._assert_same_model(load_model(str(path)), fitted, data)

    def test_save_and_load_through_a_file_object(self, fitted, data):
        buffer = io.BytesIO()
        fitted.save(buffer)
        buffer.seek(0)
        self._assert_same_model(self.model_class.load(buffer), fitted, data)
        buffer.seek(0)
        self._assert_same_model(load_model(buffer), fitted, data)

    def test_pickle_round_trip(self, fitted, data):
        copy = pickle.loads(pickle.dumps(fitted))
        self._assert_same_model(copy, fitted, data)

    # ---- parameters

    def test_get_params_names_every_init_argument(self):
        model = self.make()
        params = model.get_params()
        assert list(params) == model._param_names()
        for name, value in {"random_state": 0, **self.params}.items():
            assert params[name] == value, name

    def test_a_model_rebuilt_from_its_params_is_unfitted_with_equal_params(self, fitted, data):
        clone = type(fitted)(**fitted.get_params())
        assert clone.get_params() == fitted.get_params()
        with pytest.raises(NotFittedError, match="not fitted yet"):
            clone.predict(data[1])
        # ...and it fits to the very same model.
        clone.fit(data[0], valid=data[1])
        assert_same_learned(learned(clone), learned(fitted))

    def test_set_params_round_trips_get_params(self, fitted):
        blank = self.model_class()
        assert blank.set_params(**fitted.get_params()) is blank
        assert blank.get_params() == fitted.get_params()
        back = self.model_class().get_params()
        blank.set_params(**back)
        assert blank.get_params() == back

    @pytest.mark.parametrize("name, value, message", BAD_PARAMS)
    def test_bad_hyperparameters_are_refused_by_set_params_and_fit(
        self, data, name, value, message
    ):
        model = self.make()
        if name not in model.get_params():
            pytest.skip(f"{self.model_class.__name__} has no {name}")
        before = model.get_params()
        with pytest.raises(ValueError, match=message):
            model.set_params(**{name: value})
        assert model.get_params() == before  # none of the new values is kept
        with pytest.raises(ValueError, match=message):
            self.make(**{name: value}).fit(data[0])

    def test_set_params_refuses_an_unknown_name(self):
        with pytest.raises(ValueError, match="'no_such_knob' is not a parameter of"):
            self.make().set_params(no_such_knob=1)

    # ---- ids

    def test_unknown_ids_fall_back_to_finite_predictions(self, fitted):
        user = fitted.user_index_.ids[0]
        item = fitted.item_index_.ids[0]
        users = [user, UNKNOWN, UNKNOWN, UNKNOWN + 1]
        items = [UNKNOWN, item, UNKNOWN, UNKNOWN + 1]
        pred = fitted.predict(users, items)
        assert np.isfinite(pred).all()
        low, high = fitted.rating_range_
        assert (pred >= low).all() and (pred <= high).all()
        assert pred[2] == pred[3]  # every unknown id is the same to the model

    def test_ids_of_the_wrong_type_are_a_clear_error(self, fitted):
        with pytest.raises(TypeError, match="the ids given are strings .* model's ids are numbers"):
            fitted.predict(["a", "b"], ["c", "d"])
        with pytest.raises(TypeError, match="model's ids are numbers"):
            fitted.recommend("a")

    # ---- before fit, and after a failed fit

    @pytest.mark.parametrize(
        "call",
        [
            "predict",
            "evaluate",
            "recommend",
            "recommend_all",
            "similar_items",
            "fold_in",
            "save to a path",
            "save to a file",
        ],
    )
    def test_use_before_fit_raises_not_fitted(self, data, tmp_path, call):
        model = self.make()
        user, item = data[0]["user"].iloc[0], data[0]["item"].iloc[0]
        calls = {
            "predict": lambda: model.predict([user], [item]),
            "evaluate": lambda: model.evaluate(data[1]),
            "recommend": lambda: model.recommend(user),
            "recommend_all": lambda: model.recommend_all(),
            "similar_items": lambda: model.similar_items(item),
            "fold_in": lambda: model.fold_in(([item], [4.0])),
            "save to a path": lambda: model.save(tmp_path / "unfitted.npz"),
            "save to a file": lambda: model.save(io.BytesIO()),
        }
        with pytest.raises(NotFittedError, match="is not fitted yet: call fit"):
            calls[call]()
        assert not (tmp_path / "unfitted.npz").exists()

    def test_a_failed_refit_leaves_the_model_as_it_was(self, data):
        model = self.make().fit(data[0], valid=data[1])
        before = learned(model)
        params = model.get_params()
        bad = data[0].assign(rating=data[0]["rating"].astype(np.float64))
        bad.loc[3, "rating"] = np.nan
        with pytest.raises(ValueError, match="NaN or infinite, e.g. row 3"):
            model.fit(bad)
        assert_same_learned(learned(model), before)
        model.set_params(callback=failing_callback)
        with pytest.raises(CallbackFailed, match="stopped by the test at epoch 1"):
            model.fit(data[0], valid=data[1])
        assert_same_learned(learned(model), before)
        assert model.get_params() == {**params, "callback": failing_callback}

    def test_a_failed_first_fit_leaves_the_model_unfitted(self, data):
        model = self.make(callback=failing_callback)
        with pytest.raises(CallbackFailed, match="stopped by the test"):
            model.fit(data[0])
        with pytest.raises(NotFittedError, match="not fitted yet"):
            model.predict(data[1])

    # ---- recommending

    def test_recommend_and_recommend_all_shapes(self, fitted):
        user = fitted.user_index_.ids[0]
        recs = fitted.recommend(user, n=5)
        assert list(recs.columns) == ["item", "score"] and len(recs) == 5
        assert recs["score"].is_monotonic_decreasing
        seen = fitted.item_index_.ids[
            fitted.seen_items_[fitted.seen_indptr_[0] : fitted.seen_indptr_[1]]
        ]
        assert not set(recs["item"]) & set(seen)  # training items are left out
        topn = fitted.recommend_all(n=3, as_frame=False)
        assert topn.items.shape == topn.scores.shape == (len(fitted.user_index_), 3)
        np.testing.assert_array_equal(topn.items[0], recs["item"].to_numpy()[:3])
        frame = fitted.recommend_all(n=3)
        assert list(frame.columns) == ["user", "rank", "item", "score"]
        assert len(frame) == 3 * len(fitted.user_index_)

    def test_similar_items_shapes(self, fitted):
        item = fitted.item_index_.ids[0]
        similar = fitted.similar_items(item, n=4)
        assert list(similar.columns) == ["item", "score"] and len(similar) == 4
        assert item not in set(similar["item"])
        assert np.isfinite(similar["score"]).all()

    def test_fold_in_and_predict_for_a_new_user(self, fitted, data):
        train = data[0]
        rated = train[train["user"] == train["user"].iloc[0]]
        ratings = (rated["item"].to_numpy(), rated["rating"].to_numpy())
        vector, bias = fitted.fold_in(ratings)
        assert vector.shape == (fitted.n_factors,) and vector.dtype == np.float32
        assert np.isfinite(vector).all() and np.isfinite(bias)
        items = np.append(fitted.item_index_.ids[:6], UNKNOWN)
        pred = fitted.predict_for(ratings, items)
        assert pred.shape == (len(items),) and np.isfinite(pred).all()
        recs = fitted.recommend_for(pd.DataFrame({"item": ratings[0], "rating": ratings[1]}), n=4)
        assert len(recs) == 4 and not set(recs["item"]) & set(ratings[0])
