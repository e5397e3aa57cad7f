"""BayesianMF: a factorization machine over user and item groups, sampled by Gibbs sampling.

The model, its priors and one sweep of the sampler are described in
:mod:`latentfactors.kernels.gibbs`; this module runs the chain (one sweep per
"epoch"), keeps thinned samples and predicts with their posterior predictive
distribution.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd

from latentfactors._validation import check_bool, check_choice, check_int, check_real
from latentfactors.data.coerce import encode_train, rating_arrays
from latentfactors.errors import DivergenceError, ModelFileError
from latentfactors.kernels import gibbs
from latentfactors.kernels._config import resolve_threads, with_threads
from latentfactors.kernels.scoring import csr_by_user
from latentfactors.metrics import error_metrics
from latentfactors.models.base import FactorModel, _encode_valid
from latentfactors.models.scaling import rating_scale

# The feature groups of a rating, in the order the sampler draws them: the
# one-hot groups, then with implicit=True the items each user rated and the
# users who rated each item.
GROUPS = ("user", "item")
IMPLICIT_GROUPS = ("rated items", "raters")

# The fixed constants of the priors, in training units (ratings centred and
# divided by their span / 4.5, see models/scaling.py): vague but
# proper, as libFM's (which uses shape and rate 0.5 where these use 1).
DEFAULT_PRIOR = {
    "lam_w0": 1.0,
    "alpha_shape": 1.0,
    "alpha_rate": 1.0,
    "lam_shape": 1.0,
    "lam_rate": 1.0,
    "mu0": 0.0,
    "mu_strength": 1.0,
}

# Day numbers (days since 1970-01-01) beyond this are refused as timestamps.
MAX_DAYS = 3_652_425

# Threads pay off for a sweep only from this many ratings.
PARALLEL_MIN_RATINGS = 20_000


class BayesianMF(FactorModel):
    """Bayesian biased matrix factorisation sampled by Gibbs sampling (as libFM's MCMC).

    A rating is ``w0 + b_user + b_item + v_user . v_item + noise``. Every bias
    and vector has a Gaussian prior whose mean and precision (per group, for
    the biases and for each factor dimension) have Normal-Gamma hyperpriors;
    the noise precision has a Gamma prior. There is no learning rate and no
    regularisation to tune: the sampler draws them with the parameters.
    Predictions average the predictions of the kept samples.

    With ``implicit=True`` the model is a factorization machine with SVD++'s
    implicit feedback on both sides ("flipped", Rendle, Zhang & Koren 2019):
    each rating also holds the items its user rated and the users who rated
    its item, each set weighted ``1/sqrt(size)``, every member with a bias and
    a vector of its own, all interacting pairwise. The sets come from the
    training ratings and are sampled through relation blocks (see
    :mod:`latentfactors.kernels.gibbs`), so a sweep costs O(k · (ratings +
    total size of the sets)).

    Parameters
    ----------
    n_factors : int, default 10
        Length of each latent vector.
    n_samples : int, default 200
        Gibbs sweeps (one per entry of ``history_``).
    n_burn_in : int, optional
        Sweeps discarded before any is kept; ``None`` means ``n_samples // 40``
        (5 of 200). A short burn-in, as libFM and myFM average from nearly the
        first sweep: on the notebook's protocol it gave a median test MSE of
        0.750 against 0.760 with ``n_samples // 4``
        (``benchmarks/results/bayes-burn-in.txt``).
    max_kept : int, default 50
        At most this many samples are kept for prediction: every ``thin``-th
        sweep after the burn-in, ``thin = ceil((n_samples - n_burn_in) / max_kept)``,
        so memory stays bounded however long the chain.
    implicit : bool, default False
        Add the implicit groups described above.
    time : {None, "day"}, default None
        ``"day"`` adds the calendar day (UTC) of each rating as a group of its
        own, a bias and a vector per day interacting with everything else (as
        in "timeSVD++ flipped", Rendle, Zhang & Koren 2019). ``fit`` then
        needs a frame with a ``timestamp`` column (seconds since the epoch,
        or datetimes); ``predict`` and ``evaluate`` use the column when their
        frame has it. A day the training data did not have, or no timestamp
        (as in ``recommend`` and ``fold_in``), contributes the day group's
        sampled mean: what a new day is expected to add.
    init_std : float, default 0.01
        Standard deviation of the initial factors (biases start at 0). A small
        start, averaged over from the early sweeps on, helped on the notebook's
        protocol: 0.7135 against 0.7187 with 0.1 (implicit and day groups) and
        0.7475 against 0.7498 without them (``benchmarks/results/bayes-burn-in.txt``).
    clip : bool, default True
        Keep the predictive mean within the range of the training ratings.
    random_state : None, int or numpy.random.Generator
        Seeds the initial factors and every sweep's random streams.
    n_threads : int, default -1
        Threads for sweeps and large predictions; ``-1`` = all cores. The
        samples do not depend on it.
    verbose : int, default 0
        ``1`` prints one line per sweep.
    callback : callable, optional
        ``callback(epoch, logs)`` after each sweep, ``logs`` holding
        ``train_mse``, ``seconds`` and, with ``valid``, ``valid_mse``.

    Attributes
    ----------
    user_factors_, item_factors_ : float32 arrays, (n_users, k) and (n_items, k)
        Posterior means of the vectors (what ``recommend`` and ``similar_items`` use).
        With ``implicit``, the *effective* vectors: a user's own plus the
        weighted sum of their set's, so that a prediction is still
        ``w0 + bias_user + bias_item + user . item``.
    user_bias_, item_bias_ : float32 arrays
        Posterior means of the biases (effective ones with ``implicit``: the
        set's biases and its members' pairwise interactions included).
    global_mean_ : float
        The mean the ratings were centred on; the intercepts are in ``sample_w0_``.
    sample_w0_, sample_noise_var_ : float32 arrays, (n_kept,)
        Kept intercepts (global mean included) and noise variances ``1 / alpha``.
    sample_user_bias_, sample_item_bias_ : float32 arrays, (n_kept, n_users / n_items)
    sample_user_factors_, sample_item_factors_ : float32 arrays, (n_kept, n_users / n_items, k)
        The kept samples, in the ratings' own units (the sampler works in float64;
        samples are stored in float32 to halve their memory).
    sample_precision_ : float32 array, (n_kept, n_groups, k + 1)
        Each group's sampled prior precisions (of the bias, then of each
        factor), in the ratings' units: the regularisation the sampler learned,
        group by group (named by ``group_names_``).
    sample_user_prior_ : float32 array, (n_kept, 2, k + 1)
        The user group's prior in each kept sample: means, then precisions, of
        the bias and each factor (what ``fold_in`` needs).
    sample_implicit_item_bias_, sample_implicit_item_factors_ : float32 arrays
        With ``implicit``: (n_kept, n_items) and (n_kept, n_items, k), each
        item's bias and vector as a member of a user's set (what ``fold_in``
        needs to form a new user's set).
    history_ : dict of lists
        Per sweep: ``train_mse`` and ``valid_mse`` of the posterior predictive
        mean so far (during the burn-in, of the current sample), ``seconds``.
    n_epochs_, best_epoch_ : int
        Sweeps run (both).

    Notes
    -----
    The predictive mean is clipped to the rating range after averaging; the
    predictive standard deviation (``predict(..., return_std=True)``) is that
    of the unclipped mixture: the spread of the samples' predictions plus the
    noise variance averaged over the samples.

    ``recommend`` ranks by the posterior-mean vectors and biases, an
    approximation of the posterior mean of the score (which averages the
    samples' dot products). ``fold_in`` gives a new user, per kept sample, the
    conditional mean of their bias and vector with that sample's items held
    fixed, averaged over the samples; ``predict_for`` then scores that user
    against every kept sample's items.
    """

    def __init__(
        self,
        n_factors=10,
        *,
        n_samples=200,
        n_burn_in=None,
        max_kept=50,
        implicit=False,
        time=None,
        init_std=0.01,
        clip=True,
        random_state=None,
        n_threads=-1,
        verbose=0,
        callback=None,
    ):
        self.n_factors = n_factors
        self.n_samples = n_samples
        self.n_burn_in = n_burn_in
        self.max_kept = max_kept
        self.implicit = implicit
        self.time = time
        self.init_std = init_std
        self.clip = clip
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose
        self.callback = callback

    # State arrays that hold day numbers rather than parameters (see persistence).
    _integer_state = ("days_",)

    @property
    def n_epochs(self) -> int:
        """Sweeps to run (the epoch loop's name for ``n_samples``)."""
        return self.n_samples

    def _validate(self):
        check_int("n_factors", self.n_factors, 1, 100_000)
        check_int("n_samples", self.n_samples, 1)
        if self.n_burn_in is not None:
            check_int("n_burn_in", self.n_burn_in, 0)
            if self.n_burn_in >= self.n_samples:
                raise ValueError(
                    f"n_burn_in must be below n_samples ({self.n_samples}) so that a sample "
                    f"is kept, got {self.n_burn_in}"
                )
        check_int("max_kept", self.max_kept, 1)
        check_bool("implicit", self.implicit)
        if self.time is not None:
            check_choice("time", self.time, ("day",))
        check_real("init_std", self.init_std, 0, low_open=True)
        check_bool("clip", self.clip)
        self._validate_run()

    @property
    def group_names_(self) -> tuple:
        """The feature groups in the sampler's order (see ``sample_precision_``)."""
        return (
            *GROUPS,
            *(("day",) if self.time is not None else ()),
            *(IMPLICIT_GROUPS if self.implicit else ()),
        )

    @property
    def n_burn_in_(self) -> int:
        """The burn-in in use (``n_burn_in``, or ``n_samples // 40``)."""
        return self.n_samples // 40 if self.n_burn_in is None else int(self.n_burn_in)

    @property
    def thin_(self) -> int:
        """Every how many sweeps after the burn-in a sample is kept."""
        return math.ceil((self.n_samples - self.n_burn_in_) / self.max_kept)

    def _state_names(self):
        names = [
            "user_factors_",
            "item_factors_",
            "user_bias_",
            "item_bias_",
            "sample_w0_",
            "sample_noise_var_",
            "sample_user_bias_",
            "sample_item_bias_",
            "sample_user_factors_",
            "sample_item_factors_",
            "sample_user_prior_",
            "sample_precision_",
        ]
        if self.time is not None:
            names += ["days_", "sample_day_bias_", "sample_day_factors_", "sample_day_mean_"]
        if self.implicit:
            names += ["sample_implicit_item_bias_", "sample_implicit_item_factors_"]
        return names

    # ---- fitting: a chain of sweeps, one per epoch

    def fit(self, ratings, *, valid=None):
        """Run the chain from scratch and keep its thinned samples.

        Parameters
        ----------
        ratings : pandas.DataFrame or tuple of arrays
            A frame with ``user``, ``item`` and ``rating`` columns, or
            ``(users, items, ratings)``.
        valid : same kinds, optional
            Held-out ratings: each sweep reports the MSE of the posterior
            predictive mean so far on them (nothing stops early: every sweep
            after the burn-in adds to the posterior).

        Returns
        -------
        self

        Raises
        ------
        DivergenceError
            If the parameters become NaN or infinite; the model is then left as
            it was before this call, as after any other error. An interruption
            (``KeyboardInterrupt``) once a sweep has ended leaves the samples
            kept so far (the last sample while in the burn-in), so that the
            model predicts and can be saved.
        """
        return super().fit(ratings, valid=valid)

    def _fit(self, ratings, valid):
        data = encode_train(ratings)
        valid_codes = _encode_valid(data, valid)
        days = _frame_days(ratings, "ratings") if self.time is not None else None
        if self.time is not None and days is None:
            raise ValueError(
                "time='day' needs the ratings as a pandas.DataFrame with a timestamp column"
            )
        rng = np.random.default_rng(self.random_state)
        self._threads = resolve_threads(self.n_threads)
        self.user_index_, self.item_index_ = data.user_index, data.item_index
        n_users, n_items, k = len(data.user_index), len(data.item_index), self.n_factors
        self.rating_range_ = (float(data.ratings.min()), float(data.ratings.max()))
        self.rating_scale_ = scale = rating_scale(self.rating_range_)
        targets = np.asarray(data.ratings, dtype=np.float64)
        self.global_mean_ = float(targets.mean())
        self.seen_indptr_, self.seen_items_ = csr_by_user(
            data.users, data.items, n_users, self._threads
        )
        # Sampled in units of the reference span around the mean, so the priors
        # mean the same on any rating scale (see DEFAULT_PRIOR).
        sets = _implicit_sets(data.users, data.items, n_users, n_items) if self.implicit else ()
        rows, sizes = [data.users, data.items], [n_users, n_items]
        valid_days = None
        if days is not None:
            self.days_ = np.unique(days)
            rows.append(np.searchsorted(self.days_, days).astype(np.int32))
            sizes.append(len(self.days_))
            if valid_codes is not None:
                valid_days = self._day_codes(_frame_days(valid, "valid"), len(valid_codes[0]))
        chain = gibbs.gibbs_data(rows, sizes, (targets - self.global_mean_) / scale, sets)
        n_features = int(chain.offsets[-1])
        params = gibbs.GibbsParams(
            np.zeros(1),
            np.zeros(n_features),
            rng.standard_normal((n_features, k)) * float(self.init_std),
            np.ones(1),
            np.empty(len(targets)),
        )
        hyper = gibbs.initial_hyper(len(chain.offsets) - 1, k)
        cache = gibbs.new_cache(chain, k)
        prior = gibbs.GibbsPrior(**DEFAULT_PRIOR)
        seed = int(rng.integers(0, 2**63, dtype=np.uint64))
        del data
        parallel = self._threads > 1 and len(targets) >= PARALLEL_MIN_RATINGS
        threads = self._threads if parallel else 1
        kernels = gibbs.PARALLEL if parallel else gibbs.SERIAL
        lo, hi = self._clip_range()

        burn_in, thin = self.n_burn_in_, self.thin_
        kept = []
        train_sum = np.zeros(len(targets))
        valid_sum = np.zeros(len(valid_codes[0])) if valid_codes is not None else None
        n_averaged = 0
        self.history_ = {"epoch": [], "train_mse": [], "valid_mse": [], "seconds": []}
        self.n_epochs_ = self.best_epoch_ = 0
        current = None
        try:
            for sweep in range(1, self.n_samples + 1):
                start = time.perf_counter()
                sse = with_threads(
                    threads,
                    gibbs.gibbs_sweep,
                    chain,
                    params,
                    hyper,
                    prior,
                    seed,
                    sweep,
                    kernels,
                    cache,
                )
                seconds = time.perf_counter() - start
                if not (math.isfinite(sse) and np.isfinite(params.V).all()):
                    raise DivergenceError(
                        f"sampling diverged at sweep {sweep}: the parameters became NaN or infinite"
                    )
                sample, noise_var, user_prior, precision, extra = self._sample(
                    chain, params, cache, hyper, scale
                )
                current = (*sample, noise_var, user_prior, precision, *extra)
                if sweep > burn_in:
                    n_averaged += 1
                    if (sweep - burn_in) % thin == 0:
                        kept.append(current)
                # The running posterior predictive mean (the current sample in the burn-in).
                weight = 1 if n_averaged > 1 else 0
                fitted = self.global_mean_ + scale * (chain.y - params.e)
                train_sum = train_sum * weight + fitted
                train_pred = np.clip(train_sum / max(n_averaged, 1), lo, hi)
                logs = {
                    "train_mse": float(np.mean((train_pred - targets) ** 2)),
                    "seconds": seconds,
                }
                if valid_codes is not None:
                    mean, _ = self._posterior(valid_codes[0], valid_codes[1], sample, 1, valid_days)
                    valid_sum = valid_sum * weight + mean
                    valid_pred = np.clip(valid_sum / max(n_averaged, 1), lo, hi)
                    logs["valid_mse"] = float(np.mean((valid_pred - valid_codes[2]) ** 2))
                self.n_epochs_ = self.best_epoch_ = sweep
                for key in ("train_mse", "valid_mse", "seconds"):
                    self.history_[key].append(logs.get(key, math.nan))
                self.history_["epoch"].append(sweep)
                if self.callback is not None:
                    self._keep(kept or [current])  # the callback may predict or save
                self._report(sweep, logs)
        finally:
            # However the chain ends, the model holds what it kept (the last sample
            # while still in the burn-in); without a finished sweep, fit restores it.
            if current is not None:
                self._keep(kept or [current])
        return self

    def _sample(self, chain, params, cache, hyper, scale):
        """The current parameters in the ratings' own units: a one-sample float32
        :class:`~latentfactors.kernels.gibbs.Samples` of the effective vectors and
        biases, the noise variance, the user group's prior (means, then
        precisions, of the bias and each factor) and, with ``implicit``, the
        items' biases and vectors as members of users' sets."""
        root = math.sqrt(scale)
        bounds = [int(x) for x in chain.offsets]
        # The groups in order: users, items, days (with time), then the implicit
        # groups, the first of which holds the items as members of users' sets.
        group = [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
        users, items = group[0], group[1]
        days = group[2] if self.time is not None else slice(0, 0)
        rated = group[chain.rows.shape[0]] if self.implicit else None

        def f32(x):
            return np.asarray(x, dtype=np.float32)[None]

        sample = gibbs.Samples(
            f32(self.global_mean_ + scale * params.w0[0]),
            f32(scale * cache.beff[users]),
            f32(scale * cache.beff[items]),
            f32(root * cache.Veff[users]),
            f32(root * cache.Veff[items]),
            f32(scale * cache.beff[days]),
            f32(root * cache.Veff[days]),
            f32(self._day_mean(hyper, scale, root)),
        )
        user = GROUPS.index("user")
        prior = [
            [scale * hyper.mu_b[user], *(root * hyper.mu_v[user])],
            [hyper.lam_b[user] / scale**2, *(hyper.lam_v[user] / scale)],
        ]
        # Every group's precisions, of the bias and of each factor, in ratings' units.
        precision = np.column_stack([hyper.lam_b / scale**2, hyper.lam_v / scale])
        extra = ()
        if self.implicit:
            extra = (f32(scale * params.b[rated]), f32(root * params.V[rated]))
        return sample, f32(scale * scale / params.alpha[0]), f32(prior), f32(precision), extra

    def _day_mean(self, hyper, scale, root):
        """The day group's prior mean, bias then vector, in ratings' units: what a day
        without training ratings is expected to add (empty without the day group)."""
        if self.time is None:
            return np.zeros(0)
        day = GROUPS.index("item") + 1
        return np.concatenate([[scale * hyper.mu_b[day]], root * hyper.mu_v[day]])

    def _keep(self, kept):
        """Stack the kept samples into the model's arrays and their posterior means."""
        parts = [np.concatenate(part) for part in zip(*kept)]
        (
            self.sample_w0_,
            self.sample_user_bias_,
            self.sample_item_bias_,
            self.sample_user_factors_,
            self.sample_item_factors_,
            day_bias,
            day_factors,
            day_mean,
            self.sample_noise_var_,
            self.sample_user_prior_,
            self.sample_precision_,
        ) = parts[:11]
        if self.time is not None:
            self.sample_day_bias_, self.sample_day_factors_ = day_bias, day_factors
            self.sample_day_mean_ = day_mean
        if self.implicit:
            self.sample_implicit_item_bias_, self.sample_implicit_item_factors_ = parts[11:]
        self._set_means()

    def _set_means(self):
        for name in ("user_bias_", "item_bias_", "user_factors_", "item_factors_"):
            samples = getattr(self, "sample_" + name)
            setattr(self, name, samples.mean(axis=0, dtype=np.float64).astype(np.float32))

    # ---- prediction

    def _samples(self) -> gibbs.Samples:
        if self.time is not None:
            day_bias, day_factors = self.sample_day_bias_, self.sample_day_factors_
            day_mean = self.sample_day_mean_
        else:
            n_kept, k = len(self.sample_w0_), self.sample_user_factors_.shape[2]
            day_bias = np.zeros((n_kept, 0), dtype=np.float32)
            day_factors = np.zeros((n_kept, 0, k), dtype=np.float32)
            day_mean = np.zeros((n_kept, 0), dtype=np.float32)
        return gibbs.Samples(
            self.sample_w0_,
            self.sample_user_bias_,
            self.sample_item_bias_,
            self.sample_user_factors_,
            self.sample_item_factors_,
            day_bias,
            day_factors,
            day_mean,
        )

    def _day_codes(self, days, n):
        """Codes of day numbers in ``days_`` (``-1`` for a day not seen in training,
        and for all ``n`` pairs when ``days`` is None or the model has no day group)."""
        if days is None or self.time is None:
            return np.full(n, -1, dtype=np.int32)
        codes = np.searchsorted(self.days_, days)
        found = codes < len(self.days_)
        found[found] = self.days_[codes[found]] == days[found]
        return np.where(found, codes, -1).astype(np.int32)

    def _posterior(self, users, items, samples, n_threads, days=None):
        """Mean and variance over ``samples`` of the predictions for pairs of codes
        (``days``: day codes, or None for no day)."""
        mean = np.empty(len(users))
        var = np.empty(len(users))
        users = np.ascontiguousarray(users, dtype=np.int32)
        items = np.ascontiguousarray(items, dtype=np.int32)
        if days is None:
            days = np.full(len(users), -1, dtype=np.int32)
        args = (users, items, np.ascontiguousarray(days, dtype=np.int32), samples, mean, var)
        if n_threads > 1 and len(users) * len(samples.w0) >= PARALLEL_MIN_RATINGS:
            with_threads(n_threads, gibbs._posterior_predict_parallel, *args)
        else:
            gibbs._posterior_predict_serial(*args)
        return mean, var

    def _predict_codes(self, users, items, days=None):
        lo, hi = self._clip_range()
        threads = resolve_threads(self.n_threads)
        mean, _ = self._posterior(users, items, self._samples(), threads, days)
        return np.clip(mean, lo, hi)

    def evaluate(self, ratings) -> dict:
        """``{"mse", "rmse", "mae"}`` on held-out ratings (their days too, with ``time``)."""
        if self.time is None:
            return super().evaluate(ratings)
        self._check_fitted()
        u, i, r = rating_arrays(ratings, need_rating=True, what="ratings")
        if len(u) == 0:
            raise ValueError("ratings is empty: there is nothing to evaluate")
        days = self._day_codes(_frame_days(ratings, "ratings"), len(u))
        pred = self._predict_codes(self.user_index_.encode(u), self.item_index_.encode(i), days)
        return error_metrics(r, pred)

    def predict(self, users, items=None, *, return_std=False):
        """Posterior predictive mean (and standard deviation) for (user, item) pairs.

        Parameters
        ----------
        users, items
            As :meth:`FactorModel.predict`; with ``time``, a frame's
            ``timestamp`` column gives each pair's day.
        return_std : bool, default False
            Also return the predictive standard deviation: the spread of the
            kept samples' predictions plus their mean noise variance.

        Returns
        -------
        mean : numpy.ndarray of float64, shape (n,)
            Clipped to the training rating range with ``clip``.
        std : numpy.ndarray of float64, shape (n,)
            Only with ``return_std`` (of the unclipped predictive distribution).
        """
        self._check_fitted()
        check_bool("return_std", return_std)
        frame_days = None
        if self.time is not None and isinstance(users, pd.DataFrame):
            frame_days = _frame_days(users, "predict")
        users, items = self._pair_codes(users, items)
        days = self._day_codes(frame_days, len(users))
        if not return_std:
            return self._predict_codes(users, items, days)
        lo, hi = self._clip_range()
        threads = resolve_threads(self.n_threads)
        mean, var = self._posterior(users, items, self._samples(), threads, days)
        noise = float(np.mean(self.sample_noise_var_, dtype=np.float64))
        return np.clip(mean, lo, hi), np.sqrt(var + noise)

    # ---- recommending: hooks of RecommenderMixin (see models/recommend.py)

    def _dot_parts(self):
        P, Q = self.user_factors_, self.item_factors_
        bu, bi = self.user_bias_, self.item_bias_
        mu = float(np.mean(self.sample_w0_, dtype=np.float64))
        if self.time is not None:
            # No day is given: add the day group's expected bias and vector (posterior
            # means), which reach the score as mb + mv . p + mv . q.
            day = self.sample_day_mean_.mean(axis=0, dtype=np.float64)
            mu += float(day[0])
            bu = (bu + P.astype(np.float64) @ day[1:]).astype(np.float32)
            bi = (bi + Q.astype(np.float64) @ day[1:]).astype(np.float32)
        return P, Q, bu, bi, mu

    def _fold_in(self, item_codes, ratings):
        """The new user's bias and vector: for each kept sample, their exact conditional
        mean given that sample's items, intercept, noise and user prior (a Gaussian in
        the ``k + 1`` unknowns, solved as one block), averaged over the samples.

        With ``implicit``, the user's set is the items they rated: its sums join
        the vector and the bias the prediction uses (as in training), and the
        user's own bias and vector are solved for with them held fixed.
        """
        f64 = np.float64
        Q = self.sample_item_factors_[:, item_codes].astype(f64)  # (S, m, k)
        n_kept = Q.shape[0]
        S = np.zeros((n_kept, Q.shape[2]))
        offset = np.zeros(n_kept)  # the set's bias and own pairwise term, per sample
        if self.implicit:
            members = np.unique(item_codes)
            w = 1.0 / math.sqrt(len(members))
            A = self.sample_implicit_item_factors_[:, members].astype(f64)
            S = w * A.sum(axis=1)
            squares = w * w * np.einsum("smf,smf->s", A, A)
            offset = w * self.sample_implicit_item_bias_[:, members].astype(f64).sum(
                axis=1
            ) + 0.5 * (np.einsum("sf,sf->s", S, S) - squares)
        # The ratings come without days: each sample's expected day (its prior mean,
        # bias mb and vector mv) meets the user's vector and each item's.
        mb, mv = np.zeros(n_kept), np.zeros_like(S)
        if self.time is not None:
            mb, mv = self.sample_day_mean_[:, 0].astype(f64), self.sample_day_mean_[:, 1:]
        X = np.concatenate([np.ones(Q.shape[:2] + (1,)), Q + (S + mv)[:, None]], axis=2)
        target = (
            np.asarray(ratings, dtype=f64)[None]
            - self.sample_w0_.astype(f64)[:, None]
            - self.sample_item_bias_[:, item_codes].astype(f64)
            - (offset + mb + np.einsum("sf,sf->s", S, mv))[:, None]
            - np.einsum("smf,sf->sm", Q, S + mv)
        )
        alpha = 1.0 / self.sample_noise_var_.astype(f64)
        mean0, precision0 = (self.sample_user_prior_[:, i].astype(f64) for i in (0, 1))
        A = alpha[:, None, None] * np.einsum("smi,smj->sij", X, X)
        A[:, np.arange(X.shape[2]), np.arange(X.shape[2])] += precision0
        rhs = precision0 * mean0 + alpha[:, None] * np.einsum("smi,sm->si", X, target)
        solution = np.linalg.solve(A, rhs[..., None])[..., 0]  # (S, k + 1)
        own = solution[:, 1:]
        # The effective vector and bias, as the model's users have them.
        vector = (own + S).mean(axis=0)
        bias = (solution[:, 0] + offset + np.einsum("sf,sf->s", own, S)).mean()
        if not (np.isfinite(vector).all() and math.isfinite(bias)):
            raise FloatingPointError("the folded-in vector is not finite")
        return vector.astype(np.float32), float(bias)

    def _for_user(self, vector, bias):
        """A copy of the model whose only user, code 0, has that vector and bias in
        every kept sample (see :meth:`RecommenderMixin._for_user`)."""
        one = super()._for_user(vector, bias)
        n_kept = len(self.sample_w0_)
        one.sample_user_factors_ = np.repeat(one.user_factors_[None], n_kept, axis=0)
        one.sample_user_bias_ = np.repeat(one.user_bias_[None], n_kept, axis=0)
        return one

    # ---- persistence

    def _check_state_shapes(self):
        super()._check_state_shapes()
        n_kept = len(self.sample_w0_)
        nu, ni, k = len(self.user_index_), len(self.item_index_), self.n_factors
        expected = {
            "sample_w0_": (n_kept,),
            "sample_noise_var_": (n_kept,),
            "sample_user_bias_": (n_kept, nu),
            "sample_item_bias_": (n_kept, ni),
            "sample_user_factors_": (n_kept, nu, k),
            "sample_item_factors_": (n_kept, ni, k),
            "sample_user_prior_": (n_kept, 2, k + 1),
            "sample_precision_": (n_kept, len(self.group_names_), k + 1),
        }
        if self.implicit:
            expected["sample_implicit_item_bias_"] = (n_kept, ni)
            expected["sample_implicit_item_factors_"] = (n_kept, ni, k)
        if self.time is not None:
            days = self.days_
            if days.ndim != 1 or np.any(np.diff(days) <= 0):
                raise ModelFileError("days_ must hold increasing day numbers")
            expected["sample_day_bias_"] = (n_kept, len(days))
            expected["sample_day_factors_"] = (n_kept, len(days), k)
            expected["sample_day_mean_"] = (n_kept, k + 1)
        if n_kept == 0:
            raise ModelFileError("the model file holds no posterior samples")
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ModelFileError(
                    f"{name} has shape {getattr(self, name).shape}, expected {shape}"
                )
        if not (self.sample_noise_var_ > 0).all():
            raise ModelFileError("sample_noise_var_ holds a variance that is not positive")
        if not (self.sample_precision_ > 0).all():
            raise ModelFileError("sample_precision_ holds a precision that is not positive")
        if not (self.sample_user_prior_[:, 1] > 0).all():
            raise ModelFileError("sample_user_prior_ holds a precision that is not positive")


def _implicit_sets(users, items, n_users, n_items):
    """The implicit groups' sets from training codes: for each user the distinct
    items they rated, for each item the distinct users who rated it, each set
    weighted ``1/sqrt(size)``, as :func:`~latentfactors.kernels.gibbs.gibbs_data`
    takes them (anchored on the user and the item group)."""
    pairs = np.sort(users.astype(np.int64) * n_items + items)  # by user, then item
    pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])]  # each pair once
    pair_users, pair_items = pairs // n_items, pairs % n_items
    groups = []
    for anchor, size, owner, member in (
        (0, n_items, pair_users, pair_items),
        (1, n_users, pair_items, pair_users),
    ):
        order = np.argsort(owner, kind="stable")
        counts = np.bincount(owner, minlength=n_users if anchor == 0 else n_items)
        indptr = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        weights = 1.0 / np.sqrt(counts[owner[order]])
        groups.append((anchor, size, indptr, member[order], weights))
    return groups


def _frame_days(data, what):
    """The calendar day (UTC) of each row of a frame's ``timestamp`` column, as
    int64 day numbers since 1970-01-01, or None without such a column.

    Numbers are read as seconds since the epoch (MovieLens's timestamps);
    datetimes as they are (time-zone aware ones in UTC).
    """
    if not isinstance(data, pd.DataFrame) or "timestamp" not in data.columns:
        return None
    column = data["timestamp"]
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(column.dtype):
        if column.isna().any():
            raise ValueError(f"{what}: the timestamp column has missing values")
        return column.to_numpy("datetime64[D]").astype(np.int64)
    values = column.to_numpy()
    if not pd.api.types.is_numeric_dtype(column.dtype) or values.dtype.kind not in "iuf":
        raise ValueError(
            f"{what}: timestamps must be seconds since the epoch or datetimes, got {column.dtype}"
        )
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise ValueError(f"{what}: the timestamp column has NaN or infinite values")
    days = np.floor_divide(values, 86_400)
    if len(days) and (days.min() < -MAX_DAYS or days.max() > MAX_DAYS):
        raise ValueError(
            f"{what}: timestamps reach {values.max() if days.max() > MAX_DAYS else values.min()}, "
            "beyond +-10,000 years of seconds since 1970: are they in milliseconds?"
        )
    return days.astype(np.int64)
