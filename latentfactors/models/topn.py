"""Top-N: ranking a model's items block by block (:func:`rank`), and the results.

:func:`rank` serves every top-N method of
:class:`~latentfactors.models.recommend.RecommenderMixin`. Results come back
as a :class:`TopN` of arrays (the popularity baseline,
:mod:`latentfactors.models.baselines`, returns one too), or as frames, to
which :func:`with_titles` joins item titles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from latentfactors.data.ids import IdIndex
from latentfactors.kernels import topn as topn_kernels
from latentfactors.kernels.bundles import Embeddings

__all__ = ["TopN", "decode_padded", "rank", "with_titles"]


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


def _fill_value(dtype):
    """What stands in an empty slot of an id array of this dtype."""
    if dtype.kind in "US":
        return ""
    if dtype.kind == "f":
        return np.nan
    if dtype.kind == "u":
        return np.iinfo(dtype).max
    return -1


def decode_padded(index: IdIndex, codes: np.ndarray) -> np.ndarray:
    """Raw ids of ``codes``, with the fill value of the ids' dtype where a code is ``-1``."""
    ids = index.ids
    valid = codes >= 0
    out = ids[np.where(valid, codes, 0)] if len(ids) else np.zeros(codes.shape, ids.dtype)
    if not valid.all():
        out[~valid] = _fill_value(out.dtype)
    return out


def rank(model, n, cands, exclusion, *, user_codes, weight=0.0, batch_size=None):
    """Top ``n`` item codes and scores per row of users, best first.

    Every top-N call of :class:`~latentfactors.models.recommend.RecommenderMixin`
    comes here; its docstring describes the ranking. Row ``r`` is user
    ``user_codes[r]`` of ``model``; only ``batch_size`` rows are scored at once.

    Parameters
    ----------
    model : fitted model
    n : int
    cands : int32 array
        Sorted unique candidate item codes.
    exclusion : tuple
        Per-row ``(starts, ends, seen)``: row ``r`` leaves out the item codes
        ``seen[starts[r]:ends[r]]``.
    user_codes : int32 array, (m,)
    weight : float
        The popularity prior's weight.
    batch_size : int, optional
        Rows per block; by default, as many as keep a block near 64 MiB.

    Returns
    -------
    codes : numpy.ndarray of int32, (m, min(n, len(cands)))
        ``-1`` in empty slots.
    scores : numpy.ndarray of float64, same shape
    """
    starts, ends, seen = exclusion
    m = len(user_codes)
    width = min(n, len(cands))
    out_codes = np.empty((m, width), dtype=np.int32)
    out_scores = np.empty((m, width), dtype=np.float64)
    threads = model._threads_for_recommend()
    prior = model._prior(cands, weight)
    parts = model._dot_parts()
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
            topn_kernels._topn_dot(
                block,
                prior32,
                prior,
                eps,
                cands,
                (starts[sl], ends[sl], seen),
                Embeddings(Pu, Q, bub, bi),
                mu,
                out_codes[sl],
                out_scores[sl],
                threads if parallel else 1,
            )
        else:
            model._score_block(user_codes[sl], cands, block)
            if weight != 0.0:
                block += prior
            topn_kernels._topn_scores(
                block,
                cands,
                starts[sl],
                ends[sl],
                seen,
                out_codes[sl],
                out_scores[sl],
                threads if parallel else 1,
            )
    return out_codes, out_scores
