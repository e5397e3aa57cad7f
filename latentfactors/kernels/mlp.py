"""Mini-batch training of a multi-layer perceptron head on user and item embeddings.

The model (:class:`latentfactors.MLPMF`) predicts

    pred = mu + bu[u] + bi[i] + head([P[u]; Q[i]])

where ``head`` is a stack of dense layers ``z = a @ W + b`` with an activation
after every hidden layer and a single linear output unit. The forward and
backward passes are written out by hand here.

Dense parameters
----------------
All layers live in ONE flat array ``flat`` so that any depth runs through the
same kernel. ``sizes = [2k, h1, ..., hL, 1]`` (int64) holds the layer widths;
layer ``l`` maps ``sizes[l]`` units to ``sizes[l + 1]`` units and occupies

    flat[offsets[l] : offsets[l] + sizes[l] * sizes[l + 1]]      W_l, row-major (in, out)
    flat[offsets[l] + sizes[l] * sizes[l + 1] : offsets[l + 1]]  b_l

so ``offsets`` (int64, ``len(sizes)`` entries) ends with the total size.
Ratings go through the head a chunk of :data:`CHUNK` at a time, in training
and in prediction alike, so that each weight row is read once per chunk:
layer ``l``'s units of a chunk form the ``(CHUNK, sizes[l])`` block starting
at ``CHUNK * uoff[l]`` of the activation buffer (``uoff`` from
:func:`unit_offsets`).

Objective
---------
For a batch ``b`` of ``m`` ratings, with ``e_k = r_k - pred_k``,

    L_b = (1/m) sum_{k in b} [ e_k**2 + reg * (|P[u_k]|**2 + |Q[i_k]|**2)
                                      + reg_bias * (bu[u_k]**2 + bi[i_k]**2) ]
          + reg_weights * sum_l |W_l|**2

which is the per-rating objective of :mod:`latentfactors.kernels.adam`, with
every rating also carrying the weight penalty (a weight takes part in every
rating). Layer intercepts are not penalised.

Dropout
-------
With ``dropout = p > 0``, hidden unit ``t`` of the rating at position ``j`` of
the epoch's order is kept when ``hash(seed, j, t) >= p`` (a counter-based
hash, so the mask does not depend on threads) and kept units are scaled by
``1 / (1 - p)`` ("inverted" dropout: nothing changes at prediction time).

Determinism
-----------
A batch is cut into chunks of :data:`CHUNK` ratings, and the chunks into at
most :data:`GROUPS` groups of consecutive chunks: numbers that depend on the
batch size only. Each group sums its chunks' dense-weight gradients into its
own buffer (groups run in parallel), and the buffers are then added in group
order. Each rating's gradient with respect to its input vector
``[P[u]; Q[i]]`` goes to its own slot and is added to the embedding rows
serially in batch order. So one thread and many threads give bit-identical
models.

Updates
-------
The dense parameters are updated every batch (Adam with flat moments, or
plain gradient descent). Embedding rows, with their own optimizer, move by
plain gradient descent or follow :mod:`latentfactors.kernels.adam`: lazily
(only the rows of the batch) or, with ``embed_optimizer == ADAM_DENSE``, as
Keras does, where every row moves at every step (applied in closed form when
a row is next touched). Every write of the head's parameters and Adam moments
flushes tiny values to zero (:data:`TINY`, :data:`PARAM_FLOOR`), so that none
decays into the subnormal floats that make every operation on them far slower.

An epoch runs as calls of :func:`_mlp_batches` over consecutive batches, about
a quarter second of work each, so that Ctrl-C takes effect between them
(Numba code cannot be interrupted). A batch's step, dropout masks and rows
follow from its index and position, and the sum of squared errors is handed
from call to call, so the cut changes no bit.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numba
import numpy as np

from latentfactors.kernels._config import JIT, run_kernel, serial_and_parallel, units_per_call
from latentfactors.kernels.adam import (
    RowScratch,
    _adam_embeddings,
    _catch_up_all,
    _catch_up_pair,
)
from latentfactors.kernels.adam import _mark_batch as _mark_rows

ACTIVATIONS = {"relu": 0, "tanh": 1, "linear": 2}
RELU, TANH, LINEAR = 0, 1, 2
OPTIMIZERS = {"sgd": 0, "adam": 1, "adam-dense": 2}
SGD, ADAM, ADAM_DENSE = 0, 1, 2

# Ratings per chunk (forward and backward passes run a chunk at a time, reusing each
# weight row), and the most chunk groups a batch is split into (each group sums its
# dense gradient into its own buffer; a thread runs whole groups). Both are fixed,
# so the summation order never depends on the number of threads.
CHUNK = 16
GROUPS = 16
# Pairs per task in parallel prediction.
PREDICT_CHUNK = 2048
# The smallest normal float32. Arithmetic on smaller nonzero (subnormal) values costs
# x86 cores about a hundred times more, and the head breeds them: a weight whose only
# gradient is its penalty, or an intercept or moment with none (a dead ReLU unit's),
# decays geometrically and stalls among the subnormals, slowing training and
# prediction 10-45x (benchmarks/mlp_epochs.py). Every write of an Adam moment
# flushes values below it to zero.
TINY = float(np.finfo(np.float32).tiny)
# Head parameters below this become zero when written. Flushing them at TINY is not
# enough: once the penalty's gradient of a decaying weight is subnormal its moment is
# flushed and the weight stops a few powers of ten above TINY, where its product with
# an input (about 0.05) is subnormal in every forward pass. Below 2**-100 a weight times
# anything above 2**-26 stays normal, and it moves no output by a representable amount.
PARAM_FLOOR = 2.0**-100

#: The dense head: ``flat`` parameters, int64 ``offsets``, ``sizes`` and ``uoff``
#: (see the module docstring) and the activation code ``act`` (:data:`RELU`, ...).
Head = namedtuple("Head", "flat offsets sizes uoff act")

#: Dropout of hidden units: float64 drop probability ``rate`` (0 disables
#: masks) and the uint64 ``seed`` of the epoch's masks.
Dropout = namedtuple("Dropout", "rate seed")

#: Penalties of the objective: ``reg`` (embeddings), ``reg_bias`` (biases) and
#: ``reg_weights`` (dense weights).
Penalties = namedtuple("Penalties", "reg reg_bias reg_weights")

#: Scratch of :func:`_batch_grads` (from :func:`batch_scratch`). Per group of
#: chunks: ``acts``, ``derivs`` (n_groups, CHUNK * uoff[-1]) activations and
#: their derivatives, ``deltas``, ``prevs`` (n_groups, CHUNK * max(sizes))
#: backward scratch, ``gbuf`` (n_groups, len(flat)) dense gradients. Out:
#: ``gflat`` (len(flat),) the dense gradient of ``L_b``; per rating of the batch,
#: ``gx`` (>= m, 2k) the data term's gradient with respect to ``[P[u]; Q[i]]``,
#: ``gr`` (>= m,) ``d L_b / d pred`` (the bias gradients) and ``err2`` ``e**2``.
BatchScratch = namedtuple("BatchScratch", "acts derivs deltas prevs gbuf gflat gx gr err2")

#: Adam moments: ``embed`` the embeddings' :class:`~latentfactors.kernels.adam.Moments`,
#: ``mW``, ``vW`` the dense head's, shaped like ``flat``.
MLPMoments = namedtuple("MLPMoments", "embed mW vW")

#: The scalars of a training step: optimizer codes ``optimizer`` (dense head)
#: and ``embed_optimizer`` (embedding rows and biases), float32 ``lr`` (head),
#: ``lr_embed`` (rows), ``beta1``, ``beta2``, ``eps`` and the penalties
#: ``reg``, ``reg_bias``, ``reg_weights``.
MLPHyper = namedtuple(
    "MLPHyper", "optimizer embed_optimizer lr lr_embed beta1 beta2 eps reg reg_bias reg_weights"
)

#: Scratch of prediction (from :func:`predict_scratch`): per task, activations,
#: their derivatives and head outputs.
PredictScratch = namedtuple("PredictScratch", "acts derivs ys")


# ---------------------------------------------------------------- layout helpers


def layer_sizes(n_factors: int, hidden) -> np.ndarray:
    """Widths ``[2 * n_factors, *hidden, 1]`` as int64."""
    return np.array([2 * n_factors, *hidden, 1], dtype=np.int64)


def dense_offsets(sizes: np.ndarray) -> np.ndarray:
    """Start of every layer in the flat parameter array; the last entry is its length."""
    off = np.zeros(len(sizes), dtype=np.int64)
    for layer in range(len(sizes) - 1):
        off[layer + 1] = off[layer] + sizes[layer] * sizes[layer + 1] + sizes[layer + 1]
    return off


def unit_offsets(sizes: np.ndarray) -> np.ndarray:
    """Units before each layer, and in all (int64): ``[0, *cumsum(sizes)]``."""
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def batch_scratch(batch_size: int, sizes: np.ndarray, dtype=np.float32) -> BatchScratch:
    """The :class:`BatchScratch` :func:`_batch_grads` needs for batches of up to ``batch_size``."""
    n_groups = min(-(-batch_size // CHUNK), GROUPS)
    n_units = int(np.sum(sizes))
    width = int(np.max(sizes))
    n_par = int(dense_offsets(sizes)[-1])
    return BatchScratch(
        np.zeros((n_groups, CHUNK * n_units), dtype),
        np.zeros((n_groups, CHUNK * n_units), dtype),
        np.zeros((n_groups, CHUNK * width), dtype),
        np.zeros((n_groups, CHUNK * width), dtype),
        np.zeros((n_groups, n_par), dtype),
        np.zeros(n_par, dtype),
        np.zeros((batch_size, int(sizes[0])), dtype),
        np.zeros(batch_size, dtype),
        np.zeros(batch_size, dtype),
    )


# ---------------------------------------------------------------- dropout masks


@numba.njit(**JIT)
def _mix64(x):
    """SplitMix64 finaliser: a bijective scramble of a uint64."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@numba.njit(**JIT)
def _keep(seed, position, unit, dropout):
    """Whether hidden ``unit`` of the rating at epoch ``position`` survives dropout."""
    h = _mix64(
        np.uint64(seed)
        ^ _mix64(np.uint64(position) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(unit))
    )
    return np.float64(h >> np.uint64(11)) * (1.0 / 9007199254740992.0) >= dropout


# ---------------------------------------------------------------- forward / backward


@numba.njit(**JIT)
def _chunk_forward(users, items, order, lo, hi, P, Q, head, drop, a, d, y):
    """Forward pass of the ratings ``order[lo:hi]`` together, so each weight row is reused.

    ``head`` is the :class:`Head`, ``drop`` the :class:`Dropout`. ``a`` holds
    one block per layer: layer ``l``'s units of the chunk's ratings are the
    ``(CHUNK, sizes[l])`` matrix starting at ``CHUNK * uoff[l]`` (layer 0 is
    the input); ``d`` holds the hidden units' derivatives likewise. The head
    outputs go to ``y[:hi - lo]``. Dropout masks are keyed on the position
    ``lo + r`` in the epoch's order.
    """
    flat, offsets, sizes, uoff, act = head
    dropout, seed = drop
    keep_scale = 1.0 / (1.0 - dropout)
    k = P.shape[1]
    nr = hi - lo
    X = a[0 : CHUNK * 2 * k].reshape((CHUNK, 2 * k))
    for r in range(nr):
        idx = order[lo + r]
        u = users[idx]
        i = items[idx]
        for f in range(k):
            # a negative code (an unknown id, in prediction only) stands for a zero vector
            X[r, f] = P[u, f] if u >= 0 else 0.0
            X[r, k + f] = Q[i, f] if i >= 0 else 0.0
    n_layers = len(sizes) - 1
    for layer in range(n_layers - 1):
        n_in = sizes[layer]
        n_out = sizes[layer + 1]
        w0 = offsets[layer]
        src = CHUNK * uoff[layer]
        dst = CHUNK * uoff[layer + 1]
        # 2-D views: loop indices then need no negative-index fix-ups, so loops vectorise
        X = a[src : src + CHUNK * n_in].reshape((CHUNK, n_in))
        Z = a[dst : dst + CHUNK * n_out].reshape((CHUNK, n_out))
        DZ = d[dst : dst + CHUNK * n_out].reshape((CHUNK, n_out))
        Wl = flat[w0 : w0 + n_in * n_out].reshape((n_in, n_out))
        b = flat[w0 + n_in * n_out : w0 + n_in * n_out + n_out]
        for r in range(nr):
            for j in range(n_out):
                Z[r, j] = b[j]
        # weight row t stays in L1 while every rating of the chunk uses it
        for t in range(n_in):
            for r in range(nr):
                xt = X[r, t]
                if xt != 0.0:
                    for j in range(n_out):
                        Z[r, j] += xt * Wl[t, j]
        unit0 = uoff[layer + 1]
        for r in range(nr):
            if act == RELU:
                for j in range(n_out):
                    if Z[r, j] > 0.0:
                        DZ[r, j] = 1.0
                    else:
                        Z[r, j] = 0.0
                        DZ[r, j] = 0.0
            elif act == TANH:
                for j in range(n_out):
                    t_j = math.tanh(Z[r, j])
                    Z[r, j] = t_j
                    DZ[r, j] = 1.0 - t_j * t_j
            else:
                for j in range(n_out):
                    DZ[r, j] = 1.0
            if dropout > 0.0:
                for j in range(n_out):
                    if _keep(seed, lo + r, unit0 + j, dropout):
                        Z[r, j] *= keep_scale
                        DZ[r, j] *= keep_scale
                    else:
                        Z[r, j] = 0.0
                        DZ[r, j] = 0.0
    n_in = sizes[n_layers - 1]
    w0 = offsets[n_layers - 1]
    src = CHUNK * uoff[n_layers - 1]
    X = a[src : src + CHUNK * n_in].reshape((CHUNK, n_in))
    w = flat[w0 : w0 + n_in]
    for r in range(nr):
        s = flat[w0 + n_in]
        for t in range(n_in):
            s += X[r, t] * w[t]
        y[r] = s


@numba.njit(**JIT)
def _chunk_backward(nr, g, head, a, d, delta, prev, grad, gx, gx0):
    """Add ``sum_r g[r] * d head_r / d params`` to ``grad``; input gradients to ``gx``.

    ``a`` and ``d`` come from :func:`_chunk_forward`; ``delta`` and ``prev``
    hold :data:`CHUNK` rows of ``max(sizes)`` floats. Rating ``r``'s gradient
    with respect to its input goes to ``gx[gx0 + r]``. Every weight's
    gradient adds the chunk's ratings in order.
    """
    flat, offsets, sizes, uoff, _ = head
    width = len(delta) // CHUNK
    Dl = delta.reshape((CHUNK, width))
    Pv = prev.reshape((CHUNK, width))
    n_layers = len(sizes) - 1
    n_in = sizes[n_layers - 1]
    w0 = offsets[n_layers - 1]
    src = CHUNK * uoff[n_layers - 1]
    X = a[src : src + CHUNK * n_in].reshape((CHUNK, n_in))
    w = flat[w0 : w0 + n_in]
    gw = grad[w0 : w0 + n_in]
    for r in range(nr):
        gr_ = g[r]
        grad[w0 + n_in] += gr_
        for t in range(n_in):
            gw[t] += gr_ * X[r, t]
            Dl[r, t] = gr_ * w[t]
    for layer in range(n_layers - 2, -1, -1):
        n_in = sizes[layer]
        n_out = sizes[layer + 1]
        w0 = offsets[layer]
        src = CHUNK * uoff[layer]
        dst = CHUNK * uoff[layer + 1]
        X = a[src : src + CHUNK * n_in].reshape((CHUNK, n_in))
        DX = d[src : src + CHUNK * n_in].reshape((CHUNK, n_in))
        DZ = d[dst : dst + CHUNK * n_out].reshape((CHUNK, n_out))
        Wl = flat[w0 : w0 + n_in * n_out].reshape((n_in, n_out))
        GW = grad[w0 : w0 + n_in * n_out].reshape((n_in, n_out))
        gb = grad[w0 + n_in * n_out : w0 + n_in * n_out + n_out]
        for r in range(nr):
            for j in range(n_out):
                Dl[r, j] *= DZ[r, j]
                gb[j] += Dl[r, j]
        for t in range(n_in):
            for r in range(nr):
                xt = X[r, t]
                if layer > 0 and xt == 0.0 and DX[r, t] == 0.0:
                    # a dead or dropped unit: no weight gradient, no delta to pass on
                    Pv[r, t] = 0.0
                    continue
                s = np.float32(0.0)  # widens to float64 with float64 parameters
                for j in range(n_out):
                    GW[t, j] += xt * Dl[r, j]
                    s += Wl[t, j] * Dl[r, j]
                Pv[r, t] = s
        for r in range(nr):
            for t in range(n_in):
                Dl[r, t] = Pv[r, t]
    for r in range(nr):
        for t in range(sizes[0]):
            gx[gx0 + r, t] = Dl[r, t]


@numba.njit(**JIT)
def _chunk_grads(data, order, lo, hi, start, emb, mu, head, drop, inv_m, scratch, g):
    """Forward and backward passes for ratings ``order[lo:hi]`` of a batch starting at ``start``.

    The chunk's dense gradient is added to group ``g``'s buffer ``scratch.gbuf[g]``
    (its other scratch rows are the group's too); rating ``j``'s input gradient
    goes to ``scratch.gx[j - start]``, its output gradient ``-2 e / m`` to
    ``scratch.gr[j - start]`` and ``e**2`` to ``scratch.err2[j - start]``.
    """
    users, items, ratings = data
    P, Q, bu, bi = emb
    gr = scratch.gr
    err2 = scratch.err2
    a = scratch.acts[g]
    d = scratch.derivs[g]
    nr = hi - lo
    y = gr[lo - start : hi - start]  # holds the head outputs until the errors replace them
    _chunk_forward(users, items, order, lo, hi, P, Q, head, drop, a, d, y)
    for r in range(nr):
        idx = order[lo + r]
        u = users[idx]
        i = items[idx]
        e = ratings[idx] - (mu + bu[u] + bi[i] + y[r])
        err2[lo - start + r] = e * e
        y[r] = -2.0 * inv_m * e
    _chunk_backward(
        nr,
        y,
        head,
        a,
        d,
        scratch.deltas[g],
        scratch.prevs[g],
        scratch.gbuf[g],
        scratch.gx,
        lo - start,
    )


def _batch_grads(data, order, start, stop, emb, mu, head, drop, reg_weights, scratch):
    """Squared errors and gradients of the batch ``order[start:stop]``, chunk-parallel.

    Parameters
    ----------
    data : :class:`~latentfactors.kernels.bundles.Ratings`
        int32 users and items, float ratings, shape (n,).
    order : int array, shape (n_order,)
        The epoch's order; positions ``start .. stop - 1`` form the batch and
        also index the dropout masks.
    emb : :class:`~latentfactors.kernels.bundles.Embeddings`
        float arrays (float32 in training, float64 for gradient checks).
    mu : float
    head : :class:`Head`
    drop : :class:`Dropout`
    reg_weights : float
        L2 penalty of the dense weights.
    scratch : :class:`BatchScratch`
        With ``n_groups >= min(ceil(m / CHUNK), GROUPS)`` rows per group;
        receives the dense gradient and the per-rating outputs.

    Returns
    -------
    float
        Sum of squared errors of the batch, summed in batch order.
    """
    flat, offsets, sizes, _, _ = head
    gbuf = scratch.gbuf
    gflat = scratch.gflat
    err2 = scratch.err2
    m = stop - start
    n_chunks = (m + CHUNK - 1) // CHUNK
    n_groups = min(n_chunks, GROUPS)
    inv_m = 1.0 / m
    n_par = len(flat)
    for g in numba.prange(n_groups):
        grad = gbuf[g]
        for p in range(n_par):
            grad[p] = 0.0
        for c in range(g * n_chunks // n_groups, (g + 1) * n_chunks // n_groups):
            lo = start + c * CHUNK
            hi = min(stop, lo + CHUNK)
            # int64 in both builds (prange's index is unsigned): one compilation serves both.
            _chunk_grads(
                data, order, lo, hi, start, emb, mu, head, drop, inv_m, scratch, np.int64(g)
            )
    for p in range(n_par):
        gflat[p] = 0.0
    for g in range(n_groups):
        for p in range(n_par):
            gflat[p] += gbuf[g, p]
    if reg_weights != 0.0:
        two_reg = 2.0 * reg_weights
        for layer in range(len(sizes) - 1):
            w0 = offsets[layer]
            for p in range(w0, w0 + sizes[layer] * sizes[layer + 1]):
                gflat[p] += two_reg * flat[p]
    sse = 0.0
    for j in range(m):
        sse += err2[j]
    return sse


_batch_grads_serial, _batch_grads = serial_and_parallel(_batch_grads)


@numba.njit(**JIT)
def _row_grads(data, order, start, stop, emb, reg, reg_bias, scratch, rows):
    """Add the batch's embedding and bias gradients into zeroed rows, serially in batch order.

    Reads the per-rating gradients ``gx``, ``gr`` of the :class:`BatchScratch`
    ``scratch`` and adds into the gradient rows of the
    :class:`~latentfactors.kernels.adam.RowScratch` ``rows``.
    """
    users = data.users
    items = data.items
    P, Q, bu, bi = emb
    gx = scratch.gx
    gr = scratch.gr
    gP = rows.gP
    gQ = rows.gQ
    gbu = rows.gbu
    gbi = rows.gbi
    k = P.shape[1]
    scale = 2.0 / (stop - start)
    for j in range(start, stop):
        idx = order[j]
        u = users[idx]
        i = items[idx]
        b = j - start
        g = gr[b]
        gbu[u] += g + scale * reg_bias * bu[u]
        gbi[i] += g + scale * reg_bias * bi[i]
        for f in range(k):
            gP[u, f] += gx[b, f] + scale * reg * P[u, f]
            gQ[i, f] += gx[b, k + f] + scale * reg * Q[i, f]


def _loss_grad(data, order, start, stop, emb, mu, head, drop, penalties, scratch, grads):
    """The batch objective ``L_b`` and its gradient for every parameter.

    Runs the same code as a training step (:func:`_batch_grads` then
    :func:`_mark_rows`, :func:`_row_grads`) and also sums the penalties, so it serves gradient
    checks; it works for float32 and float64 parameters alike. ``penalties``
    is a :class:`Penalties`, ``scratch`` comes from :func:`batch_scratch`;
    ``scratch.gflat`` receives the dense gradient and ``grads`` (an
    :class:`~latentfactors.kernels.bundles.Embeddings` of full-size arrays) the
    embedding and bias gradients (rows outside the batch are zero).
    """
    users = data.users
    items = data.items
    P, Q, bu, bi = emb
    reg, reg_bias, reg_weights = penalties
    flat, offsets, sizes, _, _ = head
    sse = _batch_grads(data, order, start, stop, emb, mu, head, drop, reg_weights, scratch)
    gP, gQ, gbu, gbi = grads
    gP[:] = 0.0
    gQ[:] = 0.0
    gbu[:] = 0.0
    gbi[:] = 0.0
    rows = RowScratch(
        gP,
        gQ,
        gbu,
        gbi,
        np.full(len(bu), -1, dtype=np.int64),
        np.full(len(bi), -1, dtype=np.int64),
        np.zeros(len(bu), dtype=np.int32),
        np.zeros(len(bi), dtype=np.int32),
    )
    _mark_rows(users, items, order, start, stop, rows, 0)
    _row_grads(data, order, start, stop, emb, reg, reg_bias, scratch, rows)
    m = stop - start
    pen = 0.0
    for j in range(start, stop):
        u = users[order[j]]
        i = items[order[j]]
        s = 0.0
        for f in range(P.shape[1]):
            s += P[u, f] * P[u, f] + Q[i, f] * Q[i, f]
        pen += reg * s + reg_bias * (bu[u] * bu[u] + bi[i] * bi[i])
    wpen = 0.0
    for layer in range(len(sizes) - 1):
        w0 = offsets[layer]
        for p in range(w0, w0 + sizes[layer] * sizes[layer + 1]):
            wpen += flat[p] * flat[p]
    return (sse + pen) / m + reg_weights * wpen


# Compiled twice: its serial build calls the serial batch gradients and never starts
# Numba's thread pool; run it through with_threads.
_loss_grad_serial, _loss_grad = serial_and_parallel(_loss_grad, parallel_flags=JIT)


# ---------------------------------------------------------------- updates


@numba.njit(inline="always", **JIT)
def _flush(a, p, floor):
    """Set ``a[p]`` to zero if it is nonzero and below ``floor`` in magnitude."""
    x = a[p]
    if x != 0.0 and abs(x) < floor:
        a[p] = 0.0


@numba.njit(**JIT)
def _adam_flat(theta, g, m, v, alpha, beta1, beta2, eps):
    """Adam step for every entry of a flat parameter array, flushing tiny results to zero."""
    for p in range(len(theta)):
        gp = g[p]
        m[p] = beta1 * m[p] + (1.0 - beta1) * gp
        _flush(m, p, TINY)
        v[p] = beta2 * v[p] + (1.0 - beta2) * gp * gp
        _flush(v, p, TINY)
        theta[p] -= alpha * m[p] / (math.sqrt(v[p]) + eps)
        _flush(theta, p, PARAM_FLOOR)


@numba.njit(**JIT)
def _sgd_flat(theta, g, lr):
    """Gradient step ``theta -= lr * g`` of a flat parameter array, flushing tiny results."""
    for p in range(len(theta)):
        theta[p] -= lr * g[p]
        _flush(theta, p, PARAM_FLOOR)


def flush_head(flat: np.ndarray) -> np.ndarray:
    """Zero, in place, the head parameters below :data:`PARAM_FLOOR` (as training does)."""
    flat[(flat != 0) & (np.abs(flat) < PARAM_FLOOR)] = 0
    return flat


@numba.njit(**JIT)
def _sgd_rows(rows, n_rows, W, gW, b, gb, lr):
    """Gradient step ``theta -= lr * g`` for the listed rows and their biases."""
    for a in range(n_rows):
        r = rows[a]
        b[r] -= lr * gb[r]
        for f in range(W.shape[1]):
            W[r, f] -= lr * gW[r, f]


# Estimated nanoseconds of one core per rating of a batch: per weight of the head
# (its forward and backward passes), per factor (the embedding rows), and per head
# parameter per batch (its update), near what benchmarks/mlp_epochs.py measures at
# ml-1m size (benchmarks/results/mlp-epochs-1M.txt). Only sizes an epoch's calls.
NS_PER_WEIGHT = 0.3
NS_PER_FACTOR = 20.0
NS_PER_PARAMETER = 2.0


#: The arguments of :func:`_mlp_epoch`, handed whole to each of its calls of
#: :func:`_mlp_batches`.
MLPEpoch = namedtuple(
    "MLPEpoch", "data order batch_size emb mu head drop moments rows scratch hyper clock"
)


def _mlp_epoch(data, order, batch_size, emb, mu, head, drop, moments, rows, scratch, hyper, clock):
    """One epoch over ``order`` in batches of ``batch_size``; parameters change in place.

    Parameters
    ----------
    data : :class:`~latentfactors.kernels.bundles.Ratings`
        int32 users and items, float32 ratings, shape (n,).
    order : int32 array, shape (n,)
        This epoch's permutation of the ratings.
    batch_size : int
    emb : :class:`~latentfactors.kernels.bundles.Embeddings`
        float32 ``P``, ``Q``, ``bu``, ``bi``.
    mu : float32
    head, drop : :class:`Head`, :class:`Dropout`
        The dense head and its dropout, as in :func:`_batch_grads`.
    moments : :class:`MLPMoments`
        Adam moments of the embeddings and of ``flat`` (unused by SGD).
    rows : :class:`~latentfactors.kernels.adam.RowScratch`
        Row-gradient scratch as in :func:`latentfactors.kernels.adam._adam_epoch`.
    scratch : :class:`BatchScratch`
        Batch scratch as in :func:`_batch_grads`, sized for ``batch_size``.
    hyper : :class:`MLPHyper`
        ``optimizer`` and ``embed_optimizer`` are :data:`SGD`, :data:`ADAM` or
        :data:`ADAM_DENSE`, for the dense head (where the two Adams are the
        same) and for the embedding rows and biases. ``lr`` steps the dense
        head, ``lr_embed`` the embedding rows and biases (with SGD rows, scaled
        by ``m / batch_size`` for a last batch of ``m`` ratings: each rating
        then moves its rows as far as in a full batch).
    clock : :class:`~latentfactors.kernels.adam.AdamClock`
        ``step0``: batches run before this epoch (Adam's step counter
        continues from it). Dense Adam only (``dense`` true exactly when
        ``embed_optimizer`` is :data:`ADAM_DENSE`): each row's last up-to-date
        step and the drift table. Rows a batch does not touch are brought up
        to date in closed form when next touched, or at the end of the epoch
        (see :mod:`latentfactors.kernels.adam`).

    Returns
    -------
    float
        Sum of squared errors, each measured before its batch's update.

    The batches run in calls of :func:`_mlp_batches` over consecutive ranges
    of about :data:`~latentfactors.kernels._config.CALL_NS` of work, so that
    Python handles an interrupt between them. A batch's step, dropout masks
    and rows follow from its index and position in ``order``, the drift table
    covers the epoch, and the running sum of squared errors is handed from call
    to call, so any cut gives bit-identical results.
    """
    sizes = head.sizes
    n_weights = int(np.sum(sizes[:-1] * sizes[1:]))
    ns_per_batch = batch_size * (
        NS_PER_WEIGHT * n_weights + NS_PER_FACTOR * emb.P.shape[1]
    ) + NS_PER_PARAMETER * len(head.flat)
    n_batches = -(-len(order) // batch_size)
    per_call = units_per_call(n_batches, ns_per_batch)
    epoch = MLPEpoch(
        data, order, batch_size, emb, mu, head, drop, moments, rows, scratch, hyper, clock
    )
    total = 0.0
    for first in range(0, n_batches, per_call):
        last = min(n_batches, first + per_call)
        total = run_kernel(_mlp_batches, epoch, first, last, total)
    if hyper.embed_optimizer == ADAM_DENSE:
        _catch_up_all(emb, moments.embed, clock, clock.step0 + n_batches, hyper.beta1, hyper.beta2)
    return total


def _mlp_batches(epoch, first, last, total):
    """Batches ``first .. last - 1`` of :func:`_mlp_epoch` (``epoch`` is an
    :class:`MLPEpoch` of its arguments); returns ``total`` plus their squared
    errors, added in order."""
    data, order, batch_size, emb, mu, head, drop, moments, rows, scratch, hyper, clock = epoch
    users = data.users
    items = data.items
    P, Q, bu, bi = emb
    flat = head.flat
    embed_moments, mW, vW = moments
    optimizer, embed_optimizer, lr, lr_embed, beta1, beta2, eps, reg, reg_bias, reg_weights = hyper
    step0 = clock.step0
    gflat = scratch.gflat
    touched_u = rows.touched_u
    touched_i = rows.touched_i
    n = len(order)
    step = step0 + first
    for batch in range(first, last):
        start = batch * batch_size
        stop = min(n, start + batch_size)
        step += 1
        nu, ni = _mark_rows(users, items, order, start, stop, rows, step)
        if embed_optimizer == ADAM_DENSE:
            # Keras semantics: the rows drifted at every step since they were last touched.
            _catch_up_pair(
                touched_u, nu, touched_i, ni, emb, embed_moments, clock, step - 1, beta1, beta2
            )
        total += _batch_grads(data, order, start, stop, emb, mu, head, drop, reg_weights, scratch)
        _row_grads(data, order, start, stop, emb, reg, reg_bias, scratch, rows)
        if optimizer == SGD:
            _sgd_flat(flat, gflat, lr)
        else:
            alpha = lr * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
            _adam_flat(flat, gflat, mW, vW, alpha, beta1, beta2, eps)
        if embed_optimizer == SGD:
            # The gradients are batch means: a short last batch takes a step in
            # proportion, so that each rating moves its rows as far as in a full one.
            lr_rows = np.float32(lr_embed * (stop - start) / min(n, batch_size))
            _sgd_rows(touched_u, nu, P, rows.gP, bu, rows.gbu, lr_rows)
            _sgd_rows(touched_i, ni, Q, rows.gQ, bi, rows.gbi, lr_rows)
            continue
        _adam_embeddings(
            nu,
            ni,
            emb,
            embed_moments,
            rows,
            lr_embed * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step),
            beta1,
            beta2,
            eps,
            clock,
            step,
        )
    return total


_mlp_batches_serial, _mlp_batches = serial_and_parallel(_mlp_batches, parallel_flags=JIT)


# ---------------------------------------------------------------- prediction


@numba.njit(**JIT)
def _predict_range(users, items, ident, emb, mu, head, clip, out, start, stop, scratch, task):
    """Predictions for pairs ``start .. stop - 1``, in the scratch rows of ``task``."""
    # The training forward pass, a chunk at a time, without dropout. An unknown id
    # (code -1) has no bias and a zero vector, the mean its L2 penalty pulls every
    # vector towards: the head still runs on the known side.
    P, Q, bu, bi = emb
    lo, hi = clip
    a = scratch.acts[task]
    d = scratch.derivs[task]
    y = scratch.ys[task]
    no_dropout = Dropout(0.0, np.uint64(0))
    for c0 in range(start, stop, CHUNK):
        c1 = min(stop, c0 + CHUNK)
        _chunk_forward(users, items, ident, c0, c1, P, Q, head, no_dropout, a, d, y)
        for r in range(c1 - c0):
            u = users[c0 + r]
            i = items[c0 + r]
            s = mu + y[r]
            if u >= 0:
                s += bu[u]
            if i >= 0:
                s += bi[i]
            out[c0 + r] = min(max(s, lo), hi)


def _predict(users, items, ident, emb, mu, head, clip, out, scratch):
    """Predictions for pairs of codes (``-1`` = unknown), clipped to ``clip = (lo, hi)``.

    ``ident`` is ``arange(n)`` (int32); ``scratch`` comes from
    :func:`predict_scratch`: task ``c`` of :data:`PREDICT_CHUNK` pairs works in
    its row ``c % rows``, so one row serves the serial twin and the parallel
    one needs a row per task. Each output depends only on its own pair.
    """
    n = len(users)
    n_tasks = (n + PREDICT_CHUNK - 1) // PREDICT_CHUNK
    rows = len(scratch.acts)
    for c in numba.prange(n_tasks):
        start = c * PREDICT_CHUNK
        stop = min(n, start + PREDICT_CHUNK)
        _predict_range(
            users, items, ident, emb, mu, head, clip, out, start, stop, scratch, c % rows
        )


_predict_serial, _predict_parallel = serial_and_parallel(_predict)


def predict_scratch(n_tasks: int, sizes: np.ndarray) -> PredictScratch:
    """Scratch for :func:`_predict_serial` (1 task) or :func:`_predict_parallel` (one per task)."""
    n_units = int(np.sum(sizes))
    return PredictScratch(
        np.zeros((n_tasks, CHUNK * n_units), np.float32),
        np.zeros((n_tasks, CHUNK * n_units), np.float32),
        np.zeros((n_tasks, CHUNK), np.float32),
    )
