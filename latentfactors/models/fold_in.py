"""Fold-in: a new user's vector and bias, every item parameter (and head weight) fixed.

:meth:`~latentfactors.models.recommend.RecommenderMixin.fold_in` asks the
model's ``_fold_in(item_codes, ratings)`` hook for the minimiser of the
training objective restricted to one user's ratings. The solvers for every
model live here:

* :func:`fold_in_dot` for a dot-product model such as
  :class:`~latentfactors.BiasedMF`: a ridge least-squares problem, solved in
  closed form by :func:`solve_fold_in`;
* :func:`fold_in_mlp` for :class:`~latentfactors.MLPMF`, whose user vector
  enters a nonlinear head: minimised iteratively, as described below.

MLPMF: objective
----------------
A new user's ratings ``r_j`` of items ``i_j`` (``j = 1..n``, repeats allowed)
enter the training objective of :mod:`latentfactors.kernels.mlp` through

    F(p, b) = sum_j (r_j - mu - b - bi_j - head([p; q_j]))**2
              + reg * n * |p|**2 + reg_bias * n * b**2

(up to the constant factor ``1 / batch_size``): every rating carries its
squared error and the L2 penalties of the rows it touches, so the user's row
is penalised once per rating, exactly as :func:`solve_fold_in` does for
:class:`~latentfactors.BiasedMF`. The item vectors ``q_j``, item biases
``bi_j``, the global mean ``mu`` and the head's weights are held fixed; the
head is the network ``predict`` uses (no dropout), and the weight penalty does
not depend on ``p`` or ``b``.

MLPMF: algorithm
----------------
:func:`fold_in_mlp` minimises ``F`` over the ``k + 1`` unknowns
``x = (p, b)`` in float64, starting from ``p = 0`` (the mean the L2 penalty
pulls every vector towards, and the vector ``predict`` gives an unknown
user) and the ``b`` that minimises ``F`` given ``p = 0``. With ReLU a zero
start is not a dead point: the item half of the head's input is not zero.
The residuals ``e_j = r_j - mu - bi_j - b - head([p; q_j])`` of all ``n``
ratings come from one batched forward pass (the item half of the first
layer, ``q_j @ W_1[k:] + c_1``, is computed once), and their Jacobian
``J = d(b + head) / d(p, b)`` from the backward pass: a column of ones for
``b`` and the first ``k`` entries of the input gradient.

**Linear and tanh heads: Levenberg-Marquardt.** A step solves the damped
normal equations ``(J'J + D + lam I) d = J'e - D x``, with
``D = n * diag(reg, ..., reg, reg_bias)``, and is kept if it lowers ``F``;
``lam`` follows Nielsen's rule (Madsen, Nielsen and Tingleff 2004, "Methods
for non-linear least squares problems"): it shrinks when the quadratic model
predicted the decrease well, and doubles, then quadruples and so on, after
rejected steps. A step whose predicted decrease is below the rounding error
of ``F`` is taken unless ``F`` visibly rises, so that rounding does not stop
the iteration short of the last digits. It stops when a step changes ``x`` by
less than ``xtol`` relative to ``|x|``, or after ``max_iter`` steps. With a
linear head ``F`` is a linear least-squares problem and this reaches its
exact ridge solution; with tanh ``F`` is smooth and this ends at a
stationary point.

**ReLU heads: BFGS.** With ReLU the head is piecewise linear in ``p``, so
``F`` is piecewise quadratic, with a kink wherever a hidden unit of one
rating switches on or off, and its minima typically lie *on* kinks, where
``F`` has no gradient. Gauss-Newton steps stall next to such kinks (each
step, computed on one side, crosses the kink and raises ``F``, while the way
down runs along it); on :func:`~latentfactors.data.make_synthetic_ratings`
data, Levenberg-Marquardt stopped with a descent direction left for nearly
every user. So for ReLU the iteration is BFGS with a weak Wolfe line search
(Lewis and Overton 2013, "Nonsmooth optimization via quasi-Newton methods"),
its inverse Hessian starting from the damped Gauss-Newton
``(J'J + D + lam I)^-1``: its curvature estimate learns the kinks and its
steps follow them, converging linearly. It stops when the last 10 steps
together lowered ``F`` by less than ``ftol * F``, when the line search finds
no lower point, or after ``max_iter`` steps. The result is a local minimum of
``F``, typically on kinks, where no direction lowers ``F``.

Every accepted step lowers ``F`` (up to rounding), so the result is never
worse than the start. Nothing is random: the same ratings always give the
same vector.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["fold_in_dot", "fold_in_mlp", "solve_fold_in"]


# ---------------------------------------------------------------- dot-product models


def solve_fold_in(Q, bi, ratings, mu, reg, reg_bias):
    """The user vector and bias that best explain one user's ratings, items fixed.

    Minimises, over ``p`` and ``b`` with ``n = len(ratings)``,

        sum_j (r_j - mu - b - bi_j - p . q_j)**2 + reg * n * |p|**2 + reg_bias * n * b**2

    which is the training objective restricted to one user's ratings: training
    penalises a row once per rating it appears in. The ``(k+1) x (k+1)``
    normal equations are solved in float64; with ``reg == 0`` or
    ``reg_bias == 0`` they may be singular, and the minimum-norm least-squares
    solution is returned.

    Parameters
    ----------
    Q : float array, (n, k)
        The rated items' vectors (one row per rating, repeats allowed).
    bi : float array, (n,)
        Their biases.
    ratings : float array, (n,)
    mu, reg, reg_bias : float

    Returns
    -------
    p : numpy.ndarray of float64, (k,)
    b : float
    """
    Q = np.asarray(Q, dtype=np.float64)
    n, k = Q.shape
    Z = np.empty((n, k + 1))
    Z[:, :k] = Q
    Z[:, k] = 1.0
    y = np.asarray(ratings, dtype=np.float64) - mu - np.asarray(bi, dtype=np.float64)
    A = Z.T @ Z
    A[np.arange(k), np.arange(k)] += n * reg
    A[k, k] += n * reg_bias
    rhs = Z.T @ y
    if reg > 0 and reg_bias > 0:
        x = np.linalg.solve(A, rhs)
    else:
        x = np.linalg.lstsq(A, rhs, rcond=None)[0]
    return x[:k], float(x[k])


def fold_in_dot(model, item_codes, ratings):
    """``_fold_in`` for a dot-product model with ``reg``/``reg_bias_`` per rating."""
    P, Q, bu, bi, mu = model._dot_parts()
    p, b = solve_fold_in(
        Q[item_codes],
        bi[item_codes],
        ratings,
        mu,
        float(model.reg) * model._penalty_scale(),
        float(model.reg_bias_),
    )
    with np.errstate(over="ignore"):  # overflow shows as inf, reported below
        p32, b32 = p.astype(np.float32), float(np.float32(b))
    if not (np.isfinite(p32).all() and math.isfinite(b32)):
        raise FloatingPointError(
            "fold-in produced NaN or infinite values (or values beyond float32's range): "
            "check the ratings, or use a larger reg"
        )
    return p32, b32


# ---------------------------------------------------------------- MLPMF

# Initial Levenberg-Marquardt damping (and BFGS's, in its first inverse
# Hessian), relative to the largest diagonal entry of J'J + D, and the
# smallest damping likewise (it keeps the damped system positive definite when
# reg or reg_bias is 0 and the user has fewer ratings than unknowns).
TAU = 1e-3
LAM_FLOOR = 1e-14
# Relative rounding error of F, a sum of n squares: Levenberg-Marquardt does
# not judge steps whose predicted decrease is below it.
ROUNDING = 64 * np.finfo(np.float64).eps
# Weak Wolfe line search: sufficient decrease, curvature, most trial points.
WOLFE_C1 = 1e-4
WOLFE_C2 = 0.9
WOLFE_TRIALS = 60
# BFGS stops once STALL steps together lowered F by at most ftol * F.
STALL = 10


def _activate(z, activation):
    """Activation and its derivative, as in :func:`latentfactors.kernels.mlp._chunk_forward`."""
    if activation == "relu":
        deriv = (z > 0.0).astype(np.float64)
        return z * deriv, deriv
    if activation == "tanh":
        t = np.tanh(z)
        return t, 1.0 - t * t
    return z, np.ones_like(z)


class _UserObjective:
    """``F(p, b)`` of one user's ratings, its residuals, Jacobian and gradient."""

    def __init__(self, model, item_codes, ratings):
        k = model.item_factors_.shape[1]
        weights = [np.asarray(w, dtype=np.float64) for w in model.weights_]
        intercepts = [np.asarray(c, dtype=np.float64) for c in model.intercepts_]
        Q = model.item_factors_[item_codes].astype(np.float64)
        n = len(ratings)
        self.k, self.n = k, n
        self.activation = model.activation
        self.w_user = weights[0][:k]  # (k, h1): the only weights p meets
        # The item half of the first layer's pre-activations does not depend on p.
        self.c_item = Q @ weights[0][k:] + intercepts[0]
        self.hidden = list(zip(weights[1:-1], intercepts[1:-1]))
        # Solved in the units training used (ratings divided by the model's
        # rating scale), so a rescaled model poses the same problem; the bias
        # comes back in the ratings' units.
        self.scale = float(getattr(model, "rating_scale_", 1.0))
        self.w_out = weights[-1][:, 0] / self.scale
        self.b_out = float(intercepts[-1][0]) / self.scale
        self.target = (
            np.asarray(ratings, dtype=np.float64)
            - float(model.global_mean_)
            - model.item_bias_[item_codes].astype(np.float64)
        ) / self.scale
        self.penalty = np.full(k + 1, n * float(model.reg))
        self.penalty[k] = n * float(model.reg_bias_)

    def head(self, p, with_jacobian=True):
        """Head outputs ``(n,)`` and, if asked, their gradients ``d head / d p``, ``(n, k)``."""
        a, d = _activate(self.c_item + p @ self.w_user, self.activation)
        derivs = [d]
        for w, c in self.hidden:
            a, d = _activate(a @ w + c, self.activation)
            derivs.append(d)
        y = a @ self.w_out + self.b_out
        if not with_jacobian:
            return y, None
        delta = derivs[-1] * self.w_out  # d y / d (last hidden pre-activations)
        for (w, _), d in zip(reversed(self.hidden), reversed(derivs[:-1])):
            delta = (delta @ w.T) * d
        return y, delta @ self.w_user.T

    def value(self, x):
        y, _ = self.head(x[: self.k], with_jacobian=False)
        e = self.target - x[self.k] - y
        return float(e @ e + self.penalty @ (x * x))

    def evaluate(self, x):
        """``(F, residuals e, J = d(b + head) / d(p, b) of shape (n, k + 1))``."""
        k = self.k
        y, jp = self.head(x[:k])
        e = self.target - x[k] - y
        J = np.empty((self.n, k + 1))
        J[:, :k] = jp
        J[:, k] = 1.0
        return float(e @ e + self.penalty @ (x * x)), e, J

    def gradient(self, x):
        """``(F, grad F)``; on a ReLU kink, the gradient of the side with the unit off."""
        value, e, J = self.evaluate(x)
        return value, -2.0 * (J.T @ e) + 2.0 * self.penalty * x

    def normal_matrix(self, J):
        """``J'J + D``: half the Gauss-Newton Hessian of ``F``."""
        A = J.T @ J
        A[np.diag_indices(self.k + 1)] += self.penalty
        return A

    def start(self):
        """``p = 0`` and the bias that minimises ``F`` given it."""
        x = np.zeros(self.k + 1)
        y, _ = self.head(x[: self.k], with_jacobian=False)
        x[self.k] = float(np.sum(self.target - y)) / (self.n + self.penalty[self.k])
        return x


def _levenberg_marquardt(objective, x, *, max_iter, xtol):
    """Levenberg-Marquardt (see the module docstring): ``(x, F(x), steps)``."""
    value, e, J = objective.evaluate(x)
    lam, nu = None, 2.0
    steps = 0
    while steps < max_iter and math.isfinite(value):
        steps += 1
        A = objective.normal_matrix(J)
        g = J.T @ e - objective.penalty * x  # minus half the gradient of F
        top = float(np.max(np.diag(A)))
        lam = max(TAU * top if lam is None else lam, LAM_FLOOR * top)
        step = np.linalg.solve(A + lam * np.eye(len(x)), g)
        small = np.linalg.norm(step) <= xtol * (np.linalg.norm(x) + xtol)
        trial = x + step
        new_value, new_e, new_J = objective.evaluate(trial)
        predicted = float(step @ (g + lam * step))  # the decrease the model expects
        noise = ROUNDING * abs(value)
        if predicted <= noise and new_value <= value + noise:
            # Rounding in F hides a decrease this small, so F cannot judge the
            # step: it is taken as the model predicts unless F visibly rises.
            gain = 1.0
        else:
            gain = (value - new_value) / predicted if predicted > 0 else -1.0
        if gain > 0 and math.isfinite(new_value):
            x, value, e, J = trial, new_value, new_e, new_J
            lam *= max(1.0 / 3.0, 1.0 - (2.0 * gain - 1.0) ** 3)
            nu = 2.0
        else:
            lam *= nu
            nu *= 2.0
        if small:
            break
    return x, value, steps


def _wolfe(objective, x, value, grad, direction):
    """A step length meeting the weak Wolfe conditions, as ``(t, F, grad F)``, or ``None``.

    Bracketing by doubling and bisection (Lewis and Overton 2013), which
    also works where ``F`` is not differentiable.
    """
    slope = float(grad @ direction)
    lo, hi, t = 0.0, math.inf, 1.0
    for _ in range(WOLFE_TRIALS):
        new_value, new_grad = objective.gradient(x + t * direction)
        if not new_value <= value + WOLFE_C1 * t * slope:
            hi = t
        elif float(new_grad @ direction) < WOLFE_C2 * slope:
            lo = t
        else:
            return t, new_value, new_grad
        t = 0.5 * (lo + hi) if math.isfinite(hi) else 2.0 * lo
    return None


def _bfgs(objective, x, *, max_iter, ftol):
    """BFGS for ReLU heads (see the module docstring): ``(x, F(x), steps)``."""
    value, e, J = objective.evaluate(x)
    if not math.isfinite(value):
        return x, value, 0
    grad = -2.0 * (J.T @ e) + 2.0 * objective.penalty * x
    A = objective.normal_matrix(J)
    A[np.diag_indices(len(x))] += TAU * float(np.max(np.diag(A)))
    H = np.linalg.inv(A)  # inverse Hessian estimate: damped Gauss-Newton
    eye = np.eye(len(x))
    history = [value]
    steps = 0
    while steps < max_iter:
        steps += 1
        direction = -(H @ grad)
        if not float(grad @ direction) < 0.0:
            break
        found = _wolfe(objective, x, value, grad, direction)
        if found is None:
            break
        t, new_value, new_grad = found
        s, y = t * direction, new_grad - grad
        x, value, grad = x + s, new_value, new_grad
        ys = float(y @ s)
        if ys > 0.0:  # always, after a weak Wolfe step; a guard against rounding
            rho = 1.0 / ys
            H = (eye - rho * np.outer(s, y)) @ H @ (eye - rho * np.outer(y, s))
            H += rho * np.outer(s, s)
        history.append(value)
        if len(history) > STALL and history[-STALL - 1] - value <= ftol * abs(value):
            break
    return x, value, steps


def _minimise(model, item_codes, ratings, *, max_iter, xtol, ftol):
    """``(x, F(x), steps)`` in float64, as described in the module docstring."""
    objective = _UserObjective(model, np.asarray(item_codes), ratings)
    if objective.activation == "relu":
        return _bfgs(objective, objective.start(), max_iter=max_iter, ftol=ftol)
    return _levenberg_marquardt(objective, objective.start(), max_iter=max_iter, xtol=xtol)


def fold_in_mlp(model, item_codes, ratings, *, max_iter=1000, xtol=1e-10, ftol=1e-13):
    """A new user's vector and bias for a fitted MLPMF, every other parameter fixed.

    Minimises the training objective restricted to the user (see the module
    docstring) from ``p = 0``, in float64: by Levenberg-Marquardt for linear
    and tanh heads, by BFGS for ReLU heads. This is :class:`~latentfactors.MLPMF`'s
    ``_fold_in`` hook, behind
    :meth:`~latentfactors.models.recommend.RecommenderMixin.fold_in`.

    Parameters
    ----------
    model : MLPMF
        A fitted model; it is not modified.
    item_codes : int array, (n,)
        Codes of the rated items (all known; repeats count as separate ratings).
    ratings : float array, (n,)
        Finite ratings, at least one.
    max_iter : int, default 1000
        Most steps.
    xtol : float, default 1e-10
        Linear and tanh heads: stop when a step changes ``(p, b)`` by less
        than ``xtol * (|(p, b)| + xtol)``.
    ftol : float, default 1e-13
        ReLU heads: stop when 10 steps together lowered the objective by less
        than ``ftol`` times its value.

    Returns
    -------
    vector : numpy.ndarray of float32, (n_factors,)
    bias : float
        The bias rounded to float32, as the model stores biases.

    Raises
    ------
    FloatingPointError
        If the objective or the solution is not finite.
    """
    x, value, _ = _minimise(model, item_codes, ratings, max_iter=max_iter, xtol=xtol, ftol=ftol)
    k = len(x) - 1
    p, b = x[:k], float(x[k]) * float(getattr(model, "rating_scale_", 1.0))
    if not (math.isfinite(value) and np.isfinite(p).all() and math.isfinite(b)):
        raise FloatingPointError("fold-in produced NaN or infinite values")
    return p.astype(np.float32), float(np.float32(b))
