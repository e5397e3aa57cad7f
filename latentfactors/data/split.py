"""Splitting a ratings frame into train / validation / test parts.

Every function here is deterministic under ``random_state`` (``None``, an int,
or a :class:`numpy.random.Generator`, passed to :func:`numpy.random.default_rng`;
the global NumPy state is never used) and returns new frames with a fresh
``RangeIndex`` and the same columns and dtypes as the input.

* :func:`random_split` -- one random permutation of all rows cut into parts
  (the original notebook's 80 / 12 / 8 protocol).
* :func:`user_holdout_split` -- hold out a share (or a fixed number) of each
  user's ratings, at random or the latest ones.
* :func:`temporal_split` -- one global time cut.
* :func:`kfold` -- k random folds that partition the rows.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterator
from fractions import Fraction

import numba
import numpy as np
import pandas as pd

from latentfactors._numba_setup import CACHE
from latentfactors._validation import check_int, is_int, is_real

__all__ = ["kfold", "random_split", "temporal_split", "user_holdout_split"]

_FRACTION_TOL = 1e-9


# --------------------------------------------------------------------------- helpers


def _check_frame(df, *, need=()) -> int:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas.DataFrame, got {type(df).__name__}")
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ValueError(f"df has no {missing[0]!r} column; found {list(df.columns)}")
    if len(df) == 0:
        raise ValueError("df is empty: there are no ratings to split")
    for column in need:
        missing = df[column].isna().to_numpy()
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise ValueError(
                f"df's {column!r} column is missing in {int(missing.sum())} row(s), e.g. row "
                f"{row}; drop or fill them before splitting"
            )
    return len(df)


def _take(df: pd.DataFrame, rows) -> pd.DataFrame:
    """Rows by position (int array) or by boolean mask, with a fresh RangeIndex."""
    return df.iloc[np.asarray(rows)].reset_index(drop=True)


def _user_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Dense-enough ``int64`` group codes for the user column, and their bound."""
    arr = values.to_numpy()
    n = len(arr)
    if arr.dtype.kind in "iu" and n:
        lo, hi = int(arr.min()), int(arr.max())
        # Small non-negative integer ids are their own codes: no hashing needed.
        if lo >= 0 and hi < max(4 * n, 1 << 16):
            return arr.astype(np.int64, copy=False), hi + 1
    codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64, copy=False), len(uniques)


# --------------------------------------------------------------------------- random_split


def _check_fractions(fractions) -> list[float]:
    if is_real(fractions):
        fractions = (fractions,)
    try:
        fr = list(fractions)
    except TypeError:
        raise TypeError(
            f"fractions must be a number or a sequence of numbers, got {fractions!r}"
        ) from None
    if not fr:
        raise ValueError("fractions is empty: give at least one fraction, e.g. (0.8, 0.2)")
    for f in fr:
        if not is_real(f) or not np.isfinite(f):
            raise ValueError(f"fractions must be finite numbers, got {f!r}")
        if f <= 0:
            raise ValueError(f"fractions must be positive, got {f!r} in {tuple(fr)}")
    fr = [float(f) for f in fr]
    total = sum(fr)
    if total > 1 + _FRACTION_TOL:
        raise ValueError(f"fractions must sum to at most 1, got {tuple(fr)} (sum {total:.6g})")
    return fr


def random_split(df, fractions=(0.8, 0.12, 0.08), *, random_state=None) -> tuple:
    """Shuffle all ratings once and cut the permutation into consecutive parts.

    This is the original notebook's protocol: one ``rng.permutation(n)`` of
    the rows, cut at ``int(n * f1)``, ``int(n * (f1 + f2))``, ... (the
    fractions summed exactly as written, so ``0.7 + 0.1`` is 0.8). With the
    default fractions, 100,004 ratings give exactly 80,003 / 12,000 / 8,001.

    Parameters
    ----------
    df : pandas.DataFrame
        Ratings (any columns; usually the canonical frame).
    fractions : float or sequence of float
        Positive shares of the rows. If they sum to 1 (within 1e-9) there is
        one part per fraction and the last part takes every remaining row. If
        they sum to less than 1, an extra last part holds the remainder: a
        single ``0.8`` gives an 80 / 20 split into two parts.
    random_state : None, int or numpy.random.Generator
        Seed for the permutation.

    Returns
    -------
    tuple of pandas.DataFrame
        The parts, in the order of ``fractions``. Rows are in shuffled order.

    Raises
    ------
    ValueError
        If a fraction is not positive, the fractions sum to more than 1, the
        frame is empty, or a part would be empty.
    """
    n = _check_frame(df)
    fr = _check_fractions(fractions)
    total = sum(fr)
    remainder = total < 1 - _FRACTION_TOL
    bounds = [0]
    # Summed as the decimals they were written as (0.7 + 0.1 is 0.8, not
    # 0.7999...), so that a cut never falls a row short.
    acc = Fraction(0)
    n_cuts = len(fr) if remainder else len(fr) - 1
    for f in fr[:n_cuts]:
        acc += Fraction(repr(float(f)))
        bounds.append(math.floor(n * acc))
    bounds.append(n)
    sizes = np.diff(bounds)
    if (sizes <= 0).any():
        k = int(np.flatnonzero(sizes <= 0)[0])
        raise ValueError(
            f"part {k} of the split would be empty: {n} row(s) are too few for fractions "
            f"{tuple(fr)}" + (" (plus the remainder)" if remainder else "")
        )
    rng = np.random.default_rng(random_state)
    perm = rng.permutation(n)
    return tuple(_take(df, perm[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True))


# --------------------------------------------------------------------------- user holdout


@numba.njit(cache=CACHE, nogil=True)
def _group_rows(codes, n_groups):  # pragma: no cover - compiled
    """Stable counting sort of rows by group: ``order`` and group ``starts``."""
    counts = np.zeros(n_groups + 1, dtype=np.int64)
    for j in range(codes.shape[0]):
        counts[codes[j] + 1] += 1
    starts = np.cumsum(counts)
    fill = starts[:-1].copy()
    order = np.empty(codes.shape[0], dtype=np.int64)
    for j in range(codes.shape[0]):
        g = codes[j]
        order[fill[g]] = j
        fill[g] += 1
    return order, starts


@numba.njit(cache=CACHE, nogil=True)
def _mark_random(codes, counts, n_hold, rand, mask):  # pragma: no cover - compiled
    """Mark ``n_hold[g]`` uniformly random rows of each group in one pass.

    Selection sampling per group: a row is taken with probability
    (still needed) / (rows of its group not yet seen), which yields a uniformly
    random subset of exactly ``n_hold[g]`` rows whatever the row order.
    """
    n_groups = counts.shape[0]
    seen = np.zeros(n_groups, dtype=np.int64)
    taken = np.zeros(n_groups, dtype=np.int64)
    for j in range(codes.shape[0]):
        g = codes[j]
        need = n_hold[g] - taken[g]
        if need > 0:
            if (counts[g] - seen[g]) * rand[j] < need:
                mask[j] = True
                taken[g] += 1
            seen[g] += 1


@numba.njit(cache=CACHE, nogil=True)
def _mark_latest(order, starts, n_hold, ts, mask):  # pragma: no cover - compiled
    """Mark the ``n_hold[g]`` latest rows of each group; ties: later rows are later."""
    for g in range(n_hold.shape[0]):
        h = n_hold[g]
        if h == 0:
            continue
        s = starts[g]
        e = starts[g + 1]
        seg = order[s:e]
        keys = np.empty(e - s, dtype=np.int64)
        for k in range(e - s):
            keys[k] = ts[seg[k]]
        by_time = np.argsort(keys, kind="mergesort")  # stable: row order breaks ties
        for k in range(e - s - h, e - s):
            mask[seg[by_time[k]]] = True


def user_holdout_split(
    df,
    test_fraction=0.2,
    *,
    n_test=None,
    by_time=False,
    min_train=1,
    random_state=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out part of every user's ratings as the test set.

    A user with ``c`` ratings is *eligible* when ``c >= min_train + 1``;
    other users stay entirely in train. An eligible user holds out

    * ``max(1, floor(test_fraction * c))`` ratings by default, or
    * ``n_test`` ratings when ``n_test`` is given (``test_fraction`` is then
      ignored),

    but never so many that fewer than ``min_train`` stay in train: the
    count is capped at ``c - min_train``. So every eligible user appears in
    both parts (if ``min_train >= 1``).

    Parameters
    ----------
    df : pandas.DataFrame
        Ratings with a ``user`` column (and ``timestamp`` for ``by_time``).
    test_fraction : float
        Share of each user's ratings to hold out, in (0, 1).
    n_test : int, optional
        Hold out exactly this many ratings per eligible user (capped as above).
    by_time : bool
        Hold out each user's latest ratings (ties in time: rows further down
        the frame count as later) instead of random ones.
    min_train : int
        Ratings each eligible user keeps in train (>= 0).
    random_state : None, int or numpy.random.Generator
        Seed for the random choice (unused when ``by_time``).

    Returns
    -------
    train, test : pandas.DataFrame
        Rows keep their original relative order.

    Notes
    -----
    Runs in linear time in compiled kernels (one pass of per-user selection
    sampling; a counting sort by user for ``by_time``), so it handles tens of
    millions of rows in a few seconds.
    """
    need = ("user", "timestamp") if by_time else ("user",)
    if by_time and isinstance(df, pd.DataFrame) and "timestamp" not in df.columns:
        raise ValueError(
            f"by_time=True needs a 'timestamp' column, but df has columns {list(df.columns)}"
        )
    n = _check_frame(df, need=need)
    if n_test is None:
        if not is_real(test_fraction) or not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    elif not is_int(n_test) or n_test < 1:
        raise ValueError(f"n_test must be a positive integer, got {n_test!r}")
    if not is_int(min_train) or min_train < 0:
        raise ValueError(f"min_train must be a non-negative integer, got {min_train!r}")

    codes, n_groups = _user_codes(df["user"])
    counts = np.bincount(codes, minlength=n_groups)
    if n_test is None:
        want = np.maximum(1, np.floor(test_fraction * counts).astype(np.int64))
    else:
        want = np.full(n_groups, int(n_test), dtype=np.int64)
    n_hold = np.where(counts >= min_train + 1, np.minimum(want, counts - min_train), 0)
    n_hold = n_hold.astype(np.int64)
    if n_hold.sum() == 0:
        raise ValueError(
            f"no user has more than min_train={min_train} rating(s), so the test set would be empty"
        )

    mask = np.zeros(n, dtype=np.bool_)
    if by_time:
        ts = df["timestamp"].to_numpy()
        if ts.dtype.kind not in "iu":
            raise ValueError(f"timestamp must be integer seconds (int64), got dtype {ts.dtype}")
        order, starts = _group_rows(codes, n_groups)
        _mark_latest(order, starts, n_hold, ts.astype(np.int64, copy=False), mask)
    else:
        rng = np.random.default_rng(random_state)
        _mark_random(codes, counts.astype(np.int64), n_hold, rng.random(n), mask)
    return _take(df, ~mask), _take(df, mask)


# --------------------------------------------------------------------------- temporal


def _cut_seconds(cut) -> float:
    if is_real(cut):
        if not np.isfinite(cut):
            raise ValueError(f"cut must be finite, got {cut!r}")
        return float(cut)
    if isinstance(cut, (pd.Timestamp, _dt.datetime, _dt.date, np.datetime64, str)):
        try:
            stamp = pd.Timestamp(cut)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"cut {cut!r} is not a date: {exc}") from exc
        if stamp is pd.NaT:
            raise ValueError("cut must be a time, got NaT")
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize("UTC")
        return stamp.timestamp()
    raise TypeError(
        "cut must be seconds since the epoch (a number) or a pandas.Timestamp / datetime, "
        f"got {type(cut).__name__}"
    )


def temporal_split(df, test_fraction=0.2, *, cut=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One global time cut: ratings up to the cut train, later ones test.

    Parameters
    ----------
    df : pandas.DataFrame
        Ratings with a ``timestamp`` column (integer seconds since the epoch).
    test_fraction : float
        Without ``cut``: the cut is the timestamp of the
        ``(n - int(n * test_fraction))``-th earliest rating, so about this
        share of the ratings, the latest ones, goes to test. Ties in time go
        to train, so the test share can be smaller.
    cut : number, pandas.Timestamp, datetime or str, optional
        An explicit cut: seconds since the epoch, or a time (naive times are
        UTC). Ratings with ``timestamp <= cut`` train. Overrides
        ``test_fraction``.

    Returns
    -------
    train, test : pandas.DataFrame
        ``train.timestamp.max() <= test.timestamp.min()``. Rows keep their
        original relative order.

    Raises
    ------
    ValueError
        Without a ``timestamp`` column, or if either side would be empty.
    """
    if isinstance(df, pd.DataFrame) and "timestamp" not in df.columns:
        raise ValueError(
            f"temporal_split needs a 'timestamp' column, but df has columns {list(df.columns)}"
        )
    n = _check_frame(df, need=("timestamp",))
    ts = df["timestamp"].to_numpy()
    if ts.dtype.kind not in "iuf":
        raise ValueError(f"timestamp must hold seconds (numbers), got dtype {ts.dtype}")
    if cut is None:
        if not is_real(test_fraction) or not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
        n_train = n - int(n * test_fraction)
        if n_train >= n:
            raise ValueError(
                f"test_fraction={test_fraction} of {n} rating(s) is less than one rating: "
                "the test set would be empty"
            )
        cut_value = np.partition(ts, n_train - 1)[n_train - 1]
        where = f"the {1 - test_fraction:.3g} quantile of timestamps ({cut_value})"
    else:
        cut_value = _cut_seconds(cut)
        where = f"cut={cut!r} ({cut_value:.0f} s)"
    train = ts <= cut_value
    n_train = int(train.sum())
    if n_train == 0:
        raise ValueError(
            f"no rating is at or before {where}: the train set would be empty "
            f"(timestamps run from {ts.min()} to {ts.max()})"
        )
    if n_train == n:
        raise ValueError(
            f"no rating is after {where}: the test set would be empty "
            f"(timestamps run from {ts.min()} to {ts.max()}; ties in time go to train)"
        )
    return _take(df, train), _take(df, ~train)


# --------------------------------------------------------------------------- k-fold


def kfold(df, k=5, *, random_state=None) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """K random folds: yields ``(train, test)`` once per fold.

    The k test sets partition the rows exactly; their sizes differ by at most
    one (the first ``n % k`` folds get the extra row). Arguments are checked
    when ``kfold`` is called, not on the first ``next``.

    Parameters
    ----------
    df : pandas.DataFrame
        Ratings.
    k : int
        Number of folds, ``2 <= k <= len(df)``.
    random_state : None, int or numpy.random.Generator
        Seed for the fold assignment.

    Returns
    -------
    iterator of (pandas.DataFrame, pandas.DataFrame)
        ``(train, test)`` for each fold in turn; rows keep their original
        relative order.
    """
    n = _check_frame(df)
    k = check_int("k", k, 2)
    if k > n:
        raise ValueError(f"k={k} folds need at least {k} ratings, but df has {n}")
    rng = np.random.default_rng(random_state)
    sizes = np.full(k, n // k, dtype=np.int64)
    sizes[: n % k] += 1
    fold = np.empty(n, dtype=np.int32)
    fold[rng.permutation(n)] = np.repeat(np.arange(k, dtype=np.int32), sizes)

    def folds():
        for j in range(k):
            test = fold == j
            yield _take(df, ~test), _take(df, test)

    return folds()
