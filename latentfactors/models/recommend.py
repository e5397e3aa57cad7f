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
  ratings, every item parameter fixed (the solvers are in
  :mod:`latentfactors.models.fold_in`). :class:`~latentfactors.BiasedMF`
  solves that least-squares problem in closed form
  (:func:`~latentfactors.models.fold_in.fold_in_dot`);
  :class:`~latentfactors.MLPMF`, whose user vector enters a nonlinear head,
  minimises it iteratively (:func:`~latentfactors.models.fold_in.fold_in_mlp`).
  The default raises :class:`NotImplementedError`.
* ``_for_user(vector, bias)`` -> a copy of the model whose only user, code 0,
  has that vector and bias, sharing every other array; ``predict_for`` and
  ``recommend_for`` score the folded-in user through it with the model's own
  ``_predict_codes`` and top-N paths. The default replaces ``user_factors_``
  and ``user_bias_``.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd

from latentfactors._validation import check_bool, check_int, is_real
from latentfactors.data.coerce import id_array, one_user_ratings, user_item_pairs
from latentfactors.data.ids import IdIndex
from latentfactors.errors import UnknownIdError
from latentfactors.kernels import topn as topn_kernels
from latentfactors.kernels._config import resolve_threads

# Re-exported: these lived here before recommending was split into modules.
from latentfactors.models.baselines import popularity_recommendations
from latentfactors.models.fold_in import solve_fold_in
from latentfactors.models.topn import TopN, decode_padded, rank, with_titles

__all__ = [
    "RecommenderMixin",
    "TopN",
    "UnknownIdError",
    "popularity_recommendations",
    "solve_fold_in",
    "with_titles",
]

METRICS = ("cosine", "dot")

# Far beyond any useful weight, and far below where w * ln(1 + n) overflows
# the scores' float32.
MAX_POPULARITY_WEIGHT = 1e6


def _check_weight(weight):
    if not is_real(weight) or not math.isfinite(weight) or abs(weight) > MAX_POPULARITY_WEIGHT:
        raise ValueError(
            f"popularity_weight must be a finite number within +-{MAX_POPULARITY_WEIGHT:g}, "
            f"got {weight!r} (useful weights are about 0.01 to 10)"
        )
    return float(weight)


def _show(values, limit=5) -> str:
    shown = ", ".join(repr(v) for v in np.asarray(values[:limit]).tolist())
    more = f", ... ({len(values)} in all)" if len(values) > limit else ""
    return f"[{shown}{more}]"


def _encode_known(index: IdIndex, values, what, kind, hint="") -> np.ndarray:
    """Codes of raw ids that must all be known; the error lists a few unknown ones."""
    arr = id_array(values, what)
    codes = index.encode(arr)
    bad = codes < 0
    if bad.any():
        raise UnknownIdError(
            f"{int(bad.sum())} of the {what} are not known to this model (they had no "
            f"ratings in training): {_show(arr[bad])}{hint}",
            kind=kind,
            ids=arr[bad].tolist(),
        )
    return codes


def _one_code(index: IdIndex, value, what, hint="") -> int:
    """The code of one known id; ``what`` is ``"user"`` or ``"item"``."""
    if isinstance(value, (list, tuple, set, dict, np.ndarray, pd.Series, pd.Index)):
        raise TypeError(f"{what} must be a single id, got {type(value).__name__}{hint}")
    codes = index.encode(np.asarray([value]))
    if codes[0] < 0:
        raise UnknownIdError(
            f"{what} {value!r} is not known to this model: it had no ratings in training{hint}",
            kind=what,
            ids=[value],
        )
    return int(codes[0])


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
        copy is cheap, and it serves ``_predict_codes`` and
        :func:`~latentfactors.models.topn.rank`
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
        codes = _encode_known(self.item_index_, items, "candidate items", "item")
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
        eu, ei = user_item_pairs(exclude, "exclude")
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
        n = check_int("n", n, 1)
        exclude_seen = check_bool("exclude_seen", exclude_seen)
        weight = _check_weight(popularity_weight)
        code = _one_code(
            self.user_index_, user, "user", "; for a new user use recommend_for(ratings)"
        )
        cands = self._candidates(items)
        codes = np.array([code], dtype=np.int32)
        out_codes, out_scores = rank(
            self,
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
        n = check_int("n", n, 1)
        exclude_seen = check_bool("exclude_seen", exclude_seen)
        as_frame = check_bool("as_frame", as_frame)
        batch_size = check_int("batch_size", batch_size, 1, none_ok=True)
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
                "user",
                "; new users need recommend_for(ratings)",
            )
        cands = self._candidates(items)
        exclusion = self._exclusion(user_codes, exclude_seen, exclude)
        out_codes, out_scores = rank(
            self,
            n,
            cands,
            exclusion,
            user_codes=user_codes,
            weight=weight,
            batch_size=batch_size,
        )
        result = TopN(
            users=self.user_index_.ids[user_codes],
            items=decode_padded(self.item_index_, out_codes),
            scores=out_scores,
            item_codes=out_codes,
        )
        if not as_frame:
            return result
        frame = result.to_frame()
        return frame if titles is None else with_titles(frame, titles)

    # ---- similarity

    def _similar(self, vectors, code, n, metric):
        n = check_int("n", n, 1)
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
        items, values = one_user_ratings(ratings)
        codes = self.item_index_.encode(items)
        unknown = codes < 0
        if unknown.any():
            if not ignore_unknown:
                raise UnknownIdError(
                    f"{int(unknown.sum())} rated item(s) are not known to this model: "
                    f"{_show(items[unknown])}; pass ignore_unknown=True to drop them",
                    kind="item",
                    ids=items[unknown].tolist(),
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
          :func:`~latentfactors.models.fold_in.solve_fold_in`).
        * :class:`~latentfactors.MLPMF` (``pred_j = mu + b + bi_j + head([p; q_j])``):
          minimised iteratively from ``p = 0`` in float64, by
          Levenberg-Marquardt for linear and tanh heads and by BFGS for
          ReLU heads, whose objective is piecewise quadratic (see
          :mod:`latentfactors.models.fold_in`). With a linear head this
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
        ignore_unknown = check_bool("ignore_unknown", ignore_unknown)
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
        items = id_array(items, "items", allow_empty=True)  # as predict([], []) allows
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
        n = check_int("n", n, 1)
        exclude_seen = check_bool("exclude_seen", exclude_seen)
        weight = _check_weight(popularity_weight)
        ignore_unknown = check_bool("ignore_unknown", ignore_unknown)
        codes, values = self._new_user(ratings, ignore_unknown)
        cands = self._candidates(items)
        vector, bias = self._fold_in(codes, values)
        seen = np.unique(codes).astype(np.int32) if exclude_seen else np.zeros(0, np.int32)
        exclusion = (np.zeros(1, np.int64), np.array([len(seen)], np.int64), seen)
        out_codes, out_scores = rank(
            self._for_user(vector, bias),
            n,
            cands,
            exclusion,
            user_codes=np.zeros(1, dtype=np.int32),
            weight=weight,
            batch_size=1,
        )
        return self._items_frame(out_codes[0], out_scores[0], titles)
