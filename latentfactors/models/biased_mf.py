"""BiasedMF: ``global_mean + user_bias + item_bias + user_vec . item_vec``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from latentfactors._validation import check_choice
from latentfactors.kernels import adam as adam_kernels
from latentfactors.kernels import sgd as sgd_kernels
from latentfactors.kernels._config import resolve_threads
from latentfactors.kernels._random import _shuffle_order
from latentfactors.kernels.bundles import Embeddings, Ratings
from latentfactors.kernels.layout import (
    BlockLayout,
    grid_plan,
    grid_size,  # noqa: F401 (the speed notebook imports it from here)
)
from latentfactors.kernels.scoring import predict_pairs, with_threads
from latentfactors.models.base import FactorModel
from latentfactors.models.fold_in import fold_in_dot

# Adam runs a batch on several threads only from this batch size: below it the
# threads' start-up and their share of a batch's rows cost more than they save
# (`python benchmarks/adam_records.py --batch-size B --parallel-min-batch 256`,
# benchmarks/results/sgd-adam-layout.txt).
ADAM_PARALLEL_MIN_BATCH = 1024


@dataclass
class SGDFitState:
    """What SGD carries from one epoch to the next."""

    #: The ratings in blocks, groups and runs, and the rows' renumbering.
    layout: BlockLayout
    #: The parameters training updates, in the layout's row numbering: copies of
    #: the model's arrays when the layout renumbers rows, else those arrays.
    params: Embeddings
    hyper: sgd_kernels.SGDHyper


@dataclass
class AdamFitState:
    """What lazy or dense Adam carries from one epoch to the next."""

    ratings: Ratings
    #: The order of the ratings, reshuffled in place every epoch.
    order: np.ndarray
    #: The parameter slots of the Adam records (copies of the model's arrays).
    params: Embeddings
    moments: adam_kernels.Moments
    scratch: adam_kernels.RowScratch
    #: Dense mode: the step each user (item) row was last brought up to date.
    last_u: np.ndarray
    last_i: np.ndarray
    mu: np.float32
    hyper: adam_kernels.AdamHyper
    #: Batches run so far (Adam's step counter).
    step: int = 0


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
    n_threads : int, default -1
        Threads for training epochs and large predictions; ``-1`` = every
        core this process may use (its CPU affinity, at most
        ``NUMBA_NUM_THREADS``). The model is bit-identical for any count.
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
        n_threads=-1,
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

    def _unscaled(self, arrays, scale):
        # pred = mu + bu + bi + p.q scales as a whole: biases by scale, vectors by its root.
        root = np.sqrt(scale)
        factor = {"user_factors_": root, "item_factors_": root}
        return {
            name: (arr * np.float64(factor.get(name, scale))).astype(np.float32)
            for name, arr in arrays.items()
        }

    def _init_state(self, rng, n_users, n_items):
        return self._init_embeddings(rng, n_users, n_items)

    # ---- training

    def _sgd_arrays(self):
        return self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_

    def _setup(self, data, rng):
        f32 = np.float32
        n_users, n_items = len(data.user_index), len(data.item_index)
        if self.optimizer == "sgd":
            width, by_user = grid_plan(n_users, n_items, len(data.ratings), self.n_factors)
            columns = {"users": data.users, "items": data.items, "ratings": data.ratings}
            # The layout takes the arrays over and drops each once reordered.
            data.users = data.items = data.ratings = None
            layout = BlockLayout(columns, n_users, n_items, width, rng, by_user, self._threads)
            hyper = sgd_kernels.SGDHyper(
                f32(self.global_mean_), f32(self.learning_rate_), f32(self.reg), f32(self.reg_bias_)
            )
            # Train on the layout's numbering; _sync refreshes the model's arrays.
            return SGDFitState(layout, layout.to_layout(self._sgd_arrays()), hyper)
        # Train on the parameter slots of Adam's records; _sync copies them to the model.
        params, moments, scratch = adam_kernels.adam_buffers(*self._sgd_arrays(), records=True)
        hyper = adam_kernels.AdamHyper(
            f32(self.learning_rate_),
            f32(0.9),
            f32(0.999),
            f32(1e-7),
            f32(self.reg),
            f32(self.reg_bias_),
        )
        return AdamFitState(
            ratings=Ratings(data.users, data.items, data.ratings),
            order=np.arange(len(data.ratings), dtype=np.int32),
            params=params,
            moments=moments,
            scratch=scratch,
            last_u=np.zeros(n_users, np.int64),
            last_i=np.zeros(n_items, np.int64),
            mu=f32(self.global_mean_),
            hyper=hyper,
        )

    def _sync(self, state):
        if isinstance(state, SGDFitState):
            state.layout.to_model(state.params, self._sgd_arrays())
        else:
            for src, dst in zip(state.params, self._sgd_arrays()):
                dst[...] = src

    def _training_arrays(self, state) -> dict:
        return dict(zip(self._state_names(), state.params))

    def _epoch(self, state, epoch, rng):
        if isinstance(state, SGDFitState):
            blocks, plan = state.layout.epoch_args(rng)
            return with_threads(
                self._threads,
                sgd_kernels._sgd_block_epoch,
                blocks,
                plan,
                state.params,
                state.hyper,
            )
        order = state.order
        _shuffle_order(order, rng.integers(1, 2**63, dtype=np.uint64))
        hyper = state.hyper
        batch = min(int(self.batch_size), len(order))  # the kernel's scratch is this long
        n_batches = math.ceil(len(order) / batch)
        dense = self.optimizer == "adam-dense"
        drift = (
            adam_kernels.drift_table(
                float(hyper.lr),
                float(hyper.beta1),
                float(hyper.beta2),
                state.step,
                state.step + n_batches,
            )
            if dense
            else np.zeros(1)
        )
        clock = adam_kernels.AdamClock(state.step, dense, state.last_u, state.last_i, drift)
        threads = self._threads if batch >= ADAM_PARALLEL_MIN_BATCH else 1
        sse = with_threads(
            threads,
            adam_kernels._adam_epoch,
            state.ratings,
            order,
            batch,
            state.params,
            state.mu,
            state.moments,
            state.scratch,
            hyper,
            clock,
            threads,
        )
        state.step += n_batches
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
