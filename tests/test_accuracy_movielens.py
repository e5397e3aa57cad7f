"""The accuracy bars on the original notebook's protocol (real data; skipped without it).

Protocol: ``ml-latest-small-2016``, ``random_split`` 80/12/8, test MSE on the
8%, median over seeds; each seed draws both the split and the model.
"""

from __future__ import annotations

import statistics

import pytest

from latentfactors import BiasedMF, load_movielens, random_split
from latentfactors.presets import notebook_dot

pytestmark = pytest.mark.jit("fits MovieLens (100,000 ratings) many times")


@pytest.fixture(scope="module")
def splits(shared_data):
    frame = load_movielens("ml-latest-small-2016", data_home=shared_data, download=False)
    return [random_split(frame, random_state=seed) for seed in range(5)]


def test_notebook_dot_product_lands_where_keras_does(splits):
    # Fit time (Keras needs 23-25 s) is measured by benchmarks/accuracy.py, not here.
    mses = []
    for seed, (train, _, test) in enumerate(splits):
        model = notebook_dot(random_state=seed).fit(train)
        mses.append(model.evaluate(test)["mse"])
    # The notebook printed 1.008; the same Keras code gives 1.029-1.045 here.
    assert 0.95 <= statistics.median(mses) <= 1.15, mses


def test_defaults_beat_the_peers_with_and_without_validation(splits):
    with_valid, without = [], []
    for seed, (train, valid, test) in enumerate(splits[:3]):
        with_valid.append(BiasedMF(random_state=seed).fit(train, valid=valid).evaluate(test)["mse"])
        without.append(BiasedMF(random_state=seed).fit(train).evaluate(test)["mse"])
    # Best peer on this protocol: myFM Bayesian MF 0.740; Surprise SVD defaults 0.811.
    assert statistics.median(with_valid) <= 0.760, with_valid
    assert statistics.median(without) <= 0.775, without


def test_adam_is_competitive_on_the_same_protocol(splits):
    train, valid, test = splits[0]
    mse = BiasedMF(optimizer="adam", random_state=0).fit(train, valid=valid).evaluate(test)["mse"]
    assert mse <= 0.80, mse
