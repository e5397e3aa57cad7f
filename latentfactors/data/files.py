"""Ratings files as raw frames: compression, Parquet, separators, headers, line numbers.

:func:`~latentfactors.data.ratings.load_ratings` reads a path here, then
validates the frame it gets. A file's format is known by its first bytes
(gzip, bz2, xz, zstd, zip, Parquet, else text); a text file's separator is
sniffed from its first line and its header told from data by whether the
first line's fields are numbers. Errors about a row name the file's line
(:class:`LineNumbers`), as an editor shows it.
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
from collections.abc import Sequence

import pandas as pd

__all__ = [
    "HEADERLESS_COLUMNS",
    "LineNumbers",
    "damage_errors",
    "file_format",
    "read_parquet",
    "read_text_file",
    "sniff_separator",
]

# What the 3 or 4 columns of a file without a header row hold, in order.
HEADERLESS_COLUMNS = ("user", "item", "rating", "timestamp")

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


def file_format(path: str) -> str:
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


def damage_errors(path: str, fmt: str) -> tuple[type[BaseException], ...]:
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


class LineNumbers:
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


def read_parquet(path: str) -> pd.DataFrame:
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


def read_text_file(path: str, columns, sep, fmt: str, dtype):
    """The raw frame of a delimited text file (plain or compressed) and its line numbers.

    ``columns`` is ``load_ratings``' (checked) argument: a list names a
    headerless file's columns, a dict leaves the header's names for the
    caller to map. Without either, a file whose first line is numbers is
    read as :data:`HEADERLESS_COLUMNS`. ``fmt`` is :func:`file_format`'s.
    """
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
            names = list(HEADERLESS_COLUMNS[:n]) + [f"_empty{k}" for k in range(n, len(fields))]
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
    lines = LineNumbers(path, fmt, header=names is None)
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
