"""``recommend`` and ``similar``: ranked items (or users) for one id, with titles when known."""

from __future__ import annotations

import decimal
import os

import numpy as np
import pandas as pd

from latentfactors.cli.errors import CLIError, UnknownIdError
from latentfactors.cli.files import load_model_file, read_sidecar, read_titles
from latentfactors.cli.output import Output, examples, finite, plain_id, table

__all__ = ["cmd_recommend", "cmd_similar", "parse_id", "recommend_frame", "similar_frame"]


def parse_id(text: str, index, what: str, *, string_ids: bool = False):
    """A raw id typed on the command line, converted to the model's id type.

    Parameters
    ----------
    text : str
        The id as typed, e.g. ``"1"``.
    index : IdIndex
        The model's ``user_index_`` or ``item_index_``.
    what : str
        ``"user"`` or ``"item"``, for messages.
    string_ids : bool
        ``--string-ids``: the id is text as typed; a model whose ids are
        numbers is then a mistake (CLIError).

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
    if string_ids and kind != "U":
        raise CLIError(
            f"--string-ids: this model's {what} ids are numbers (e.g. {examples(ids)}), "
            "not strings; leave out --string-ids"
        )
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
            f"e.g. {examples(ids)}"
        ) from None
    if value not in index:
        raise UnknownIdError(
            f"unknown {what} {text!r}: the model knows {len(ids):,} {what}s, e.g. {examples(ids)}"
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


def titles_for(args, model_path, out: Output) -> tuple[dict, str | None]:
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


def _as_frame(result: pd.DataFrame, id_column: str = "item") -> pd.DataFrame:
    """The id and ``score`` columns of a ``recommend``/``similar_*`` frame, as item/score."""
    return pd.DataFrame(
        {"item": result[id_column].to_numpy(), "score": result["score"].to_numpy(np.float64)}
    )


def recommend_frame(
    model, user, n: int = 10, *, exclude_seen: bool = True, popularity_weight: float = 0.0
) -> pd.DataFrame:
    """Top-``n`` items for a known raw user id: ``item`` and ``score`` columns, best first.

    A thin wrapper of the model's ``recommend``: the scores are raw
    predictions, not clipped to the rating range, and the items the user
    rated in training are left out unless ``exclude_seen`` is false.

    Raises
    ------
    UnknownIdError
        If the model does not know ``user``.
    """
    result = model.recommend(
        user, n=n, exclude_seen=exclude_seen, popularity_weight=popularity_weight
    )
    return _as_frame(result)


def similar_frame(model, raw_id, n: int = 10, *, kind: str = "item", metric: str = "cosine"):
    """The ``n`` items (``kind="item"``) or users most similar to a known raw id.

    Wraps the model's ``similar_items`` / ``similar_users``. The result has
    ``item`` (the ids, whatever their kind) and ``score`` columns.

    Raises
    ------
    UnknownIdError
        If the model does not know ``raw_id``.
    """
    method = model.similar_items if kind == "item" else model.similar_users
    return _as_frame(method(raw_id, n=n, metric=metric), id_column=kind)


def _ranked(
    frame: pd.DataFrame, titles: dict, score_name: str, id_name: str = "item", predicted=None
):
    """JSON records and a text table of ranked ids with scores (and titles).

    With ``predicted`` (the model's predicted ratings of the rows), the table
    shows them as ``rating`` in place of the ranking score, and the records
    carry both.
    """
    rows, records = [], []
    for k, (raw, score) in enumerate(zip(frame["item"], frame["score"], strict=True)):
        raw = plain_id(raw)
        record = {"rank": k + 1, id_name: raw, "score": finite(score)}
        shown = score
        if predicted is not None:
            record["predicted_rating"] = shown = finite(predicted[k])
        row = [str(k + 1), str(raw), f"{shown:.3f}"]
        if id_name == "item":
            record["title"] = titles.get(str(raw))
            row.append(record["title"] or "")
        records.append(record)
        rows.append(row)
    header = ["#", id_name, score_name] + (["title"] if id_name == "item" else [])
    return records, table(header, rows, numeric={0, 2})


def cmd_recommend(args, out: Output) -> int:
    """``latentfactors recommend``: top-N items for one user, with titles when known."""
    model = load_model_file(args.model_file)
    user = parse_id(args.user, model.user_index_, "user", string_ids=args.string_ids)
    titles, source = titles_for(args, args.model_file, out)
    frame = recommend_frame(
        model,
        user,
        args.n,
        exclude_seen=not args.include_seen,
        popularity_weight=args.popularity_weight,
    )
    # The table shows what `predict` says of each pair (clipped to the rating
    # range when the model clips), not the raw ranking score.
    users = np.repeat(np.asarray([user]), len(frame))
    predicted = model.predict(users, frame["item"].to_numpy()) if len(frame) else None
    records, text = _ranked(frame, titles, "rating", predicted=predicted)
    shown = plain_id(user)
    payload = {
        "command": "recommend",
        "model": args.model_file,
        "user": shown,
        "titles": source,
        "recommendations": records,
    }
    if not records:
        note = (
            f"user {shown} rated every item the model knows in training: there is nothing "
            "left to recommend (--include-seen ranks the items they rated)"
        )
        payload["note"] = note
        out.result(payload, note)
        return 0
    seen = "" if args.include_seen else ", leaving out items rated in training"
    out.result(payload, f"top {len(records)} for user {shown}{seen}:\n{text}")
    return 0


def cmd_similar(args, out: Output) -> int:
    """``latentfactors similar``: the items (or users) nearest to one item (or user)."""
    model = load_model_file(args.model_file)
    kind = "item" if args.item is not None else "user"
    if kind == "item":
        raw = parse_id(args.item, model.item_index_, "item", string_ids=args.string_ids)
        titles, source = titles_for(args, args.model_file, out)
    else:
        raw = parse_id(args.user, model.user_index_, "user", string_ids=args.string_ids)
        titles, source = {}, None
    frame = similar_frame(model, raw, args.n, kind=kind, metric=args.metric)
    records, text = _ranked(frame, titles, args.metric, id_name=kind)
    raw = plain_id(raw)
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
    out.result(payload, f"{kind}s most similar to {kind} {name}:\n{text}")
    return 0
