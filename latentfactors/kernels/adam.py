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
"""

from __future__ import annotations

import math

import numba
import numpy as np

from latentfactors.kernels._config import JIT


@numba.njit(**JIT)
def _batch_gradient(
    users, items, ratings, order, start, stop, P, Q, bu, bi, mu, reg, reg_bias,
    gP, gQ, gbu, gbi, stamp_u, stamp_i, touched_u, touched_i, step,
):
    """Gradient of ``L_b`` for the batch ``order[start:stop]``, into the row buffers.

    Errors and penalties all use the parameters as they were at the start of the batch.

    Rows are zeroed on first touch (``stamp_* != step``) and listed in
    ``touched_*``. Returns ``(sum of e**2, n touched users, n touched items)``.
    """
    k = P.shape[1]
    m = stop - start
    scale = 2.0 / m
    nu = 0
    ni = 0
    loss = 0.0
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
    return loss, nu, ni


@numba.njit(**JIT)
def _adam_rows(rows, n_rows, W, gW, mW, vW, b, gb, mb, vb, alpha, beta1, beta2, eps):
    """Adam step for the listed rows of a factor matrix and its bias vector."""
    k = W.shape[1]
    for a in range(n_rows):
        r = rows[a]
        g = gb[r]
        mb[r] = beta1 * mb[r] + (1.0 - beta1) * g
        vb[r] = beta2 * vb[r] + (1.0 - beta2) * g * g
        b[r] -= alpha * mb[r] / (math.sqrt(vb[r]) + eps)
        for f in range(k):
            g = gW[r, f]
            mW[r, f] = beta1 * mW[r, f] + (1.0 - beta1) * g
            vW[r, f] = beta2 * vW[r, f] + (1.0 - beta2) * g * g
            W[r, f] -= alpha * mW[r, f] / (math.sqrt(vW[r, f]) + eps)


@numba.njit(**JIT)
def _zero_rows(rows, n_rows, gW, gb):
    for a in range(n_rows):
        r = rows[a]
        gb[r] = 0.0
        for f in range(gW.shape[1]):
            gW[r, f] = 0.0


@numba.njit(**JIT)
def _adam_epoch(
    users, items, ratings, order, batch_size, P, Q, bu, bi, mu,
    mP, vP, mQ, vQ, mbu, vbu, mbi, vbi,
    gP, gQ, gbu, gbi, stamp_u, stamp_i, touched_u, touched_i,
    lr, beta1, beta2, eps, reg, reg_bias, step0, dense, all_u, all_i,
):
    """One epoch of lazy mini-batch Adam over ``order`` in batches of ``batch_size``.

    ``step0`` is the number of batches run before this epoch; buffers ``g*``,
    ``stamp_*`` and ``touched_*`` are scratch space sized like the parameters
    (``stamp_*`` must start at -1). Returns the sum of squared errors, each
    measured before its batch's update.
    """
    n = len(order)
    total = 0.0
    step = step0
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        step += 1
        loss, nu, ni = _batch_gradient(
            users, items, ratings, order, start, stop, P, Q, bu, bi, mu, reg, reg_bias,
            gP, gQ, gbu, gbi, stamp_u, stamp_i, touched_u, touched_i, step,
        )
        total += loss
        alpha = lr * math.sqrt(1.0 - beta2**step) / (1.0 - beta1**step)
        if dense:
            # Keras semantics: every row's moments decay and every row moves.
            _adam_rows(all_u, len(all_u), P, gP, mP, vP, bu, gbu, mbu, vbu,
                       alpha, beta1, beta2, eps)
            _adam_rows(all_i, len(all_i), Q, gQ, mQ, vQ, bi, gbi, mbi, vbi,
                       alpha, beta1, beta2, eps)
            _zero_rows(touched_u, nu, gP, gbu)
            _zero_rows(touched_i, ni, gQ, gbi)
        else:
            _adam_rows(touched_u, nu, P, gP, mP, vP, bu, gbu, mbu, vbu,
                       alpha, beta1, beta2, eps)
            _adam_rows(touched_i, ni, Q, gQ, mQ, vQ, bi, gbi, mbi, vbi,
                       alpha, beta1, beta2, eps)
    return total
