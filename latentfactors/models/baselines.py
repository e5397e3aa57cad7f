"""Baselines that any model should beat: the most-rated items.

On MovieLens a model trained to predict ratings loses to this baseline at
top-N unless its ranking gets a popularity prior
(``recommend_all(..., popularity_weight=...)``; ``benchmarks/recommend.py``).
"""

from __future__ import annotations

import numpy as np

from latentfactors._validation import check_bool, check_int
from latentfactors.data.coerce import frame_or_tuple, id_array
from latentfactors.data.ids import IdIndex
from latentfactors.kernels import topn as topn_kernels
from latentfactors.kernels.scoring import csr_by_user
from latentfactors.models.topn import TopN, decode_padded

__all__ = ["popularity_recommendations"]


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
    n = check_int("n", n, 1)
    exclude_seen = check_bool("exclude_seen", exclude_seen)
    tu, ti = frame_or_tuple(
        train, ["user", "item"], "train", expected="a DataFrame or a tuple", lengths=(2, 3)
    )
    if len(tu) == 0:
        raise ValueError("train is empty: there is no popularity to rank by")
    user_index, item_index = IdIndex(tu), IdIndex(ti)
    uc, ic = user_index.encode(tu), item_index.encode(ti)
    counts = np.bincount(ic, minlength=len(item_index)).astype(np.float64)
    raw_users = user_index.ids if users is None else id_array(users, "users")
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
        items=decode_padded(item_index, out_codes),
        scores=out_scores,
        item_codes=out_codes,
    )
