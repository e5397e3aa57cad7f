"""BiasedMF: ``global_mean + user_bias + item_bias + user_vec . item_vec``."""

from __future__ import annotations

import math

import numpy as np

from latentfactors._validation import check_choice
from latentfactors.kernels import adam as adam_kernels
from latentfactors.kernels import sgd as sgd_kernels
from latentfactors.kernels._config import resolve_threads
from latentfactors.kernels._prefetch import aligned_empty
from latentfactors.kernels.scoring import predict_pairs, with_threads
from latentfactors.models.base import FactorModel
from latentfactors.models.fold_in import fold_in_dot

# Factor rows (users + items) that fit in this many bytes stay in cache anyway:
# one block, shuffled as a whole.
CACHE_BYTES = 2 * 1024 * 1024
# Beyond that, a block's item rows should stay in cache. Measured on 20M ratings at
# 32 factors, with rows prefetched: 1.6 MiB stripes (B = 4) beat 0.8 MiB (B = 8) and
# 0.4 MiB (B = 16) by 10-15% with 2 MiB of L2 per core, the user rows streaming by
# group. With 1 MiB of L2 per core (AMD Zen 4), B = 4 ran 1.02x B = 8 on one thread
# and 0.96x on two, and 1.08-1.14x B = 12 (`python benchmarks/grid_sizes.py`).
STRIPE_BYTES = 2 * 1024 * 1024
# ...a block must hold enough ratings to amortise the round barrier...
MIN_RATINGS_PER_BLOCK = 1024
# ...and there should be enough blocks per round to balance the threads: B is
# rounded up to a multiple of GRID_STEP, so 1, 2 or 4 threads get equal shares.
MIN_GRID = 4
GRID_STEP = 4
# Groups are visited in runs of consecutive groups holding about this many ratings
# (see kernels/sgd.py). Measured at 20M ratings, 32 factors: runs of 1,600 to
# 26,000 ratings all ran 2.06-2.17x faster than single groups in random order
# (`python benchmarks/sgd_runs.py --run-ratings 1600 26000`; 1.7-2.3x over runs).
RUN_RATINGS = 4096
# Adam runs a batch on several threads only from this batch size. With each row's
# state in one record, two threads ran 0.90x one at batch 256, 1.10-1.29x at 1024
# and 1.01-1.27x at 4096 over several runs (4M ratings, 32 factors:
# `python benchmarks/adam_records.py --batch-size B --parallel-min-batch 256`,
# records rows).
ADAM_PARALLEL_MIN_BATCH = 1024


def adam_records(W: np.ndarray, b: np.ndarray):
    """Adam's state for factor rows ``W`` and biases ``b``, interleaved by row.

    Returns ``(W', m, v, g)`` and ``(b', mb, vb, gb)``: views of one array of
    shape ``(n, 4, k)`` and one of shape ``(n, 4)``, so that a row's
    parameters, moments and gradient lie side by side in memory. ``W'`` and
    ``b'`` start as copies of ``W`` and ``b``; the rest start at zero. An Adam
    step reads and writes all four of a row, at random rows: side by side they
    share a memory page and the prefetcher's stream, where four separate arrays
    cost four page lookups and four distant lines. Measured side by side at 4M
    ratings over 200,000 users and 50,000 items with 32 factors, an epoch of
    batches of 256 ran 1.3-1.4x faster than with four separate arrays on one
    thread, and 1.1-1.15x on two when such batches still ran on two
    (``python benchmarks/adam_records.py``). The
    price is one extra copy of the parameters while training.
    """
    rows = aligned_empty((W.shape[0], 4, W.shape[1]), W.dtype)
    rows.fill(0)
    rows[:, 0] = W
    bias = aligned_empty((len(b), 4), b.dtype)
    bias.fill(0)
    bias[:, 0] = b
    return tuple(rows[:, j] for j in range(4)), tuple(bias[:, j] for j in range(4))


def grid_plan(n_users: int, n_items: int, n_ratings: int, n_factors: int) -> tuple[int, bool]:
    """Side ``B`` of the ``B x B`` block grid, and whether to group ratings by user.

    Depends on the data only, never on the thread count. When all factor rows
    fit in :data:`CACHE_BYTES` there is one block, shuffled as a whole.
    Otherwise the ratings of each block are grouped by user (a user's row is
    reused across the group) and ``B`` is the smallest multiple of
    :data:`GRID_STEP` whose item stripes fit in :data:`STRIPE_BYTES`, but at
    least :data:`MIN_GRID`, and capped so that an average block holds
    :data:`MIN_RATINGS_PER_BLOCK` ratings.
    """
    row_bytes = 4 * (n_factors + 1)
    if (n_users + n_items) * row_bytes <= CACHE_BYTES:
        return 1, False
    by_cache = max(MIN_GRID, math.ceil(n_items * row_bytes / STRIPE_BYTES))
    by_cache = -(-by_cache // GRID_STEP) * GRID_STEP
    by_size = max(1, math.isqrt(n_ratings // MIN_RATINGS_PER_BLOCK))
    return int(max(1, min(by_cache, by_size))), True


def grid_size(n_users: int, n_items: int, n_ratings: int, n_factors: int) -> int:
    """Side ``B`` of the block grid (see :func:`grid_plan`)."""
    return grid_plan(n_users, n_items, n_ratings, n_factors)[0]


def balanced_stripes(codes: np.ndarray, n: int, width: int, rng) -> np.ndarray:
    """Assign ``n`` ids to ``width`` stripes of about equal rating counts, in random order."""
    if width == 1:
        return np.zeros(n, dtype=np.int32)
    counts = np.bincount(codes, minlength=n).astype(np.int64)
    order = rng.permutation(n)
    before = np.cumsum(counts[order]) - counts[order]
    stripes = np.empty(n, dtype=np.int32)
    stripes[order] = np.minimum(width - 1, before * width // max(1, counts.sum()))
    return stripes


class BlockLayout:
    """Training ratings laid out once per fit: blocks contiguous, groups inside them.

    Attributes
    ----------
    users, items, ratings : the encoded ratings, reordered (the layout owns them).
    group_ptr : int64 array
        Group ``g`` is ``[group_ptr[g], group_ptr[g + 1])``.
    group_users : int32 array
        With ``by_user``, the user of every group; empty without.
    block_groups : int64 array, shape (B * B + 1,)
        Block ``b``'s groups are ``block_groups[b]`` to ``block_groups[b + 1] - 1``.
    run_ptr : int64 array
        Run ``r`` is the groups ``run_ptr[r]`` to ``run_ptr[r + 1] - 1``: consecutive
        groups of one block holding about :data:`RUN_RATINGS` ratings (with
        ``by_user``), or one group per run (without).
    block_runs : int64 array, shape (B * B + 1,)
        Block ``b``'s runs are ``run_order[block_runs[b]:block_runs[b + 1]]``.
    run_order : int64 array
        The order in which a block visits its runs; reshuffled every epoch.
    user_rows, item_rows : int32 arrays or None
        With ``by_user``, the rows are renumbered so that every stripe's users
        (items) are consecutive: ``users`` and ``items`` hold the new numbers,
        and new row ``r`` is the model's row ``user_rows[r]`` (``item_rows[r]``).
        A block's item rows and biases are then one compact slice of memory
        instead of rows scattered over the whole array. Users are in random
        order within their stripe, and a block's groups follow that order, so
        a run reads its user rows in storage order. ``None`` without.

    ``n_threads`` only sets how many threads build it; the layout is the same.
    """

    def __init__(self, data, width: int, rng, by_user: bool = False, n_threads: int = 1):
        n_users, n_items = len(data.user_index), len(data.item_index)
        self.width = width
        self.by_user = by_user
        ublock = balanced_stripes(data.users, n_users, width, rng)
        iblock = balanced_stripes(data.items, n_items, width, rng)
        self.user_rows = self.item_rows = None
        if by_user:
            # Random order within each stripe: runs then hold users drawn at random.
            self.user_rows = np.lexsort((rng.permutation(n_users), ublock)).astype(np.int32)
            self.item_rows = np.argsort(iblock, kind="stable").astype(np.int32)
            sgd_kernels._renumber(data.users, _inverse(self.user_rows))
            sgd_kernels._renumber(data.items, _inverse(self.item_rows))
            ublock, iblock = ublock[self.user_rows], iblock[self.item_rows]
        stripe = 0
        urank = np.zeros(n_users, dtype=np.int32)
        if by_user:
            # Number the users of each stripe 0..size-1, so (block, user) is a dense key.
            order = np.argsort(ublock, kind="stable")
            sizes = np.bincount(ublock, minlength=width)
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            urank[order] = np.arange(n_users) - np.repeat(starts, sizes)
            stripe = int(sizes.max())
        keys = np.empty(len(data.ratings), dtype=np.int32)
        ptr = sgd_kernels._cell_keys(data.users, data.items, ublock, iblock, width, keys)
        # Scatter one column at a time into block order and drop the source at
        # once, so the peak stays near one extra column beyond the encoded arrays.
        for name in ("users", "items", "ratings"):
            src = getattr(data, name)
            out = np.empty_like(src)
            sgd_kernels._scatter(src, keys, ptr, out)
            setattr(data, name, None)
            setattr(self, name, out)
            del src
        del keys
        if by_user:
            # Then group each block by user (the users column last: it holds the keys).
            block_ptr = ptr
            ptr = sgd_kernels._user_cells(self.users, urank, block_ptr, stripe)
            for col in (self.items, self.ratings, self.users):
                with_threads(
                    n_threads, sgd_kernels._group_by_user, col, self.users, urank, block_ptr, stripe
                )
            cells = np.flatnonzero(np.diff(ptr))
            self.group_ptr = np.append(ptr[cells], ptr[-1])
            self.block_groups = np.searchsorted(
                cells, np.arange(width * width + 1, dtype=np.int64) * stripe
            ).astype(np.int64)
            # Shuffled once here; each epoch then only picks where to start (see the kernel).
            sgd_kernels._shuffle_groups(
                self.users,
                self.items,
                self.ratings,
                self.group_ptr,
                rng.integers(1, 2**63, dtype=np.uint64),
            )
            self.run_ptr, self.block_runs = _runs(self.group_ptr, self.block_groups, RUN_RATINGS)
            self.group_users = self.users[self.group_ptr[:-1]]
        else:
            self.group_ptr = ptr
            self.block_groups = np.arange(width * width + 1, dtype=np.int64)
            self.run_ptr = self.block_runs = self.block_groups
            self.group_users = np.zeros(0, dtype=np.int32)
        self.run_order = np.arange(len(self.run_ptr) - 1, dtype=np.int64)
        self.sync = np.zeros(width * width + 1, dtype=np.int64)

    @property
    def block_ptr(self) -> np.ndarray:
        """Start of every block in the layout."""
        return self.group_ptr[self.block_groups]

    def schedule(self, rng) -> tuple[np.ndarray, np.ndarray]:
        """A fresh epoch plan: shuffled rounds of disjoint blocks, and per-block seeds."""
        w = self.width
        pu = rng.permutation(w)
        pi = rng.permutation(w)
        shifts = rng.permutation(w)
        a = np.arange(w)
        schedule = (pu[None, :] * w + pi[(a[None, :] + shifts[:, None]) % w]).astype(np.int64)
        seeds = rng.integers(1, 2**63, size=w * w, dtype=np.uint64)
        return schedule, seeds

    def epoch_args(self, rng) -> tuple:
        """The layout arguments of :func:`~latentfactors.kernels.sgd._sgd_block_epoch`."""
        schedule, seeds = self.schedule(rng)
        return (
            self.users,
            self.group_users,
            self.items,
            self.ratings,
            self.group_ptr,
            self.run_ptr,
            self.block_runs,
            self.run_order,
            schedule,
            seeds,
            not self.by_user,
            self.sync,
        )

    def to_layout(self, arrays):
        """The model's ``(P, Q, bu, bi)`` in the layout's row numbering (copies if renumbered)."""
        if self.user_rows is None:
            return arrays
        rows = (self.user_rows, self.item_rows) * 2
        return tuple(_gather(arr, r) for arr, r in zip(arrays, rows))

    def to_model(self, layout_arrays, arrays):
        """Write layout-numbered ``(P, Q, bu, bi)`` back into the model's arrays, in place."""
        if self.user_rows is None:
            return
        for src, dst, rows in zip(layout_arrays, arrays, (self.user_rows, self.item_rows) * 2):
            dst[rows] = src


def _runs(group_ptr: np.ndarray, block_groups: np.ndarray, size: int):
    """Cut each block's groups into runs: ``(run_ptr, block_runs)``.

    A run is the consecutive groups of one block whose first rating falls in
    the same ``size``-rating stretch of the block, so runs hold about
    ``size`` ratings, never cross a block and are never empty.
    """
    n_groups = len(group_ptr) - 1
    block_of = np.repeat(np.arange(len(block_groups) - 1), np.diff(block_groups))
    offset = group_ptr[:-1] - group_ptr[block_groups[block_of]]
    stretch = offset // size
    first = np.ones(n_groups, dtype=bool)
    first[1:] = (block_of[1:] != block_of[:-1]) | (stretch[1:] != stretch[:-1])
    starts = np.flatnonzero(first)
    run_ptr = np.append(starts, n_groups).astype(np.int64)
    return run_ptr, np.searchsorted(starts, block_groups).astype(np.int64)


def _gather(arr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``arr[rows]`` in a new array whose rows start on a cache line (see
    :func:`~latentfactors.kernels._prefetch.aligned_empty`). Measured at 20M
    ratings with 32 factors, an SGD epoch ran about 1.1-1.2x faster on aligned rows
    (interleaved rounds, ``python benchmarks/row_alignment.py``)."""
    out = aligned_empty((len(rows), *arr.shape[1:]), arr.dtype)
    # mode="clip" writes straight into out (the default buffers a second copy);
    # the rows are the layout's own permutation, so none is out of range.
    np.take(arr, rows, axis=0, out=out, mode="clip")
    return out


def _inverse(perm: np.ndarray) -> np.ndarray:
    """``inv[perm[r]] = r``."""
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm), dtype=perm.dtype)
    return inv


class BiasedMF(FactorModel):
    """Biased matrix factorisation trained by SGD or Adam.

    A rating is predicted as
    ``global_mean + user_bias[u] + item_bias[i] + user_factors[u] . item_factors[i]``
    and the model minimises squared error plus L2 penalties on the factors
    (``reg``) and the biases (``reg_bias``).

    Parameters
    ----------
    n_factors : int, default 256
        Length of each latent vector.
    optimizer : {"sgd", "adam", "adam-dense"}, default "sgd"
        ``"sgd"``: per-rating updates on a cache-friendly block schedule
        (parallel over ``n_threads``, bit-identical for any thread count).
        ``"adam"``: mini-batch Adam with lazy row updates (see
        :mod:`latentfactors.kernels.adam` for the exact rule): only the rows
        in a batch move, so an epoch costs O(ratings x factors). With
        ``batch_size >= 1024`` each batch runs in parallel over ``n_threads``,
        bit-identical for any count.
        ``"adam-dense"``: Adam as Keras applies it to embeddings, where every
        row's moments decay and every row moves at every step. It costs
        O(users + items) per batch and exists to reproduce Keras results.
    learning_rate : float, optional
        Step size; ``None`` means 0.015 for SGD, 0.002 for Adam and 0.001 for
        dense Adam.
    reg : float, default 0.05
        L2 penalty on the factors, applied once per rating a row appears in
        (the same objective for every optimizer).
    reg_bias : float, default 0.05
        L2 penalty on the biases; ``None`` means the same as ``reg``.
    n_epochs : int, default 30
        Maximum number of passes over the ratings.
    batch_size : int, default 256
        Ratings per Adam step (unused by SGD).
    init_std : float, default 0.02
        Standard deviation of the initial factors.
    init : {"normal", "uniform"}, default "normal"
        ``"normal"``: factors drawn normally, biases start at 0.
        ``"uniform"``: factors and biases drawn uniformly with standard
        deviation ``init_std``, as Keras's ``Embedding`` layer does.
    early_stopping : bool, default True
        With ``valid`` given to :meth:`fit`, stop after ``patience`` epochs
        without a better validation MSE and keep the best epoch's parameters.
    patience : int, default 5
    clip : bool, default True
        Keep predictions within the range of the training ratings.
    center : bool, default True
        Predict around the global mean of the training ratings. ``False``
        leaves the average for the biases to learn, as the original Keras
        notebook did.
    random_state : None, int or numpy.random.Generator
        Seeds the initial factors and every epoch's order.
    n_threads : int, default 1
        Threads for training epochs and large predictions; ``-1`` = all
        cores. The result does not depend on it.
    verbose : int, default 0
        ``1`` prints one line per epoch.
    callback : callable, optional
        ``callback(epoch, logs)`` after each epoch, ``logs`` holding
        ``train_mse``, ``seconds`` and, with ``valid``, ``valid_mse``.

    Notes
    -----
    The defaults were chosen on the *validation* part of the original
    notebook's protocol (MovieLens ``ml-latest-small`` 2016, 80/12/8 random
    split, seeds 0-2), never on its test part: many factors (256) started
    near zero (``init_std=0.02``) and held back by moderate L2 (0.05)
    generalise better than few factors without it (the notebook's 5 factors
    overfit within two epochs). With ``learning_rate=0.015`` the best
    validation epoch falls between 20 and 30, so ``n_epochs=30`` is also a
    good stopping point when no validation set is given. See
    ``benchmarks/accuracy.py`` for the figures on this and other datasets.

    Attributes
    ----------
    user_factors_, item_factors_ : float32 arrays, (n_users, k) and (n_items, k)
    user_bias_, item_bias_ : float32 arrays
    global_mean_ : float
    user_index_, item_index_ : IdIndex
        Raw ids to rows of the arrays above.
    history_ : dict of lists
        ``epoch``, ``train_mse`` (running MSE during the epoch), ``valid_mse``
        (NaN without ``valid``), ``seconds``.
    n_epochs_ : int
        Epochs actually run; ``best_epoch_`` is the one whose parameters are kept.
    """

    _default_lr = {"sgd": 0.015, "adam": 0.002, "adam-dense": 0.001}

    def __init__(
        self,
        n_factors=256,
        *,
        optimizer="sgd",
        learning_rate=None,
        reg=0.05,
        reg_bias=0.05,
        n_epochs=30,
        batch_size=256,
        init_std=0.02,
        init="normal",
        early_stopping=True,
        patience=5,
        clip=True,
        center=True,
        random_state=None,
        n_threads=1,
        verbose=0,
        callback=None,
    ):
        self.n_factors = n_factors
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.reg = reg
        self.reg_bias = reg_bias
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.init_std = init_std
        self.init = init
        self.early_stopping = early_stopping
        self.patience = patience
        self.clip = clip
        self.center = center
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose
        self.callback = callback

    def _validate(self):
        check_choice("optimizer", self.optimizer, {"sgd", "adam", "adam-dense"})
        self._validate_common()

    def _state_names(self):
        return ["user_factors_", "item_factors_", "user_bias_", "item_bias_"]

    def _init_state(self, rng, n_users, n_items):
        return self._init_embeddings(rng, n_users, n_items)

    # ---- training

    def _sgd_arrays(self):
        return self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_

    def _setup(self, data, rng):
        f32 = np.float32
        ctx = {
            "mu": f32(self.global_mean_),
            "lr": f32(self.learning_rate_),
            "reg": f32(self.reg),
            "reg_bias": f32(self.reg_bias_),
        }
        n_users, n_items = len(data.user_index), len(data.item_index)
        if self.optimizer == "sgd":
            width, by_user = grid_plan(n_users, n_items, len(data.ratings), self.n_factors)
            layout = BlockLayout(data, width, rng, by_user, self._threads)
            ctx["layout"] = layout
            # Train on the layout's numbering; _sync refreshes the model's arrays.
            ctx["rows"] = layout.to_layout(self._sgd_arrays())
            return ctx
        P, Q, bu, bi = self._sgd_arrays()
        (Pw, mP, vP, gP), (buw, mbu, vbu, gbu) = adam_records(P, bu)
        (Qw, mQ, vQ, gQ), (biw, mbi, vbi, gbi) = adam_records(Q, bi)
        # Train on the records' parameter slots; _sync copies them to the model.
        ctx["rows"] = (Pw, Qw, buw, biw)
        ctx.update(
            data=data,
            order=np.arange(len(data.ratings), dtype=np.int32),
            last_u=np.zeros(n_users, np.int64),
            last_i=np.zeros(n_items, np.int64),
            step=0,
            moments=[mP, vP, mQ, vQ, mbu, vbu, mbi, vbi],
            scratch=[
                gP,
                gQ,
                gbu,
                gbi,
                np.full(n_users, -1, np.int64),
                np.full(n_items, -1, np.int64),
                np.zeros(n_users, np.int32),
                np.zeros(n_items, np.int32),
            ],
        )
        return ctx

    def _sync(self, ctx):
        if "layout" in ctx:
            ctx["layout"].to_model(ctx["rows"], self._sgd_arrays())
        else:
            for src, dst in zip(ctx["rows"], self._sgd_arrays()):
                dst[...] = src

    def _training_arrays(self, ctx) -> dict:
        return dict(zip(self._state_names(), ctx["rows"]))

    def _epoch(self, ctx, epoch, rng):
        if self.optimizer == "sgd":
            layout = ctx["layout"]
            sse = with_threads(
                self._threads,
                sgd_kernels._sgd_block_epoch,
                *layout.epoch_args(rng),
                *ctx["rows"],
                ctx["mu"],
                ctx["lr"],
                ctx["reg"],
                ctx["reg_bias"],
            )
            return sse
        P, Q, bu, bi = ctx["rows"]
        data, order = ctx["data"], ctx["order"]
        sgd_kernels._shuffle_order(order, rng.integers(1, 2**63, dtype=np.uint64))
        mP, vP, mQ, vQ, mbu, vbu, mbi, vbi = ctx["moments"]
        dense = self.optimizer == "adam-dense"
        batch = min(int(self.batch_size), len(order))  # the kernel's scratch is this long
        n_batches = math.ceil(len(order) / batch)
        beta1, beta2 = np.float32(0.9), np.float32(0.999)
        drift = (
            adam_kernels.drift_table(
                float(ctx["lr"]), float(beta1), float(beta2), ctx["step"], ctx["step"] + n_batches
            )
            if dense
            else np.zeros(1)
        )
        threads = self._threads if batch >= ADAM_PARALLEL_MIN_BATCH else 1
        sse = with_threads(
            threads,
            adam_kernels._adam_epoch,
            data.users,
            data.items,
            data.ratings,
            order,
            batch,
            P,
            Q,
            bu,
            bi,
            ctx["mu"],
            mP,
            vP,
            mQ,
            vQ,
            mbu,
            vbu,
            mbi,
            vbi,
            *ctx["scratch"],
            ctx["lr"],
            beta1,
            beta2,
            np.float32(1e-7),
            ctx["reg"],
            ctx["reg_bias"],
            ctx["step"],
            dense,
            ctx["last_u"],
            ctx["last_i"],
            drift,
            threads,
        )
        ctx["step"] += n_batches
        return sse

    # ---- prediction

    def _predict_codes(self, users, items):
        lo, hi = self._clip_range()
        return predict_pairs(
            users,
            items,
            self.user_factors_,
            self.item_factors_,
            self.user_bias_,
            self.item_bias_,
            self.global_mean_,
            lo,
            hi,
            resolve_threads(self.n_threads),
        )

    # ---- recommending: hooks of RecommenderMixin (see models/recommend.py)

    def _dot_parts(self):
        return (
            self.user_factors_,
            self.item_factors_,
            self.user_bias_,
            self.item_bias_,
            self.global_mean_,
        )

    def _fold_in(self, item_codes, ratings):
        return fold_in_dot(self, item_codes, ratings)
