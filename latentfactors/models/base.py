"""What every model shares: hyperparameters, input checks, the epoch loop, save/load.

A model subclass supplies four things:

* ``_init_state(rng, n_users, n_items)``: the initial parameter arrays;
* ``_setup(data, rng)``: whatever its optimizer needs for a fit;
* ``_epoch(ctx, epoch, rng)``: run ONE jitted epoch, return the sum of squared errors;
* ``_predict_codes(users, items)``: predictions for dense codes (``-1`` = unknown).

The epoch loop, early stopping, history, progress, divergence checks and
serialisation live here, in Python, around those calls.
"""

from __future__ import annotations

import collections.abc
import inspect
import io
import json
import math
import numbers
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from latentfactors.data.ratings import (
    IdIndex,
    as_id_array,
    check_float32_range,
    reject_rows,
)
from latentfactors.kernels._config import resolve_threads
from latentfactors.kernels.scoring import csr_by_user
from latentfactors.metrics import error_metrics
from latentfactors.models.recommend import RecommenderMixin

FORMAT_NAME = "latentfactors-model"
FORMAT_VERSION = 1
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


class DivergenceError(FloatingPointError):
    """Training blew up: NaN or infinite values, or a training MSE of runaway size.

    The message names the hyperparameter to change, most often the learning rate.
    """


class UnstableTrainingWarning(RuntimeWarning):
    """Training stayed finite but its error is far above that of predicting 0."""


class NotFittedError(ValueError, AttributeError):
    """The model is used before :meth:`fit`."""


class ModelFileError(ValueError):
    """A file is not a model saved by this library, or it is damaged."""


# ---------------------------------------------------------------- hyperparameters


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def check_int(name, value, low, high=None):
    if not _is_int(value) or value < low or (high is not None and value > high):
        upper = f" and <= {high}" if high is not None else ""
        raise ValueError(f"{name} must be an integer >= {low}{upper}, got {value!r}")


def check_real(name, value, low=None, high=None, *, low_open=False, high_open=False):
    ok = _is_real(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else (f"> {low}" if low_open else f">= {low}")
        hi = "" if high is None else (f"< {high}" if high_open else f"<= {high}")
        rng = " and ".join(p for p in (lo, hi) if p)
        raise ValueError(f"{name} must be a finite number {rng}, got {value!r}")


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")


def check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")


# ---------------------------------------------------------------- input data


@dataclass
class TrainData:
    """Encoded training ratings: int32 codes, float32 ratings, and their id maps."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    user_index: IdIndex
    item_index: IdIndex


def _columns(data, *, need_rating: bool, what: str):
    """Raw ``(users, items, ratings)`` arrays from a frame or a tuple, without copying."""
    if isinstance(data, pd.DataFrame):
        needed = ["user", "item"] + (["rating"] if need_rating else [])
        missing = [c for c in needed if c not in data.columns]
        if missing:
            raise ValueError(
                f"{what} is missing column(s) {missing}; found {list(data.columns)}. Rename "
                "them, or read the data with latentfactors.load_ratings(..., columns=...)"
            )
        users = data["user"].to_numpy()
        items = data["item"].to_numpy()
        ratings = data["rating"].to_numpy() if need_rating else None
    elif isinstance(data, (tuple, list)):
        n_expected = 3 if need_rating else 2
        reject_rows(data, ["user", "item", "rating"][:n_expected], what)
        if len(data) != n_expected:
            names = "(users, items, ratings)" if need_rating else "(users, items)"
            raise ValueError(f"{what} must be a tuple of {n_expected} arrays {names}")
        users = as_id_array(data[0])
        items = as_id_array(data[1])
        ratings = np.asarray(data[2]) if need_rating else None
    else:
        raise TypeError(
            f"{what} must be a pandas.DataFrame with user/item/rating columns or a tuple of "
            f"arrays, got {type(data).__name__}"
        )
    arrays = [users, items] + ([ratings] if need_rating else [])
    for name, arr in zip(("users", "items", "ratings"), arrays):
        if arr.ndim != 1:
            raise ValueError(f"{what}: {name} must be 1-D, got shape {arr.shape}")
    if len({len(a) for a in arrays}) != 1:
        raise ValueError(
            f"{what}: users, items{', ratings' if need_rating else ''} must have the same "
            f"length, got {[len(a) for a in arrays]}"
        )
    for name, arr in zip(("user", "item"), (users, items)):
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ValueError(f"{what}: {name} ids contain NaN or infinite values")
        if arr.dtype == object and pd.isna(arr).any():
            raise ValueError(f"{what}: {name} ids contain missing values")
    if need_rating:
        if ratings.dtype.kind not in "iuf":
            raise ValueError(
                f"{what}: ratings must be numbers, got dtype {ratings.dtype}; convert with "
                "latentfactors.load_ratings"
            )
        finite = np.isfinite(ratings)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise ValueError(
                f"{what}: {int((~finite).sum())} rating(s) are NaN or infinite, e.g. row {row}; "
                "drop or fill them first"
            )
        check_float32_range(ratings, prefix=f"{what}: ")
    return users, items, ratings


def _id_values(values, name: str) -> np.ndarray:
    """Ids given to ``predict`` as a 1-D array: one id, or a sequence of them."""
    if isinstance(values, (set, frozenset, dict)):
        kind = type(values).__name__
        raise TypeError(f"{name} must be ordered (a list or an array), not a {kind}")
    if isinstance(values, collections.abc.Iterator):  # a generator, say: read it once
        values = list(values)
    return np.atleast_1d(as_id_array(values))


def encode_train(data) -> TrainData:
    users, items, ratings = _columns(data, need_rating=True, what="ratings")
    if len(users) == 0:
        raise ValueError("ratings is empty: there is nothing to fit")
    user_index = IdIndex(users)
    item_index = IdIndex(items)
    codes = []
    for what, raw, index in (("user", users, user_index), ("item", items, item_index)):
        code = index.encode(raw)
        # Every id is in its index; the kernels would write out of bounds if not.
        if code.min() < 0:
            bad = np.asarray(raw)[code < 0][0]
            raise ValueError(f"{what} id {bad!r} does not map back to itself as an id")
        codes.append(code)
    return TrainData(
        users=codes[0],
        items=codes[1],
        ratings=np.ascontiguousarray(ratings, dtype=np.float32),
        user_index=user_index,
        item_index=item_index,
    )


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

    def set_params(self, **params):
        """Set hyperparameters by name; returns ``self``.

        The parameters are then checked as ``fit`` checks them; if one is
        invalid, none of the new values is kept and the error says which.
        """
        valid = self._param_names()
        for name in params:
            if name not in valid:
                raise ValueError(
                    f"{name!r} is not a parameter of {type(self).__name__}; valid: {valid}"
                )
        old = {name: getattr(self, name) for name in params}
        for name, value in params.items():
            setattr(self, name, value)
        try:
            self._validate()
        except (ValueError, TypeError):
            for name, value in old.items():
                setattr(self, name, value)
            raise
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
        if self.n_threads != -1 and not (_is_int(self.n_threads) and self.n_threads >= 1):
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
        if not (rs is None or _is_int(rs) or isinstance(rs, np.random.Generator)):
            raise ValueError(
                f"random_state must be None, an int or a numpy.random.Generator, got {rs!r}"
            )
        if _is_int(rs) and rs < 0:
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
        valid_codes = None
        if valid is not None:
            vu, vi, vr = _columns(valid, need_rating=True, what="valid")
            if len(vu) == 0:
                raise ValueError("valid is empty: pass None, or at least one rating")
            valid_codes = (
                data.user_index.encode(vu),
                data.item_index.encode(vi),
                np.asarray(vr, dtype=np.float64),
            )
        rng = np.random.default_rng(self.random_state)
        self._threads = resolve_threads(self.n_threads)
        self.user_index_ = data.user_index
        self.item_index_ = data.item_index
        self.global_mean_ = float(np.mean(data.ratings, dtype=np.float64)) if self.center else 0.0
        self.rating_range_ = (float(data.ratings.min()), float(data.ratings.max()))
        self._set_state(self._init_state(rng, len(data.user_index), len(data.item_index)))
        self._fitted_structure = self._structure()
        # What each user rated in training: recommendations exclude it.
        self.seen_indptr_, self.seen_items_ = csr_by_user(
            data.users, data.items, len(data.user_index), self._threads
        )
        n_train = len(data.ratings)
        # A training MSE this far above that of predicting 0 has blown up, finite or not.
        mse_zero = max(float(np.mean(np.square(data.ratings, dtype=np.float64))), 1.0)
        largest = float(np.max(np.abs(data.ratings)))
        ctx = self._setup(data, rng)
        ctx["mse_limit"] = MSE_BLOWUP * mse_zero
        if largest > RATING_SCALE_NOTE:
            ctx["note"] = (
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
                start = time.perf_counter()
                sse = self._epoch(ctx, epoch, rng)
                seconds = time.perf_counter() - start
                if reads_model:
                    self._sync(ctx)
                # float(): a kernel run as plain Python (JIT disabled) returns a NumPy scalar.
                train_mse = float(sse) / n_train
                self._check_finite(epoch, train_mse, ctx)
                if train_mse > unstable:
                    warnings.warn(
                        f"training is unstable: the training MSE reached {train_mse:.3g} at "
                        f"epoch {epoch}, over {MSE_UNSTABLE:g} times that of predicting 0 for "
                        "every rating, so the model will predict poorly. "
                        + self._divergence_hint()
                        + ctx.get("note", ""),
                        UnstableTrainingWarning,
                        stacklevel=3,
                    )
                    unstable = math.inf  # once per fit
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
            self._sync(ctx)
            self.best_epoch_ = self.n_epochs_  # the final value follows when the loop ends
        # best_epoch_ is the epoch whose parameters are kept: the best one with
        # early stopping, else the last (history_ still shows the best one).
        self.best_epoch_ = self.n_epochs_
        if valid_codes is not None and self.early_stopping and best[2] is not None:
            if best[1] != self.n_epochs_:
                self._set_state(best[2])
            self.best_epoch_ = best[1]
        self._teardown(ctx)
        return self

    def _setup(self, data, rng):
        raise NotImplementedError

    def _teardown(self, ctx):
        pass

    def _sync(self, ctx):
        """Bring the model's arrays up to date with training (for optimizers that
        train on copies of them); called whenever something reads them."""

    def _training_arrays(self, ctx) -> dict:
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

    def _check_finite(self, epoch, train_mse, ctx):
        arrays = self._training_arrays(ctx)
        bad = [name for name, arr in arrays.items() if not np.isfinite(arr).all()]
        if bad or not math.isfinite(train_mse):
            what = f"parameters {bad}" if bad else "the training loss"
            raise DivergenceError(
                f"training diverged at epoch {epoch}: {what} became NaN or infinite. "
                + self._divergence_hint()
                + ctx.get("note", "")
            )
        if train_mse > ctx.get("mse_limit", math.inf):
            raise DivergenceError(
                f"training diverged at epoch {epoch}: the training MSE reached {train_mse:.3g}, "
                f"over {MSE_BLOWUP:g} times that of predicting 0 for every rating. "
                + self._divergence_hint()
                + ctx.get("note", "")
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
        if isinstance(users, pd.DataFrame):
            if items is not None:
                raise ValueError("pass either a frame, or users and items, not both")
            u, i, _ = _columns(users, need_rating=False, what="predict")
        else:
            if items is None:
                raise ValueError("predict needs items: predict(users, items) or predict(frame)")
            u, i, _ = _columns(
                (_id_values(users, "users"), _id_values(items, "items")),
                need_rating=False,
                what="predict",
            )
        return self._predict_codes(self.user_index_.encode(u), self.item_index_.encode(i))

    def evaluate(self, ratings) -> dict:
        """``{"mse", "rmse", "mae"}`` of the predictions on held-out ratings."""
        self._check_fitted()
        u, i, r = _columns(ratings, need_rating=True, what="ratings")
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

    def _hyperparams_json(self) -> str:
        params = self.get_params()
        params["callback"] = None
        if isinstance(params.get("random_state"), np.random.Generator):
            params["random_state"] = None
        return json.dumps(params, default=_plain_number)

    def save(self, file):
        """Save the fitted model to one ``.npz`` file (a path or a binary file object).

        A path is written atomically: to a temporary file beside it, then
        renamed into place, so a crash never leaves a half-written model.
        The hyperparameters are saved too, except ``callback`` and a
        ``random_state`` that is a ``numpy.random.Generator``: those load as
        ``None`` (an integer ``random_state`` is kept).
        """
        self._check_fitted()
        arrays = {
            "format": np.array(FORMAT_NAME),
            "format_version": np.array(FORMAT_VERSION),
            "model_class": np.array(type(self).__name__),
            "hyperparams": np.array(self._hyperparams_json()),
            "history": np.array(json.dumps(self.history_)),
            "fit_info": np.array(
                json.dumps(
                    {
                        "n_epochs_": self.n_epochs_,
                        "best_epoch_": self.best_epoch_,
                    }
                )
            ),
            "user_ids": self.user_index_.to_array(),
            "item_ids": self.item_index_.to_array(),
            "global_mean": np.array(self.global_mean_),
            "rating_range": np.array(self.rating_range_),
            "seen_indptr": self.seen_indptr_,
            "seen_items": self.seen_items_,
        }
        for name, arr in self._get_state().items():
            arrays["state/" + name] = arr
        if isinstance(file, (str, os.PathLike)):
            path = os.fspath(file)
            # Through a symbolic link to the file it names, which is what gets replaced.
            target = os.path.realpath(path)
            folder = os.path.dirname(target)
            if not os.path.isdir(folder):
                raise FileNotFoundError(
                    f"cannot save to {path}: the folder {folder} does not exist; create it first"
                )
            mode = 0o666 & ~_umask()  # the mode any new file gets
            if os.path.exists(target):
                mode = os.stat(target).st_mode & 0o7777  # keep an existing file's mode
                # (as root os.access says yes to any file: the mode bits tell)
                if not os.access(target, os.W_OK) or not mode & 0o222:
                    raise PermissionError(
                        f"cannot save to {path}: the file is read-only; make it writable "
                        "or save under another name"
                    )
            try:
                fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
            except OSError as exc:
                raise type(exc)(
                    exc.errno, f"cannot save to {path}: cannot write in {folder} ({exc.strerror})"
                ) from exc
            try:
                with os.fdopen(fd, "wb") as fh:
                    np.savez(fh, **arrays)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.chmod(tmp, mode)  # mkstemp makes the file private (0600)
                os.replace(tmp, target)
            except BaseException:
                if os.path.exists(tmp):
                    os.remove(tmp)
                raise
        else:
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            file.write(buffer.getvalue())

    @classmethod
    def load(cls, file):
        """Load a model saved with :meth:`save` (never unpickles anything)."""
        from latentfactors.models import MODEL_CLASSES

        name = getattr(file, "name", file)
        try:
            with np.load(file, allow_pickle=False) as npz:
                contents = {key: npz[key] for key in npz.files}
        except FileNotFoundError:
            raise
        except Exception as exc:  # noqa: BLE001 - zip, pickle and value errors alike
            # NumPy reads a file that is not .npz or .npy as a pickle, which it
            # refuses with advice to unpickle it: not advice to pass on.
            why = "not an .npz archive" if "pickled" in str(exc) else str(exc)
            raise ModelFileError(
                f"{name} is not a readable latentfactors model file ({why})"
            ) from exc
        if str(contents.get("format", "")) != FORMAT_NAME:
            raise ModelFileError(f"{name} is not a latentfactors model file")
        try:
            version = int(contents["format_version"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{name} is damaged: no valid format_version ({exc})") from exc
        if version > FORMAT_VERSION:
            raise ModelFileError(
                f"{name} has format version {version}; this latentfactors reads up to "
                f"{FORMAT_VERSION}: upgrade the package"
            )
        if "model_class" not in contents:
            raise ModelFileError(f"{name} is damaged: it names no model class")
        kind = str(contents["model_class"])
        target = MODEL_CLASSES.get(kind)
        if target is None:
            raise ModelFileError(f"{name} holds an unknown model class {kind!r}")
        if cls is not FactorModel and not issubclass(target, cls):
            raise ModelFileError(
                f"{name} holds a {kind}, not a {cls.__name__}; use {kind}.load or "
                "latentfactors.load_model"
            )
        try:
            model = target(**target._saved_hyperparams(json.loads(str(contents["hyperparams"]))))
            model.history_ = _checked_history(json.loads(str(contents["history"])))
            _set_fit_info(model, json.loads(str(contents["fit_info"])))
            model.user_index_ = IdIndex.from_array(contents["user_ids"])
            model.item_index_ = IdIndex.from_array(contents["item_ids"])
            model.global_mean_ = float(contents["global_mean"])
            if not math.isfinite(model.global_mean_):
                raise ModelFileError(f"the global mean is {model.global_mean_}")
            low, high = (float(x) for x in np.asarray(contents["rating_range"]).ravel())
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ModelFileError(f"the rating range ({low}, {high}) is not a finite range")
            model.rating_range_ = (low, high)
            for key in ("seen_indptr", "seen_items"):
                if contents[key].dtype.kind not in "iu":
                    raise ModelFileError(f"{key} has dtype {contents[key].dtype}, not integers")
            model.seen_indptr_ = contents["seen_indptr"].astype(np.int64, copy=False)
            model.seen_items_ = contents["seen_items"].astype(np.int32, copy=False)
            indptr = model.seen_indptr_
            if (
                indptr.ndim != 1
                or len(indptr) != len(model.user_index_) + 1
                or indptr[0] != 0
                or np.any(indptr[1:] < indptr[:-1])
                or indptr[-1] != len(model.seen_items_)
                or (
                    len(model.seen_items_)
                    and (
                        model.seen_items_.min() < 0
                        or model.seen_items_.max() >= len(model.item_index_)
                    )
                )
            ):
                raise ModelFileError("the seen-items arrays do not match the id maps")
            state = {
                key[len("state/") :]: value
                for key, value in contents.items()
                if key.startswith("state/")
            }
            model._validate()  # the saved hyperparameters, as fit would check them
            model._restore_state(state)
            model._fitted_structure = model._structure()
        except Exception as exc:  # noqa: BLE001
            raise ModelFileError(f"{name} is damaged: {exc}") from exc
        return model

    def _restore_state(self, state: dict):
        """Check loaded arrays against the model's shapes, then install them."""
        expected = set(self._state_names())
        if set(state) != expected:
            raise ModelFileError(f"expected arrays {sorted(expected)}, found {sorted(state)}")
        self._set_state(state)
        self._check_state_shapes()

    def _check_state_shapes(self):
        """Refuse loaded arrays that do not fit the ids, ``n_factors`` or float32.

        Every model has user and item factors and biases; a model with more
        arrays extends this check.
        """
        nu, ni = len(self.user_index_), len(self.item_index_)
        P, Q = self.user_factors_, self.item_factors_
        if P.ndim != 2 or Q.ndim != 2 or P.shape[1] != Q.shape[1]:
            raise ModelFileError(f"factor arrays have shapes {P.shape} and {Q.shape}")
        for name in ("user_bias_", "item_bias_"):
            if np.ndim(getattr(self, name)) != 1:
                raise ModelFileError(f"{name} has shape {np.shape(getattr(self, name))}, not 1-D")
        if P.shape[0] != nu or len(self.user_bias_) != nu:
            raise ModelFileError(f"user arrays do not match the {nu} user ids")
        if Q.shape[0] != ni or len(self.item_bias_) != ni:
            raise ModelFileError(f"item arrays do not match the {ni} item ids")
        if P.shape[1] != self.n_factors:
            raise ModelFileError(f"factors have {P.shape[1]} columns, n_factors={self.n_factors}")
        for name, arr in self._get_state().items():
            if arr.dtype != np.float32:
                raise ModelFileError(f"{name} has dtype {arr.dtype}, expected float32")
            if not np.isfinite(arr).all():
                raise ModelFileError(f"{name} holds NaN or infinite values")


HISTORY_KEYS = ("epoch", "train_mse", "valid_mse", "seconds")


def _checked_history(history) -> dict:
    """A saved ``history_``: the four lists of numbers, of one length."""
    if not isinstance(history, dict) or set(history) != set(HISTORY_KEYS):
        raise ModelFileError(f"history must hold exactly {list(HISTORY_KEYS)}")
    lengths = set()
    for key in HISTORY_KEYS:
        values = history[key]
        if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            raise ModelFileError(f"history[{key!r}] is not a list of numbers")
        lengths.add(len(values))
    if len(lengths) > 1:
        raise ModelFileError(f"the history's lists differ in length: {sorted(lengths)}")
    return history


def _set_fit_info(model, info) -> None:
    """Install a model file's ``fit_info``: exactly the epoch counts that ``save`` writes."""
    keys = {"n_epochs_", "best_epoch_"}
    if not isinstance(info, dict) or set(info) != keys:
        raise ModelFileError(f"fit_info must hold exactly {sorted(keys)}, found {info!r}")
    n, best = info["n_epochs_"], info["best_epoch_"]
    if not (_is_int(n) and _is_int(best) and 0 <= best <= n):
        raise ModelFileError(f"fit_info has epochs n_epochs_={n!r}, best_epoch_={best!r}")
    model.n_epochs_, model.best_epoch_ = int(n), int(best)


def _plain_number(value):
    """JSON for NumPy numbers among the hyperparameters (``n_factors=np.int64(8)``)."""
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    raise TypeError(f"{value!r} ({type(value).__name__}) cannot be saved as a hyperparameter")


def _umask() -> int:
    """The process's file-creation mask (read without changing it where Linux allows)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load_model(file) -> FactorModel:
    """Load any model saved by this library, whatever its class."""
    return FactorModel.load(file)
