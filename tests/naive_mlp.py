"""Slow, obvious NumPy twins of the MLPMF kernels (float64, one rating at a time).

They follow :mod:`latentfactors.kernels.mlp` update for update, in the same
order, so a kernel and its twin must agree to float tolerance.
"""

from __future__ import annotations

import math

import numpy as np

MASK64 = (1 << 64) - 1


def mix64(x: int) -> int:
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def keep(seed: int, position: int, unit: int, dropout: float) -> bool:
    """The dropout mask: unit ``unit`` (global index) of the rating at ``position``."""
    h = mix64(int(seed) ^ mix64((position * 0x9E3779B97F4A7C15 + unit) & MASK64))
    return (h >> 11) / 2.0**53 >= dropout


def activate(z, activation):
    if activation == "relu":
        return np.maximum(z, 0.0), (z > 0).astype(np.float64)
    if activation == "tanh":
        y = np.tanh(z)
        return y, 1.0 - y * y
    return z.copy(), np.ones_like(z)


def head(x, weights, intercepts, activation, dropout=0.0, seed=0, position=0):
    """Forward pass; returns the output and each layer's (input, d a / d z) for backward."""
    cache = []
    a = x
    unit0 = len(x)
    for w, b in zip(weights[:-1], intercepts[:-1]):
        z = a @ w + b
        out, deriv = activate(z, activation)
        if dropout > 0:
            mask = np.array(
                [keep(seed, position, unit0 + j, dropout) for j in range(len(z))], dtype=float
            ) / (1.0 - dropout)
            out = out * mask
            deriv = deriv * mask
        cache.append((a, deriv))
        a = out
        unit0 += len(z)
    cache.append((a, None))
    return float(a @ weights[-1][:, 0] + intercepts[-1][0]), cache


def head_backward(g, weights, cache):
    """Gradients of ``g * head`` for each weight and intercept, and for the input."""
    gw = [None] * len(weights)
    gb = [None] * len(weights)
    a_last, _ = cache[-1]
    gw[-1] = g * a_last[:, None]
    gb[-1] = np.array([g])
    delta = g * weights[-1][:, 0]
    for layer in range(len(weights) - 2, -1, -1):
        a_in, deriv = cache[layer]
        delta = delta * deriv
        gw[layer] = np.outer(a_in, delta)
        gb[layer] = delta.copy()
        delta = weights[layer] @ delta
    return gw, gb, delta


def predict(u, i, P, Q, bu, bi, mu, weights, intercepts, activation):
    x = np.concatenate([P[u], Q[i]])
    return mu + bu[u] + bi[i] + head(x, weights, intercepts, activation)[0]


def adam(theta, g, m, v, alpha, beta1=0.9, beta2=0.999, eps=1e-7):
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * g * g
    theta -= alpha * m / (np.sqrt(v) + eps)


def naive_epoch(
    users,
    items,
    ratings,
    order,
    batch_size,
    params,
    moments,
    *,
    mu,
    activation,
    dropout,
    seed,
    optimizer,
    lr,
    lr_embed,
    reg,
    reg_bias,
    reg_weights,
    step0,
    embed_optimizer=None,
):
    """One epoch, batch by batch, in ``order``; ``params`` and ``moments`` change in place.

    ``optimizer`` steps the dense head, ``embed_optimizer`` (default: the same)
    the embedding rows and biases.

    ``params`` holds float64 ``P, Q, bu, bi`` and lists ``weights``, ``intercepts``;
    ``moments`` holds ``m``/``v`` arrays shaped like each (name + "_m", name + "_v").
    Returns the sum of squared errors, each before its batch's update.
    """
    P, Q, bu, bi = params["P"], params["Q"], params["bu"], params["bi"]
    W, B = params["weights"], params["intercepts"]
    k = P.shape[1]
    n = len(order)
    total = 0.0
    step = step0
    for start in range(0, n, batch_size):
        batch = order[start : start + batch_size]
        m = len(batch)
        step += 1
        gP, gQ = np.zeros_like(P), np.zeros_like(Q)
        gbu, gbi = np.zeros_like(bu), np.zeros_like(bi)
        gW = [np.zeros_like(w) for w in W]
        gB = [np.zeros_like(b) for b in B]
        for offset, idx in enumerate(batch):
            u, i = users[idx], items[idx]
            x = np.concatenate([P[u], Q[i]])
            y, cache = head(x, W, B, activation, dropout, seed, start + offset)
            e = ratings[idx] - (mu + bu[u] + bi[i] + y)
            total += e * e
            g = -2.0 * e / m
            gw, gb, gx = head_backward(g, W, cache)
            for layer in range(len(W)):
                gW[layer] += gw[layer]
                gB[layer] += gb[layer]
            gP[u] += gx[:k] + 2.0 / m * reg * P[u]
            gQ[i] += gx[k:] + 2.0 / m * reg * Q[i]
            gbu[u] += g + 2.0 / m * reg_bias * bu[u]
            gbi[i] += g + 2.0 / m * reg_bias * bi[i]
        for layer in range(len(W)):
            gW[layer] += 2.0 * reg_weights * W[layer]
        rows_u = np.unique(users[batch])
        rows_i = np.unique(items[batch])
        correction = math.sqrt(1 - 0.999**step) / (1 - 0.9**step)
        if optimizer == "sgd":
            for arr, grad in zip([*W, *B], [*gW, *gB]):
                arr -= lr * grad
        else:
            for layer in range(len(W)):
                alpha = lr * correction
                adam(W[layer], gW[layer], moments["W_m"][layer], moments["W_v"][layer], alpha)
                adam(B[layer], gB[layer], moments["B_m"][layer], moments["B_v"][layer], alpha)
        embed_optimizer = embed_optimizer or optimizer
        if embed_optimizer == "sgd":  # a short last batch steps in proportion
            for arr, grad in zip([P, Q, bu, bi], [gP, gQ, gbu, gbi]):
                arr -= lr_embed * m / min(n, batch_size) * grad
            continue
        alpha_embed = lr_embed * correction
        if embed_optimizer == "adam-dense":
            rows_u = np.arange(len(bu))
            rows_i = np.arange(len(bi))
        for name, arr, grad, rows in (
            ("P", P, gP, rows_u),
            ("Q", Q, gQ, rows_i),
            ("bu", bu, gbu, rows_u),
            ("bi", bi, gbi, rows_i),
        ):
            sub, sub_m, sub_v = arr[rows], moments[name + "_m"][rows], moments[name + "_v"][rows]
            adam(sub, grad[rows], sub_m, sub_v, alpha_embed)
            arr[rows], moments[name + "_m"][rows], moments[name + "_v"][rows] = sub, sub_m, sub_v
    return total


def naive_objective(
    users,
    items,
    ratings,
    batch,
    params,
    *,
    mu,
    activation,
    dropout,
    seed,
    start,
    reg,
    reg_bias,
    reg_weights,
):
    """``L_b`` of one batch (positions ``start ..`` in the epoch), the obvious way."""
    P, Q, bu, bi = params["P"], params["Q"], params["bu"], params["bi"]
    W, B = params["weights"], params["intercepts"]
    m = len(batch)
    total = 0.0
    for offset, idx in enumerate(batch):
        u, i = users[idx], items[idx]
        y = head(np.concatenate([P[u], Q[i]]), W, B, activation, dropout, seed, start + offset)[0]
        e = ratings[idx] - (mu + bu[u] + bi[i] + y)
        total += e * e + reg * (P[u] @ P[u] + Q[i] @ Q[i]) + reg_bias * (bu[u] ** 2 + bi[i] ** 2)
    return total / m + reg_weights * sum(float((w * w).sum()) for w in W)
