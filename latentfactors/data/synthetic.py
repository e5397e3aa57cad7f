"""Synthetic ratings from a planted biased matrix-factorization model.

:func:`make_synthetic_ratings` draws a known model (global mean, user and item
biases, user and item factors), samples distinct (user, item) pairs with
skewed user activity and power-law item popularity, and rates them with
Gaussian noise, rounding and clipping like a star scale. It returns the
canonical ratings frame and a :class:`SyntheticTruth` that knows the planted
model, the best MSE any model can reach on fresh ratings (``noise_floor``),
and can draw fresh ratings for held-out evaluation.

The generator is linear in the number of ratings and memory-conscious: 20M
ratings take seconds and 100M fit comfortably in 24 GiB.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numba
import numpy as np
import pandas as pd

from latentfactors._numba_setup import CACHE
from latentfactors._validation import check_bool, check_int, is_int, is_real

__all__ = ["SyntheticTruth", "make_synthetic_ratings"]

_CHUNK = 1 << 22  # rows per chunk when rating or drawing
_SHUFFLE_BUCKET = 1 << 16  # rows per bucket when shuffling (about the L2 cache) ...
_MAX_BUCKETS = 512  # ... but few enough buckets to keep scattering TLB-friendly
_USER_ACTIVITY_SIGMA = 0.75  # log-normal spread of user activity ("mild" skew)
_DENSE_MAX_PAIRS = 1 << 25  # all-pairs weighted sampling up to this many pairs
_DENSE_SHARE = 0.25  # ... when at least this share of all pairs is wanted
_MAX_SPARSE_DENSITY = 0.5  # larger matrices can be filled up to this share
_FLOOR_PAIRS = 200_000  # pairs used to estimate the noise floor
_T_START = 946_684_800  # 2000-01-01 UTC
_T_END = 1_577_836_800  # 2020-01-01 UTC
_DAY = 86_400
_MEAN_SPAN = 2 * 365 * _DAY  # mean length of a user's active period


# --------------------------------------------------------------------------- kernels


@numba.njit(cache=CACHE, nogil=True)
def _alias_table(p):  # pragma: no cover - compiled
    """Walker/Vose alias table for drawing from the discrete distribution ``p``."""
    n = p.shape[0]
    scaled = p * (n / p.sum())
    prob = np.ones(n)
    alias = np.arange(n)
    small = np.empty(n, dtype=np.int64)
    large = np.empty(n, dtype=np.int64)
    ns = 0
    nl = 0
    for j in range(n):
        if scaled[j] < 1.0:
            small[ns] = j
            ns += 1
        else:
            large[nl] = j
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        s = small[ns]
        g = large[nl - 1]
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        if scaled[g] < 1.0:
            nl -= 1
            small[ns] = g
            ns += 1
    return prob, alias


@numba.njit(cache=CACHE, nogil=True)
def _rate(users, items, mean, bu, bi, P, Q, z, noise, lo, hi, step, clip, out):  # pragma: no cover
    """``out = transform(mean + bu[u] + bi[i] + P[u] . Q[i] + noise * z)`` row by row.

    ``z`` may be empty (no noise); ``step > 0`` rounds to the grid
    ``lo + k * step``; ``clip`` clips to ``[lo, hi]``.
    """
    rank = P.shape[1]
    noisy = z.shape[0] > 0
    for j in range(users.shape[0]):
        u = users[j]
        i = items[j]
        s = mean + bu[u] + bi[i]
        for f in range(rank):
            s += P[u, f] * Q[i, f]
        if noisy:
            s += noise * z[j]
        if step > 0:
            s = lo + step * np.floor((s - lo) / step + 0.5)
        if clip:
            s = min(max(s, lo), hi)
        out[j] = s


@numba.njit(cache=CACHE, nogil=True)
def _moments(mu, noise, lo, hi, step, mean, var):  # pragma: no cover - compiled
    """Mean and variance of the observed rating ``transform(mu + noise * N(0, 1))``.

    With ``step > 0`` the rating is rounded to ``lo + k * step`` then clipped
    to ``[lo, hi]``; otherwise only clipped.
    """
    sq2 = math.sqrt(2.0)
    inv_sqrt_2pi = 1.0 / math.sqrt(2.0 * math.pi)
    n_steps = int(round((hi - lo) / step)) if step > 0 else 0
    for j in range(mu.shape[0]):
        m = mu[j]
        if noise == 0.0:
            x = m
            if step > 0:
                x = lo + step * np.floor((x - lo) / step + 0.5)
            mean[j] = min(max(x, lo), hi)
            var[j] = 0.0
        elif step > 0:
            # rating = lo + step * J, J = number of thresholds t_k = lo + (k - 1/2) step
            # (k = 1..K) that the noisy score reaches: E[J] = sum S_k, E[J^2] = sum (2k-1) S_k.
            k1 = int(np.floor((m - 12.0 * noise - lo) / step + 0.5))
            k1 = max(0, min(n_steps, k1))  # thresholds surely passed: S_k = 1
            k2 = int(np.ceil((m + 12.0 * noise - lo) / step + 0.5))
            k2 = max(k1, min(n_steps, k2))  # beyond k2, S_k = 0
            ej = float(k1)
            ej2 = float(k1) * k1
            for k in range(k1 + 1, k2 + 1):
                t = lo + (k - 0.5) * step
                sk = 0.5 * math.erfc((t - m) / (noise * sq2))
                ej += sk
                ej2 += (2 * k - 1) * sk
            mean[j] = lo + step * ej
            var[j] = max(step * step * (ej2 - ej * ej), 0.0)
        else:
            a = (lo - m) / noise
            b = (hi - m) / noise
            fa = 0.5 * math.erfc(-a / sq2)  # P(X < lo)
            gb = 0.5 * math.erfc(b / sq2)  # P(X > hi)
            mid = 1.0 - fa - gb
            pa = inv_sqrt_2pi * math.exp(-0.5 * a * a)
            pb = inv_sqrt_2pi * math.exp(-0.5 * b * b)
            e1 = lo * fa + hi * gb + m * mid + noise * (pa - pb)
            e2 = (
                lo * lo * fa
                + hi * hi * gb
                + m * m * mid
                + 2.0 * m * noise * (pa - pb)
                + noise * noise * (mid + a * pa - b * pb)
            )
            mean[j] = e1
            var[j] = max(e2 - e1 * e1, 0.0)


# --------------------------------------------------------------------------- sampling


@numba.njit(cache=CACHE, nogil=True)
def _draw_keys(first_user, counts, i_prob, i_alias, r, n_items, out):  # pragma: no cover
    """``counts[k]`` pairs of user ``first_user + k`` with items drawn from an alias
    table, as keys ``user * n_items + item``; ``r`` holds one uniform per pair."""
    ni = i_prob.shape[0]
    j = 0
    for k in range(counts.shape[0]):
        base = (first_user + k) * n_items
        for _ in range(counts[k]):
            y = r[j] * ni
            i = min(int(y), ni - 1)
            if y - i >= i_prob[i]:
                i = i_alias[i]
            out[j] = base + i
            j += 1


@numba.njit(cache=CACHE, nogil=True)
def _select_sorted(keys, n, r):  # pragma: no cover - compiled
    """Exactly ``n`` of ``keys``, chosen uniformly, in their order (selection sampling)."""
    total = keys.shape[0]
    out = np.empty(n, dtype=keys.dtype)
    got = 0
    for t in range(total):
        if (total - t) * r[t] < n - got:
            out[got] = keys[t]
            got += 1
            if got == n:
                break
    return out


@numba.njit(cache=CACHE, nogil=True)
def _split_keys(keys, n_items, users, items):  # pragma: no cover - compiled
    for j in range(keys.shape[0]):
        u = keys[j] // n_items
        users[j] = u
        items[j] = keys[j] - u * n_items


@numba.njit(cache=CACHE, nogil=True)
def _shuffle_rows(
    bucket, n_buckets, r, users, items, rating, ts, o_users, o_items, o_rating, o_ts
):  # pragma: no cover - compiled
    """Uniformly random row order, cache-friendly: scatter rows to random buckets, then
    Fisher-Yates within each bucket. ``ts`` may be empty (no timestamps)."""
    n = users.shape[0]
    has_ts = ts.shape[0] > 0
    starts = np.zeros(n_buckets + 1, dtype=np.int64)
    for j in range(n):
        starts[bucket[j] + 1] += 1
    for b in range(n_buckets):
        starts[b + 1] += starts[b]
    fill = starts[:-1].copy()
    for j in range(n):
        b = bucket[j]
        p = fill[b]
        fill[b] = p + 1
        o_users[p] = users[j]
        o_items[p] = items[j]
        o_rating[p] = rating[j]
        if has_ts:
            o_ts[p] = ts[j]
    for b in range(n_buckets):
        s = starts[b]
        for k in range(starts[b + 1] - 1, s, -1):
            m = min(s + int(r[k] * (k - s + 1)), k)
            o_users[k], o_users[m] = o_users[m], o_users[k]
            o_items[k], o_items[m] = o_items[m], o_items[k]
            o_rating[k], o_rating[m] = o_rating[m], o_rating[k]
            if has_ts:
                o_ts[k], o_ts[m] = o_ts[m], o_ts[k]


def _draw_pairs(rng, pu, item_table, m: int) -> np.ndarray:
    """``m`` i.i.d. pairs from ``pu x item_table`` as int64 keys, sorted by user.

    The users' counts are drawn at once (multinomial), which gives the same
    distribution as ``m`` independent pair draws.
    """
    counts = rng.multinomial(m, pu)
    ends = np.cumsum(counts)
    cuts = np.searchsorted(ends, np.arange(_CHUNK, m, _CHUNK))
    bounds = np.unique(np.concatenate(([0], cuts, [len(counts)])))
    out = np.empty(m, dtype=np.int64)
    n_items = len(item_table[0])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        s = ends[a - 1] if a else 0
        e = ends[b - 1]
        _draw_keys(
            a, counts[a:b], item_table[0], item_table[1], rng.random(e - s), n_items, out[s:e]
        )
    return out


def _unique_sorted(a: np.ndarray) -> np.ndarray:
    if len(a) < 2:
        return a
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def _sample_pairs_dense(rng, pu, pi, n) -> np.ndarray:
    """Weighted sampling without replacement over all pairs (Efraimidis-Spirakis)."""
    total = len(pu) * len(pi)
    if n == total:
        return np.arange(total, dtype=np.int64)
    key = rng.standard_exponential(total)
    key /= np.outer(pu, pi).ravel()
    idx = np.argpartition(key, n - 1)[:n].astype(np.int64)
    idx.sort()
    return idx


def _sample_pairs_sparse(rng, pu, pi, n) -> np.ndarray:
    """Draw pairs i.i.d. from ``pu x pi``, drop repeats, top up until ``n`` distinct.

    When repeats dominate (saturated popular users/items), the proposal is
    mixed with the uniform distribution so that the loop always ends.
    """
    n_users, n_items = len(pu), len(pi)
    alpha = 0.0
    prop_u, table_i = pu, _alias_table(pi)
    keys = np.empty(0, dtype=np.int64)
    rate = 1.0  # expected share of new distinct pairs per draw
    for _ in range(1000):
        need = n - len(keys)
        if need <= 0:
            break
        m = int(need / rate * (1.08 if len(keys) == 0 else 1.25)) + 64
        new = _draw_pairs(rng, prop_u, table_i, m)
        new.sort()
        new = _unique_sorted(new)
        if len(keys):
            pos = np.searchsorted(keys, new)
            fresh = keys[np.minimum(pos, len(keys) - 1)] != new
            keys = np.insert(keys, pos[fresh], new[fresh])
            got = int(fresh.sum())
        else:
            keys = new
            got = len(new)
        rate = max(got / m, 1e-3)
        if rate < 0.25 and alpha < 1.0 and len(keys) < n:
            alpha = min(1.0, 2.0 * alpha + 0.25)
            prop_u = (1.0 - alpha) * pu + alpha / n_users
            table_i = _alias_table((1.0 - alpha) * pi + alpha / n_items)
            rate = 0.5
    else:  # pragma: no cover - the uniform proposal always makes progress
        raise RuntimeError("could not draw enough distinct (user, item) pairs")
    if len(keys) > n:
        keys = _select_sorted(keys, n, rng.random(len(keys)))
    return keys


def _sample_pairs(rng, pu, pi, n) -> np.ndarray:
    """``n`` distinct pairs as sorted int64 keys ``user * n_items + item``."""
    total = len(pu) * len(pi)
    if total <= _DENSE_MAX_PAIRS and n > _DENSE_SHARE * total:
        return _sample_pairs_dense(rng, pu, pi, n)
    return _sample_pairs_sparse(rng, pu, pi, n)


# --------------------------------------------------------------------------- validation


def _positive_int(value, name: str, *, limit=None) -> int:
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if limit is not None and value > limit:
        raise ValueError(f"{name}={value:,} is too large (at most {limit:,})")
    return int(value)


def _real(value, name: str, *, low=None) -> float:
    if not is_real(value) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return float(value)


def _check_n_ratings(n, n_users, n_items, name="n_ratings") -> int:
    n = _positive_int(n, name)
    total = n_users * n_items
    if n > total:
        raise ValueError(
            f"{name}={n:,} is more than the {n_users:,} x {n_items:,} = {total:,} distinct "
            "(user, item) pairs: every pair is rated at most once"
        )
    if total > _DENSE_MAX_PAIRS and n > _MAX_SPARSE_DENSITY * total:
        raise ValueError(
            f"{name}={n:,} is more than half of the {total:,} (user, item) pairs; a matrix "
            f"with more than {_DENSE_MAX_PAIRS:,} pairs can be filled at most half way"
        )
    return n


def _check_pair(value, name: str) -> tuple[float, float]:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    return _real(lo, f"{name}[0]"), _real(hi, f"{name}[1]")


# --------------------------------------------------------------------------- truth


@dataclass(frozen=True, eq=False)
class SyntheticTruth:
    """The planted model behind :func:`make_synthetic_ratings`.

    A rating of user ``u`` on item ``i`` is
    ``transform(global_mean + user_bias[u] + item_bias[i] + user_factors[u] @
    item_factors[i] + noise * N(0, 1))``, where ``transform`` rounds to the
    grid ``scale[0] + k * step`` (unless ``step`` is None) and clips to
    ``scale``.

    Attributes
    ----------
    global_mean : float
    user_bias, item_bias : numpy.ndarray of float64, shapes (n_users,), (n_items,)
    user_factors, item_factors : numpy.ndarray of float64, shapes (n_users, rank), (n_items, rank)
    noise : float
        Standard deviation of the Gaussian noise before rounding and clipping.
    scale : tuple of float
        ``(low, high)`` rating range.
    step : float or None
        Rounding step (None: ratings are not rounded).
    noise_floor : float
        The smallest expected squared error any predictor can reach on fresh
        ratings: the MSE of the Bayes-optimal prediction
        ``predict(u, i, kind="mean")`` (the conditional mean of the rounded,
        clipped rating), i.e. the average conditional variance of a rating.
        It is computed exactly per pair and averaged over 200,000 pairs drawn
        i.i.d. like the data's pairs (before repeated pairs are dropped).
    user_weights, item_weights : numpy.ndarray of float64
        Probabilities with which users (activity) and items (popularity) are
        drawn for a rating.
    time_window : numpy.ndarray of int64, shape (n_users, 2), or None
        Each user's active period as (start, length) in seconds; timestamps
        are uniform within it. None when the data has no timestamps.
    """

    global_mean: float
    user_bias: np.ndarray
    item_bias: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    noise: float
    scale: tuple[float, float]
    step: float | None
    noise_floor: float
    user_weights: np.ndarray = field(repr=False)
    item_weights: np.ndarray = field(repr=False)
    time_window: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        for name in (
            "user_bias",
            "item_bias",
            "user_factors",
            "item_factors",
            "user_weights",
            "item_weights",
            "time_window",
        ):
            value = getattr(self, name)
            if isinstance(value, np.ndarray):
                value.setflags(write=False)

    def __repr__(self) -> str:
        return (
            f"SyntheticTruth(n_users={self.n_users:,}, n_items={self.n_items:,}, "
            f"rank={self.rank}, global_mean={self.global_mean:g}, noise={self.noise:g}, "
            f"scale={self.scale}, step={self.step}, noise_floor={self.noise_floor:.4f})"
        )

    @property
    def n_users(self) -> int:
        return self.user_factors.shape[0]

    @property
    def n_items(self) -> int:
        return self.item_factors.shape[0]

    @property
    def rank(self) -> int:
        return self.user_factors.shape[1]

    def _codes(self, values, n: int, name: str) -> np.ndarray:
        codes = np.asarray(values)
        if codes.ndim == 0:
            codes = codes.reshape(1)
        if codes.dtype.kind not in "iu":
            if codes.dtype.kind == "f" and np.all(codes == np.round(codes)):
                codes = codes.astype(np.int64)
            else:
                raise ValueError(f"{name} must be integer ids 0..{n - 1}, got dtype {codes.dtype}")
        if codes.size and (codes.min() < 0 or codes.max() >= n):
            raise ValueError(f"{name} ids must be in 0..{n - 1}")
        return codes.astype(np.int64, copy=False).ravel()

    def _scores(self, users, items, *, z=None, transform=False, out=None) -> np.ndarray:
        if out is None:
            out = np.empty(len(users), dtype=np.float64)
        if z is None:
            z = np.empty(0, dtype=np.float32)
        step = self.step if (transform and self.step is not None) else 0.0
        lo, hi = self.scale
        _rate(
            users,
            items,
            float(self.global_mean),
            self.user_bias,
            self.item_bias,
            self.user_factors,
            self.item_factors,
            z,
            float(self.noise),
            lo,
            hi,
            step,
            bool(transform),
            out,
        )
        return out

    def _moments(self, users, items) -> tuple[np.ndarray, np.ndarray]:
        mu = self._scores(users, items)
        mean = np.empty_like(mu)
        var = np.empty_like(mu)
        lo, hi = self.scale
        _moments(mu, float(self.noise), lo, hi, float(self.step or 0.0), mean, var)
        return mean, var

    def predict(self, users, items, *, kind="mean") -> np.ndarray:
        """What the planted model predicts for (user, item) pairs.

        Parameters
        ----------
        users, items : array-like of int, shape (n,)
            Ids ``0..n_users-1`` and ``0..n_items-1``.
        kind : {"mean", "clipped", "raw"}
            ``"mean"`` (default): the expected observed rating, i.e. the mean
            of the rounded and clipped noisy rating -- the Bayes-optimal
            prediction, whose MSE on fresh ratings is :attr:`noise_floor`.
            ``"clipped"``: the noiseless score clipped to ``scale`` (not
            rounded). ``"raw"``: the noiseless score
            ``global_mean + bu + bi + P[u] @ Q[i]``.

        Returns
        -------
        numpy.ndarray of float64, shape (n,)
        """
        if kind not in ("mean", "clipped", "raw"):
            raise ValueError(f"kind must be 'mean', 'clipped' or 'raw', got {kind!r}")
        u = self._codes(users, self.n_users, "users")
        i = self._codes(items, self.n_items, "items")
        if len(u) != len(i):
            raise ValueError(f"users and items differ in length: {len(u)} != {len(i)}")
        if kind == "raw":
            return self._scores(u, i)
        if kind == "clipped":
            lo, hi = self.scale
            return np.clip(self._scores(u, i), lo, hi)
        out = np.empty(len(u), dtype=np.float64)
        for s in range(0, len(u), _CHUNK):
            out[s : s + _CHUNK] = self._moments(u[s : s + _CHUNK], i[s : s + _CHUNK])[0]
        return out

    def sample(self, n, random_state=None) -> pd.DataFrame:
        """Fresh ratings from the same generator, e.g. for held-out evaluation.

        Parameters
        ----------
        n : int
            Number of ratings, on distinct (user, item) pairs (pairs may repeat
            those of the training data; the noise is fresh).
        random_state : None, int or numpy.random.Generator

        Returns
        -------
        pandas.DataFrame
            The canonical frame: ``user``, ``item`` (int64 ids), ``rating``
            (float32) and ``timestamp`` (int64) when the truth has timestamps.
            Rows are in random order.
        """
        n = _check_n_ratings(n, self.n_users, self.n_items, name="n")
        rng = np.random.default_rng(random_state)
        keys = _sample_pairs(rng, self.user_weights, self.item_weights, n)
        users = np.empty(n, dtype=np.int64)
        items = np.empty(n, dtype=np.int64)
        _split_keys(keys, self.n_items, users, items)
        del keys
        # Rate in (user, item) order, which is cache-friendly, then shuffle the rows.
        rating = np.empty(n, dtype=np.float32)
        for s in range(0, n, _CHUNK):
            e = min(n, s + _CHUNK)
            z = rng.standard_normal(e - s, dtype=np.float32) if self.noise > 0 else None
            self._scores(users[s:e], items[s:e], z=z, transform=True, out=rating[s:e])
        ts = np.empty(0, dtype=np.int64)
        if self.time_window is not None:
            ts = np.empty(n, dtype=np.int64)
            start, length = self.time_window[:, 0], self.time_window[:, 1]
            for s in range(0, n, _CHUNK):
                e = min(n, s + _CHUNK)
                u = users[s:e]
                ts[s:e] = start[u] + (rng.random(e - s) * length[u]).astype(np.int64)
        n_buckets = int(min(max(1, n // _SHUFFLE_BUCKET), _MAX_BUCKETS))
        bucket = rng.integers(0, n_buckets, n, dtype=np.int32)
        columns = {
            "user": np.empty_like(users),
            "item": np.empty_like(items),
            "rating": np.empty_like(rating),
        }
        o_ts = np.empty_like(ts)
        _shuffle_rows(
            bucket,
            n_buckets,
            rng.random(n),
            users,
            items,
            rating,
            ts,
            columns["user"],
            columns["item"],
            columns["rating"],
            o_ts,
        )
        if self.time_window is not None:
            columns["timestamp"] = o_ts
        return pd.DataFrame(columns, copy=False)


# --------------------------------------------------------------------------- generator


def make_synthetic_ratings(
    n_users,
    n_items,
    n_ratings,
    *,
    rank=8,
    noise=0.5,
    factor_std=None,
    bias_std=(0.35, 0.5),
    global_mean=3.5,
    popularity=1.0,
    scale=(0.5, 5.0),
    step=0.5,
    timestamps=False,
    random_state=None,
) -> tuple[pd.DataFrame, SyntheticTruth]:
    """Ratings from a planted biased MF model, with a known best achievable error.

    Each rating is ``global_mean + bu[u] + bi[i] + P[u] @ Q[i] + N(0, noise**2)``,
    rounded to the grid ``scale[0] + k * step`` and clipped to ``scale``.

    Parameters
    ----------
    n_users, n_items : int
        Ids are ``0..n_users-1`` and ``0..n_items-1``. Users or items that
        draw no rating are simply absent from the frame.
    n_ratings : int
        Number of ratings, each on a distinct (user, item) pair: at most
        ``n_users * n_items``, and at most half of that for matrices with
        more than 2**25 pairs.
    rank : int
        Number of latent factors.
    noise : float
        Standard deviation of the Gaussian noise (before rounding/clipping).
    factor_std : float, optional
        Standard deviation of every factor entry. By default
        ``(0.25 / rank) ** 0.25``, so that ``P[u] @ Q[i]`` (variance
        ``rank * factor_std**4``) has standard deviation 0.5.
    bias_std : float or (float, float)
        Standard deviations of the user and item biases.
    global_mean : float
    popularity : float
        Power-law exponent of item popularity: the item of popularity rank
        ``r`` (1-based) is drawn with weight ``r ** -popularity``; 0 draws
        items uniformly. Popularity ranks are assigned to item ids at random.
        User activity has a mild log-normal skew (sigma 0.75).
    scale : (float, float)
        ``(low, high)``: ratings are clipped to this range.
    step : float or None
        Ratings are rounded to ``low + k * step``; ``high - low`` must be a
        multiple of ``step``. None keeps continuous ratings.
    timestamps : bool
        Add a ``timestamp`` column (int64 seconds): each user is active during
        a random period within 2000-2019 and rates uniformly within it.
        Timestamps carry no signal about the ratings.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    ratings : pandas.DataFrame
        The canonical frame: ``user``, ``item`` (int64), ``rating``
        (float32), and ``timestamp`` (int64) if requested, in random row order.
    truth : SyntheticTruth
        The planted model, its ``noise_floor``, and ``predict`` / ``sample``.

    Raises
    ------
    ValueError
        On non-positive sizes, too many ratings for distinct pairs, ``rank < 1``,
        negative ``noise``/``factor_std``/``bias_std``/``popularity``, or an
        invalid ``scale``/``step``.

    Notes
    -----
    Pairs are drawn i.i.d. (users by activity, items by popularity) and
    repeats are dropped and topped up, so very popular items may saturate
    (be rated by every user). When a quarter or more of a small matrix
    (<= 2**25 pairs) is wanted, pairs are drawn by exact weighted sampling
    without replacement instead.
    """
    limit = np.iinfo(np.int32).max - 1
    n_users = _positive_int(n_users, "n_users", limit=limit)
    n_items = _positive_int(n_items, "n_items", limit=limit)
    n_ratings = _check_n_ratings(n_ratings, n_users, n_items)
    rank = check_int("rank", rank, 1)
    noise = _real(noise, "noise", low=0.0)
    if factor_std is None:
        factor_std = (0.25 / rank) ** 0.25
    factor_std = _real(factor_std, "factor_std", low=0.0)
    if is_real(bias_std):
        bias_std = (bias_std, bias_std)
    bias_u, bias_i = _check_pair(bias_std, "bias_std")
    if bias_u < 0 or bias_i < 0:
        raise ValueError(f"bias_std must be >= 0, got {bias_std!r}")
    global_mean = _real(global_mean, "global_mean")
    popularity = _real(popularity, "popularity", low=0.0)
    lo, hi = _check_pair(scale, "scale")
    if not lo < hi:
        raise ValueError(f"scale must be (low, high) with low < high, got {scale!r}")
    if step is not None:
        step = _real(step, "step")
        if step <= 0:
            raise ValueError(f"step must be positive (or None for no rounding), got {step!r}")
        width = (hi - lo) / step
        if abs(width - round(width)) > 1e-9 * max(1.0, width):
            raise ValueError(
                f"scale {scale!r} spans {hi - lo:g}, which is not a multiple of step={step:g}"
            )
    check_bool("timestamps", timestamps)

    rng = np.random.default_rng(random_state)
    user_bias = rng.normal(0.0, bias_u, n_users)
    item_bias = rng.normal(0.0, bias_i, n_items)
    user_factors = rng.normal(0.0, factor_std, (n_users, rank))
    item_factors = rng.normal(0.0, factor_std, (n_items, rank))
    activity = rng.lognormal(0.0, _USER_ACTIVITY_SIGMA, n_users)
    user_weights = activity / activity.sum()
    ranks = rng.permutation(n_items) + 1.0
    weights = ranks**-popularity
    item_weights = weights / weights.sum()
    time_window = None
    if timestamps:
        start = rng.integers(_T_START, _T_END - _DAY, n_users)
        length = _DAY + rng.exponential(_MEAN_SPAN, n_users).astype(np.int64)
        length = np.minimum(length, _T_END - start)
        time_window = np.column_stack([start, length]).astype(np.int64)

    truth = SyntheticTruth(
        global_mean=global_mean,
        user_bias=user_bias,
        item_bias=item_bias,
        user_factors=user_factors,
        item_factors=item_factors,
        noise=noise,
        scale=(lo, hi),
        step=step,
        noise_floor=float("nan"),
        user_weights=user_weights,
        item_weights=item_weights,
        time_window=time_window,
    )
    keys = _draw_pairs(rng, user_weights, _alias_table(item_weights), _FLOOR_PAIRS)
    fu = np.empty(_FLOOR_PAIRS, dtype=np.int64)
    fi = np.empty(_FLOOR_PAIRS, dtype=np.int64)
    _split_keys(keys, n_items, fu, fi)
    floor = float(truth._moments(fu, fi)[1].mean())
    truth = dataclasses.replace(truth, noise_floor=floor)
    return truth.sample(n_ratings, rng), truth
