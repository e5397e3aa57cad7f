"""Mini-batch Adam for biased matrix factorisation, with lazy row updates.

For a batch ``b`` of ``m`` ratings the objective is the same per-rating
objective that SGD follows, averaged over the batch:

    L_b = (1/m) sum_{k in b} [ e_k**2 + reg * (|P[u_k]|**2 + |Q[i_k]|**2)
                                      + reg_bias * (bu[u_k]**2 + bi[i_k]**2) ]

where ``e_k = r_k - (mu + bu[u_k] + bi[i_k] + P[u_k] . Q[i_k])``. A row is
penalised once per rating it appears in, so ``reg`` means the same for both
optimizers and frequent users and items are held back as they are in SGD.
Only those rows get a gradient, and only they are updated ("lazy" Adam, as
TensorFlow's LazyAdam and PyTorch's SparseAdam): with the global step ``t``
(batches so far, from 1),

    m     = beta1 * m + (1 - beta1) * g
    v     = beta2 * v + (1 - beta2) * g**2
    alpha = lr * sqrt(1 - beta2**t) / (1 - beta1**t)
    theta = theta - alpha * m / (sqrt(v) + eps)

Rows not in the batch keep their parameters and moments unchanged, so an
epoch costs O(ratings x factors) whatever the number of users and items.

Dense mode reproduces Adam as Keras applies it to embeddings: at every step
every row's moments decay and every row moves by ``alpha_t * m / (sqrt(v) +
eps)``, gradient or not. Doing that literally costs O(users + items) per
batch, so it is done lazily: a row remembers the last step it was brought up
to date, and when a batch next touches it (or the epoch ends) the skipped
steps are applied at once. The moments decay exactly (``m *= beta1**gap``,
``v *= beta2**gap``); the parameter moves by

    m / sqrt(v) * sum_{j=s+1}^{t} alpha_j * gamma**(j - s),   gamma = beta1 / sqrt(beta2)

read off a table of discounted sums (:func:`drift_table`). This neglects
``eps`` against ``sqrt(v)`` during the skipped steps only. Where a row's
gradients have been large against ``eps`` that is exact to float precision;
a component whose gradients were tiny (``sqrt(v)`` within a few orders of
``eps``) drifts further than stepping every row would move it. On a 300 x
200 test problem with Keras's ``eps = 1e-7`` parameters end an epoch within
0.005 of stepping every row (and within 1e-5 with ``eps = 1e-10``); summing
such steps one by one changed the Keras dot-product preset's test MSE by
less than 0.001 at the price of work for every skipped step of every row,
so it is not done.

An epoch runs as calls of :func:`_adam_batches` over consecutive batches, about
a quarter second of work each, so that Ctrl-C takes effect between them
(Numba code cannot be interrupted). A batch's step follows from its index and
the sum of squared errors is handed from call to call, so the cut changes no bit.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numba
import numpy as np

from latentfactors.kernels._config import JIT, run_kernel, serial_and_parallel, units_per_call
from latentfactors.kernels._prefetch import aligned_empty, prefetch_at, prefetch_row
from latentfactors.kernels.bundles import Embeddings

# Rows and ratings are fetched this many steps ahead of their use (a prefetch
# changes no value; see kernels/_prefetch.py).
AHEAD = 8

#: First and second moments, shaped like ``P, P, Q, Q, bu, bu, bi, bi``.
Moments = namedtuple("Moments", "mP vP mQ vQ mbu vbu mbi vbi")

#: What a batch works in, sized like the rows: gradient rows ``gP, gQ, gbu, gbi``
#: (zero between batches), ``stamp_u``, ``stamp_i`` (int64, the last step that
#: touched each row, starting at -1) and ``touched_u``, ``touched_i`` (int32, the
#: rows a batch touches, listed).
RowScratch = namedtuple("RowScratch", "gP gQ gbu gbi stamp_u stamp_i touched_u touched_i")

#: Adam's float32 scalars: step ``lr``, ``beta1``, ``beta2``, ``eps``, and the
#: penalties ``reg`` (factors) and ``reg_bias`` (biases).
AdamHyper = namedtuple("AdamHyper", "lr beta1 beta2 eps reg reg_bias")

#: Where the step count stands: ``step0`` batches ran before this epoch. With
#: ``dense`` (Keras's Adam), ``last_u``, ``last_i`` (int64) hold each row's last
#: up-to-date step, all ``step0`` on entry and on exit, and ``drift`` is
#: :func:`drift_table` for steps ``step0 .. step0 + batches`` (unused otherwise).
AdamClock = namedtuple("AdamClock", "step0 dense last_u last_i drift")

# One side (users or items) of the parameters with its moments: factor rows W,
# biases b. Built inside the kernels, so that a helper serves both sides.
_Side = namedtuple("_Side", "W mW vW b mb vb")


def adam_records(W: np.ndarray, b: np.ndarray):
    """Adam's state for factor rows ``W`` and biases ``b``, interleaved by row.

    Returns ``(W', m, v, g)`` and ``(b', mb, vb, gb)``: views of one array of
    shape ``(n, 4, k)`` and one of shape ``(n, 4)``, so that a row's
    parameters, moments and gradient lie side by side in memory. ``W'`` and
    ``b'`` start as copies of ``W`` and ``b``; the rest start at zero. An Adam
    step reads and writes all four of a row, at random rows: side by side they
    share a memory page and the prefetcher's stream, where four separate arrays
    cost four page lookups and four distant lines (``python
    benchmarks/adam_records.py``, ``benchmarks/results/sgd-adam-layout.txt``).
    The price is one extra copy of the parameters while training.
    """
    rows = aligned_empty((W.shape[0], 4, W.shape[1]), W.dtype)
    rows.fill(0)
    rows[:, 0] = W
    bias = aligned_empty((len(b), 4), b.dtype)
    bias.fill(0)
    bias[:, 0] = b
    return tuple(rows[:, j] for j in range(4)), tuple(bias[:, j] for j in range(4))


def adam_buffers(P, Q, bu, bi, records: bool = False):
    """``(params, moments, scratch)``: what Adam on ``P, Q, bu, bi`` trains in.

    With ``records``, the parameters are copies held in :func:`adam_records`
    next to their moments and gradients (write them back after training);
    without, they are ``P, Q, bu, bi`` themselves and the moments and
    gradients are separate zeroed arrays. Returns :class:`Embeddings`,
    :class:`Moments` and :class:`RowScratch`.
    """
    n_users, n_items = len(bu), len(bi)
    if records:
        (Pw, mP, vP, gP), (buw, mbu, vbu, gbu) = adam_records(P, bu)
        (Qw, mQ, vQ, gQ), (biw, mbi, vbi, gbi) = adam_records(Q, bi)
        params = Embeddings(Pw, Qw, buw, biw)
        moments = Moments(mP, vP, mQ, vQ, mbu, vbu, mbi, vbi)
    else:
        params = Embeddings(P, Q, bu, bi)
        moments = Moments(*(np.zeros_like(a) for a in (P, P, Q, Q, bu, bu, bi, bi)))
        gP, gQ, gbu, gbi = (np.zeros_like(a) for a in (P, Q, bu, bi))
    scratch = RowScratch(
        gP,
        gQ,
        gbu,
        gbi,
        np.full(n_users, -1, np.int64),
        np.full(n_items, -1, np.int64),
        np.zeros(n_users, np.int32),
        np.zeros(n_items, np.int32),
    )
    return params, moments, scratch


@numba.njit(**JIT)
def _sides(emb, moments):
    """The user side and the item side of the parameters with their moments."""
    P, Q, bu, bi = emb
    mP, vP, mQ, vQ, mbu, vbu, mbi, vbi = moments
    return _Side(P, mP, vP, bu, mbu, vbu), _Side(Q, mQ, vQ, bi, mbi, vbi)


@numba.njit(**JIT)
def _list_rows(users, items, order, start, stop, scratch, step):
    """List the distinct rows of a batch in ``scratch.touched_*``; returns how many of each."""
    stamp_u = scratch.stamp_u
    stamp_i = scratch.stamp_i
    touched_u = scratch.touched_u
    touched_i = scratch.touched_i
    nu = 0
    ni = 0
    for j in range(start, stop):
        # The codes sit at random places: fetch them well ahead, and the stamps
        # of rows whose codes are (by then) in cache a little ahead.
        if j + 2 * AHEAD < stop:
            ahead = order[j + 2 * AHEAD]
            prefetch_at(users, ahead)
            prefetch_at(items, ahead)
        if j + AHEAD < stop:
            ahead = order[j + AHEAD]
            prefetch_at(stamp_u, users[ahead])
            prefetch_at(stamp_i, items[ahead])
        idx = order[j]
        u = users[idx]
        i = items[idx]
        if stamp_u[u] != step:
            stamp_u[u] = step
            touched_u[nu] = u
            nu += 1
        if stamp_i[i] != step:
            stamp_i[i] = step
            touched_i[ni] = i
            ni += 1
    return nu, ni


@numba.njit(**JIT)
def _mark_batch(users, items, order, start, stop, scratch, step):
    """List the distinct rows of a batch and zero their gradient rows."""
    nu, ni = _list_rows(users, items, order, start, stop, scratch, step)
    _zero_rows(scratch.touched_u, nu, scratch.gP, scratch.gbu)
    _zero_rows(scratch.touched_i, ni, scratch.gQ, scratch.gbi)
    return nu, ni


@numba.njit(**JIT)
def _batch_gradient(data, order, start, stop, emb, mu, reg, reg_bias, scratch, step):
    """Gradient of ``L_b`` for the batch ``order[start:stop]``, into the row buffers.

    The serial composition of what :func:`_adam_epoch` runs in parallel, for
    :class:`~latentfactors.kernels.bundles.Ratings` ``data`` and parameters
    ``emb``. Errors and penalties all use the parameters as they were at the
    start of the batch. Rows are zeroed on first touch (``stamp_* != step``)
    and listed in ``touched_*`` (``scratch`` is a :class:`RowScratch`).
    Returns ``(sum of e**2, n touched users, n touched items)``.
    """
    nu, ni = _mark_batch(data.users, data.items, order, start, stop, scratch, step)
    m = stop - start
    c = np.empty(m)
    e2 = np.empty(m)
    _batch_errors(data, order, start, 0, m, m, emb, mu, c, e2)
    _accumulate_owned(data, order, start, stop, emb, reg, reg_bias, c, scratch, 0, 1)
    loss = 0.0
    for j in range(m):
        loss += e2[j]
    return loss, nu, ni


@numba.njit(**JIT)
def _batch_errors(data, order, start, lo, hi, m, emb, mu, c, e2):
    """For positions ``lo..hi-1`` of a batch of ``m``: ``c[j] = -2 e / m``, ``e2[j] = e**2``."""
    users, items, ratings = data
    P, Q, bu, bi = emb
    k = P.shape[1]
    scale = 2.0 / m
    for j in range(lo, hi):
        if j + AHEAD < hi:
            ahead = order[start + j + AHEAD]
            prefetch_at(ratings, ahead)
            prefetch_row(P, users[ahead])
            prefetch_row(Q, items[ahead])
        idx = order[start + j]
        u = users[idx]
        i = items[idx]
        dot = 0.0
        for f in range(k):
            dot += P[u, f] * Q[i, f]
        e = ratings[idx] - (mu + bu[u] + bi[i] + dot)
        e2[j] = e * e
        c[j] = -scale * e


@numba.njit(**JIT)
def _accumulate_owned(data, order, start, stop, emb, reg, reg_bias, c, scratch, part, parts):
    """Add the batch's gradient into the zeroed rows with ``(row >> 4) % parts == part``.

    Rows go to parts in runs of 16, so that two threads never write the same
    cache line of a bias vector. Every row is summed in batch order whatever
    ``parts`` is, so splitting the rows between threads leaves the result
    bit-identical.
    """
    users = data.users
    items = data.items
    P, Q, bu, bi = emb
    gP = scratch.gP
    gQ = scratch.gQ
    gbu = scratch.gbu
    gbi = scratch.gbi
    k = P.shape[1]
    m = stop - start
    scale = 2.0 / m
    for j in range(start, stop):
        if j + AHEAD < stop:
            ahead = order[j + AHEAD]
            if (users[ahead] >> 4) % parts == part:
                prefetch_row(gP, users[ahead])
            if (items[ahead] >> 4) % parts == part:
                prefetch_row(gQ, items[ahead])
        idx = order[j]
        u = users[idx]
        i = items[idx]
        cj = c[j - start]
        if (u >> 4) % parts == part:
            gbu[u] += cj + scale * reg_bias * bu[u]
            for f in range(k):
                gP[u, f] += cj * Q[i, f] + scale * reg * P[u, f]
        if (i >> 4) % parts == part:
            gbi[i] += cj + scale * reg_bias * bi[i]
            for f in range(k):
                gQ[i, f] += cj * P[u, f] + scale * reg * Q[i, f]


@numba.njit(**JIT)
def _adam_rows(rows, n_rows, side, gW, gb, alpha, beta1, beta2, eps):
    """Adam step for the listed rows of one side's factor matrix and bias vector.

    The gradient rows ``gW``, ``gb`` it consumes are left zero, ready for the next batch.
    """
    W, mW, vW, b, mb, vb = side
    k = W.shape[1]
    # Keep the arithmetic in the parameters' precision so the row loops vectorise.
    a = W.dtype.type(alpha)
    b1 = W.dtype.type(beta1)
    b2 = W.dtype.type(beta2)
    c1 = W.dtype.type(1.0) - b1
    c2 = W.dtype.type(1.0) - b2
    ep = W.dtype.type(eps)
    for j in range(n_rows):
        if j + AHEAD < n_rows:  # four rows per parameter, at random places
            ahead = rows[j + AHEAD]
            prefetch_row(W, ahead)
            prefetch_row(gW, ahead)
            prefetch_row(mW, ahead)
            prefetch_row(vW, ahead)
        r = rows[j]
        g = gb[r]
        mb[r] = b1 * mb[r] + c1 * g
        vb[r] = b2 * vb[r] + c2 * g * g
        b[r] -= a * mb[r] / (np.sqrt(vb[r]) + ep)
        w = W[r]
        gw = gW[r]
        m = mW[r]
        v = vW[r]
        gb[r] = 0.0
        for f in range(k):
            g = gw[f]
            gw[f] = 0.0
            m[f] = b1 * m[f] + c1 * g
            v[f] = b2 * v[f] + c2 * g * g
            w[f] -= a * m[f] / (np.sqrt(v[f]) + ep)


@numba.njit(**JIT)
def _zero_rows(rows, n_rows, gW, gb):
    """Zero the listed gradient rows."""
    for a in range(n_rows):
        r = rows[a]
        gb[r] = 0.0
        for f in range(gW.shape[1]):
            gW[r, f] = 0.0


def drift_table(lr, beta1, beta2, first, last, tail=800):
    """``H[s - first] = sum_{j>s} alpha_j * gamma**(j - s)`` for steps ``first..last``.

    Built backwards from ``last + tail`` (``gamma**tail`` is below 1e-30),
    in float64.
    """
    gamma = beta1 / math.sqrt(beta2)
    steps = np.arange(first + 1, last + tail + 1, dtype=np.float64)
    alpha = lr * np.sqrt(1.0 - beta2**steps) / (1.0 - beta1**steps)
    table = np.zeros(last + tail - first + 1)
    _discounted_tail(alpha, gamma, table)
    return table[: last - first + 1]


@numba.njit(**JIT)
def _discounted_tail(alpha, gamma, table):
    """``table[s] = gamma * (alpha[s] + table[s + 1])``, from the end (one pass per epoch)."""
    for s in range(len(table) - 2, -1, -1):
        table[s] = gamma * (alpha[s] + table[s + 1])


@numba.njit(**JIT)
def _catch_up(rows, n_rows, side, last, target, drift, first, beta1, beta2, gamma):
    """Apply the zero-gradient dense-Adam steps ``last[r]+1..target`` to the listed rows."""
    W, mW, vW, b, mb, vb = side
    k = W.shape[1]
    for a in range(n_rows):
        r = rows[a]
        gap = target - last[r]
        if gap <= 0:
            continue
        d = drift[last[r] - first] - gamma**gap * drift[target - first]
        dm = beta1**gap
        dv = beta2**gap
        if vb[r] > 0.0:
            b[r] -= d * mb[r] / math.sqrt(vb[r])
        mb[r] *= dm
        vb[r] *= dv
        for f in range(k):
            if vW[r, f] > 0.0:
                W[r, f] -= d * mW[r, f] / math.sqrt(vW[r, f])
            mW[r, f] *= dm
            vW[r, f] *= dv
        last[r] = target


@numba.njit(**JIT)
def _catch_up_pair(users, nu, items, ni, emb, moments, clock, target, beta1, beta2):
    """:func:`_catch_up` for the listed user rows and item rows alike."""
    gamma = beta1 / math.sqrt(beta2)
    su, si = _sides(emb, moments)
    step0 = clock.step0
    drift = clock.drift
    _catch_up(users, nu, su, clock.last_u, target, drift, step0, beta1, beta2, gamma)
    _catch_up(items, ni, si, clock.last_i, target, drift, step0, beta1, beta2, gamma)


@numba.njit(**JIT)
def _catch_up_all(emb, moments, clock, target, beta1, beta2):
    """Bring every row up to step ``target`` (dense mode, at the end of an epoch)."""
    # int32, as the batches' touched-row lists are: one compilation of _catch_up_pair.
    all_u = np.arange(len(clock.last_u)).astype(np.int32)
    all_i = np.arange(len(clock.last_i)).astype(np.int32)
    _catch_up_pair(all_u, len(all_u), all_i, len(all_i), emb, moments, clock, target, beta1, beta2)


@numba.njit(**JIT)
def _adam_embeddings(nu, ni, emb, moments, scratch, alpha, beta1, beta2, eps, clock, step):
    """Adam step of a batch's touched user and item rows; in dense mode, mark them up to date."""
    su, si = _sides(emb, moments)
    touched_u = scratch.touched_u
    touched_i = scratch.touched_i
    _adam_rows(touched_u, nu, su, scratch.gP, scratch.gbu, alpha, beta1, beta2, eps)
    _adam_rows(touched_i, ni, si, scratch.gQ, scratch.gbi, alpha, beta1, beta2, eps)
    if clock.dense:
        last_u = clock.last_u
        last_i = clock.last_i
        for a in range(nu):
            last_u[touched_u[a]] = step
        for a in range(ni):
            last_i[touched_i[a]] = step


# Ratings or rows per parallel task within a batch. Tasks are independent, so
# the size only sets how work is shared, never a result.
TASK = 64


# Estimated nanoseconds per rating of a lazy Adam batch, on one core: the errors,
# the gradient rows and the Adam step of its rows, near what
# benchmarks/results/sgd-adam-layout.txt measured. Only sizes the calls of an epoch.
ADAM_NS_PER_RATING = 150
ADAM_NS_PER_FACTOR = 15


def _adam_epoch(data, order, batch_size, emb, mu, moments, scratch, hyper, clock, parts):
    """One epoch of mini-batch Adam over ``order`` in batches of ``batch_size``.

    Parameters
    ----------
    data : :class:`~latentfactors.kernels.bundles.Ratings`
    order : int32 array
        This epoch's order of the ratings.
    batch_size : int
    emb : :class:`~latentfactors.kernels.bundles.Embeddings`
        The parameters, updated in place.
    mu : float32
    moments : :class:`Moments`
    scratch : :class:`RowScratch`
        Its gradient rows must be zero on entry (they are zero again on exit).
    hyper : :class:`AdamHyper`
    clock : :class:`AdamClock`
    parts : int
        Parts the gradient's rows are split into (one per thread).

    Returns
    -------
    float
        The sum of squared errors, each measured before its batch's update.

    The batches run in calls of :func:`_adam_batches` over consecutive ranges
    of about :data:`~latentfactors.kernels._config.CALL_NS` of work, so that
    Python handles an interrupt between them. Everything a batch needs follows
    from its index (its step is ``clock.step0 + index + 1``; the drift table
    covers the epoch) and the running sum of squared errors is handed from
    call to call, so any cut gives bit-identical results. An interrupt
    between calls leaves the parameters as the batches run so far left them
    (dense mode: rows not yet brought up to date).
    """
    n_batches = -(-len(order) // batch_size)
    k = emb.P.shape[1]
    per_call = units_per_call(n_batches, batch_size * (ADAM_NS_PER_RATING + ADAM_NS_PER_FACTOR * k))
    total = 0.0
    for first in range(0, n_batches, per_call):
        last = min(n_batches, first + per_call)
        total = run_kernel(
            _adam_batches,
            data,
            order,
            batch_size,
            emb,
            mu,
            moments,
            scratch,
            hyper,
            clock,
            parts,
            first,
            last,
            total,
        )
    if clock.dense:
        _catch_up_all(emb, moments, clock, clock.step0 + n_batches, hyper.beta1, hyper.beta2)
    return total


def _adam_batches(
    data, order, batch_size, emb, mu, moments, scratch, hyper, clock, parts, first, last, total
):
    """Batches ``first .. last - 1`` of :func:`_adam_epoch`; returns ``total`` plus their
    squared errors, added in order.

    Each batch runs in three parallel passes: the errors (by ratings), the
    gradient (task ``t`` of ``parts``, one per thread, sums the rows with
    ``(row >> 4) % parts == t``, each in batch order) and the Adam step (by rows).
    Nothing is summed in an order that depends on ``parts`` or the thread
    count, so the result is bit-identical for any.
    """
    lr, beta1, beta2, eps, reg, reg_bias = hyper
    step0, dense, last_u, last_i, drift = clock
    gP, gQ, gbu, gbi, _, _, touched_u, touched_i = scratch
    P, Q, bu, bi = emb
    mP, vP, mQ, vQ, mbu, vbu, mbi, vbi = moments
    # Built here, not by _sides: the parallel loops need tuples they can see built.
    su = _Side(P, mP, vP, bu, mbu, vbu)
    si = _Side(Q, mQ, vQ, bi, mbi, vbi)
    users = data.users
    items = data.items
    n = len(order)
    c = np.empty(batch_size)
    e2 = np.empty(batch_size)
    gamma = beta1 / math.sqrt(beta2)
    step = step0 + first
    for batch in range(first, last):
        start = batch * batch_size
        stop = min(n, start + batch_size)
        m = stop - start
        step += 1
        nu, ni = _list_rows(users, items, order, start, stop, scratch, step)
        tu = (nu + TASK - 1) // TASK
        ti = (ni + TASK - 1) // TASK
        if dense:
            for t in numba.prange(tu + ti):
                if t < tu:
                    lo = t * TASK
                    hi = min(nu, lo + TASK)
                    _catch_up(
                        touched_u[lo:hi],
                        hi - lo,
                        su,
                        last_u,
                        step - 1,
                        drift,
                        step0,
                        beta1,
                        beta2,
                        gamma,
                    )
                else:
                    lo = (t - tu) * TASK
                    hi = min(ni, lo + TASK)
                    _catch_up(
                        touched_i[lo:hi],
                        hi - lo,
                        si,
                        last_i,
                        step - 1,
                        drift,
                        step0,
                        beta1,
                        beta2,
                        gamma,
                    )
        for t in numba.prange((m + TASK - 1) // TASK):
            lo = t * TASK
            _batch_errors(data, order, start, lo, min(m, lo + TASK), m, emb, mu, c, e2)
        for p in numba.prange(parts):
            _accumulate_owned(data, order, start, stop, emb, reg, reg_bias, c, scratch, p, parts)
        for j in range(m):
            total += e2[j]
        alpha = lr * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
        for t in numba.prange(tu + ti):
            if t < tu:
                lo = t * TASK
                hi = min(nu, lo + TASK)
                _adam_rows(touched_u[lo:hi], hi - lo, su, gP, gbu, alpha, beta1, beta2, eps)
                if dense:
                    for a in range(lo, hi):
                        last_u[touched_u[a]] = step
            else:
                lo = (t - tu) * TASK
                hi = min(ni, lo + TASK)
                _adam_rows(touched_i[lo:hi], hi - lo, si, gQ, gbi, alpha, beta1, beta2, eps)
                if dense:
                    for a in range(lo, hi):
                        last_i[touched_i[a]] = step
    return total


_adam_batches_serial, _adam_batches = serial_and_parallel(_adam_batches)
