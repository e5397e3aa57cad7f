"""Canonical ratings frames: reading, validating and encoding ids.

Every loader in the package returns the same *canonical frame*: a
:class:`pandas.DataFrame` with columns ``user``, ``item``, ``rating``
(``float32``) and, when the source has one, ``timestamp`` (``int64`` seconds).
Raw ids are kept exactly as they are in the source (integers or strings);
:class:`IdIndex` turns them into dense ``int32`` codes for the kernels.
"""

from __future__ import annotations

import os
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


class IdIndex:
    """Map raw ids (integers or strings) to dense ``int32`` codes ``0..n-1`` and back.

    Parameters
    ----------
    ids : array-like
        The known raw ids. Duplicates are dropped; sortable ids are sorted so
        that the codes do not depend on the order of the ratings.

    Notes
    -----
    :meth:`encode` maps unknown ids to ``-1`` without raising: callers decide
    whether an unknown id is an error (fitting) or a cold start (predicting).
    """

    def __init__(self, ids):
        values = pd.unique(np.asarray(ids).ravel())
        try:
            values = np.sort(values)
        except TypeError:  # mixed types: keep first-appearance order
            pass
        if values.dtype == object:
            kinds = {type(v) for v in values}
            if kinds <= {str}:
                values = values.astype(str)
        if len(values) >= np.iinfo(np.int32).max:
            raise ValueError(f"too many distinct ids ({len(values):,}) for int32 codes")
        self._index = pd.Index(values)
        self._ids = np.asarray(values)

    @property
    def ids(self) -> np.ndarray:
        """The raw ids, in code order (``ids[code] == raw id``)."""
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, raw_id) -> bool:
        return raw_id in self._index

    def __eq__(self, other) -> bool:
        return isinstance(other, IdIndex) and np.array_equal(self._ids, other._ids)

    __hash__ = None

    def __repr__(self) -> str:
        head = ", ".join(map(repr, self._ids[:3].tolist()))
        more = ", ..." if len(self) > 3 else ""
        return f"IdIndex(n={len(self):,}: [{head}{more}])"

    def encode(self, values) -> np.ndarray:
        """Raw ids to ``int32`` codes; unknown ids become ``-1``.

        Parameters
        ----------
        values : array-like of raw ids, shape (n,)

        Returns
        -------
        numpy.ndarray of int32, shape (n,)
        """
        values = np.asarray(values)
        if values.ndim == 0:
            values = values.reshape(1)
        if len(values) == 0:
            return np.empty(0, dtype=np.int32)
        if self._ids.dtype.kind in "iu" and values.dtype.kind == "f":
            # Integer ids that passed through a float column (e.g. after a join).
            whole = np.isfinite(values) & (values == np.round(values))
            codes = np.full(len(values), -1, dtype=np.int32)
            if whole.any():
                codes[whole] = self._index.get_indexer(values[whole].astype(np.int64))
            return codes
        return self._index.get_indexer(values).astype(np.int32, copy=False)

    def decode(self, codes) -> np.ndarray:
        """``int32`` codes back to raw ids.

        Raises
        ------
        IndexError
            If a code is outside ``0..n-1``.
        """
        codes = np.asarray(codes)
        if codes.size and (codes.min() < 0 or codes.max() >= len(self)):
            bad = codes[(codes < 0) | (codes >= len(self))][0]
            raise IndexError(f"code {bad} is out of range for an IdIndex of {len(self)} ids")
        return self._ids[codes]

    def to_array(self) -> np.ndarray:
        """The ids as an array that :func:`numpy.save` stores without pickling."""
        if self._ids.dtype == object:
            return self._ids.astype(str)
        return self._ids

    @classmethod
    def from_array(cls, array) -> IdIndex:
        """Rebuild an index saved with :meth:`to_array`, keeping the code order."""
        obj = cls.__new__(cls)
        obj._ids = np.asarray(array)
        obj._index = pd.Index(obj._ids)
        return obj


def _sniff_separator(path) -> str:
    with open(path, "rb") as fh:
        for raw in fh:
            line = raw.decode("utf-8", errors="replace").strip()
            if line:
                break
        else:
            raise ValueError(f"{path} is empty: there are no ratings to read")
    if "::" in line:
        return "::"
    for sep in ("\t", ",", ";", "|"):
        if sep in line:
            return sep
    return r"\s+"


def _looks_numeric(fields: Sequence[str]) -> bool:
    try:
        [float(f) for f in fields]
    except ValueError:
        return False
    return True


def _read_file(path, columns, sep) -> pd.DataFrame:
    if not os.path.exists(path):
        raise FileNotFoundError(f"ratings file not found: {path}")
    if sep is None:
        sep = _sniff_separator(path)
    names = None
    header = "infer"
    if isinstance(columns, Sequence) and not isinstance(columns, str):
        names = list(columns)
        header = None
    else:
        with open(path, encoding="utf-8", errors="replace") as fh:
            first = next((ln.strip() for ln in fh if ln.strip()), "")
        fields = [f for f in (first.split(sep) if sep != r"\s+" else first.split()) if f != ""]
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
            header = None
    read_kw = {"header": header, "names": names, "skipinitialspace": True}
    try:
        if sep == "::":
            # The C parser needs a one-character separator: "a::b" split on ":"
            # gives empty fields between the values, which are dropped.
            frame = pd.read_csv(path, sep=":", header=None, dtype=str)
            frame = frame.iloc[:, ::2]
            if header == "infer":
                frame.columns = list(frame.iloc[0])
                frame = frame.iloc[1:].reset_index(drop=True)
            else:
                if frame.shape[1] != len(names):
                    raise ValueError(
                        f"{path} has {frame.shape[1]} columns but columns names {len(names)}"
                    )
                frame.columns = names
        else:
            frame = pd.read_csv(path, sep=sep, **read_kw)
    except pd.errors.ParserError as exc:
        raise ValueError(f"{path} is not a well-formed delimited file: {exc}") from exc
    except pd.errors.EmptyDataError as exc:
        raise ValueError(f"{path} is empty: there are no ratings to read") from exc
    if names is not None and header is None and frame.shape[1] != len(names):
        raise ValueError(f"{path} has {frame.shape[1]} columns but columns names {len(names)}")
    return frame


def _rename(frame: pd.DataFrame, columns) -> pd.DataFrame:
    if isinstance(columns, Mapping):
        unknown = [c for c in columns if c not in frame.columns]
        if unknown:
            raise ValueError(
                f"columns maps {unknown} but the data has columns {list(frame.columns)}"
            )
        bad = [v for v in columns.values() if v not in CANONICAL_COLUMNS]
        if bad:
            raise ValueError(
                f"columns must map to {list(CANONICAL_COLUMNS)}, got target(s) {bad}"
            )
        return frame.rename(columns=dict(columns))
    if columns is not None and not isinstance(frame, pd.DataFrame):
        raise TypeError("columns must be a list or a mapping")
    rename = {}
    taken = set(frame.columns) & set(CANONICAL_COLUMNS)
    for col in frame.columns:
        key = str(col).strip().lower()
        target = _ALIASES.get(key)
        if target and col != target and target not in taken:
            rename[col] = target
            taken.add(target)
    return frame.rename(columns=rename)


def _clean_ids(values: pd.Series, name: str) -> pd.Series:
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise ValueError(f"{name} ids are missing (NaN) in {values.isna().sum()} row(s), e.g. row {row}")
    if values.dtype.kind == "f":
        arr = values.to_numpy()
        if np.all(arr == np.round(arr)):
            return values.astype(np.int64)
    if values.dtype == object:
        as_num = pd.to_numeric(values, errors="coerce")
        if not as_num.isna().any() and np.all(as_num == np.round(as_num)):
            return as_num.astype(np.int64)
        return values.astype(str)
    return values


def _handle_duplicates(frame: pd.DataFrame, duplicates: str) -> pd.DataFrame:
    dup = frame.duplicated(["user", "item"], keep=False)
    if not dup.any():
        return frame
    if duplicates == "raise":
        pairs = frame.loc[dup, ["user", "item"]].drop_duplicates().head(3)
        shown = ", ".join(f"(user={u!r}, item={i!r})" for u, i in pairs.itertuples(index=False))
        n = int(frame.loc[dup].duplicated(["user", "item"]).sum())
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
    out = frame.groupby(["user", "item"], sort=False, as_index=False).agg(agg)
    out["rating"] = out["rating"].astype(np.float32)
    return out


def canonicalize(frame: pd.DataFrame, *, duplicates: str = "raise", source=None) -> pd.DataFrame:
    """Validate a frame with user/item/rating[/timestamp] columns; return a canonical copy."""
    where = f" in {source}" if source is not None else ""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"missing column(s) {missing}{where}; found {list(frame.columns)}. Pass columns= "
            'as a mapping, e.g. columns={"userId": "user", "movieId": "item", "stars": "rating"}'
        )
    if len(frame) == 0:
        raise ValueError(f"no ratings{where}: the data is empty")
    cols = [c for c in CANONICAL_COLUMNS if c in frame.columns]
    out = pd.DataFrame({c: frame[c].to_numpy() for c in cols})
    out["user"] = _clean_ids(out["user"], "user")
    out["item"] = _clean_ids(out["item"], "item")

    rating = pd.to_numeric(out["rating"], errors="coerce")
    bad = rating.isna() & out["rating"].notna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"non-numeric rating {out['rating'].iloc[row]!r} at row {row}{where}; "
            "ratings must be numbers"
        )
    values = rating.to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"{int((~finite).sum())} rating(s) are NaN or infinite{where}, e.g. row {row}; "
            "drop or fill them first"
        )
    out["rating"] = values.astype(np.float32)

    if "timestamp" in out.columns:
        ts = out["timestamp"]
        if pd.api.types.is_datetime64_any_dtype(ts):
            ts = ts.astype("datetime64[s]").astype(np.int64)
        else:
            num = pd.to_numeric(ts, errors="coerce")
            if num.isna().any():
                row = int(np.flatnonzero(num.isna().to_numpy())[0])
                raise ValueError(
                    f"timestamp {ts.iloc[row]!r} at row {row}{where} is not a number of seconds"
                )
            ts = num.astype(np.int64)
        out["timestamp"] = ts.to_numpy(dtype=np.int64)
    return _handle_duplicates(out, duplicates)


def load_ratings(source, *, columns=None, sep=None, duplicates="raise") -> pd.DataFrame:
    """Read ratings from a file or a DataFrame into the canonical frame.

    Parameters
    ----------
    source : str, os.PathLike or pandas.DataFrame
        A delimited text file (CSV, TSV, ``::``- or space-separated) or a frame.
    columns : list of str or dict, optional
        A list names a headerless file's columns in order, e.g.
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
        (int64) when present.
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
    if isinstance(source, pd.DataFrame):
        frame = source
        if columns is not None and not isinstance(columns, Mapping):
            if len(columns) != frame.shape[1]:
                raise ValueError(
                    f"columns names {len(columns)} columns but the frame has {frame.shape[1]}"
                )
            frame = frame.set_axis(list(columns), axis=1)
            columns = None
        name = None
    elif isinstance(source, (str, os.PathLike)):
        frame = _read_file(os.fspath(source), columns, sep)
        if columns is not None and not isinstance(columns, Mapping):
            columns = None
        name = os.fspath(source)
    else:
        raise TypeError(
            f"source must be a path or a pandas.DataFrame, got {type(source).__name__}"
        )
    frame = _rename(frame, columns)
    return canonicalize(frame, duplicates=duplicates, source=name)
