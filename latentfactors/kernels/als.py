"""Alternating least squares for implicit feedback (weighted matrix factorisation).

The model (Hu, Koren & Volinsky 2008, "Collaborative filtering for implicit
feedback datasets"; the regularisation of Rendle et al. 2021, "Revisiting the
performance of iALS on item recommendation benchmarks") scores user ``u`` and
item ``i`` by ``x_u . y_i`` and minimises

    sum over every (u, i) of  w_ui (p_ui - x_u . y_i)^2
        + sum_u lam_u |x_u|^2 + sum_i lam_i |y_i|^2

where ``p_ui`` is 1 for an observed pair and 0 otherwise, and ``w_ui`` is the
pair's confidence ``c_ui >= 1`` when observed and 1 otherwise. With the items
fixed, each user's vector solves the ``k x k`` system

    (G + sum_{i in I_u} (c_ui - 1) y_i y_i^T + lam_u I) x_u = sum_{i in I_u} c_ui y_i

with ``G = Y^T Y`` shared by every user (the "Gram trick": the unobserved
pairs cost nothing per user), and the same with the roles swapped. A half
sweep costs O(k^2 * ratings + k^3 * rows) with an exact Cholesky solve, or
O(steps * k * (ratings + k * rows)) with ``steps`` conjugate-gradient steps
started from the current vector (Takacs, Pilaszy & Tikk 2011).

Rows of one side share nothing, so they are solved in parallel; each row's
arithmetic is fixed, and ``G`` is summed over fixed chunks of rows in a fixed
order, so any thread count gives bit-identical factors. Everything is float64.
"""

from __future__ import annotations

from collections import namedtuple

import numba
import numpy as np

from latentfactors.kernels._config import JIT, serial_and_parallel

#: The ratings of one side, as CSR by row: row ``u``'s observed columns are
#: ``indices[indptr[u]:indptr[u + 1]]`` (int32) with confidences ``conf`` (float64,
#: ``>= 1``); ``lam`` (n_rows,) float64 is each row's penalty.
Side = namedtuple("Side", "indptr indices conf lam")

#: How the rows are solved: ``steps`` = 0 for an exact Cholesky solve, else that
#: many conjugate-gradient steps from the current vector.
SOLVE_CHOLESKY = 0

# Rows per chunk of the Gram matrix's sum: fixed, so the sum's order does not
# depend on the thread count.
GRAM_CHUNK = 1024


@numba.njit(**JIT)
def _gram_chunk(Y, lo, hi, out):
    """``out = Y[lo:hi]^T Y[lo:hi]`` (lower triangle, then mirrored)."""
    k = Y.shape[1]
    for a in range(k):
        for b in range(a + 1):
            out[a, b] = 0.0
    for r in range(lo, hi):
        for a in range(k):
            ya = Y[r, a]
            for b in range(a + 1):
                out[a, b] += ya * Y[r, b]
    for a in range(k):
        for b in range(a):
            out[b, a] = out[a, b]


def _gram_chunks(Y, partial):
    """Each fixed chunk's share of ``Y^T Y``, one chunk per thread at a time."""
    n = Y.shape[0]
    for c in numba.prange(partial.shape[0]):
        _gram_chunk(Y, c * GRAM_CHUNK, min(n, (c + 1) * GRAM_CHUNK), partial[c])


_gram_chunks_serial, _gram_chunks_parallel = serial_and_parallel(_gram_chunks)


def gram(Y, parallel=False):
    """``Y^T Y`` (k, k) float64, summed chunk by chunk in a fixed order."""
    n_chunks = max(1, -(-Y.shape[0] // GRAM_CHUNK))
    partial = np.empty((n_chunks, Y.shape[1], Y.shape[1]))
    (_gram_chunks_parallel if parallel else _gram_chunks_serial)(Y, partial)
    total = partial[0].copy()
    for c in range(1, n_chunks):
        total += partial[c]
    return total


@numba.njit(**JIT)
def _normal_equations(u, side, Y, G, A, b):
    """Fill ``A`` (lower triangle) and ``b`` with row ``u``'s normal equations."""
    k = Y.shape[1]
    for a in range(k):
        b[a] = 0.0
        for c in range(a + 1):
            A[a, c] = G[a, c]
        A[a, a] += side.lam[u]
    for t in range(side.indptr[u], side.indptr[u + 1]):
        j = side.indices[t]
        conf = side.conf[t]
        extra = conf - 1.0
        for a in range(k):
            ya = Y[j, a]
            b[a] += conf * ya
            w = extra * ya
            for c in range(a + 1):
                A[a, c] += w * Y[j, c]


@numba.njit(**JIT)
def _cholesky_solve(A, b, x):
    """Solve ``A x = b`` for symmetric positive definite ``A`` given by its lower
    triangle (overwritten by its Cholesky factor); ``False`` if ``A`` is not
    positive definite."""
    k = A.shape[0]
    for j in range(k):
        s = A[j, j]
        for m in range(j):
            s -= A[j, m] * A[j, m]
        if not s > 0.0:
            return False
        d = np.sqrt(s)
        A[j, j] = d
        for i in range(j + 1, k):
            s = A[i, j]
            for m in range(j):
                s -= A[i, m] * A[j, m]
            A[i, j] = s / d
    for i in range(k):  # L z = b
        s = b[i]
        for m in range(i):
            s -= A[i, m] * x[m]
        x[i] = s / A[i, i]
    for i in range(k - 1, -1, -1):  # L^T x = z
        s = x[i]
        for m in range(i + 1, k):
            s -= A[m, i] * x[m]
        x[i] = s / A[i, i]
    return True


@numba.njit(**JIT)
def _times_a(u, side, Y, G, p, out):
    """``out = A_u p`` for row ``u``'s matrix, without forming it."""
    k = Y.shape[1]
    lam = side.lam[u]
    for a in range(k):
        s = lam * p[a]
        for c in range(k):
            s += G[a, c] * p[c]
        out[a] = s
    for t in range(side.indptr[u], side.indptr[u + 1]):
        j = side.indices[t]
        dot = 0.0
        for a in range(k):
            dot += Y[j, a] * p[a]
        dot *= side.conf[t] - 1.0
        for a in range(k):
            out[a] += dot * Y[j, a]


@numba.njit(**JIT)
def _conjugate_gradient(u, side, Y, G, x, steps, r, p, Ap):
    """``steps`` conjugate-gradient steps on row ``u``'s system from ``x`` (in place)."""
    k = Y.shape[1]
    _times_a(u, side, Y, G, x, Ap)
    for a in range(k):
        r[a] = -Ap[a]
    for t in range(side.indptr[u], side.indptr[u + 1]):
        j = side.indices[t]
        conf = side.conf[t]
        for a in range(k):
            r[a] += conf * Y[j, a]
    rr = 0.0
    for a in range(k):
        p[a] = r[a]
        rr += r[a] * r[a]
    for _ in range(steps):
        if rr <= 1e-30:
            break
        _times_a(u, side, Y, G, p, Ap)
        pAp = 0.0
        for a in range(k):
            pAp += p[a] * Ap[a]
        if not pAp > 0.0:
            break
        step = rr / pAp
        new = 0.0
        for a in range(k):
            x[a] += step * p[a]
            r[a] -= step * Ap[a]
            new += r[a] * r[a]
        for a in range(k):
            p[a] = r[a] + (new / rr) * p[a]
        rr = new


@numba.njit(**JIT)
def _solve_row(u, side, X, Y, G, steps, A, b, x, r, p, Ap):
    """Row ``u``'s new vector, into ``X[u]``; ``False`` if its system was not
    positive definite (the row is left as it was)."""
    k = Y.shape[1]
    if steps == SOLVE_CHOLESKY:
        _normal_equations(u, side, Y, G, A, b)
        if not _cholesky_solve(A, b, x):
            return False
    else:
        for a in range(k):
            x[a] = X[u, a]
        _conjugate_gradient(u, side, Y, G, x, steps, r, p, Ap)
    for a in range(k):
        X[u, a] = x[a]
    return True


def _solve_rows(side, X, Y, G, steps, lo, hi, failed):
    """Solve rows ``lo .. hi - 1`` of ``X`` against the fixed ``Y``; ``failed[u - lo]``
    is set where a system was not positive definite."""
    k = Y.shape[1]
    for u in numba.prange(lo, hi):
        A = np.empty((k, k) if steps == SOLVE_CHOLESKY else (1, 1))  # CG never forms it
        vectors = np.empty((5, k))
        ok = _solve_row(
            u, side, X, Y, G, steps, A, vectors[0], vectors[1], vectors[2], vectors[3], vectors[4]
        )
        failed[u - lo] = not ok


_solve_rows_serial, _solve_rows_parallel = serial_and_parallel(_solve_rows)


@numba.njit(**JIT)
def _observed_loss(side, X, Y):
    """``(sum c (1 - s)^2, sum s^2)`` over the observed pairs, ``s = x_u . y_j``."""
    fit = 0.0
    squares = 0.0
    k = X.shape[1]
    for u in range(X.shape[0]):
        for t in range(side.indptr[u], side.indptr[u + 1]):
            j = side.indices[t]
            s = 0.0
            for a in range(k):
                s += X[u, a] * Y[j, a]
            fit += side.conf[t] * (1.0 - s) * (1.0 - s)
            squares += s * s
    return fit, squares


def objective(side, X, Y, Gx, Gy, lam_y):
    """``(error, penalty)``: the two terms of the module docstring's objective (float64),
    ``side`` by rows of ``X``; ``Gx``, ``Gy`` are the two Gram matrices and ``lam_y``
    the columns' penalties."""
    fit, squares = _observed_loss(side, X, Y)
    everything = float(np.sum(Gx * Gy))  # sum over all pairs of (x . y)^2
    penalty = float(side.lam @ np.einsum("ij,ij->i", X, X)) + float(
        lam_y @ np.einsum("ij,ij->i", Y, Y)
    )
    return fit + (everything - squares), penalty
