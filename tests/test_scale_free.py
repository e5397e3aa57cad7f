"""Training is scale-free: a linear rescaling of the ratings rescales the model."""

import io

import numpy as np
import pytest

from latentfactors import MLPMF, BiasedMF, load_model, make_synthetic_ratings, random_split

CONFIGS = [
    (BiasedMF, {"n_factors": 16}),
    (BiasedMF, {"n_factors": 8, "optimizer": "adam"}),
    (BiasedMF, {"n_factors": 8, "optimizer": "adam-dense", "batch_size": 64}),
    (MLPMF, {"n_factors": 8}),
]


@pytest.fixture(scope="module")
def stars():
    ratings, _ = make_synthetic_ratings(300, 200, 6000, random_state=0)
    return random_split(ratings, 0.8, random_state=0)


def rescaled(frame, a, b):
    out = frame.copy()
    out["rating"] = out["rating"] * a + b
    return out


def test_defaults_train_on_a_0_to_100_scale(stars):
    train, valid = stars
    a, b = 100 / 4.5, -50 / 4.5  # 0.5-5 stars onto 0-100
    model = BiasedMF(random_state=0, n_epochs=10).fit(rescaled(train, a, b))
    assert model.rating_range_ == (0.0, 100.0)
    rmse = model.evaluate(rescaled(valid, a, b))["rmse"]
    stars_rmse = BiasedMF(random_state=0, n_epochs=10).fit(train).evaluate(valid)["rmse"]
    assert rmse == pytest.approx(a * stars_rmse, rel=1e-4)


@pytest.mark.parametrize(("cls", "params"), CONFIGS)
def test_linear_rescaling_rescales_the_model(stars, cls, params):
    train, valid = stars
    a, b = 20.0, 7.0
    base = cls(n_epochs=5, random_state=1, **params).fit(train, valid=valid)
    big = cls(n_epochs=5, random_state=1, **params).fit(
        rescaled(train, a, b), valid=rescaled(valid, a, b)
    )
    users, items = valid["user"].to_numpy(), valid["item"].to_numpy()
    assert np.allclose(big.predict(users, items), a * base.predict(users, items) + b, atol=1e-3)
    for key in ("train_mse", "valid_mse"):
        assert np.allclose(big.history_[key], np.multiply(base.history_[key], a * a), rtol=1e-4)
    assert big.best_epoch_ == base.best_epoch_
    # The biases and the prediction of a new user follow the same map.
    assert np.allclose(big.user_bias_, a * base.user_bias_, atol=1e-3)
    mine = train[train["user"] == train["user"].iloc[0]][["item", "rating"]]
    new = big.predict_for(rescaled(mine, a, b), items[:20])
    assert np.allclose(new, a * base.predict_for(mine, items[:20]) + b, atol=1e-2)


def test_ratings_on_the_reference_span_are_not_rescaled(stars):
    train, _ = stars
    assert (train["rating"].min(), train["rating"].max()) == (0.5, 5.0)
    model = BiasedMF(8, n_epochs=2, random_state=0).fit(train)
    assert model.rating_scale_ == 1.0


def test_rating_scale_survives_save_and_load(stars):
    train, valid = stars
    model = BiasedMF(8, n_epochs=2, random_state=0).fit(rescaled(train, 10.0, 0.0))
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    loaded = load_model(buffer)
    assert loaded.rating_scale_ == model.rating_scale_ == pytest.approx(10.0)
    mine = train[train["user"] == train["user"].iloc[0]][["item", "rating"]]
    mine = rescaled(mine, 10.0, 0.0)
    items = valid["item"].to_numpy()[:10]
    assert np.array_equal(loaded.predict_for(mine, items), model.predict_for(mine, items))
