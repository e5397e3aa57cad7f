"""MovieLens datasets: a registry of GroupLens releases, a cache folder and fast loaders.

A dataset lives at ``<data_home>/<name>/`` with its files exactly as they are in
GroupLens's zip archive, for example ``<data_home>/ml-100k/u.data`` or
``<data_home>/ml-latest-small/ratings.csv``. An existing folder is read in place
and never written to; a missing one is downloaded (when allowed), checked and
unpacked there atomically.

The data home is, in order of precedence, the ``data_home`` argument, the
``LATENTFACTORS_DATA`` environment variable, or ``~/.cache/latentfactors``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from latentfactors._progress import TransferProgress, format_megabytes
from latentfactors.data.ratings import canonicalize
from latentfactors.errors import DatasetNotFoundError, DownloadError, IncompleteDatasetError

__all__ = [
    "BASE_URL",
    "MOVIELENS_VARIANTS",
    "DatasetNotFoundError",
    "DownloadError",
    "IncompleteDatasetError",
    "MovieLensVariant",
    "dataset_status",
    "get_data_home",
    "load_movielens",
    "load_movielens_items",
    "movielens_variant",
]

#: Where GroupLens serves the archives. ``LATENTFACTORS_BASE_URL`` overrides it.
BASE_URL = "https://files.grouplens.org/datasets/movielens/"
DATA_HOME_ENV = "LATENTFACTORS_DATA"
BASE_URL_ENV = "LATENTFACTORS_BASE_URL"
DEFAULT_DATA_HOME = Path("~") / ".cache" / "latentfactors"
#: Seconds to wait for the server to connect or to send more bytes.
TIMEOUT = 60.0

_CHUNK = 1 << 20
# Variants this large are not worth a duplicate-pair scan: GroupLens guarantees
# one rating per (user, item) and the scan would cost seconds and a copy.
_CHECK_DUPLICATES_BELOW = 2_000_000
_RATING_COLUMNS = ["user", "item", "rating", "timestamp"]
_RATING_DTYPES = {"user": np.int64, "item": np.int64, "rating": np.float32, "timestamp": np.int64}
_CSV_HEADER = ["userId", "movieId", "rating", "timestamp"]
# "(1995)", "(2007-2013)" at the end of a title, or before a tag such as ml-100k's "(V)".
_YEAR = re.compile(r"\((\d{4})(?:[-\u2013]\d{0,4})?\)(?:\s*\([^()\d]*\))?\s*$")
# ml-100k's u.genre, used when the file is missing from the folder.
_ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


@dataclass(frozen=True)
class MovieLensVariant:
    """One MovieLens release and how its files are laid out.

    Attributes
    ----------
    name : str
        Registry key and folder name under the data home.
    url : str or None
        GroupLens zip URL; ``None`` when the release is no longer served.
    sha256 : str or None
        Digest of the zip, checked after download when known; without it the
        ratings file's line count is checked against ``n_ratings``.
    archive_folder : str
        Top folder inside the zip (``ml-10M100K`` for ``ml-10m``).
    ratings_file, ratings_format : str
        File name and format: ``"csv"`` (header ``userId,movieId,rating,timestamp``),
        ``"tsv"`` (no header) or ``"dat"`` (``::``-separated, no header).
    items_file, items_format, items_encoding : str
        Movie list, its format (``"csv"``, ``"dat"`` or ``"u.item"``) and encoding.
    has_timestamps : bool
        Whether the ratings carry a Unix timestamp.
    n_ratings, n_users, n_items : int or None
        Published counts (items = distinct rated items), when known.
    download_size : int or None
        Approximate size of the zip in bytes.
    """

    name: str
    url: str | None
    sha256: str | None
    archive_folder: str
    ratings_file: str
    ratings_format: str
    items_file: str
    items_format: str
    items_encoding: str
    has_timestamps: bool = True
    n_ratings: int | None = None
    n_users: int | None = None
    n_items: int | None = None
    download_size: int | None = None

    @property
    def archive_name(self) -> str:
        """File name of the zip on the server, e.g. ``ml-100k.zip``."""
        if self.url is not None:
            return self.url.rstrip("/").rsplit("/", 1)[-1]
        return f"{self.archive_folder}.zip"


def _variant(name, folder, ratings, rformat, items, iformat, encoding, counts, size, **kw):
    n_ratings, n_users, n_items = counts
    return MovieLensVariant(
        name=name,
        url=kw.pop("url", f"{BASE_URL}{name}.zip"),
        sha256=kw.pop("sha256", None),
        archive_folder=folder,
        ratings_file=ratings,
        ratings_format=rformat,
        items_file=items,
        items_format=iformat,
        items_encoding=encoding,
        n_ratings=n_ratings,
        n_users=n_users,
        n_items=n_items,
        download_size=size,
        **kw,
    )


_LATEST_SMALL_SHA256 = "859da233c6929ebc9202e9516cdefa8a3c695aef67d1878249d6036c3513c023"
# The October 2016 zip (from the reference data README); GroupLens no longer serves it.
_LATEST_SMALL_2016_SHA256 = "ad046540a50d27a880e0002583e74d153ee2a184dac14b9ccd25f0450a98b1c3"

MOVIELENS_VARIANTS: dict[str, MovieLensVariant] = {
    v.name: v
    for v in (
        _variant(
            "ml-latest-small", "ml-latest-small", "ratings.csv", "csv", "movies.csv", "csv",
            "utf-8", (100_836, 610, 9_724), 978_202, sha256=_LATEST_SMALL_SHA256,
        ),
        _variant(
            "ml-latest-small-2016", "ml-latest-small", "ratings.csv", "csv", "movies.csv",
            "csv", "utf-8", (100_004, 671, 9_066), None, url=None,
            sha256=_LATEST_SMALL_2016_SHA256,
        ),
        _variant(
            "ml-100k", "ml-100k", "u.data", "tsv", "u.item", "u.item", "latin-1",
            (100_000, 943, 1_682), 4_924_029,
        ),
        _variant(
            "ml-1m", "ml-1m", "ratings.dat", "dat", "movies.dat", "dat", "latin-1",
            (1_000_209, 6_040, 3_706), 5_917_549,
        ),
        _variant(
            "ml-10m", "ml-10M100K", "ratings.dat", "dat", "movies.dat", "dat", "utf-8",
            (10_000_054, 69_878, 10_677), 65_566_137,
        ),
        _variant(
            "ml-20m", "ml-20m", "ratings.csv", "csv", "movies.csv", "csv", "utf-8",
            (20_000_263, 138_493, 26_744), 198_702_078,
        ),
        _variant(
            "ml-25m", "ml-25m", "ratings.csv", "csv", "movies.csv", "csv", "utf-8",
            (25_000_095, 162_541, 59_047), 261_978_986,
        ),
        _variant(
            "ml-32m", "ml-32m", "ratings.csv", "csv", "movies.csv", "csv", "utf-8",
            (32_000_204, 200_948, 84_432), 238_950_008,
        ),
    )
}  # fmt: skip

_ALIASES = {"ml-10m100k": "ml-10m", "ml-latest-small-2018": "ml-latest-small"}


# --------------------------------------------------------------------------- paths


def get_data_home(data_home=None) -> Path:
    """The folder that holds the datasets.

    Parameters
    ----------
    data_home : str or os.PathLike, optional
        Used as is when given (``~`` is expanded).

    Returns
    -------
    pathlib.Path
        ``data_home``, else ``$LATENTFACTORS_DATA``, else ``~/.cache/latentfactors``.
        The folder is not created.
    """
    if data_home is None:
        data_home = os.environ.get(DATA_HOME_ENV) or DEFAULT_DATA_HOME
    return Path(os.fspath(data_home)).expanduser()


def movielens_variant(name: str) -> MovieLensVariant:
    """The registry entry of a MovieLens release, by any name the loaders accept.

    Parameters
    ----------
    name : str
        A key of :data:`MOVIELENS_VARIANTS` or an alias of one (``ml-10M100K``
        for ``ml-10m``), in any case, surrounding spaces ignored.

    Returns
    -------
    MovieLensVariant

    Raises
    ------
    ValueError
        If no release goes by that name.
    TypeError
        If ``name`` is not a string.
    """
    return _get_variant(name)


def _get_variant(name: str) -> MovieLensVariant:
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    try:
        return MOVIELENS_VARIANTS[key]
    except KeyError:
        known = ", ".join(MOVIELENS_VARIANTS)
        raise ValueError(f"unknown MovieLens variant {name!r}; known variants: {known}") from None


def _download_url(variant: MovieLensVariant) -> str | None:
    base = os.environ.get(BASE_URL_ENV)
    if variant.url is None or not base:
        return variant.url
    return base.rstrip("/") + "/" + variant.archive_name


def _manual_hint(variant: MovieLensVariant, home: Path) -> str:
    target = home / variant.name
    files = f"{variant.ratings_file} and {variant.items_file}"
    if variant.url is None:
        return (
            f"GroupLens no longer serves the {variant.name} release, so it cannot be "
            f"downloaded; copy its {files} into {target}{os.sep}"
        )
    url = _download_url(variant)
    move = ""
    if variant.archive_folder != variant.name:
        move = f" (move the contents of the zip's {variant.archive_folder}/ folder there)"
    return (
        f"to install it by hand, download {url} and unzip it so that {files} are in "
        f"{target}{os.sep}{move}"
    )


def _is_the_folder(home: Path, variant: MovieLensVariant, filename: str) -> bool:
    """Whether the data home is the variant's own folder (holding ``filename``)."""
    here = home.absolute()  # "." has no name
    return here.name == variant.name and (here / filename).is_file()


def _dataset_file(variant, filename, data_home, download) -> Path:
    """Path of ``filename`` in the variant's folder, downloading the dataset if needed."""
    home = get_data_home(data_home)
    folder = home / variant.name
    path = folder / filename
    if path.is_file():
        return path
    if _is_the_folder(home, variant, filename):
        raise DatasetNotFoundError(
            f"{home} is the {variant.name} folder itself; the data home is the folder "
            f"that holds it: pass data_home={str(home.absolute().parent)!r}",
            dataset=variant.name,
            path=home,
        )
    if folder.exists():
        raise DatasetNotFoundError(
            f"{folder} exists but has no {filename}; add the file, or remove the folder "
            f"to download {variant.name} again; {_manual_hint(variant, home)}",
            dataset=variant.name,
            path=folder,
        )
    if not download or variant.url is None:
        why = "download=False" if variant.url is not None else "not downloadable"
        raise DatasetNotFoundError(
            f"{variant.name} is not in {home} ({why}); {_manual_hint(variant, home)}",
            dataset=variant.name,
            path=home,
        )
    _download(variant, home)
    if not path.is_file():
        raise DatasetNotFoundError(
            f"the {variant.name} archive has no {filename}; {_manual_hint(variant, home)}",
            dataset=variant.name,
            path=folder,
        )
    return path


# ------------------------------------------------------------------------ download


def _fetch(url: str, dest, label: str) -> str:
    """Stream ``url`` into the open binary file ``dest``; return the sha256 hex digest."""
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "latentfactors"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        progress = TransferProgress(label, total)
        done = 0
        while True:
            chunk = response.read(_CHUNK)
            if not chunk:
                break
            dest.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            progress.update(done)
        progress.finish(done)
    if total is not None and done != total:
        raise DownloadError(f"truncated download: received {done:,} of {total:,} bytes")
    return digest.hexdigest()


def _check_member(name: str) -> None:
    parts = re.split(r"[\\/]", name)
    if (
        name.startswith(("/", "\\"))
        or re.match(r"^[A-Za-z]:", name)
        or ".." in parts
        or "\x00" in name
    ):
        raise DownloadError(f"unsafe path {name!r} in the archive")


def _unpack(archive: Path, variant: MovieLensVariant, workdir: Path) -> Path:
    """Extract the checked archive into ``workdir``; return the dataset folder in it."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for member in members:
                _check_member(member.filename)
            expected = f"{variant.archive_folder}/{variant.ratings_file}"
            if expected not in {m.filename.replace("\\", "/") for m in members}:
                raise DownloadError(f"the archive has no {expected}")
            zf.extractall(workdir)
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"not a valid zip archive ({exc})") from exc
    return workdir / variant.archive_folder


def _count_ratings(path: Path, fmt: str) -> int:
    """Lines of a ratings file, less the header of a ``"csv"`` one (read in chunks)."""
    lines = 0
    last = b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    lines += last != b"\n"  # a last line without its newline
    return lines - (fmt == "csv")


def _download(variant: MovieLensVariant, home: Path) -> None:
    url = _download_url(variant)
    target = home / variant.name
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"cannot create the data home {home} ({exc}); {_manual_hint(variant, home)}",
            dataset=variant.name,
            url=url,
        ) from exc
    part = workdir = None
    try:
        fd, name = tempfile.mkstemp(prefix=f".{variant.archive_name}.part-", dir=home)
        part = Path(name)
        with os.fdopen(fd, "wb") as dest:
            size = f" ({format_megabytes(variant.download_size)})" if variant.download_size else ""
            got = _fetch(url, dest, f"Downloading {variant.name}{size}")
        if variant.sha256 is not None and got != variant.sha256.lower():
            raise DownloadError(f"checksum mismatch: expected sha256 {variant.sha256}, got {got}")
        workdir = Path(tempfile.mkdtemp(prefix=f".{variant.name}.extract-", dir=home))
        folder = _unpack(part, variant, workdir)
        if variant.sha256 is None and variant.n_ratings is not None:
            # No digest to check against: the published rating count is the check.
            n = _count_ratings(folder / variant.ratings_file, variant.ratings_format)
            if n != variant.n_ratings:
                raise DownloadError(
                    f"the archive's {variant.ratings_file} holds {n:,} ratings, not the "
                    f"{variant.n_ratings:,} of the published {variant.name}"
                )
        try:
            os.replace(folder, target)
        except OSError:
            # Someone else (another process) finished the same download first.
            if not (target / variant.ratings_file).is_file():
                raise
    except DownloadError as exc:
        raise DownloadError(
            f"downloading {variant.name} from {url} failed: {exc}; {_manual_hint(variant, home)}",
            dataset=variant.name,
            url=url,
        ) from exc
    except urllib.error.HTTPError as exc:
        exc.close()  # the error holds the open response
        raise DownloadError(
            f"downloading {variant.name} from {url} failed: HTTP {exc.code} {exc.reason}; "
            f"{_manual_hint(variant, home)}",
            dataset=variant.name,
            url=url,
        ) from exc
    except urllib.error.URLError as exc:
        raise DownloadError(
            f"downloading {variant.name} from {url} failed: cannot connect ({exc.reason}); "
            f"{_manual_hint(variant, home)}",
            dataset=variant.name,
            url=url,
        ) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(
            f"downloading {variant.name} from {url} failed: {type(exc).__name__}: {exc}; "
            f"{_manual_hint(variant, home)}",
            dataset=variant.name,
            url=url,
        ) from exc
    finally:
        if part is not None:
            part.unlink(missing_ok=True)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)


# ------------------------------------------------------------------------- parsing


def _read_ratings(path: Path, variant: MovieLensVariant) -> pd.DataFrame:
    fmt = variant.ratings_format
    names = _RATING_COLUMNS if variant.has_timestamps else _RATING_COLUMNS[:3]
    dtypes = {c: _RATING_DTYPES[c] for c in names}
    if fmt == "csv":
        with open(path, encoding="utf-8", errors="replace") as fh:
            header = fh.readline().strip().split(",")
        if header != _CSV_HEADER[: len(names)]:
            raise ValueError(
                f"{path} should start with the header {','.join(_CSV_HEADER[: len(names)])}, "
                f"found {','.join(header)!r}"
            )
    try:
        if fmt == "csv":
            frame = pd.read_csv(path, header=0, names=names, dtype=dtypes, engine="c")
        elif fmt == "tsv":
            frame = pd.read_csv(path, sep="\t", header=None, names=names, dtype=dtypes)
        elif fmt == "dat":
            # "a::b::c" split on ":" by the fast C parser: values sit in every other
            # column, with empty columns between them.
            spread = [n for c in names for n in (c, f"_{c}")][:-1]
            frame = pd.read_csv(
                path, sep=":", header=None, names=spread, usecols=names, dtype=dtypes
            )
        else:  # pragma: no cover - registry error
            raise ValueError(f"unknown ratings format {fmt!r}")
    except (pd.errors.ParserError, ValueError, TypeError) as exc:
        raise ValueError(f"{path} is not a well-formed {variant.name} ratings file: {exc}") from exc
    frame = frame[names]
    if len(frame) < _CHECK_DUPLICATES_BELOW:
        return canonicalize(frame, duplicates="raise", source=str(path))
    if not np.isfinite(frame["rating"].to_numpy()).all():
        raise ValueError(f"{path} has missing or non-finite ratings")
    return frame


def _check_count(frame: pd.DataFrame, path: Path, variant: MovieLensVariant) -> None:
    """Refuse a partial (or padded) copy: the parsed rows must be the published count.

    Counting the parsed frame costs nothing; the archive's digest is checked
    once, at download.
    """
    expected = variant.n_ratings
    if expected is None or len(frame) == expected:
        return
    folder = path.parent
    if variant.url is not None:
        fix = f"delete {folder} and load {variant.name} again to download it afresh"
    else:
        fix = f"copy a complete {variant.ratings_file} into {folder}"
    raise IncompleteDatasetError(
        f"{path} holds {len(frame):,} ratings, not the {expected:,} of the published "
        f"{variant.name}: the copy is partial or altered; {fix}, or pass verify=False "
        "to read it as it is (a deliberate subset)",
        dataset=variant.name,
        path=path,
        expected=expected,
        found=len(frame),
    )


def load_movielens(
    name: str = "ml-latest-small", *, data_home=None, download: bool = True, verify: bool = True
) -> pd.DataFrame:
    """Load a MovieLens ratings file as a canonical ratings frame.

    Parameters
    ----------
    name : str
        A key of :data:`MOVIELENS_VARIANTS`: ``"ml-latest-small"``,
        ``"ml-latest-small-2016"`` (local only), ``"ml-100k"``, ``"ml-1m"``,
        ``"ml-10m"``, ``"ml-20m"``, ``"ml-25m"`` or ``"ml-32m"``.
    data_home : str or os.PathLike, optional
        Folder that holds ``<name>/``; see :func:`get_data_home`.
    download : bool
        Download the archive from GroupLens when the folder is missing.
    verify : bool
        Check that the file holds the published number of ratings, so that a
        partial copy (an interrupted copy, a file cut for a quick test) is not
        trained on unnoticed. ``False`` reads a deliberate subset as it is.

    Returns
    -------
    pandas.DataFrame
        Columns ``user`` and ``item`` (int64, the raw MovieLens ids), ``rating``
        (float32) and ``timestamp`` (int64 Unix seconds), in file order.

    Raises
    ------
    ValueError
        If ``name`` is not a known variant, or a file is malformed.
    DatasetNotFoundError
        If the data is missing and ``download`` is false or it cannot be downloaded.
    DownloadError
        If the download, its checksum or the archive fails; nothing is left behind.
    IncompleteDatasetError
        If ``verify`` and the file holds another number of ratings than the
        published release (a ``ValueError``).
    """
    variant = _get_variant(name)
    path = _dataset_file(variant, variant.ratings_file, data_home, download)
    frame = _read_ratings(path, variant)
    if verify:
        _check_count(frame, path, variant)
    return frame


def _decode(raw: bytes, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _read_items_csv(path: Path, variant: MovieLensVariant) -> pd.DataFrame:
    frame = pd.read_csv(
        path,
        dtype={"movieId": np.int64, "title": str, "genres": str},
        encoding=variant.items_encoding,
        keep_default_na=False,
    )
    return pd.DataFrame(
        {"item": frame["movieId"], "title": frame["title"], "genres": frame["genres"]}
    )


def _read_items_dat(path: Path, variant: MovieLensVariant) -> pd.DataFrame:
    text = _decode(path.read_bytes(), variant.items_encoding)
    rows = [line.split("::", 2) for line in text.splitlines() if line.strip()]
    bad = next((i for i, r in enumerate(rows) if len(r) != 3), None)
    if bad is not None:
        raise ValueError(f"{path} line {bad + 1} is not movieId::title::genres")
    ids, titles, genres = zip(*rows, strict=True) if rows else ((), (), ())
    return pd.DataFrame(
        {"item": np.asarray(ids, dtype=np.int64), "title": titles, "genres": genres}
    )


def _read_items_uitem(path: Path, variant: MovieLensVariant) -> pd.DataFrame:
    genre_file = path.with_name("u.genre")
    names = list(_ML100K_GENRES)
    if genre_file.is_file():
        pairs = [
            line.rsplit("|", 1)
            for line in _decode(genre_file.read_bytes(), variant.items_encoding).splitlines()
            if line.strip()
        ]
        names = [g for g, _ in sorted(pairs, key=lambda p: int(p[1]))]
    text = _decode(path.read_bytes(), variant.items_encoding)
    ids, titles, genres = [], [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("|")
        flags = fields[5:]
        if len(flags) != len(names):
            raise ValueError(
                f"{path} line {number} has {len(flags)} genre flags, expected {len(names)}"
            )
        ids.append(int(fields[0]))
        titles.append(fields[1])
        genres.append("|".join(g for g, f in zip(names, flags, strict=True) if f.strip() == "1"))
    return pd.DataFrame(
        {"item": np.asarray(ids, dtype=np.int64), "title": titles, "genres": genres}
    )


_ITEM_READERS = {"csv": _read_items_csv, "dat": _read_items_dat, "u.item": _read_items_uitem}


def load_movielens_items(
    name: str = "ml-latest-small", *, data_home=None, download: bool = True
) -> pd.DataFrame:
    """Load the movie list of a MovieLens release.

    Parameters
    ----------
    name : str
        A key of :data:`MOVIELENS_VARIANTS`.
    data_home : str or os.PathLike, optional
        Folder that holds ``<name>/``; see :func:`get_data_home`.
    download : bool
        Download the archive from GroupLens when the folder is missing.

    Returns
    -------
    pandas.DataFrame
        Columns ``item`` (int64), ``title`` (str, surrounding spaces removed),
        ``genres`` (``"Action|Comedy"`` form; ml-100k's genre flags are joined in
        ``u.genre`` order) and ``year`` (nullable ``Int64``, from a trailing
        ``(YYYY)`` in the title, possibly followed by a tag such as ``(V)``;
        ``<NA>`` when there is none).

    Raises
    ------
    ValueError, DatasetNotFoundError, DownloadError
        As :func:`load_movielens`.
    """
    variant = _get_variant(name)
    path = _dataset_file(variant, variant.items_file, data_home, download)
    try:
        items = _ITEM_READERS[variant.items_format](path, variant)
    except (pd.errors.ParserError, UnicodeDecodeError, KeyError) as exc:
        raise ValueError(f"{path} is not a well-formed {variant.name} movie list: {exc}") from exc
    for col in ("title", "genres"):
        items[col] = items[col].astype(str).str.strip()
    items["year"] = items["title"].str.extract(_YEAR, expand=False).astype("Int64")
    return items.reset_index(drop=True)


# -------------------------------------------------------------------------- status


def _folder_size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def dataset_status(data_home=None) -> list[dict]:
    """What each MovieLens variant looks like in the data home.

    Parameters
    ----------
    data_home : str or os.PathLike, optional
        See :func:`get_data_home`.

    Returns
    -------
    list of dict
        One per variant, in registry order, with keys ``name``, ``cached``
        (the ratings file is present), ``incomplete`` (the folder exists
        without it: the loaders will not download over it), ``is_data_home``
        (the data home is this dataset's folder itself, a mistake the loaders
        refuse), ``path`` (str),
        ``size_bytes`` (bytes on disk, 0 when absent), ``download_size``
        (approximate zip size in bytes, or None), ``downloadable`` and ``url``.
    """
    home = get_data_home(data_home)
    rows = []
    for variant in MOVIELENS_VARIANTS.values():
        folder = home / variant.name
        cached = (folder / variant.ratings_file).is_file()
        rows.append(
            {
                "name": variant.name,
                "cached": cached,
                "incomplete": folder.is_dir() and not cached,
                "is_data_home": _is_the_folder(home, variant, variant.ratings_file),
                "path": str(folder),
                "size_bytes": _folder_size(folder) if folder.is_dir() else 0,
                "download_size": variant.download_size,
                "downloadable": variant.url is not None,
                "url": _download_url(variant),
            }
        )
    return rows
