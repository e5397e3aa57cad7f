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

import bz2
import contextlib
import csv
import gzip
import io
import lzma
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

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


# ----------------------------------------------------------------- reading files

# Compressed and binary formats, known by their first bytes (the "magic")...
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty archive
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"PAR1", "parquet"),
)
# ... and by their file name, when the bytes do not say.
_EXTENSIONS = {
    ".gz": "gzip",
    ".gzip": "gzip",
    ".bz2": "bz2",
    ".zip": "zip",
    ".xz": "xz",
    ".zst": "zstd",
    ".zstd": "zstd",
    ".parquet": "parquet",
}
# Folders and macOS metadata that zip tools add beside the one data file.
_ZIP_NOISE = ("__MACOSX/", ".DS_Store")


def _file_format(path: str) -> str:
    """``"text"``, ``"parquet"`` or a compression (``"gzip"``, ``"bz2"``, ``"zip"``, ...).

    The first bytes decide; the extension only confirms them, so a gzip file
    without ``.gz`` is still read as gzip, and a ``.gz`` that is not gzip data
    is refused rather than parsed as text.
    """
    with open(path, "rb") as fh:
        head = fh.read(8)
    found = next((fmt for magic, fmt in _MAGIC if head.startswith(magic)), None)
    if found == "bz2" and not head[3:4].isdigit():  # "BZh" then the block size 1-9
        found = None
    if found is not None:
        return found
    ext = os.path.splitext(path)[1].lower()
    named = _EXTENSIONS.get(ext)
    if named is not None and head:
        raise ValueError(
            f"{path} ends in {ext} but is not {named} data (it starts with {head[:4]!r}); "
            f"rename it if it is plain text"
        )
    return "text"


def _zip_member(zf: zipfile.ZipFile, path: str) -> zipfile.ZipInfo:
    members = [
        m
        for m in zf.infolist()
        if not m.is_dir() and not any(noise in m.filename for noise in _ZIP_NOISE)
    ]
    if len(members) != 1:
        names = ", ".join(m.filename for m in members) or "no file"
        raise ValueError(
            f"{path} holds {len(members)} files ({names}); a ratings archive must hold exactly "
            "one: unzip it and pass the ratings file"
        )
    return members[0]


def _zstandard(path: str):
    try:
        import zstandard
    except ImportError:
        raise ImportError(
            f"{path} is zstd-compressed, which needs the zstandard package: "
            "pip install zstandard (or decompress the file first)"
        ) from None
    return zstandard


@contextlib.contextmanager
def _open_binary(path: str, fmt: str):
    """The decompressed bytes of a ``"text"`` or compressed file, as a binary stream."""
    with contextlib.ExitStack() as stack:
        if fmt == "gzip":
            stream = gzip.open(path, "rb")
        elif fmt == "bz2":
            stream = bz2.open(path, "rb")
        elif fmt == "xz":
            stream = lzma.open(path, "rb")
        elif fmt == "zstd":
            stream = _zstandard(path).open(path, "rb")
        elif fmt == "zip":
            zf = stack.enter_context(zipfile.ZipFile(path))
            stream = zf.open(_zip_member(zf, path))
        else:
            stream = open(path, "rb")  # noqa: SIM115 - closed by the stack
        yield stack.enter_context(stream)


def _damaged(path: str, fmt: str) -> tuple[type[BaseException], ...]:
    """The errors by which a decompressor says its data is damaged or cut short."""
    if fmt == "text":
        return ()
    errors = (EOFError, OSError, lzma.LZMAError, zlib.error, zipfile.BadZipFile)
    if fmt == "zstd":
        errors += (_zstandard(path).ZstdError,)
    return errors


def _first_line(path: str, fmt: str) -> str:
    """The first non-blank line of a text file (BOM and line ending removed)."""
    with _open_binary(path, fmt) as raw:
        for line in io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace"):
            if line.strip():
                return line.strip()
    raise ValueError(f"{path} is empty: there are no ratings to read")


class _LineNumbers:
    """The file's 1-based line number of each data row, counted on first use.

    The reader skips blank lines (and the header), so a row's number is not
    its line's: errors name the line, which an editor shows.
    """

    def __init__(self, path: str, fmt: str, header: bool):
        self._path, self._fmt, self._header = path, fmt, header
        self._lines: list[int] | None = None

    def __call__(self, row: int) -> str:
        if self._lines is None:
            with _open_binary(self._path, self._fmt) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace")
                self._lines = [n for n, line in enumerate(text, 1) if line.strip()]
            del self._lines[: int(self._header)]
        if row < len(self._lines):
            return f"line {self._lines[row]}"
        return f"row {row}"  # a quoted field spanning lines: count rows instead


def _row(row: int) -> str:
    return f"row {row}"


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
    """Whether a line's fields are numbers, so that it is data, not a header.

    Empty fields are no names: ``1,2,4,`` (a trailing separator) is data.
    """
    values = [f for f in fields if f.strip()]
    try:
        [float(f) for f in values]
    except ValueError:
        return False
    return bool(values)


def _read_delimited(path: str, fmt: str, sep: str, header, dtype) -> pd.DataFrame:
    options = dict(header=header, dtype=dtype, skipinitialspace=True)
    if sep != "::":
        with _open_binary(path, fmt) as raw:
            return pd.read_csv(raw, sep=sep, **options)
    # The C parser needs a one-character separator: "a::b" split on ":" puts an
    # empty field between the values, which is dropped. A field holding a single
    # ":" breaks that pattern; the slower python parser then splits on "::".
    try:
        with _open_binary(path, fmt) as raw:
            frame = pd.read_csv(raw, sep=":", **options)
    except pd.errors.ParserError:
        frame = None
    if frame is not None and frame.shape[1] % 2 == 1 and frame.iloc[:, 1::2].isna().all().all():
        return frame.iloc[:, ::2]
    with _open_binary(path, fmt) as raw:
        return pd.read_csv(raw, sep="::", header=header, dtype=dtype, engine="python")


def _read_parquet(path: str) -> pd.DataFrame:
    try:
        import pyarrow
    except ImportError:
        raise ImportError(
            f"{path} is a Parquet file, which needs the pyarrow package: pip install pyarrow"
        ) from None
    try:
        return pd.read_parquet(path, engine="pyarrow")
    except pyarrow.ArrowException as exc:
        raise ValueError(f"{path} is not a readable Parquet file: {exc}") from exc


def _read_file(path: str, columns, sep, fmt: str, dtype):
    """The raw frame of a delimited text file (plain or compressed) and its line numbers."""
    first = _first_line(path, fmt)
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
            # Empty last fields (lines ending in a separator) are no columns.
            n = len(fields)
            while n and not fields[n - 1].strip():
                n -= 1
            if n not in (3, 4):
                raise ValueError(
                    f"{path} has no header row and {n} columns; pass columns as a list naming "
                    'them in order, e.g. columns=["user", "item", "rating", "skip"]'
                )
            names = list(CANONICAL_COLUMNS[:n]) + [f"_empty{k}" for k in range(n, len(fields))]
    try:
        frame = _read_delimited(path, fmt, sep, None if names is not None else 0, dtype)
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
    lines = _LineNumbers(path, fmt, header=names is None)
    if names is None:
        return frame, lines
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
    return frame, lines


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
        fmt = _file_format(name)
        if fmt == "parquet":
            source = _read_parquet(name)
        else:
            damaged = _damaged(name, fmt)
            try:
                frame, lines = _read_file(name, columns, sep, fmt, str if id_dtype else None)
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
