"""Ranking metrics: hand-computed values, a per-user naive twin, input forms, evaluate_ranking."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from latentfactors import BiasedMF, user_holdout_split
from latentfactors.metrics import (
    catalogue_coverage,
    evaluate_ranking,
    hit_rate,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)
from latentfactors.models.recommend import TopN

# User "a" has two relevant items (1, 2), "b" one (4), "c" none (excluded from the
# means), "d" one but no list (a list without hits). k = 3.
TEST = pd.DataFrame(
    {
        "user": ["a", "a", "a", "b", "c", "d"],
        "item": [1, 2, 3, 4, 5, 6],
        "rating": [5.0, 4.0, 2.0, 4.5, 3.0, 5.0],
    }
)
RECS = (np.array(["a", "b", "c"]), np.array([[2, 9, 1], [7, 8, 4], [1, 2, 3]]))
IDCG_2 = 1 + 1 / math.log2(3)
EXPECTED = {
    "precision": (2 / 3 + 1 / 3 + 0) / 3,
    "recall": (1 + 1 + 0) / 3,
    "ndcg": ((1 + 1 / math.log2(4)) / IDCG_2 + 1 / math.log2(4) + 0) / 3,
    "map": ((1 + 2 / 3) / 2 + (1 / 3) / 1 + 0) / 3,
    "hit_rate": 2 / 3,
}


def test_hand_computed_values():
    out = ranking_metrics(RECS, TEST, 3, catalogue=10)
    for name, value in EXPECTED.items():
        assert out[name] == pytest.approx(value, rel=1e-12), name
    assert out["coverage"] == pytest.approx(0.7)  # items 1, 2, 3, 4, 7, 8, 9
    assert out["n_users"] == 3 and out["k"] == 3 and out["threshold"] == 4.0
    assert precision_at_k(RECS, TEST, 3) == pytest.approx(EXPECTED["precision"])
    assert recall_at_k(RECS, TEST, 3) == pytest.approx(EXPECTED["recall"])
    assert ndcg_at_k(RECS, TEST, 3) == pytest.approx(EXPECTED["ndcg"])
    assert map_at_k(RECS, TEST, 3) == pytest.approx(EXPECTED["map"])
    assert hit_rate(RECS, TEST, 3) == pytest.approx(EXPECTED["hit_rate"])
    assert catalogue_coverage(RECS, np.arange(10), 3) == pytest.approx(0.7)
    assert "coverage" not in ranking_metrics(RECS, TEST, 3)


def test_threshold_and_k_change_the_result():
    low = ranking_metrics(RECS, TEST, 3, threshold=2.0)
    assert low["n_users"] == 4  # "c" now has a relevant item, and "a" three
    assert low["precision"] != EXPECTED["precision"]
    top1 = ranking_metrics(RECS, TEST, 1)
    assert top1["precision"] == pytest.approx(1 / 3)  # only "a" hits at rank 1


def naive_metrics(lists, test, k, threshold):
    """Per-user loops over Python sets: the obvious definitions."""
    relevant = {}
    for u, i, r in test[["user", "item", "rating"]].itertuples(index=False):
        if r >= threshold:
            relevant.setdefault(u, set()).add(i)
    sums = dict.fromkeys(("precision", "recall", "ndcg", "map", "hit_rate"), 0.0)
    for u, rel in relevant.items():
        recs = lists.get(u, [])[:k]
        hits = [item in rel for item in recs]
        n_hits = sum(hits)
        sums["precision"] += n_hits / k
        sums["recall"] += n_hits / len(rel)
        dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(hits) if h)
        ideal = sum(1 / math.log2(r + 2) for r in range(min(k, len(rel))))
        sums["ndcg"] += dcg / ideal
        ap = sum(sum(hits[: r + 1]) / (r + 1) for r, h in enumerate(hits) if h)
        sums["map"] += ap / min(k, len(rel))
        sums["hit_rate"] += n_hits > 0
    return {name: value / len(relevant) for name, value in sums.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 5, 8])
def test_matches_the_naive_twin_in_every_input_form(seed, k):
    rng = np.random.default_rng(seed)
    n_users, n_items = 60, 40
    test = pd.DataFrame(
        {
            "user": rng.integers(0, n_users, 500),
            "item": rng.integers(0, n_items, 500),
            "rating": rng.integers(1, 6, 500).astype(np.float32),
        }
    ).drop_duplicates(["user", "item"])
    users = rng.permutation(n_users)[:50]  # some test users have no list
    items = np.stack([rng.permutation(n_items)[:8] for _ in users])
    codes = items.astype(np.int32)
    codes[rng.random(codes.shape) < 0.1] = -1  # some empty slots
    codes = np.sort(codes, axis=1)[:, ::-1]  # empty slots last, as recommend_all pads
    items = np.where(codes >= 0, codes, -1)
    lists = {u: [i for i in row if i >= 0] for u, row in zip(users, items)}
    expected = naive_metrics(lists, test, k, 4.0)
    top = TopN(users=users, items=items, scores=np.where(codes >= 0, 1.0, np.nan), item_codes=codes)
    frame = top.to_frame().sample(frac=1.0, random_state=seed)  # order comes from rank
    for recs in (top, frame):
        out = ranking_metrics(recs, test, k)
        for name, value in expected.items():
            assert out[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name
    full = np.array([rng.permutation(n_items)[:8] for _ in users])
    lists = {u: list(row) for u, row in zip(users, full)}
    out = ranking_metrics((users, full), test, k)
    for name, value in naive_metrics(lists, test, k, 4.0).items():
        assert out[name] == pytest.approx(value, rel=1e-12), name


def test_string_ids_and_mixed_dtypes():
    test = TEST.assign(item=TEST["item"].map(lambda i: f"m{i}"))
    recs = (RECS[0], np.vectorize(lambda i: f"m{i}")(RECS[1]))
    out = ranking_metrics(recs, test, 3)
    assert out["ndcg"] == pytest.approx(EXPECTED["ndcg"])
    # Recommended ids of the other type could never match: an error, as elsewhere.
    with pytest.raises(TypeError, match="recommended items are strings"):
        ranking_metrics(recs, TEST, 3)


def test_input_errors():
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        ranking_metrics(RECS, TEST, 0)
    with pytest.raises(ValueError, match="fewer than k=5"):
        ranking_metrics(RECS, TEST, 5)
    with pytest.raises(ValueError, match="more than one recommendation list"):
        ranking_metrics((np.array(["a", "a"]), RECS[1][:2]), TEST, 3)
    with pytest.raises(ValueError, match="no test rating is >= threshold=6"):
        ranking_metrics(RECS, TEST, 3, threshold=6)
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        ranking_metrics(RECS, TEST, 3, threshold=float("nan"))
    with pytest.raises(ValueError, match="test is missing column"):
        ranking_metrics(RECS, TEST.drop(columns="rating"), 3)
    with pytest.raises(TypeError, match="test must be a DataFrame"):
        ranking_metrics(RECS, TEST.to_numpy(), 3)
    with pytest.raises(ValueError, match="recommendations are missing column"):
        ranking_metrics(pd.DataFrame({"user": ["a"]}), TEST, 3)
    with pytest.raises(TypeError, match="recommendations must be a TopN"):
        ranking_metrics([1, 2, 3], TEST, 3)
    with pytest.raises(ValueError, match="one row per user"):
        ranking_metrics((RECS[0], RECS[1][0]), TEST, 3)
    with pytest.raises(ValueError, match="catalogue size must be >= 1"):
        ranking_metrics(RECS, TEST, 3, catalogue=0)
    with pytest.raises(ValueError, match="catalogue must be given"):
        catalogue_coverage(RECS, None, 3)


# ---------------------------------------------------------------- evaluate_ranking


def planted(seed=0, n_users=200, n_items=150, n=8000):
    """Users like items of their own group (rated 5) and dislike the rest (rated 1)."""
    rng = np.random.default_rng(seed)
    keys = rng.choice(n_users * n_items, size=n, replace=False)
    users, items = keys // n_items, keys % n_items
    ratings = np.where(users % 3 == items % 3, 5.0, 1.0).astype(np.float32)
    return pd.DataFrame({"user": users, "item": items, "rating": ratings})


def test_evaluate_ranking_model_and_popularity():
    train, test = user_holdout_split(planted(), 0.25, random_state=0)
    model = BiasedMF(8, n_epochs=30, random_state=0).fit(train)
    mine = evaluate_ranking(model, train, test, k=5)
    pop = evaluate_ranking("popularity", train, test, k=5)
    assert mine["n_users"] == pop["n_users"] > 150
    assert mine["precision"] > 2 * pop["precision"]  # the planted groups are learnt
    assert 0 < pop["coverage"] < mine["coverage"] <= 1
    # evaluate_ranking is ranking_metrics over recommend_all (train excluded).
    users = test.loc[test["rating"] >= 4, "user"].unique()
    recs = model.recommend_all(5, users=users, as_frame=False)
    direct = ranking_metrics(recs, test, 5, catalogue=len(model.item_index_))
    for name in ("precision", "recall", "ndcg", "map", "hit_rate", "coverage"):
        assert mine[name] == pytest.approx(direct[name], rel=1e-12)
    assert mine["n_skipped_users"] == 0
    boosted = evaluate_ranking(model, train, test, k=5, popularity_weight=5.0)
    assert boosted["precision"] != mine["precision"]


def test_evaluate_ranking_skips_unknown_users():
    train, test = user_holdout_split(planted(1), 0.25, random_state=0)
    model = BiasedMF(4, n_epochs=2, random_state=0).fit(train)
    stranger = pd.DataFrame({"user": [10_000], "item": [3], "rating": [5.0]})
    out = evaluate_ranking(model, train, pd.concat([test, stranger]), k=5)
    assert out["n_skipped_users"] == 1
    assert out["n_users"] == evaluate_ranking(model, train, test, k=5)["n_users"]
    with pytest.raises(ValueError, match="model must be a fitted model or 'popularity'"):
        evaluate_ranking("random", train, test)
    n_items = len(model.item_index_)
    assert len(evaluate_ranking(model, train, test, k=n_items)) > 0  # as many as there are
    with pytest.raises(ValueError, match=f"k={n_items + 1} is more than the {n_items} items the"):
        evaluate_ranking(model, train, test, k=n_items + 1)
    in_train = train["item"].nunique()
    with pytest.raises(ValueError, match=f"more than the {in_train} items train has"):
        evaluate_ranking("popularity", train, test, k=in_train + 1)
    with pytest.raises(ValueError, match="no test user with relevant items is known"):
        evaluate_ranking(model, train, stranger)
    with pytest.raises(TypeError, match="train must be a DataFrame"):
        evaluate_ranking(model, train.to_numpy(), test)


def test_evaluate_ranking_blames_a_threshold_no_rating_reaches():
    frame = planted(2, n=2000)
    frame["rating"] = np.where(frame["rating"] == 5.0, 4.5, 0.5).astype(np.float32)  # 0.5-5 stars
    train, test = user_holdout_split(frame, 0.25, random_state=0)
    model = BiasedMF(4, n_epochs=2, random_state=0).fit(train)
    message = (
        r"no test rating is >= threshold=10: nothing is relevant \(the test ratings range "
        r"from 0\.5 to 4\.5\); lower the threshold"
    )
    for recommender in (model, "popularity"):
        with pytest.raises(ValueError, match=message) as info:
            evaluate_ranking(recommender, train, test, threshold=10)
        assert "user" not in str(info.value)
    with pytest.raises(ValueError, match=message):
        ranking_metrics(model.recommend_all(5, as_frame=False), test, 5, threshold=10)
    with pytest.raises(ValueError, match=r"threshold=4: .*\(the test holds no ratings\)"):
        evaluate_ranking(model, train, test.iloc[:0])


@pytest.mark.slow
def test_movielens_model_beats_popularity(shared_data):
    """ml-latest-small, per-user 20% holdout: the configuration benchmarks/recommend.py reports.

    A model trained only to predict ratings ranks rarely rated items with
    high predictions first and loses to popularity; with the popularity prior
    (chosen on a validation split of train, never on test) it wins.
    """
    from latentfactors import load_movielens

    ratings = load_movielens("ml-latest-small", data_home=shared_data)
    train, test = user_holdout_split(ratings, 0.2, random_state=0)
    model = BiasedMF(center=False, random_state=0).fit(train)
    pop = evaluate_ranking("popularity", train, test)
    mine = evaluate_ranking(model, train, test, popularity_weight=1.0)
    assert mine["precision"] > 1.10 * pop["precision"]  # measured +21%
    assert mine["ndcg"] > 1.08 * pop["ndcg"]  # measured +18%


def test_a_list_that_repeats_an_item_is_refused():
    """Each copy would count as a hit: recall, NDCG and MAP could pass 1."""
    test = pd.DataFrame({"user": [1, 1, 2], "item": [10, 11, 10], "rating": [5.0, 4.0, 5.0]})
    repeated = (np.array([1, 2]), np.array([[11, 12, 13], [10, 14, 10]]))
    with pytest.raises(ValueError, match="user 2 holds item 10 more than once"):
        ranking_metrics(repeated, test, 3)
    frame = pd.DataFrame({"user": [1, 1, 1], "item": [10, 10, 11]})
    with pytest.raises(ValueError, match="user 1 holds item 10 more than once"):
        ranking_metrics(frame, test, 3)
    fine = ranking_metrics((np.array([1, 2]), np.array([[10, 11, 12], [10, 13, 14]])), test, 3)
    assert fine["recall"] == 1.0 and fine["map"] == 1.0


def test_tuple_lists_with_empty_slots():
    """NaN or None marks an empty slot in the tuple form, as TopN's valid mask does.

    -1 and "" are TopN's fillers for integer and string ids, but they could be
    real ids: repeated, they get an error that says to pass the TopN itself.
    """
    test = pd.DataFrame({"user": [1, 1, 2], "item": [10, 11, 12], "rating": [5.0, 4.0, 5.0]})
    topn = TopN(
        users=np.array([1, 2]),
        items=np.array([[10, 13, 11], [12, -1, -1]]),
        scores=np.zeros((2, 3)),
        item_codes=np.array([[0, 3, 1], [2, -1, -1]], dtype=np.int32),
    )
    expected = ranking_metrics(topn, test, 3, catalogue=20)
    as_float = (topn.users, np.array([[10, 13, 11], [12, np.nan, np.nan]]))
    assert ranking_metrics(as_float, test, 3, catalogue=20) == expected
    as_object = (topn.users, np.array([[10, 13, 11], [12, None, None]], dtype=object))
    assert ranking_metrics(as_object, test, 3, catalogue=20) == expected
    # counting the empty slots as items would add one to coverage's 4 distinct items
    assert expected["coverage"] == 4 / 20
    with pytest.raises(ValueError, match=r"holds item -1 more than once.*pass the TopN"):
        ranking_metrics((topn.users, topn.items), test, 3)
    strings = (np.array(["u"]), np.array([["x", "", ""]]))
    test_s = pd.DataFrame({"user": ["u"], "item": ["x"], "rating": [5.0]})
    with pytest.raises(ValueError, match=r"holds item '' more than once.*pass the TopN"):
        ranking_metrics(strings, test_s, 3)


def test_ids_of_the_other_type_are_an_error_not_zero_metrics():
    recs = (np.array([1, 2]), np.array([[10, 11, 12], [20, 21, 22]]))
    test = pd.DataFrame({"user": [1, 1, 2], "item": [11, 13, 20], "rating": [5.0, 4.0, 4.0]})
    assert ranking_metrics(recs, test, 3)["hit_rate"] == 1.0
    with pytest.raises(TypeError, match=r"lists' users are numbers .* test users are strings"):
        ranking_metrics(recs, test.astype({"user": str}), 3)
    with pytest.raises(TypeError, match=r"recommended items are numbers .* test items are strings"):
        ranking_metrics(recs, test.astype({"item": str}), 3)
    train = test.copy()
    with pytest.raises(TypeError, match=r"test users are strings .* training users are numbers"):
        evaluate_ranking("popularity", train, test.astype({"user": str}), k=1)
    with pytest.raises(TypeError, match=r"test items are strings .* training items are numbers"):
        evaluate_ranking("popularity", train, test.astype({"item": str}), k=1)


def test_coverage_cannot_pass_one():
    recs = (np.array([1, 2]), np.array([[10, 11, 12], [20, 21, 22]]))
    assert catalogue_coverage(recs, 12, k=3) == 0.5
    assert catalogue_coverage(recs, np.arange(10, 23), k=3) == 6 / 13
    with pytest.raises(ValueError, match="6 distinct items, more than the catalogue size 5"):
        catalogue_coverage(recs, 5, k=3)
    with pytest.raises(ValueError, match="item 20 is recommended but not in the catalogue"):
        catalogue_coverage(recs, [10, 11, 12, 13], k=3)
    with pytest.raises(TypeError, match="recommended items are numbers"):
        catalogue_coverage(recs, ["10", "11"], k=3)
    test = pd.DataFrame({"user": [1], "item": [10], "rating": [5.0]})
    with pytest.raises(ValueError, match="more than the catalogue size 5"):
        ranking_metrics(recs, test, 3, catalogue=5)
