"""MLPMF: ``global_mean + user_bias + item_bias + MLP([user_vec; item_vec])``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from latentfactors._validation import check_choice, check_real, is_int
from latentfactors.errors import ModelFileError
from latentfactors.kernels import adam as adam_kernels
from latentfactors.kernels import mlp as mlp_kernels
from latentfactors.kernels._config import resolve_threads
from latentfactors.kernels._random import _shuffle_order
from latentfactors.kernels.bundles import Embeddings, Ratings
from latentfactors.kernels.scoring import PARALLEL_PREDICT_MIN, with_threads
from latentfactors.models.base import FactorModel


@dataclass
class MLPFitState:
    """What MLPMF's training carries from one epoch to the next."""

    #: The training ratings, as read-only views.
    ratings: Ratings
    #: The order of the ratings, reshuffled in place every epoch.
    order: np.ndarray
    #: Ratings in a full batch (never more than there are).
    batch_ratings: int
    #: The head's layer widths, parameter offsets and unit offsets.
    sizes: np.ndarray
    offsets: np.ndarray
    uoff: np.ndarray
    moments: mlp_kernels.MLPMoments
    #: Gradient rows of the embeddings and the rows each batch touches.
    rows: adam_kernels.RowScratch
    #: The forward and backward passes' scratch, sized for a batch.
    scratch: mlp_kernels.BatchScratch
    #: Dense Adam embeddings: the step each user (item) row was last brought up to date.
    last_u: np.ndarray
    last_i: np.ndarray
    #: Batches run so far (Adam's step counter).
    step: int = 0
    #: The last epoch's dropout seed, kept for inspection (tests replay the epoch).
    dropout_seed: np.uint64 | None = None


class MLPMF(FactorModel):
    """Embeddings with a multi-layer perceptron head, trained by mini-batch Adam or SGD.

    A rating is predicted as

        ``global_mean + user_bias[u] + item_bias[i] + head([user_factors[u]; item_factors[i]])``

    where ``head`` is ``len(hidden)`` dense layers ``a = activation(a @ W + b)``
    followed by a dense layer to one linear output. The model minimises squared
    error plus L2 penalties on the embeddings (``reg``), the biases
    (``reg_bias``) and the dense weights (``reg_weights``); see
    :mod:`latentfactors.kernels.mlp` for the exact objective.

    Parameters
    ----------
    n_factors : int, default 32
        Length of each user and item vector; the head's input has ``2 * n_factors`` units.
    hidden : tuple or list of int, default (64, 32)
        Widths of the hidden layers, at least one.
    activation : {"relu", "tanh", "linear"}, default "relu"
        Activation of every hidden layer. Weights start He-uniform for ReLU and
        Glorot-uniform otherwise; intercepts start at zero.
    dropout : float in [0, 1), default 0.0
        Probability of dropping each hidden unit during training (inverted
        dropout: predictions use the whole network unscaled).
    optimizer : {"adam", "sgd", "adam-dense"}, default "adam"
        Optimizer of the dense head: Adam or plain gradient descent on the
        batch-mean objective. ``"adam-dense"`` (Keras's Adam) is the same as
        ``"adam"`` for the head, whose parameters all move every batch; it is
        accepted only with ``embedding_optimizer`` ``"adam-dense"`` or
        ``None``, the Keras configuration.
    embedding_optimizer : {"sgd", "adam", "adam-dense"} or None, default "sgd"
        Optimizer of the embedding rows and biases; ``None`` means the same
        as ``optimizer``. ``"sgd"``: gradient descent on the rows a batch
        touches; a row moves by about ``embedding_learning_rate * 2 /
        batch_size`` times its error per rating, as in :class:`BiasedMF`'s
        SGD. ``"adam"``: lazy Adam on the rows a batch touches (as
        :class:`BiasedMF`'s ``"adam"``). ``"adam-dense"``: Keras semantics,
        every row moves at every step (applied in closed form when a row is
        next touched); it exists to reproduce Keras results.
    learning_rate : float, optional
        Step size of the dense head in the first epoch. ``None`` means 1e-4
        for an Adam head over SGD embeddings, 1e-3 for an Adam head over
        Adam embeddings, and 0.1 for an SGD head.
    embedding_learning_rate : float, optional
        Step size of the embedding rows and biases in the first epoch.
        ``None`` means ``learning_rate`` when that is given and both
        optimizers are Adam or both SGD; otherwise ``0.006 * batch_size``
        for SGD (1.536 at the default batch; ``batch_size`` counts as the
        number of ratings when there are fewer), 0.005 for ``"adam"`` and 0.001
        for ``"adam-dense"``.
    lr_decay : float in (0, 1], default 0.85
        Both step sizes are multiplied by ``lr_decay`` after every epoch
        (epoch ``e`` runs at ``rate * lr_decay**(e - 1)``). ``1`` keeps them
        constant.
    reg : float, default 0.05
        L2 penalty on the user and item vectors, per rating a row appears in.
    reg_weights : float, default 3e-3
        L2 penalty on the dense weights (not the intercepts), per rating. It
        is the regulariser that matters most for this model.
    reg_bias : float, default 0.05
        L2 penalty on the user and item biases; ``None`` means the same as ``reg``.
    n_epochs : int, default 10
        Maximum number of passes over the ratings. With the defaults the
        validation error is flat from about epoch 7 to 13 and rises slowly
        after, so 10 also suits a fit without ``valid``.
    batch_size : int, default 256
        Ratings per step.
    init_std : float, default 0.05
        Standard deviation of the initial vectors.
    init : {"normal", "uniform"}, default "normal"
        ``"normal"``: vectors drawn normally, biases start at 0.
        ``"uniform"``: vectors and biases drawn uniformly with standard
        deviation ``init_std``, as Keras's ``Embedding`` layer does.
    early_stopping : bool, default True
        With ``valid`` given to :meth:`fit`, stop after ``patience`` epochs
        without a better validation MSE and keep the best epoch's parameters.
    patience : int, default 3
    clip : bool, default True
        Keep predictions within the range of the training ratings.
    center : bool, default True
        Predict around the global mean of the training ratings. ``False``
        leaves the average to the biases and the output intercept, as the
        original Keras notebook did.
    random_state : None, int or numpy.random.Generator
        Seeds the initial parameters, every epoch's order and the dropout masks.
    n_threads : int, default -1
        Threads for the forward and backward passes and large predictions;
        ``-1`` = every core this process may use (its CPU affinity, at most
        ``NUMBA_NUM_THREADS``). The model is bit-identical for any count.
    verbose : int, default 0
        ``1`` prints one line per epoch.
    callback : callable, optional
        ``callback(epoch, logs)`` after each epoch, ``logs`` holding
        ``train_mse``, ``seconds`` and, with ``valid``, ``valid_mse``.

    Notes
    -----
    **A linear head is a biases-only model.** With ``activation="linear"``
    (the original notebook's "complex model": its Dense layers had no
    activation) the layers compose into one affine map of the input,
    ``head([p; q]) = p . w_user + q . w_item + c``, so every prediction is
    ``f(user) + g(item)``: the user and item vectors never interact and
    ``pred(u, i) - pred(u, j)`` is the same for every user ``u``. That is the
    biases-only baseline written with extra parameters, and it is why the
    notebook's "complex" model beat its dot-product model (test MSE 0.842
    against 1.008): with 5 epochs of Adam at 1e-2 and no regularisation, the
    dot product overfits its interactions, while a model that cannot express
    interactions cannot overfit them. A nonlinear activation (the default
    ReLU) lets the head model interactions.

    The notebook's configuration reads ``MLPMF(5, hidden=(5,),
    activation="linear", optimizer="adam-dense",
    embedding_optimizer="adam-dense", learning_rate=1e-2, lr_decay=1,
    n_epochs=5, batch_size=64, reg=0, reg_bias=0, reg_weights=0,
    center=False, clip=False, init="uniform", init_std=0.029,
    early_stopping=False)`` (:func:`latentfactors.presets.notebook_mlp`;
    Keras starts embeddings uniform in +-0.05, whose standard deviation is
    0.029). Fitted on the train part only, it reproduces the notebook's test
    MSE, and does so far faster than the Keras code (the figures are in the
    README's accuracy table and ``benchmarks/results/accuracy-*.md``, from
    ``python benchmarks/accuracy.py``).

    **New users** get a vector and bias without refitting: :meth:`fold_in`,
    :meth:`predict_for` and :meth:`recommend_for` minimise the training
    objective restricted to the user's ratings through the fixed head (see
    :mod:`latentfactors.models.fold_in`).

    **Unknown ids.** An id not seen in training has no bias and a zero
    vector, the mean its L2 penalty pulls every vector towards; the head
    still runs on the other side's vector. A cold item for a known user is
    predicted ``global_mean + user_bias[u] + head([user_factors[u]; 0])``.
    (In Keras an unseen row keeps its small random initial vector, which is
    nearly the same.)

    **Defaults.** They were tuned on the validation part of ``random_split``
    of MovieLens ``ml-latest-small`` (2016), seeds 0-4, never on the test
    part. What matters most is how the two kinds of parameters learn: the
    embedding rows by SGD, as in :class:`BiasedMF`, with a decaying step,
    and the head by Adam with a small step (1e-4), so that the head changes
    slowly while the embeddings learn to use it. Median validation MSE over
    the five seeds: 0.7678, against 0.7768 with Adam on everything and
    0.7740 with a head that stays at its random initialisation. Width, depth,
    dropout, the embedding and weight penalties and the batch size all land
    within noise of each other.

    On the test part the defaults give 0.778 (median of seeds 0-2; 0.773
    over seeds 0-4; 0.777 without ``valid``) in 2-4 s, against 0.754-0.756 for
    :class:`BiasedMF` defaults on the same splits, 0.784 with Adam on
    everything and 0.796 for the linear (biases-only) head
    (``python benchmarks/mlp.py --variants``). The MLP learns
    interactions, but as Rendle et al. (2020, "Neural collaborative
    filtering vs. matrix factorization revisited") found, a
    well-regularised dot product models them better.

    Attributes
    ----------
    user_factors_, item_factors_ : float32 arrays, (n_users, k) and (n_items, k)
    user_bias_, item_bias_ : float32 arrays
    dense_ : float32 array
        Every dense weight and intercept, layer by layer (see
        :mod:`latentfactors.kernels.mlp`); ``weights_`` and ``intercepts_``
        are lists of views into it, ``weights_[l]`` of shape ``(n_in, n_out)``.
    global_mean_ : float
    user_index_, item_index_ : IdIndex
        Raw ids to rows of the arrays above.
    history_ : dict of lists
        ``epoch``, ``train_mse`` (running MSE during the epoch, with dropout),
        ``valid_mse`` (NaN without ``valid``), ``seconds``.
    n_epochs_ : int
        Epochs actually run; ``best_epoch_`` is the one whose parameters are kept.
    """

    # Per-rating step of SGD embedding rows: a row moves by about
    # embedding_learning_rate * 2 / batch_size times its error per rating.
    _SGD_EMBEDDING_LR_PER_RATING = 0.006
    _STRUCTURE = ("n_factors", "hidden", "activation")

    def __init__(
        self,
        n_factors=32,
        *,
        hidden=(64, 32),
        activation="relu",
        dropout=0.0,
        optimizer="adam",
        embedding_optimizer="sgd",
        learning_rate=None,
        embedding_learning_rate=None,
        lr_decay=0.85,
        reg=0.05,
        reg_weights=3e-3,
        reg_bias=0.05,
        n_epochs=10,
        batch_size=256,
        init_std=0.05,
        init="normal",
        early_stopping=True,
        patience=3,
        clip=True,
        center=True,
        random_state=None,
        n_threads=-1,
        verbose=0,
        callback=None,
    ):
        self.n_factors = n_factors
        self.hidden = hidden
        self.activation = activation
        self.dropout = dropout
        self.optimizer = optimizer
        self.embedding_optimizer = embedding_optimizer
        self.learning_rate = learning_rate
        self.embedding_learning_rate = embedding_learning_rate
        self.lr_decay = lr_decay
        self.reg = reg
        self.reg_weights = reg_weights
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

    @property
    def learning_rate_(self) -> float:
        """The head's learning rate in the first epoch (``learning_rate`` or its default)."""
        if self.learning_rate is not None:
            return float(self.learning_rate)
        if self.optimizer == "sgd":
            return 0.1
        # A slow head suits embeddings that move by SGD; Adam embeddings want a faster one.
        return 1e-4 if self.embedding_optimizer_ == "sgd" else 1e-3

    @property
    def embedding_optimizer_(self) -> str:
        """The optimizer of the embedding rows and biases (``None`` = ``optimizer``'s)."""
        if self.embedding_optimizer is None:
            return self.optimizer
        return self.embedding_optimizer

    @property
    def embedding_learning_rate_(self) -> float:
        """The learning rate of the embedding rows and biases in the first epoch.

        Once fitted, for the batches training used: never more ratings than
        there were (before, for batches of ``batch_size``).
        """
        return self._embedding_lr(self._batch_ratings())

    def _batch_ratings(self) -> int:
        """Ratings in a full batch: once fitted, never more than training had."""
        batch = int(self.batch_size)
        seen = getattr(self, "seen_items_", None)  # one entry per training rating
        if seen is not None and len(seen):
            batch = min(batch, len(seen))
        return batch

    def _embedding_lr(self, batch: int) -> float:
        """The first epoch's embedding step for batches of ``batch`` ratings.

        The default SGD step is per rating in a batch: on data with fewer
        ratings than ``batch_size``, a batch (and so the step) is the whole data.
        """
        if self.embedding_learning_rate is not None:
            return float(self.embedding_learning_rate)
        same = (self.optimizer == "sgd") == (self.embedding_optimizer_ == "sgd")
        if self.learning_rate is not None and same:
            return float(self.learning_rate)
        if self.embedding_optimizer_ == "sgd":
            return self._SGD_EMBEDDING_LR_PER_RATING * batch
        return 0.005 if self.embedding_optimizer_ == "adam" else 0.001

    @classmethod
    def _saved_hyperparams(cls, params: dict) -> dict:
        # Before embedding_optimizer existed, the embeddings used the head's optimizer.
        params = {"embedding_optimizer": None, **params}
        if isinstance(params.get("hidden"), list):  # JSON has no tuples
            params["hidden"] = tuple(params["hidden"])
        return params

    def _penalty_step(self):
        # The penalties act on the embeddings only. Adam's steps do not scale
        # with them; an SGD row moves by embedding_learning_rate * 2 / batch per rating.
        if self.embedding_optimizer_ != "sgd":
            return None
        step = self.embedding_learning_rate_ * 2 / self._batch_ratings()
        return step, "the embeddings' step per rating", "embedding_learning_rate"

    def _learning_rate_hint(self) -> str:
        lr, embed = self.learning_rate_, self.embedding_learning_rate_
        return (
            f"learning_rate (now {lr:g}) or embedding_learning_rate (now {embed:g}), "
            f"e.g. {lr / 10:g} and {embed / 10:g}"
        )

    # ---- checks and state

    def _validate(self):
        hidden = self.hidden
        if not isinstance(hidden, (tuple, list)) or len(hidden) == 0:
            raise ValueError(
                "hidden must be a non-empty tuple or list of layer widths, e.g. (64, 32); "
                f"got {hidden!r}"
            )
        for n, width in enumerate(hidden):
            if not is_int(width) or not 1 <= width <= 100_000:
                raise ValueError(
                    f"hidden[{n}] must be a positive integer layer width <= 100000, got {width!r}"
                )
        check_choice("activation", self.activation, set(mlp_kernels.ACTIVATIONS))
        check_choice("optimizer", self.optimizer, set(mlp_kernels.OPTIMIZERS))
        if self.embedding_optimizer is not None:
            check_choice(
                "embedding_optimizer", self.embedding_optimizer, set(mlp_kernels.OPTIMIZERS)
            )
        if self.optimizer == "adam-dense" and self.embedding_optimizer_ != "adam-dense":
            raise ValueError(
                "optimizer='adam-dense' is Keras's Adam, which differs from 'adam' only for "
                "the embeddings: pass embedding_optimizer='adam-dense' (or None) to train "
                "them that way, or optimizer='adam' for an Adam head over "
                f"embedding_optimizer={self.embedding_optimizer!r}"
            )
        check_real("dropout", self.dropout, 0, 1, high_open=True)
        check_real("reg_weights", self.reg_weights, 0)
        if self.embedding_learning_rate is not None:
            check_real("embedding_learning_rate", self.embedding_learning_rate, 0, low_open=True)
        check_real("lr_decay", self.lr_decay, 0, 1, low_open=True)
        self._validate_common()

    def _state_names(self):
        return ["user_factors_", "item_factors_", "user_bias_", "item_bias_", "dense_"]

    def _unscaled(self, arrays, scale):
        # The head's output layer is linear: scaling it and the biases scales
        # every prediction; the embeddings and hidden layers stay as learned.
        _, offsets, _ = self._layout()
        out = {name: arr.copy() for name, arr in arrays.items()}
        for name in ("user_bias_", "item_bias_"):
            out[name] = (arrays[name] * np.float64(scale)).astype(np.float32)
        last = slice(int(offsets[-2]), int(offsets[-1]))
        out["dense_"][last] = (arrays["dense_"][last] * np.float64(scale)).astype(np.float32)
        return out

    def _set_state(self, state: dict):
        # Installs initial, restored (early stopping) and loaded arrays alike: a head
        # saved with subnormal weights (by an older version) would slow every
        # prediction, so they become zero here, as training flushes them.
        super()._set_state(state)
        dense = state.get("dense_")
        if isinstance(dense, np.ndarray) and dense.dtype == np.float32:  # load checks the rest
            mlp_kernels.flush_head(dense)

    def _layout(self):
        """``(sizes, offsets, unit offsets)`` of the head, from the hyperparameters."""
        sizes = mlp_kernels.layer_sizes(self.n_factors, self.hidden)
        return sizes, mlp_kernels.dense_offsets(sizes), mlp_kernels.unit_offsets(sizes)

    def _init_state(self, rng, n_users, n_items):
        sizes, offsets, _ = self._layout()
        dense = np.zeros(offsets[-1], dtype=np.float32)
        for layer in range(len(sizes) - 1):
            n_in, n_out = int(sizes[layer]), int(sizes[layer + 1])
            hidden_layer = layer < len(sizes) - 2
            if hidden_layer and self.activation == "relu":
                limit = math.sqrt(6.0 / n_in)  # He uniform
            else:
                limit = math.sqrt(6.0 / (n_in + n_out))  # Glorot uniform
            w = rng.uniform(-limit, limit, size=n_in * n_out)
            dense[offsets[layer] : offsets[layer] + n_in * n_out] = w
        return {
            **self._init_embeddings(rng, n_users, n_items),
            "dense_": dense,
        }

    def _check_state_shapes(self):
        super()._check_state_shapes()
        expected = int(self._layout()[1][-1])  # (load checked the hyperparameters first)
        if self.dense_.shape != (expected,):
            raise ModelFileError(
                f"dense_ has shape {self.dense_.shape}; hidden={self.hidden!r} with "
                f"n_factors={self.n_factors} needs ({expected},)"
            )

    def _dense_views(self, part):
        self._check_fitted()
        sizes, offsets, _ = self._layout()
        views = []
        for layer in range(len(sizes) - 1):
            n_in, n_out = int(sizes[layer]), int(sizes[layer + 1])
            w0 = int(offsets[layer])
            if part == "weights":
                views.append(self.dense_[w0 : w0 + n_in * n_out].reshape(n_in, n_out))
            else:
                views.append(self.dense_[w0 + n_in * n_out : w0 + n_in * n_out + n_out])
        return views

    @property
    def weights_(self) -> list:
        """Dense weight matrices, ``(n_in, n_out)`` float32 views into ``dense_``."""
        return self._dense_views("weights")

    @property
    def intercepts_(self) -> list:
        """Dense intercept vectors, ``(n_out,)`` float32 views into ``dense_``."""
        return self._dense_views("intercepts")

    # ---- training

    def _setup(self, data, rng):
        # Read-only views (zero-copy): the kernels never write the ratings, and a
        # single array type means a single compiled signature, whatever the caller passed.
        columns = []
        for name in ("users", "items", "ratings"):
            view = getattr(data, name).view()
            view.flags.writeable = False
            columns.append(view)
        sizes, offsets, uoff = self._layout()
        batch = min(int(self.batch_size), len(data.ratings))
        # Trains on the model's own arrays: no copies, nothing to write back.
        _, embed_moments, rows = adam_kernels.adam_buffers(*self._embedding_arrays())
        n_par = int(offsets[-1])
        return MLPFitState(
            ratings=Ratings(*columns),
            order=np.arange(len(data.ratings), dtype=np.int32),
            batch_ratings=batch,
            sizes=sizes,
            offsets=offsets,
            uoff=uoff,
            moments=mlp_kernels.MLPMoments(
                embed_moments, np.zeros(n_par, np.float32), np.zeros(n_par, np.float32)
            ),
            rows=rows,
            scratch=mlp_kernels.batch_scratch(batch, sizes),
            last_u=np.zeros(len(data.user_index), np.int64),
            last_i=np.zeros(len(data.item_index), np.int64),
        )

    def _embedding_arrays(self):
        return self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_

    def _head(self, sizes, offsets, uoff):
        """The dense head as the kernels take it."""
        act = mlp_kernels.ACTIVATIONS[self.activation]
        return mlp_kernels.Head(self.dense_, offsets, sizes, uoff, act)

    def _epoch(self, state, epoch, rng):
        order = state.order
        _shuffle_order(order, rng.integers(1, 2**63, dtype=np.uint64))
        state.dropout_seed = rng.integers(1, 2**63, dtype=np.uint64)
        f32 = np.float32
        decay = float(self.lr_decay) ** (epoch - 1)
        lr, beta1, beta2 = f32(self.learning_rate_ * decay), f32(0.9), f32(0.999)
        lr_embed = f32(self._embedding_lr(state.batch_ratings) * decay)
        n_batches = math.ceil(len(order) / self.batch_size)
        dense = self.embedding_optimizer_ == "adam-dense"
        drift = (
            adam_kernels.drift_table(
                float(lr_embed), float(beta1), float(beta2), state.step, state.step + n_batches
            )
            if dense
            else np.zeros(1)
        )
        hyper = mlp_kernels.MLPHyper(
            mlp_kernels.OPTIMIZERS[self.optimizer],
            mlp_kernels.OPTIMIZERS[self.embedding_optimizer_],
            lr,
            lr_embed,
            beta1,
            beta2,
            f32(1e-7),
            f32(self.reg),
            f32(self.reg_bias_),
            f32(self.reg_weights),
        )
        sse = with_threads(
            self._threads,
            mlp_kernels._mlp_epoch,
            state.ratings,
            order,
            int(self.batch_size),
            Embeddings(*self._embedding_arrays()),
            f32(self.global_mean_),
            self._head(state.sizes, state.offsets, state.uoff),
            mlp_kernels.Dropout(float(self.dropout), state.dropout_seed),
            state.moments,
            state.rows,
            state.scratch,
            hyper,
            adam_kernels.AdamClock(state.step, dense, state.last_u, state.last_i, drift),
        )
        state.step += n_batches
        return sse

    # ---- new users

    def _fold_in(self, item_codes, ratings):
        from latentfactors.models.fold_in import fold_in_mlp

        return fold_in_mlp(self, item_codes, ratings)

    # ---- prediction

    def _predict_codes(self, users, items):
        sizes, offsets, uoff = self._layout()
        out = np.empty(len(users), dtype=np.float64)
        # Read-only, as training's ids are: the forward pass compiles once for both.
        users, items = _read_only(users), _read_only(items)
        args = (
            users,
            items,
            np.arange(len(users), dtype=np.int32),
            Embeddings(*self._embedding_arrays()),
            self.global_mean_,
            self._head(sizes, offsets, uoff),
            self._clip_range(),
            out,
        )
        n_threads = resolve_threads(self.n_threads)
        if n_threads > 1 and len(users) >= PARALLEL_PREDICT_MIN:
            n_tasks = -(-len(users) // mlp_kernels.PREDICT_CHUNK)
            scratch = mlp_kernels.predict_scratch(n_tasks, sizes)
            with_threads(n_threads, mlp_kernels._predict_parallel, *args, scratch)
        else:
            mlp_kernels._predict_serial(*args, mlp_kernels.predict_scratch(1, sizes))
        return out


def _read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view of ``array`` (the array itself stays writable)."""
    view = array.view()
    view.flags.writeable = False
    return view
