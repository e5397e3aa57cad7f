"""ImplicitMF: the ALS kernels against a dense twin, the objective, fold-in, and the contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from latentfactors import ImplicitMF, make_synthetic_ratings
from latentfactors.kernels import als
from latentfactors.kernels._config import with_threads
from tests import naive_als
from tests.conftest import two_threads
from tests.contract import UNKNOWN, ModelContract


@pytest.fixture(scope="module")
def small():
    """``(model, by_user, by_item, X, Y)``: sides of a planted frame, random float64 factors."""
    frame, _ = make_synthetic_ratings(30, 20, 240, rank=3, random_state=0)
    model = ImplicitMF(n_factors=5, reg=0.05, alpha=4.0)
    users, items = frame["user"].to_numpy(), frame["item"].to_numpy()
    sides = model._sides(users, items, frame["rating"].to_numpy(), 30, 20)
    rng = np.random.default_rng(1)
    return model, *sides, rng.standard_normal((30, 5)) * 0.3, rng.standard_normal((20, 5)) * 0.3


def solve(side, X, Y, steps, threads=1):
    out = X.copy()
    failed = np.zeros(len(X), dtype=np.bool_)
    args = (side, out, Y, als.gram(Y), steps, 0, len(X), failed)
    if threads > 1:
        with_threads(threads, als._solve_rows_parallel, *args)
    else:
        als._solve_rows_serial(*args)
    assert not failed.any()
    return out


@pytest.mark.parametrize("steps", [als.SOLVE_CHOLESKY, 1, 3])
def test_half_sweep_matches_the_dense_twin(small, steps):
    _, by_user, by_item, X, Y = small
    np.testing.assert_allclose(
        solve(by_user, X, Y, steps),
        naive_als.half_sweep(by_user, X, Y, steps),
        rtol=1e-9,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        solve(by_item, Y, X, steps),
        naive_als.half_sweep(by_item, Y, X, steps),
        rtol=1e-9,
        atol=1e-12,
    )


def test_enough_cg_steps_reach_the_exact_solution(small):
    _, by_user, _, X, Y = small
    np.testing.assert_allclose(
        solve(by_user, X, Y, 40), solve(by_user, X, Y, als.SOLVE_CHOLESKY), rtol=1e-7, atol=1e-9
    )


@two_threads
@pytest.mark.parametrize("steps", [als.SOLVE_CHOLESKY, 3])
def test_the_parallel_build_gives_the_same_bits(small, steps):
    _, by_user, _, X, Y = small
    np.testing.assert_array_equal(solve(by_user, X, Y, steps, 2), solve(by_user, X, Y, steps))


def test_gram_is_summed_in_fixed_chunks():
    Y = np.random.default_rng(0).standard_normal((2 * als.GRAM_CHUNK + 77, 6))
    np.testing.assert_allclose(als.gram(Y), Y.T @ Y, rtol=1e-12)
    assert np.array_equal(als.gram(Y), als.gram(Y).T)
    np.testing.assert_array_equal(with_threads(2, als.gram, Y, True), als.gram(Y))


def test_loss_matches_the_dense_objective(small):
    _, by_user, by_item, X, Y = small
    error, penalty = als.objective(by_user, X, Y, als.gram(X), als.gram(Y), by_item.lam)
    assert error + penalty == pytest.approx(naive_als.objective(by_user, by_item, X, Y), rel=1e-12)
    assert penalty == pytest.approx(
        by_user.lam @ np.sum(X * X, axis=1) + by_item.lam @ np.sum(Y * Y, axis=1), rel=1e-12
    )


@pytest.mark.parametrize("steps", [als.SOLVE_CHOLESKY, 2])
def test_every_half_sweep_lowers_the_objective(small, steps):
    _, by_user, by_item, X, Y = small
    values = [naive_als.objective(by_user, by_item, X, Y)]
    for _ in range(4):
        X = solve(by_user, X, Y, steps)
        values.append(naive_als.objective(by_user, by_item, X, Y))
        Y = solve(by_item, Y, X, steps)
        values.append(naive_als.objective(by_user, by_item, X, Y))
    assert all(b <= a * (1 + 1e-12) for a, b in zip(values, values[1:])), values
    assert values[-1] < 0.5 * values[0]


def test_the_exact_half_sweep_is_the_minimum_in_its_side(small):
    _, by_user, by_item, X, Y = small
    X = solve(by_user, X, Y, als.SOLVE_CHOLESKY)
    best = naive_als.objective(by_user, by_item, X, Y)
    rng = np.random.default_rng(2)
    for _ in range(5):
        moved = X + 1e-3 * rng.standard_normal(X.shape)
        assert naive_als.objective(by_user, by_item, moved, Y) > best


def test_repeated_pairs_add_their_confidences():
    model = ImplicitMF(alpha=2.0, confidence="binary")
    users, items = np.array([0, 0, 1]), np.array([1, 1, 0])
    by_user, by_item = model._sides(users, items, np.ones(3), 2, 2)
    np.testing.assert_array_equal(by_user.indptr, [0, 1, 2])
    np.testing.assert_array_equal(by_user.conf, [5.0, 3.0])  # 1 + 2 + 2, then 1 + 2
    np.testing.assert_array_equal(by_item.conf, [3.0, 5.0])
    # Each row's penalty follows its total weight: the other side's size plus the extras.
    np.testing.assert_allclose(by_user.lam, model.reg * np.array([2 + 4.0, 2 + 2.0]))


@pytest.mark.parametrize(
    "confidence, expected",
    [("binary", [4.0, 4.0, 4.0]), ("log", 1 + 3 * np.log1p([0.0, 2.0, 4.0])),
     ("rating", 1 + 3 * (np.array([0.0, 2.0, 4.0]) / 4) ** 2)],
)  # fmt: skip
def test_confidence_functions(confidence, expected):
    model = ImplicitMF(alpha=3.0, confidence=confidence, power=2.0)
    np.testing.assert_allclose(model._confidences(np.array([0.0, 2.0, 4.0])), expected)


def test_negative_values_are_refused_where_they_weigh():
    frame = pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [-1.0, 2.0]})
    with pytest.raises(ValueError, match="confidence='rating' needs ratings >= 0"):
        ImplicitMF(n_factors=2, n_epochs=1).fit(frame)
    ImplicitMF(n_factors=2, n_epochs=1, confidence="binary").fit(frame)


@pytest.mark.parametrize(
    "name, value, message",
    [("alpha", -1.0, "alpha must be a finite number >= 0"),
     ("confidence", "linear", "confidence must be one of"),
     ("power", -1.0, "power must be a finite number"),
     ("solver", "lu", "solver must be one of"),
     ("cg_steps", 0, "cg_steps must be an integer >= 1"),
     ("reg_exponent", 3.0, "reg_exponent must be a finite number")],
)  # fmt: skip
def test_bad_hyperparameters(name, value, message):
    with pytest.raises(ValueError, match=message):
        ImplicitMF(**{name: value})._validate()


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_fit_history_and_fold_in_equal_to_the_training_half_step(solver):
    frame, _ = make_synthetic_ratings(40, 30, 500, rank=3, random_state=3)
    model = ImplicitMF(n_factors=4, n_epochs=6, solver=solver, random_state=0).fit(frame)
    mse = model.history_["train_mse"]
    assert len(mse) == 6 and all(b <= a + 1e-9 for a, b in zip(mse, mse[1:])), mse
    # A training user folded in: the exact solve of their row against the fitted items.
    user = model.user_index_.ids[0]
    rated = frame[frame["user"] == user]
    vector, bias = model.fold_in((rated["item"].to_numpy(), rated["rating"].to_numpy()))
    assert bias == 0.0
    codes = model.item_index_.encode(frame["item"].to_numpy())
    users = model.user_index_.encode(frame["user"].to_numpy())
    by_user, _ = model._sides(users, codes, frame["rating"].to_numpy(), 40, 30)
    A, b = naive_als.system(by_user, model.item_factors_.astype(np.float64), 0)
    np.testing.assert_allclose(vector, np.linalg.solve(A, b), rtol=1e-5, atol=1e-6)
    recs = model.recommend_for(rated[["item", "rating"]], n=5)
    np.testing.assert_allclose(
        recs["score"], model.item_factors_[model.item_index_.encode(recs["item"])] @ vector,
        rtol=1e-5,
    )  # fmt: skip


def test_recommendations_follow_the_scores():
    frame, _ = make_synthetic_ratings(50, 40, 800, rank=3, random_state=4)
    model = ImplicitMF(n_factors=6, n_epochs=4, random_state=0).fit(frame)
    user = model.user_index_.ids[3]
    recs = model.recommend(user, n=40)
    seen = set(frame.loc[frame["user"] == user, "item"])
    assert not seen & set(recs["item"]) and len(recs) == 40 - len(seen)
    np.testing.assert_allclose(
        recs["score"], model.predict(np.full(len(recs), user), recs["item"]), rtol=1e-5, atol=1e-6
    )
    assert recs["score"].is_monotonic_decreasing


class TestImplicitMF(ModelContract):
    model_class = ImplicitMF
    params = {"n_factors": 4, "n_epochs": 3}

    def test_predict_and_evaluate(self, fitted, data):
        # Scores, not ratings: x_u . y_i, unclipped; evaluate compares them with 1.
        valid = data[1]
        pred = fitted.predict(valid["user"], valid["item"])
        assert pred.dtype == np.float64 and pred.shape == (len(valid),)
        users = fitted.user_index_.encode(valid["user"].to_numpy())
        items = fitted.item_index_.encode(valid["item"].to_numpy())
        known = (users >= 0) & (items >= 0)
        expected = np.einsum(
            "ij,ij->i", fitted.user_factors_[users[known]], fitted.item_factors_[items[known]]
        )
        np.testing.assert_allclose(pred[known], expected, rtol=1e-5, atol=1e-6)
        assert (pred[~known] == 0).all()
        scores = fitted.evaluate(valid)
        assert scores["mse"] == pytest.approx(np.mean((1 - pred) ** 2), rel=1e-6)

    def test_unknown_ids_fall_back_to_finite_predictions(self, fitted):
        user, item = fitted.user_index_.ids[0], fitted.item_index_.ids[0]
        pred = fitted.predict([user, UNKNOWN, UNKNOWN], [UNKNOWN, item, UNKNOWN])
        np.testing.assert_array_equal(pred, 0.0)


def test_the_binary_preset_uses_only_the_pairs():
    from latentfactors import presets

    frame, _ = make_synthetic_ratings(20, 15, 150, rank=2, random_state=5)
    model = presets.implicit_binary(n_factors=3, n_epochs=2, random_state=0)
    assert model.confidence == "binary" and model.alpha == presets.IMPLICIT_BINARY["alpha"]
    same = presets.implicit_binary(n_factors=3, n_epochs=2, random_state=0)
    model.fit(frame)
    same.fit(frame.assign(rating=1.0))  # the values do not count
    np.testing.assert_array_equal(model.user_factors_, same.user_factors_)
