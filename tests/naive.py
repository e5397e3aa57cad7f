"""Slow, obvious NumPy twins of the kernels.

Each twin applies the same updates in the same order as its kernel, one
rating or one batch at a time, so the two must agree to float tolerance.
"""

from __future__ import annotations

import math

import numpy as np

MASK64 = (1 << 64) - 1


def xorshift(state: int) -> int:
    state ^= (state << 13) & MASK64
    state ^= state >> 7
    state ^= (state << 17) & MASK64
    return state


def below(state: int, m: int) -> tuple[int, int]:
    state = xorshift(state)
    return state, (state >> 11) % m


def shuffle_triples(users, items, ratings, lo, hi, state):
    """Fisher-Yates over ``[lo, hi)`` driven by xorshift64, as the kernel does."""
    for j in range(hi - 1, lo, -1):
        state, d = below(state, j - lo + 1)
        k = lo + d
        for arr in (users, items, ratings):
            arr[j], arr[k] = arr[k], arr[j]
    return state


def shuffle_groups(users, items, ratings, group_ptr, seed):
    state = int(seed) | 1
    for g in range(len(group_ptr) - 1):
        state = shuffle_triples(users, items, ratings, group_ptr[g], group_ptr[g + 1], state)


def shuffle_ints(values, lo, hi, state):
    for j in range(hi - 1, lo, -1):
        state, d = below(state, j - lo + 1)
        k = lo + d
        values[j], values[k] = values[k], values[j]
    return state


def sgd_block_epoch(blocks, plan, P, Q, bu, bi, mu, lr, reg, reg_bias):
    """Blocks in schedule order; in each, runs in shuffled order; in each run,
    its groups in turn from a random first one, wrapping round.

    With ``reshuffle`` a group is shuffled and then swept; without, it is swept
    from a random start to its end and then from its beginning to the start,
    and the groups go in pairs whose sweeps are interleaved (one rating of
    each in turn, then the rest of the longer one). ``group_users`` is unused:
    the twin reads every rating's own user, which is what the kernel's
    per-group users must match. ``sync`` is the kernel's scratch for its
    threads, unused here: the twin runs the blocks round by round. ``blocks``
    and ``plan`` are the kernel's layout bundles.
    """
    users, _, items, ratings, group_ptr, run_ptr, block_runs, run_order, reshuffle, _ = blocks
    schedule, seeds = plan
    f32 = np.float32
    mu, lr, reg, reg_bias = f32(mu), f32(lr), f32(reg), f32(reg_bias)
    loss = 0.0
    for round_ in schedule:
        for b in round_:
            state = int(seeds[b]) | 1
            r_lo, r_hi = int(block_runs[b]), int(block_runs[b + 1])
            state = shuffle_ints(run_order, r_lo, r_hi, state)
            for run in run_order[r_lo:r_hi]:
                g_lo, g_hi = int(run_ptr[run]), int(run_ptr[run + 1])
                first = 0
                if g_hi - g_lo > 1:
                    state, first = below(state, g_hi - g_lo)
                groups = [*range(g_lo + first, g_hi), *range(g_lo, g_lo + first)]
                sweeps = []
                for g in groups:
                    lo, hi = int(group_ptr[g]), int(group_ptr[g + 1])
                    if reshuffle:
                        state = shuffle_triples(users, items, ratings, lo, hi, state)
                        sweeps.append(list(range(lo, hi)))
                        continue
                    start = 0
                    if hi > lo:
                        state, start = below(state, hi - lo)
                    sweeps.append([*range(lo + start, hi), *range(lo, lo + start)])
                if reshuffle:
                    order = [idx for sweep in sweeps for idx in sweep]
                else:  # groups in pairs, their ratings interleaved
                    order = []
                    for one, two in zip(sweeps[::2], [*sweeps[1::2], []]):
                        common = min(len(one), len(two))
                        for x, y in zip(one[:common], two[:common]):
                            order += [x, y]
                        order += one[common:] + two[common:]
                for idx in order:
                    u, i = users[idx], items[idx]
                    pu, qi = P[u].copy(), Q[i].copy()
                    e = f32(ratings[idx] - (mu + bu[u] + bi[i] + f32(np.dot(pu, qi))))
                    loss += float(e) ** 2
                    bu[u] += lr * (e - reg_bias * bu[u])
                    bi[i] += lr * (e - reg_bias * bi[i])
                    P[u] = pu + lr * (e * qi - reg * pu)
                    Q[i] = qi + lr * (e * pu - reg * qi)
    return loss


def batch_objective(users, items, ratings, P, Q, bu, bi, mu, reg, reg_bias):
    """The Adam batch objective ``L_b`` of :mod:`latentfactors.kernels.adam`, in float64."""
    P, Q, bu, bi = (np.asarray(a, dtype=np.float64) for a in (P, Q, bu, bi))
    e = ratings - (mu + bu[users] + bi[items] + np.sum(P[users] * Q[items], axis=1))
    penalty = reg * (np.sum(P[users] ** 2) + np.sum(Q[items] ** 2))
    penalty += reg_bias * (np.sum(bu[users] ** 2) + np.sum(bi[items] ** 2))
    return (np.sum(e**2) + penalty) / len(users)


def batch_gradient(users, items, ratings, P, Q, bu, bi, mu, reg, reg_bias):
    """Dense gradients of ``L_b`` (rows outside the batch get zeros)."""
    m = len(users)
    e = ratings - (mu + bu[users] + bi[items] + np.sum(P[users] * Q[items], axis=1))
    gP, gQ = np.zeros_like(P), np.zeros_like(Q)
    gbu, gbi = np.zeros_like(bu), np.zeros_like(bi)
    c = (-2.0 / m) * e
    np.add.at(gP, users, c[:, None] * Q[items] + (2.0 / m) * reg * P[users])
    np.add.at(gQ, items, c[:, None] * P[users] + (2.0 / m) * reg * Q[items])
    np.add.at(gbu, users, c + (2.0 / m) * reg_bias * bu[users])
    np.add.at(gbi, items, c + (2.0 / m) * reg_bias * bi[items])
    return gP, gQ, gbu, gbi, float(np.sum(e**2))


def adam_epoch(
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
    moments,
    lr,
    reg,
    reg_bias,
    step0,
    dense,
    beta1=0.9,
    beta2=0.999,
    eps=1e-7,
):
    """Mini-batch Adam: lazy (only rows in the batch move) or dense (every row moves)."""
    params = [P, Q, bu, bi]
    total = 0.0
    step = step0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        u, i, r = users[idx], items[idx], ratings[idx]
        step += 1
        grads = batch_gradient(
            u,
            i,
            r,
            P.astype(np.float64),
            Q.astype(np.float64),
            bu.astype(np.float64),
            bi.astype(np.float64),
            mu,
            reg,
            reg_bias,
        )
        total += grads[4]
        alpha = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
        for p, g, rows, (m, v) in zip(params, grads[:4], (u, i, u, i), moments):
            sel = np.arange(len(p)) if dense else np.unique(rows)
            m[sel] = beta1 * m[sel] + (1 - beta1) * g[sel]
            v[sel] = beta2 * v[sel] + (1 - beta2) * g[sel] ** 2
            p[sel] -= (alpha * m[sel] / (np.sqrt(v[sel]) + eps)).astype(p.dtype)
    return total
