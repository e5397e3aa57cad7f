"""MLPMF fold-in: the objective's minimiser, new-user predictions and rankings, errors.

The objective is recomputed here the obvious way, one rating at a time with
the NumPy forward pass of :mod:`tests.naive_mlp`:

    F(p, b) = sum_j (r_j - mu - b - bi_j - head([p; q_j]))**2
              + reg * n * |p|**2 + reg_bias * n * b**2
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from latentfactors import MLPMF, BiasedMF
from latentfactors.data import make_synthetic_ratings
from latentfactors.models import fold_in as fim
from latentfactors.models.recommend import UnknownIdError, solve_fold_in
from tests import naive_mlp as naive


@pytest.fixture(scope="module")
def frame():
    ratings, _ = make_synthetic_ratings(200, 150, 8000, rank=4, noise=0.5, random_state=3)
    return ratings


def fit(frame, activation, **kw):
    params = dict(hidden=(16, 8), n_epochs=3, random_state=0)
    params.update(kw)
    return MLPMF(8, activation=activation, **params).fit(frame)


@pytest.fixture(scope="module")
def relu(frame):
    return fit(frame, "relu")


@pytest.fixture(scope="module")
def tanh(frame):
    return fit(frame, "tanh")


def user_ratings(model, frame, user):
    mine = frame[frame["user"] == user]
    return model.item_index_.encode(mine["item"]), mine["rating"].to_numpy(np.float64), mine


def objective(model, codes, ratings, x):
    """``F(p, b)`` at ``x = (p, b)``, in float64, rating by rating."""
    k = model.n_factors
    p, b = np.asarray(x[:k], dtype=np.float64), float(x[k])
    weights = [w.astype(np.float64) for w in model.weights_]
    intercepts = [c.astype(np.float64) for c in model.intercepts_]
    Q = model.item_factors_.astype(np.float64)
    bi = model.item_bias_.astype(np.float64)
    total = 0.0
    for code, r in zip(codes, ratings):
        h = naive.head(np.concatenate([p, Q[code]]), weights, intercepts, model.activation)[0]
        total += (r - model.global_mean_ - b - bi[code] - h) ** 2
    n = len(ratings)
    return total + model.reg * n * float(p @ p) + model.reg_bias_ * n * b * b


def solve(model, codes, ratings):
    """The float64 minimiser behind ``fold_in`` (before the float32 rounding)."""
    x, _, steps = fim._minimise(model, codes, ratings, max_iter=1000, xtol=1e-10, ftol=1e-13)
    assert steps < 1000  # converged, not stopped by the iteration limit
    return x


def trained_x(model, user):
    code = model.user_index_.encode([user])[0]
    return np.r_[model.user_factors_[code], model.user_bias_[code]].astype(np.float64)


# ---------------------------------------------------------------- the minimiser


@pytest.mark.jit("fits an MLP on 8,000 ratings per case")
@pytest.mark.parametrize("reg, reg_bias", [(0.05, 0.05), (0.1, 0.0)])
def test_linear_head_gives_the_exact_ridge_solution(frame, reg, reg_bias):
    # A linear head is one affine map, head([p; q]) = p . w_u + q . w_i + c, so
    # F is the ridge problem of solve_fold_in with every "item vector" equal to
    # w_u and the item offsets q_j . w_i + c folded into the item biases.
    m = fit(frame, "linear", reg=reg, reg_bias=reg_bias)
    weights = [w.astype(np.float64) for w in m.weights_]
    intercepts = [c.astype(np.float64) for c in m.intercepts_]
    M, c = weights[0], intercepts[0]
    for w, b in zip(weights[1:], intercepts[1:]):
        M, c = M @ w, c @ w + b
    k = m.n_factors
    w_user, w_item, c = M[:k, 0], M[k:, 0], float(c[0])
    for user in (0, 5, 17, 42):
        codes, r, mine = user_ratings(m, frame, user)
        Q = m.item_factors_[codes].astype(np.float64)
        offsets = m.item_bias_[codes].astype(np.float64) + Q @ w_item + c
        Z = np.tile(w_user, (len(r), 1))
        p, b = solve_fold_in(Z, offsets, r, m.global_mean_, m.reg, m.reg_bias_)
        x = solve(m, codes, r)
        np.testing.assert_allclose(x[:k], p, rtol=1e-9, atol=1e-13)
        assert x[k] == pytest.approx(b, rel=1e-12, abs=1e-13)
        vector, bias = m.fold_in(mine)
        assert vector.dtype == np.float32 and vector.shape == (k,)
        np.testing.assert_allclose(vector, p, rtol=1e-6, atol=1e-9)  # float32 rounding
        assert bias == pytest.approx(float(np.float32(b)), abs=1e-7)


@pytest.mark.jit("fits an MLP on 8,000 ratings")
def test_tanh_fold_in_has_zero_gradient_and_beats_the_trained_vector(tanh, frame):
    # tanh makes F smooth: its gradient (central differences in float64) must
    # vanish at the returned point, up to the differencing error.
    k, h = tanh.n_factors, 1e-6
    for user in (1, 8, 30):
        codes, r, _ = user_ratings(tanh, frame, user)
        x = solve(tanh, codes, r)
        value = objective(tanh, codes, r, x)
        grad = np.empty(k + 1)
        for t in range(k + 1):
            e = np.zeros(k + 1)
            e[t] = h
            grad[t] = (objective(tanh, codes, r, x + e) - objective(tanh, codes, r, x - e)) / (
                2 * h
            )
        # The gradient's terms are of size ~ |F|: compare with that.
        assert np.max(np.abs(grad)) < 1e-6 * value, (user, grad)
        assert value <= objective(tanh, codes, r, trained_x(tanh, user)) + 1e-9
        start = fim._UserObjective(tanh, codes, r).start()
        assert start[:k].max() == 0 and start[:k].min() == 0
        assert value <= objective(tanh, codes, r, start) + 1e-9


def test_relu_fold_in_is_a_local_minimum_on_kinks(relu, frame):
    """With ReLU, F is piecewise quadratic and its minimum lies on kinks.

    A hidden unit of one rating switching on or off bends F, and the minimum
    typically sits where some units are exactly at zero, so F has no gradient
    there and a central difference does not vanish. The first-order test is
    then that no direction goes down: the one-sided difference quotient
    ``(F(x + h d) - F(x)) / h``, which is the directional derivative up to
    ``O(h)`` for a piecewise quadratic F, is >= 0 for every direction ``d``.
    """
    k, h = relu.n_factors, 1e-7
    rng = np.random.default_rng(0)
    on_kinks = 0
    for user in (2, 9, 33):
        codes, r, _ = user_ratings(relu, frame, user)
        x = solve(relu, codes, r)
        value = objective(relu, codes, r, x)
        directions = np.vstack([np.eye(k + 1), -np.eye(k + 1), rng.standard_normal((30, k + 1))])
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        slopes = [(objective(relu, codes, r, x + h * d) - value) / h for d in directions]
        # Rounding in F (~1e-16 * F) over h, plus the O(h) curvature term.
        assert min(slopes) > -1e-5 * (1 + value), (user, min(slopes))
        assert value <= objective(relu, codes, r, trained_x(relu, user)) + 1e-9
        start = fim._UserObjective(relu, codes, r).start()
        assert value <= objective(relu, codes, r, start) + 1e-9
        # The minimum is indeed on kinks: some first-layer unit of some rating is at zero.
        w = relu.weights_[0].astype(np.float64)
        z = x[:k] @ w[:k] + relu.item_factors_[codes].astype(np.float64) @ w[k:]
        z += relu.intercepts_[0].astype(np.float64)
        on_kinks += bool(np.min(np.abs(z)) < 1e-8)
    assert on_kinks >= 1


def test_fold_in_is_deterministic_and_needs_finite_parameters(relu, frame):
    _, _, mine = user_ratings(relu, frame, 3)
    a, b = relu.fold_in(mine), relu.fold_in(mine)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    broken = copy.deepcopy(relu)
    broken.item_factors_[broken.item_index_.encode(mine["item"])[0], 0] = np.nan
    with pytest.raises(FloatingPointError, match="fold-in produced NaN or infinite values"):
        broken.fold_in(mine)


# ---------------------------------------------------------------- trained users


@pytest.mark.jit("fits MLPs on 8,000 ratings for 40 epochs")
def test_fold_in_reproduces_trained_users(frame):
    """Folding a trained user back in from their own ratings gives nearly their predictions.

    The fold-in minimises the user's part of the training objective with the
    items fixed at their final values. Training moved users and items
    jointly, so a trained user differs from it by how far the optimiser
    stopped from that minimum: mostly what the items (and the head) moved
    after the user's last updates, plus Adam's noise. With a learning rate
    that decays to ~1/70 of its start over 40 epochs, the last epochs barely
    move anything; on this data we measured per-user correlations of at
    least 0.980 (median 0.9997) between trained and folded-in predictions
    over all items, and a mean absolute difference of 0.020 against a
    prediction spread (std over items) of 0.47. The bounds leave about 2.5x
    room. The folded-in objective is never above the trained vector's.
    """
    m = MLPMF(
        8, hidden=(16, 8), n_epochs=40, learning_rate=0.01, lr_decay=0.9, clip=False, random_state=0
    ).fit(frame)
    items = m.item_index_.ids
    corrs, diffs = [], []
    for user in range(0, 200, 5):
        codes, r, mine = user_ratings(m, frame, user)
        trained = m.predict(np.full(len(items), user), items)
        folded = m.predict_for(mine, items)
        corrs.append(np.corrcoef(trained, folded)[0, 1])
        diffs.append(np.abs(trained - folded).mean())
        if user % 25 == 0:
            vector, bias = m.fold_in(mine)
            x = np.r_[vector, bias].astype(np.float64)
            assert objective(m, codes, r, x) <= objective(m, codes, r, trained_x(m, user)) + 1e-4
    assert min(corrs) > 0.95 and np.median(corrs) > 0.995
    assert np.mean(diffs) < 0.05


# ---------------------------------------------------------------- new users


def with_user_row(model, user, vector, bias):
    """A deep copy of ``model`` whose row for ``user`` is replaced."""
    other = copy.deepcopy(model)
    code = other.user_index_.encode([user])[0]
    other.user_factors_[code] = vector
    other.user_bias_[code] = bias
    return other


def snapshot(model):
    state = {name: arr.copy() for name, arr in model._get_state().items()}
    state["weights"] = [w.copy() for w in model.weights_]
    return state, model.global_mean_


def assert_unchanged(model, before):
    state, mu = before
    after, mu_after = snapshot(model)
    assert mu_after == mu
    for name, arr in state.items():
        if name == "weights":
            for w0, w1 in zip(arr, after["weights"]):
                np.testing.assert_array_equal(w0, w1)
        else:
            np.testing.assert_array_equal(after[name], arr)


@pytest.mark.parametrize("clip", [True, False])
def test_predict_for_equals_predict_with_the_user_row_replaced(relu, frame, clip):
    model = copy.copy(relu)
    model.clip = clip
    before = snapshot(model)
    user = 12
    _, _, mine = user_ratings(model, frame, user)
    vector, bias = model.fold_in(mine)
    other = with_user_row(model, user, vector, bias)
    items = np.r_[model.item_index_.ids, [99_999]]  # an unknown item too
    expected = other.predict(np.full(len(items), user), items)
    np.testing.assert_array_equal(model.predict_for(mine, items), expected)
    assert_unchanged(model, before)


@pytest.mark.parametrize("weight", [0.0, 0.4])
def test_recommend_for_ranks_as_brute_force_and_as_recommend(relu, frame, weight):
    before = snapshot(relu)
    user = 21
    _, _, mine = user_ratings(relu, frame, user)
    ids = relu.item_index_.ids
    raw = copy.copy(relu)
    raw.clip = False
    scores = raw.predict_for(mine, ids)
    counts = np.bincount(relu.item_index_.encode(frame["item"]), minlength=len(ids))
    scores = scores + weight * np.log1p(counts.astype(np.float64))
    eligible = np.setdiff1d(np.arange(len(ids)), relu.item_index_.encode(mine["item"]))
    order = eligible[np.lexsort((eligible, -scores[eligible]))][:15]
    rec = relu.recommend_for(mine, 15, popularity_weight=weight)
    np.testing.assert_array_equal(rec["item"].to_numpy(), ids[order])
    np.testing.assert_array_equal(rec["score"].to_numpy(), scores[order])
    # The user's own training ratings: the same exclusions as recommend(user).
    vector, bias = relu.fold_in(mine)
    other = with_user_row(relu, user, vector, bias)
    pd.testing.assert_frame_equal(rec, other.recommend(user, 15, popularity_weight=weight))
    everything = relu.recommend_for(mine, 500, exclude_seen=False, popularity_weight=weight)
    pd.testing.assert_frame_equal(
        everything, other.recommend(user, 500, exclude_seen=False, popularity_weight=weight)
    )
    assert len(everything) == len(ids)
    assert_unchanged(relu, before)


def test_ties_go_to_the_smaller_item_code(relu):
    # A head whose output ignores its input, and equal item biases: every
    # item scores the same, so the ranking is the item-code order.
    flat = copy.deepcopy(relu)
    flat.weights_[-1][:] = 0.0
    flat.item_bias_[:] = 0.25
    mine = pd.DataFrame({"item": [4, 9, 30], "rating": [5.0, 3.0, 4.0]})
    rec = flat.recommend_for(mine, 20)
    codes = np.setdiff1d(np.arange(len(flat.item_index_)), flat.item_index_.encode(mine["item"]))
    np.testing.assert_array_equal(rec["item"].to_numpy(), flat.item_index_.ids[codes[:20]])
    assert (rec["score"] == rec["score"].iloc[0]).all()


def test_bad_input_gives_the_same_errors_as_biased_mf(relu, frame):
    mf = BiasedMF(8, n_epochs=1, random_state=0).fit(frame)
    known, unknown = int(relu.item_index_.ids[0]), 5000
    cases = [
        pd.DataFrame({"item": [], "rating": []}),
        ([known, 2], [4.0, np.nan]),
        ([known], [np.inf]),
        pd.DataFrame({"item": [known]}),
        ([known, 2], [4.0]),
        ([known], ["good"]),
        {known: 4.0},
        ([known, unknown], [4.0, 3.0]),
        ([np.nan], [3.0]),
    ]
    calls = {
        "fold_in": lambda model, bad: model.fold_in(bad),
        "recommend_for": lambda model, bad: model.recommend_for(bad, 5),
        "predict_for": lambda model, bad: model.predict_for(bad, [known]),
    }
    for bad in cases:
        for call in calls.values():
            with pytest.raises((ValueError, TypeError)) as mlp_error:
                call(relu, bad)
            with pytest.raises((ValueError, TypeError)) as mf_error:
                call(mf, bad)
            assert mlp_error.type is mf_error.type
            assert str(mlp_error.value) == str(mf_error.value)
    with pytest.raises(UnknownIdError, match=r"1 rated item\(s\) are not known.*\[5000\]"):
        relu.predict_for(([known, unknown], [4.0, 3.0]), [known])
    with pytest.raises(ValueError, match="none of the rated items is known"):
        relu.fold_in(([unknown], [3.0]), ignore_unknown=True)
    p, _ = relu.fold_in(([known, unknown], [4.0, 3.0]), ignore_unknown=True)
    np.testing.assert_array_equal(p, relu.fold_in(([known], [4.0]))[0])
