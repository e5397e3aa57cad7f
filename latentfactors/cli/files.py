"""The files a command reads and writes: model files, ratings, titles and sidecars.

Titles
------
A saved model does not know where its ratings came from, so ``train --save
model.npz`` also writes a small JSON *sidecar*, ``model.npz.json``, naming the
dataset (or the ratings file and ``--items`` titles file) and the model file's
SHA-256. A sidecar whose digest no longer matches its model file is ignored.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
from pathlib import Path

import pandas as pd

from latentfactors.cli.errors import CLIError, UsageError
from latentfactors.cli.output import json_default

SIDECAR_SUFFIX = ".json"
SIDECAR_FORMAT = "latentfactors-cli-sidecar"

# Column names of an items file: the item id's, then the title's.
_ID_COLUMNS = ("item", "itemid", "item_id", "movieid", "movie_id", "id")
_TITLE_COLUMNS = ("title", "name")
# Lines read to find an items file's separator.
_SNIFF_LINES = 50

# What load_ratings' arguments are called on the command line, said after its errors.
_RATINGS_HINT = (
    "on the command line: --columns user,item,rating names the columns of a file without a "
    "header in order; --columns userId=user,movieId=item,stars=rating maps a header's names; "
    "--sep sets the separator; --string-ids reads ids as text; --duplicates last|first|mean "
    "keeps the last or first rating of each pair, or their mean"
)


def load_model_file(path):
    """The model saved at ``path``; a missing, folder or unreadable file is a CLIError."""
    from latentfactors.models import ModelFileError, load_model

    path = os.fspath(path)
    if not os.path.exists(path):
        raise CLIError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise CLIError(f"{path} is a folder, not a model file")
    try:
        return load_model(path)
    except ModelFileError as exc:
        raise CLIError(str(exc)) from exc
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc}") from exc


def data_home_advice(home: Path, name: str, *, verb: str = "pass") -> str:
    """What to give (``verb --data-home DIR``) when the data home is the dataset's own folder."""
    flag = f"--data-home {shlex.quote(str(home.absolute().parent))}"
    return f"{home} is the {name} folder itself; the data home is the folder that holds it: " + (
        f"{verb} {flag}" if verb else flag
    )


def _check_data_home(name: str, data_home) -> None:
    """Refuse a data home that is the dataset's own folder, naming the flag to give."""
    from latentfactors.data import dataset_status, get_data_home

    for row in dataset_status(data_home):
        if row["name"] == name and row["is_data_home"]:
            raise CLIError(data_home_advice(get_data_home(data_home), name))


def load_dataset(name: str, data_home, no_download: bool, loader, *, verify: bool = True):
    """``loader(name, data_home=..., download=..., verify=...)`` with its errors said for
    the command line.

    ``loader`` is :func:`~latentfactors.load_movielens` or any function that
    takes the same arguments and raises the same errors (the demo).
    """
    from latentfactors.data import (
        DatasetNotFoundError,
        DownloadError,
        IncompleteDatasetError,
        movielens_variant,
    )

    _check_data_home(name, data_home)
    try:
        return loader(name, data_home=data_home, download=not no_download, verify=verify)
    except IncompleteDatasetError as exc:
        raise CLIError(f"{exc} (on the command line: --no-verify reads it as it is)") from exc
    except DatasetNotFoundError as exc:
        hint = ""
        if no_download and movielens_variant(name).url is not None:
            hint = f" (--no-download was given; without it {name} is downloaded)"
        raise CLIError(f"{exc}{hint}") from exc
    except DownloadError as exc:
        raise CLIError(str(exc)) from exc


def load_ratings_arg(args):
    """The ratings named by ``--ratings FILE`` or ``--dataset NAME``, and a description."""
    from latentfactors.data import load_movielens, load_ratings

    if getattr(args, "ratings", None):
        path = args.ratings
        if not os.path.exists(path):
            raise CLIError(f"ratings file not found: {path}")
        if os.path.isdir(path):
            raise CLIError(f"{path} is a folder, not a ratings file")
        try:
            frame = load_ratings(
                path,
                columns=args.columns,
                sep=args.sep,
                duplicates=args.duplicates,
                id_dtype=str if args.string_ids else None,
            )
        except (ValueError, TypeError) as exc:
            raise CLIError(f"cannot read ratings from {path}: {exc} ({_RATINGS_HINT})") from exc
        except ImportError as exc:  # an optional reader (zstandard, pyarrow) is missing
            raise CLIError(f"cannot read {path}: {exc}") from exc
        except OSError as exc:
            raise CLIError(f"cannot read {path}: {exc}") from exc
        return frame, path
    if args.columns is not None or args.sep is not None:
        raise UsageError("--columns and --sep apply to --ratings FILE, not --dataset")
    frame = load_dataset(
        args.dataset, args.data_home, args.no_download, load_movielens, verify=not args.no_verify
    )
    if args.string_ids:  # MovieLens ids are integers: as text, for a model trained so
        frame = load_ratings(frame, id_dtype=str)
    return frame, args.dataset


# ---------------------------------------------------------------- titles


def read_titles(path) -> dict:
    """Item titles from a CSV/TSV file with an item id column and a title column.

    The id column may be called ``item``, ``itemId``, ``item_id``, ``movieId``,
    ``movie_id`` or ``id``; the title column ``title`` or ``name``. A file
    without a header is read as ``item, title[, ...]``. The separator is
    found by :func:`latentfactors.data.sniff_separator` (tab for ``.tsv``).

    Returns
    -------
    dict
        ``{str(raw item id): title}``: keys are strings, so that they match
        a model's ids whether it stores them as integers or strings.
    """
    from latentfactors.data import sniff_separator

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CLIError(f"items file not found: {path}")
    # Read once: UTF-8, else Latin-1, which older files such as ml-100k's u.item use.
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if path.endswith((".tsv", ".tab")):
        sep = "\t"
    else:
        sep = sniff_separator(text.splitlines()[:_SNIFF_LINES])

    def read(**kwargs):
        options = dict(sep=sep, engine="python", dtype=str, keep_default_na=False, **kwargs)
        return pd.read_csv(io.StringIO(text), **options)

    try:
        frame = read()
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CLIError(f"cannot read items file {path}: {exc}") from exc
    lower = {str(c).strip().lower(): c for c in frame.columns}
    id_col = next((lower[c] for c in _ID_COLUMNS if c in lower), None)
    title_col = next((lower[c] for c in _TITLE_COLUMNS if c in lower), None)
    if id_col is None or title_col is None:
        if frame.shape[1] < 2:
            raise CLIError(
                f"items file {path} needs an item id column and a title column, "
                f"found {list(frame.columns)}"
            )
        if id_col is None and title_col is None:  # headerless: item, title, ...
            frame = read(header=None)
            id_col, title_col = frame.columns[0], frame.columns[1]
        else:
            raise CLIError(
                f"items file {path} needs an item id column (item, itemId, movieId, id) and a "
                f"title column (title, name), found {list(frame.columns)}"
            )
    return {
        raw.strip(): title.strip()
        for raw, title in zip(frame[id_col], frame[title_col], strict=True)
    }


# ---------------------------------------------------------------- sidecars


def sidecar_path(model_path) -> Path:
    """``model.npz.json`` beside ``model.npz``."""
    return Path(os.fspath(model_path) + SIDECAR_SUFFIX)


def sha256(path) -> str:
    """Hex SHA-256 digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_sidecar(model_path) -> dict | None:
    """The sidecar written by ``train --save``, or ``None`` when absent or stale."""
    path = sidecar_path(model_path)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        return None
    if meta.get("model_sha256") != sha256(model_path):
        return None  # the model file was replaced since: its sidecar no longer applies
    return meta


def write_sidecar(model_path, meta: dict) -> None:
    """Write ``meta`` (plus the format tag and the model file's digest) beside the model."""
    meta = {
        "format": SIDECAR_FORMAT,
        "version": 1,
        "model_sha256": sha256(model_path),
        **meta,
    }
    with open(sidecar_path(model_path), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=1, default=json_default)
