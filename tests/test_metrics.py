"""mse, rmse, mae and error_metrics: values and input validation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from latentfactors.metrics import error_metrics, mae, mse, rmse

Y_TRUE = [4.0, 3.0, 5.0, 1.0]
Y_PRED = [3.5, 3.0, 3.0, 2.0]
# errors: 0.5, 0, 2, -1 -> squares 0.25, 0, 4, 1 (sum 5.25), absolutes sum 3.5
MSE = 5.25 / 4
MAE = 3.5 / 4


def test_hand_computed_values():
    assert mse(Y_TRUE, Y_PRED) == pytest.approx(MSE)
    assert rmse(Y_TRUE, Y_PRED) == pytest.approx(math.sqrt(MSE))
    assert mae(Y_TRUE, Y_PRED) == pytest.approx(MAE)
    assert error_metrics(Y_TRUE, Y_PRED) == pytest.approx(
        {"mse": MSE, "rmse": math.sqrt(MSE), "mae": MAE}
    )


def test_single_pair():
    assert mse([2], [5]) == 9.0
    assert rmse([2], [5]) == 3.0
    assert mae([2], [5]) == 3.0


def test_perfect_prediction_is_zero():
    y = np.array([1.0, 2.5, 5.0])
    assert error_metrics(y, y) == {"mse": 0.0, "rmse": 0.0, "mae": 0.0}


def test_symmetric_in_arguments():
    assert mse(Y_PRED, Y_TRUE) == mse(Y_TRUE, Y_PRED)
    assert mae(Y_PRED, Y_TRUE) == mae(Y_TRUE, Y_PRED)


def test_returns_python_floats():
    for value in (mse(Y_TRUE, Y_PRED), rmse(Y_TRUE, Y_PRED), mae(Y_TRUE, Y_PRED)):
        assert type(value) is float
    assert all(type(v) is float for v in error_metrics(Y_TRUE, Y_PRED).values())


def test_float32_inputs_are_scored_in_float64():
    t = np.full(1000, 0.1, dtype=np.float32)
    p = np.full(1000, 0.3, dtype=np.float32)
    expected = (np.float64(np.float32(0.1)) - np.float64(np.float32(0.3))) ** 2
    assert mse(t, p) == pytest.approx(expected, rel=1e-12)


def test_accepts_ints_bools_series_and_tuples():
    assert mse(np.array([1, 2, 3]), (1, 2, 5)) == pytest.approx(4 / 3)
    assert mae(pd.Series([1.0, 2.0]), pd.Series([2.0, 2.0], index=[10, 11])) == 0.5
    assert mse(pd.Series([1, 2], dtype="Int64"), [1, 2]) == 0.0
    assert mae(np.array([True, False]), [1, 1]) == 0.5


@pytest.mark.parametrize("fn", [mse, rmse, mae, error_metrics])
def test_length_mismatch(fn):
    with pytest.raises(ValueError, match=r"must have the same length, got 3 and 2"):
        fn([1, 2, 3], [1, 2])


@pytest.mark.parametrize("fn", [mse, rmse, mae, error_metrics])
def test_not_one_dimensional(fn):
    with pytest.raises(ValueError, match=r"must be 1-D, got shapes \(2, 1\) and \(2,\)"):
        fn([[1], [2]], [1, 2])
    with pytest.raises(ValueError, match=r"must be 1-D, got shapes \(\) and \(1,\)"):
        fn(3.0, [3.0])


@pytest.mark.parametrize("fn", [mse, rmse, mae, error_metrics])
def test_empty(fn):
    with pytest.raises(ValueError, match=r"are empty: there is nothing to score"):
        fn([], [])


@pytest.mark.parametrize("fn", [mse, rmse, mae, error_metrics])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_y_true(fn, bad):
    with pytest.raises(ValueError, match=r"y_true has 1 NaN or infinite value\(s\), .*position 2"):
        fn([1.0, 2.0, bad], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("fn", [mse, rmse, mae, error_metrics])
def test_non_finite_y_pred(fn):
    with pytest.raises(ValueError, match=r"y_pred has 2 NaN or infinite value\(s\), .*position 0"):
        fn([1.0, 2.0, 3.0], [np.nan, 2.0, np.inf])


def test_missing_values_in_lists_and_nullable_series():
    with pytest.raises(ValueError, match=r"y_pred has 1 NaN or infinite value\(s\)"):
        mse([1.0, 2.0], [1.0, None])
    with pytest.raises(ValueError, match=r"y_true has 1 NaN or infinite value\(s\)"):
        mse(pd.Series([1.0, None], dtype="Float64"), [1.0, 2.0])


@pytest.mark.parametrize("fn", [mse, rmse, mae, error_metrics])
def test_non_numeric(fn):
    with pytest.raises(TypeError, match=r"y_true must hold real numbers, got dtype <U1"):
        fn(["a", "b"], [1, 2])
    with pytest.raises(TypeError, match=r"y_pred must hold real numbers, got dtype complex"):
        fn([1, 2], np.array([1j, 2]))
    with pytest.raises(TypeError, match=r"y_pred must hold real numbers, got string values"):
        fn([1, 2], pd.Series(["1", "x"], dtype=object))
    with pytest.raises(TypeError, match=r"got string values such as '1'"):
        fn(pd.Series(["1", "5"]), [1, 2])  # numeric text is not a number either
    assert np.isfinite(
        fn(np.array([1, 2.5], dtype=object), [1, 2])["mse"]
        if fn is error_metrics
        else fn(np.array([1, 2.5], dtype=object), [1, 2])
    )


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=50))
def test_metric_properties(pairs):
    t = np.array([x for x, _ in pairs])
    p = np.array([y for _, y in pairs])
    m, r, a = mse(t, p), rmse(t, p), mae(t, p)
    assert m >= 0 and r >= 0 and a >= 0
    assert r**2 == pytest.approx(m, rel=1e-9, abs=1e-12)
    assert a <= r * (1 + 1e-12) + 1e-12  # mean |e| <= sqrt(mean e^2)
    assert error_metrics(t, p) == pytest.approx({"mse": m, "rmse": r, "mae": a})
    assert mse(t, t) == 0.0


def test_in_training_marks_the_pairs_the_model_was_fitted_on():
    from latentfactors import BiasedMF
    from latentfactors.metrics import in_training
    from latentfactors.models import NotFittedError

    train = pd.DataFrame({"user": [1, 1, 2, 3], "item": [10, 20, 10, 30], "rating": [4, 3, 5, 2]})
    model = BiasedMF(n_factors=2, n_epochs=1, early_stopping=False, random_state=0)
    with pytest.raises(NotFittedError, match="not fitted"):
        in_training(model, train)
    model.fit(train)
    asked = pd.DataFrame({"user": [1, 2, 2, 9, 3], "item": [20, 20, 10, 10, 99]})
    assert in_training(model, asked).tolist() == [True, False, True, False, False]
    assert in_training(model, asked.iloc[:0]).tolist() == []
    with pytest.raises(TypeError, match="ids given are strings"):
        in_training(model, asked.astype(str))
    with pytest.raises(TypeError, match="user and item columns"):
        in_training(model, asked[["user"]])
