"""The ``latentfactors`` command line (also ``python -m latentfactors``).

Commands::

    latentfactors demo [--dataset NAME] [--seed N] [--quick]
    latentfactors train (--dataset NAME | --ratings FILE [--columns ...]) [--model biased-mf|mlp]
                        [hyperparameters] [--split random|user|time] [--valid-fraction F]
                        [--test-fraction F] [--seed N] [--items FILE] [--save model.npz]
    latentfactors evaluate model.npz (--ratings FILE | --dataset NAME) [--k 10 [--threshold 4]]
    latentfactors recommend model.npz --user ID [--n 10] [--include-seen]
                            [--popularity-weight W] [--items FILE | --dataset NAME]
    latentfactors similar model.npz (--item ID | --user ID) [--n 10] [--metric cosine|dot]
                          [--items FILE | --dataset NAME]
    latentfactors info model.npz
    latentfactors datasets

Every command takes ``--help``, ``--quiet`` (no progress or notes on stderr),
``--json`` (one JSON object on stdout) and ``--debug`` (tracebacks).
Errors are one line on stderr, ``latentfactors: error: ...``, with exit
status 2 for bad usage (unknown option, bad hyperparameter value) and 1 for
everything else (missing or malformed file, unknown user, damaged model).

Titles
------
A saved model does not know where its ratings came from, so ``train --save
model.npz`` also writes a small JSON *sidecar*, ``model.npz.json``, naming the
dataset (or the ratings file and ``--items`` titles file) and the model file's
SHA-256. ``recommend`` and ``similar`` read titles from ``--items FILE``
(a CSV with an item id column and a ``title`` column), else ``--dataset
NAME``, else the sidecar when it matches the model file. Without any of
them the commands print item ids only.
"""

from __future__ import annotations

import argparse
import ast
import csv
import decimal
import hashlib
import io
import json
import math
import os
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

PROG = "latentfactors"
SIDECAR_SUFFIX = ".json"
SIDECAR_FORMAT = "latentfactors-cli-sidecar"
MODEL_NAMES = {"biased-mf": "BiasedMF", "mlp": "MLPMF"}

__all__ = ["main", "recommend_frame", "similar_frame"]


# ---------------------------------------------------------------- errors


class CLIError(Exception):
    """A runtime error reported as one line; exit status 1."""

    status = 1


class UsageError(CLIError):
    """Bad command-line usage; exit status 2."""

    status = 2


class UnknownIdError(CLIError, KeyError):
    """A user or item id that the model does not know."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0])


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of printing usage and exiting."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


# ---------------------------------------------------------------- argument types


def _int_type(low=None, what="an integer"):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


def _float_type(low=None, low_open=False, high=None, high_open=False, what="a number"):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        bad = not math.isfinite(value)
        if low is not None:
            bad = bad or (value <= low if low_open else value < low)
        if high is not None:
            bad = bad or (value >= high if high_open else value > high)
        if bad:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


def _threads(text):
    value = _int_type(what="a positive integer or -1")(text)
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or -1 (all cores), got {text!r}"
        )
    return value


def _hidden(text):
    parts = [p.strip() for p in text.split(",")]
    try:
        widths = tuple(int(p) for p in parts)
    except ValueError:
        widths = ()
    if not widths or any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive layer widths such as 64,32, got {text!r}"
        )
    return widths


def _columns(text):
    """``user,item,rating`` (a headerless file's columns) or ``userId=user,movieId=item``."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("expected column names, e.g. user,item,rating")
    if any("=" in p for p in parts):
        mapping = {}
        for p in parts:
            source, sep, target = p.partition("=")
            if not sep or not source.strip() or not target.strip():
                raise argparse.ArgumentTypeError(
                    f"expected SOURCE=TARGET pairs such as userId=user,movieId=item, got {p!r}"
                )
            mapping[source.strip()] = target.strip()
        return mapping
    return parts


def _separator(text):
    names = {"tab": "\t", "\\t": "\t", "comma": ",", "space": " ", "semicolon": ";"}
    return names.get(text.lower(), text)


def _dataset_name(text):
    from latentfactors.data import MOVIELENS_VARIANTS
    from latentfactors.data.movielens import _ALIASES

    name = text.strip().lower()
    name = _ALIASES.get(name, name)  # the names load_movielens also accepts
    if name not in MOVIELENS_VARIANTS:
        raise argparse.ArgumentTypeError(
            f"unknown dataset {text!r}; known: {', '.join(MOVIELENS_VARIANTS)}"
        )
    return name


_POS_INT = _int_type(1, "a positive integer")
_NONNEG_FLOAT = _float_type(0, what="a number >= 0")
_POS_FLOAT = _float_type(0, low_open=True, what="a number > 0")

# Hyperparameter flags: (model parameter name, type, metavar, help). A flag is
# accepted only by the models whose get_params() has that name.
HYPERPARAMETERS = [
    ("n_factors", _POS_INT, "K", "length of each user and item vector"),
    (
        "optimizer",
        str,
        "NAME",
        "biased-mf: sgd, adam, adam-dense; mlp (its head): adam, sgd, adam-dense (Keras)",
    ),
    (
        "embedding_optimizer",
        str,
        "NAME",
        "mlp: optimizer of the embedding rows and biases: sgd, adam, adam-dense",
    ),
    ("learning_rate", _POS_FLOAT, "LR", "step size (default: the optimizer's)"),
    (
        "embedding_learning_rate",
        _POS_FLOAT,
        "LR",
        "mlp: step size of the embedding rows and biases",
    ),
    (
        "lr_decay",
        _float_type(0, high=1, low_open=True, what="a number in (0, 1]"),
        "F",
        "mlp: multiply the learning rates by F after every epoch",
    ),
    ("reg", _NONNEG_FLOAT, "L2", "L2 penalty on the factors"),
    ("reg_bias", _NONNEG_FLOAT, "L2", "L2 penalty on the biases"),
    ("reg_weights", _NONNEG_FLOAT, "L2", "mlp: L2 penalty on the dense weights"),
    ("n_epochs", _POS_INT, "N", "maximum number of epochs"),
    ("batch_size", _POS_INT, "N", "ratings per step (Adam, mlp)"),
    ("init_std", _POS_FLOAT, "STD", "standard deviation of the initial factors"),
    ("init", str, "NAME", "normal (zero biases) or uniform (vectors and biases, as Keras)"),
    ("hidden", _hidden, "W1,W2", "mlp: hidden layer widths, e.g. 64,32"),
    ("activation", str, "NAME", "mlp: relu, tanh or linear"),
    (
        "dropout",
        _float_type(0, high=1, high_open=True, what="a number in [0, 1)"),
        "P",
        "mlp: dropout probability of the hidden units",
    ),
    ("patience", _POS_INT, "N", "epochs without a better valid MSE before stopping"),
    ("n_threads", _threads, "N", "threads, -1 for all cores (results do not depend on it)"),
]
BOOL_HYPERPARAMETERS = [
    ("early_stopping", "stop when the valid MSE stops improving, keep the best epoch"),
    ("clip", "keep predictions within the training rating range"),
    ("center", "predict around the global mean of the training ratings"),
]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _defaults_help(name: str) -> str:
    """`` (default: biased-mf 256, mlp 32)``, read from the model classes' signatures."""
    import inspect

    from latentfactors.models import MODEL_CLASSES

    shown = []
    for flag, class_name in MODEL_NAMES.items():
        cls = MODEL_CLASSES.get(class_name)
        param = inspect.signature(cls.__init__).parameters.get(name) if cls else None
        if param is None:
            continue
        value = param.default
        if isinstance(value, tuple):
            value = ",".join(str(v) for v in value)
        elif value is None:
            value = "auto" if name == "learning_rate" else "none"
        shown.append(f"{flag} {value}")
    if not shown:
        return ""
    return f" (default: {', '.join(shown)})"


# ---------------------------------------------------------------- output helpers


class Output:
    """Where a command writes: results on stdout, progress and notes on stderr."""

    def __init__(self, args):
        self.json = bool(getattr(args, "json", False))
        self.quiet = bool(getattr(args, "quiet", False))

    def note(self, text: str) -> None:
        """A progress or context line on stderr (silenced by ``--quiet``)."""
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)

    def result(self, payload: dict, text: str) -> None:
        """The command's result: ``payload`` as JSON with ``--json``, else ``text``."""
        if self.json:
            print(json.dumps(_no_nan(payload), default=_json_default, allow_nan=False))
        else:
            print(text)
        sys.stdout.flush()


def _no_nan(obj):
    """``obj`` with NaN and infinities replaced by ``None`` (JSON has neither)."""
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_no_nan(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not math.isfinite(obj):
        return None
    return obj


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _finite(value):
    """``None`` for NaN/inf (JSON has no NaN), a plain float otherwise."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _table(header, rows, numeric=()) -> str:
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    out = []
    for row in [header, *rows]:
        cells = [
            str(v).rjust(w) if c in numeric else str(v).ljust(w)
            for c, (v, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


class EpochProgress:
    """``callback(epoch, logs)`` that prints one progress line per epoch, with an ETA.

    The ETA is the mean wall time of the epochs so far times the epochs left.
    The first epoch is left out of the mean once there are others, because it
    includes Numba compilation on a first run. With early stopping the ETA is
    an upper bound, shown as ``ETA <=``. On a terminal the line is rewritten in place; elsewhere
    each epoch gets its own line.

    Parameters
    ----------
    n_epochs : int
        The model's ``n_epochs``.
    label : str
        Printed before each line (e.g. the model's name in the demo).
    stream : file, optional
        Default ``sys.stderr``.
    early_stopping : bool
        The fit may stop before ``n_epochs``: the ETA is then a bound.
    """

    def __init__(self, n_epochs: int, label: str = "", stream=None, early_stopping=False):
        self.n_epochs = int(n_epochs)
        self.label = f"{label}: " if label else ""
        self.early_stopping = bool(early_stopping)
        self.stream = stream if stream is not None else sys.stderr
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False
        self.start = self.last = time.perf_counter()
        self.durations: list[float] = []
        self.open_line = False

    def __call__(self, epoch: int, logs: dict) -> None:
        now = time.perf_counter()
        self.durations.append(now - self.last)
        self.last = now
        steady = self.durations[1:] or self.durations
        eta = sum(steady) / len(steady) * max(0, self.n_epochs - epoch)
        width = len(str(self.n_epochs))
        parts = [
            f"{self.label}epoch {epoch:>{width}}/{self.n_epochs}",
            f"train_mse {logs['train_mse']:.4f}",
        ]
        if "valid_mse" in logs:
            parts.append(f"valid_mse {logs['valid_mse']:.4f}")
        parts += [
            f"{self.durations[-1]:.2f}s",
            f"elapsed {_duration(now - self.start)}",
            f"ETA {'<=' if self.early_stopping else ''}{_duration(eta)}",
        ]
        line = "  ".join(parts)
        if self.tty:
            print("\r\x1b[K" + line, end="", file=self.stream, flush=True)
            self.open_line = True
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        """End the in-place line on a terminal."""
        if self.open_line:
            print(file=self.stream, flush=True)
            self.open_line = False


# ---------------------------------------------------------------- ids and titles


def parse_id(text: str, index, what: str):
    """A raw id typed on the command line, converted to the model's id type.

    Parameters
    ----------
    text : str
        The id as typed, e.g. ``"1"``.
    index : IdIndex
        The model's ``user_index_`` or ``item_index_``.
    what : str
        ``"user"`` or ``"item"``, for messages.

    Returns
    -------
    int, float or str
        The id, as the model stores it.

    Raises
    ------
    UnknownIdError
        If the id cannot be converted or the model does not know it.
    """
    ids = index.ids
    kind = ids.dtype.kind
    value = text
    try:
        if kind in "iu":
            value = _integer(text)
        elif kind == "f":
            value = float(text)
    except ValueError:
        raise UnknownIdError(
            f"{what} id {text!r} is not {'an integer' if kind in 'iu' else 'a number'}; "
            f"this model's {what} ids are {'integers' if kind in 'iu' else 'numbers'}, "
            f"e.g. {_examples(ids)}"
        ) from None
    if value not in index:
        raise UnknownIdError(
            f"unknown {what} {text!r}: the model knows {len(ids):,} {what}s, e.g. {_examples(ids)}"
        )
    return value


def _integer(text: str) -> int:
    """``"7"``, ``"7.0"`` or ``"7e0"`` as 7 (as the Python API takes 7.0 for 7); else ValueError.

    Read exactly, so that ids beyond 2**53 written with a decimal point keep every digit.
    """
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = decimal.Decimal(text.strip())
    except decimal.InvalidOperation:
        raise ValueError(text) from None
    if not value.is_finite() or value != value.to_integral_value():
        raise ValueError(text)
    return int(value)


def _examples(ids) -> str:
    shown = ", ".join(str(x) for x in ids[:3].tolist())
    return shown + (", ..." if len(ids) > 3 else "")


def _titles_separator(text: str, sample=50):
    """The delimiter that splits the first lines into equally many fields (quotes
    respected): titles hold commas, so a ``|``-separated file such as ml-100k's
    ``u.item`` must not be split on them. ``None`` (let pandas guess) if none does."""
    lines = [line for line in text.splitlines()[:sample] if line.strip()]
    for sep in (",", "\t", "|", ";"):
        counts = {len(row) for row in csv.reader(lines, delimiter=sep)}
        if len(counts) == 1 and counts.pop() >= 2:
            return sep
    return None


def read_titles(path) -> dict:
    """Item titles from a CSV/TSV file with an item id column and a title column.

    The id column may be called ``item``, ``itemId``, ``item_id``, ``movieId``,
    ``movie_id`` or ``id``; the title column ``title`` or ``name``. A file
    without a header is read as ``item, title[, ...]``.

    Returns
    -------
    dict
        ``{str(raw item id): title}``: keys are strings, so that they match
        a model's ids whether it stores them as integers or strings.
    """
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
    sep = "\t" if path.endswith((".tsv", ".tab")) else _titles_separator(text)

    def read(**kwargs):
        options = dict(sep=sep, engine="python", dtype=str, keep_default_na=False, **kwargs)
        return pd.read_csv(io.StringIO(text), **options)

    try:
        frame = read()
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CLIError(f"cannot read items file {path}: {exc}") from exc
    lower = {str(c).strip().lower(): c for c in frame.columns}
    id_col = next(
        (
            lower[c]
            for c in ("item", "itemid", "item_id", "movieid", "movie_id", "id")
            if c in lower
        ),
        None,
    )
    title_col = next((lower[c] for c in ("title", "name") if c in lower), None)
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


def _kept_valid_mse(model, valid):
    """Validation MSE of the epoch whose parameters the model kept, if it was measured."""
    kept = getattr(model, "best_epoch_", None)
    if not valid or not kept or kept > len(valid):
        return None
    return _finite(valid[kept - 1])


def _valid_note(payload) -> str:
    kept, best = payload["kept_valid_mse"], payload["best_valid_mse"]
    if kept is None:
        return "" if best is None else f", best valid MSE {best:.4f}"
    if best is not None and best < kept:
        return f", valid MSE {kept:.4f} (best {best:.4f}, at another epoch)"
    return f", valid MSE {kept:.4f} (the best)"


def _sidecar_path(model_path) -> Path:
    return Path(os.fspath(model_path) + SIDECAR_SUFFIX)


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_sidecar(model_path) -> dict | None:
    """The sidecar written by ``train --save``, or ``None`` when absent or stale."""
    path = _sidecar_path(model_path)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
        return None
    if meta.get("model_sha256") != _sha256(model_path):
        return None  # the model file was replaced since: its sidecar no longer applies
    return meta


def _titles_for(args, model_path, out: Output) -> tuple[dict, str | None]:
    """``({str(item id): title}, source)`` from ``--items``, ``--dataset`` or the sidecar.

    ``({}, None)`` when there is no source of titles.
    """
    if getattr(args, "items", None):
        return read_titles(args.items), args.items
    dataset = getattr(args, "dataset", None)
    data_home = args.data_home
    source = None
    meta = read_sidecar(model_path)
    trained_on = meta and (meta.get("dataset") or meta.get("ratings"))
    if dataset is not None and trained_on and trained_on != dataset:
        out.note(
            f"note: the model was trained on {trained_on}, not {dataset}: "
            f"titles from {dataset} may name other items"
        )
    if dataset is None:
        if meta is not None:
            if meta.get("items"):
                if os.path.isfile(meta["items"]):
                    return read_titles(meta["items"]), meta["items"]
                out.note(f"note: titles file {meta['items']} (from the sidecar) is gone")
            dataset = meta.get("dataset")
            if data_home is None and meta.get("data_home") and os.path.isdir(meta["data_home"]):
                data_home = meta["data_home"]
            source = "sidecar"
    if dataset is None:
        return {}, None
    from latentfactors.data import load_movielens_items

    try:
        items = load_movielens_items(dataset, data_home=data_home, download=False)
    except (OSError, ValueError) as exc:
        out.note(f"note: no titles ({exc})")
        return {}, None
    titles = {str(i): t for i, t in zip(items["item"].tolist(), items["title"], strict=True)}
    return titles, f"{dataset} ({source})" if source else dataset


# ---------------------------------------------------------------- recommendation glue


def _as_frame(result: pd.DataFrame, id_column: str = "item") -> pd.DataFrame:
    """The id and ``score`` columns of a ``recommend``/``similar_*`` frame, as item/score."""
    return pd.DataFrame(
        {"item": result[id_column].to_numpy(), "score": result["score"].to_numpy(np.float64)}
    )


def recommend_frame(
    model, user, n: int = 10, *, exclude_seen: bool = True, popularity_weight: float = 0.0
) -> pd.DataFrame:
    """Top-``n`` items for a known raw user id: ``item`` and ``score`` columns, best first.

    A thin wrapper of the model's ``recommend``
    (:mod:`latentfactors.models.recommend`): the scores are raw predictions,
    not clipped to the rating range, and the items the user rated in
    training are left out unless ``exclude_seen`` is false.
    """
    if user not in model.user_index_:
        raise UnknownIdError(f"unknown user {user!r}")
    result = model.recommend(
        user, n=n, exclude_seen=exclude_seen, popularity_weight=popularity_weight
    )
    return _as_frame(result)


def similar_frame(model, raw_id, n: int = 10, *, kind: str = "item", metric: str = "cosine"):
    """The ``n`` items (``kind="item"``) or users most similar to a known raw id.

    Wraps the model's ``similar_items`` / ``similar_users``. The result has
    ``item`` (the ids, whatever their kind) and ``score`` columns.
    """
    index = model.item_index_ if kind == "item" else model.user_index_
    if raw_id not in index:
        raise UnknownIdError(f"unknown {kind} {raw_id!r}")
    method = model.similar_items if kind == "item" else model.similar_users
    return _as_frame(method(raw_id, n=n, metric=metric), id_column=kind)


# ---------------------------------------------------------------- loading


def _load_model(path):
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


def _load_ratings(args, out: Output) -> tuple[pd.DataFrame, str]:
    """The ratings named by ``--ratings FILE`` or ``--dataset NAME``, and a description."""
    from latentfactors.data import DatasetNotFoundError, DownloadError, load_movielens, load_ratings

    if getattr(args, "ratings", None):
        path = args.ratings
        if not os.path.exists(path):
            raise CLIError(f"ratings file not found: {path}")
        if os.path.isdir(path):
            raise CLIError(f"{path} is a folder, not a ratings file")
        try:
            frame = load_ratings(
                path, columns=args.columns, sep=args.sep, duplicates=args.duplicates
            )
        except (ValueError, TypeError) as exc:
            hint = ""
            if "column" in str(exc):
                hint = (
                    " (on the command line: --columns user,item,rating names the columns of a "
                    "file without a header in order; --columns userId=user,movieId=item,"
                    "stars=rating maps a header's names; one rating per line either way)"
                )
            raise CLIError(f"cannot read ratings from {path}: {exc}{hint}") from exc
        except OSError as exc:
            raise CLIError(f"cannot read {path}: {exc}") from exc
        return frame, path
    name = args.dataset
    if args.columns is not None or args.sep is not None:
        raise UsageError("--columns and --sep apply to --ratings FILE, not --dataset")
    try:
        frame = load_movielens(name, data_home=args.data_home, download=not args.no_download)
    except (DatasetNotFoundError, DownloadError) as exc:
        raise CLIError(str(exc)) from exc
    return frame, name


# ---------------------------------------------------------------- commands


def _split(frame, args):
    """``(train, valid or None, test or None)`` by ``--split`` and the fractions."""
    from latentfactors.data import random_split, temporal_split, user_holdout_split

    v, t = args.valid_fraction, args.test_fraction
    # In decimal, so that 1 - 0.1 - 0.2 is written 0.7, not 0.7000000000000001.
    rest = float(1 - decimal.Decimal(repr(v)) - decimal.Decimal(repr(t)))
    if args.split == "random":
        named = [(f, name) for f, name in ((rest, "train"), (v, "valid"), (t, "test")) if f > 0]
        try:
            parts = list(random_split(frame, [f for f, _ in named], random_state=args.seed))
        except ValueError as exc:
            message = re.sub(
                r"part (\d+) of the split", lambda m: f"the {named[int(m[1])][1]} part", str(exc)
            )
            raise CLIError(f"cannot split the ratings (random): {message}") from exc
        train = parts.pop(0)
        valid = parts.pop(0) if v > 0 else None
        test = parts.pop(0) if t > 0 else None
        return train, valid, test
    if "timestamp" not in frame.columns and args.split == "time":
        raise CLIError(
            "--split time needs timestamps, but the ratings have none; use --split random "
            "or --split user, or name a timestamp column with --columns"
        )

    def hold_out(part, flag, data, fraction, seed):
        """Cut ``fraction`` of ``data`` off as ``part``; errors name the flag behind it."""
        try:
            if args.split == "user":
                return user_holdout_split(data, fraction, random_state=seed)
            return temporal_split(data, fraction)
        except ValueError as exc:
            share = flag if data is frame else f"{flag} (of what the test part leaves)"
            message = str(exc).replace("test_fraction=", "a fraction of ")
            message = message.replace("the test set would", f"the {part} part would")
            raise CLIError(
                f"cannot hold out the {part} part (--split {args.split}, {share}): {message}"
            ) from exc

    train, valid, test = frame, None, None
    if t > 0:
        train, test = hold_out("test", f"--test-fraction {t}", frame, t, args.seed)
    if v > 0:
        share = float(decimal.Decimal(repr(v)) / (1 - decimal.Decimal(repr(t))))
        train, valid = hold_out("validation", f"--valid-fraction {v}", train, share, args.seed + 1)
    return train, valid, test


def _describe(frame) -> str:
    return (
        f"{len(frame):,} ratings, {frame['user'].nunique():,} users, "
        f"{frame['item'].nunique():,} items"
    )


def _build_model(args):
    """The estimator named by ``--model``, with the hyperparameter flags applied."""
    from latentfactors.models import MODEL_CLASSES

    class_name = MODEL_NAMES[args.model]
    cls = MODEL_CLASSES.get(class_name)
    if cls is None:
        raise CLIError(f"model {args.model!r} ({class_name}) is not available in this version")
    names = set(cls._param_names())
    params = {}
    given = [(n, getattr(args, "hp_" + n)) for n, *_ in HYPERPARAMETERS]
    given += [(n, getattr(args, "hp_" + n)) for n, _ in BOOL_HYPERPARAMETERS]
    for name, value in given:
        if value is None:
            continue
        if name not in names:
            applies = [
                k
                for k, v in MODEL_NAMES.items()
                if v in MODEL_CLASSES and name in MODEL_CLASSES[v]._param_names()
            ]
            raise UsageError(
                f"{_flag(name)} does not apply to --model {args.model}"
                + (f" (only to --model {', '.join(applies)})" if applies else "")
            )
        params[name] = value
    params["random_state"] = args.seed
    model = cls(**params)
    validate = getattr(model, "_validate", None)
    if validate is not None:
        try:
            validate()
        except ValueError as exc:
            raise UsageError(f"bad hyperparameter: {exc}") from exc
    return model


def _metrics_dict(model, part) -> dict | None:
    if part is None or len(part) == 0:
        return None
    m = model.evaluate(part)
    return {"n": len(part), **{k: _finite(v) for k, v in m.items()}}


def cmd_train(args, out: Output) -> int:
    """``latentfactors train``: fit, report per-epoch progress and metrics, save."""
    from latentfactors.data import get_data_home
    from latentfactors.models import DivergenceError

    model = _build_model(args)  # usage errors before any data is read
    v, t = args.valid_fraction, args.test_fraction
    if v + t >= 1:
        raise UsageError(
            f"--valid-fraction {v:g} plus --test-fraction {t:g} leave nothing to train on"
        )
    if args.save:
        folder = os.path.dirname(os.path.abspath(args.save))
        if not os.path.isdir(folder):
            raise CLIError(f"cannot save to {args.save}: folder {folder} does not exist")
        if os.path.isdir(args.save):
            raise CLIError(f"cannot save to {args.save}: it is a folder; name a file in it")
        try:  # can a file be made there? (not after training)
            with tempfile.TemporaryFile(dir=os.path.dirname(os.path.realpath(args.save))):
                pass
        except OSError as exc:
            raise CLIError(f"cannot save to {args.save}: {exc.strerror}") from exc
        if os.fspath(args.save).endswith(SIDECAR_SUFFIX):
            raise UsageError(
                f"--save {args.save}: names ending in {SIDECAR_SUFFIX} are kept for the file "
                "that describes a model; name the model file, e.g. model.npz"
            )
    titles_file = os.path.abspath(args.items) if args.items else None
    if titles_file:
        read_titles(titles_file)  # fail now, not after training
    frame, source = _load_ratings(args, out)
    out.note(f"data: {source}: {_describe(frame)}")
    train, valid, test = _split(frame, args)
    for name, part in (("valid", valid), ("test", test)):
        if part is not None and len(part) == 0:
            out.note(f"note: the {name} part is empty with so few ratings; fitting without it")
    valid = valid if valid is not None and len(valid) else None
    test = test if test is not None and len(test) else None
    sizes = f"{len(train):,} train"
    sizes += f" / {len(valid):,} valid" if valid is not None else ""
    sizes += f" / {len(test):,} test" if test is not None else ""
    out.note(f"split: {args.split}, seed {args.seed}: {sizes}")
    out.note(f"model: {model!r}")
    stops_early = valid is not None and bool(getattr(model, "early_stopping", False))
    progress = None if out.quiet else EpochProgress(model.n_epochs, early_stopping=stops_early)
    model.set_params(callback=progress)
    start = time.perf_counter()
    try:
        model.fit(train, valid=valid)
    except DivergenceError as exc:
        raise CLIError(str(exc)) from exc
    except ValueError as exc:
        raise CLIError(f"cannot fit: {exc}") from exc
    finally:
        if progress is not None:
            progress.close()
    seconds = time.perf_counter() - start
    model.set_params(callback=None)
    metrics = {
        "train": _metrics_dict(model, train),
        "valid": _metrics_dict(model, valid),
        "test": _metrics_dict(model, test),
    }
    saved = None
    if args.save:
        model.save(args.save)
        saved = os.path.abspath(args.save)
        sidecar = {
            "format": SIDECAR_FORMAT,
            "version": 1,
            "model_sha256": _sha256(args.save),
            "model_class": type(model).__name__,
            "dataset": args.dataset,
            "data_home": str(get_data_home(args.data_home).resolve()) if args.dataset else None,
            "ratings": os.path.abspath(args.ratings) if args.ratings else None,
            "items": titles_file,
            "split": args.split,
            "valid_fraction": args.valid_fraction,
            "test_fraction": args.test_fraction,
            "seed": args.seed,
            "metrics": metrics,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        with open(_sidecar_path(args.save), "w", encoding="utf-8") as fh:
            json.dump(sidecar, fh, indent=1, default=_json_default)
    payload = {
        "command": "train",
        "model": type(model).__name__,
        "params": {k: v for k, v in model.get_params().items() if k != "callback"},
        "data": source,
        "n_ratings": len(frame),
        "split": {
            "method": args.split,
            "train": len(train),
            "valid": 0 if valid is None else len(valid),
            "test": 0 if test is None else len(test),
        },
        "n_epochs": int(model.n_epochs_),
        "best_epoch": int(model.best_epoch_),
        "fit_seconds": seconds,
        "metrics": metrics,
        "saved": saved,
    }
    epochs = f"{model.n_epochs_} epoch" + ("" if model.n_epochs_ == 1 else "s")
    if model.n_epochs_ < model.n_epochs:
        epochs += " (early stopping)"
    lines = [
        f"trained {type(model).__name__} in {_duration(seconds)}: {epochs}, "
        f"kept epoch {model.best_epoch_}",
        "",
        _table(
            ["part", "ratings", "MSE", "RMSE", "MAE"],
            [
                [name, f"{m['n']:,}", f"{m['mse']:.4f}", f"{m['rmse']:.4f}", f"{m['mae']:.4f}"]
                for name, m in metrics.items()
                if m is not None
            ],
            numeric={1, 2, 3, 4},
        ),
    ]
    if saved:
        lines += ["", f"saved {args.save} (and {_sidecar_path(args.save).name})"]
    out.result(payload, "\n".join(lines))
    return 0


def cmd_evaluate(args, out: Output) -> int:
    """``latentfactors evaluate``: error metrics of a saved model on ratings."""
    model = _load_model(args.model_file)
    frame, source = _load_ratings(args, out)
    users = model.user_index_.encode(frame["user"].to_numpy())
    items = model.item_index_.encode(frame["item"].to_numpy())
    m = model.evaluate(frame)
    seen = _trained_on(model, users, items)
    payload = {
        "command": "evaluate",
        "model": args.model_file,
        "ratings": source,
        "n": len(frame),
        "unknown_users": int((users < 0).sum()),
        "unknown_items": int((items < 0).sum()),
        "in_training": seen,
        **{k: _finite(v) for k, v in m.items()},
    }
    text = (
        f"{source}: {len(frame):,} ratings ({payload['unknown_users']:,} with a user and "
        f"{payload['unknown_items']:,} with an item unknown to the model)\n"
        f"MSE {m['mse']:.4f}  RMSE {m['rmse']:.4f}  MAE {m['mae']:.4f}"
    )
    if seen:
        text += (
            f"\nnote: {seen:,} of these ratings ({seen / len(frame):.0%}) are (user, item) pairs "
            "the model was trained on, so the errors are optimistic: evaluate on held-out "
            "ratings, such as the test part of the split made by train"
        )
    if args.k is not None:
        ranking = _ranking(model, frame, args.k, args.threshold)
        payload["ranking"] = ranking
        shown = "  ".join(
            f"{name}@{args.k} {ranking[name]:.4f}"
            for name in ("precision", "recall", "ndcg", "map")
            if ranking.get(name) is not None
        )
        skipped = ranking["n_skipped_users"]
        text += (
            f"\ntop-{args.k} ranking over {ranking['n_users']:,} users with a rating >= "
            f"{args.threshold:g} (training items left out"
            + (f"; {skipped:,} users unknown to the model left out" if skipped else "")
            + f"):\n{shown}"
        )
        if ranking.get("hit_rate") is not None:
            text += f"  hit_rate {ranking['hit_rate']:.4f}"
        if ranking.get("coverage") is not None:
            text += f"  coverage {ranking['coverage']:.4f}"
    out.result(payload, text)
    return 0


def _trained_on(model, users, items) -> int:
    """How many (user, item) code pairs are among the model's training pairs."""
    known = (users >= 0) & (items >= 0)
    if not known.any() or len(model.seen_items_) == 0:
        return 0
    n_items = np.int64(len(model.item_index_))
    seen_users, seen_items = model._seen_pairs()
    trained = seen_users * n_items + seen_items
    asked = users[known].astype(np.int64) * n_items + items[known]
    return int(np.isin(asked, trained).sum())


def _ranking(model, frame, k: int, threshold: float) -> dict:
    """Ranking metrics of the model's top-``k`` lists for the users in ``frame``."""
    from latentfactors.metrics import ranking_metrics

    relevant = frame[frame["rating"] >= threshold]
    if len(relevant) == 0:
        raise CLIError(f"no rating is >= --threshold {threshold:g}: nothing is relevant")
    users = pd.unique(relevant["user"].to_numpy())
    known = users[model.user_index_.encode(users) >= 0]
    if len(known) == 0:
        raise CLIError("none of the users with relevant ratings is known to the model")
    # Users the model does not know get no list: left out, as evaluate_ranking does.
    scored = frame[model.user_index_.encode(frame["user"].to_numpy()) >= 0]
    top = model.recommend_all(n=k, users=known, as_frame=False)
    result = ranking_metrics(top, scored, k, threshold=threshold, catalogue=len(model.item_index_))
    result["n_skipped_users"] = len(users) - len(known)
    return {name: _finite(v) if isinstance(v, float) else v for name, v in result.items()}


def _ranked(frame: pd.DataFrame, titles: dict, score_name: str, id_name: str = "item"):
    """JSON records and a text table of ranked ids with scores (and titles)."""
    rows, records = [], []
    for rank, (raw, score) in enumerate(zip(frame["item"], frame["score"], strict=True), 1):
        raw = raw.item() if isinstance(raw, np.generic) else raw
        record = {"rank": rank, id_name: raw, "score": _finite(score)}
        row = [str(rank), str(raw), f"{score:.3f}"]
        if id_name == "item":
            record["title"] = titles.get(str(raw))
            row.append(record["title"] or "")
        records.append(record)
        rows.append(row)
    header = ["#", id_name, score_name] + (["title"] if id_name == "item" else [])
    return records, _table(header, rows, numeric={0, 2})


def cmd_recommend(args, out: Output) -> int:
    """``latentfactors recommend``: top-N items for one user, with titles when known."""
    model = _load_model(args.model_file)
    user = parse_id(args.user, model.user_index_, "user")
    titles, source = _titles_for(args, args.model_file, out)
    frame = recommend_frame(
        model,
        user,
        args.n,
        exclude_seen=not args.include_seen,
        popularity_weight=args.popularity_weight,
    )
    records, table = _ranked(frame, titles, "score")
    payload = {
        "command": "recommend",
        "model": args.model_file,
        "user": user,
        "titles": source,
        "recommendations": records,
    }
    seen = "" if args.include_seen else ", leaving out items rated in training"
    text = f"top {len(records)} for user {user}{seen}:\n{table}"
    out.result(payload, text)
    return 0


def cmd_similar(args, out: Output) -> int:
    """``latentfactors similar``: the items (or users) nearest to one item (or user)."""
    model = _load_model(args.model_file)
    kind = "item" if args.item is not None else "user"
    if kind == "item":
        raw = parse_id(args.item, model.item_index_, "item")
        titles, source = _titles_for(args, args.model_file, out)
    else:
        raw = parse_id(args.user, model.user_index_, "user")
        titles, source = {}, None
    frame = similar_frame(model, raw, args.n, kind=kind, metric=args.metric)
    records, table = _ranked(frame, titles, args.metric, id_name=kind)
    payload = {
        "command": "similar",
        "model": args.model_file,
        kind: raw,
        "metric": args.metric,
        "similar": records,
    }
    if kind == "item":
        payload.update(title=titles.get(str(raw)), titles=source)
    name = f"{raw} ({titles[str(raw)]})" if str(raw) in titles else str(raw)
    out.result(payload, f"{kind}s most similar to {kind} {name}:\n{table}")
    return 0


def cmd_info(args, out: Output) -> int:
    """``latentfactors info``: what a model file holds."""
    model = _load_model(args.model_file)
    params = {k: v for k, v in model.get_params().items() if k not in ("callback", "verbose")}
    history = getattr(model, "history_", {}) or {}
    valid = [v for v in history.get("valid_mse", []) if v is not None and math.isfinite(v)]
    train = history.get("train_mse", [])
    meta = read_sidecar(args.model_file)
    payload = {
        "command": "info",
        "model_file": args.model_file,
        "size_bytes": os.path.getsize(args.model_file),
        "model": type(model).__name__,
        "params": params,
        "n_users": len(model.user_index_),
        "n_items": len(model.item_index_),
        "user_id_type": str(model.user_index_.ids.dtype),
        "item_id_type": str(model.item_index_.ids.dtype),
        "global_mean": _finite(model.global_mean_),
        "rating_range": [_finite(x) for x in model.rating_range_],
        "n_epochs": getattr(model, "n_epochs_", None),
        "best_epoch": getattr(model, "best_epoch_", None),
        "last_train_mse": _finite(train[-1]) if train else None,
        "best_valid_mse": _finite(min(valid)) if valid else None,
        "kept_valid_mse": _kept_valid_mse(model, valid),
        "sidecar": meta,
    }
    shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
    lines = [
        f"{args.model_file}: {payload['model']}, {payload['size_bytes'] / 1e6:.1f} MB",
        f"users: {payload['n_users']:,} ({payload['user_id_type']} ids, e.g. "
        f"{_examples(model.user_index_.ids)})",
        f"items: {payload['n_items']:,} ({payload['item_id_type']} ids, e.g. "
        f"{_examples(model.item_index_.ids)})",
        f"ratings: mean {model.global_mean_:.3f}, range {model.rating_range_[0]:g} to "
        f"{model.rating_range_[1]:g}",
        f"fit: {payload['n_epochs']} epochs, kept epoch {payload['best_epoch']}"
        + _valid_note(payload),
        f"hyperparameters: {shown}",
    ]
    if meta is not None:
        origin = meta.get("dataset") or meta.get("ratings")
        lines.append(f"trained on: {origin} ({meta.get('split')} split, seed {meta.get('seed')})")
        if meta.get("items"):
            lines.append(f"titles: {meta['items']}")
    out.result(payload, "\n".join(lines))
    return 0


def cmd_datasets(args, out: Output) -> int:
    """``latentfactors datasets``: the known MovieLens variants and which are cached."""
    from latentfactors.data import MOVIELENS_VARIANTS, get_data_home
    from latentfactors.data.movielens import dataset_status

    home = get_data_home(args.data_home)
    status = dataset_status(args.data_home)
    for row in status:
        v = MOVIELENS_VARIANTS[row["name"]]
        row.update(n_ratings=v.n_ratings, n_users=v.n_users, n_items=v.n_items)
        if row["is_data_home"]:
            out.note(
                f"note: {home} is the {v.name} folder itself; the data home is the folder "
                f"that holds it: --data-home {shlex.quote(str(home.absolute().parent))}"
            )
    rows = []
    for row in status:
        if row["cached"]:
            where = f"cached, {row['size_bytes'] / 1e6:.1f} MB"
        elif row["incomplete"]:
            where = f"incomplete: {row['path']} lacks its ratings file; remove the folder"
        elif row["downloadable"]:
            size = f"{row['download_size'] / 1e6:.1f} MB" if row["download_size"] else "?"
            where = f"download {size}"
        else:
            where = "not cached, not downloadable"
        rows.append(
            [
                row["name"],
                f"{row['n_ratings']:,}",
                f"{row['n_users']:,}",
                f"{row['n_items']:,}",
                where,
            ]
        )
    text = f"data home: {home}\n" + _table(
        ["dataset", "ratings", "users", "items", "status"], rows, numeric={1, 2, 3}
    )
    out.result({"command": "datasets", "data_home": str(home), "datasets": status}, text)
    return 0


def cmd_demo(args, out: Output) -> int:
    """``latentfactors demo``: the notebook's models beside ours, then recommendations."""
    from latentfactors.data import DatasetNotFoundError, DownloadError
    from latentfactors.demo import format_demo, run_demo

    def progress(label, n_epochs, early_stopping):
        if out.quiet:
            return None
        return EpochProgress(n_epochs, label=label, early_stopping=early_stopping)

    try:
        result = run_demo(
            args.dataset,
            seed=args.seed,
            quick=args.quick,
            data_home=args.data_home,
            download=not args.no_download,
            n_threads=args.threads,
            progress=progress,
        )
    except (DatasetNotFoundError, DownloadError) as exc:
        raise CLIError(str(exc)) from exc
    out.result({"command": "demo", **result.to_dict()}, format_demo(result))
    return 0


# ---------------------------------------------------------------- the parser


def _common(json_help="print one JSON object on stdout"):
    """Options every command takes (also accepted before the command name)."""
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("output")
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=json_help)
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress or notes on stderr",
    )
    group.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show a traceback on errors"
    )
    return parent


def _data_home_arg(parser):
    parser.add_argument(
        "--data-home",
        metavar="DIR",
        default=None,
        help="dataset folder (default: $LATENTFACTORS_DATA or ~/.cache/latentfactors)",
    )


def _ratings_args(parser, *, required=True, dataset_help="a MovieLens variant"):
    group = parser.add_argument_group("ratings")
    source = group.add_mutually_exclusive_group(required=required)
    source.add_argument("--dataset", type=_dataset_name, metavar="NAME", help=dataset_help)
    source.add_argument(
        "--ratings", metavar="FILE", help="a CSV/TSV/'::' file of user,item,rating[,timestamp]"
    )
    group.add_argument(
        "--columns",
        type=_columns,
        metavar="COLS",
        help="--ratings columns: names in order for a headerless file (user,item,rating,skip) "
        "or a header mapping (userId=user,movieId=item,stars=rating)",
    )
    group.add_argument(
        "--sep",
        type=_separator,
        metavar="SEP",
        help="--ratings field separator (default: sniffed; 'tab' for TAB)",
    )
    group.add_argument(
        "--duplicates",
        choices=["raise", "last", "first", "mean"],
        default="raise",
        help="repeated (user, item) pairs (default: raise)",
    )
    group.add_argument(
        "--no-download", action="store_true", help="fail instead of downloading a missing dataset"
    )
    _data_home_arg(group)


def _titles_args(parser):
    group = parser.add_argument_group("titles")
    src = group.add_mutually_exclusive_group()
    src.add_argument(
        "--items", metavar="FILE", help="CSV with an item id column and a title column"
    )
    src.add_argument(
        "--dataset",
        type=_dataset_name,
        metavar="NAME",
        help="read titles from this MovieLens variant (default: the sidecar's)",
    )
    _data_home_arg(group)


def build_parser() -> argparse.ArgumentParser:
    """The ``latentfactors`` argument parser with all its subcommands."""
    common = _common()
    parser = _Parser(
        prog=PROG,
        description="Latent-factor recommenders for explicit ratings.",
        epilog="Run 'latentfactors COMMAND --help' for a command's options. Exit status: "
        "0 ok, 1 runtime error, 2 usage error.",
    )
    from latentfactors import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name, func, help, description=None):
        p = sub.add_parser(name, parents=[common], help=help, description=description or help)
        p.set_defaults(func=func)
        return p

    p = add(
        "demo",
        cmd_demo,
        "train the notebook's models and ours; print a comparison",
        "Train the original notebook's two configurations and our defaults on one "
        "seeded 80/12/8 random split, print their test MSE beside the notebook's "
        "published figures, then three recommendations for one user.",
    )
    p.add_argument(
        "--dataset",
        type=_dataset_name,
        default="ml-latest-small",
        metavar="NAME",
        help="MovieLens variant (default ml-latest-small; ml-latest-small-2016 is "
        "the notebook's snapshot)",
    )
    p.add_argument(
        "--seed",
        type=_int_type(0, "a non-negative integer"),
        default=0,
        help="seeds the split, the models and the user (default 0)",
    )
    p.add_argument("--quick", action="store_true", help="2 epochs per model (for tests)")
    p.add_argument(
        "--threads",
        type=_threads,
        default=1,
        metavar="N",
        help="threads per model (default 1; results do not depend on it)",
    )
    p.add_argument(
        "--no-download", action="store_true", help="fail instead of downloading a missing dataset"
    )
    _data_home_arg(p)

    p = add(
        "train",
        cmd_train,
        "fit a model on ratings and save it",
        "Fit a model, printing one line per epoch with an ETA (stderr), then the "
        "train/valid/test metrics. --save also writes MODEL.npz.json beside the model, "
        "naming the data so that 'recommend' can show titles.",
    )
    _ratings_args(p, dataset_help="a MovieLens variant (downloaded once when missing)")
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        choices=list(MODEL_NAMES),
        default="biased-mf",
        help="biased-mf (BiasedMF, default) or mlp (MLPMF)",
    )
    for name, typ, metavar, help_text in HYPERPARAMETERS:
        g.add_argument(
            _flag(name),
            dest="hp_" + name,
            type=typ,
            metavar=metavar,
            default=None,
            help=help_text + _defaults_help(name),
        )
    for name, help_text in BOOL_HYPERPARAMETERS:
        g.add_argument(
            _flag(name),
            dest="hp_" + name,
            action=argparse.BooleanOptionalAction,
            default=None,
            help=help_text + _defaults_help(name),
        )
    g = p.add_argument_group("split")
    g.add_argument(
        "--split",
        choices=["random", "user", "time"],
        default="random",
        help="random: shuffled rows; user: a share of each user's ratings; time: "
        "the latest ratings (default random)",
    )
    g.add_argument(
        "--valid-fraction",
        type=_float_type(0, high=1, high_open=True, what="a number in [0, 1)"),
        default=0.1,
        metavar="F",
        help="share held out for validation and early stopping; 0 = none (default 0.1)",
    )
    g.add_argument(
        "--test-fraction",
        type=_float_type(0, high=1, high_open=True, what="a number in [0, 1)"),
        default=0.0,
        metavar="F",
        help="share held out for a final test (default 0)",
    )
    g.add_argument(
        "--seed",
        type=_int_type(0, "a non-negative integer"),
        default=0,
        help="seeds the split and the model (default 0)",
    )
    g = p.add_argument_group("output files")
    g.add_argument("--save", metavar="MODEL.npz", help="write the fitted model here")
    g.add_argument(
        "--items",
        metavar="FILE",
        help="titles file to record for 'recommend' (item id and title columns)",
    )

    p = add(
        "evaluate",
        cmd_evaluate,
        "MSE/RMSE/MAE of a saved model on ratings (and ranking metrics with --k)",
    )
    p.add_argument("model_file", metavar="MODEL.npz")
    _ratings_args(p)
    g = p.add_argument_group("ranking")
    g.add_argument(
        "--k",
        type=_POS_INT,
        metavar="K",
        help="also score top-K lists: precision, recall, NDCG, MAP, hit rate, coverage",
    )
    g.add_argument(
        "--threshold",
        type=_float_type(what="a number"),
        default=4.0,
        metavar="T",
        help="a rating >= T makes an item relevant (default 4)",
    )

    p = add(
        "recommend",
        cmd_recommend,
        "top-N items for a user",
        "Top-N items for a user by predicted rating, leaving out what the user rated "
        "in training. Titles come from --items, --dataset or the model's sidecar.",
    )
    p.add_argument("model_file", metavar="MODEL.npz")
    p.add_argument("--user", required=True, metavar="ID", help="raw user id")
    p.add_argument("-n", "--n", type=_POS_INT, default=10, help="how many (default 10)")
    p.add_argument(
        "--include-seen", action="store_true", help="keep items the user rated in training"
    )
    p.add_argument(
        "--popularity-weight",
        type=_float_type(what="a number"),
        default=0.0,
        metavar="W",
        help="rank by score + W * ln(1 + ratings of the item) (default 0: the model alone)",
    )
    _titles_args(p)

    p = add(
        "similar",
        cmd_similar,
        "the items (or users) most similar to an item (or user)",
        "The items most similar to --item ID (or the users most similar to --user ID), "
        "by the cosine (or dot product) of their learned vectors.",
    )
    p.add_argument("model_file", metavar="MODEL.npz")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--item", metavar="ID", help="raw item id")
    which.add_argument("--user", metavar="ID", help="raw user id (similar users)")
    p.add_argument("-n", "--n", type=_POS_INT, default=10, help="how many (default 10)")
    p.add_argument("--metric", choices=["cosine", "dot"], default="cosine", help="(default cosine)")
    _titles_args(p)

    p = add("info", cmd_info, "describe a saved model")
    p.add_argument("model_file", metavar="MODEL.npz")

    p = add("datasets", cmd_datasets, "list the MovieLens variants and which are cached")
    _data_home_arg(p)
    return parser


def main(argv=None) -> int:
    """Run the command line; return the exit status (0 ok, 1 runtime error, 2 usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:  # started with the stream closed (`>&-`)
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - kept for the run
    try:
        args = build_parser().parse_args(argv)
        debug = debug or args.debug
        return args.func(args, Output(args))
    except CLIError as exc:
        if debug:
            raise
        _error(str(exc))
        return exc.status
    except KeyboardInterrupt:
        print(file=sys.stderr)
        _error("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:  # noqa: BLE001 - one line instead of a traceback
        if debug:
            raise
        message = str(exc) or type(exc).__name__
        _error(f"{message} ({type(exc).__name__}; rerun with --debug for a traceback)")
        return 1


# Advice in the library's messages, as it reads on the command line.
_CLI_ADVICE = (
    (re.compile(r"duplicates='(\w+)'"), r"--duplicates \1"),
    (re.compile(r"\(download=False\)"), "(--no-download)"),
    (
        re.compile(r"pass data_home=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"),
        lambda m: f"pass --data-home {shlex.quote(ast.literal_eval(m[1]))}",
    ),
    (
        re.compile(r"convert them(?: first)?, e\.g\. with \.astype\(\w+\)(?: or \.astype\(\w+\))?"),
        "check that the file and the model go together, and which columns hold the ids (--columns)",
    ),
)


def _for_the_command_line(message: str) -> str:
    for pattern, replacement in _CLI_ADVICE:
        message = pattern.sub(replacement, message)
    return message


def _error(message: str) -> None:
    text = " ".join(_for_the_command_line(str(message)).split())  # one line, always
    print(f"{PROG}: error: {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
