"""Error metrics for rating prediction (and, later, ranking metrics)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _vector(values, name: str) -> np.ndarray:
    """``values`` as a float64 array; strings, complex numbers and the like are refused."""
    if isinstance(values, (pd.Series, pd.Index)) and values.dtype.kind in "biuf":
        # Nullable dtypes (Float64, Int64) hold pd.NA, which numpy cannot convert.
        values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    arr = np.asarray(values)
    if arr.dtype.kind not in "biufO":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must hold real numbers: {exc}") from exc


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = _vector(y_true, "y_true")
    p = _vector(y_pred, "y_pred")
    if t.ndim != 1 or p.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D, got shapes {t.shape} and {p.shape}")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {len(t)} and {len(p)}")
    if len(t) == 0:
        raise ValueError("y_true and y_pred are empty: there is nothing to score")
    for name, arr in (("y_true", t), ("y_pred", p)):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(
                f"{name} has {int(bad.sum())} NaN or infinite value(s), e.g. at position "
                f"{int(np.flatnonzero(bad)[0])}"
            )
    return t, p


def mse(y_true, y_pred) -> float:
    """Mean squared error of two 1-D arrays of equal length."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean((t - p) ** 2))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    return float(np.sqrt(mse(y_true, y_pred)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def error_metrics(y_true, y_pred) -> dict[str, float]:
    """``{"mse", "rmse", "mae"}`` in one pass over validated inputs."""
    t, p = _pair(y_true, y_pred)
    err = t - p
    m = float(np.mean(err**2))
    return {"mse": m, "rmse": float(np.sqrt(m)), "mae": float(np.mean(np.abs(err)))}
