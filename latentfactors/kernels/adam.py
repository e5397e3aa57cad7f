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
``eps`` against ``sqrt(v)`` during the skipped steps only, a relative error
of about ``eps / sqrt(v)``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from latentfactors.kernels._config import JIT


@numba.njit(**JIT)
def _mark_batch(
    users, items, order, start, stop, gP, gQ, gbu, gbi, stamp_u, stamp_i, touched_u, touched_i, step
):
    """List the distinct rows of a batch and zero their gradient rows."""
    k = gP.shape[1]
    nu = 0
    ni = 0
    for j in range(start, stop):
        idx = order[j]
        u = users[idx]
        i = items[idx]
        if stamp_u[u] != step:
            stamp_u[u] = step
            touched_u[nu] = u
            nu += 1
            gbu[u] = 0.0
            for f in range(k):
                gP[u, f] = 0.0
        if stamp_i[i] != step:
            stamp_i[i] = step
            touched_i[ni] = i
            ni += 1
            gbi[i] = 0.0
            for f in range(k):
                gQ[i, f] = 0.0
    return nu, ni


@numba.njit(**JIT)
def _accumulate(
    users, items, ratings, order, start, stop, P, Q, bu, bi, mu, reg, reg_bias, gP, gQ, gbu, gbi
):
    """Add the batch's gradient of ``L_b`` into zeroed rows; returns the sum of e**2."""
    k = P.shape[1]
    scale = 2.0 / (stop - start)
    loss = 0.0
    for j in range(start, stop):
        idx = order[j]
        u = users[idx]
        i = items[idx]
        dot = 0.0
        for f in range(k):
            dot += P[u, f] * Q[i, f]
        e = ratings[idx] - (mu + bu[u] + bi[i] + dot)
        loss += e * e
        c = -scale * e
        gbu[u] += c + scale * reg_bias * bu[u]
        gbi[i] += c + scale * reg_bias * bi[i]
        for f in range(k):
            gP[u, f] += c * Q[i, f] + scale * reg * P[u, f]
            gQ[i, f] += c * P[u, f] + scale * reg * Q[i, f]
    return loss


@numba.njit(**JIT)
def _batch_gradient(
    users,
    items,
    ratings,
    order,
    start,
    stop,
    P,
    Q,
    bu,
    bi,
    mu,
    reg,
    reg_bias,
    gP,
    gQ,
    gbu,
    gbi,
    stamp_u,
    stamp_i,
    touched_u,
    touched_i,
    step,
):
    """Gradient of ``L_b`` for the batch ``order[start:stop]``, into the row buffers.

    Errors and penalties all use the parameters as they were at the start of
    the batch. Rows are zeroed on first touch (``stamp_* != step``) and listed
    in ``touched_*``. Returns ``(sum of e**2, n touched users, n touched items)``.
    """
    nu, ni = _mark_batch(
        users,
        items,
        order,
        start,
        stop,
        gP,
        gQ,
        gbu,
        gbi,
        stamp_u,
        stamp_i,
        touched_u,
        touched_i,
        step,
    )
    loss = _accumulate(
        users, items, ratings, order, start, stop, P, Q, bu, bi, mu, reg, reg_bias, gP, gQ, gbu, gbi
    )
    return loss, nu, ni


@numba.njit(**JIT)
def _adam_rows(rows, n_rows, W, gW, mW, vW, b, gb, mb, vb, alpha, beta1, beta2, eps):
    """Adam step for the listed rows of a factor matrix and its bias vector."""
    k = W.shape[1]
    # Keep the arithmetic in the parameters' precision so the row loops vectorise.
    a = W.dtype.type(alpha)
    b1 = W.dtype.type(beta1)
    b2 = W.dtype.type(beta2)
    c1 = W.dtype.type(1.0) - b1
    c2 = W.dtype.type(1.0) - b2
    ep = W.dtype.type(eps)
    for j in range(n_rows):
        r = rows[j]
        g = gb[r]
        mb[r] = b1 * mb[r] + c1 * g
        vb[r] = b2 * vb[r] + c2 * g * g
        b[r] -= a * mb[r] / (np.sqrt(vb[r]) + ep)
        w = W[r]
        gw = gW[r]
        m = mW[r]
        v = vW[r]
        for f in range(k):
            g = gw[f]
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
def _catch_up(rows, n_rows, W, mW, vW, b, mb, vb, last, target, drift, first, beta1, beta2, gamma):
    """Apply the zero-gradient dense-Adam steps ``last[r]+1..target`` to the listed rows."""
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
def _catch_up_pair(
    users,
    nu,
    items,
    ni,
    P,
    Q,
    bu,
    bi,
    mP,
    vP,
    mQ,
    vQ,
    mbu,
    vbu,
    mbi,
    vbi,
    last_u,
    last_i,
    target,
    drift,
    first,
    beta1,
    beta2,
):
    """:func:`_catch_up` for the listed user rows and item rows alike."""
    gamma = beta1 / math.sqrt(beta2)
    _catch_up(users, nu, P, mP, vP, bu, mbu, vbu, last_u, target, drift, first, beta1, beta2, gamma)
    _catch_up(items, ni, Q, mQ, vQ, bi, mbi, vbi, last_i, target, drift, first, beta1, beta2, gamma)


@numba.njit(**JIT)
def _catch_up_all(
    P,
    Q,
    bu,
    bi,
    mP,
    vP,
    mQ,
    vQ,
    mbu,
    vbu,
    mbi,
    vbi,
    last_u,
    last_i,
    target,
    drift,
    first,
    beta1,
    beta2,
):
    """Bring every row up to step ``target`` (dense mode, at the end of an epoch)."""
    all_u = np.arange(len(last_u))
    all_i = np.arange(len(last_i))
    _catch_up_pair(
        all_u,
        len(all_u),
        all_i,
        len(all_i),
        P,
        Q,
        bu,
        bi,
        mP,
        vP,
        mQ,
        vQ,
        mbu,
        vbu,
        mbi,
        vbi,
        last_u,
        last_i,
        target,
        drift,
        first,
        beta1,
        beta2,
    )


@numba.njit(**JIT)
def _adam_embeddings(
    touched_u,
    nu,
    touched_i,
    ni,
    P,
    Q,
    bu,
    bi,
    gP,
    gQ,
    gbu,
    gbi,
    mP,
    vP,
    mQ,
    vQ,
    mbu,
    vbu,
    mbi,
    vbi,
    alpha,
    beta1,
    beta2,
    eps,
    dense,
    last_u,
    last_i,
    step,
):
    """Adam step of a batch's user and item rows; in dense mode, mark them up to date."""
    _adam_rows(touched_u, nu, P, gP, mP, vP, bu, gbu, mbu, vbu, alpha, beta1, beta2, eps)
    _adam_rows(touched_i, ni, Q, gQ, mQ, vQ, bi, gbi, mbi, vbi, alpha, beta1, beta2, eps)
    if dense:
        for a in range(nu):
            last_u[touched_u[a]] = step
        for a in range(ni):
            last_i[touched_i[a]] = step


@numba.njit(**JIT)
def _adam_epoch(
    users,
    items,
    ratings,
    order,
    batch_size,
    P,
    Q,
    bu,
    bi,
    mu,
    mP,
    vP,
    mQ,
    vQ,
    mbu,
    vbu,
    mbi,
    vbi,
    gP,
    gQ,
    gbu,
    gbi,
    stamp_u,
    stamp_i,
    touched_u,
    touched_i,
    lr,
    beta1,
    beta2,
    eps,
    reg,
    reg_bias,
    step0,
    dense,
    last_u,
    last_i,
    drift,
):
    """One epoch of mini-batch Adam over ``order`` in batches of ``batch_size``.

    ``step0`` is the number of batches run before this epoch; buffers ``g*``,
    ``stamp_*`` and ``touched_*`` are scratch space sized like the parameters
    (``stamp_*`` must start at -1). With ``dense``, ``last_*`` hold each row's
    last up-to-date step (all equal to ``step0`` on entry, and again on exit)
    and ``drift`` is :func:`drift_table` for steps ``step0..step0 + batches``.
    Returns the sum of squared errors, each measured before its batch's update.
    """
    n = len(order)
    total = 0.0
    step = step0
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        step += 1
        nu, ni = _mark_batch(
            users,
            items,
            order,
            start,
            stop,
            gP,
            gQ,
            gbu,
            gbi,
            stamp_u,
            stamp_i,
            touched_u,
            touched_i,
            step,
        )
        if dense:
            _catch_up_pair(
                touched_u,
                nu,
                touched_i,
                ni,
                P,
                Q,
                bu,
                bi,
                mP,
                vP,
                mQ,
                vQ,
                mbu,
                vbu,
                mbi,
                vbi,
                last_u,
                last_i,
                step - 1,
                drift,
                step0,
                beta1,
                beta2,
            )
        total += _accumulate(
            users,
            items,
            ratings,
            order,
            start,
            stop,
            P,
            Q,
            bu,
            bi,
            mu,
            reg,
            reg_bias,
            gP,
            gQ,
            gbu,
            gbi,
        )
        alpha = lr * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
        _adam_embeddings(
            touched_u,
            nu,
            touched_i,
            ni,
            P,
            Q,
            bu,
            bi,
            gP,
            gQ,
            gbu,
            gbi,
            mP,
            vP,
            mQ,
            vQ,
            mbu,
            vbu,
            mbi,
            vbi,
            alpha,
            beta1,
            beta2,
            eps,
            dense,
            last_u,
            last_i,
            step,
        )
    if dense:
        _catch_up_all(
            P,
            Q,
            bu,
            bi,
            mP,
            vP,
            mQ,
            vQ,
            mbu,
            vbu,
            mbi,
            vbi,
            last_u,
            last_i,
            step,
            drift,
            step0,
            beta1,
            beta2,
        )
    return total
