"""Recommending: top-N against brute force, similar items/users, fold-in, titles, errors.

The reference for every ranking is the obvious one: score every item with
``predict`` (clipping off), drop the user's training items, and sort by score
descending with ties to the smaller item code (``np.lexsort``). For BiasedMF
the kernels rescore the final candidates with ``predict``'s own arithmetic,
so items *and* scores must match bit for bit, not just to a tolerance.
"""

from __future__ import annotations

import copy
import io
import tracemalloc

import numpy as np
import pandas as pd
import pytest

import latentfactors
import latentfactors.models
from latentfactors import MLPMF, BiasedMF, NotFittedError, load_model
from latentfactors.data import make_synthetic_ratings
from latentfactors.kernels import topn as topn_kernels
from latentfactors.models.recommend import (
    TopN,
    UnknownIdError,
    popularity_recommendations,
    solve_fold_in,
    with_titles,
)


def tiny_ratings(n_users=50, n_items=120, n=2000, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    keys = rng.choice(n_users * n_items, size=n, replace=False)
    return pd.DataFrame(
        {
            "user": keys // n_items,
            "item": keys % n_items,
            "rating": rng.integers(1, 6, size=n).astype(np.float32),
        }
    )


@pytest.fixture(scope="module")
def ratings():
    return tiny_ratings()


@pytest.fixture(scope="module")
def model(ratings):
    # init_std 0.3 keeps the interaction term large enough to matter in the ranking.
    return BiasedMF(16, n_epochs=10, init_std=0.3, random_state=0).fit(ratings)


def raw_copy(model):
    """The same fitted model with clipping off: ``predict`` then gives the ranking score."""
    raw = copy.copy(model)
    raw.clip = False
    return raw


def brute_force(model, user, n, *, exclude_seen=True, candidates=None, prior=None):
    """Top ``n`` (raw ids, scores) of one user by scoring every item with ``predict``."""
    ids = model.item_index_.ids
    scores = raw_copy(model).predict(np.full(len(ids), user), ids)
    if prior is not None:
        scores = scores + prior
    eligible = np.ones(len(ids), dtype=bool)
    if exclude_seen:
        u = model.user_index_.encode([user])[0]
        eligible[model.seen_items_[model.seen_indptr_[u] : model.seen_indptr_[u + 1]]] = False
    if candidates is not None:
        keep = np.zeros(len(ids), dtype=bool)
        keep[model.item_index_.encode(candidates)] = True
        eligible &= keep
    codes = np.flatnonzero(eligible)
    order = codes[np.lexsort((codes, -scores[codes]))][:n]
    return ids[order], scores[order]


def assert_same(frame, expected):
    items, scores = expected
    np.testing.assert_array_equal(frame["item"].to_numpy(), items)
    np.testing.assert_array_equal(frame["score"].to_numpy(), scores)


# ---------------------------------------------------------------- top-N


@pytest.mark.parametrize("n", [1, 10, 200])
def test_recommend_equals_brute_force_for_every_user(model, n):
    for user in model.user_index_.ids:
        assert_same(model.recommend(user, n), brute_force(model, user, n))


def test_recommend_without_exclusion_and_with_candidates(model, ratings):
    user = 7
    assert_same(
        model.recommend(user, 15, exclude_seen=False),
        brute_force(model, user, 15, exclude_seen=False),
    )
    cands = [5, 3, 99, 3, 42, 17, 64, 1]  # unsorted, with a repeat
    rec = model.recommend(user, 4, items=cands)
    assert_same(rec, brute_force(model, user, 4, candidates=cands))
    assert set(rec["item"]) <= set(cands)


def test_ties_are_broken_by_item_code_exactly():
    # Small integer factors make every score exact in float32 and float64, so
    # the many equal scores must come out in item-code order.
    ratings = tiny_ratings(30, 60, 600, seed=4)
    m = BiasedMF(3, n_epochs=1, random_state=0).fit(ratings)
    rng = np.random.default_rng(0)
    m.user_factors_ = rng.integers(-1, 2, size=m.user_factors_.shape).astype(np.float32)
    m.item_factors_ = rng.integers(-1, 2, size=m.item_factors_.shape).astype(np.float32)
    m.user_bias_ = np.zeros_like(m.user_bias_)
    m.item_bias_ = (rng.integers(-1, 2, size=m.item_bias_.shape) / 2).astype(np.float32)
    m.global_mean_ = 3.0
    top = m.recommend_all(40, as_frame=False)
    n_ties = 0
    for r, user in enumerate(m.user_index_.ids):
        expected = brute_force(m, user, 40)
        assert_same(m.recommend(user, 40), expected)
        np.testing.assert_array_equal(top.items[r][top.valid[r]], expected[0])
        n_ties += int((np.diff(expected[1]) == 0).sum())
    assert n_ties > 500  # the test really exercises ties


def test_exclude_seen_never_returns_a_training_item(model, ratings):
    top = model.recommend_all(len(model.item_index_), as_frame=False)
    recommended = set(
        zip(np.repeat(top.users, top.items.shape[1])[top.valid.ravel()], top.items[top.valid])
    )
    trained = set(zip(ratings["user"], ratings["item"]))
    assert not recommended & trained
    # Everything else is recommended: the lists are complete.
    assert len(recommended) == len(model.user_index_) * len(model.item_index_) - len(trained)


@pytest.mark.parametrize("batch_size", [1, 7, None])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_recommend_all_equals_recommend(model, batch_size, n_threads):
    m = copy.copy(model)
    m.n_threads = n_threads
    frame = m.recommend_all(12, batch_size=batch_size)
    expected = pd.concat(
        [m.recommend(u, 12).assign(user=u) for u in m.user_index_.ids], ignore_index=True
    )
    pd.testing.assert_frame_equal(
        frame[["user", "item", "score"]], expected[["user", "item", "score"]], check_dtype=False
    )
    assert (frame.groupby("user")["rank"].apply(lambda r: list(r) == list(range(1, 13)))).all()


def test_recommend_all_for_chosen_users_and_candidates(model):
    users = [9, 2, 9]
    cands = np.arange(0, 120, 3)
    top = model.recommend_all(5, users=users, items=cands, as_frame=False, batch_size=2)
    np.testing.assert_array_equal(top.users, users)
    for r, user in enumerate(users):
        items, scores = brute_force(model, user, 5, candidates=cands)
        np.testing.assert_array_equal(top.items[r], items)
        np.testing.assert_array_equal(top.scores[r], scores)


def test_short_lists_are_padded(model):
    user = model.user_index_.ids[0]
    n_seen = int(np.diff(model.seen_indptr_)[0])
    n_left = len(model.item_index_) - n_seen
    assert len(model.recommend(user, 10_000)) == n_left
    top = model.recommend_all(10_000, users=[user], as_frame=False)
    assert top.items.shape == (1, len(model.item_index_))  # capped at the candidates
    assert top.valid.sum() == n_left
    assert (top.item_codes[~top.valid] == -1).all() and np.isnan(top.scores[~top.valid]).all()
    assert (top.items[~top.valid] == -1).all()
    assert len(top.to_frame()) == n_left
    assert len(top) == 1


def test_string_ids(ratings):
    frame = ratings.assign(
        user="u" + ratings["user"].astype(str), item="i" + ratings["item"].astype(str)
    )
    m = BiasedMF(4, n_epochs=2, random_state=0).fit(frame)
    rec = m.recommend("u3", 5)
    assert rec["item"].str.startswith("i").all()
    top = m.recommend_all(500, users=["u3"], as_frame=False)
    assert (top.items[~top.valid] == "").all()
    with pytest.raises(UnknownIdError, match=r"user 'u999' is not known"):
        m.recommend("u999")


def test_generic_scoring_path_matches_the_dot_path(model):
    # _score_block (the fallback for models that are not a dot product) must
    # rank exactly as the BLAS + rescoring path does.
    generic = copy.copy(model)
    generic._dot_parts = lambda: None
    a = model.recommend_all(8, as_frame=False)
    b = generic.recommend_all(8, as_frame=False, batch_size=5)
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_popularity_weight_adds_a_log_count_prior(model, ratings):
    counts = np.bincount(model.item_index_.encode(ratings["item"]), minlength=120)
    prior = 0.7 * np.log1p(counts.astype(np.float64))
    for user in (0, 11, 31):
        assert_same(
            model.recommend(user, 10, popularity_weight=0.7),
            brute_force(model, user, 10, prior=prior),
        )


def test_exclude_extra_pairs(model, ratings):
    user = 4
    first = model.recommend(user, 3)["item"].to_numpy()
    extra = pd.DataFrame({"user": [user] * 3 + [999], "item": list(first) + [5]})
    top = model.recommend_all(3, users=[user], exclude=extra, as_frame=False)
    assert not set(top.items[0]) & set(first)
    # exclude alone (exclude_seen=False) skips only the given pairs.
    only = model.recommend_all(
        3, users=[user], exclude=(np.array([user]), first[:1]), exclude_seen=False, as_frame=False
    )
    expected = brute_force(model, user, 4, exclude_seen=False)[0]
    np.testing.assert_array_equal(only.items[0], [i for i in expected if i != first[0]][:3])


@pytest.mark.jit("ranks 2,000 items for 3,000 users")
def test_memory_stays_within_one_block():
    frame, _ = make_synthetic_ratings(3000, 2000, 30_000, rank=2, random_state=0)
    m = BiasedMF(8, n_epochs=1, random_state=0).fit(frame)
    full = len(m.user_index_) * len(m.item_index_) * 4
    m.recommend_all(10, batch_size=64, as_frame=False)  # compile outside the trace
    tracemalloc.start()
    top = m.recommend_all(10, batch_size=64, as_frame=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    block = 64 * len(m.item_index_) * 4
    output = top.items.nbytes + top.scores.nbytes + top.item_codes.nbytes
    assert peak < 3 * block + 2 * output + 2 * 10**6, (peak, full)
    assert peak < full / 5


def test_saved_model_recommends_the_same(model):
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    loaded = load_model(buffer)
    pd.testing.assert_frame_equal(loaded.recommend_all(5), model.recommend_all(5))


def test_auto_batch_bounds():
    assert topn_kernels.auto_batch(50_000, 4) == 335
    assert topn_kernels.auto_batch(10, 4) == 4096
    assert topn_kernels.auto_batch(10**9, 8) == 1


# ---------------------------------------------------------------- MLPMF


@pytest.fixture(scope="module")
def mlp(ratings):
    return MLPMF(4, hidden=(8,), n_epochs=2, random_state=0).fit(ratings)


def test_mlp_recommend_equals_brute_force(mlp):
    top = mlp.recommend_all(10, as_frame=False, batch_size=7)
    for r, user in enumerate(mlp.user_index_.ids):
        expected = brute_force(mlp, user, 10)
        assert_same(mlp.recommend(user, 10), expected)
        np.testing.assert_array_equal(top.items[r], expected[0])
        np.testing.assert_array_equal(top.scores[r], expected[1])


def test_mlp_similarity_and_fold_in(mlp, ratings):
    assert len(mlp.similar_items(3, 5)) == 5
    assert len(mlp.similar_users(3, 5)) == 5
    # Fold-in works for MLPMF too (tests/test_fold_in_mlp.py checks it in depth):
    # recommend_for ranks as a brute force over predict_for with clipping off.
    mine = ratings[ratings["user"] == 1]
    p, b = mlp.fold_in(mine)
    assert p.dtype == np.float32 and p.shape == (4,) and np.isfinite(b)
    ids = mlp.item_index_.ids
    unclipped = raw_copy(mlp).predict_for(mine, ids)
    eligible = np.setdiff1d(np.arange(len(ids)), mlp.item_index_.encode(mine["item"]))
    order = eligible[np.lexsort((eligible, -unclipped[eligible]))][:10]
    assert_same(mlp.recommend_for(mine, 10), (ids[order], unclipped[order]))


# ---------------------------------------------------------------- similarity


def brute_similar(vectors, code, n, metric):
    v = vectors.astype(np.float64)
    scores = v @ v[code]
    if metric == "cosine":
        norms = np.linalg.norm(v, axis=1)
        scores = scores / (norms * norms[code])
    others = np.delete(np.arange(len(v)), code)
    return others[np.lexsort((others, -scores[others]))][:n], scores


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_similar_items_and_users(model, metric):
    for code in (0, 17, 101):
        expected, scores = brute_similar(model.item_factors_, code, 6, metric)
        got = model.similar_items(model.item_index_.ids[code], 6, metric=metric)
        np.testing.assert_array_equal(got["item"], model.item_index_.ids[expected])
        np.testing.assert_allclose(got["score"], scores[expected], rtol=1e-12, atol=1e-12)
    expected, scores = brute_similar(model.user_factors_, 5, 4, metric)
    got = model.similar_users(model.user_index_.ids[5], 4, metric=metric)
    np.testing.assert_array_equal(got["user"], model.user_index_.ids[expected])


def test_similar_items_with_a_zero_vector(model):
    m = copy.copy(model)
    m.item_factors_ = model.item_factors_.copy()
    m.item_factors_[3] = 0.0
    got = m.similar_items(3, 5)
    assert (got["score"] == 0.0).all()
    np.testing.assert_array_equal(got["item"], [0, 1, 2, 4, 5])  # ties: smallest codes
    others = m.similar_items(0, 200)
    assert others.loc[others["item"] == 3, "score"].item() == 0.0


# ---------------------------------------------------------------- fold-in


def test_solve_fold_in_is_the_exact_minimiser():
    rng = np.random.default_rng(0)
    Q = rng.standard_normal((12, 5))
    bi = rng.standard_normal(12)
    r = rng.uniform(1, 5, 12)
    mu, reg, reg_bias = 3.2, 0.3, 0.1
    p, b = solve_fold_in(Q, bi, r, mu, reg, reg_bias)
    e = r - mu - b - bi - Q @ p
    n = len(r)
    # Zero gradient of sum e^2 + reg n |p|^2 + reg_bias n b^2.
    np.testing.assert_allclose(-2 * Q.T @ e + 2 * reg * n * p, 0, atol=1e-10)
    assert abs(-2 * e.sum() + 2 * reg_bias * n * b) < 1e-10
    # Without regularisation and fewer ratings than unknowns: minimum-norm solution.
    p0, b0 = solve_fold_in(Q[:3], bi[:3], r[:3], mu, 0.0, 0.0)
    np.testing.assert_allclose(Q[:3] @ p0 + b0, r[:3] - mu - bi[:3], atol=1e-9)


@pytest.fixture(scope="module")
def converged():
    frame, _ = make_synthetic_ratings(300, 200, 15_000, rank=4, noise=0.5, random_state=3)
    return frame, BiasedMF(8, n_epochs=100, clip=False, random_state=0).fit(frame)


@pytest.mark.jit("fits 15,000 ratings for 100 epochs")
def test_fold_in_reproduces_trained_users(converged):
    """Folding a trained user back in from their own ratings gives nearly their predictions.

    The fold-in is the exact minimiser of the user's part of the training
    objective with the items fixed, so (1) its objective is never above that
    of the trained vector, and (2) it differs from the trained user only by
    how far SGD stopped from that minimiser. With a constant learning rate
    SGD ends in a noisy neighbourhood of it, widest for users with few
    ratings: on this data (100 epochs) we measured per-user correlations of
    at least 0.978 (median 0.9997) and a mean absolute difference of 0.020
    against a prediction spread (std over items) of 0.59. The bounds below
    leave about 2.5x room for platform and BLAS differences.
    """
    frame, m = converged
    P, Q, bu, bi, mu = m._dot_parts()
    before = {k: v.copy() for k, v in m._get_state().items()}
    items = m.item_index_.ids
    corrs, diffs = [], []
    for user, mine in frame.groupby("user"):
        p, b = m.fold_in(mine)
        assert p.dtype == np.float32 and p.shape == (8,)
        code = m.user_index_.encode([user])[0]
        c = m.item_index_.encode(mine["item"])
        r = mine["rating"].to_numpy(np.float64)

        def objective(vec, bias, c=c, r=r):
            e = r - mu - bias - bi[c] - Q[c].astype(np.float64) @ vec.astype(np.float64)
            n = len(r)
            return (
                e @ e
                + m.reg * n * float(vec.astype(np.float64) @ vec)
                + m.reg_bias_ * n * bias * bias
            )

        assert objective(p, b) <= objective(P[code], float(bu[code])) + 1e-6
        trained = m.predict(np.full(len(items), user), items)
        folded = m.predict_for(mine, items)
        corrs.append(np.corrcoef(trained, folded)[0, 1])
        diffs.append(np.abs(trained - folded).mean())
    assert min(corrs) > 0.95 and np.median(corrs) > 0.99
    assert np.mean(diffs) < 0.05
    for name, arr in m._get_state().items():
        np.testing.assert_array_equal(arr, before[name])  # the model is not modified


def test_predict_for_and_recommend_for(model, ratings):
    mine = pd.DataFrame({"item": [3, 10, 10, 44, 87], "rating": [5.0, 1.0, 2.0, 4.5, 3.0]})
    p, b = model.fold_in(mine)
    ids = model.item_index_.ids
    # predict_for follows predict: mu + b + bi + p.q, clipped, unknown items fall back.
    raw = model.global_mean_ + b + model.item_bias_.astype(np.float64) + model.item_factors_ @ p
    lo, hi = model.rating_range_
    np.testing.assert_allclose(model.predict_for(mine, ids), np.clip(raw, lo, hi), atol=1e-5)
    assert model.predict_for(mine, [99_999])[0] == pytest.approx(
        np.clip(model.global_mean_ + b, lo, hi), abs=1e-6
    )
    assert model.predict_for(mine, []).shape == (0,)  # as predict([], []) gives
    with pytest.raises(ValueError, match="ratings is empty"):
        model.predict_for(mine.iloc[:0], [])  # the ratings are still checked
    # recommend_for ranks exactly as a brute force over predict_for (clip off).
    unclipped = raw_copy(model).predict_for(mine, ids)
    eligible = np.setdiff1d(np.arange(len(ids)), model.item_index_.encode(mine["item"]))
    order = eligible[np.lexsort((eligible, -unclipped[eligible]))][:10]
    assert_same(model.recommend_for(mine, 10), (ids[order], unclipped[order]))
    assert len(model.recommend_for(mine, 200, exclude_seen=False)) == len(ids)
    # Tuples work too; a new user's ratings never change the model.
    assert_same(
        model.recommend_for((mine["item"].to_numpy(), mine["rating"].to_numpy()), 10),
        (ids[order], unclipped[order]),
    )


def test_fold_in_errors(model):
    with pytest.raises(ValueError, match="ratings is empty"):
        model.fold_in(pd.DataFrame({"item": [], "rating": []}))
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.fold_in(([1, 2], [4.0, np.nan]))
    with pytest.raises(ValueError, match="missing column"):
        model.fold_in(pd.DataFrame({"item": [1]}))
    with pytest.raises(ValueError, match="same length"):
        model.fold_in(([1, 2], [4.0]))
    with pytest.raises(ValueError, match="must be numbers"):
        model.fold_in(([1], ["good"]))
    with pytest.raises(TypeError, match="tuple"):
        model.fold_in({1: 4.0})
    with pytest.raises(UnknownIdError, match=r"1 rated item\(s\) are not known.*\[5000\]"):
        model.fold_in(([1, 5000], [4.0, 3.0]))
    p, _ = model.fold_in(([1, 5000], [4.0, 3.0]), ignore_unknown=True)
    np.testing.assert_array_equal(p, model.fold_in(([1], [4.0]))[0])
    with pytest.raises(ValueError, match="none of the rated items is known"):
        model.fold_in(([5000], [3.0]), ignore_unknown=True)
    with pytest.raises(ValueError, match="ignore_unknown must be True or False"):
        model.fold_in(([1], [3.0]), ignore_unknown="yes")
    # several users' rows would be pooled into one new user
    two = pd.DataFrame({"user": [7, 7, 8], "item": [1, 2, 3], "rating": [4.0, 3.0, 5.0]})
    with pytest.raises(ValueError, match=r"more than one user \(user column: 7, 8"):
        model.recommend_for(two, 3)
    one = two[two["user"] == 7]
    np.testing.assert_array_equal(model.fold_in(one)[0], model.fold_in(([1, 2], [4.0, 3.0]))[0])


# ---------------------------------------------------------------- titles


def test_with_titles_keeps_order_and_marks_missing(model):
    table = pd.DataFrame(
        {"item": np.arange(0, 120, 2), "title": [f"T{i}" for i in range(60)], "genres": "Drama"}
    )
    rec = model.recommend(3, 10, titles=table)
    assert list(rec.columns) == ["item", "score", "title", "genres"]
    plain = model.recommend(3, 10)
    pd.testing.assert_frame_equal(rec[["item", "score"]], plain)
    even = rec["item"] % 2 == 0
    assert (rec.loc[even, "title"] == "T" + (rec.loc[even, "item"] // 2).astype(str)).all()
    assert rec.loc[~even, "title"].isna().all()
    top = model.recommend_all(3, titles=table[["item", "title"]])
    assert list(top.columns) == ["user", "rank", "item", "score", "title"]
    sims = model.similar_items(4, 3, titles=table)
    assert "title" in sims.columns
    assert list(with_titles(model.recommend_all(2, as_frame=False), table, ["title"]).columns) == [
        "user",
        "rank",
        "item",
        "score",
        "title",
    ]
    with pytest.raises(ValueError, match="no column"):
        with_titles(plain, table, ["year"])
    with pytest.raises(ValueError, match=r"no column\(s\) \['year'\]"):  # one name, not letters
        with_titles(plain, table, "year")
    pd.testing.assert_frame_equal(with_titles(plain, table, "title"), rec.drop(columns="genres"))
    with pytest.raises(TypeError, match="'item' column"):
        with_titles(plain, table.rename(columns={"item": "movie"}))
    with pytest.raises(ValueError, match="titles needs as_frame=True"):
        model.recommend_all(3, titles=table, as_frame=False)
    text_ids = table.astype({"item": str})
    with pytest.raises(TypeError, match=r"are numbers .* table's are strings .*astype\(int\)"):
        model.recommend(3, 10, titles=text_ids)


@pytest.mark.jit("fits 100,000 real ratings")
def test_movielens_titles(shared_data):
    from latentfactors import load_movielens, load_movielens_items

    ratings = load_movielens("ml-latest-small", data_home=shared_data)
    movies = load_movielens_items("ml-latest-small", data_home=shared_data)
    m = BiasedMF(8, n_epochs=3, random_state=0).fit(ratings)
    rec = m.recommend(1, 5, titles=movies)
    assert rec["title"].notna().all() and "genres" in rec.columns
    toy = m.similar_items(1, 5, titles=movies)  # Toy Story (1995)
    assert toy["title"].notna().all()


# ---------------------------------------------------------------- baseline


def test_popularity_recommendations(ratings):
    top = popularity_recommendations(ratings, users=[0, 1, 12345], n=5)
    counts = ratings["item"].value_counts()
    for r, user in enumerate([0, 1, 12345]):
        seen = set(ratings.loc[ratings["user"] == user, "item"])
        ranked = sorted((i for i in counts.index if i not in seen), key=lambda i: (-counts[i], i))
        np.testing.assert_array_equal(top.items[r], ranked[:5])
        np.testing.assert_array_equal(top.scores[r], counts[ranked[:5]].to_numpy())
    everyone = popularity_recommendations(ratings, n=3, exclude_seen=False)
    assert (everyone.items == everyone.items[0]).all()
    assert isinstance(everyone, TopN) and len(everyone) == ratings["user"].nunique()
    with pytest.raises(ValueError, match="train is empty"):
        popularity_recommendations(ratings.iloc[:0])


# ---------------------------------------------------------------- input errors


def test_unknown_and_invalid_ids(model):
    with pytest.raises(UnknownIdError, match=r"user 999 is not known.*recommend_for"):
        model.recommend(999)
    with pytest.raises(TypeError, match="user must be a single id"):
        model.recommend([1, 2])
    with pytest.raises(UnknownIdError, match=r"2 of the users are not known.*\[777, 888\]"):
        model.recommend_all(users=[1, 777, 888])
    with pytest.raises(UnknownIdError, match=r"candidate items are not known.*\[-4\]"):
        model.recommend(1, items=[1, -4])
    with pytest.raises(ValueError, match="candidate items is empty"):
        model.recommend(1, items=[])
    with pytest.raises(ValueError, match="users must be a 1-D list"):
        model.recommend_all(users=[[1, 2]])
    with pytest.raises(ValueError, match="NaN"):
        model.recommend_all(users=[1.0, np.nan])
    with pytest.raises(UnknownIdError, match="item 5000 is not known"):
        model.similar_items(5000)
    with pytest.raises(UnknownIdError, match="user -1 is not known"):
        model.similar_users(-1)


def test_an_unknown_id_error_names_the_kind_and_the_ids(model):
    """One error type for every unknown id: a ValueError and a KeyError, with the facts."""
    with pytest.raises(UnknownIdError) as info:
        model.recommend_all(users=[1, 777, 888])
    assert (info.value.kind, info.value.ids) == ("user", [777, 888])
    assert isinstance(info.value, ValueError) and isinstance(info.value, KeyError)
    assert str(info.value).startswith("2 of the users")  # not quoted, as KeyError would
    with pytest.raises(KeyError, match="item 5000 is not known") as info:
        model.similar_items(5000)
    assert (info.value.kind, info.value.ids) == ("item", [5000])
    with pytest.raises(UnknownIdError, match="rated item") as info:
        model.fold_in(([1, 5000, 6000], [4.0, 3.0, 2.0]))
    assert (info.value.kind, info.value.ids) == ("item", [5000, 6000])
    assert UnknownIdError is latentfactors.UnknownIdError is latentfactors.models.UnknownIdError


@pytest.mark.parametrize("n", [0, -3, 2.5, True, "10", None])
def test_invalid_n(model, n):
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        model.recommend(1, n)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        model.recommend_all(n)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        model.similar_items(1, n)


def test_invalid_options(model):
    with pytest.raises(ValueError, match="exclude_seen must be True or False"):
        model.recommend(1, exclude_seen="no")
    with pytest.raises(ValueError, match="batch_size must be None or an integer >= 1"):
        model.recommend_all(batch_size=0)
    with pytest.raises(ValueError, match="as_frame must be True or False"):
        model.recommend_all(as_frame=None)
    with pytest.raises(ValueError, match="metric must be one of"):
        model.similar_items(1, metric="euclidean")
    with pytest.raises(ValueError, match="popularity_weight must be a finite number"):
        model.recommend(1, popularity_weight=float("nan"))
    with pytest.raises(ValueError, match=r"within \+-1e\+06"):
        model.recommend(1, popularity_weight=1e308)
    with pytest.raises(TypeError, match="exclude must be a DataFrame"):
        model.recommend_all(exclude="train")
    with pytest.raises(ValueError, match="exclude is missing column"):
        model.recommend_all(exclude=pd.DataFrame({"user": [1]}))


def test_not_fitted():
    for call in (
        lambda m: m.recommend(1),
        lambda m: m.recommend_all(),
        lambda m: m.similar_items(1),
        lambda m: m.fold_in(([1], [4.0])),
    ):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call(BiasedMF())


def test_fold_in_beyond_float32_is_a_clear_error(model, ratings):
    item = ratings["item"].iloc[0]
    with pytest.raises(FloatingPointError, match="float32"):
        model.fold_in(([item], [1e300]))
