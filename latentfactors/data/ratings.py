"""Canonical ratings frames: reading and validating them.

Every loader in the package returns the same *canonical frame*: a
:class:`pandas.DataFrame` with columns ``user``, ``item``, ``rating``
(``float32``) and, when the source has one, ``timestamp`` (``int64`` seconds).
Raw ids keep their type (integers or strings);
:class:`~latentfactors.data.ids.IdIndex` turns them into dense ``int32`` codes
for the kernels. Ids in a text file are read as numbers where they look like
numbers, so ``01`` and ``1`` are one id there: to keep zero-padded ids apart,
read the file with ``dtype=str`` and pass the frame.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

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


# ----------------------------------------------------------------- reading files


def _first_line(path) -> str:
    """The first non-blank line of a text file (BOM and line ending removed)."""
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for line in fh:
            if line.strip():
                return line.strip()
    raise ValueError(f"{path} is empty: there are no ratings to read")


_SEPARATORS = ("\t", ",", ";", "|")


def sniff_separator(lines) -> str:
    r"""The field separator of delimited text, from its first lines.

    ``"::"`` when the first line holds it (MovieLens ``.dat`` files); else the
    first of tab, comma, semicolon and ``|`` that splits every line into the
    same number (two or more) of fields, quotes respected, so that a
    ``|``-separated file whose fields hold commas is split on ``|``; else the
    first of them found in the first line; else runs of whitespace (``r"\s+"``).

    Parameters
    ----------
    lines : sequence of str
        The first lines of the text (one is enough for ratings files; blank
        lines are ignored).

    Returns
    -------
    str
        A separator as :func:`pandas.read_csv` takes it.
    """
    lines = [line for line in lines if line.strip()]
    if not lines:
        return r"\s+"
    first = lines[0]
    if "::" in first:
        return "::"
    for sep in _SEPARATORS:
        counts = {len(row) for row in csv.reader(lines, delimiter=sep)}
        if len(counts) == 1 and counts.pop() >= 2:
            return sep
    for sep in _SEPARATORS:
        if sep in first:
            return sep
    return r"\s+"


def _split(line: str, sep: str) -> list[str]:
    if sep == r"\s+":
        return line.split()
    if len(sep) == 1:
        return next(csv.reader([line], delimiter=sep, skipinitialspace=True), [])
    if sep == "::":
        return line.split("::")
    return re.split(sep, line)


def _looks_numeric(fields: Sequence[str]) -> bool:
    try:
        [float(f) for f in fields]
    except ValueError:
        return False
    return True


def _read_delimited(path, sep: str, header) -> pd.DataFrame:
    if sep != "::":
        return pd.read_csv(path, sep=sep, header=header, skipinitialspace=True)
    # The C parser needs a one-character separator: "a::b" split on ":" puts an
    # empty field between the values, which is dropped. A field holding a single
    # ":" breaks that pattern; the slower python parser then splits on "::".
    try:
        frame = pd.read_csv(path, sep=":", header=header, skipinitialspace=True)
    except pd.errors.ParserError:
        frame = None
    if frame is not None and frame.shape[1] % 2 == 1 and frame.iloc[:, 1::2].isna().all().all():
        return frame.iloc[:, ::2]
    return pd.read_csv(path, sep="::", header=header, engine="python")


def _read_file(path, columns, sep) -> pd.DataFrame:
    if not os.path.exists(path):
        raise FileNotFoundError(f"ratings file not found: {path}")
    first = _first_line(path)
    if sep is None:
        sep = sniff_separator([first])
    names = list(columns) if isinstance(columns, list) else None
    if names is None:
        fields = _split(first, sep)
        if _looks_numeric(fields):
            if columns is not None:
                raise ValueError(
                    f"{path} has no header row, so a column mapping cannot be applied; "
                    "pass columns as a list naming the columns in order, "
                    'e.g. columns=["user", "item", "rating"]'
                )
            if len(fields) not in (3, 4):
                raise ValueError(
                    f"{path} has no header row and {len(fields)} columns; pass columns as a "
                    'list naming them in order, e.g. columns=["user", "item", "rating", "skip"]'
                )
            names = list(CANONICAL_COLUMNS[: len(fields)])
    try:
        frame = _read_delimited(path, sep, header=None if names is not None else 0)
    except pd.errors.ParserError as exc:
        raise ValueError(f"{path} is not a well-formed delimited file: {exc}") from exc
    except pd.errors.EmptyDataError as exc:
        raise ValueError(f"{path} is empty: there are no ratings to read") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not a UTF-8 text file: {exc}") from exc
    # The reader drops the spaces after a separator; drop those before one too,
    # so that "a ,b" and "a,b" name the same ids.
    for col in frame.columns:
        column = frame[col]
        if column.dtype.kind in "OT" and pd.api.types.infer_dtype(column) == "string":
            frame[col] = column.str.rstrip(" \t")
    frame.columns = [c.rstrip(" \t") if isinstance(c, str) else c for c in frame.columns]
    if names is None:
        return frame
    if frame.shape[1] != len(names):
        raise ValueError(
            f"{path} has {frame.shape[1]} columns but columns names {len(names)}: {names}"
        )
    frame = frame.set_axis(names, axis=1)
    if isinstance(columns, list) and "rating" in names and len(frame) > 1:
        rating = pd.to_numeric(frame["rating"], errors="coerce")
        if pd.isna(rating.iloc[0]) and rating.iloc[1:].notna().all():
            raise ValueError(
                f"the first line of {path} looks like a header ({first!r}); pass columns as "
                "a mapping from those names, e.g. "
                'columns={"userId": "user", "movieId": "item", "stars": "rating"}'
            )
    return frame


# ------------------------------------------------------------- validating frames


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


def _whole_ids(values: pd.Series, name: str, where: str) -> pd.Series:
    arr = values.to_numpy(dtype=np.float64)
    whole = np.isfinite(arr) & (arr == np.round(arr))
    if not whole.all():
        row = int(np.flatnonzero(~whole)[0])
        raise ValueError(
            f"{name} id {_show(arr[row])} at row {row}{where} is not a whole number; "
            "ids must be integers or strings"
        )
    exact = np.abs(arr) <= 2.0**53  # beyond, floats cannot tell neighbouring ids apart
    if not exact.all():
        row = int(np.flatnonzero(~exact)[0])
        raise ValueError(
            f"{name} id {_show(arr[row])} at row {row}{where} is a float beyond 2**53, where "
            "neighbouring ids round to the same value; read the ids as integers or strings"
        )
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


def _clean_ids(values: pd.Series, name: str, where: str = "") -> pd.Series:
    """Ids as int64 (integers, whole floats; uint64 for integers beyond int64) or
    strings; anything else is an error."""
    values = values.reset_index(drop=True)
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = pd.Series(np.asarray(values))
    missing = values.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"{name} ids are missing (NaN) in {int(missing.sum())} row(s){where}, e.g. row {row}"
        )
    if values.dtype.kind in "iu":
        return _integer_ids(values)
    if values.dtype.kind == "f":
        return _whole_ids(values, name, where)
    kind = pd.api.types.infer_dtype(values, skipna=False)
    if kind == "string":
        return values.astype(str)
    if kind == "integer":
        return _integer_ids(values)
    if kind in ("floating", "mixed-integer-float"):
        return _whole_ids(values, name, where)
    if kind == "mixed-integer":  # integers and strings: one type for IdIndex
        return values.astype(str)
    raise ValueError(
        f"{name} ids must be integers or strings, got {kind} values{where}, "
        f"e.g. {_show(values.iloc[0])}"
    )


def _clean_ratings(values: pd.Series, where: str) -> np.ndarray:
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
            f"non-numeric rating {_show(values.iloc[row])} at row {row}{where}; "
            "ratings must be numbers"
        )
    out = rating.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(out)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"{int((~finite).sum())} rating(s) are NaN or infinite{where}, e.g. row {row}; "
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


def _clean_timestamps(values: pd.Series, where: str) -> np.ndarray:
    ts = values.reset_index(drop=True)
    if ts.dtype == object and pd.api.types.infer_dtype(ts) in ("datetime", "datetime64"):
        ts = pd.to_datetime(ts, utc=True)
    if pd.api.types.is_datetime64_any_dtype(ts):
        missing = ts.isna().to_numpy()
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise ValueError(f"timestamp is missing (NaT) at row {row}{where}")
        if ts.dt.tz is not None:
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        return ts.astype("datetime64[s]").to_numpy().astype(np.int64)
    num = pd.to_numeric(ts, errors="coerce")
    seconds = num.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(seconds)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"timestamp {_show(ts.iloc[row])} at row {row}{where} is not a number of seconds; "
            "convert dates with pandas.to_datetime first"
        )
    if num.dtype.kind in "iu":
        return num.to_numpy().astype(np.int64)
    return seconds.astype(np.int64)


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


def canonicalize(frame: pd.DataFrame, *, duplicates: str = "raise", source=None) -> pd.DataFrame:
    """Validate a frame with user/item/rating[/timestamp] columns; return a canonical copy."""
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
            "user": _clean_ids(frame["user"], "user", where),
            "item": _clean_ids(frame["item"], "item", where),
            "rating": _clean_ratings(frame["rating"], where),
        }
    )
    if "timestamp" in frame.columns:
        out["timestamp"] = _clean_timestamps(frame["timestamp"], where)
    return _handle_duplicates(out, duplicates)


def load_ratings(source, *, columns=None, sep=None, duplicates="raise") -> pd.DataFrame:
    """Read ratings from a file or a DataFrame into the canonical frame.

    Parameters
    ----------
    source : str, os.PathLike or pandas.DataFrame
        A delimited text file (CSV, TSV, ``::``- or space-separated) or a frame.
    columns : list of str or dict, optional
        A list names a headerless file's (or a frame's) columns in order, e.g.
        ``["user", "item", "rating"]`` (extra columns may be named anything and
        are dropped). A dict maps the source's column names to ``user``,
        ``item``, ``rating`` and ``timestamp``. By default common names
        (``userId``, ``movieId``, ``item_id``, ...) are recognised, and a
        headerless file with 3 or 4 columns is read as user, item, rating
        [, timestamp].
    sep : str, optional
        The field separator; sniffed from the first line when omitted.
    duplicates : {"raise", "last", "first", "mean"}
        What to do with repeated (user, item) pairs.

    Returns
    -------
    pandas.DataFrame
        Columns ``user``, ``item``, ``rating`` (float32) and ``timestamp``
        (int64 seconds) when present. Integer ids (and whole-number float ids)
        are int64, string ids stay strings; ids mixing integers and strings are
        all read as strings. In a file, ids that look like integers are read
        as integers, so zero-padded ``01`` and ``1`` are the same id; read such
        a file with ``pandas.read_csv(path, dtype=str)`` and pass the frame to
        keep them apart.
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
    columns = _check_columns(columns)
    if isinstance(source, pd.DataFrame):
        frame = source
        if isinstance(columns, list):
            if len(columns) != frame.shape[1]:
                raise ValueError(
                    f"columns names {len(columns)} columns but the frame has {frame.shape[1]}"
                )
            frame = frame.set_axis(columns, axis=1)
        name = None
    elif isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        frame = _read_file(name, columns, sep)
    else:
        raise TypeError(f"source must be a path or a pandas.DataFrame, got {type(source).__name__}")
    frame = _rename(frame, columns if isinstance(columns, dict) else None)
    return canonicalize(frame, duplicates=duplicates, source=name)
