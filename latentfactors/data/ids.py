"""Raw ids to dense codes and back: :class:`IdIndex`, and reading id arrays exactly.

Raw ids are integers or strings, as the ratings give them; the kernels index
arrays by dense ``int32`` codes ``0..n-1``. Codes follow the sorted raw ids,
so they do not depend on the order of the ratings.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = ["IdIndex", "as_id_array", "check_whole_ids"]


def _normalize_ids(values: np.ndarray) -> np.ndarray:
    """Give an object array of ids one concrete dtype: unicode, int64, uint64 or float64.

    Strings come back without their duplicates (the caller keeps only distinct ids).
    """
    if values.dtype != object:
        return values
    # The kind of the whole array first: pd.unique would take True for 1.
    kind = pd.api.types.infer_dtype(values, skipna=False)
    if kind == "string":
        values = pd.unique(values)  # fewer strings to convert and check
        out = values.astype(str)
        # NumPy's unicode arrays drop trailing NUL characters: "a\x00" would become "a"
        lengths = pd.Series(values, dtype=object).str.len().to_numpy()
        if not np.array_equal(np.char.str_len(out), lengths):
            bad = next(v for v in values if v.endswith("\x00"))
            raise ValueError(
                f"id {bad!r} ends with a NUL character ('\\x00'), which NumPy string arrays "
                "cannot hold: it would merge with the id without it; strip or replace "
                "the NULs first, e.g. with .str.rstrip('\\x00')"
            )
        return out
    if kind in ("integer", "empty"):
        try:
            return values.astype(np.int64)
        except OverflowError:
            try:  # ids from 2**63 up, as uint64 columns hold them
                return values.astype(np.uint64)
            except OverflowError:
                raise ValueError(
                    f"integer ids must fit in 64 bits, got ids such as {_show_ids(values)}; "
                    "read them as strings instead"
                ) from None
    if kind in ("floating", "mixed-integer-float"):
        return values.astype(np.float64)
    raise TypeError(
        f"ids must be all integers or all strings, got {kind} values such as "
        f"{values[:3].tolist()}; convert them to one type first, e.g. with .astype(str)"
    )


_ID_KINDS = {"b": "booleans", "c": "complex numbers", "M": "dates", "m": "time spans"}


def _check_id_dtype(values: np.ndarray) -> None:
    """Ids are integers, strings or whole floats: refuse booleans, dates and the like,
    which NumPy and pandas would otherwise compare equal to some integer."""
    kind = values.dtype.kind
    if kind == "O" and len(values) and isinstance(values[0], (bool, np.bool_)):
        kind = "b"
    if kind in _ID_KINDS or kind in "SV":
        what = _ID_KINDS.get(kind, f"{values.dtype} values")
        raise TypeError(
            f"ids must be integers or strings, got {what} such as {_show_ids(values)}; "
            "convert them first, e.g. with .astype(int) or .astype(str)"
        )


def as_id_array(values) -> np.ndarray:
    """``np.asarray`` for ids, keeping Python integers beyond 2**53 exact.

    NumPy reads a list that mixes such an integer with smaller ones, e.g.
    ``[5, 2**64 - 1]``, as float64, which cannot tell neighbouring ids apart:
    such a list is kept as Python integers instead. Floats narrower than
    float64 are widened (pandas has no index of float16).
    """
    arr = np.asarray(values)
    if arr.dtype.kind == "f" and isinstance(values, (list, tuple)):
        exact = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
        if exact and max(abs(v) for v in exact) > 2**53:
            arr = np.asarray(values, dtype=object)
    if arr.dtype.kind == "f" and arr.dtype.itemsize < 8:
        arr = arr.astype(np.float64)
    return arr


def check_whole_ids(
    values: np.ndarray,
    name: str,
    *,
    prefix: str = "",
    where: str = "",
    at: Callable[[int], str] | None = None,
) -> None:
    """Refuse float ids that are not whole numbers, or too large to tell apart.

    The one rule for float ids, wherever they come from (a file, a frame, a
    tuple of arrays): ``3.0`` is the id 3, ``0.5`` is no id, and beyond 2**53
    neighbouring ids round to the same float. NaN and infinities are no whole
    numbers either (callers that report them as missing do so first). Ids
    of other types pass unchecked.

    Parameters
    ----------
    values : numpy.ndarray, 1-D
    name : str
        ``"user"`` or ``"item"``, for the message (``""``: just "id").
    prefix, where : str
        Put before the message and after the row (``"ratings: "``, ``" in r.csv"``).
    at : callable, optional
        ``at(row)`` names where a row stands (``"line 5"``); default ``"row 3"``.

    Raises
    ------
    ValueError
        Naming the first offending id and where it stands.
    """
    if values.dtype.kind == "O":
        if not len(values) or pd.api.types.infer_dtype(values, skipna=True) not in (
            "floating",
            "mixed-integer-float",
        ):
            return
    elif values.dtype.kind != "f":
        return
    values = values.astype(np.float64, copy=False)  # float16 cannot hold 2**53
    at = at or (lambda row: f"row {row}")
    label = f"{name} id" if name else "id"
    finite = np.isfinite(values)
    bad = ~(finite & (values == np.round(values)))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{prefix}{label} {float(values[row])!r} at {at(row)}{where} is not a whole "
            "number; ids must be integers or strings"
        )
    huge = finite & (np.abs(values) > 2.0**53)
    if huge.any():
        row = int(np.flatnonzero(huge)[0])
        raise ValueError(
            f"{prefix}{label} {float(values[row])!r} at {at(row)}{where} is a float beyond "
            "2**53, where neighbouring ids round to the same value; read the ids as integers "
            "or strings"
        )


def _lookup_index(values: np.ndarray) -> pd.Index:
    """A pandas index of ids that keeps strings as Python objects.

    pandas would store strings in Arrow when pyarrow is installed, which
    cannot hold every Python string (a lone surrogate such as ``"\\ud800"``
    fails to encode); an object index holds any, with or without pyarrow.
    """
    if values.dtype.kind in "UO":
        return pd.Index(values, dtype=object)
    return pd.Index(values)


def _show_ids(values: np.ndarray) -> str:
    return ", ".join(map(repr, np.asarray(values)[:3].tolist()))


class IdIndex:
    """Map raw ids (integers or strings) to dense ``int32`` codes ``0..n-1`` and back.

    Parameters
    ----------
    ids : array-like
        The known raw ids, all integers or all strings. Duplicates are dropped
        and the ids are sorted, so that the codes do not depend on the order of
        the ratings.

    Raises
    ------
    TypeError
        If the ids mix types (e.g. integers and strings): they could not be
        saved without pickling and read back unchanged.
    ValueError
        If an id is missing (NaN or None).

    Notes
    -----
    :meth:`encode` maps unknown ids to ``-1`` without raising: callers decide
    whether an unknown id is an error (fitting) or a cold start (predicting).
    It does raise when no id is known because they are of the other type
    (strings for integer ids, or the reverse): that is a mistake, not a batch
    of new users.
    """

    def __init__(self, ids):
        values = as_id_array(ids).ravel()
        if values.dtype.kind in "fO" and pd.isna(values).any():
            raise ValueError("ids contain missing values (NaN or None)")
        values = _normalize_ids(values)
        _check_id_dtype(values)
        values = np.sort(pd.unique(values))
        if len(values) >= np.iinfo(np.int32).max:
            raise ValueError(f"too many distinct ids ({len(values):,}) for int32 codes")
        self._index = _lookup_index(values)
        self._ids = values

    @property
    def ids(self) -> np.ndarray:
        """The raw ids, in code order (``ids[code] == raw id``)."""
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, raw_id) -> bool:
        return raw_id in self._index

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, IdIndex)
            and self._ids.dtype.kind == other._ids.dtype.kind
            and np.array_equal(self._ids, other._ids)
        )

    __hash__ = None

    def __repr__(self) -> str:
        more = ", ..." if len(self) > 3 else ""
        return f"IdIndex(n={len(self):,}: [{_show_ids(self._ids)}{more}])"

    def encode(self, values) -> np.ndarray:
        """Raw ids to ``int32`` codes; unknown ids become ``-1``.

        Parameters
        ----------
        values : array-like of raw ids, shape (n,)

        Returns
        -------
        numpy.ndarray of int32, shape (n,)

        Raises
        ------
        TypeError
            If no id is known and they are strings where the known ids are
            numbers, or numbers where they are strings.
        """
        values = as_id_array(values)
        if values.ndim != 1:
            values = values.ravel()
        if len(values) == 0:
            return np.empty(0, dtype=np.int32)
        _check_id_dtype(values)
        if self._ids.dtype.kind in "iu" and values.dtype.kind == "f":
            # Integer ids that passed through a float column (e.g. after a join).
            big = np.isfinite(values) & (np.abs(values) > 2**53)
            if big.any():
                raise ValueError(
                    f"float ids beyond 2**53 such as {_show_ids(values[big])} cannot be "
                    "told from their neighbours; pass the ids as integers"
                )
            whole = np.isfinite(values) & (values == np.round(values))
            codes = np.full(len(values), -1, dtype=np.int32)
            if whole.any():
                codes[whole] = self._index.get_indexer(values[whole].astype(np.int64))
            return codes
        codes = self._index.get_indexer(_lookup_index(values)).astype(np.int32, copy=False)
        if len(self) and codes.max() < 0:
            self._check_id_type(values)
        return codes

    def _check_id_type(self, values: np.ndarray) -> None:
        """Refuse ids of the other type: strings for numeric ids, or the reverse."""
        first = values[0]
        given = "strings" if isinstance(first, (str, np.str_)) else None
        if given is None and isinstance(first, (int, float, np.integer, np.floating)):
            given = "numbers"
        known = "strings" if self._ids.dtype.kind == "U" else "numbers"
        if given is None or given == known:
            return
        convert = ".astype(str)" if known == "strings" else ".astype(int)"
        raise TypeError(
            f"no id is known: the ids given are {given} (e.g. {_show_ids(values)}) but this "
            f"model's ids are {known} (e.g. {_show_ids(self._ids)}); "
            f"convert them, e.g. with {convert}"
        )

    def decode(self, codes) -> np.ndarray:
        """``int32`` codes back to raw ids.

        Raises
        ------
        TypeError
            If the codes are not integers.
        IndexError
            If a code is outside ``0..n-1``.
        """
        codes = np.asarray(codes)
        if codes.size == 0:
            return self._ids[codes.astype(np.intp)]
        if codes.dtype.kind not in "iu":
            raise TypeError(f"codes must be integers, got dtype {codes.dtype}")
        if codes.min() < 0 or codes.max() >= len(self):
            bad = codes[(codes < 0) | (codes >= len(self))][0]
            raise IndexError(f"code {bad} is out of range for an IdIndex of {len(self)} ids")
        return self._ids[codes]

    def to_array(self) -> np.ndarray:
        """The ids as an array that :func:`numpy.save` stores without pickling.

        String ids come back as a numpy unicode array, never ``object``.
        """
        return self._ids

    @classmethod
    def from_array(cls, array) -> IdIndex:
        """Rebuild an index saved with :meth:`to_array`, keeping the code order."""
        ids = as_id_array(array)
        if ids.ndim != 1:
            raise ValueError(f"saved ids must be a 1-D array, got shape {ids.shape}")
        ids = _normalize_ids(ids)
        index = _lookup_index(ids)
        if not index.is_unique:
            raise ValueError("saved ids contain duplicates: they are not an IdIndex")
        obj = cls.__new__(cls)
        obj._ids = ids
        obj._index = index
        return obj
