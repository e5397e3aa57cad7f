"""The estimator: hyperparameters, their checks, the epoch loop, prediction.

A model subclass supplies four things:

* ``_init_state(rng, n_users, n_items)``: the initial parameter arrays;
* ``_setup(data, rng)``: its optimizer's fit state (a small dataclass), built once per fit;
* ``_epoch(state, epoch, rng)``: run one epoch (a few short kernel calls), return its sum
  of squared errors;
* ``_predict_codes(users, items)``: predictions for dense codes (``-1`` = unknown).

The epoch loop, early stopping, history, progress and divergence checks live
here, in Python, around those calls. Saving and loading are in
:mod:`latentfactors.models.persistence`, reading the caller's data in
:mod:`latentfactors.data.coerce`, recommending in
:mod:`latentfactors.models.recommend`.
"""

from __future__ import annotations

import inspect
import math
import sys
import time
import warnings

import numpy as np
import pandas as pd

from latentfactors._validation import check_bool, check_choice, check_int, check_real, is_int
from latentfactors.data.coerce import encode_train, id_values, rating_arrays
from latentfactors.errors import DivergenceError, NotFittedError, UnstableTrainingWarning
from latentfactors.kernels._config import resolve_threads
from latentfactors.kernels.scoring import csr_by_user
from latentfactors.metrics import error_metrics
from latentfactors.models import persistence
from latentfactors.models.recommend import RecommenderMixin
from latentfactors.models.scaling import TrainingViews, rating_scale

# Training has blown up when its MSE passes this many times that of predicting 0.
MSE_BLOWUP = 1e6
# Past this many times that of predicting 0, it is unstable: fit warns (once).
MSE_UNSTABLE = 100.0
# Ratings beyond this size get a note in those messages: the wrong column, perhaps.
RATING_SCALE_NOTE = 1000.0

# How embedding rows start: "normal" draws vectors N(0, init_std) and zero
# biases; "uniform" draws vectors *and* biases uniformly with the same standard
# deviation, as a Keras ``Embedding`` layer does (+-0.05 is std 0.029).
INITS = ("normal", "uniform")

# ---------------------------------------------------------------- the estimator


class FactorModel(RecommenderMixin):
    """Base class: scikit-learn-style estimator around one jitted epoch kernel.

    Recommending (top-N, similar items, fold-in of new users) comes from
    :class:`~latentfactors.models.recommend.RecommenderMixin`.
    """

    _default_lr: dict = {}

    # ---- parameters

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict:
        """The hyperparameters, as given to ``__init__``."""
        return {name: getattr(self, name) for name in self._param_names()}

    def check_params(self, **params) -> None:
        """Check hyperparameter values by name as :meth:`set_params` would; keep none of them.

        Each value is checked together with the model's other hyperparameters
        (some depend on each other, e.g. ``MLPMF``'s ``optimizer`` and
        ``embedding_optimizer``), exactly as ``fit`` checks them.

        Raises
        ------
        ValueError or TypeError
            Naming the parameter and the values it accepts: an unknown name,
            or a value out of range.
        """
        valid = self._param_names()
        for name in params:
            if name not in valid:
                raise ValueError(
                    f"{name!r} is not a parameter of {type(self).__name__}; valid: {valid}"
                )
        old = {name: getattr(self, name) for name in params}
        try:
            for name, value in params.items():
                setattr(self, name, value)
            self._validate()
        finally:
            for name, value in old.items():
                setattr(self, name, value)

    def set_params(self, **params):
        """Set hyperparameters by name; returns ``self``.

        The parameters are then checked as ``fit`` checks them; if one is
        invalid, none of the new values is kept and the error says which
        (:meth:`check_params` checks without setting).
        """
        self.check_params(**params)
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        parts = []
        for name, p in sig.parameters.items():
            if name == "self":
                continue
            value = getattr(self, name)
            default = p.default
            same = value is default
            if not same:
                try:
                    same = bool(value == default)
                except Exception:  # noqa: BLE001 - arrays and odd objects compare oddly
                    same = False
            if not same:
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def _validate_common(self):
        check_int("n_factors", self.n_factors, 1, 100_000)
        check_int("n_epochs", self.n_epochs, 1)
        check_real("reg", self.reg, 0)
        if self.reg_bias is not None:
            check_real("reg_bias", self.reg_bias, 0)
        if self.learning_rate is not None:
            check_real("learning_rate", self.learning_rate, 0, low_open=True)
        check_int("batch_size", self.batch_size, 1)
        check_real("init_std", self.init_std, 0, low_open=True)
        check_choice("init", self.init, set(INITS))
        check_bool("early_stopping", self.early_stopping)
        check_int("patience", self.patience, 1)
        check_bool("clip", self.clip)
        check_bool("center", self.center)
        self._validate_run()

    def _validate_run(self):
        """Check what every model has, however it trains: threads, output, seeding."""
        if self.n_threads != -1 and not (is_int(self.n_threads) and self.n_threads >= 1):
            raise ValueError(
                f"n_threads must be an integer >= 1, or -1 for all cores, got {self.n_threads!r}"
            )
        if not isinstance(self.verbose, (bool, np.bool_)):  # verbose=True is common usage
            check_int("verbose", self.verbose, 0)
        if self.callback is not None and not callable(self.callback):
            raise ValueError(
                f"callback must be callable(epoch, logs) or None, got {self.callback!r}"
            )
        rs = self.random_state
        if not (rs is None or is_int(rs) or isinstance(rs, np.random.Generator)):
            raise ValueError(
                f"random_state must be None, an int or a numpy.random.Generator, got {rs!r}"
            )
        if is_int(rs) and rs < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {rs!r}")

    @property
    def learning_rate_(self) -> float:
        """The learning rate in use (``learning_rate`` or the optimizer's default)."""
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return self._default_lr[self.optimizer]

    @property
    def reg_bias_(self) -> float:
        return float(self.reg if self.reg_bias is None else self.reg_bias)

    # ---- fitting

    def fit(self, ratings, *, valid=None):
        """Fit the model from scratch.

        Parameters
        ----------
        ratings : pandas.DataFrame or tuple of arrays
            A frame with ``user``, ``item`` and ``rating`` columns (such as one
            from :mod:`latentfactors.datasets`), or ``(users, items, ratings)``.
            Repeated (user, item) pairs count as separate observations.
        valid : same kinds, optional
            Held-out ratings. Each epoch then reports their MSE, and with
            ``early_stopping`` training stops after ``patience`` epochs without
            improvement and restores the best epoch's parameters.

        Returns
        -------
        self

        Raises
        ------
        DivergenceError
            If the parameters become NaN or infinite. The model is then left as
            it was before this call (fitted with its earlier parameters, or not
            fitted), as it is after any other error, such as one raised by
            ``callback``. An interruption (``KeyboardInterrupt``) once an
            epoch has ended instead leaves the parameters as training left
            them, so that they can be saved; before the first epoch ends, it
            too leaves the model as it was.
        """
        self._validate()
        previous = dict(self.__dict__)
        try:
            return self._fit(ratings, valid)
        except Exception:
            self.__dict__.clear()
            self.__dict__.update(previous)
            raise
        except KeyboardInterrupt:
            history = self.__dict__.get("history_")
            if history is previous.get("history_") or not (history or {}).get("epoch"):
                self.__dict__.clear()  # no epoch of this fit ended: nothing was reached
                self.__dict__.update(previous)
            raise

    def _fit(self, ratings, valid):
        data = encode_train(ratings)
        valid_codes = _encode_valid(data, valid)
        rng = np.random.default_rng(self.random_state)
        self._threads = resolve_threads(self.n_threads)
        self.user_index_ = data.user_index
        self.item_index_ = data.item_index
        self.rating_range_ = (float(data.ratings.min()), float(data.ratings.max()))
        scale = rating_scale(self.rating_range_)
        user_mean = float(np.mean(data.ratings, dtype=np.float64)) if self.center else 0.0
        largest = float(np.max(np.abs(data.ratings)))
        if scale != 1.0:
            # Train in units of the reference span (see models/scaling.py).
            data.ratings = (data.ratings / np.float64(scale)).astype(np.float32)
            self.global_mean_ = (
                float(np.mean(data.ratings, dtype=np.float64)) if self.center else 0.0
            )
        else:
            self.global_mean_ = user_mean
        self.rating_scale_ = scale
        self._set_state(self._init_state(rng, len(data.user_index), len(data.item_index)))
        self._fitted_structure = self._structure()
        # What each user rated in training: recommendations exclude it.
        self.seen_indptr_, self.seen_items_ = csr_by_user(
            data.users, data.items, len(data.user_index), self._threads
        )
        n_train = len(data.ratings)
        # A training MSE this far above that of predicting 0 has blown up, finite or not.
        mse_zero = max(float(np.mean(np.square(data.ratings, dtype=np.float64))), 1.0)
        state = self._setup(data, rng)
        views = TrainingViews(self, scale, user_mean) if scale != 1.0 else None
        mse_limit = MSE_BLOWUP * mse_zero
        note = ""
        if largest > RATING_SCALE_NOTE:
            note = (
                f" The ratings reach {largest:.3g}: if that is not their scale, check which "
                "column holds them (a timestamp read as the rating?)."
            )
        unstable = MSE_UNSTABLE * mse_zero
        del data  # the layout may own the arrays now; drop our references

        self.history_ = {"epoch": [], "train_mse": [], "valid_mse": [], "seconds": []}
        best = (math.inf, 0, None)
        waited = 0
        self.n_epochs_ = 0
        # Whether anything reads the model's own arrays between epochs.
        reads_model = valid_codes is not None or self.callback is not None
        try:
            for epoch in range(1, self.n_epochs + 1):
                if views is not None:
                    views.training()
                start = time.perf_counter()
                sse = self._epoch(state, epoch, rng)
                seconds = time.perf_counter() - start
                if reads_model:
                    self._sync(state)
                    if views is not None:
                        views.user()
                # float(): a kernel run as plain Python (JIT disabled) returns a NumPy scalar.
                train_mse = float(sse) / n_train
                self._check_finite(epoch, train_mse, state, mse_limit, note)
                if train_mse > unstable:
                    warnings.warn(
                        f"training is unstable: the training MSE reached {train_mse:.3g} at "
                        f"epoch {epoch}, over {MSE_UNSTABLE:g} times that of predicting 0 for "
                        "every rating, so the model will predict poorly. "
                        + self._divergence_hint()
                        + note,
                        UnstableTrainingWarning,
                        stacklevel=3,
                    )
                    unstable = math.inf  # once per fit
                if views is not None:
                    train_mse *= scale * scale  # in the ratings' own units
                logs = {"train_mse": train_mse, "seconds": seconds}
                if valid_codes is not None:
                    pred = self._predict_codes(valid_codes[0], valid_codes[1])
                    logs["valid_mse"] = float(np.mean((pred - valid_codes[2]) ** 2))
                self.n_epochs_ = epoch
                self.best_epoch_ = epoch  # what the model holds now, if a callback saves it
                self.history_["epoch"].append(epoch)
                self.history_["train_mse"].append(train_mse)
                self.history_["valid_mse"].append(logs.get("valid_mse", math.nan))
                self.history_["seconds"].append(seconds)
                self._report(epoch, logs)
                if valid_codes is None:
                    continue
                if logs["valid_mse"] < best[0]:
                    snapshot = self._copy_state() if self.early_stopping else None
                    best = (logs["valid_mse"], epoch, snapshot)
                    waited = 0
                else:
                    waited += 1
                    if self.early_stopping and waited >= self.patience:
                        break
        finally:
            # However the loop ends, the model holds the parameters as training left
            # them: after an interruption mid-epoch, part-way through that epoch (as
            # when training updates the model's own arrays).
            if views is not None:
                views.training()
            self._sync(state)
            if views is not None:
                views.user()
            self.best_epoch_ = self.n_epochs_  # the final value follows when the loop ends
        # best_epoch_ is the epoch whose parameters are kept: the best one with
        # early stopping, else the last (history_ still shows the best one).
        self.best_epoch_ = self.n_epochs_
        if valid_codes is not None and self.early_stopping and best[2] is not None:
            if best[1] != self.n_epochs_:
                self._set_state(best[2])
            self.best_epoch_ = best[1]
        self._teardown(state)
        return self

    def _setup(self, data, rng):
        raise NotImplementedError

    def _unscaled(self, arrays: dict, scale: float) -> dict:
        """The state ``arrays`` learned on ratings divided by ``scale``, as new
        arrays in the ratings' own units (see :mod:`latentfactors.models.scaling`)."""
        raise NotImplementedError

    def _penalty_scale(self) -> float:
        """What ``reg`` is multiplied by in the ratings' own units (the dot-product
        fold-in uses it): vectors learned on ratings divided by ``rating_scale_``
        grow by its square root, so their penalty weighs that much more."""
        return float(getattr(self, "rating_scale_", 1.0))

    def _teardown(self, state):
        pass

    def _sync(self, state):
        """Bring the model's arrays up to date with training (for optimizers that
        train on copies of them); called whenever something reads them."""

    def _training_arrays(self, state) -> dict:
        """The arrays training updates, by state name (the model's own by default)."""
        return self._get_state()

    def _report(self, epoch, logs):
        if self.verbose:
            parts = [
                f"epoch {epoch}/{self.n_epochs}",
                f"{logs['seconds']:.2f}s",
                f"train_mse {logs['train_mse']:.4f}",
            ]
            if "valid_mse" in logs:
                parts.append(f"valid_mse {logs['valid_mse']:.4f}")
            print(" - ".join(parts), file=sys.stdout, flush=True)
        if self.callback is not None:
            self.callback(epoch, dict(logs))

    def _check_finite(self, epoch, train_mse, state, mse_limit, note):
        arrays = self._training_arrays(state)
        bad = [name for name, arr in arrays.items() if not np.isfinite(arr).all()]
        if bad or not math.isfinite(train_mse):
            what = f"parameters {bad}" if bad else "the training loss"
            raise DivergenceError(
                f"training diverged at epoch {epoch}: {what} became NaN or infinite. "
                + self._divergence_hint()
                + note
            )
        if train_mse > mse_limit:
            raise DivergenceError(
                f"training diverged at epoch {epoch}: the training MSE reached {train_mse:.3g}, "
                f"over {MSE_BLOWUP:g} times that of predicting 0 for every rating. "
                + self._divergence_hint()
                + note
            )

    def _penalty_step(self):
        """``(step, what, parameter)``: the step that the penalties ``reg`` and
        ``reg_bias`` are multiplied by in an update, or None where no such
        product can overshoot."""
        return self.learning_rate_, "the learning rate", "learning_rate"

    def _divergence_hint(self) -> str:
        """What to change: the hyperparameter that is out of scale, else the learning rate."""
        penalty = self._penalty_step()
        if penalty is not None:
            step, what, parameter = penalty
            steps = {"reg": float(self.reg), "reg_bias": self.reg_bias_}
            over = [f"{name}={value:g}" for name, value in steps.items() if step * value >= 1]
            if over:
                return (
                    f"{' and '.join(over)} times {what} ({step:g}) is 1 or more, so every "
                    f"step overshoots: use a smaller reg, or a smaller {parameter}."
                )
        dropout = getattr(self, "dropout", 0.0)
        if dropout >= 0.8:
            return (
                f"dropout={dropout:g} scales the units it keeps by {1 / (1 - dropout):.3g} in "
                "every layer: use a smaller dropout (0.5 or less), or a smaller "
                f"{self._learning_rate_hint()}."
            )
        if self.init_std > 1:
            return (
                f"init_std={self.init_std:g} starts the factors far too large: use a smaller "
                f"init_std (the default is {type(self)().init_std:g}), or a smaller "
                f"{self._learning_rate_hint()}."
            )
        return f"Use a smaller {self._learning_rate_hint()}, or a larger reg."

    @classmethod
    def _saved_hyperparams(cls, params: dict) -> dict:
        """Hyperparameters read from a model file; files from older versions may lack some."""
        return params

    def _learning_rate_hint(self) -> str:
        lr = self.learning_rate_
        return f"learning_rate (now {lr:g}), e.g. {lr / 10:g}"

    def _copy_state(self) -> dict:
        return {name: arr.copy() for name, arr in self._get_state().items()}

    # ---- state: subclasses list their learned arrays

    def _get_state(self) -> dict:
        return {name: getattr(self, name) for name in self._state_names()}

    def _set_state(self, state: dict):
        for name, arr in state.items():
            setattr(self, name, arr)

    def _state_names(self) -> list[str]:
        raise NotImplementedError

    def _init_embeddings(self, rng, n_users, n_items) -> dict:
        """Initial user and item vectors and biases, float32, as ``init`` says."""
        k, std = self.n_factors, float(self.init_std)
        if self.init == "uniform":
            half = std * math.sqrt(3.0)

            def draw(shape):
                return rng.uniform(-half, half, size=shape).astype(np.float32)

            return {
                "user_factors_": draw((n_users, k)),
                "item_factors_": draw((n_items, k)),
                "user_bias_": draw(n_users),
                "item_bias_": draw(n_items),
            }
        return {
            "user_factors_": (rng.standard_normal((n_users, k)) * std).astype(np.float32),
            "item_factors_": (rng.standard_normal((n_items, k)) * std).astype(np.float32),
            "user_bias_": np.zeros(n_users, dtype=np.float32),
            "item_bias_": np.zeros(n_items, dtype=np.float32),
        }

    # ---- prediction

    def _check_fitted(self):
        if not hasattr(self, "global_mean_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet: call fit(ratings) first"
            )
        fitted = getattr(self, "_fitted_structure", None)
        if fitted is not None and fitted != self._structure():
            changed = ", ".join(
                f"{name}={new!r} (fitted with {old!r})"
                for name, old, new in zip(self._STRUCTURE, fitted, self._structure())
                if old != new
            )
            raise ValueError(
                f"{changed}: the fitted parameters belong to the values used in fit; "
                "set them back with set_params, or fit again"
            )

    # Hyperparameters that shape the fitted arrays: changing one after fit
    # leaves the arrays meaningless until the next fit.
    _STRUCTURE: tuple[str, ...] = ("n_factors",)

    def _structure(self) -> tuple:
        def plain(value):
            return tuple(plain(v) for v in value) if isinstance(value, (list, tuple)) else value

        return tuple(plain(getattr(self, name)) for name in self._STRUCTURE)

    def _clip_range(self):
        if self.clip:
            return self.rating_range_
        return (-math.inf, math.inf)

    def predict(self, users, items=None) -> np.ndarray:
        """Predicted ratings for (user, item) pairs of raw ids.

        Parameters
        ----------
        users : array-like of raw user ids, or a pandas.DataFrame
            With a frame, its ``user`` and ``item`` columns are used.
        items : array-like of raw item ids
            Same length as ``users``; omitted when ``users`` is a frame.

        Returns
        -------
        numpy.ndarray of float64, shape (n,)
            Unknown users or items fall back to what is known: the global mean
            plus the known bias. With ``clip`` the predictions stay within the
            training rating range.
        """
        self._check_fitted()
        return self._predict_codes(*self._pair_codes(users, items))

    def _pair_codes(self, users, items):
        """The codes (``-1`` = unknown) of the pairs :meth:`predict` is given."""
        if isinstance(users, pd.DataFrame):
            if items is not None:
                raise ValueError("pass either a frame, or users and items, not both")
            u, i, _ = rating_arrays(users, need_rating=False, what="predict")
        else:
            if items is None:
                raise ValueError("predict needs items: predict(users, items) or predict(frame)")
            u, i, _ = rating_arrays(
                (id_values(users, "users"), id_values(items, "items")),
                need_rating=False,
                what="predict",
            )
        return self.user_index_.encode(u), self.item_index_.encode(i)

    def evaluate(self, ratings) -> dict:
        """``{"mse", "rmse", "mae"}`` of the predictions on held-out ratings."""
        self._check_fitted()
        u, i, r = rating_arrays(ratings, need_rating=True, what="ratings")
        if len(u) == 0:
            raise ValueError("ratings is empty: there is nothing to evaluate")
        pred = self._predict_codes(self.user_index_.encode(u), self.item_index_.encode(i))
        return error_metrics(r, pred)

    # ---- persistence

    def __getstate__(self):
        state = self.__dict__.copy()
        # A callback is a hook into the caller's program, often a lambda: not model state.
        state["callback"] = None
        state.pop("_threads", None)
        return state

    def __setstate__(self, state):
        # Pickles from older versions may lack newer hyperparameters.
        defaults = {k: v for k, v in self._saved_hyperparams({}).items() if k not in state}
        self.__dict__.update({**defaults, **state})

    def save(self, file):
        """Save the fitted model to one ``.npz`` file (a path or a binary file object).

        A path is written atomically: to a temporary file beside it, then
        renamed into place, so a crash never leaves a half-written model. A
        symbolic link is written through, to the file it names; an existing
        file keeps its mode, and a read-only one is refused
        (:class:`PermissionError`). The hyperparameters are saved too, except
        ``callback`` and a ``random_state`` that is a
        ``numpy.random.Generator``: those load as ``None`` (an integer
        ``random_state`` is kept). The format is described in
        :mod:`latentfactors.models.persistence`.
        """
        persistence.save(self, file)

    @classmethod
    def load(cls, file):
        """Load a model saved with :meth:`save` (never unpickles anything).

        Raises
        ------
        ModelFileError
            If the file is not a model file, is damaged, or holds a model of
            another class than ``cls`` (``FactorModel.load`` takes any).
        """
        return persistence.load(cls, file)

    def _restore_state(self, state: dict):
        """Check loaded arrays against the model's shapes, then install them."""
        persistence.restore_state(self, state)

    def _check_state_shapes(self):
        """Refuse loaded arrays that do not fit the ids, ``n_factors`` or float32.

        Every model has user and item factors and biases; a model with more
        arrays extends this check.
        """
        persistence.check_state_shapes(self)


def _encode_valid(data, valid):
    """``(user codes, item codes, float64 ratings)`` of held-out ratings, or None."""
    if valid is None:
        return None
    vu, vi, vr = rating_arrays(valid, need_rating=True, what="valid")
    if len(vu) == 0:
        raise ValueError("valid is empty: pass None, or at least one rating")
    return (
        data.user_index.encode(vu),
        data.item_index.encode(vi),
        np.asarray(vr, dtype=np.float64),
    )
