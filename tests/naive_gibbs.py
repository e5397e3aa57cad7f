"""A slow, obvious twin of one Gibbs sweep (:func:`latentfactors.kernels.gibbs.gibbs_sweep`).

Written from the FM's definition with NumPy on its dense design matrix, implicit
sets included: every conditional is recomputed from the full residual vector,
with no relation blocks and no running sums. It draws from
the same counter-based streams as the kernel (their generators are the
kernel's own, called from Python), so the two must give the same samples to
float tolerance. The generators themselves are tested by their moments.
"""

from __future__ import annotations

import math

import numpy as np

from latentfactors.kernels import gibbs


def design(data):
    """The FM's dense design matrix: one row per rating, one column per feature
    (1 for a rating's one-hot features, the weights of its anchors' sets)."""
    n_onehot = data.rows.shape[0]
    X = np.zeros((len(data.y), int(data.offsets[-1])))
    for r in range(len(data.y)):
        for g in range(n_onehot):
            a = data.offsets[g] + data.rows[g, r]
            X[r, a] = 1.0
            for t in range(data.set_indptr[a], data.set_indptr[a + 1]):
                X[r, data.set_feat[t]] += data.set_w[t]
    return X


def predictions(data, w0, b, V):
    """Every rating's prediction, from the FM's definition:
    ``w0 + X b + sum_f ((X V_f)^2 - X^2 V_f^2) / 2``; also the design matrix."""
    X = design(data)
    pred = w0 + X @ b + 0.5 * np.sum((X @ V) ** 2 - (X**2) @ (V**2), axis=1)
    return pred, X


# Numba returns a uint64 state as a Python int, which it would read back as int64.


def key(seed, number, tag, index):
    return np.uint64(gibbs.stream_key(seed, number, tag, index))


def normal(state):
    state, z = gibbs._normal(np.uint64(state))
    return np.uint64(state), z


def gamma(state, shape, rate):
    state, x = gibbs._gamma(np.uint64(state), shape, rate)
    return np.uint64(state), x


def gaussian(state, mean, precision):
    state, z = normal(state)
    return state, mean + z / math.sqrt(precision)


def sweep(data, params, hyper, prior, seed, number):
    """One sweep in the kernel's order; updates ``params`` and ``hyper`` in place."""
    w0, b, V, alpha, e = params
    n = len(data.y)
    k = V.shape[1]
    pred, X = predictions(data, w0[0], b, V)
    e[:] = data.y - pred

    _, alpha[0] = gamma(
        key(seed, number, gibbs.TAG_ALPHA, 0),
        prior.alpha_shape + n / 2,
        prior.alpha_rate + np.sum(e**2) / 2,
    )

    def draw_hyper(state, values, mu_old):
        shape = prior.lam_shape + (len(values) + 1) / 2
        rate = (
            prior.lam_rate
            + (prior.mu_strength * (mu_old - prior.mu0) ** 2 + np.sum((values - mu_old) ** 2)) / 2
        )
        state, lam = gamma(state, shape, rate)
        strength = prior.mu_strength + len(values)
        mean = (prior.mu_strength * prior.mu0 + np.sum(values)) / strength
        state, mu = gaussian(state, mean, strength * lam)
        return state, mu, lam

    n_groups = len(data.offsets) - 1
    for g in range(n_groups):
        lo, hi = data.offsets[g], data.offsets[g + 1]
        state = key(seed, number, gibbs.TAG_HYPER, g)
        state, hyper.mu_b[g], hyper.lam_b[g] = draw_hyper(state, b[lo:hi], hyper.mu_b[g])
        for f in range(k):
            state, hyper.mu_v[g, f], hyper.lam_v[g, f] = draw_hyper(
                state, V[lo:hi, f], hyper.mu_v[g, f]
            )

    precision = prior.lam_w0 + alpha[0] * n
    _, new = gaussian(
        key(seed, number, gibbs.TAG_W0, 0),
        alpha[0] * np.sum(e + w0[0]) / precision,
        precision,
    )
    e -= new - w0[0]
    w0[0] = new

    def draw(state, j, f, prior_mean, prior_precision):
        """Draw ``b[j]`` (``f = -1``) or ``V[j, f]`` from its conditional, given ``e``."""
        mine = np.flatnonzero(X[:, j])
        x = X[mine, j]
        if f < 0:
            h, old = x, b[j]
        else:
            s = X[mine] @ V[:, f]
            h, old = x * (s - x * V[j, f]), V[j, f]
        precision = prior_precision + alpha[0] * np.sum(h * h)
        mean = (
            prior_precision * prior_mean + alpha[0] * np.sum(h * (e[mine] + old * h))
        ) / precision
        state, new = gaussian(state, mean, precision)
        e[mine] -= (new - old) * h
        if f < 0:
            b[j] = new
        else:
            V[j, f] = new
        return state

    n_onehot = data.rows.shape[0]
    for g in range(n_onehot):
        for j in range(data.offsets[g], data.offsets[g + 1]):
            state = key(seed, number, gibbs.TAG_ROW, j)
            state = draw(state, j, -1, hyper.mu_b[g], hyper.lam_b[g])
            for f in range(k):
                state = draw(state, j, f, hyper.mu_v[g, f], hyper.lam_v[g, f])
    for g in range(n_onehot, n_groups):
        for f in range(-1, k):
            mu, lam = (
                (hyper.mu_b[g], hyper.lam_b[g]) if f < 0 else (hyper.mu_v[g, f], hyper.lam_v[g, f])
            )
            for j in range(data.offsets[g], data.offsets[g + 1]):
                draw(key(seed, number, gibbs.TAG_IMPLICIT, j * (k + 1) + f + 1), j, f, mu, lam)
    return float(np.sum(e**2))
