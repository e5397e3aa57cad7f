"""Canonical ratings frames: loading, validating and cleaning them.

Every loader in the package returns the same *canonical frame*: a
:class:`pandas.DataFrame` with columns ``user``, ``item``, ``rating``
(``float32``) and, when the source has one, ``timestamp`` (``int64`` seconds).
Raw ids keep their type (integers or strings);
:class:`~latentfactors.data.ids.IdIndex` turns them into dense ``int32`` codes
for the kernels. Ids in a text file are read as numbers where they look like
numbers, so ``01`` and ``1`` are one id there: to keep zero-padded ids apart,
read the file with ``dtype=str`` and pass the frame. Reading a file into a
raw frame (compression, Parquet, separators, headers, line numbers) is
:mod:`latentfactors.data.files`' part.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from latentfactors.data.files import (
    damage_errors,
    file_format,
    read_parquet,
    read_text_file,
)
from latentfactors.data.ids import check_whole_ids

CANONICAL_COLUMNS = ("user", "item", "rating", "timestamp")
REQUIRED_COLUMNS = ("user", "item", "rating")
DUPLICATE_POLICIES = ("raise", "last", "first", "mean")

# Column names seen in the wild, mapped to canonical ones (case-insensitive).
_ALIASES = {
    "user": "user",
    "userid": "user",
    "user_id": "user",
    "uid": "user",
    "item": "item",
    "itemid": "item",
    "item_id": "item",
    "movieid": "item",
    "movie_id": "item",
    "iid": "item",
    "rating": "rating",
    "ratings": "rating",
    "score": "rating",
    "timestamp": "timestamp",
    "time": "timestamp",
    "ts": "timestamp",
}


# ------------------------------------------------------------- validating frames


def _row(row: int) -> str:
    """Where a row of a frame stands, for error messages (files say ``"line 5"``)."""
    return f"row {row}"


def _check_columns(columns):
    """Validate ``columns=``; return a list, a dict or None."""
    if columns is None:
        return None
    if isinstance(columns, Mapping):
        targets = list(columns.values())
        bad = [v for v in targets if v not in CANONICAL_COLUMNS]
        if bad:
            raise ValueError(f"columns must map to {list(CANONICAL_COLUMNS)}, got target(s) {bad}")
        twice = sorted({v for v in targets if targets.count(v) > 1})
        if twice:
            raise ValueError(f"columns maps several columns to {twice}")
        return dict(columns)
    if isinstance(columns, str) or not isinstance(columns, (Sequence, np.ndarray, pd.Index)):
        raise TypeError(
            "columns must be a list naming the columns in order or a mapping to "
            f"user/item/rating/timestamp, got {type(columns).__name__}"
        )
    names = list(columns)
    twice = sorted({c for c in names if c in CANONICAL_COLUMNS and names.count(c) > 1})
    if twice:
        raise ValueError(f"columns names {twice} more than once: {names}")
    return names


def _rename(frame: pd.DataFrame, mapping) -> pd.DataFrame:
    """Apply a user mapping, then recognise common names for the other columns."""
    rename = {}
    if mapping is not None:
        unknown = [c for c in mapping if c not in frame.columns]
        if unknown:
            raise ValueError(
                f"columns maps {unknown} but the data has columns {list(frame.columns)}"
            )
        rename.update(mapping)
    taken = set(rename.values())
    taken.update(c for c in frame.columns if c in CANONICAL_COLUMNS and c not in rename)
    for col in frame.columns:
        if col in rename or col in CANONICAL_COLUMNS:
            continue
        target = _ALIASES.get(str(col).strip().lower())
        if target and target not in taken:
            rename[col] = target
            taken.add(target)
    return frame.rename(columns=rename) if rename else frame


def _show(value) -> str:
    """``repr`` of a cell for error messages: ``nan``, not ``np.float64(nan)``."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _whole_ids(values: pd.Series, name: str, where: str, at: Callable[[int], str]) -> pd.Series:
    arr = values.to_numpy(dtype=np.float64)
    check_whole_ids(arr, name, where=where, at=at)
    return pd.Series(arr.astype(np.int64))


def _integer_ids(values: pd.Series) -> pd.Series:
    """int64 where the ids fit, else uint64, else their decimal strings."""
    if values.dtype.kind == "u" and len(values) and int(values.max()) > np.iinfo(np.int64).max:
        return values.astype(np.uint64)  # (an int64 cast would wrap these round)
    for dtype in (np.int64, np.uint64):
        try:
            return values.astype(dtype)
        except (OverflowError, ValueError, TypeError):
            continue
    return values.astype(str)


def _clean_ids(
    values: pd.Series, name: str, where: str = "", at: Callable[[int], str] = _row
) -> pd.Series:
    """Ids as int64 (integers, whole floats; uint64 for integers beyond int64) or
    strings; anything else is an error. ``at(row)`` says where a row is
    (``"row 3"``, or a file's ``"line 5"``)."""
    values = values.reset_index(drop=True)
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = pd.Series(np.asarray(values))
    missing = values.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"{name} ids are missing (NaN) in {int(missing.sum())} row(s){where}, e.g. {at(row)}"
        )
    if values.dtype.kind in "iu":
        return _integer_ids(values)
    if values.dtype.kind == "f":
        return _whole_ids(values, name, where, at)
    kind = pd.api.types.infer_dtype(values, skipna=False)
    if kind == "string":
        return values.astype(str)
    if kind == "integer":
        return _integer_ids(values)
    if kind in ("floating", "mixed-integer-float"):
        return _whole_ids(values, name, where, at)
    if kind == "mixed-integer":  # integers and strings: one type for IdIndex
        return values.astype(str)
    raise ValueError(
        f"{name} ids must be integers or strings, got {kind} values{where}, "
        f"e.g. {_show(values.iloc[0])}"
    )


def _clean_ratings(values: pd.Series, where: str, at: Callable[[int], str] = _row) -> np.ndarray:
    values = values.reset_index(drop=True)
    if values.dtype.kind == "b" or pd.api.types.infer_dtype(values, skipna=True) == "boolean":
        raise ValueError(
            f"ratings are True/False{where}; ratings must be numbers (convert with "
            ".astype(float) if 1.0/0.0 is meant)"
        )
    rating = pd.to_numeric(values, errors="coerce")
    bad = (rating.isna() & values.notna()).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"non-numeric rating {_show(values.iloc[row])} at {at(row)}{where}; "
            "ratings must be numbers"
        )
    out = rating.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(out)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"{int((~finite).sum())} rating(s) are NaN or infinite{where}, e.g. {at(row)}; "
            "drop or fill them first"
        )
    check_float32_range(out, where=where)
    return out.astype(np.float32)


def check_float32_range(ratings: np.ndarray, *, prefix: str = "", where: str = ""):
    """Refuse finite ratings that would become infinite as ``float32``."""
    huge = np.abs(ratings.astype(np.float64, copy=False)) > np.finfo(np.float32).max
    if huge.any():
        row = int(np.flatnonzero(huge)[0])
        raise ValueError(
            f"{prefix}rating {float(ratings[row]):g} at row {row}{where} is beyond float32's "
            "range (about 3.4e38), in which ratings are stored; rescale the ratings"
        )


def _clean_timestamps(values: pd.Series, where: str, at: Callable[[int], str] = _row) -> np.ndarray:
    """Timestamps as int64 Unix seconds, from numbers of seconds, datetimes or ISO 8601 text.

    Dates and date-times without a time zone are taken as UTC.
    """
    ts = values.reset_index(drop=True)
    missing = ts.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValueError(f"timestamp is missing at {at(row)}{where}")
    if ts.dtype == object and pd.api.types.infer_dtype(ts) in ("datetime", "datetime64"):
        ts = pd.to_datetime(ts, utc=True)
    if not pd.api.types.is_datetime64_any_dtype(ts):
        num = pd.to_numeric(ts, errors="coerce")
        seconds = num.to_numpy(dtype=np.float64, na_value=np.nan)
        number = np.isfinite(seconds)
        if number.all():
            if num.dtype.kind in "iu":
                return num.to_numpy().astype(np.int64)
            return seconds.astype(np.int64)
        # Text such as 2020-01-31 or 2020-01-31T12:00:00Z: read it as dates.
        dates = pd.to_datetime(ts, utc=True, format="ISO8601", errors="coerce")
        date = dates.notna().to_numpy()
        neither = ~number & ~date
        if neither.any():
            row = int(np.flatnonzero(neither)[0])
            raise ValueError(
                f"timestamp {_show(ts.iloc[row])} at {at(row)}{where} is neither a number of "
                "seconds nor an ISO 8601 date or date-time (such as 2020-01-31 or "
                "2020-01-31T12:00:00Z)"
            )
        if not date.all():
            n, d = int(np.flatnonzero(~date)[0]), int(np.flatnonzero(~number)[0])
            raise ValueError(
                f"timestamps mix numbers of seconds ({_show(ts.iloc[n])} at {at(n)}) and dates "
                f"({_show(ts.iloc[d])} at {at(d)}){where}; write them all one way"
            )
        ts = dates
    if ts.dt.tz is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts.astype("datetime64[s]").to_numpy().astype(np.int64)


def _handle_duplicates(frame: pd.DataFrame, duplicates: str) -> pd.DataFrame:
    dup = frame.duplicated(["user", "item"], keep=False)
    if not dup.any():
        return frame
    if duplicates == "raise":
        pairs = frame.loc[dup, ["user", "item"]].drop_duplicates().head(3)
        shown = ", ".join(f"(user={u!r}, item={i!r})" for u, i in pairs.itertuples(index=False))
        n = int(frame.duplicated(["user", "item"]).sum())
        raise ValueError(
            f"{n} duplicate (user, item) rating(s), e.g. {shown}; pass duplicates='last' to "
            "keep the last rating of each pair, or duplicates='mean' to average them"
        )
    if duplicates in ("last", "first"):
        out = frame.drop_duplicates(["user", "item"], keep=duplicates)
        return out.reset_index(drop=True)
    agg = {"rating": "mean"}
    if "timestamp" in frame.columns:
        agg["timestamp"] = "max"
    frame = frame.assign(rating=frame["rating"].astype(np.float64))
    out = frame.groupby(["user", "item"], sort=False, as_index=False).agg(agg)
    out["rating"] = out["rating"].astype(np.float32)
    return out


def canonicalize(
    frame: pd.DataFrame,
    *,
    duplicates: str = "raise",
    source=None,
    id_dtype=None,
    lines: Callable[[int], str] | None = None,
) -> pd.DataFrame:
    """Validate a frame with user/item/rating[/timestamp] columns; return a canonical copy.

    ``id_dtype=str`` turns the ids into strings; ``lines(row)`` names where a
    row stands in its file (``"line 5"``) for error messages.
    """
    at = lines or _row
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
    where = f" in {source}" if source is not None else ""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        hint = (
            "; if the file has no header row, pass columns as a list naming them in order"
            if source is not None
            else ""
        )
        raise ValueError(
            f"missing column(s) {missing}{where}; found {list(frame.columns)}. Pass columns= "
            'as a mapping, e.g. columns={"userId": "user", "movieId": "item", "stars": "rating"}'
            f"{hint}"
        )
    twice = [c for c in CANONICAL_COLUMNS if list(frame.columns).count(c) > 1]
    if twice:
        raise ValueError(f"several columns are named {twice}{where}; keep one of each")
    if len(frame) == 0:
        raise ValueError(f"no ratings{where}: the data is empty")
    out = pd.DataFrame(
        {
            "user": _clean_ids(frame["user"], "user", where, at),
            "item": _clean_ids(frame["item"], "item", where, at),
            "rating": _clean_ratings(frame["rating"], where, at),
        }
    )
    if id_dtype is str:
        out = out.astype({"user": str, "item": str})
    if "timestamp" in frame.columns:
        out["timestamp"] = _clean_timestamps(frame["timestamp"], where, at)
    return _handle_duplicates(out, duplicates)


def load_ratings(
    source, *, columns=None, sep=None, duplicates="raise", id_dtype=None
) -> pd.DataFrame:
    """Read ratings from a file or a DataFrame into the canonical frame.

    Parameters
    ----------
    source : str, os.PathLike or pandas.DataFrame
        A delimited text file (CSV, TSV, ``::``- or space-separated), plain or
        compressed (``.gz``, ``.bz2``, ``.xz``, ``.zst``, or a ``.zip`` holding
        one file), a Parquet file, or a frame. Compression and Parquet are
        recognised by their first bytes (a gzip file need not end in ``.gz``);
        ``.zst`` needs the ``zstandard`` package and Parquet ``pyarrow``.
    columns : list of str or dict, optional
        A list names a headerless file's (or a frame's) columns in order, e.g.
        ``["user", "item", "rating"]`` (extra columns may be named anything and
        are dropped). A dict maps the source's column names to ``user``,
        ``item``, ``rating`` and ``timestamp``. By default common names
        (``userId``, ``movieId``, ``item_id``, ...) are recognised, and a
        headerless file with 3 or 4 columns is read as user, item, rating
        [, timestamp].
    sep : str, optional
        The field separator; sniffed from the first line (of the decompressed
        text) when omitted.
    duplicates : {"raise", "last", "first", "mean"}
        What to do with repeated (user, item) pairs.
    id_dtype : None or str
        ``str`` reads the ids as strings, exactly as a text file writes them
        (``"001"`` stays ``"001"``; ids in a frame or a Parquet file are
        converted, whole-number floats as integers: ``1.0`` becomes ``"1"``).
        By default ids that look like integers are read as integers.

    Returns
    -------
    pandas.DataFrame
        Columns ``user``, ``item``, ``rating`` (float32) and ``timestamp``
        (int64 seconds) when present. Integer ids (and whole-number float ids)
        are int64, string ids stay strings; ids mixing integers and strings are
        all read as strings. In a file, ids that look like integers are read
        as integers, so zero-padded ``01`` and ``1`` are the same id unless
        ``id_dtype=str``. Timestamps may be numbers of seconds or ISO 8601
        dates and date-times (``2020-01-31``, ``2020-01-31T12:00:00Z``; UTC
        when no zone is given), read as Unix seconds.

    Raises
    ------
    ValueError
        A malformed, damaged or ambiguous file (errors name the file's 1-based
        line, counting the header), or invalid values.
    FileNotFoundError
        If the file does not exist.
    ImportError
        A ``.zst`` file without ``zstandard``, or Parquet without ``pyarrow``.
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
    if id_dtype not in (None, str):
        raise ValueError(f"id_dtype must be None or str, got {id_dtype!r}")
    columns = _check_columns(columns)
    name, lines = None, None
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        if not os.path.exists(name):
            raise FileNotFoundError(f"ratings file not found: {name}")
        fmt = file_format(name)
        if fmt == "parquet":
            source = read_parquet(name)
        else:
            damaged = damage_errors(name, fmt)
            try:
                frame, lines = read_text_file(name, columns, sep, fmt, str if id_dtype else None)
            except damaged as exc:
                raise ValueError(
                    f"{name} is not readable {fmt} data (damaged or cut short?): {exc}"
                ) from exc
    elif not isinstance(source, pd.DataFrame):
        raise TypeError(f"source must be a path or a pandas.DataFrame, got {type(source).__name__}")
    if isinstance(source, pd.DataFrame):
        frame = source
        if isinstance(columns, list):
            if len(columns) != frame.shape[1]:
                raise ValueError(
                    f"columns names {len(columns)} columns but the frame has {frame.shape[1]}"
                )
            frame = frame.set_axis(columns, axis=1)
    frame = _rename(frame, columns if isinstance(columns, dict) else None)
    return canonicalize(frame, duplicates=duplicates, source=name, id_dtype=id_dtype, lines=lines)
