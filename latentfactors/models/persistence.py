"""Saving and loading fitted models: one ``.npz`` file, written atomically, read without pickle.

A model file holds

* ``format``, ``format_version``: :data:`FORMAT_NAME` and the version that wrote it;
* ``model_class``: the class name, looked up in
  :data:`latentfactors.models.MODEL_CLASSES` on load;
* ``hyperparams``, ``history``, ``fit_info``: JSON text;
* ``user_ids``, ``item_ids``: the id maps (:meth:`IdIndex.to_array`);
* ``global_mean``, ``rating_range``, ``seen_indptr``, ``seen_items``;
* ``state/<name>``: each learned array the model lists in ``_state_names()``.

Loading checks every part against the others (id maps against array shapes,
the history's lists against each other, the hyperparameters as ``fit`` would)
and reports any mismatch as :class:`~latentfactors.errors.ModelFileError`.

A save to a path writes ``.tmp-<pid>-<host>-<random>.npz`` beside the target
and renames it into place. The temporary is removed when the save fails or is
interrupted (Ctrl-C, or SIGTERM when the process leaves SIGTERM to its default
action); one left by a process that was killed outright is removed by the
next save into that folder (:func:`remove_stale_temporaries`): at once when
it names this machine and a process that no longer runs, else (a shared network
folder, where another machine's writer may still run) once nothing has written
to it for :data:`STALE_SECONDS`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import secrets
import signal
import socket
import threading
import time

import numpy as np

from latentfactors._validation import is_int
from latentfactors.data.ids import IdIndex
from latentfactors.errors import ModelFileError

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "load", "load_model", "save"]

FORMAT_NAME = "latentfactors-model"
FORMAT_VERSION = 1
HISTORY_KEYS = ("epoch", "train_mse", "valid_mse", "seconds")

# A save writes ``.tmp-<pid>-<host>-<random>.npz`` beside the target, then renames
# it. A pid means something only on its own machine, hence the host tag; names
# without one (older versions) are treated as another machine's.
_TEMP_NAME = re.compile(r"\.tmp-(\d+)-(?:([0-9a-f]{8})-)?[a-z0-9_]+\.npz")
# A temporary whose writer still runs (or whose pid was reused) is left alone
# until it has not been written to for this long.
STALE_SECONDS = 24 * 3600


# ---------------------------------------------------------------- save


def hyperparams_json(model) -> str:
    """The model's hyperparameters as JSON; a callback or a Generator is saved as ``None``."""
    params = model.get_params()
    params["callback"] = None
    if isinstance(params.get("random_state"), np.random.Generator):
        params["random_state"] = None
    return json.dumps(params, default=_plain_number)


def _plain_number(value):
    """JSON for NumPy numbers among the hyperparameters (``n_factors=np.int64(8)``)."""
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    raise TypeError(f"{value!r} ({type(value).__name__}) cannot be saved as a hyperparameter")


def _arrays(model) -> dict:
    """Everything a model file holds, by its name in the archive."""
    arrays = {
        "format": np.array(FORMAT_NAME),
        "format_version": np.array(FORMAT_VERSION),
        "model_class": np.array(type(model).__name__),
        "hyperparams": np.array(hyperparams_json(model)),
        "history": np.array(json.dumps(model.history_)),
        "fit_info": np.array(
            json.dumps({"n_epochs_": model.n_epochs_, "best_epoch_": model.best_epoch_})
        ),
        "user_ids": model.user_index_.to_array(),
        "item_ids": model.item_index_.to_array(),
        "global_mean": np.array(model.global_mean_),
        "rating_range": np.array(model.rating_range_),
        "rating_scale": np.array(getattr(model, "rating_scale_", 1.0)),
        "seen_indptr": model.seen_indptr_,
        "seen_items": model.seen_items_,
    }
    for name, arr in model._get_state().items():
        arrays["state/" + name] = arr
    return arrays


def save(model, file) -> None:
    """Write a fitted model to ``file``: see :meth:`FactorModel.save`."""
    model._check_fitted()
    arrays = _arrays(model)
    if not isinstance(file, (str, os.PathLike)):
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        file.write(buffer.getvalue())
        return
    path = os.fspath(file)
    # Through a symbolic link to the file it names, which is what gets replaced.
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"cannot save to {path}: the folder {folder} does not exist; create it first"
        )
    if os.path.isdir(target):
        raise IsADirectoryError(
            f"cannot save to {path}: it is a folder; name a file in it, "
            f"e.g. {os.path.join(path, 'model.npz')}"
        )
    mode = 0o666 & ~_umask()  # the mode any new file gets
    if os.path.exists(target):
        mode = os.stat(target).st_mode & 0o7777  # keep an existing file's mode
        # (as root os.access says yes to any file: the mode bits tell)
        if not os.access(target, os.W_OK) or not mode & 0o222:
            raise PermissionError(
                f"cannot save to {path}: the file is read-only; make it writable "
                "or save under another name"
            )
    remove_stale_temporaries(folder)
    with _cleanup_on_sigterm():
        # Named before it exists, so an interrupt at any point after its creation
        # finds it to remove; the name (pid, host, random) is ours alone.
        tmp = os.path.join(folder, _temp_name())
        try:
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o600)
            except OSError as exc:
                raise type(exc)(
                    exc.errno, f"cannot save to {path}: cannot write in {folder} ({exc.strerror})"
                ) from exc
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)  # created private (0600) until complete
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise


class _Terminated(BaseException):
    """SIGTERM arrived while a model file was being written."""


@contextlib.contextmanager
def _cleanup_on_sigterm():
    """Let a save remove its temporary file on SIGTERM, then terminate as asked.

    SIGTERM's default action kills the process at once, leaving a full-size
    temporary behind. While the block runs (main thread only, where Python
    handles signals), SIGTERM raises an exception instead, so the cleanup runs;
    the default action is then restored and the signal sent again. A program
    that handles or ignores SIGTERM itself keeps its own handling.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    received = []

    def handler(signum, frame):
        if not received:  # a second SIGTERM must not break the cleanup of the first
            received.append(signum)
            raise _Terminated

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if received:
            os.kill(os.getpid(), signal.SIGTERM)


_O_BINARY = getattr(os, "O_BINARY", 0)


def _host_tag() -> str:
    """Eight hex digits naming this machine, for the temporaries' names."""
    return hashlib.blake2s(socket.gethostname().encode(), digest_size=4).hexdigest()


def _temp_name() -> str:
    return f".tmp-{os.getpid()}-{_host_tag()}-{secrets.token_hex(6)}.npz"


def remove_stale_temporaries(folder: str) -> list[str]:
    """Remove temporaries that an earlier save left in ``folder``; return their paths.

    Only files named as :func:`save` names its temporaries are candidates:
    those of a process of this machine that no longer runs, and any that
    nothing has written to for :data:`STALE_SECONDS` (the pid may have been
    reused; another machine's writer may share the folder). A concurrent
    save's temporary is never removed. Errors (a file already gone, a
    read-only folder) are ignored: the save itself reports what matters.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    host = _host_tag()
    for entry in entries:
        match = _TEMP_NAME.fullmatch(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            idle = now - entry.stat(follow_symlinks=False).st_mtime
            pid = int(match.group(1))
            ours = match.group(2) == host
            if idle < STALE_SECONDS and (not ours or pid == os.getpid() or _process_exists(pid)):
                continue
            os.remove(entry.path)
        except OSError:
            continue
        removed.append(entry.path)
    return removed


def _process_exists(pid: int) -> bool:
    """Whether a process with this id runs (another user's included); when unsure, yes."""
    if os.name == "nt" or pid <= 0:
        return True  # on Windows os.kill would end the process, not probe it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True  # another user's process, or no pid at all: keep the file
    return True


def _umask() -> int:
    """The process's file-creation mask (read without changing it where Linux allows)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------- load


def _read(file) -> dict:
    """The arrays of a model file, checked to be one written by this library."""
    name = getattr(file, "name", file)
    try:
        loaded = np.load(file, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ModelFileError(
                f"{name} is not a latentfactors model file: it is an .npy array, "
                "not an .npz archive",
                file=file,
            )
        with loaded as npz:
            contents = {key: npz[key] for key in npz.files}
    except (FileNotFoundError, ModelFileError):
        raise
    except Exception as exc:  # noqa: BLE001 - zip, pickle and value errors alike
        # NumPy reads a file that is not .npz or .npy as a pickle, which it
        # refuses with advice to unpickle it: not advice to pass on.
        why = "not an .npz archive" if "pickled" in str(exc) else str(exc)
        raise ModelFileError(
            f"{name} is not a readable latentfactors model file ({why})", file=file
        ) from exc
    if str(contents.get("format", "")) != FORMAT_NAME:
        raise ModelFileError(f"{name} is not a latentfactors model file", file=file)
    version = contents.get("format_version")
    if version is None:
        raise ModelFileError(f"{name} is damaged: it has no format_version", file=file)
    if version.ndim != 0 or version.dtype.kind not in "iu":
        raise ModelFileError(
            f"{name} is damaged: format_version is {version.tolist()!r}, not a whole number",
            file=file,
        )
    version = int(version)
    if version < 1:
        raise ModelFileError(
            f"{name} is damaged: format_version is {version}; versions start at 1", file=file
        )
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{name} has format version {version}; this latentfactors reads up to "
            f"{FORMAT_VERSION}: upgrade the package",
            file=file,
        )
    if "model_class" not in contents:
        raise ModelFileError(f"{name} is damaged: it names no model class", file=file)
    return contents


def load(cls, file):
    """Read a model file as ``cls`` or a subclass of it: see :meth:`FactorModel.load`."""
    from latentfactors.models import MODEL_CLASSES
    from latentfactors.models.base import FactorModel

    name = getattr(file, "name", file)
    contents = _read(file)
    kind = str(contents["model_class"])
    target = MODEL_CLASSES.get(kind)
    if target is None:
        raise ModelFileError(f"{name} holds an unknown model class {kind!r}", file=file)
    if cls is not FactorModel and not issubclass(target, cls):
        raise ModelFileError(
            f"{name} holds a {kind}, not a {cls.__name__}; use {kind}.load or "
            "latentfactors.load_model",
            file=file,
        )
    try:
        model = target(**target._saved_hyperparams(json.loads(str(contents["hyperparams"]))))
        model.history_ = _checked_history(json.loads(str(contents["history"])))
        _set_fit_info(model, json.loads(str(contents["fit_info"])))
        model.user_index_ = IdIndex.from_array(contents["user_ids"])
        model.item_index_ = IdIndex.from_array(contents["item_ids"])
        model.global_mean_ = float(contents["global_mean"])
        if not math.isfinite(model.global_mean_):
            raise ModelFileError(f"the global mean is {model.global_mean_}")
        low, high = (float(x) for x in np.asarray(contents["rating_range"]).ravel())
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise ModelFileError(f"the rating range ({low}, {high}) is not a finite range")
        model.rating_range_ = (low, high)
        # Files written before training was scale-free hold no scale: it was 1.
        model.rating_scale_ = float(contents.get("rating_scale", 1.0))
        if not (math.isfinite(model.rating_scale_) and model.rating_scale_ > 0):
            raise ModelFileError(f"the rating scale {model.rating_scale_} is not a positive number")
        _set_seen(model, contents["seen_indptr"], contents["seen_items"])
        state = {
            key[len("state/") :]: value
            for key, value in contents.items()
            if key.startswith("state/")
        }
        model._validate()  # the saved hyperparameters, as fit would check them
        model._restore_state(state)
        model._fitted_structure = model._structure()
    except Exception as exc:  # noqa: BLE001
        raise ModelFileError(f"{name} is damaged: {exc}", file=file) from exc
    return model


def load_model(file):
    """Load any model saved by this library, whatever its class."""
    from latentfactors.models.base import FactorModel

    return load(FactorModel, file)


def _checked_history(history) -> dict:
    """A saved ``history_``: the four lists of numbers, of one length."""
    if not isinstance(history, dict) or set(history) != set(HISTORY_KEYS):
        raise ModelFileError(f"history must hold exactly {list(HISTORY_KEYS)}")
    lengths = set()
    for key in HISTORY_KEYS:
        values = history[key]
        if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            raise ModelFileError(f"history[{key!r}] is not a list of numbers")
        lengths.add(len(values))
    if len(lengths) > 1:
        raise ModelFileError(f"the history's lists differ in length: {sorted(lengths)}")
    return history


def _set_fit_info(model, info) -> None:
    """Install a model file's ``fit_info``: exactly the epoch counts that ``save`` writes."""
    keys = {"n_epochs_", "best_epoch_"}
    if not isinstance(info, dict) or set(info) != keys:
        raise ModelFileError(f"fit_info must hold exactly {sorted(keys)}, found {info!r}")
    n, best = info["n_epochs_"], info["best_epoch_"]
    if not (is_int(n) and is_int(best) and 0 <= best <= n):
        raise ModelFileError(f"fit_info has epochs n_epochs_={n!r}, best_epoch_={best!r}")
    model.n_epochs_, model.best_epoch_ = int(n), int(best)


def _set_seen(model, indptr, items) -> None:
    """Install the seen-items CSR after checking it against the id maps."""
    for key, arr in (("seen_indptr", indptr), ("seen_items", items)):
        if arr.dtype.kind not in "iu":
            raise ModelFileError(f"{key} has dtype {arr.dtype}, not integers")
    model.seen_indptr_ = indptr = indptr.astype(np.int64, copy=False)
    model.seen_items_ = items = items.astype(np.int32, copy=False)
    if (
        indptr.ndim != 1
        or len(indptr) != len(model.user_index_) + 1
        or indptr[0] != 0
        or np.any(indptr[1:] < indptr[:-1])
        or indptr[-1] != len(items)
        or (len(items) and (items.min() < 0 or items.max() >= len(model.item_index_)))
    ):
        raise ModelFileError("the seen-items arrays do not match the id maps")


def restore_state(model, state: dict) -> None:
    """Check loaded arrays against the model's shapes, then install them."""
    expected = set(model._state_names())
    if set(state) != expected:
        raise ModelFileError(f"expected arrays {sorted(expected)}, found {sorted(state)}")
    model._set_state(state)
    model._check_state_shapes()


def check_state_shapes(model) -> None:
    """Refuse loaded arrays that do not fit the ids, ``n_factors`` or float32.

    Every model has user and item factors and biases; a model with more arrays
    extends :meth:`FactorModel._check_state_shapes`, which calls this.
    """
    nu, ni = len(model.user_index_), len(model.item_index_)
    P, Q = model.user_factors_, model.item_factors_
    if P.ndim != 2 or Q.ndim != 2 or P.shape[1] != Q.shape[1]:
        raise ModelFileError(f"factor arrays have shapes {P.shape} and {Q.shape}")
    for name in ("user_bias_", "item_bias_"):
        if np.ndim(getattr(model, name)) != 1:
            raise ModelFileError(f"{name} has shape {np.shape(getattr(model, name))}, not 1-D")
    if P.shape[0] != nu or len(model.user_bias_) != nu:
        raise ModelFileError(f"user arrays do not match the {nu} user ids")
    if Q.shape[0] != ni or len(model.item_bias_) != ni:
        raise ModelFileError(f"item arrays do not match the {ni} item ids")
    if P.shape[1] != model.n_factors:
        raise ModelFileError(f"factors have {P.shape[1]} columns, n_factors={model.n_factors}")
    integer = getattr(model, "_integer_state", ())  # ids and counts, not parameters
    for name, arr in model._get_state().items():
        if name in integer:
            if arr.dtype != np.int64:
                raise ModelFileError(f"{name} has dtype {arr.dtype}, expected int64")
        elif arr.dtype != np.float32:
            raise ModelFileError(f"{name} has dtype {arr.dtype}, expected float32")
        if not np.isfinite(arr).all():
            raise ModelFileError(f"{name} holds NaN or infinite values")
