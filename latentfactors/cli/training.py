"""``train``, ``evaluate`` and ``info``: fit and save a model, measure it, describe a file."""

from __future__ import annotations

import decimal
import io
import math
import os
import tempfile
import time

import pandas as pd

from latentfactors.cli.errors import CLIError, UsageError
from latentfactors.cli.files import (
    SIDECAR_SUFFIX,
    load_model_file,
    load_ratings_arg,
    read_sidecar,
    read_titles,
    sidecar_path,
    write_sidecar,
)
from latentfactors.cli.hyperparameters import build_model
from latentfactors.cli.output import Output, examples, finite, format_duration, table

__all__ = ["cmd_evaluate", "cmd_info", "cmd_train"]


# ---------------------------------------------------------------- train


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
            numbers = ", ".join(str(k) for k in range(len(named)))
            names = ", ".join(name for _, name in named)
            raise CLIError(
                f"cannot split the ratings (--split random; parts {numbers} of the split are "
                f"{names}): {exc}"
            ) from exc
        train = parts.pop(0)
        valid = parts.pop(0) if v > 0 else None
        test = parts.pop(0) if t > 0 else None
        return train, valid, test
    if "timestamp" not in frame.columns and args.split == "time":
        raise CLIError(
            "--split time needs timestamps, but the ratings have none; use --split random "
            "or --split user, or name a timestamp column with --columns"
        )
    splitter = user_holdout_split if args.split == "user" else temporal_split

    def hold_out(part, flag, data, fraction, seed):
        """Cut ``fraction`` of ``data`` off as ``part``; errors name the flag behind it."""
        try:
            if args.split == "user":
                return user_holdout_split(data, fraction, random_state=seed)
            return temporal_split(data, fraction)
        except ValueError as exc:
            share = flag if data is frame else f"{flag} (of what the test part leaves)"
            # The library names what it holds out the test set; here it may be another part.
            where = "" if part == "test" else f"; {splitter.__name__}'s test set is the {part} part"
            raise CLIError(
                f"cannot hold out the {part} part (--split {args.split}, {share}{where}): {exc}"
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


def _metrics_dict(model, part) -> dict | None:
    if part is None or len(part) == 0:
        return None
    m = model.evaluate(part)
    return {"n": len(part), **{k: finite(v) for k, v in m.items()}}


def _check_save_path(path) -> None:
    """Fail now, not after training, when ``--save`` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"cannot save to {path}: folder {folder} does not exist")
    if os.path.isdir(path):
        raise CLIError(f"cannot save to {path}: it is a folder; name a file in it")
    try:  # can a file be made there?
        with tempfile.TemporaryFile(dir=os.path.dirname(os.path.realpath(path))):
            pass
    except OSError as exc:
        raise CLIError(f"cannot save to {path}: {exc.strerror}") from exc
    if os.fspath(path).endswith(SIDECAR_SUFFIX):
        raise UsageError(
            f"--save {path}: names ending in {SIDECAR_SUFFIX} are kept for the file "
            "that describes a model; name the model file, e.g. model.npz"
        )


class _Interrupted(CLIError):
    """Training was interrupted (Ctrl-C); exit status 130, as for any interruption."""

    status = 130


class _EpochEnd:
    """``train``'s epoch callback: the progress line, and with ``--save`` a copy of
    the model the fit would keep if it ended now.

    Ctrl-C takes effect within about a second, usually part-way through an
    epoch, where the model holds parameters the history does not describe: the
    copy is what ``--save`` writes then. It is the last finished epoch, or with
    early stopping the finished epoch of lowest validation MSE, as the fit
    itself would restore. A copy is replaced only once the next one is complete.
    """

    def __init__(self, progress, model, keep: bool, *, best_only: bool = False):
        self.progress = progress
        self.model = model
        self.keep = keep
        self.best_only = best_only
        self.snapshot = None
        self.kept = 0  # the epoch the snapshot holds
        self.best_mse = math.inf
        self.finished = 0

    def __call__(self, epoch: int, logs: dict) -> None:
        self.finished = epoch
        if self.keep and (not self.best_only or logs["valid_mse"] < self.best_mse):
            buffer = io.BytesIO()
            self.model.save(buffer)
            self.snapshot, self.kept = buffer, epoch
            self.best_mse = logs.get("valid_mse", math.inf)
        if self.progress is not None:
            self.progress(epoch, logs)


def _save(model, args, titles_file, metrics) -> None:
    """Write the model to ``--save`` and the sidecar that describes it."""
    from latentfactors.data import get_data_home

    model.save(args.save)
    write_sidecar(
        args.save,
        {
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
        },
    )


def _save_interrupted(model, args, titles_file, interrupted, *, trained: bool, epoch_end):
    """After Ctrl-C, save what training reached to ``--save`` (if an epoch finished); then stop.

    ``trained`` says the fit had ended when Ctrl-C came, so the model itself is
    what to save; otherwise it is the copy :class:`_EpochEnd` kept, if any. No
    metrics are computed: the user asked to stop.
    """
    if not args.save:
        raise interrupted
    if trained:
        _save(model, args, titles_file, None)
        raise _Interrupted(
            f"interrupted after training had finished: saved {args.save} (kept epoch "
            f"{model.best_epoch_} of {model.n_epochs_}) without its metrics"
        ) from interrupted
    if epoch_end.snapshot is None:
        when = "first epoch finished" if not epoch_end.finished else "first epoch could be kept"
        raise _Interrupted(
            f"interrupted before the {when}: nothing saved to {args.save}"
        ) from interrupted
    from latentfactors.models import load_model

    epoch_end.snapshot.seek(0)
    _save(load_model(epoch_end.snapshot), args, titles_file, None)
    kept, finished = epoch_end.kept, epoch_end.finished
    if kept == finished:
        which = f"epoch {kept} of {model.n_epochs}, the last finished epoch"
    elif not epoch_end.best_only:
        which = (
            f"epoch {kept} of {model.n_epochs} (Ctrl-C came while epoch {finished} "
            "was being copied)"
        )
    else:
        which = (
            f"epoch {kept}, the lowest validation MSE of the {finished} epochs that finished "
            "(early stopping keeps it)"
        )
    raise _Interrupted(f"interrupted: saved {args.save} as it was after {which}") from interrupted


def cmd_train(args, out: Output) -> int:
    """``latentfactors train``: fit, report per-epoch progress and metrics, save.

    Interrupted (Ctrl-C) once an epoch has finished, it saves to ``--save`` the
    model the fit would have kept had it ended there (the last finished epoch,
    or with early stopping the best one so far) and exits with status 130.
    """
    from latentfactors.models import DivergenceError

    model = build_model(args)  # usage errors before any data is read
    v, t = args.valid_fraction, args.test_fraction
    if v + t >= 1:
        raise UsageError(
            f"--valid-fraction {v:g} plus --test-fraction {t:g} leave nothing to train on"
        )
    if args.save:
        _check_save_path(args.save)
    titles_file = os.path.abspath(args.items) if args.items else None
    if titles_file:
        read_titles(titles_file)  # fail now, not after training
    frame, source = load_ratings_arg(args)
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
    stops_early = valid is not None and bool(model.get_params().get("early_stopping"))
    progress = out.progress(model.n_epochs, early_stopping=stops_early)
    epoch_end = _EpochEnd(progress, model, keep=bool(args.save), best_only=stops_early)
    model.set_params(callback=epoch_end)
    start = time.perf_counter()
    interrupted = None
    try:
        model.fit(train, valid=valid)
    except KeyboardInterrupt as exc:
        interrupted = exc
    except DivergenceError as exc:
        raise CLIError(str(exc)) from exc
    except ValueError as exc:
        raise CLIError(f"cannot fit: {exc}") from exc
    finally:
        if progress is not None:
            progress.close()
    seconds = time.perf_counter() - start
    model.set_params(callback=None)
    if interrupted is not None:
        _save_interrupted(model, args, titles_file, interrupted, trained=False, epoch_end=epoch_end)
    try:
        metrics = {
            "train": _metrics_dict(model, train),
            "valid": _metrics_dict(model, valid),
            "test": _metrics_dict(model, test),
        }
    except KeyboardInterrupt as exc:
        _save_interrupted(model, args, titles_file, exc, trained=True, epoch_end=epoch_end)
    saved = None
    if args.save:
        _save(model, args, titles_file, metrics)
        saved = os.path.abspath(args.save)
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
        f"trained {type(model).__name__} in {format_duration(seconds)}: {epochs}, "
        f"kept epoch {model.best_epoch_}",
        "",
        table(
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
        lines += ["", f"saved {args.save} (and {sidecar_path(args.save).name})"]
    out.result(payload, "\n".join(lines))
    return 0


# ---------------------------------------------------------------- evaluate


def _id_kind(values) -> str:
    return "strings" if len(values) and isinstance(values[0], str) else "numbers"


def _encode(index, values, what: str, source: str):
    """Codes of ``values`` (-1 for unknown ids); ids of the other kind are a CLIError."""
    try:
        return index.encode(values)
    except TypeError as exc:  # strings for numeric ids, or the reverse
        given, known = _id_kind(values), _id_kind(index.ids)
        hint = " (or --string-ids, to read the ids as text)" if known == "strings" else ""
        raise CLIError(
            f"no {what} id of {source} is known to the model: the {what} ids given are "
            f"{given} (e.g. {examples(values)}) but the model's ids are "
            f"{known} (e.g. {examples(index.ids)}); check that the file and the "
            f"model go together, and which columns hold the ids (--columns){hint}"
        ) from exc


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
    return {name: finite(v) if isinstance(v, float) else v for name, v in result.items()}


def cmd_evaluate(args, out: Output) -> int:
    """``latentfactors evaluate``: error metrics of a saved model on ratings."""
    from latentfactors.metrics import in_training

    model = load_model_file(args.model_file)
    frame, source = load_ratings_arg(args)
    users = _encode(model.user_index_, frame["user"].to_numpy(), "user", source)
    items = _encode(model.item_index_, frame["item"].to_numpy(), "item", source)
    m = model.evaluate(frame)
    seen = int(in_training(model, frame).sum())
    payload = {
        "command": "evaluate",
        "model": args.model_file,
        "ratings": source,
        "n": len(frame),
        "unknown_users": int((users < 0).sum()),
        "unknown_items": int((items < 0).sum()),
        "in_training": seen,
        **{k: finite(v) for k, v in m.items()},
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


# ---------------------------------------------------------------- info


def _kept_valid_mse(model, valid):
    """Validation MSE of the epoch whose parameters the model kept, if it was measured."""
    kept = getattr(model, "best_epoch_", None)
    if not valid or not kept or kept > len(valid):
        return None
    return finite(valid[kept - 1])


def _valid_note(payload) -> str:
    kept, best = payload["kept_valid_mse"], payload["best_valid_mse"]
    if kept is None:
        return "" if best is None else f", best valid MSE {best:.4f}"
    if best is not None and best < kept:
        return f", valid MSE {kept:.4f} (best {best:.4f}, at another epoch)"
    return f", valid MSE {kept:.4f} (the best)"


def cmd_info(args, out: Output) -> int:
    """``latentfactors info``: what a model file holds."""
    model = load_model_file(args.model_file)
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
        "global_mean": finite(model.global_mean_),
        "rating_range": [finite(x) for x in model.rating_range_],
        "n_epochs": getattr(model, "n_epochs_", None),
        "best_epoch": getattr(model, "best_epoch_", None),
        "last_train_mse": finite(train[-1]) if train else None,
        "best_valid_mse": finite(min(valid)) if valid else None,
        "kept_valid_mse": _kept_valid_mse(model, valid),
        "sidecar": meta,
    }
    shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
    lines = [
        f"{args.model_file}: {payload['model']}, {payload['size_bytes'] / 1e6:.1f} MB",
        f"users: {payload['n_users']:,} ({payload['user_id_type']} ids, e.g. "
        f"{examples(model.user_index_.ids)})",
        f"items: {payload['n_items']:,} ({payload['item_id_type']} ids, e.g. "
        f"{examples(model.item_index_.ids)})",
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
