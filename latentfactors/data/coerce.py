"""What callers pass, as checked arrays: a frame, a tuple of columns, or a list of ids.

Every method and function that takes ratings, (user, item) pairs or ids reads
them here, through one parser, :func:`frame_or_tuple`: a
:class:`pandas.DataFrame` with named columns, or a tuple (or list) of column
arrays. The functions built on it add the checks their callers need and keep
their messages, each of which names the argument (``what``) at fault.
"""

from __future__ import annotations

import collections.abc
from dataclasses import dataclass

import numpy as np
import pandas as pd

from latentfactors.data.ids import IdIndex, as_id_array, check_whole_ids
from latentfactors.data.ratings import check_float32_range

__all__ = [
    "TrainData",
    "encode_train",
    "frame_or_tuple",
    "id_array",
    "id_values",
    "one_user_ratings",
    "rating_arrays",
    "reject_rows",
    "user_item_pairs",
]

_ID_COLUMNS = ("user", "item")


def reject_rows(data, columns: list[str], what: str):
    """Refuse a list of row tuples where a tuple of column arrays is expected.

    ``[(u1, i1, r1), (u2, i2, r2), (u3, i3, r3)]`` has the length of a tuple
    of three columns and would otherwise be read, silently, as one.
    """
    if isinstance(data, list) and data and all(isinstance(row, tuple) for row in data):
        names = ", ".join(columns)
        raise ValueError(
            f"{what} is a list of rows ({names}); pass a tuple of {len(columns)} column arrays "
            f"({names}), or pandas.DataFrame(rows, columns={columns!r})"
        )


def frame_or_tuple(
    data,
    columns,
    what,
    *,
    expected,
    lengths=None,
    wrong_length=None,
    missing_hint="",
) -> list[np.ndarray]:
    """The named columns of a frame, or the arrays of a tuple, as arrays (not copied).

    Parameters
    ----------
    data : pandas.DataFrame, tuple or list
        A frame with (at least) ``columns``, or the column arrays in that order.
    columns : sequence of str
        The columns wanted; ``user`` and ``item`` are read as ids
        (:func:`~latentfactors.data.ids.as_id_array`), the others as plain arrays.
    what : str
        The argument's name, for the messages.
    expected : str
        What ``data`` should be, as the ``TypeError`` for anything else says:
        ``"{what} must be {expected}, got {type}"``.
    lengths : tuple of int, optional
        The tuple lengths accepted (default ``len(columns)``; ``()`` accepts
        frames only); a longer tuple's extra arrays are ignored.
    wrong_length : str, optional
        The ``ValueError`` for a tuple of another length; without it, such a
        tuple gets the ``TypeError``.
    missing_hint : str
        Appended to the message about missing columns.

    Returns
    -------
    list of numpy.ndarray, one per column
    """
    lengths = (len(columns),) if lengths is None else lengths
    if isinstance(data, pd.DataFrame):
        missing = [c for c in columns if c not in data.columns]
        if missing:
            raise ValueError(
                f"{what} is missing column(s) {missing}; found {list(data.columns)}{missing_hint}"
            )
        return [data[c].to_numpy() for c in columns]
    if isinstance(data, (tuple, list)) and lengths:
        # A list of row tuples would pass for columns when it has their number of rows.
        reject_rows(data, list(columns), what)
        if len(data) in lengths:
            return [
                as_id_array(values) if name in _ID_COLUMNS else np.asarray(values)
                for name, values in zip(columns, data)
            ]
        if wrong_length is not None:
            raise ValueError(wrong_length)
    raise TypeError(f"{what} must be {expected}, got {type(data).__name__}")


def rating_arrays(data, *, need_rating: bool, what: str):
    """Checked raw ``(users, items, ratings)`` arrays from a frame or a tuple, not copied.

    ``ratings`` is ``None`` without ``need_rating``. Ids must be 1-D and not
    missing; ratings finite numbers within float32's range.
    """
    names = ["user", "item"] + (["rating"] if need_rating else [])
    shape = "(users, items, ratings)" if need_rating else "(users, items)"
    arrays = frame_or_tuple(
        data,
        names,
        what,
        expected="a pandas.DataFrame with user/item/rating columns or a tuple of arrays",
        wrong_length=f"{what} must be a tuple of {len(names)} arrays {shape}",
        missing_hint=(
            ". Rename them, or read the data with latentfactors.load_ratings(..., columns=...)"
        ),
    )
    users, items = arrays[:2]
    ratings = arrays[2] if need_rating else None
    for name, arr in zip(("users", "items", "ratings"), arrays):
        if arr.ndim != 1:
            raise ValueError(f"{what}: {name} must be 1-D, got shape {arr.shape}")
    if len({len(a) for a in arrays}) != 1:
        raise ValueError(
            f"{what}: users, items{', ratings' if need_rating else ''} must have the same "
            f"length, got {[len(a) for a in arrays]}"
        )
    for name, arr in zip(("user", "item"), (users, items)):
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ValueError(f"{what}: {name} ids contain NaN or infinite values")
        if arr.dtype == object and pd.isna(arr).any():
            raise ValueError(f"{what}: {name} ids contain missing values")
        check_whole_ids(arr, name, prefix=f"{what}: ")
    if need_rating:
        if ratings.dtype.kind not in "iuf":
            raise ValueError(
                f"{what}: ratings must be numbers, got dtype {ratings.dtype}; convert with "
                "latentfactors.load_ratings"
            )
        finite = np.isfinite(ratings)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise ValueError(
                f"{what}: {int((~finite).sum())} rating(s) are NaN or infinite, e.g. row {row}; "
                "drop or fill them first"
            )
        check_float32_range(ratings, prefix=f"{what}: ")
    return users, items, ratings


def user_item_pairs(data, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Raw ``(users, items)`` of (user, item) pairs: a frame or a tuple of two arrays."""
    users, items = frame_or_tuple(
        data,
        ["user", "item"],
        what,
        expected="a DataFrame with user and item columns or a tuple (users, items)",
    )
    if users.ndim != 1 or items.ndim != 1 or len(users) != len(items):
        raise ValueError(f"{what}: users and items must be 1-D arrays of the same length")
    check_whole_ids(users, "user", prefix=f"{what}: ")
    check_whole_ids(items, "item", prefix=f"{what}: ")
    return users, items


def one_user_ratings(ratings) -> tuple[np.ndarray, np.ndarray]:
    """Raw ``(items, ratings as float64)`` of one user's ratings, at least one, all finite.

    ``ratings`` is a frame with ``item`` and ``rating`` columns (and at most
    one user in a ``user`` column) or a tuple ``(items, ratings)``.
    """
    items, values = frame_or_tuple(
        ratings,
        ["item", "rating"],
        "ratings",
        expected="a DataFrame with item and rating columns or a tuple (items, ratings)",
    )
    if isinstance(ratings, pd.DataFrame) and "user" in ratings.columns:
        if ratings["user"].nunique(dropna=False) > 1:
            users = ratings["user"].drop_duplicates().head(3).tolist()
            raise ValueError(
                "ratings hold more than one user (user column: "
                f"{', '.join(map(repr, users))}, ...): these are one new user's ratings; "
                "pass each user's rows on their own, e.g. with groupby('user')"
            )
    if items.ndim != 1 or values.ndim != 1 or len(items) != len(values):
        raise ValueError(
            f"ratings: items and ratings must be 1-D of the same length, got shapes "
            f"{items.shape} and {values.shape}"
        )
    if len(items) == 0:
        raise ValueError("ratings is empty: a new user needs at least one rating")
    if values.dtype.kind not in "iuf":
        raise ValueError(f"ratings must be numbers, got dtype {values.dtype}")
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError("ratings contain NaN or infinite values")
    id_array(items, "rated items")
    return items, values


def id_values(values, name: str) -> np.ndarray:
    """Ids given to ``predict`` as a 1-D array: one id, or a sequence of them."""
    if isinstance(values, (set, frozenset, dict)):
        kind = type(values).__name__
        raise TypeError(f"{name} must be ordered (a list or an array), not a {kind}")
    if isinstance(values, collections.abc.Iterator):  # a generator, say: read it once
        values = list(values)
    return np.atleast_1d(as_id_array(values))


def id_array(values, what, *, allow_empty=False) -> np.ndarray:
    """A 1-D array of ids, none of them missing (and at least one unless ``allow_empty``)."""
    arr = as_id_array(values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-D list of ids, got shape {arr.shape}")
    if len(arr) == 0 and not allow_empty:
        raise ValueError(f"{what} is empty: give at least one id")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or infinite ids")
    if arr.dtype == object and pd.isna(arr).any():
        raise ValueError(f"{what} contains missing ids")
    check_whole_ids(arr, "", prefix=f"{what}: ")
    return arr


# ---------------------------------------------------------------- training data


@dataclass
class TrainData:
    """Encoded training ratings: int32 codes, float32 ratings, and their id maps."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    user_index: IdIndex
    item_index: IdIndex


def encode_train(data) -> TrainData:
    """Check training ratings (a frame or a tuple) and encode their ids as dense codes."""
    users, items, ratings = rating_arrays(data, need_rating=True, what="ratings")
    if len(users) == 0:
        raise ValueError("ratings is empty: there is nothing to fit")
    user_index = IdIndex(users)
    item_index = IdIndex(items)
    codes = []
    for what, raw, index in (("user", users, user_index), ("item", items, item_index)):
        code = index.encode(raw)
        # Every id is in its index; the kernels would write out of bounds if not.
        if code.min() < 0:
            bad = np.asarray(raw)[code < 0][0]
            raise ValueError(f"{what} id {bad!r} does not map back to itself as an id")
        codes.append(code)
    return TrainData(
        users=codes[0],
        items=codes[1],
        ratings=np.ascontiguousarray(ratings, dtype=np.float32),
        user_index=user_index,
        item_index=item_index,
    )
