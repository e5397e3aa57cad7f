"""A slow, obvious twin of an ALS half sweep (:mod:`latentfactors.kernels.als`).

Written from the weighted least-squares definition on the dense ``users x
items`` weight and preference matrices: each row's system is formed as
``Y^T W_u Y + lam_u I`` and solved by :func:`numpy.linalg.solve`, or walked by
textbook conjugate gradient. No Gram trick, no CSR.
"""

from __future__ import annotations

import numpy as np


def dense(side, n_cols):
    """``(W, P)``: the dense weights (1 off the observed pairs) and preferences."""
    n_rows = len(side.indptr) - 1
    W = np.ones((n_rows, n_cols))
    P = np.zeros((n_rows, n_cols))
    for u in range(n_rows):
        for t in range(side.indptr[u], side.indptr[u + 1]):
            W[u, side.indices[t]] = side.conf[t]
            P[u, side.indices[t]] = 1.0
    return W, P


def system(side, Y, u):
    """Row ``u``'s ``(A, b)`` from the definition."""
    W, P = dense(side, len(Y))
    A = Y.T @ (W[u][:, None] * Y) + side.lam[u] * np.eye(Y.shape[1])
    b = Y.T @ (W[u] * P[u])
    return A, b


def half_sweep(side, X, Y, steps=0):
    """Every row of ``X`` solved against ``Y`` (``steps`` = 0: exactly; else CG from ``X``)."""
    out = X.copy()
    for u in range(len(X)):
        A, b = system(side, Y, u)
        if steps == 0:
            out[u] = np.linalg.solve(A, b)
            continue
        x = X[u].copy()
        r = b - A @ x
        p = r.copy()
        rr = r @ r
        for _ in range(steps):
            if rr <= 1e-30:
                break
            Ap = A @ p
            step = rr / (p @ Ap)
            x += step * p
            r -= step * Ap
            new = r @ r
            p = r + (new / rr) * p
            rr = new
        out[u] = x
    return out


def objective(by_user, by_item, X, Y):
    """The weighted squared error over every pair plus both penalties."""
    W, P = dense(by_user, len(Y))
    S = X @ Y.T
    return float(
        np.sum(W * (P - S) ** 2)
        + by_user.lam @ np.sum(X * X, axis=1)
        + by_item.lam @ np.sum(Y * Y, axis=1)
    )
