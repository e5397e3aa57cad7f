"""ImplicitMF: a latent-factor model of which items people choose, fitted by ALS.

The model and one half sweep are described in :mod:`latentfactors.kernels.als`;
this module builds the confidences and penalties from a ratings frame, runs
the sweeps (one per "epoch") and serves top-N through the shared
:class:`~latentfactors.models.recommend.RecommenderMixin` paths.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np

from latentfactors._validation import check_choice, check_int, check_real
from latentfactors.data.coerce import encode_train, rating_arrays
from latentfactors.errors import DivergenceError
from latentfactors.kernels import als
from latentfactors.kernels._config import resolve_threads, units_per_call, with_threads
from latentfactors.kernels.scoring import csr_by_user
from latentfactors.metrics import error_metrics
from latentfactors.models.base import FactorModel, _encode_valid

CONFIDENCES = ("rating", "binary", "log")
SOLVERS = ("cg", "cholesky")

# Threads pay off for a half sweep only from this many rows times k^2.
PARALLEL_MIN_WORK = 2_000_000

# Estimated nanoseconds of one core per rating and factor^2 of a Cholesky row
# solve (a rough figure, not a measurement). Only sizes a sweep's calls.
ALS_NS_PER_RATING_FACTOR2 = 1.0


class ImplicitMF(FactorModel):
    """Weighted matrix factorisation of who rated what, by alternating least squares.

    Every observed (user, item) pair is a positive with confidence
    ``1 + alpha * f(value)``, every other pair a zero with weight 1; a user's
    score for an item is ``user_vec . item_vec``, and ``recommend`` ranks by it
    (Hu, Koren & Volinsky 2008). The penalty of each row grows with the row's
    total weight in the loss, ``reg * (n_other + sum(c - 1)) ** reg_exponent``
    (frequency-scaled regularisation, Rendle et al. 2021); there are no biases.

    Parameters
    ----------
    n_factors : int, default 128
        Length of each vector.
    n_epochs : int, default 15
        Sweeps: each solves every user, then every item.
    reg : float, default 0.015
        Penalty per unit of a row's total weight (see above).
    alpha : float, default 25.0
        Confidence slope of an observed pair.
    confidence : {"rating", "binary", "log"}, default "rating"
        ``f(value)``: ``(value / top) ** power``, ``top`` the largest training
        value, so that the best ratings weigh most (values must be >= 0); 1
        for every observed pair; or ``log(1 + value)`` for counts. Repeated
        pairs add up.
    power : float, default 4.0
        The exponent of ``"rating"``.
    reg_exponent : float, default 1.0
        ``nu`` of the penalty above: 0 gives every row the penalty ``reg``.
    solver : {"cg", "cholesky"}, default "cg"
        ``cg_steps`` conjugate-gradient steps from the row's current vector,
        O(k * (ratings + k)) per row, or an exact solve, O(k^2 * ratings + k^3)
        per row: on ml-latest-small both reach the same ranking quality, and
        the default is about 6 times faster at k = 128.
    cg_steps : int, default 3
    init_std : float, default 0.1
        Initial vectors are normal with standard deviation ``init_std /
        sqrt(n_factors)``.
    random_state, n_threads, verbose, callback
        As in :class:`~latentfactors.BiasedMF`; the factors do not depend on
        ``n_threads``. ``callback(epoch, logs)`` gets ``train_mse`` (the
        weighted mean squared error over all pairs, penalty excluded),
        ``seconds`` and with ``valid`` ``valid_mse`` (the mean of ``(1 -
        score)^2`` over the held-out pairs: how strongly they are predicted
        as chosen).

    Attributes
    ----------
    user_factors_, item_factors_ : float32 arrays
    history_ : dict of lists
        ``train_mse`` never increases from one sweep to the next (each half
        sweep minimises the objective in one side; with ``solver="cg"`` it
        lowers it).

    Notes
    -----
    ``predict`` returns scores, not ratings: about 1 for a pair the model
    expects to be chosen, about 0 otherwise (0 for unknown ids); ``evaluate``
    reports their squared error against 1 on held-out pairs. ``fold_in`` gives
    a new user the exact solution of their half step against the fixed items.
    """

    def __init__(
        self,
        n_factors=128,
        *,
        n_epochs=15,
        reg=0.015,
        alpha=25.0,
        confidence="rating",
        power=4.0,
        reg_exponent=1.0,
        solver="cg",
        cg_steps=3,
        init_std=0.1,
        random_state=None,
        n_threads=-1,
        verbose=0,
        callback=None,
    ):
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.reg = reg
        self.alpha = alpha
        self.confidence = confidence
        self.power = power
        self.reg_exponent = reg_exponent
        self.solver = solver
        self.cg_steps = cg_steps
        self.init_std = init_std
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose
        self.callback = callback

    def _validate(self):
        check_int("n_factors", self.n_factors, 1, 4096)
        check_int("n_epochs", self.n_epochs, 1)
        check_real("reg", self.reg, 0)
        check_real("alpha", self.alpha, 0)
        check_choice("confidence", self.confidence, CONFIDENCES)
        check_real("power", self.power, 0, 100)
        check_real("reg_exponent", self.reg_exponent, 0, 2)
        check_choice("solver", self.solver, SOLVERS)
        check_int("cg_steps", self.cg_steps, 1, 1000)
        check_real("init_std", self.init_std, 0, low_open=True)
        self._validate_run()

    def _state_names(self):
        return ["user_factors_", "item_factors_"]

    # A score model: no biases, nothing to clip.
    clip = False

    @property
    def user_bias_(self):
        return np.zeros(len(self.user_factors_), dtype=np.float32)

    @property
    def item_bias_(self):
        return np.zeros(len(self.item_factors_), dtype=np.float32)

    # ---- fitting

    def fit(self, ratings, *, valid=None):
        """Fit from scratch on who rated what.

        Parameters
        ----------
        ratings : pandas.DataFrame or tuple of arrays
            ``user``, ``item`` and ``rating`` (the value feeds the confidence,
            see ``confidence``; with ``"binary"`` only the pairs count).
        valid : same kinds, optional
            Held-out pairs: each sweep reports ``valid_mse`` on them.

        Returns
        -------
        self
        """
        return super().fit(ratings, valid=valid)

    def _confidences(self, values, top=None):
        """``1 + alpha * f(value)`` per rating (float64); ``top`` is the largest
        training value (``"rating"`` divides by it)."""
        values = values.astype(np.float64)
        if self.confidence == "binary":
            f = np.ones_like(values)
        else:
            if values.size and values.min() < 0:
                raise ValueError(
                    f"confidence={self.confidence!r} needs ratings >= 0 (it weighs each pair "
                    f"by its value), got {values.min():g}; use confidence='binary'"
                )
            if self.confidence == "log":
                f = np.log1p(values)
            else:
                top = float(values.max()) if top is None else top
                f = (values / top) ** float(self.power) if top > 0 else np.ones_like(values)
        return 1.0 + float(self.alpha) * f

    def _sides(self, users, items, values, n_users, n_items, top=None):
        """The two :class:`~latentfactors.kernels.als.Side` tables (repeated pairs merged)."""
        extra = self._confidences(values, top) - 1.0
        keys = users.astype(np.int64) * n_items + items
        unique, inverse = np.unique(keys, return_inverse=True)
        extra = np.bincount(inverse, weights=extra, minlength=len(unique))
        pu, pi = unique // n_items, unique % n_items

        def side(rows, cols, n_rows, n_cols):
            order = np.lexsort((cols, rows))
            indptr = np.zeros(n_rows + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
            conf = 1.0 + extra[order]
            weight = n_cols + np.bincount(rows, weights=extra, minlength=n_rows)
            lam = float(self.reg) * weight ** float(self.reg_exponent)
            return als.Side(indptr, cols[order].astype(np.int32), conf, lam)

        return side(pu, pi, n_users, n_items), side(pi, pu, n_items, n_users)

    def _fit(self, ratings, valid):
        data = encode_train(ratings)
        valid_codes = _encode_valid(data, valid)
        rng = np.random.default_rng(self.random_state)
        self._threads = resolve_threads(self.n_threads)
        self.user_index_, self.item_index_ = data.user_index, data.item_index
        n_users, n_items, k = len(data.user_index), len(data.item_index), self.n_factors
        self.rating_range_ = (float(data.ratings.min()), float(data.ratings.max()))
        self.global_mean_ = 0.0
        self.seen_indptr_, self.seen_items_ = csr_by_user(
            data.users, data.items, n_users, self._threads
        )
        by_user, by_item = self._sides(data.users, data.items, data.ratings, n_users, n_items)
        del data
        std = float(self.init_std) / math.sqrt(k)
        X = rng.standard_normal((n_users, k)) * std
        Y = rng.standard_normal((n_items, k)) * std
        steps = als.SOLVE_CHOLESKY if self.solver == "cholesky" else int(self.cg_steps)
        total_weight = float(n_users) * n_items + float(np.sum(by_user.conf - 1.0))
        self.history_ = {"epoch": [], "train_mse": [], "valid_mse": [], "seconds": []}
        self.n_epochs_ = self.best_epoch_ = 0
        finished = None
        try:
            for epoch in range(1, self.n_epochs + 1):
                start = time.perf_counter()
                self._half_sweep(by_user, X, Y, steps, "user")
                Gx = self._half_sweep(by_item, Y, X, steps, "item")
                seconds = time.perf_counter() - start
                if not (np.isfinite(X).all() and np.isfinite(Y).all()):
                    raise DivergenceError(
                        f"ALS diverged at sweep {epoch}: the factors became NaN or infinite"
                    )
                error, _ = als.objective(by_user, X, Y, Gx, als.gram(Y), by_item.lam)
                logs = {"train_mse": error / total_weight, "seconds": seconds}
                if valid_codes is not None:
                    users, items, _ = valid_codes
                    scores = _scores(X, Y, users, items)
                    logs["valid_mse"] = float(np.mean((1.0 - scores) ** 2))
                finished = (X.astype(np.float32), Y.astype(np.float32))
                self.n_epochs_ = self.best_epoch_ = epoch
                for key in ("train_mse", "valid_mse", "seconds"):
                    self.history_[key].append(logs.get(key, math.nan))
                self.history_["epoch"].append(epoch)
                if self.callback is not None:
                    self.user_factors_, self.item_factors_ = finished  # it may recommend
                self._report(epoch, logs)
        finally:
            if finished is not None:
                self.user_factors_, self.item_factors_ = finished
        return self

    def _half_sweep(self, side, X, Y, steps, what):
        """Solve every row of ``X`` against the fixed ``Y``, in calls of bounded work;
        returns ``Y``'s Gram matrix."""
        n, k = X.shape
        per_row = ALS_NS_PER_RATING_FACTOR2 * k * k * (1 + len(side.indices) / max(n, 1) + k)
        parallel = self._threads > 1 and n * k * k >= PARALLEL_MIN_WORK
        G = als.gram(Y, parallel)
        per_call = units_per_call(n, per_row)
        failed = np.zeros(min(n, per_call), dtype=np.bool_)
        for lo in range(0, n, per_call):
            hi = min(n, lo + per_call)
            if parallel:
                with_threads(
                    self._threads, als._solve_rows_parallel, side, X, Y, G, steps, lo, hi, failed
                )
            else:
                als._solve_rows_serial(side, X, Y, G, steps, lo, hi, failed)
            if failed[: hi - lo].any():
                raise DivergenceError(
                    f"ALS failed: the system of {what} code {lo + int(np.argmax(failed))} is "
                    "not positive definite; use a larger reg"
                )
        return G

    # ---- predicting and recommending

    def _predict_codes(self, users, items):
        return _scores(self.user_factors_, self.item_factors_, users, items)

    def evaluate(self, ratings) -> dict:
        """``{"mse", "rmse", "mae"}`` of the scores against 1 on held-out pairs
        (how strongly the model expects them to be chosen; the values are not used)."""
        self._check_fitted()
        u, i, _ = rating_arrays(ratings, need_rating=False, what="ratings")
        if len(u) == 0:
            raise ValueError("ratings is empty: there is nothing to evaluate")
        pred = self._predict_codes(self.user_index_.encode(u), self.item_index_.encode(i))
        return error_metrics(np.ones(len(pred)), pred)

    def _dot_parts(self):
        return self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_, 0.0

    def _for_user(self, vector, bias):
        """A copy whose only user, code 0, has ``vector`` (there are no biases)."""
        one = copy.copy(self)
        one.user_factors_ = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        return one

    def _fold_in(self, item_codes, ratings):
        """The new user's half step: the exact minimiser with every item fixed."""
        n_items = len(self.item_index_)
        codes = np.asarray(item_codes, dtype=np.int64)
        side = self._sides(
            np.zeros(len(codes), dtype=np.int64),
            codes,
            np.asarray(ratings),
            1,
            n_items,
            top=max(self.rating_range_[1], 0.0),
        )[0]
        Y = self.item_factors_.astype(np.float64)
        X = np.zeros((1, self.n_factors))
        failed = np.zeros(1, dtype=np.bool_)
        als._solve_rows_serial(side, X, Y, als.gram(Y), als.SOLVE_CHOLESKY, 0, 1, failed)
        if failed[0] or not np.isfinite(X).all():
            raise FloatingPointError("the folded-in vector is not finite")
        return X[0].astype(np.float32), 0.0


def _scores(P, Q, users, items):
    """float64 ``P[u] . Q[i]`` for pairs of codes; 0 where either is unknown (-1)."""
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    known = (users >= 0) & (items >= 0)
    out = np.zeros(len(users))
    out[known] = np.einsum(
        "ij,ij->i", P[users[known]].astype(np.float64), Q[items[known]].astype(np.float64)
    )
    return out
