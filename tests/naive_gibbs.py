"""A slow, obvious twin of one Gibbs sweep (:func:`latentfactors.kernels.gibbs.gibbs_sweep`).

Written from the model's definition with NumPy on dense per-feature lists:
every conditional is recomputed from the full residual vector. It draws from
the same counter-based streams as the kernel (their generators are the
kernel's own, called from Python), so the two must give the same samples to
float tolerance. The generators themselves are tested by their moments.
"""

from __future__ import annotations

import math

import numpy as np

from latentfactors.kernels import gibbs


def predictions(data, w0, b, V):
    """Every rating's prediction, from the model's definition."""
    features = data.rows.astype(np.int64) + data.offsets[:-1, None]
    pred = w0 + b[features].sum(axis=0)
    n_groups = len(features)
    for g in range(n_groups):
        for h in range(g + 1, n_groups):
            pred = pred + np.sum(V[features[g]] * V[features[h]], axis=1)
    return pred, features


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
    pred, features = predictions(data, w0[0], b, V)
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

    for g in range(n_groups):
        for j in range(data.offsets[g], data.offsets[g + 1]):
            mine = np.flatnonzero(features[g] == j)
            state = key(seed, number, gibbs.TAG_ROW, j)
            precision = hyper.lam_b[g] + alpha[0] * len(mine)
            mean = (hyper.lam_b[g] * hyper.mu_b[g] + alpha[0] * np.sum(e[mine] + b[j])) / precision
            state, new = gaussian(state, mean, precision)
            e[mine] -= new - b[j]
            b[j] = new
            for f in range(k):
                h = sum(V[features[o][mine], f] for o in range(n_groups) if o != g)
                h = np.asarray(h, dtype=np.float64) * np.ones(len(mine))
                precision = hyper.lam_v[g, f] + alpha[0] * np.sum(h * h)
                mean = (
                    hyper.lam_v[g, f] * hyper.mu_v[g, f]
                    + alpha[0] * np.sum(h * (e[mine] + V[j, f] * h))
                ) / precision
                state, new = gaussian(state, mean, precision)
                e[mine] -= (new - V[j, f]) * h
                V[j, f] = new
    return float(np.sum(e**2))
