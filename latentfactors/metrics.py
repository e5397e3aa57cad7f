"""Error metrics for rating prediction, and ranking metrics for top-N lists.

Ranking metrics (:func:`ranking_metrics` and one function per metric) score
recommendation lists against held-out ratings. An item is *relevant* to a
user when the user's test rating of it is at least ``threshold`` (default 4).
Only users with at least one relevant test item are averaged over; a user who
has relevant items but no recommendation list counts as a list with no hits.
With ``hits@k`` the relevant items among a user's first ``k`` recommendations
and ``R`` the user's number of relevant items:

* precision@k = hits@k / k (empty slots count as misses);
* recall@k = hits@k / R (not capped at k, so it can stay below 1 when R > k);
* NDCG@k: binary gains, discount ``1 / log2(rank + 1)``, divided by the
  ideal DCG of ``min(k, R)`` hits at the top;
* MAP@k: the mean over users of ``sum_r precision@r * hit_r / min(k, R)``;
* hit rate: the share of users with at least one hit;
* catalogue coverage: distinct recommended items (all lists, first ``k``)
  over the catalogue size.

Everything is vectorised over users: no Python loop per user.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentfactors._validation import check_int, check_real, is_int
from latentfactors.data.coerce import frame_or_tuple
from latentfactors.data.ratings import _show


def _vector(values, name: str) -> np.ndarray:
    """``values`` as a float64 array; strings, complex numbers and the like are refused."""
    if isinstance(values, (pd.Series, pd.Index)) and values.dtype.kind in "biuf":
        # Nullable dtypes (Float64, Int64) hold pd.NA, which numpy cannot convert.
        values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    arr = np.asarray(values)
    if arr.dtype.kind not in "biufO":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.dtype.kind == "O" and arr.size:
        kind = pd.api.types.infer_dtype(arr.ravel(), skipna=True)
        if kind not in ("floating", "integer", "mixed-integer-float", "decimal", "boolean"):
            raise TypeError(
                f"{name} must hold real numbers, got {kind} values such as {arr.ravel()[0]!r}"
            )
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must hold real numbers: {exc}") from exc


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = _vector(y_true, "y_true")
    p = _vector(y_pred, "y_pred")
    if t.ndim != 1 or p.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D, got shapes {t.shape} and {p.shape}")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {len(t)} and {len(p)}")
    if len(t) == 0:
        raise ValueError("y_true and y_pred are empty: there is nothing to score")
    for name, arr in (("y_true", t), ("y_pred", p)):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(
                f"{name} has {int(bad.sum())} NaN or infinite value(s), e.g. at position "
                f"{int(np.flatnonzero(bad)[0])}"
            )
    return t, p


def mse(y_true, y_pred) -> float:
    """Mean squared error of two 1-D arrays of equal length."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean((t - p) ** 2))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    return float(np.sqrt(mse(y_true, y_pred)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def error_metrics(y_true, y_pred) -> dict[str, float]:
    """``{"mse", "rmse", "mae"}`` in one pass over validated inputs."""
    t, p = _pair(y_true, y_pred)
    err = t - p
    m = float(np.mean(err**2))
    return {"mse": m, "rmse": float(np.sqrt(m)), "mae": float(np.mean(np.abs(err)))}


# ---------------------------------------------------------------- ranking metrics

RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")


def _check_k_fits(k, catalogue, source):
    if k > catalogue:
        raise ValueError(
            f"k={k} is more than the {catalogue} items {source}: a top-{k} list cannot "
            f"be filled; use k <= {catalogue}"
        )


def _recommendation_lists(recs, k):
    """``(users (m,), items (m, k), valid (m, k))`` from any accepted form of ``recs``."""
    if isinstance(recs, pd.DataFrame):
        missing = [c for c in ("user", "item") if c not in recs.columns]
        if missing:
            raise ValueError(
                f"recommendations are missing column(s) {missing}; found {list(recs.columns)}"
            )
        frame = recs
        if "rank" in frame.columns:
            frame = frame.sort_values("rank", kind="stable")
        ucodes, users = pd.factorize(frame["user"], sort=False)
        pos = frame.groupby(ucodes, sort=False).cumcount().to_numpy()
        keep = pos < k
        items_src = frame["item"].to_numpy()
        items = np.empty((len(users), k), dtype=items_src.dtype)
        if items.dtype.kind in "iuf":
            items.fill(0)
        valid = np.zeros((len(users), k), dtype=bool)
        items[ucodes[keep], pos[keep]] = items_src[keep]
        valid[ucodes[keep], pos[keep]] = True
        return np.asarray(users), items, valid
    if isinstance(recs, (tuple, list)) and len(recs) == 2:
        users, items = np.asarray(recs[0]), np.asarray(recs[1])
        valid = None
        if items.ndim == 2:
            # NaN and None cannot be item ids: they mark empty slots
            valid = ~pd.isna(items) if items.dtype.kind in "fO" else np.ones(items.shape, bool)
    elif hasattr(recs, "users") and hasattr(recs, "items"):
        users, items = np.asarray(recs.users), np.asarray(recs.items)
        valid = np.asarray(recs.valid) if hasattr(recs, "valid") else np.ones(items.shape, bool)
    else:
        raise TypeError(
            "recommendations must be a TopN (recommend_all(..., as_frame=False)), a frame "
            f"with user and item columns, or a (users, items) tuple; got {type(recs).__name__}"
        )
    if users.ndim != 1 or items.ndim != 2 or len(users) != len(items):
        raise ValueError(
            "recommendations: users must be 1-D and items 2-D with one row per user, got "
            f"shapes {users.shape} and {items.shape}"
        )
    if items.shape[1] < k:
        raise ValueError(
            f"recommendations hold {items.shape[1]} items per user, fewer than k={k}; "
            "recommend at least k items"
        )
    return users, items[:, :k], valid[:, :k]


def _relevant_pairs(test, threshold):
    users, items, _ = frame_or_tuple(
        test, ["user", "item", "rating"], "test", expected="a DataFrame of ratings", lengths=()
    )
    check_real("threshold", threshold)
    # The column itself, not its array: nullable dtypes hold pd.NA, which _vector reads.
    ratings = _vector(test["rating"], "test ratings")
    rel = ratings >= threshold
    if not rel.any():
        # Name the threshold and the ratings' scale: a threshold on the wrong scale
        # (10 for 0.5-5 stars) is the usual cause, not the users or the model.
        finite = ratings[np.isfinite(ratings)]
        scale = (
            f"the test ratings range from {finite.min():g} to {finite.max():g}"
            if len(finite)
            else "the test holds no ratings"
        )
        raise ValueError(
            f"no test rating is >= threshold={threshold:g}: nothing is relevant ({scale}); "
            "lower the threshold"
        )
    return users[rel], items[rel]


def _coverage(recommended, catalogue) -> float:
    """Distinct ``recommended`` items over the catalogue (a size, or the items' ids)."""
    distinct = pd.unique(recommended)
    if is_int(catalogue):
        if catalogue < 1:
            raise ValueError(f"catalogue size must be >= 1, got {catalogue}")
        if len(distinct) > catalogue:
            raise ValueError(
                f"the lists hold {len(distinct)} distinct items, more than the catalogue "
                f"size {catalogue}: pass the number of items the recommender chose from"
            )
        return len(distinct) / int(catalogue)
    ids = pd.unique(np.asarray(catalogue).ravel())
    if len(ids) == 0:
        raise ValueError("catalogue is empty")
    _check_same_kind(distinct, ids, "recommended items", "the catalogue's items")
    outside = ~pd.Index(distinct).isin(ids)
    if outside.any():
        raise ValueError(
            f"item {_show(distinct[outside][0])} is recommended but not in the catalogue "
            f"({int(outside.sum())} such item(s)); pass every item the recommender chose from"
        )
    return len(distinct) / len(ids)


def _id_kind(values) -> str | None:
    """``"strings"`` or ``"numbers"`` for an array of ids (judged by its first value)."""
    values = np.asarray(values)
    if values.size == 0:
        return None
    if values.dtype.kind in "US":
        return "strings"
    if values.dtype.kind in "iuf":
        return "numbers"
    first = values.flat[0]
    if isinstance(first, str):
        return "strings"
    if isinstance(first, (int, float, np.integer, np.floating)) and not isinstance(first, bool):
        return "numbers"
    return None


def _check_same_kind(given, known, what_given, what_known) -> None:
    """Refuse ids of the other type, which would silently match nothing."""
    a, b = _id_kind(given), _id_kind(known)
    if a and b and a != b:
        convert = ".astype(str)" if b == "strings" else ".astype(int)"
        raise TypeError(
            f"{what_given} are {a} (e.g. {_show(np.asarray(given).flat[0])}) but "
            f"{what_known} are {b} (e.g. {_show(np.asarray(known).flat[0])}), so none "
            f"could match; convert one of them, e.g. with {convert}"
        )


def _check_no_repeats(users, items, codes, valid) -> None:
    """Refuse a list that holds an item twice: each copy would count as a hit."""
    if codes.size == 0:
        return
    # empty slots get distinct negative codes, so that only real items can repeat
    filler = -1 - np.arange(codes.shape[1], dtype=np.int64)
    ordered = np.sort(np.where(valid, codes, filler[None, :]), axis=1)
    twice = ordered[:, 1:] == ordered[:, :-1]
    if twice.any():
        row = int(np.flatnonzero(twice.any(axis=1))[0])
        code = ordered[row, 1:][twice[row]][0]
        item = items[row][valid[row] & (codes[row] == code)][0]
        hint = ""
        if isinstance(item, (int, np.integer, str)) and item in (-1, ""):
            hint = (
                f". If the {_show(item)}s are the empty slots of a TopN, pass the TopN "
                "itself (or its to_frame()), which marks them"
            )
        raise ValueError(
            f"the recommendation list of user {_show(users[row])} holds item "
            f"{_show(item)} more than once; each item may appear once per list{hint}"
        )


def ranking_metrics(recs, test, k=10, *, threshold=4.0, catalogue=None) -> dict:
    """Precision, recall, NDCG, MAP and hit rate at ``k``, and catalogue coverage.

    Parameters
    ----------
    recs : TopN, pandas.DataFrame or tuple
        Recommendation lists, best first, one per user: the :class:`TopN` of
        ``recommend_all(..., as_frame=False)``, a long frame with ``user`` and
        ``item`` columns (ordered by ``rank`` if present, else by row order),
        or ``(users (m,), items (m, n))``, where NaN or None marks an empty
        slot. Each user appears once.
    test : pandas.DataFrame
        Held-out ratings with ``user``, ``item`` and ``rating`` columns.
    k : int, default 10
    threshold : float, default 4.0
        A test rating at or above it makes the item relevant.
    catalogue : int or array-like of item ids, optional
        The catalogue (or its size) for coverage; without it coverage is omitted.

    Returns
    -------
    dict
        ``precision``, ``recall``, ``ndcg``, ``map``, ``hit_rate`` (means over
        the ``n_users`` users with at least one relevant test item), ``coverage``
        (with ``catalogue``), ``n_users``, ``k`` and ``threshold``. See the
        module docstring for the definitions.
    """
    k = check_int("k", k, 1)
    users, items, valid = _recommendation_lists(recs, k)
    rel_u, rel_i = _relevant_pairs(test, threshold)
    if pd.Series(users).duplicated().any():
        dup = pd.Series(users)[pd.Series(users).duplicated()].iloc[0]
        raise ValueError(f"user {dup!r} has more than one recommendation list")
    _check_same_kind(users, rel_u, "the recommendation lists' users", "the test users")
    _check_same_kind(items[valid], rel_i, "the recommended items", "the test items")
    ucodes, _ = pd.factorize(
        np.concatenate([users.astype(object), rel_u.astype(object)])
        if users.dtype != rel_u.dtype
        else np.concatenate([users, rel_u])
    )
    rec_uc, rel_uc = ucodes[: len(users)], ucodes[len(users) :]
    flat_items = items[valid]
    both = (
        np.concatenate([flat_items.astype(object), rel_i.astype(object)])
        if flat_items.dtype != rel_i.dtype
        else np.concatenate([flat_items, rel_i])
    )
    icodes, iuniq = pd.factorize(both)
    n_icodes = max(1, len(iuniq))
    rec_ic = np.full(items.shape, -1, dtype=np.int64)
    rec_ic[valid] = icodes[: len(flat_items)]
    _check_no_repeats(users, items, rec_ic, valid)
    rel_keys = np.unique(rel_uc.astype(np.int64) * n_icodes + icodes[len(flat_items) :])
    n_users_all = int(ucodes.max()) + 1
    n_rel = np.bincount(rel_keys // n_icodes, minlength=n_users_all)
    rec_keys = np.where(valid, rec_uc[:, None].astype(np.int64) * n_icodes + rec_ic, -1)
    hits = valid & np.isin(rec_keys, rel_keys)

    rel_row = n_rel[rec_uc]
    rows = rel_row > 0
    n_eval = int((n_rel > 0).sum())
    hits = hits[rows].astype(np.float64)
    rel_row = rel_row[rows].astype(np.float64)
    n_hits = hits.sum(axis=1)
    ranks = np.arange(1, k + 1, dtype=np.float64)
    discount = 1.0 / np.log2(ranks + 1.0)
    ideal = np.cumsum(discount)[np.minimum(k, rel_row).astype(np.int64) - 1]
    precision_at = np.cumsum(hits, axis=1) / ranks
    out = {
        "precision": float(n_hits.sum() / k / n_eval),
        "recall": float((n_hits / rel_row).sum() / n_eval),
        "ndcg": float(((hits @ discount) / ideal).sum() / n_eval),
        "map": float(((precision_at * hits).sum(axis=1) / np.minimum(k, rel_row)).sum() / n_eval),
        "hit_rate": float((n_hits > 0).sum() / n_eval),
    }
    if catalogue is not None:
        out["coverage"] = float(_coverage(flat_items, catalogue))
    out.update(n_users=n_eval, k=k, threshold=float(threshold))
    return out


def precision_at_k(recs, test, k=10, *, threshold=4.0) -> float:
    """Mean precision@k: relevant items among the first ``k``, over ``k`` (see module doc)."""
    return ranking_metrics(recs, test, k, threshold=threshold)["precision"]


def recall_at_k(recs, test, k=10, *, threshold=4.0) -> float:
    """Mean recall@k: relevant items among the first ``k`` over all the user's relevant items."""
    return ranking_metrics(recs, test, k, threshold=threshold)["recall"]


def ndcg_at_k(recs, test, k=10, *, threshold=4.0) -> float:
    """Mean NDCG@k with binary gains and a log2 discount."""
    return ranking_metrics(recs, test, k, threshold=threshold)["ndcg"]


def map_at_k(recs, test, k=10, *, threshold=4.0) -> float:
    """Mean average precision at ``k``, normalised by ``min(k, relevant items)``."""
    return ranking_metrics(recs, test, k, threshold=threshold)["map"]


def hit_rate(recs, test, k=10, *, threshold=4.0) -> float:
    """Share of users with at least one relevant item among their first ``k``."""
    return ranking_metrics(recs, test, k, threshold=threshold)["hit_rate"]


def catalogue_coverage(recs, catalogue, k=10) -> float:
    """Distinct items among all users' first ``k`` recommendations, over the catalogue size.

    ``catalogue`` is the number of items or an array of their ids.
    """
    k = check_int("k", k, 1)
    _, items, valid = _recommendation_lists(recs, k)
    if catalogue is None:
        raise ValueError("catalogue must be given: the number of items or their ids")
    return float(_coverage(items[valid], catalogue))


def evaluate_ranking(
    model, train, test, k=10, *, threshold=4.0, batch_size=None, popularity_weight=0.0
) -> dict:
    """Ranking metrics of a fitted model (or the popularity baseline) on held-out ratings.

    Every test user with at least one relevant test item who is also in
    ``train`` gets a top-``k`` list of items they did not rate in ``train``;
    :func:`ranking_metrics` then scores the lists against ``test``.

    Parameters
    ----------
    model : fitted model or ``"popularity"``
        A model fitted on ``train``, or the string ``"popularity"`` for the
        most-rated items of ``train``
        (:func:`~latentfactors.models.baselines.popularity_recommendations`).
    train : pandas.DataFrame
        The training ratings: what each user has already seen and is not
        recommended again (and, for the baseline, what popularity counts).
    test : pandas.DataFrame
        Held-out ratings with ``user``, ``item``, ``rating``.
    k : int, default 10
    threshold : float, default 4.0
    batch_size : int, optional
        Passed to ``recommend_all``.
    popularity_weight : float, default 0.0
        Passed to ``recommend_all`` (a popularity prior added to the model's scores).

    Returns
    -------
    dict
        As :func:`ranking_metrics` (with coverage over the model's items, or
        the items of ``train`` for the baseline), plus ``n_skipped_users``:
        test users with relevant items who are not in ``train`` / unknown to
        the model, left out.

    Raises
    ------
    ValueError
        If ``k`` is more than the items there are to recommend (the model's,
        or those in ``train`` for the baseline), no test rating reaches
        ``threshold``, or no test user with relevant items is known.
    """
    from latentfactors.models.baselines import popularity_recommendations

    k = check_int("k", k, 1)
    rel_u, _ = _relevant_pairs(test, threshold)
    if not isinstance(train, pd.DataFrame) or not {"user", "item"} <= set(train.columns):
        raise TypeError("train must be a DataFrame with user and item columns")
    candidates = pd.unique(rel_u)
    if isinstance(model, str):
        if model != "popularity":
            raise ValueError(f"model must be a fitted model or 'popularity', got {model!r}")
        train_users = train["user"].to_numpy()
        _check_same_kind(candidates, train_users, "the test users", "the training users")
        test_items, train_items = test["item"].to_numpy(), train["item"].to_numpy()
        _check_same_kind(test_items, train_items, "the test items", "the training items")
        known = np.isin(candidates, train_users)
        users = candidates[known]
        if len(users) == 0:
            raise ValueError("no test user with relevant items is in train")
        catalogue = len(pd.unique(train["item"].to_numpy()))
        _check_k_fits(k, catalogue, "train has")
        recs = popularity_recommendations(train, users, k, exclude_seen=True)
    else:
        model._check_fitted()
        known = model.user_index_.encode(candidates) >= 0
        users = candidates[known]
        if len(users) == 0:
            raise ValueError("no test user with relevant items is known to the model")
        catalogue = len(model.item_index_)
        _check_k_fits(k, catalogue, "the model knows")
        recs = model.recommend_all(
            k,
            users=users,
            exclude_seen=False,
            exclude=train,
            batch_size=batch_size,
            popularity_weight=popularity_weight,
            as_frame=False,
        )
    scored = test[test["user"].isin(users)]
    out = ranking_metrics(recs, scored, k, threshold=threshold, catalogue=catalogue)
    out["n_skipped_users"] = int((~known).sum())
    return out


def in_training(model, ratings) -> np.ndarray:
    """Which ratings are (user, item) pairs that a fitted model was trained on.

    Errors measured on such ratings are optimistic: this tells how much of an
    evaluation set overlaps the training data.

    Parameters
    ----------
    model : fitted model
    ratings : pandas.DataFrame
        With ``user`` and ``item`` columns of raw ids.

    Returns
    -------
    numpy.ndarray of bool, shape (len(ratings),)
        True where the row's pair is among the model's training ratings;
        False for pairs with a user or an item unknown to the model.

    Raises
    ------
    NotFittedError
        If the model is not fitted.
    TypeError
        If the ids are of the other kind than the model's (strings for
        numbers or the reverse), as :meth:`IdIndex.encode`.
    """
    model._check_fitted()
    if not isinstance(ratings, pd.DataFrame) or not {"user", "item"} <= set(ratings.columns):
        raise TypeError("ratings must be a DataFrame with user and item columns")
    users = model.user_index_.encode(ratings["user"].to_numpy())
    items = model.item_index_.encode(ratings["item"].to_numpy())
    known = (users >= 0) & (items >= 0)
    out = np.zeros(len(ratings), dtype=bool)
    if not known.any():
        return out
    # One int64 key per pair: user code * n_items + item code.
    n_items = np.int64(len(model.item_index_))
    seen_users, seen_items = model._seen_pairs()
    trained = seen_users * n_items + seen_items
    asked = users[known].astype(np.int64) * n_items + items[known]
    out[known] = np.isin(asked, trained)
    return out
