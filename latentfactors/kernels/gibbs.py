"""Gibbs sampling of a second-order factorization machine over feature groups.

The model (Freudenthaler, Schmidt-Thieme & Rendle 2011, "Bayesian
Factorization Machines"; libFM's MCMC) predicts rating ``r`` as

    w0 + sum_g b[x_g(r)] + sum_{g < h} V[x_g(r)] . V[x_h(r)]

where each *one-hot* group ``g`` (users, items, ...) contributes exactly one
feature ``x_g(r)`` to each rating. Features are numbered globally: group ``g``
owns features ``offsets[g] .. offsets[g+1]-1``, the one-hot groups first.

An *implicit* group (SVD++'s implicit feedback, "flipped" into an FM) adds a
weighted set of its features to each rating through an *anchor*, a feature of
a one-hot group: the items a user rated, each weighted ``1/sqrt(n)``, are the
user's set. Following Rendle's relation blocks ("Scaling factorization
machines to relational data", VLDB 2013), a set is summed once per anchor,
not once per rating: the anchor ``u`` carries ``S[u] = sum_j w_uj V[j]``,
``B[u] = sum_j w_uj b[j]`` and the set's pairwise term
``Z[u] = V[u] . S[u] + (|S[u]|^2 - sum_j w_uj^2 |V[j]|^2) / 2``, so that the
FM's prediction is

    w0 + sum_g beff[x_g(r)] + sum_{g < h} Veff[x_g(r)] . Veff[x_h(r)]

over the one-hot groups only, with ``Veff = V + S`` and ``beff = b + B + Z``
(:class:`GibbsCache`). Priors:

* noise: ``y ~ N(prediction, 1/alpha)``, ``alpha ~ Gamma(alpha_shape, alpha_rate)``;
* ``w0 ~ N(0, 1/lam_w0)`` (the targets are centred);
* per group ``g``: ``b[j] ~ N(mu_b[g], 1/lam_b[g])`` and, per factor dimension
  ``f``, ``V[j, f] ~ N(mu_v[g, f], 1/lam_v[g, f])``;
* each (mean, precision) pair is Normal-Gamma:
  ``lam ~ Gamma(lam_shape, lam_rate)``, ``mu | lam ~ N(mu0, 1/(mu_strength * lam))``.

Gamma distributions are written with a *rate*.

**One sweep** (:func:`gibbs_sweep`): recompute the residuals ``e = y - prediction``
(so rounding never accumulates across sweeps), then draw ``alpha``, each group's
hyperparameters (for the biases and each factor dimension: ``lam`` given ``mu``,
then ``mu`` given ``lam``), ``w0``, and finally the rows group by group. A row
(feature ``j``) gathers the residuals of its ratings and, per rating, the sum of
the other groups' vectors, then draws its bias and its ``k`` factor coordinates
one at a time, each from its exact Gaussian conditional, updating the gathered
residuals after every draw (coordinate-wise, as libFM does; a (k+1)-block draw
with a Cholesky solve would mix better per sweep but cost O(k^2) per rating and
O(k^3) per row). Rows of one one-hot group share no rating, so they are
conditionally independent and are drawn in parallel.

An implicit group is drawn after the one-hot groups, its biases and then one
factor dimension at a time (:func:`draw_implicit`). A feature ``j`` of the
group enters every rating of every anchor whose set holds it; its conditional
needs, per anchor ``u``, sums over ``u``'s ratings of the residuals and of the
other features' vectors (``E``, ``EO``, ``P1``, ``P2`` below), which change by
O(1) arithmetic when ``V[j, f]`` moves. The residuals themselves are brought up
to date once per dimension. Features of one implicit group share anchors, so
they are drawn one after another. A sweep costs
O(k * (ratings * groups + total size of the sets)).

Coordinate-wise draws move slowly along directions the data leave open, such
as ``w0`` against the groups' bias means: those need long chains to mix.

**Random numbers.** Every draw comes from a counter-based stream keyed by
``(seed, sweep, tag, index)`` (a splitmix64 hash): row ``j`` of any sweep uses
its own stream whichever thread runs it, so any thread count gives bit-identical
samples, and reductions (sums of squares) run serially in a fixed order.

**Dtypes.** Targets, parameters, residuals and hyperparameters are float64:
precisions grow with the number of ratings and conditional means are
differences of large sums.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numba
import numpy as np

from latentfactors.kernels._config import JIT, serial_and_parallel, units_per_call

#: The ratings as the sampler sees them.
#: ``rows`` (n_onehot_groups, n) int32: the row within its group of each rating's feature;
#: ``y`` (n,) float64 targets; ``indptr`` (n_features + 1,) int64 and ``members``
#: int64: the ratings of feature ``j`` are ``members[indptr[j]:indptr[j+1]]``;
#: ``offsets`` (n_groups + 1,) int64: the first feature of each group.
#: The implicit groups' sets follow, as two CSR tables (int64 pointers, int64
#: feature numbers, float64 weights): ``set_*`` by one-hot feature (the anchor),
#: listing the features of its set and their weights; ``inv_*`` by implicit
#: feature ``j`` (row ``j - offsets[rows.shape[0]]``), listing the anchors whose
#: sets hold it. ``anchor`` (n_groups,) int64: each implicit group's anchor
#: group, ``-1`` for the one-hot groups. Without implicit groups the tables are
#: empty. (One flat tuple: Numba's parallel loops do not take nested tuples.)
#: ``others`` (n_implicit_groups, n_onehot - 1, n) int32: for each implicit
#: group, the global numbers of each rating's one-hot features outside the
#: anchor's group, with the ratings in anchor order (``members``' order over
#: the anchor group), so that a walk over the anchors reads them contiguously.
GibbsData = namedtuple(
    "GibbsData",
    "rows y indptr members offsets set_indptr set_feat set_w inv_indptr inv_anchor inv_w "
    "anchor others",
)

#: An implicit group's walk over its anchors' ratings (see :func:`draw_implicit`),
#: all in anchor order: ``ep`` the residuals and ``O`` the other features' sums
#: (float64, one per rating), ``others`` the group's slice of ``GibbsData.others``,
#: ``VT`` (k, n_onehot_features) the effective vectors transposed (those of the
#: other groups stay fixed during the walk), ``base`` the position in
#: ``members`` of the anchor group's first rating.
Walk = namedtuple("Walk", "ep O others VT base")

#: What the implicit groups add to each one-hot feature (float64; zeros without
#: implicit groups): ``S`` (n_onehot, k) and ``B`` (n_onehot,) its set's weighted
#: sums, ``Zs`` (n_onehot,) the set's own pairwise term ``(|S|^2 - sum w^2
#: |V_j|^2) / 2``, and the effective ``Veff = V + S`` and ``beff = b + B + V . S +
#: Zs`` that the predictions use. Recomputed at the start of every sweep.
GibbsCache = namedtuple("GibbsCache", "S B Zs Veff beff")

#: The sampled parameters, updated in place (all float64): ``w0`` (1,), ``b``
#: (n_features,), ``V`` (n_features, k), ``alpha`` (1,), the noise precision, and
#: ``e`` (n,), the residuals ``y - prediction`` the sweep maintains.
GibbsParams = namedtuple("GibbsParams", "w0 b V alpha e")

#: Sampled per-group hyperparameters (float64): ``mu_b``, ``lam_b`` (n_groups,),
#: ``mu_v``, ``lam_v`` (n_groups, k).
GibbsHyper = namedtuple("GibbsHyper", "mu_b lam_b mu_v lam_v")

#: Fixed constants of the priors (floats), see the module docstring.
GibbsPrior = namedtuple(
    "GibbsPrior", "lam_w0 alpha_shape alpha_rate lam_shape lam_rate mu0 mu_strength"
)

# Stream tags: which kind of draw a stream serves.
TAG_ALPHA = 1
TAG_HYPER = 2
TAG_W0 = 3
TAG_ROW = 4
TAG_IMPLICIT = 5

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_TWO_POW_53 = 9007199254740992.0


# ---------------------------------------------------------------- random streams


@numba.njit(**JIT)
def _mix(z):
    """The splitmix64 finaliser: a bijective, well-mixing hash of a uint64."""
    z = (z ^ (z >> np.uint64(30))) * _MUL1
    z = (z ^ (z >> np.uint64(27))) * _MUL2
    return z ^ (z >> np.uint64(31))


@numba.njit(**JIT)
def stream_key(seed, sweep, tag, index):
    """The starting state of the stream for one ``(seed, sweep, tag, index)``."""
    z = _mix(np.uint64(seed) + _GOLDEN)
    z = _mix(z ^ np.uint64(sweep))
    z = _mix(z ^ np.uint64(tag))
    return _mix(z ^ np.uint64(index))


@numba.njit(**JIT)
def _uniform(state):
    """Next state and a uniform draw in ``(0, 1]`` (53 bits)."""
    state = state + _GOLDEN
    z = _mix(state)
    return state, (np.float64(z >> np.uint64(11)) + 1.0) / _TWO_POW_53


@numba.njit(**JIT)
def _normal(state):
    """Next state and a standard normal draw (Box-Muller, one of the pair)."""
    state, u1 = _uniform(state)
    state, u2 = _uniform(state)
    return state, math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@numba.njit(**JIT)
def _gamma(state, shape, rate):
    """Next state and a ``Gamma(shape, rate)`` draw (Marsaglia & Tsang 2000).

    A shape below 1 is drawn as ``Gamma(shape + 1) * U ** (1 / shape)``.
    """
    boost = 1.0
    if shape < 1.0:
        state, u = _uniform(state)
        boost = u ** (1.0 / shape)
        shape += 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        state, x = _normal(state)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        state, u = _uniform(state)
        if math.log(u) < 0.5 * x * x + d - d * v + d * math.log(v):
            return state, d * v * boost / rate


@numba.njit(**JIT)
def _gaussian(state, mean, precision):
    state, z = _normal(state)
    return state, mean + z / math.sqrt(precision)


# ---------------------------------------------------------------- conditionals


@numba.njit(**JIT)
def _alpha_conditional(e, prior):
    """``(shape, rate)`` of the noise precision given the residuals ``e``."""
    sse = 0.0
    for r in range(len(e)):
        sse += e[r] * e[r]
    return prior.alpha_shape + 0.5 * len(e), prior.alpha_rate + 0.5 * sse


@numba.njit(**JIT)
def _lambda_conditional(values, mu, prior):
    """``(shape, rate)`` of a group's precision given its mean and its ``values``.

    The Normal-Gamma prior contributes ``lam ** 0.5`` through ``mu`` besides
    ``lam ** (p / 2)`` from the ``p`` values.
    """
    s = prior.mu_strength * (mu - prior.mu0) ** 2
    for x in values:
        s += (x - mu) ** 2
    return prior.lam_shape + 0.5 * (len(values) + 1), prior.lam_rate + 0.5 * s


@numba.njit(**JIT)
def _mu_conditional(values, lam, prior):
    """``(mean, precision)`` of a group's mean given its precision and its ``values``."""
    total = 0.0
    for x in values:
        total += x
    strength = prior.mu_strength + len(values)
    return (prior.mu_strength * prior.mu0 + total) / strength, strength * lam


@numba.njit(**JIT)
def _w0_conditional(params, prior):
    """``(mean, precision)`` of the global bias given everything else."""
    e, w0, alpha = params.e, params.w0[0], params.alpha[0]
    s = 0.0
    for r in range(len(e)):
        s += e[r] + w0
    precision = prior.lam_w0 + alpha * len(e)
    return alpha * s / precision, precision


@numba.njit(**JIT)
def _row_inputs(j, g, data, params, cache):
    """What one-hot feature ``j``'s conditionals read, gathered once into contiguous arrays.

    Returns ``(er, H)``: ``er`` (n_j,) the residuals of ``j``'s ratings and ``H``
    (n_j, k) per rating d prediction / d ``V[j]``: the other groups' effective
    vectors plus ``j``'s own set's sum (fixed while group ``g`` is drawn). The
    ``k`` coordinate draws then stream through ``H`` instead of gathering other
    groups' rows ``k`` times.
    """
    lo, hi = data.indptr[j], data.indptr[j + 1]
    k = params.V.shape[1]
    er = np.empty(hi - lo)
    H = np.zeros((hi - lo, k))
    for t in range(hi - lo):
        r = data.members[lo + t]
        er[t] = params.e[r]
        for other in range(data.rows.shape[0]):
            if other != g:
                row = data.offsets[other] + data.rows[other, r]
                for f in range(k):
                    H[t, f] += cache.Veff[row, f]
        for f in range(k):
            H[t, f] += cache.S[j, f]
    return er, H


@numba.njit(**JIT)
def _bias_conditional(er, b, mu, lam, alpha):
    """``(mean, precision)`` of a bias now ``b`` whose ratings have residuals ``er``,
    under its group's prior ``N(mu, 1/lam)`` and noise precision ``alpha``."""
    s = 0.0
    for t in range(len(er)):
        s += er[t] + b
    precision = lam + alpha * len(er)
    return (lam * mu + alpha * s) / precision, precision


@numba.njit(**JIT)
def _factor_conditional(er, H, f, v, mu, lam, alpha):
    """``(mean, precision)`` of a factor coordinate now ``v`` (column ``f`` of ``H``
    holds d prediction / d v per rating), under the prior ``N(mu, 1/lam)``."""
    s = 0.0
    hh = 0.0
    for t in range(len(er)):
        h = H[t, f]
        s += h * (er[t] + v * h)
        hh += h * h
    precision = lam + alpha * hh
    return (lam * mu + alpha * s) / precision, precision


# ---------------------------------------------------------------- draws


@numba.njit(**JIT)
def _prediction(r, data, params, cache):
    """The prediction for rating ``r`` from the current effective vectors and biases."""
    rows, offsets, b, V = data.rows, data.offsets, cache.beff, cache.Veff
    n_groups = rows.shape[0]
    s = params.w0[0]
    for g in range(n_groups):
        s += b[offsets[g] + rows[g, r]]
    for g in range(n_groups):
        j = offsets[g] + rows[g, r]
        for h in range(g + 1, n_groups):
            i = offsets[h] + rows[h, r]
            for f in range(V.shape[1]):
                s += V[j, f] * V[i, f]
    return s


@numba.njit(**JIT)
def _effective(j, params, cache):
    """Set one-hot feature ``j``'s effective vector and bias from its parameters and set."""
    V, S = params.V, cache.S
    dot = 0.0
    for f in range(V.shape[1]):
        cache.Veff[j, f] = V[j, f] + S[j, f]
        dot += V[j, f] * S[j, f]
    cache.beff[j] = params.b[j] + cache.B[j] + dot + cache.Zs[j]


@numba.njit(**JIT)
def _draw_row(j, g, data, params, cache, hyper, seed, sweep):
    """Draw one-hot feature ``j``'s bias, then its factors one coordinate at a time."""
    er, H = _row_inputs(j, g, data, params, cache)
    b, V, alpha = params.b, params.V, params.alpha[0]
    state = stream_key(seed, sweep, TAG_ROW, j)
    mean, precision = _bias_conditional(er, b[j], hyper.mu_b[g], hyper.lam_b[g], alpha)
    state, new = _gaussian(state, mean, precision)
    delta = new - b[j]
    b[j] = new
    for t in range(len(er)):
        er[t] -= delta
    for f in range(V.shape[1]):
        mean, precision = _factor_conditional(
            er, H, f, V[j, f], hyper.mu_v[g, f], hyper.lam_v[g, f], alpha
        )
        state, new = _gaussian(state, mean, precision)
        delta = new - V[j, f]
        V[j, f] = new
        for t in range(len(er)):
            er[t] -= delta * H[t, f]
    lo = data.indptr[j]
    for t in range(len(er)):
        params.e[data.members[lo + t]] = er[t]
    _effective(j, params, cache)


@numba.njit(**JIT)
def _draw_hyper(g, data, params, hyper, prior, seed, sweep):
    """Draw group ``g``'s (mean, precision) of the biases and of each factor dimension."""
    lo, hi = data.offsets[g], data.offsets[g + 1]
    state = stream_key(seed, sweep, TAG_HYPER, g)
    values = params.b[lo:hi]
    shape, rate = _lambda_conditional(values, hyper.mu_b[g], prior)
    state, lam = _gamma(state, shape, rate)
    hyper.lam_b[g] = lam
    mean, precision = _mu_conditional(values, lam, prior)
    state, mu = _gaussian(state, mean, precision)
    hyper.mu_b[g] = mu
    for f in range(params.V.shape[1]):
        values = params.V[lo:hi, f]
        shape, rate = _lambda_conditional(values, hyper.mu_v[g, f], prior)
        state, lam = _gamma(state, shape, rate)
        hyper.lam_v[g, f] = lam
        mean, precision = _mu_conditional(values, lam, prior)
        state, mu = _gaussian(state, mean, precision)
        hyper.mu_v[g, f] = mu


def _residuals(data, params, cache, lo, hi):
    """``e[r] = y[r] - prediction(r)`` for the ratings ``lo <= r < hi``."""
    e = params.e
    for r in numba.prange(lo, hi):
        e[r] = data.y[r] - _prediction(r, data, params, cache)


@numba.njit(**JIT)
def _aggregate(j, data, params, cache):
    """One-hot feature ``j``'s set sums, then its effective vector and bias."""
    V, b = params.V, params.b
    k = V.shape[1]
    bias = 0.0
    squares = 0.0
    for f in range(k):
        cache.S[j, f] = 0.0
    for t in range(data.set_indptr[j], data.set_indptr[j + 1]):
        m = data.set_feat[t]
        w = data.set_w[t]
        bias += w * b[m]
        for f in range(k):
            cache.S[j, f] += w * V[m, f]
            squares += w * w * V[m, f] * V[m, f]
    norm = 0.0
    for f in range(k):
        norm += cache.S[j, f] * cache.S[j, f]
    cache.B[j] = bias
    cache.Zs[j] = 0.5 * (norm - squares)
    _effective(j, params, cache)


def _aggregates(data, params, cache, lo, hi):
    """The sets' sums and the effective vectors and biases of one-hot features ``lo .. hi - 1``."""
    for j in numba.prange(lo, hi):
        _aggregate(j, data, params, cache)


@numba.njit(**JIT)
def _draw_globals(data, params, hyper, prior, seed, sweep):
    """Draw the noise precision, every group's hyperparameters and ``w0`` (residuals current)."""
    e = params.e
    shape, rate = _alpha_conditional(e, prior)
    _, alpha = _gamma(stream_key(seed, sweep, TAG_ALPHA, 0), shape, rate)
    params.alpha[0] = alpha
    for g in range(len(data.offsets) - 1):
        _draw_hyper(g, data, params, hyper, prior, seed, sweep)
    mean, precision = _w0_conditional(params, prior)
    _, new = _gaussian(stream_key(seed, sweep, TAG_W0, 0), mean, precision)
    delta = new - params.w0[0]
    params.w0[0] = new
    for r in range(len(e)):
        e[r] -= delta


def _draw_rows(data, params, cache, hyper, g, lo, hi, seed, sweep):
    """Draw the features ``lo <= j < hi`` of one-hot group ``g`` (they share no rating)."""
    for j in numba.prange(lo, hi):
        _draw_row(j, g, data, params, cache, hyper, seed, sweep)


# Per-anchor running sums of :func:`draw_implicit`: one row of ``sums`` per
# one-hot feature, its columns packed so that an anchor's sums share a cache
# line. Over the anchor's ratings: _N their count, _E the residuals, _EO
# residual times O, _P1 and _P2 the sums of O and O**2, where O is a rating's
# sum of the other features' vectors in the current dimension; _DS and _DQ what
# the dimension's draws added to the anchor's S and to its set's pairwise term;
# _S the anchor's S in the current dimension.
_N, _E, _EO, _P1, _P2, _DS, _DQ, _S = range(8)
N_SUMS = 8


def new_block_sums(data) -> np.ndarray:
    """Scratch for :func:`draw_implicit`: (n_onehot_features, N_SUMS) float64."""
    return np.zeros((int(data.offsets[data.rows.shape[0]]), N_SUMS))


@numba.njit(**JIT)
def _block_gather(j, a, f, data, sums):
    """``(sum h e + a sum h^2, sum h^2)`` over the ratings implicit feature ``j``
    enters, ``h`` being d prediction / d ``V[j, f]`` (``f = -1``: the bias) and
    ``a`` its current value, from the anchors' running sums."""
    # sums[u, col] rather than a row view: a view per member costs reference counting.
    row = j - data.offsets[data.rows.shape[0]]
    he = 0.0
    hh = 0.0
    for t in range(data.inv_indptr[row], data.inv_indptr[row + 1]):
        w = data.inv_w[t]
        u = data.inv_anchor[t]
        if f < 0:
            he += w * sums[u, _E]
            hh += w * w * sums[u, _N]
        else:
            c = sums[u, _S] - w * a  # the rest of the anchor's set
            he += w * (sums[u, _EO] + c * sums[u, _E])
            hh += w * w * (sums[u, _P2] + 2.0 * c * sums[u, _P1] + sums[u, _N] * c * c)
    return he + a * hh, hh


@numba.njit(**JIT)
def _block_conditional(j, a, f, data, sums, mu, lam, alpha):
    """``(mean, precision)`` of implicit feature ``j``'s bias (``f = -1``) or factor
    ``f``, now ``a``, under its group's prior ``N(mu, 1/lam)``."""
    he, hh = _block_gather(j, a, f, data, sums)
    precision = lam + alpha * hh
    return (lam * mu + alpha * he) / precision, precision


@numba.njit(**JIT)
def _block_update(j, a, delta, f, data, sums):
    """Bring the anchors' running sums up to date after ``V[j, f]`` (``f = -1``: the
    bias) moved from ``a`` by ``delta``."""
    row = j - data.offsets[data.rows.shape[0]]
    for t in range(data.inv_indptr[row], data.inv_indptr[row + 1]):
        w = data.inv_w[t]
        u = data.inv_anchor[t]
        step = delta * w
        if f < 0:
            sums[u, _E] -= step * sums[u, _N]
            sums[u, _DS] += step
        else:
            c = sums[u, _S] - w * a
            p1 = sums[u, _P1]
            sums[u, _E] -= step * (p1 + sums[u, _N] * c)
            sums[u, _EO] -= step * (sums[u, _P2] + c * p1)
            sums[u, _S] += step
            sums[u, _DS] += step
            sums[u, _DQ] += step * c


#: ``f`` of :func:`_anchor_step` when there is no dimension to finish or to start.
NO_DIM = -2


@numba.njit(**JIT)
def _anchor_step(u, done, start, params, cache, sums, walk, lo, hi):
    """One anchor's share of an implicit group's pass, in one walk over its ratings
    (positions ``lo .. hi - 1`` of ``walk``): apply the moves of dimension ``done``
    (``-1``: the biases; :data:`NO_DIM`: none) to the residuals and to the
    anchor's effective vector and bias, then fill its running sums for
    dimension ``start`` (or none)."""
    z = sums[u]
    ep, O, others, VT = walk.ep, walk.O, walk.others, walk.VT
    dS, dQ = z[_DS], z[_DQ]
    if done >= 0:
        # Only dimension ``done`` of S moved: update Veff and beff in O(1), not O(k).
        cache.beff[u] += params.V[u, done] * (z[_S] - cache.S[u, done]) + dQ
        cache.S[u, done] = z[_S]
        cache.Veff[u, done] = params.V[u, done] + z[_S]
    s = cache.S[u, start] if start >= 0 else 0.0
    own = params.V[u, start] if start >= 0 else 0.0
    total = 0.0
    eo = 0.0
    p1 = 0.0
    p2 = 0.0
    for t in range(lo, hi):
        if done == -1:
            ep[t] -= dS
        elif done >= 0:
            ep[t] -= dS * O[t] + dQ
        if start >= 0:
            o = own
            for h in range(others.shape[0]):
                o += VT[start, others[h, t]]
            O[t] = o
            eo += ep[t] * o
            p1 += o
            p2 += o * o
        total += ep[t]
    if done == -1:
        cache.B[u] += dS
        cache.beff[u] += dS
    elif done >= 0:
        cache.Zs[u] += dQ  # each step moved it by delta * w * c
    z[_N] = hi - lo
    z[_E] = total
    z[_EO] = eo
    z[_P1] = p1
    z[_P2] = p2
    z[_DS] = 0.0
    z[_DQ] = 0.0
    z[_S] = s


def _anchor_steps(done, start, indptr, params, cache, sums, walk, lo, hi):
    """:func:`_anchor_step` for the anchors ``lo <= u < hi`` (they share no rating);
    ``indptr`` is ``GibbsData.indptr``."""
    for u in numba.prange(lo, hi):
        first, last = indptr[u] - walk.base, indptr[u + 1] - walk.base
        _anchor_step(u, done, start, params, cache, sums, walk, first, last)


@numba.njit(**JIT)
def _draw_block(g, f, data, params, hyper, sums, seed, sweep):
    """Draw implicit group ``g``'s biases (``f = -1``) or factor ``f``, one feature
    after another (they share anchors); each draw reads and updates only the
    running sums of the anchors whose sets hold it."""
    alpha = params.alpha[0]
    k = params.V.shape[1]
    if f < 0:
        mu, lam = hyper.mu_b[g], hyper.lam_b[g]
    else:
        mu, lam = hyper.mu_v[g, f], hyper.lam_v[g, f]
    for j in range(data.offsets[g], data.offsets[g + 1]):
        a = params.b[j] if f < 0 else params.V[j, f]
        mean, precision = _block_conditional(j, a, f, data, sums, mu, lam, alpha)
        state = stream_key(seed, sweep, TAG_IMPLICIT, j * (k + 1) + f + 1)
        _, new = _gaussian(state, mean, precision)
        if f < 0:
            params.b[j] = new
        else:
            params.V[j, f] = new
        _block_update(j, a, new - a, f, data, sums)


@numba.njit(**JIT)
def _sum_squares(e):
    s = 0.0
    for r in range(len(e)):
        s += e[r] * e[r]
    return s


_residuals_serial, _residuals_parallel = serial_and_parallel(_residuals)
_aggregates_serial, _aggregates_parallel = serial_and_parallel(_aggregates)
_draw_rows_serial, _draw_rows_parallel = serial_and_parallel(_draw_rows)
_anchor_steps_serial, _anchor_steps_parallel = serial_and_parallel(_anchor_steps)

#: The jitted steps of a sweep: ``aggregates``, ``residuals``, ``globals``,
#: ``rows``, ``anchors`` and ``block`` as above.
SweepKernels = namedtuple("SweepKernels", "aggregates residuals globals rows anchors block")
SERIAL = SweepKernels(
    _aggregates_serial,
    _residuals_serial,
    _draw_globals,
    _draw_rows_serial,
    _anchor_steps_serial,
    _draw_block,
)
PARALLEL = SweepKernels(
    _aggregates_parallel,
    _residuals_parallel,
    _draw_globals,
    _draw_rows_parallel,
    _anchor_steps_parallel,
    _draw_block,
)

# Estimated nanoseconds of one core per rating and factor of a row update (a
# rough figure, not a measurement). Only sizes a sweep's calls.
GIBBS_NS_PER_RATING_FACTOR = 4.0


def gibbs_sweep(data, params, hyper, prior, seed, sweep, kernels=SERIAL, cache=None):
    """One Gibbs sweep over every parameter, in place; returns the residuals' sum of squares.

    Parameters
    ----------
    data : GibbsData
    params : GibbsParams
        Updated in place; ``params.e`` is recomputed first, so it need not be
        current on entry.
    hyper : GibbsHyper
        Updated in place.
    prior : GibbsPrior
    seed : int
        The chain's seed (uint64 range); with ``sweep`` it keys every stream.
    sweep : int
        The sweep's number: no two sweeps of a chain may share one.
    kernels : SweepKernels
        :data:`SERIAL` or :data:`PARALLEL` (run under
        :func:`~latentfactors.kernels._config.with_threads`).
    cache : GibbsCache, optional
        Where the sweep keeps the sets' sums and the effective vectors and
        biases (from :func:`new_cache`); afterwards they match the new
        parameters. Filled afresh at the start, so its contents on entry do
        not matter.

    Returns
    -------
    float
        ``sum(e ** 2)`` after the sweep (float64).

    The residuals and each group's rows run in calls over consecutive ranges
    of about :data:`~latentfactors.kernels._config.CALL_NS` of work, so that
    Python handles an interrupt between them. A row's draws depend only on its
    stream and on rows of other groups, so any cut gives bit-identical samples.
    """
    n, k = len(data.y), params.V.shape[1]
    n_onehot = data.rows.shape[0]
    n_groups = len(data.offsets) - 1
    ns = GIBBS_NS_PER_RATING_FACTOR
    if cache is None:
        cache = new_cache(data, k)
    n_anchors = int(data.offsets[n_onehot])
    per_call = units_per_call(n_anchors, ns * (k + 1) * (1 + len(data.set_feat) / n_anchors))
    for lo in range(0, n_anchors, per_call):
        kernels.aggregates(data, params, cache, lo, min(n_anchors, lo + per_call))
    per_call = units_per_call(n, ns * k * n_onehot)
    for lo in range(0, n, per_call):
        kernels.residuals(data, params, cache, lo, min(n, lo + per_call))
    kernels.globals(data, params, hyper, prior, seed, sweep)
    for g in range(n_onehot):
        first, last = int(data.offsets[g]), int(data.offsets[g + 1])
        per_call = units_per_call(last - first, ns * (k + 1) * n / max(last - first, 1))
        for lo in range(first, last, per_call):
            kernels.rows(data, params, cache, hyper, g, lo, min(last, lo + per_call), seed, sweep)
    if n_groups > n_onehot:
        sums = new_block_sums(data)
        O = np.zeros(n)
        for g in range(n_onehot, n_groups):
            draw_implicit(g, data, params, cache, hyper, sums, O, seed, sweep, kernels)
    return _sum_squares(params.e)


def draw_implicit(g, data, params, cache, hyper, sums, O, seed, sweep, kernels=SERIAL):
    """Draw implicit group ``g``: its biases, then one factor dimension at a time.

    Between two dimensions, one walk over the anchors' ratings (parallel over
    anchors) applies the last dimension's moves and prepares the next one's
    running sums; the residuals are kept in anchor order meanwhile, so that
    the walk reads them contiguously. ``sums`` and ``O`` are scratch (see
    :func:`new_block_sums`; ``O`` of one float64 per rating).
    """
    anchor = int(data.anchor[g])
    first, last = int(data.offsets[anchor]), int(data.offsets[anchor + 1])
    base, end = int(data.indptr[first]), int(data.indptr[last])
    order = data.members[base:end]
    others = data.others[g - data.rows.shape[0]]
    walk = Walk(params.e[order], O, others, np.ascontiguousarray(cache.Veff.T), base)
    k = params.V.shape[1]
    per_call = units_per_call(
        last - first, GIBBS_NS_PER_RATING_FACTOR * (end - base) / (last - first)
    )
    done = NO_DIM
    for f in [*range(-1, k), NO_DIM]:
        for lo in range(first, last, per_call):
            hi = min(last, lo + per_call)
            kernels.anchors(done, f, data.indptr, params, cache, sums, walk, lo, hi)
        if f != NO_DIM:
            kernels.block(g, f, data, params, hyper, sums, seed, sweep)
        done = f
    params.e[order] = walk.ep


def new_cache(data, k: int) -> GibbsCache:
    """A :class:`GibbsCache` for ``data``'s one-hot features (filled by a sweep)."""
    n = int(data.offsets[data.rows.shape[0]])
    return GibbsCache(np.zeros((n, k)), np.zeros(n), np.zeros(n), np.zeros((n, k)), np.zeros(n))


# ---------------------------------------------------------------- posterior prediction

#: Kept posterior samples (any float dtype): ``w0`` (S,), ``bu`` (S, n_users),
#: ``bi`` (S, n_items), ``P`` (S, n_users, k), ``Q`` (S, n_items, k), and the
#: days' ``bd`` (S, n_days), ``D`` (S, n_days, k) and ``dmu`` (S, k + 1), the
#: day group's mean bias and vector, for pairs without a known day (``n_days =
#: 0`` and ``dmu`` of shape (S, 0) without a day group).
Samples = namedtuple("Samples", "w0 bu bi P Q bd D dmu")


def _posterior_predict(users, items, days, samples, mean, var):
    """Mean and variance over samples of each pair's prediction (float64 out).

    Unknown user or item codes (``-1``) contribute no bias and no interaction.
    A day code of ``-1`` (a day the training data did not have, or none given)
    stands for the day group's mean, ``dmu``, when the model has a day group.
    Each output depends only on its own pair, so threads cannot change results.
    """
    w0, bu, bi, P, Q, bd, D, dmu = samples
    n_samples, k = P.shape[0], P.shape[2]
    for t in numba.prange(len(users)):
        u, i, d = users[t], items[t], days[t]
        s1 = 0.0
        s2 = 0.0
        for s in range(n_samples):
            x = np.float64(w0[s])
            if u >= 0:
                x += bu[s, u]
            if i >= 0:
                x += bi[s, i]
            if u >= 0 and i >= 0:
                for f in range(k):
                    x += np.float64(P[s, u, f]) * Q[s, i, f]
            if d >= 0 or dmu.shape[1] > 0:
                x += bd[s, d] if d >= 0 else dmu[s, 0]
                for f in range(k):
                    side = 0.0
                    if u >= 0:
                        side += P[s, u, f]
                    if i >= 0:
                        side += Q[s, i, f]
                    day_f = D[s, d, f] if d >= 0 else dmu[s, 1 + f]
                    x += np.float64(day_f) * side
            s1 += x
            s2 += x * x
        m = s1 / n_samples
        mean[t] = m
        var[t] = max(s2 / n_samples - m * m, 0.0)


_posterior_predict_serial, _posterior_predict_parallel = serial_and_parallel(_posterior_predict)


# ---------------------------------------------------------------- building the inputs


def gibbs_data(rows, sizes, y, implicit=()) -> GibbsData:
    """The sampler's view of the ratings.

    Parameters
    ----------
    rows : sequence of int arrays, one per one-hot group, each of shape (n,)
        The row (within its group) of every rating: user codes, item codes, ...
    sizes : sequence of int
        Rows per one-hot group.
    y : array of shape (n,)
        The targets (converted to float64).
    implicit : sequence of ``(anchor, size, indptr, members, weights)``
        One per implicit group: the one-hot group ``anchor`` whose rows carry
        the sets, the group's number of features, and the sets as CSR over the
        anchor's rows (``members[indptr[u]:indptr[u + 1]]`` are row ``u``'s
        features, numbered within the implicit group, with ``weights``).
    """
    rows = np.ascontiguousarray(np.stack([np.asarray(r, dtype=np.int32) for r in rows]))
    all_sizes = [*sizes, *(int(group[1]) for group in implicit)]
    offsets = np.zeros(len(all_sizes) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(all_sizes)
    n_onehot = len(sizes)
    n = rows.shape[1]
    n1 = int(offsets[n_onehot])
    features = (rows.astype(np.int64) + offsets[:n_onehot, None]).ravel()
    # A stable sort keeps each feature's ratings in rating order.
    members = (np.argsort(features, kind="stable") % n).astype(np.int64)
    counts = np.bincount(features, minlength=n1)
    indptr = np.zeros(n1 + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(counts)
    sets = _implicit_sets(offsets, n_onehot, implicit)
    y = np.ascontiguousarray(y, dtype=np.float64)
    others = np.zeros((len(implicit), max(n_onehot - 1, 0), n), dtype=np.int32)
    for h, group in enumerate(implicit):
        anchor = group[0]
        order = members[indptr[offsets[anchor]] : indptr[offsets[anchor + 1]]]
        rest = [g for g in range(n_onehot) if g != anchor]
        for slot, g in enumerate(rest):
            others[h, slot] = offsets[g] + rows[g, order]
    return GibbsData(rows, y, indptr, members, offsets, *sets, others)


def _implicit_sets(offsets, n_onehot, implicit):
    """The sets' fields of :class:`GibbsData` from each group's sets by anchor row."""
    n1 = int(offsets[n_onehot])
    anchor_of = np.full(len(offsets) - 1, -1, dtype=np.int64)
    owner, feat, weight = [], [], []
    for h, (anchor, size, ptr, mem, w) in enumerate(implicit):
        g = n_onehot + h
        if not 0 <= anchor < n_onehot or anchor in anchor_of:
            raise ValueError(f"implicit group {h}: its anchor must be a one-hot group of its own")
        anchor_of[g] = anchor
        ptr = np.asarray(ptr, dtype=np.int64)
        mem = np.asarray(mem, dtype=np.int64)
        w = np.asarray(w, dtype=np.float64)
        n_rows = int(offsets[anchor + 1] - offsets[anchor])
        if len(ptr) != n_rows + 1 or ptr[-1] != len(mem) or len(w) != len(mem):
            raise ValueError(f"implicit group {h}: the sets do not match the anchor's rows")
        if len(mem) and (mem.min() < 0 or mem.max() >= size):
            raise ValueError(f"implicit group {h}: a set holds a feature out of range")
        if ptr[0] != 0 or np.any(np.diff(ptr) < 0) or not np.isfinite(w).all():
            raise ValueError(f"implicit group {h}: bad set pointers or weights")
        # The running sums assume distinct members (a repeat would need its weights summed).
        keys = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(ptr)) * np.int64(size) + mem
        if np.any(np.diff(keys) <= 0):  # not in increasing order: sort before looking
            keys = np.sort(keys)
            if np.any(np.diff(keys) == 0):
                raise ValueError(f"implicit group {h}: a set lists a feature twice")
        owner.append(np.repeat(offsets[anchor] + np.arange(n_rows), np.diff(ptr)))
        feat.append(mem + offsets[g])
        weight.append(w)
    owner = np.concatenate(owner) if owner else np.zeros(0, dtype=np.int64)
    feat = np.concatenate(feat) if feat else np.zeros(0, dtype=np.int64)
    weight = np.concatenate(weight) if weight else np.zeros(0)
    by_owner = np.argsort(owner, kind="stable")
    set_indptr = np.zeros(n1 + 1, dtype=np.int64)
    set_indptr[1:] = np.cumsum(np.bincount(owner, minlength=n1))
    n_implicit = int(offsets[-1]) - n1
    by_feat = np.argsort(feat, kind="stable")  # each feature's anchors in ascending order
    inv_indptr = np.zeros(n_implicit + 1, dtype=np.int64)
    inv_indptr[1:] = np.cumsum(np.bincount(feat - n1, minlength=n_implicit))
    return (
        set_indptr,
        np.ascontiguousarray(feat[by_owner], dtype=np.int64),
        np.ascontiguousarray(weight[by_owner]),
        inv_indptr,
        np.ascontiguousarray(owner[by_feat], dtype=np.int64),
        np.ascontiguousarray(weight[by_feat]),
        anchor_of,
    )


def initial_hyper(n_groups: int, k: int) -> GibbsHyper:
    """Hyperparameters before the first sweep: means 0, precisions 1."""
    return GibbsHyper(
        np.zeros(n_groups), np.ones(n_groups), np.zeros((n_groups, k)), np.ones((n_groups, k))
    )
