"""Tests for latentfactors.data.synthetic."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from latentfactors.data.synthetic import SyntheticTruth, make_synthetic_ratings


@pytest.fixture(scope="module")
def default():
    return make_synthetic_ratings(2000, 1000, 100_000, random_state=0)


def assert_unique_pairs(df):
    assert not df.duplicated(["user", "item"]).any()


def mse(a, b):
    return float(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b)) ** 2))


# --------------------------------------------------------------------------- frame


def test_shapes_dtypes_and_ids(default):
    df, truth = default
    assert isinstance(truth, SyntheticTruth)
    assert list(df.columns) == ["user", "item", "rating"]
    assert df.dtypes.to_dict() == {
        "user": np.dtype(np.int64),
        "item": np.dtype(np.int64),
        "rating": np.dtype(np.float32),
    }
    assert len(df) == 100_000 and isinstance(df.index, pd.RangeIndex)
    assert df["user"].between(0, 1999).all() and df["item"].between(0, 999).all()
    assert df["user"].nunique() > 1900 and df["item"].nunique() > 900
    assert_unique_pairs(df)
    assert truth.n_users == 2000 and truth.n_items == 1000 and truth.rank == 8
    assert truth.user_factors.shape == (2000, 8) and truth.item_factors.shape == (1000, 8)
    assert truth.user_bias.shape == (2000,) and truth.item_bias.shape == (1000,)
    assert "noise_floor" in repr(truth)


def test_rows_are_shuffled(default):
    df, _ = default
    assert not df["user"].is_monotonic_increasing
    # no long runs of one user, as there would be if rows were grouped
    assert (df["user"].to_numpy()[1:] == df["user"].to_numpy()[:-1]).mean() < 0.01


def test_scale_and_step_respected(default):
    df, _ = default
    r = df["rating"].to_numpy()
    assert r.min() >= 0.5 and r.max() <= 5.0
    np.testing.assert_array_equal(r * 2, np.round(r * 2))
    assert set(np.unique(r)) == set(np.arange(0.5, 5.01, 0.5))
    assert abs(r.mean() - 3.5) < 0.1

    df, _ = make_synthetic_ratings(500, 300, 20_000, scale=(1, 5), step=1, random_state=1)
    assert set(np.unique(df["rating"])) == {1.0, 2.0, 3.0, 4.0, 5.0}

    df, _ = make_synthetic_ratings(500, 300, 20_000, step=None, random_state=1)
    r = df["rating"].to_numpy()
    assert r.min() >= 0.5 and r.max() <= 5.0
    assert len(np.unique(r)) > 10_000  # continuous


def test_timestamps():
    df, truth = make_synthetic_ratings(500, 300, 20_000, timestamps=True, random_state=2)
    assert list(df.columns) == ["user", "item", "rating", "timestamp"]
    assert df["timestamp"].dtype == np.int64
    ts = pd.to_datetime(df["timestamp"], unit="s")
    assert ts.min() >= pd.Timestamp("2000-01-01") and ts.max() < pd.Timestamp("2020-01-01")
    start, length = truth.time_window[:, 0], truth.time_window[:, 1]
    u = df["user"].to_numpy()
    assert np.all(df["timestamp"] >= start[u]) and np.all(df["timestamp"] < start[u] + length[u])
    fresh = truth.sample(1000, random_state=0)
    assert fresh["timestamp"].dtype == np.int64


@pytest.mark.jit("draws three noise floors of 200,000 pairs")
def test_deterministic_with_seed_and_seeds_differ():
    a, ta = make_synthetic_ratings(300, 200, 5000, timestamps=True, random_state=11)
    b, tb = make_synthetic_ratings(300, 200, 5000, timestamps=True, random_state=11)
    c, tc = make_synthetic_ratings(300, 200, 5000, timestamps=True, random_state=12)
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_array_equal(ta.user_factors, tb.user_factors)
    assert ta.noise_floor == tb.noise_floor
    assert not a.equals(c)
    assert not np.array_equal(ta.item_bias, tc.item_bias)
    d, _ = make_synthetic_ratings(
        300, 200, 5000, timestamps=True, random_state=np.random.default_rng(11)
    )
    pd.testing.assert_frame_equal(a, d)


def test_popularity_skew():
    df, _ = make_synthetic_ratings(5000, 2000, 100_000, popularity=1.0, random_state=3)
    counts = np.sort(df["item"].value_counts().reindex(range(2000), fill_value=0).to_numpy())
    top = counts[::-1][:200].sum() / counts.sum()
    assert top > 0.5  # Zipf(1) over 2000 items: about 0.7
    df, _ = make_synthetic_ratings(5000, 2000, 100_000, popularity=0.0, random_state=3)
    counts = np.sort(df["item"].value_counts().reindex(range(2000), fill_value=0).to_numpy())
    assert counts[::-1][:200].sum() / counts.sum() < 0.13
    # user activity has a mild skew only
    users = np.sort(df["user"].value_counts().to_numpy())[::-1]
    assert 0.12 < users[:500].sum() / users.sum() < 0.4


def test_full_matrix_and_high_density():
    df, _ = make_synthetic_ratings(40, 30, 1200, random_state=0)
    assert len(df) == 1200
    assert_unique_pairs(df)
    assert df["user"].nunique() == 40 and df["item"].nunique() == 30
    df, _ = make_synthetic_ratings(100, 60, 3000, popularity=2.0, random_state=0)
    assert len(df) == 3000
    assert_unique_pairs(df)


@pytest.mark.jit("draws 1,000,000 ratings")
def test_saturated_sparse_path_terminates():
    # Few items, steep popularity, a matrix above the all-pairs limit: popular items are
    # rated by every user and the sampler must fall back to flatter proposals.
    df, _ = make_synthetic_ratings(400_000, 100, 1_000_000, popularity=3.0, random_state=0)
    assert len(df) == 1_000_000
    assert_unique_pairs(df)


@pytest.mark.jit("draws 2,000,000 ratings")
def test_two_million_ratings():
    df, truth = make_synthetic_ratings(50_000, 10_000, 2_000_000, timestamps=True, random_state=4)
    assert len(df) == 2_000_000
    keys = df["user"].to_numpy() * 10_000 + df["item"].to_numpy()
    assert len(np.unique(keys)) == len(keys)


# --------------------------------------------------------------------------- truth


def test_truth_is_frozen_and_read_only(default):
    _, truth = default
    with pytest.raises(dataclasses.FrozenInstanceError):
        truth.noise = 1.0
    with pytest.raises(ValueError, match="read-only"):
        truth.user_factors[0, 0] = 1.0
    assert truth.scale == (0.5, 5.0) and truth.step == 0.5 and truth.noise == 0.5
    assert truth.global_mean == 3.5
    assert truth.user_weights.sum() == pytest.approx(1.0)
    assert truth.item_weights.sum() == pytest.approx(1.0)


def test_planted_model_scales():
    _, truth = make_synthetic_ratings(20_000, 20_000, 1000, rank=16, random_state=5)
    rng = np.random.default_rng(0)
    u = rng.integers(0, 20_000, 200_000)
    i = rng.integers(0, 20_000, 200_000)
    inter = np.einsum("ij,ij->i", truth.user_factors[u], truth.item_factors[i])
    assert inter.std() == pytest.approx(0.5, rel=0.05)
    assert truth.user_bias.std() == pytest.approx(0.35, rel=0.05)
    assert truth.item_bias.std() == pytest.approx(0.5, rel=0.05)
    _, truth = make_synthetic_ratings(100, 100, 10, factor_std=0.0, bias_std=0.0, random_state=0)
    assert np.all(truth.predict([0, 1], [2, 3], kind="raw") == 3.5)


def test_noise_floor_without_rounding_or_clipping():
    df, truth = make_synthetic_ratings(
        3000, 1000, 100_000, noise=0.3, step=None, scale=(-100, 100), random_state=6
    )
    assert truth.noise_floor == pytest.approx(0.09, rel=0.05)
    fresh = truth.sample(100_000, random_state=1)
    assert mse(fresh["rating"], truth.predict(fresh["user"], fresh["item"])) == pytest.approx(
        truth.noise_floor, rel=0.05
    )
    raw = truth.predict(df["user"], df["item"], kind="raw")
    assert mse(df["rating"], raw) == pytest.approx(0.09, rel=0.05)


def test_noise_floor_with_rounding_matches_sheppard():
    _, truth = make_synthetic_ratings(
        3000, 1000, 10_000, noise=0.5, step=0.5, scale=(-100, 100), random_state=6
    )
    assert truth.noise_floor == pytest.approx(0.25 + 0.5**2 / 12, rel=0.01)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"step": None}, {"noise": 1.0, "scale": (1, 5), "step": 1}, {"noise": 0.8}],
)
@pytest.mark.jit("draws 50,000 ratings and 200,000 fresh ones per case")
def test_predict_reaches_noise_floor_on_fresh_ratings(kwargs):
    _, truth = make_synthetic_ratings(3000, 1000, 50_000, random_state=7, **kwargs)
    fresh = truth.sample(200_000, random_state=8)
    best = truth.predict(fresh["user"], fresh["item"])
    assert mse(fresh["rating"], best) == pytest.approx(truth.noise_floor, rel=0.03)
    # the conditional mean beats the clipped noiseless score
    clipped = truth.predict(fresh["user"], fresh["item"], kind="clipped")
    assert mse(fresh["rating"], best) <= mse(fresh["rating"], clipped)
    # clipping and rounding to a bounded scale shrinks the error below noise**2 + step**2/12
    step = kwargs.get("step", 0.5) or 0.0
    assert truth.noise_floor < truth.noise**2 + step**2 / 12


def test_noise_free_ratings_equal_the_prediction():
    df, truth = make_synthetic_ratings(300, 200, 5000, noise=0.0, random_state=9)
    assert truth.noise_floor == 0.0
    np.testing.assert_allclose(df["rating"], truth.predict(df["user"], df["item"]), atol=1e-6)


def test_predict_kinds_and_errors(default):
    _, truth = default
    users, items = np.array([0, 5, 1999]), np.array([0, 7, 999])
    raw = truth.predict(users, items, kind="raw")
    expected = (
        truth.global_mean
        + truth.user_bias[users]
        + truth.item_bias[items]
        + np.sum(truth.user_factors[users] * truth.item_factors[items], axis=1)
    )
    np.testing.assert_allclose(raw, expected)
    np.testing.assert_allclose(
        truth.predict(users, items, kind="clipped"), np.clip(expected, 0.5, 5.0)
    )
    mean = truth.predict(pd.Series(users), list(items))
    assert mean.dtype == np.float64 and np.all((mean >= 0.5) & (mean <= 5.0))
    assert truth.predict(3, 4).shape == (1,)
    with pytest.raises(ValueError, match="kind"):
        truth.predict(users, items, kind="median")
    with pytest.raises(ValueError, match="users ids must be in"):
        truth.predict([2000], [0])
    with pytest.raises(ValueError, match="items ids must be in"):
        truth.predict([0], [-1])
    with pytest.raises(ValueError, match="differ in length"):
        truth.predict([0, 1], [0])
    with pytest.raises(ValueError, match="integer ids"):
        truth.predict(["a"], [0])


def test_sample_fresh_ratings(default):
    df, truth = default
    fresh = truth.sample(10_000, random_state=1)
    assert list(fresh.columns) == list(df.columns)
    assert fresh.dtypes.to_dict() == df.dtypes.to_dict()
    assert len(fresh) == 10_000
    assert_unique_pairs(fresh)
    pd.testing.assert_frame_equal(fresh, truth.sample(10_000, random_state=1))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        truth.sample(0)
    with pytest.raises(ValueError, match="distinct"):
        truth.sample(2000 * 1000 + 1)


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((10, 10, 101), {}, "distinct"),
        ((10_000, 10_000, 60_000_000), {}, "at most half"),
        ((-5, 10, 10), {}, "n_users must be a positive integer"),
        ((5, 0, 10), {}, "n_items must be a positive integer"),
        ((5, 5, 0), {}, "n_ratings must be a positive integer"),
        ((5.5, 5, 5), {}, "n_users must be a positive integer"),
        ((True, 5, 1), {}, "n_users must be a positive integer"),
        ((2**31, 5, 5), {}, "too large"),
        ((10, 10, 10), {"rank": 0}, "rank"),
        ((10, 10, 10), {"rank": 2.0}, "rank"),
        ((10, 10, 10), {"noise": -0.1}, "noise must be >= 0"),
        ((10, 10, 10), {"noise": float("nan")}, "noise must be a finite number"),
        ((10, 10, 10), {"factor_std": -1.0}, "factor_std"),
        ((10, 10, 10), {"bias_std": (0.1, -0.1)}, "bias_std"),
        ((10, 10, 10), {"bias_std": (0.1, 0.2, 0.3)}, "bias_std"),
        ((10, 10, 10), {"popularity": -1.0}, "popularity"),
        ((10, 10, 10), {"global_mean": float("inf")}, "global_mean"),
        ((10, 10, 10), {"scale": (5.0, 1.0)}, "low < high"),
        ((10, 10, 10), {"scale": (1.0,)}, "scale must be a pair"),
        ((10, 10, 10), {"scale": None}, "scale must be a pair"),
        ((10, 10, 10), {"step": 0.0}, "step must be positive"),
        ((10, 10, 10), {"step": 0.7}, "multiple of step"),
        ((10, 10, 10), {"timestamps": "yes"}, "timestamps"),
    ],
)
def test_bad_inputs(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_synthetic_ratings(*args, **kwargs)
