"""What people do with a fitted recommender: top-N, similar items and users, new users.

:class:`RecommenderMixin` gives every :class:`~latentfactors.models.base.FactorModel`

* :meth:`~RecommenderMixin.recommend` -- the best ``n`` items for one known user;
* :meth:`~RecommenderMixin.recommend_all` -- top-N for many or all users, block by
  block, never holding the full users x items score matrix;
* :meth:`~RecommenderMixin.similar_items` / :meth:`~RecommenderMixin.similar_users`
  on the learned vectors;
* :meth:`~RecommenderMixin.fold_in`, :meth:`~RecommenderMixin.predict_for` and
  :meth:`~RecommenderMixin.recommend_for` for a user who was not in training,
  without refitting and without changing the model: the user's vector and
  bias are fitted to their ratings with every item held fixed, then scored
  and ranked exactly as a known user with that vector and bias would be.

**Ranking.** Items are ranked by the model's *raw* score
``mu + b_u + b_i + interaction`` (not clipped to the rating range, so items
predicted above the top rating keep their order), highest first; equal scores
go to the smaller item code, i.e. the item whose raw id sorts first. For
:class:`~latentfactors.BiasedMF` the score of a returned item is bit-for-bit
the value ``predict`` returns with ``clip=False``, whichever method or block
size produced it (see :mod:`latentfactors.kernels.topn`).

**Rating models and top-N.** A model trained only to predict ratings ranks
rarely rated items with high predicted ratings first, and on MovieLens loses
to recommending the most-rated items (``benchmarks/recommend.py``). The
``popularity_weight`` option ranks by ``score + w * ln(1 + n_i)`` instead,
``n_i`` the item's training ratings; with ``w`` chosen on a validation split
it beats the popularity baseline there. ``0`` (the default) is the model alone.

**Hooks** a model may supply (all optional):

* ``_dot_parts()`` -> ``(P, Q, bu, bi, mu)`` when the model scores
  ``mu + bu[u] + bi[i] + P[u] . Q[i]``. Top-N then runs as a BLAS product per
  block of users followed by an exact jitted selection.
* ``_score_block(user_codes, cands, out)`` -> exact float64 scores for a block
  of users x candidate items. The default calls ``_predict_codes`` on repeated
  pairs with clipping off (right for any model, e.g. the MLP head's forward pass).
* ``_user_vectors()`` / ``_item_vectors()`` -> the vectors compared by
  :meth:`~RecommenderMixin.similar_users` / :meth:`~RecommenderMixin.similar_items`
  (default ``user_factors_`` / ``item_factors_``).
* ``_fold_in(item_codes, ratings)`` -> ``(vector, bias)`` for a new user: the
  minimiser of the model's training objective restricted to that user's
  ratings, every item parameter fixed. :class:`~latentfactors.BiasedMF`
  solves that least-squares problem in closed form (:func:`fold_in_dot`,
  :func:`solve_fold_in`); :class:`~latentfactors.MLPMF`, whose user vector
  enters a nonlinear head, minimises it iteratively
  (:func:`latentfactors.models.fold_in_mlp.fold_in_mlp`). The default raises
  :class:`NotImplementedError`.
* ``_for_user(vector, bias)`` -> a copy of the model whose only user, code 0,
  has that vector and bias, sharing every other array; ``predict_for`` and
  ``recommend_for`` score the folded-in user through it with the model's own
  ``_predict_codes`` and top-N paths. The default replaces ``user_factors_``
  and ``user_bias_``.
"""

from __future__ import annotations

import copy
import math
import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd

from latentfactors.data.ratings import IdIndex, as_id_array, reject_rows
from latentfactors.kernels import topn as topn_kernels
from latentfactors.kernels._config import resolve_threads
from latentfactors.kernels.scoring import csr_by_user, with_threads

__all__ = [
    "RecommenderMixin",
    "TopN",
    "UnknownIdError",
    "popularity_recommendations",
    "solve_fold_in",
    "with_titles",
]

METRICS = ("cosine", "dot")


class UnknownIdError(ValueError):
    """A user or item id that the fitted model has never seen."""


# ------------------------------------------------------------------ small checks


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def _check_n(n):
    if not _is_int(n) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    return int(n)


def _check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_batch(batch_size):
    if batch_size is not None and (not _is_int(batch_size) or batch_size < 1):
        raise ValueError(f"batch_size must be None or an integer >= 1, got {batch_size!r}")
    return batch_size


# Far beyond any useful weight, and far below where w * ln(1 + n) overflows
# the scores' float32.
MAX_POPULARITY_WEIGHT = 1e6


def _check_weight(weight):
    if (
        not isinstance(weight, numbers.Real)
        or isinstance(weight, (bool, np.bool_))
        or not math.isfinite(weight)
        or abs(weight) > MAX_POPULARITY_WEIGHT
    ):
        raise ValueError(
            f"popularity_weight must be a finite number within +-{MAX_POPULARITY_WEIGHT:g}, "
            f"got {weight!r} (useful weights are about 0.01 to 10)"
        )
    return float(weight)


def _show(values, limit=5) -> str:
    shown = ", ".join(repr(v) for v in np.asarray(values[:limit]).tolist())
    more = f", ... ({len(values)} in all)" if len(values) > limit else ""
    return f"[{shown}{more}]"


def _id_array(values, what, *, allow_empty=False) -> np.ndarray:
    arr = as_id_array(values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-D list of ids, got shape {arr.shape}")
    if len(arr) == 0 and not allow_empty:
        raise ValueError(f"{what} is empty: give at least one id")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or infinite ids")
    if arr.dtype == object and pd.isna(arr).any():
        raise ValueError(f"{what} contains missing ids")
    return arr


def _encode_known(index: IdIndex, values, what, hint="") -> np.ndarray:
    """Codes of raw ids that must all be known; the error lists a few unknown ones."""
    arr = _id_array(values, what)
    codes = index.encode(arr)
    bad = codes < 0
    if bad.any():
        raise UnknownIdError(
            f"{int(bad.sum())} of the {what} are not known to this model (they had no "
            f"ratings in training): {_show(arr[bad])}{hint}"
        )
    return codes


def _one_code(index: IdIndex, value, what, hint="") -> int:
    if isinstance(value, (list, tuple, set, dict, np.ndarray, pd.Series, pd.Index)):
        raise TypeError(f"{what} must be a single id, got {type(value).__name__}{hint}")
    codes = index.encode(np.asarray([value]))
    if codes[0] < 0:
        raise UnknownIdError(
            f"{what} {value!r} is not known to this model: it had no ratings in training{hint}"
        )
    return int(codes[0])


def _fill_value(dtype):
    """What stands in an empty slot of an id array of this dtype."""
    if dtype.kind in "US":
        return ""
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "u":
        return np.iinfo(dtype).max
    return -1


def _decode_padded(index: IdIndex, codes: np.ndarray) -> np.ndarray:
    ids = index.ids
    valid = codes >= 0
    out = ids[np.where(valid, codes, 0)] if len(ids) else np.zeros(codes.shape, ids.dtype)
    if not valid.all():
        out[~valid] = _fill_value(out.dtype)
    return out


# ------------------------------------------------------------------ results


@dataclass
class TopN:
    """Top-N lists for many users, as arrays.

    Attributes
    ----------
    users : numpy.ndarray, (m,)
        Raw user ids, one row each.
    items : numpy.ndarray, (m, n)
        Raw item ids, best first. A row holds fewer than ``n`` items when
        fewer candidates remain; its empty slots hold ``-1`` (signed integer
        ids), ``2**64 - 1`` (uint64 ids), ``""`` (string ids) or NaN (float
        ids), any of which may also be a real id: :attr:`valid` marks them.
    scores : numpy.ndarray of float64, (m, n)
        The ranking scores; NaN in empty slots.
    item_codes : numpy.ndarray of int32, (m, n)
        The model's item codes; ``-1`` in empty slots.
    """

    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    item_codes: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        """Boolean mask of the filled slots, (m, n)."""
        return self.item_codes >= 0

    def __len__(self) -> int:
        return len(self.users)

    def to_frame(self) -> pd.DataFrame:
        """One row per recommendation: ``user``, ``rank`` (from 1), ``item``, ``score``."""
        rows, cols = np.nonzero(self.valid)
        return pd.DataFrame(
            {
                "user": self.users[rows],
                "rank": (cols + 1).astype(np.int32),
                "item": self.items[rows, cols],
                "score": self.scores[rows, cols],
            }
        )


def with_titles(recs, items, columns=None) -> pd.DataFrame:
    """Join item titles (and other item columns) to recommendations.

    Parameters
    ----------
    recs : pandas.DataFrame or TopN
        Recommendations with an ``item`` column (a :class:`TopN` is turned
        into its long frame first).
    items : pandas.DataFrame
        An item table with an ``item`` column and at least one more, such as
        :func:`latentfactors.load_movielens_items` (``title``, ``genres``, ``year``).
    columns : str or list of str, optional
        The item column(s) to add; default all but ``item``.

    Returns
    -------
    pandas.DataFrame
        ``recs`` in the same order with the columns added; items missing from
        the table get missing values.
    """
    if isinstance(recs, TopN):
        recs = recs.to_frame()
    if not isinstance(recs, pd.DataFrame) or "item" not in recs.columns:
        raise TypeError("recs must be a DataFrame with an 'item' column, or a TopN")
    if not isinstance(items, pd.DataFrame) or "item" not in items.columns:
        raise TypeError(
            "items must be a DataFrame with an 'item' column, e.g. "
            "latentfactors.load_movielens_items(...)"
        )
    if columns is None:
        columns = [c for c in items.columns if c != "item"]
    else:
        columns = [columns] if isinstance(columns, str) else list(columns)
        missing = [c for c in columns if c not in items.columns]
        if missing:
            raise ValueError(f"items has no column(s) {missing}; found {list(items.columns)}")
    clash = [c for c in columns if c in recs.columns]
    if clash:
        raise ValueError(f"recs already has column(s) {clash}")
    table = items[["item", *columns]].drop_duplicates("item")
    left = recs["item"]
    if table["item"].dtype.kind in "iu" and left.dtype.kind in "iu":
        table = table.astype({"item": left.dtype})
    text = [pd.api.types.is_string_dtype(ids) for ids in (left, table["item"])]
    if len(left) and len(table) and text[0] != text[1]:
        kinds = ["strings" if t else "numbers" for t in text]
        raise TypeError(
            f"the recommended item ids are {kinds[0]} (e.g. {left.iloc[0]!r}) but the item "
            f"table's are {kinds[1]} (e.g. {table['item'].iloc[0]!r}); convert the table's "
            "item column, e.g. with .astype(" + ("str" if text[0] else "int") + ")"
        )
    out = recs.merge(table, on="item", how="left", sort=False)
    out.index = recs.index
    return out


# ------------------------------------------------------------------ fold-in


def solve_fold_in(Q, bi, ratings, mu, reg, reg_bias):
    """The user vector and bias that best explain one user's ratings, items fixed.

    Minimises, over ``p`` and ``b`` with ``n = len(ratings)``,

        sum_j (r_j - mu - b - bi_j - p . q_j)**2 + reg * n * |p|**2 + reg_bias * n * b**2

    which is the training objective restricted to one user's ratings: training
    penalises a row once per rating it appears in. The ``(k+1) x (k+1)``
    normal equations are solved in float64; with ``reg == 0`` or
    ``reg_bias == 0`` they may be singular, and the minimum-norm least-squares
    solution is returned.

    Parameters
    ----------
    Q : float array, (n, k)
        The rated items' vectors (one row per rating, repeats allowed).
    bi : float array, (n,)
        Their biases.
    ratings : float array, (n,)
    mu, reg, reg_bias : float

    Returns
    -------
    p : numpy.ndarray of float64, (k,)
    b : float
    """
    Q = np.asarray(Q, dtype=np.float64)
    n, k = Q.shape
    Z = np.empty((n, k + 1))
    Z[:, :k] = Q
    Z[:, k] = 1.0
    y = np.asarray(ratings, dtype=np.float64) - mu - np.asarray(bi, dtype=np.float64)
    A = Z.T @ Z
    A[np.arange(k), np.arange(k)] += n * reg
    A[k, k] += n * reg_bias
    rhs = Z.T @ y
    if reg > 0 and reg_bias > 0:
        x = np.linalg.solve(A, rhs)
    else:
        x = np.linalg.lstsq(A, rhs, rcond=None)[0]
    return x[:k], float(x[k])


# ------------------------------------------------------------------ the mixin


class RecommenderMixin:
    """Top-N, similarity and fold-in for a fitted model (see the module docstring)."""

    # ---- hooks

    def _dot_parts(self):
        """``(P, Q, bu, bi, mu)`` for a dot-product model, else ``None``."""
        return None

    def _user_vectors(self) -> np.ndarray:
        return self.user_factors_

    def _item_vectors(self) -> np.ndarray:
        return self.item_factors_

    def _fold_in(self, item_codes, ratings):
        raise NotImplementedError(
            f"{type(self).__name__} does not fold in new users; refit with their ratings"
        )

    def _for_user(self, vector, bias):
        """A copy of the model for scoring one ad-hoc user, code 0; the model is unchanged.

        Only ``user_factors_`` and ``user_bias_`` are replaced (by one-row
        float32 arrays); every other array is shared with the model, so the
        copy is cheap, and it serves ``_predict_codes`` and :meth:`_rank`
        with ``user_codes = [0]`` only (its user index and seen items still
        describe the training users).
        """
        one = copy.copy(self)
        one.user_factors_ = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        one.user_bias_ = np.array([bias], dtype=np.float32)
        return one

    def _score_block(self, user_codes, cands, out):
        """Exact float64 scores ``out[r, j]`` of user ``user_codes[r]`` for item ``cands[j]``.

        The default runs ``_predict_codes`` on the repeated pairs with clipping
        off, in chunks of about a million pairs.
        """
        raw = copy.copy(self)
        raw.clip = False
        per = max(1, (1 << 20) // max(1, len(cands)))
        for start in range(0, len(user_codes), per):
            block = user_codes[start : start + per]
            users = np.repeat(block, len(cands)).astype(np.int32, copy=False)
            items = np.tile(cands, len(block)).astype(np.int32, copy=False)
            out[start : start + len(block)] = raw._predict_codes(users, items).reshape(
                len(block), len(cands)
            )

    # ---- helpers

    def _threads_for_recommend(self) -> int:
        return resolve_threads(self.n_threads)

    def _candidates(self, items) -> np.ndarray:
        """Sorted unique candidate codes; all items when ``items`` is None."""
        if items is None:
            return np.arange(len(self.item_index_), dtype=np.int32)
        codes = _encode_known(self.item_index_, items, "candidate items")
        return np.unique(codes).astype(np.int32)

    def _item_counts(self) -> np.ndarray:
        """Training ratings per item code (from the seen-items CSR)."""
        return np.bincount(self.seen_items_, minlength=len(self.item_index_))

    def _prior(self, cands, weight) -> np.ndarray:
        if weight == 0.0:
            return np.zeros(len(cands))
        return weight * np.log1p(self._item_counts()[cands].astype(np.float64))

    def _exclusion(self, user_codes, exclude_seen, exclude):
        """Per-row ``(starts, ends, seen)`` of item codes to skip."""
        m = len(user_codes)
        if not exclude_seen and exclude is None:
            z = np.zeros(m, dtype=np.int64)
            return z, z, np.zeros(0, dtype=np.int32)
        indptr, seen = self.seen_indptr_, self.seen_items_
        if exclude is not None:
            indptr, seen = self._exclusion_csr(exclude, exclude_seen)
        codes = user_codes.astype(np.int64)
        return (np.ascontiguousarray(indptr[codes]), np.ascontiguousarray(indptr[codes + 1]), seen)

    def _seen_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """The training (user, item) code pairs, as two int64 arrays, user by user."""
        counts = np.diff(self.seen_indptr_)
        users = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        return users, self.seen_items_.astype(np.int64)

    def _exclusion_csr(self, exclude, with_training):
        if isinstance(exclude, pd.DataFrame):
            missing = [c for c in ("user", "item") if c not in exclude.columns]
            if missing:
                raise ValueError(
                    f"exclude is missing column(s) {missing}; found {list(exclude.columns)}"
                )
            eu, ei = exclude["user"].to_numpy(), exclude["item"].to_numpy()
        elif isinstance(exclude, (tuple, list)) and len(exclude) == 2:
            eu, ei = np.asarray(exclude[0]), np.asarray(exclude[1])
        else:
            raise TypeError(
                "exclude must be a DataFrame with user and item columns or a tuple "
                f"(users, items), got {type(exclude).__name__}"
            )
        if eu.ndim != 1 or ei.ndim != 1 or len(eu) != len(ei):
            raise ValueError("exclude: users and items must be 1-D arrays of the same length")
        uc = self.user_index_.encode(eu)
        ic = self.item_index_.encode(ei)
        keep = (uc >= 0) & (ic >= 0)  # unknown ids cannot be recommended anyway
        n_users, n_items = len(self.user_index_), len(self.item_index_)
        users, items = uc[keep].astype(np.int64), ic[keep].astype(np.int64)
        if with_training:
            train_users, train_items = self._seen_pairs()
            users = np.concatenate([users, train_users])
            items = np.concatenate([items, train_items])
        keys = np.unique(users * n_items + items)
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys // n_items, minlength=n_users), out=indptr[1:])
        return indptr, (keys % n_items).astype(np.int32)

    def _rank(self, n, cands, exclusion, *, user_codes, weight=0.0, batch_size=None):
        """Top ``n`` codes and scores per row, best first (see the module docstring).

        Row ``r`` is user ``user_codes[r]``. Only ``batch_size`` rows are scored at once.
        """
        starts, ends, seen = exclusion
        m = len(user_codes)
        width = min(n, len(cands))
        out_codes = np.empty((m, width), dtype=np.int32)
        out_scores = np.empty((m, width), dtype=np.float64)
        threads = self._threads_for_recommend()
        prior = self._prior(cands, weight)
        parts = self._dot_parts()
        if parts is not None:
            P, Q, bu, bi, mu = parts
            all_items = len(cands) == len(Q)
            Qc = Q if all_items else Q[cands]
            prior32 = (bi[cands] + prior).astype(np.float32)
            q_max = float(np.sqrt(np.max(np.einsum("ij,ij->i", Qc, Qc, dtype=np.float64))))
            p_max = float(np.max(np.abs(prior32)))
            step = batch_size or topn_kernels.auto_batch(len(cands), 4)
            buf = np.empty((min(step, m), len(cands)), dtype=np.float32)
        else:
            step = batch_size or topn_kernels.auto_batch(len(cands), 16)
            buf = np.empty((min(step, m), len(cands)), dtype=np.float64)
        for start in range(0, m, step):
            sl = slice(start, min(m, start + step))
            rows = sl.stop - sl.start
            block = buf[:rows]
            parallel = threads > 1 and rows > 1
            if parts is not None:
                Pu, bub = P[user_codes[sl]], bu[user_codes[sl]]
                np.matmul(Pu, Qc.T, out=block)
                eps = topn_kernels.dot_error_bound(Pu, bub, mu, q_max, p_max, Q.shape[1])
                with_threads(
                    threads if parallel else 1,
                    topn_kernels._topn_dot,
                    block,
                    prior32,
                    prior,
                    eps,
                    cands,
                    starts[sl],
                    ends[sl],
                    seen,
                    Pu,
                    bub,
                    Q,
                    bi,
                    mu,
                    out_codes[sl],
                    out_scores[sl],
                    parallel,
                )
            else:
                self._score_block(user_codes[sl], cands, block)
                if weight != 0.0:
                    block += prior
                with_threads(
                    threads if parallel else 1,
                    topn_kernels._topn_scores,
                    block,
                    cands,
                    starts[sl],
                    ends[sl],
                    seen,
                    out_codes[sl],
                    out_scores[sl],
                    parallel,
                )
        return out_codes, out_scores

    def _items_frame(self, codes, scores, titles=None) -> pd.DataFrame:
        valid = codes >= 0
        frame = pd.DataFrame(
            {
                "item": self.item_index_.decode(codes[valid]),
                "score": scores[valid],
            }
        )
        return frame if titles is None else with_titles(frame, titles)

    # ---- known users

    def recommend(
        self, user, n=10, *, exclude_seen=True, items=None, popularity_weight=0.0, titles=None
    ) -> pd.DataFrame:
        """The best ``n`` items for one user who was in the training data.

        Parameters
        ----------
        user : raw user id
        n : int, default 10
            At most this many items (fewer if fewer candidates remain).
        exclude_seen : bool, default True
            Leave out the items the user rated in training.
        items : array-like of raw item ids, optional
            Rank only these candidates (all known items by default).
        popularity_weight : float, default 0.0
            Rank by ``score + popularity_weight * ln(1 + n_i)``, ``n_i`` the
            item's number of training ratings (a popularity prior; 0 = the
            model alone). The ``score`` column then holds that sum.
        titles : pandas.DataFrame, optional
            An item table (e.g. :func:`latentfactors.load_movielens_items`)
            whose columns are joined to the result (see :func:`with_titles`).

        Returns
        -------
        pandas.DataFrame
            Columns ``item`` and ``score`` (float64), best first: score
            descending, ties to the item whose raw id sorts first.

        Raises
        ------
        UnknownIdError
            If ``user`` or a candidate item is unknown: a new user needs
            :meth:`recommend_for`.
        """
        self._check_fitted()
        n = _check_n(n)
        exclude_seen = _check_flag("exclude_seen", exclude_seen)
        weight = _check_weight(popularity_weight)
        code = _one_code(
            self.user_index_, user, "user", "; for a new user use recommend_for(ratings)"
        )
        cands = self._candidates(items)
        codes = np.array([code], dtype=np.int32)
        out_codes, out_scores = self._rank(
            n,
            cands,
            self._exclusion(codes, exclude_seen, None),
            user_codes=codes,
            weight=weight,
            batch_size=1,
        )
        return self._items_frame(out_codes[0], out_scores[0], titles)

    def recommend_all(
        self,
        n=10,
        *,
        users=None,
        exclude_seen=True,
        items=None,
        exclude=None,
        popularity_weight=0.0,
        batch_size=None,
        as_frame=True,
        titles=None,
    ):
        """Top-N for many or all known users, block by block.

        Each block of ``batch_size`` users is scored at once (for
        :class:`~latentfactors.BiasedMF` one BLAS product with the item vectors),
        then a jitted kernel picks each user's top ``n`` in parallel over the
        block's users. Memory beyond the model and the result is one block of
        ``batch_size x n_candidates`` scores; the full users x items matrix is
        never formed. Row ``r`` equals ``recommend(users[r], n, ...)`` exactly.

        Parameters
        ----------
        n : int, default 10
        users : array-like of raw user ids, optional
            Default: every training user, in code order (raw ids sorted).
            Repeats are allowed; every id must be known.
        exclude_seen : bool, default True
            Leave out each user's training items.
        items : array-like of raw item ids, optional
            Candidate items (default: all).
        exclude : pandas.DataFrame or (users, items) tuple, optional
            More (user, item) pairs to leave out, e.g. another split's ratings.
            Pairs with unknown ids are ignored.
        popularity_weight : float, default 0.0
            As in :meth:`recommend`.
        batch_size : int, optional
            Users per block. Default: as many as keep a block of scores near
            64 MiB (float32 for BiasedMF; float64 otherwise).
        as_frame : bool, default True
            Return a long frame; ``False`` returns a :class:`TopN` of arrays.
        titles : pandas.DataFrame, optional
            Item table joined to the frame (``as_frame=True`` only).

        Returns
        -------
        pandas.DataFrame or TopN
            The frame has columns ``user``, ``rank`` (1 = best), ``item``, ``score``.
        """
        self._check_fitted()
        n = _check_n(n)
        exclude_seen = _check_flag("exclude_seen", exclude_seen)
        as_frame = _check_flag("as_frame", as_frame)
        batch_size = _check_batch(batch_size)
        weight = _check_weight(popularity_weight)
        if titles is not None and not as_frame:
            raise ValueError("titles needs as_frame=True; or call with_titles(topn, titles)")
        if users is None:
            user_codes = np.arange(len(self.user_index_), dtype=np.int32)
        else:
            user_codes = _encode_known(
                self.user_index_,
                users,
                "users",
                "; new users need recommend_for(ratings)",
            )
        cands = self._candidates(items)
        exclusion = self._exclusion(user_codes, exclude_seen, exclude)
        out_codes, out_scores = self._rank(
            n,
            cands,
            exclusion,
            user_codes=user_codes,
            weight=weight,
            batch_size=batch_size,
        )
        result = TopN(
            users=self.user_index_.ids[user_codes],
            items=_decode_padded(self.item_index_, out_codes),
            scores=out_scores,
            item_codes=out_codes,
        )
        if not as_frame:
            return result
        frame = result.to_frame()
        return frame if titles is None else with_titles(frame, titles)

    # ---- similarity

    def _similar(self, vectors, code, n, metric):
        n = _check_n(n)
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {list(METRICS)}, got {metric!r}")
        v = vectors[code].astype(np.float64)
        scores = vectors @ v
        if metric == "cosine":
            norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))
            denom = norms * norms[code]
            scores = np.divide(scores, denom, out=np.zeros_like(scores), where=denom > 0)
        everyone = np.arange(len(vectors), dtype=np.int32)
        width = min(n, len(vectors))
        out_codes = np.empty((1, width), dtype=np.int32)
        out_scores = np.empty((1, width), dtype=np.float64)
        topn_kernels._topn_scores(
            scores[None, :],
            everyone,
            np.zeros(1, np.int64),
            np.ones(1, np.int64),
            np.array([code], dtype=np.int32),
            out_codes,
            out_scores,
            False,
        )
        return out_codes[0], out_scores[0]

    def similar_items(self, item, n=10, *, metric="cosine", titles=None) -> pd.DataFrame:
        """The items whose learned vectors are closest to ``item``'s.

        Parameters
        ----------
        item : raw item id
        n : int, default 10
        metric : {"cosine", "dot"}, default "cosine"
            Cosine similarity (a zero vector is similar to nothing: score 0)
            or the plain dot product of the item vectors (biases are not used).
        titles : pandas.DataFrame, optional
            Item table joined to the result.

        Returns
        -------
        pandas.DataFrame
            ``item``, ``score`` (float64), most similar first, ``item`` itself
            left out; ties to the smaller code.
        """
        self._check_fitted()
        code = _one_code(self.item_index_, item, "item")
        codes, scores = self._similar(self._item_vectors(), code, n, metric)
        return self._items_frame(codes, scores, titles)

    def similar_users(self, user, n=10, *, metric="cosine") -> pd.DataFrame:
        """The users whose learned vectors are closest to ``user``'s.

        As :meth:`similar_items`, on the user vectors; returns ``user``, ``score``.
        """
        self._check_fitted()
        code = _one_code(self.user_index_, user, "user")
        codes, scores = self._similar(self._user_vectors(), code, n, metric)
        valid = codes >= 0
        return pd.DataFrame(
            {
                "user": self.user_index_.decode(codes[valid]),
                "score": scores[valid],
            }
        )

    # ---- new users

    def _new_user(self, ratings, ignore_unknown):
        """Validated ``(item codes, ratings)`` of one new user's ratings."""
        if isinstance(ratings, pd.DataFrame):
            missing = [c for c in ("item", "rating") if c not in ratings.columns]
            if missing:
                raise ValueError(
                    f"ratings is missing column(s) {missing}; found {list(ratings.columns)}"
                )
            if "user" in ratings.columns and ratings["user"].nunique(dropna=False) > 1:
                users = ratings["user"].drop_duplicates().head(3).tolist()
                raise ValueError(
                    "ratings hold more than one user (user column: "
                    f"{', '.join(map(repr, users))}, ...): these are one new user's ratings; "
                    "pass each user's rows on their own, e.g. with groupby('user')"
                )
            items, values = ratings["item"].to_numpy(), ratings["rating"].to_numpy()
        elif isinstance(ratings, (tuple, list)) and len(ratings) == 2:
            reject_rows(ratings, ["item", "rating"], "ratings")
            items, values = np.asarray(ratings[0]), np.asarray(ratings[1])
        else:
            raise TypeError(
                "ratings must be a DataFrame with item and rating columns or a tuple "
                f"(items, ratings), got {type(ratings).__name__}"
            )
        if items.ndim != 1 or values.ndim != 1 or len(items) != len(values):
            raise ValueError(
                f"ratings: items and ratings must be 1-D of the same length, got shapes "
                f"{items.shape} and {values.shape}"
            )
        if len(items) == 0:
            raise ValueError("ratings is empty: a new user needs at least one rating")
        if values.dtype.kind not in "iuf":
            raise ValueError(f"ratings must be numbers, got dtype {values.dtype}")
        values = values.astype(np.float64)
        if not np.isfinite(values).all():
            raise ValueError("ratings contain NaN or infinite values")
        _id_array(items, "rated items")
        codes = self.item_index_.encode(items)
        unknown = codes < 0
        if unknown.any():
            if not ignore_unknown:
                raise UnknownIdError(
                    f"{int(unknown.sum())} rated item(s) are not known to this model: "
                    f"{_show(items[unknown])}; pass ignore_unknown=True to drop them"
                )
            if unknown.all():
                raise ValueError("none of the rated items is known to this model")
            codes, values = codes[~unknown], values[~unknown]
        return codes, values

    def fold_in(self, ratings, *, ignore_unknown=False):
        """A vector and bias for a user who was not in training; the model is unchanged.

        The result minimises the model's training objective restricted to
        this user's ratings, with every item vector, item bias and (for
        :class:`~latentfactors.MLPMF`) head weight held fixed,

            sum_j (r_j - pred_j)**2 + reg * n * |p|**2 + reg_bias * n * b**2

        for the ``n`` ratings ``r_j`` (each rating penalises the user's row
        once, as in training): what training would give the user at
        convergence if the items did not move.

        * :class:`~latentfactors.BiasedMF` (``pred_j = mu + b + bi_j + p . q_j``):
          a linear least-squares problem, solved exactly in closed form (see
          :func:`solve_fold_in`).
        * :class:`~latentfactors.MLPMF` (``pred_j = mu + b + bi_j + head([p; q_j])``):
          minimised iteratively from ``p = 0`` in float64, by
          Levenberg-Marquardt for linear and tanh heads and by BFGS for
          ReLU heads, whose objective is piecewise quadratic (see
          :mod:`latentfactors.models.fold_in_mlp`). With a linear head this
          is the exact least-squares solution; otherwise a local minimum
          (deterministic: the same ratings give the same vector).

        Parameters
        ----------
        ratings : pandas.DataFrame or (items, ratings) tuple
            The user's ratings: a frame with ``item`` and ``rating`` columns or
            two arrays. Repeated items count as separate observations.
        ignore_unknown : bool, default False
            Drop ratings of items the model does not know instead of raising.

        Returns
        -------
        vector : numpy.ndarray of float32, (n_factors,)
        bias : float

        Raises
        ------
        UnknownIdError
            If a rated item is unknown and ``ignore_unknown`` is False.
        FloatingPointError
            If the solution is not finite.
        """
        self._check_fitted()
        ignore_unknown = _check_flag("ignore_unknown", ignore_unknown)
        codes, values = self._new_user(ratings, ignore_unknown)
        return self._fold_in(codes, values)

    def predict_for(self, ratings, items, *, ignore_unknown=False) -> np.ndarray:
        """Predicted ratings of ``items`` for a new user described by ``ratings``.

        The user is folded in (:meth:`fold_in`); predictions are then exactly
        what ``predict`` gives a known user with that vector and bias
        (unknown items get no bias and a zero vector, as in ``predict``;
        ``clip`` applies).

        Returns
        -------
        numpy.ndarray of float64, (len(items),)
        """
        self._check_fitted()
        items = _id_array(items, "items", allow_empty=True)  # as predict([], []) allows
        vector, bias = self.fold_in(ratings, ignore_unknown=ignore_unknown)
        codes = self.item_index_.encode(items)
        users = np.zeros(len(codes), dtype=np.int32)
        return self._for_user(vector, bias)._predict_codes(users, codes)

    def recommend_for(
        self,
        ratings,
        n=10,
        *,
        exclude_seen=True,
        items=None,
        popularity_weight=0.0,
        ignore_unknown=False,
        titles=None,
    ) -> pd.DataFrame:
        """The best ``n`` items for a new user described by ``ratings``, without refitting.

        The user is folded in (:meth:`fold_in`) and ranked exactly as
        :meth:`recommend` ranks a known user with that vector and bias (same
        scores, ties to the smaller item code, same ``popularity_weight``);
        ``exclude_seen`` leaves out the items in ``ratings``.

        Returns
        -------
        pandas.DataFrame
            ``item``, ``score``, best first.
        """
        self._check_fitted()
        n = _check_n(n)
        exclude_seen = _check_flag("exclude_seen", exclude_seen)
        weight = _check_weight(popularity_weight)
        ignore_unknown = _check_flag("ignore_unknown", ignore_unknown)
        codes, values = self._new_user(ratings, ignore_unknown)
        cands = self._candidates(items)
        vector, bias = self._fold_in(codes, values)
        seen = np.unique(codes).astype(np.int32) if exclude_seen else np.zeros(0, np.int32)
        exclusion = (np.zeros(1, np.int64), np.array([len(seen)], np.int64), seen)
        out_codes, out_scores = self._for_user(vector, bias)._rank(
            n,
            cands,
            exclusion,
            user_codes=np.zeros(1, dtype=np.int32),
            weight=weight,
            batch_size=1,
        )
        return self._items_frame(out_codes[0], out_scores[0], titles)


def fold_in_dot(model, item_codes, ratings):
    """``_fold_in`` for a dot-product model with ``reg``/``reg_bias_`` per rating."""
    P, Q, bu, bi, mu = model._dot_parts()
    p, b = solve_fold_in(
        Q[item_codes], bi[item_codes], ratings, mu, float(model.reg), float(model.reg_bias_)
    )
    with np.errstate(over="ignore"):  # overflow shows as inf, reported below
        p32, b32 = p.astype(np.float32), float(np.float32(b))
    if not (np.isfinite(p32).all() and math.isfinite(b32)):
        raise FloatingPointError(
            "fold-in produced NaN or infinite values (or values beyond float32's range): "
            "check the ratings, or use a larger reg"
        )
    return p32, b32


# ------------------------------------------------------------------ baseline


def popularity_recommendations(train, users=None, n=10, *, exclude_seen=True) -> TopN:
    """The most-rated items of ``train`` for each user: the popularity baseline.

    Parameters
    ----------
    train : pandas.DataFrame or tuple
        Ratings with ``user`` and ``item`` columns (or ``(users, items[, ratings])``).
        An item's popularity is its number of rows.
    users : array-like of raw user ids, optional
        Default: every user in ``train``. Users absent from ``train`` get the
        plain popularity ranking.
    n : int, default 10
    exclude_seen : bool, default True
        Leave out what each user rated in ``train``.

    Returns
    -------
    TopN
        Scores are the training counts; ties go to the smaller raw item id.
    """
    n = _check_n(n)
    exclude_seen = _check_flag("exclude_seen", exclude_seen)
    if isinstance(train, pd.DataFrame):
        missing = [c for c in ("user", "item") if c not in train.columns]
        if missing:
            raise ValueError(f"train is missing column(s) {missing}; found {list(train.columns)}")
        tu, ti = train["user"].to_numpy(), train["item"].to_numpy()
    elif isinstance(train, (tuple, list)) and len(train) in (2, 3):
        tu, ti = np.asarray(train[0]), np.asarray(train[1])
    else:
        raise TypeError(f"train must be a DataFrame or a tuple, got {type(train).__name__}")
    if len(tu) == 0:
        raise ValueError("train is empty: there is no popularity to rank by")
    user_index, item_index = IdIndex(tu), IdIndex(ti)
    uc, ic = user_index.encode(tu), item_index.encode(ti)
    counts = np.bincount(ic, minlength=len(item_index)).astype(np.float64)
    raw_users = user_index.ids if users is None else _id_array(users, "users")
    codes = user_index.encode(raw_users)
    m = len(codes)
    if exclude_seen:
        indptr, seen = csr_by_user(uc, ic, len(user_index))
        safe = np.maximum(codes, 0).astype(np.int64)
        starts = np.where(codes >= 0, indptr[safe], 0)
        ends = np.where(codes >= 0, indptr[safe + 1], 0)
    else:
        starts = ends = np.zeros(m, dtype=np.int64)
        seen = np.zeros(0, dtype=np.int32)
    cands = np.arange(len(item_index), dtype=np.int32)
    width = min(n, len(cands))
    out_codes = np.empty((m, width), dtype=np.int32)
    out_scores = np.empty((m, width), dtype=np.float64)
    step = 4096
    for start in range(0, m, step):
        sl = slice(start, min(m, start + step))
        block = np.broadcast_to(counts, (sl.stop - sl.start, len(counts)))
        topn_kernels._topn_scores(
            block, cands, starts[sl], ends[sl], seen, out_codes[sl], out_scores[sl], False
        )
    return TopN(
        users=raw_users,
        items=_decode_padded(item_index, out_codes),
        scores=out_scores,
        item_codes=out_codes,
    )
