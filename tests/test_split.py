"""Tests for latentfactors.data.split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from latentfactors.data.ratings import load_ratings
from latentfactors.data.split import kfold, random_split, temporal_split, user_holdout_split
from latentfactors.data.synthetic import make_synthetic_ratings

COLUMNS = ["user", "item", "rating", "timestamp"]


@pytest.fixture(scope="module")
def real(shared_data):
    return load_ratings(shared_data / "ml-latest-small-2016" / "ratings.csv")


@pytest.fixture(scope="module")
def synth():
    df, _ = make_synthetic_ratings(300, 200, 5000, timestamps=True, random_state=0)
    return df


def small_frame(counts, *, with_ts=True):
    """Users 0..len(counts)-1 with counts[u] ratings each, timestamps increasing by row."""
    users = np.repeat(np.arange(len(counts)), counts)
    n = len(users)
    df = pd.DataFrame(
        {
            "user": users.astype(np.int64),
            "item": np.arange(n, dtype=np.int64),
            "rating": np.linspace(1, 5, n).astype(np.float32),
        }
    )
    if with_ts:
        df["timestamp"] = (1_000_000 + 10 * np.arange(n)).astype(np.int64)
    return df


def assert_same_rows(parts, df):
    """The parts are disjoint and together are exactly the rows of df (a multiset)."""
    joined = pd.concat(parts, ignore_index=True)
    cols = list(df.columns)
    a = joined.sort_values(cols).reset_index(drop=True)
    b = df.sort_values(cols).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def assert_fresh(part, df):
    assert isinstance(part.index, pd.RangeIndex) and part.index.start == 0
    assert list(part.columns) == list(df.columns)
    assert part.dtypes.to_dict() == df.dtypes.to_dict()


def pair_keys(df):
    return set(zip(df["user"].tolist(), df["item"].tolist(), strict=True))


# --------------------------------------------------------------------------- random_split


def test_random_split_notebook_sizes_on_real_data(real):
    assert len(real) == 100_004
    assert int(100_004 * 0.8) == 80_003
    assert int(100_004 * (0.8 + 0.12)) == 92_003
    train, valid, test = random_split(real, random_state=42)
    assert (len(train), len(valid), len(test)) == (80_003, 12_000, 8_001)
    for part in (train, valid, test):
        assert_fresh(part, real)
    assert_same_rows([train, valid, test], real)
    # pairs are unique in the source, so the parts share no (user, item) pair
    assert not pair_keys(train) & pair_keys(test)
    assert not pair_keys(valid) & pair_keys(test)


def test_random_split_is_one_permutation_cut(real):
    parts = random_split(real, random_state=7)
    perm = np.random.default_rng(7).permutation(len(real))
    bounds = [0, 80_003, 92_003, 100_004]
    for part, a, b in zip(parts, bounds[:-1], bounds[1:], strict=True):
        expected = real.iloc[perm[a:b]].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, expected)


def test_random_split_synthetic_sizes(synth):
    parts = random_split(synth, random_state=0)
    assert [len(p) for p in parts] == [4000, 600, 400]
    assert_same_rows(parts, synth)


def test_random_split_deterministic_and_seed_dependent(synth):
    a = random_split(synth, random_state=3)
    b = random_split(synth, random_state=3)
    c = random_split(synth, random_state=4)
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x, y)
    assert not a[0].equals(c[0])
    d = random_split(synth, random_state=np.random.default_rng(3))
    pd.testing.assert_frame_equal(a[0], d[0])


def test_random_split_remainder_and_single_fraction(synth):
    two = random_split(synth, 0.8, random_state=0)
    assert [len(p) for p in two] == [4000, 1000]
    three = random_split(synth, (0.5, 0.3), random_state=0)
    assert [len(p) for p in three] == [2500, 1500, 1000]
    halves = random_split(synth, [0.5, 0.5], random_state=0)
    assert [len(p) for p in halves] == [2500, 2500]
    whole = random_split(synth, (1.0,), random_state=0)
    assert len(whole) == 1 and len(whole[0]) == len(synth)
    # floating-point sums within 1e-9 of 1 have no remainder part
    tenths = random_split(synth, [0.1] * 10, random_state=0)
    assert len(tenths) == 10 and sum(len(p) for p in tenths) == len(synth)
    assert_same_rows(three, synth)


def test_random_split_keeps_other_columns():
    df = pd.DataFrame({"user": ["a", "b", "c", "d"], "item": [1, 2, 3, 4], "rating": [1.0] * 4})
    x, y = random_split(df, (0.5, 0.5), random_state=0)
    assert x.dtypes.to_dict() == df.dtypes.to_dict()
    assert_same_rows([x, y], df)


@pytest.mark.parametrize(
    ("fractions", "match"),
    [
        ((0.8, -0.1), "positive"),
        ((0.8, 0.0), "positive"),
        ((0.7, 0.4), "sum to at most 1"),
        ((), "empty"),
        ((0.5, float("nan")), "finite"),
        (("a",), "finite"),
    ],
)
def test_random_split_bad_fractions(synth, fractions, match):
    with pytest.raises(ValueError, match=match):
        random_split(synth, fractions)


def test_random_split_bad_frames():
    with pytest.raises(ValueError, match="empty"):
        random_split(small_frame([]))
    with pytest.raises(ValueError, match="would be empty"):
        random_split(small_frame([2]), (0.8, 0.12, 0.08))
    with pytest.raises(TypeError, match="DataFrame"):
        random_split(np.zeros((10, 3)))
    with pytest.raises(TypeError, match="fractions"):
        random_split(small_frame([10]), fractions=None)


# --------------------------------------------------------------------------- user holdout


def test_user_holdout_fraction(real):
    train, test = user_holdout_split(real, 0.2, random_state=0)
    for part in (train, test):
        assert_fresh(part, real)
    assert_same_rows([train, test], real)
    counts = real.groupby("user").size()
    held = test.groupby("user").size().reindex(counts.index, fill_value=0)
    expected = np.minimum(np.maximum(1, np.floor(0.2 * counts)), counts - 1)
    np.testing.assert_array_equal(held.to_numpy(), expected.to_numpy())
    assert set(train["user"]) == set(real["user"])
    assert set(test["user"]) == set(counts.index[counts >= 2])


def test_user_holdout_min_train_and_n_test():
    df = small_frame([1, 2, 3, 5, 12])
    train, test = user_holdout_split(df, n_test=2, min_train=2, random_state=0)
    held = test.groupby("user").size().to_dict()
    # users 0 and 1 have < min_train + 1 ratings; user 2 keeps 2 so holds out 1
    assert held == {2: 1, 3: 2, 4: 2}
    kept = train.groupby("user").size().to_dict()
    assert kept == {0: 1, 1: 2, 2: 2, 3: 3, 4: 10}
    assert_same_rows([train, test], df)

    train, test = user_holdout_split(df, 0.5, min_train=1, random_state=0)
    assert test.groupby("user").size().to_dict() == {1: 1, 2: 1, 3: 2, 4: 6}

    # min_train=0: a user may go entirely to test
    train, test = user_holdout_split(df, n_test=1, min_train=0, random_state=0)
    assert 0 not in set(train["user"]) and len(test) == 5


def test_user_holdout_every_eligible_user_in_both(synth):
    train, test = user_holdout_split(synth, n_test=1, random_state=1)
    counts = synth.groupby("user").size()
    eligible = set(counts.index[counts >= 2])
    assert eligible <= set(train["user"]) and eligible == set(test["user"])
    assert len(test) == len(eligible)


def test_user_holdout_by_time_holds_out_latest(real):
    train, test = user_holdout_split(real, n_test=3, by_time=True)
    last_train = train.groupby("user")["timestamp"].max()
    first_test = test.groupby("user")["timestamp"].min()
    assert (first_test >= last_train.reindex(first_test.index)).all()
    assert (test.groupby("user").size() == 3).all()
    # by_time does not depend on the seed
    again = user_holdout_split(real, n_test=3, by_time=True, random_state=99)
    pd.testing.assert_frame_equal(test, again[1])


def test_user_holdout_by_time_ties_go_to_later_rows():
    df = small_frame([4])
    df["timestamp"] = np.int64(5)
    train, test = user_holdout_split(df, n_test=1, by_time=True)
    assert test["item"].tolist() == [3]


def test_user_holdout_deterministic_and_seed_dependent(synth):
    a = user_holdout_split(synth, random_state=5)
    b = user_holdout_split(synth, random_state=5)
    c = user_holdout_split(synth, random_state=6)
    pd.testing.assert_frame_equal(a[1], b[1])
    assert not a[1].equals(c[1])


def test_user_holdout_choice_is_uniform():
    df = small_frame([6])
    hits = np.zeros(6)
    for seed in range(600):
        _, test = user_holdout_split(df, n_test=2, random_state=seed)
        hits[test["item"].to_numpy()] += 1
    # each row is held out with probability 1/3: 200 expected, sd about 11.5
    assert np.all(np.abs(hits - 200) < 60), hits


def test_user_holdout_any_id_type():
    df = small_frame([3, 4, 5])
    df["user"] = df["user"].map({0: "ann", 1: "bob", 2: "cy"})
    train, test = user_holdout_split(df, n_test=1, random_state=0)
    assert sorted(test["user"]) == ["ann", "bob", "cy"]
    df["user"] = df["user"].map({"ann": -(10**12), "bob": 10**15, "cy": 7})
    train, test = user_holdout_split(df, n_test=1, random_state=0)
    assert sorted(test["user"]) == [-(10**12), 7, 10**15]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"test_fraction": "a"}, "test_fraction"),
        ({"n_test": 0}, "n_test"),
        ({"n_test": 1.5}, "n_test"),
        ({"min_train": -1}, "min_train"),
        ({"min_train": 100}, "would be empty"),
    ],
)
def test_user_holdout_bad_arguments(synth, kwargs, match):
    with pytest.raises(ValueError, match=match):
        user_holdout_split(synth, **kwargs)


def test_user_holdout_bad_frames():
    with pytest.raises(ValueError, match="by_time=True needs a 'timestamp' column"):
        user_holdout_split(small_frame([3, 3], with_ts=False), by_time=True)
    with pytest.raises(ValueError, match="'user' column"):
        user_holdout_split(small_frame([3]).drop(columns="user"))
    with pytest.raises(ValueError, match="empty"):
        user_holdout_split(small_frame([]))
    with pytest.raises(ValueError, match="would be empty"):
        user_holdout_split(small_frame([1, 1, 1]))


# --------------------------------------------------------------------------- temporal


def test_temporal_split_quantile(real):
    train, test = temporal_split(real, 0.2)
    for part in (train, test):
        assert_fresh(part, real)
    assert train["timestamp"].max() <= test["timestamp"].min()
    assert_same_rows([train, test], real)
    assert 0.19 <= len(test) / len(real) <= 0.2


def test_temporal_split_explicit_cut(real):
    cut = pd.Timestamp("2010-01-01")
    train, test = temporal_split(real, cut=cut)
    seconds = int(cut.timestamp())
    assert train["timestamp"].max() <= seconds < test["timestamp"].min()
    for same in (
        seconds,
        float(seconds),
        "2010-01-01",
        cut.to_pydatetime(),
        np.datetime64("2010-01-01"),
        pd.Timestamp("2010-01-01 01:00", tz="Europe/Paris"),
    ):
        pd.testing.assert_frame_equal(temporal_split(real, cut=same)[1], test)


def test_temporal_split_ties_go_to_train():
    df = small_frame([10])
    df["timestamp"] = np.array([1, 1, 2, 2, 2, 2, 3, 3, 4, 4], dtype=np.int64)
    train, test = temporal_split(df, 0.5)
    assert train["timestamp"].tolist() == [1, 1, 2, 2, 2, 2]
    assert test["timestamp"].tolist() == [3, 3, 4, 4]
    train, test = temporal_split(df, cut=2)
    assert len(train) == 6


def test_temporal_split_errors(synth):
    with pytest.raises(ValueError, match="'timestamp' column"):
        temporal_split(synth.drop(columns="timestamp"))
    with pytest.raises(ValueError, match="train set would be empty"):
        temporal_split(synth, cut=0)
    with pytest.raises(ValueError, match="test set would be empty"):
        temporal_split(synth, cut=pd.Timestamp("2100-01-01"))
    same = small_frame([5])
    same["timestamp"] = np.int64(7)
    with pytest.raises(ValueError, match="test set would be empty"):
        temporal_split(same)
    with pytest.raises(ValueError, match="test set would be empty"):
        temporal_split(small_frame([3]), 0.2)
    for bad in (0, 1, -0.5, "x"):
        with pytest.raises(ValueError, match="test_fraction"):
            temporal_split(synth, bad)
    with pytest.raises(ValueError, match="not a date"):
        temporal_split(synth, cut="not a date")
    with pytest.raises(ValueError, match="finite"):
        temporal_split(synth, cut=float("inf"))
    with pytest.raises(TypeError, match="cut must be"):
        temporal_split(synth, cut=[1, 2])
    with pytest.raises(ValueError, match="empty"):
        temporal_split(small_frame([]))


# --------------------------------------------------------------------------- kfold


@pytest.mark.parametrize("k", [2, 3, 7])
def test_kfold_partitions(synth, k):
    folds = list(kfold(synth, k, random_state=0))
    assert len(folds) == k
    sizes = [len(test) for _, test in folds]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == len(synth)
    assert_same_rows([test for _, test in folds], synth)
    for train, test in folds:
        assert_fresh(train, synth)
        assert_fresh(test, synth)
        assert_same_rows([train, test], synth)
        assert not pair_keys(train) & pair_keys(test)


def test_kfold_k_equals_n_and_determinism():
    df = small_frame([5])
    folds = list(kfold(df, 5, random_state=0))
    assert all(len(test) == 1 for _, test in folds)
    a = [test for _, test in kfold(df, 5, random_state=1)]
    b = [test for _, test in kfold(df, 5, random_state=1)]
    c = [test for _, test in kfold(df, 5, random_state=2)]
    assert [t["item"].item() for t in a] == [t["item"].item() for t in b]
    assert [t["item"].item() for t in a] != [t["item"].item() for t in c]


@pytest.mark.parametrize(
    ("k", "match"),
    [(1, ">= 2"), (0, ">= 2"), (2.5, "integer"), (True, "integer"), (6, "at least 6")],
)
def test_kfold_bad_k_raises_at_call(k, match):
    with pytest.raises(ValueError, match=match):
        kfold(small_frame([5]), k)  # no next(): checked eagerly


def test_kfold_empty():
    with pytest.raises(ValueError, match="empty"):
        kfold(small_frame([]), 2)


def test_missing_users_or_timestamps_are_a_clear_error():
    df = pd.DataFrame(
        {
            "user": [1.0, np.nan, 2.0, 2.0],
            "item": [1, 2, 3, 4],
            "rating": [4.0, 3.0, 2.0, 5.0],
            "timestamp": [10.0, 20.0, np.nan, 40.0],
        }
    )
    with pytest.raises(ValueError, match=r"'user' column is missing in 1 row\(s\), e.g. row 1"):
        user_holdout_split(df, 1, random_state=0)
    with pytest.raises(
        ValueError, match=r"'timestamp' column is missing in 1 row\(s\), e.g. row 2"
    ):
        temporal_split(df)


def test_random_split_cuts_where_the_written_fractions_say():
    """0.7 + 0.1 is 0.7999... in floats: the cut must still be at 80%, not a row short."""
    for n in range(10, 400):
        df = pd.DataFrame({"x": np.arange(n)})
        sizes = [len(p) for p in random_split(df, (0.7, 0.1, 0.2), random_state=0)]
        first, second = (7 * n) // 10, (8 * n) // 10
        assert sizes == [first, second - first, n - second], n
        sizes = [len(p) for p in random_split(df, (0.7, 0.1), random_state=0)]
        assert sizes == [first, second - first, n - second], n
