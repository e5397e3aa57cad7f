"""BayesianMF and its Gibbs sampler.

A sampler is tested like a kernel, and more: each conditional against the
joint density by brute force, one sweep against a NumPy twin, the whole
chain by simulation-based calibration (which must also catch a sampler with
one conditional broken on purpose), then the model's accuracy, calibration
of its predictive spread, reproducibility and its contract.
"""

from __future__ import annotations

import inspect
import io
import math
import pickle
import types

import numba
import numpy as np
import pandas as pd
import pytest

from latentfactors import BayesianMF, load_model, make_synthetic_ratings
from latentfactors.errors import ModelFileError, NotFittedError, UnknownIdError
from latentfactors.kernels import gibbs
from latentfactors.models import MODEL_CLASSES
from tests import naive_gibbs
from tests.conftest import two_threads

# ---------------------------------------------------------------- a tiny problem

PRIOR = gibbs.GibbsPrior(
    lam_w0=1.0,
    alpha_shape=3.0,
    alpha_rate=1.5,
    lam_shape=2.0,
    lam_rate=1.0,
    mu0=0.1,
    mu_strength=1.5,
)


def implicit_sets(rows, sizes):
    """SVD++'s sets, flipped: for each user the items they rated, for each item the
    users who rated it, each weighted 1/sqrt(n) (as BayesianMF builds them)."""
    groups = []
    for anchor, other in ((0, 1), (1, 0)):
        pairs = sorted(set(zip(rows[anchor].tolist(), rows[other].tolist())))
        counts = np.bincount([p[0] for p in pairs], minlength=sizes[anchor])
        indptr = np.concatenate([[0], np.cumsum(counts)])
        members = np.array([p[1] for p in pairs])
        weights = 1.0 / np.sqrt(counts[[p[0] for p in pairs]])
        groups.append((anchor, sizes[other], indptr, members, weights))
    return groups


def tiny(seed=0, sizes=(4, 3), k=2, n=10, implicit=False):
    """A small problem in an arbitrary (not fixed-point) state, residuals current.

    With ``implicit``, two implicit groups follow the one-hot ones: the items
    each user rated (features ``sum(sizes) ..``) and the users who rated each item.
    """
    rng = np.random.default_rng(seed)
    rows = [rng.integers(0, s, n) for s in sizes]
    for r, s in zip(rows, sizes):  # every row rated at least once
        r[:s] = np.arange(s)
    y = rng.normal(0.0, 1.0, n)
    sets = implicit_sets(rows, sizes) if implicit else ()
    data = gibbs.gibbs_data(rows, list(sizes), y, sets)
    nf = int(data.offsets[-1])
    params = gibbs.GibbsParams(
        np.array([0.3]),
        rng.normal(0, 0.5, nf),
        rng.normal(0, 0.5, (nf, k)),
        np.array([2.0]),
        np.zeros(n),
    )
    g = len(data.offsets) - 1
    hyper = gibbs.GibbsHyper(
        rng.normal(0, 0.3, g),
        rng.uniform(0.5, 2.0, g),
        rng.normal(0, 0.3, (g, k)),
        rng.uniform(0.5, 2.0, (g, k)),
    )
    refresh_residuals(data, params)
    return data, params, hyper


def refresh_residuals(data, params):
    pred, _ = naive_gibbs.predictions(data, params.w0[0], params.b, params.V)
    params.e[:] = data.y - pred


def cache_of(data, params):
    """The sets' sums and effective vectors for the current parameters."""
    cache = gibbs.new_cache(data, params.V.shape[1])
    gibbs._aggregates_serial(data, params, cache, 0, int(data.offsets[data.rows.shape[0]]))
    return cache


def log_normal(x, mean, precision):
    return 0.5 * np.log(precision) - 0.5 * precision * (x - mean) ** 2


def log_gamma_density(x, shape, rate):
    return (shape - 1) * np.log(x) - rate * x


def log_joint(data, params, hyper, prior):
    """The log joint density (up to a constant) of data, parameters and hyperparameters,
    straight from the model's definition."""
    w0, b, V, alpha = params.w0[0], params.b, params.V, params.alpha[0]
    pred, features = naive_gibbs.predictions(data, w0, b, V)
    out = np.sum(log_normal(data.y, pred, alpha))
    out = out + log_gamma_density(alpha, prior.alpha_shape, prior.alpha_rate)
    out = out + log_normal(w0, 0.0, prior.lam_w0)
    for g in range(len(data.offsets) - 1):
        lo, hi = data.offsets[g], data.offsets[g + 1]
        pairs = [(b[lo:hi], hyper.mu_b[g], hyper.lam_b[g])]
        pairs += [(V[lo:hi, f], hyper.mu_v[g, f], hyper.lam_v[g, f]) for f in range(V.shape[1])]
        for values, mu, lam in pairs:
            out = out + np.sum(log_normal(values, mu, lam))
            out = out + log_gamma_density(lam, prior.lam_shape, prior.lam_rate)
            out = out + log_normal(mu, prior.mu0, prior.mu_strength * lam)
    return out


def grid_moments(logp, grid):
    """Mean and variance of the density ``exp(logp)`` on an even ``grid``."""
    w = np.exp(logp - logp.max())
    w /= w.sum()
    mean = np.sum(w * grid)
    return mean, np.sum(w * (grid - mean) ** 2)


def brute_gaussian(problem, field, index):
    """Mean and variance of one variable's conditional, from the joint on a grid:
    a coarse one to find the mass, then a fine one across it."""
    grid = np.linspace(-12.0, 12.0, 1201)
    logp = np.array([_log_joint_at(problem, field, index, x) for x in grid])
    mean, var = grid_moments(logp, grid)
    sd = math.sqrt(var)
    fine = np.linspace(mean - 12 * sd, mean + 12 * sd, 1501)
    logp = np.array([_log_joint_at(problem, field, index, x) for x in fine])
    return grid_moments(logp, fine)


def _log_joint_at(problem, field, index, x):
    data, params, hyper = problem
    source = params if field in params._fields else hyper
    arr = getattr(source, field).copy()
    arr[index] = x
    if source is params:
        return log_joint(data, params._replace(**{field: arr}), hyper, PRIOR)
    return log_joint(data, params, hyper._replace(**{field: arr}), PRIOR)


def brute_gamma(problem, field, index):
    grid = np.linspace(1e-6, 60.0, 1501)
    logp = np.array([_log_joint_at(problem, field, index, x) for x in grid])
    mean, var = grid_moments(logp, grid)
    sd = math.sqrt(var)
    fine = np.linspace(max(1e-9, mean - 14 * sd), mean + 14 * sd, 2001)
    logp = np.array([_log_joint_at(problem, field, index, x) for x in fine])
    return grid_moments(logp, fine)


# ---------------------------------------------------------------- conditionals


def test_w0_conditional_matches_the_joint_density():
    problem = tiny()
    mean, precision = gibbs._w0_conditional(problem[1], PRIOR)
    np.testing.assert_allclose(brute_gaussian(problem, "w0", 0), (mean, 1 / precision), rtol=1e-6)


@pytest.mark.parametrize("j, g", [(0, 0), (3, 0), (4, 1), (6, 1)])
def test_bias_conditional_matches_the_joint_density(j, g):
    problem = tiny()
    data, params, hyper = problem
    er, _ = gibbs._row_inputs(j, g, data, params, cache_of(data, params))
    mean, precision = gibbs._bias_conditional(
        er, params.b[j], hyper.mu_b[g], hyper.lam_b[g], params.alpha[0]
    )
    np.testing.assert_allclose(brute_gaussian(problem, "b", j), (mean, 1 / precision), rtol=1e-6)


def factor_conditional(problem, j, g, f):
    data, params, hyper = problem
    er, H = gibbs._row_inputs(j, g, data, params, cache_of(data, params))
    return gibbs._factor_conditional(
        er, H, f, params.V[j, f], hyper.mu_v[g, f], hyper.lam_v[g, f], params.alpha[0]
    )


@pytest.mark.parametrize("j, g, f", [(0, 0, 0), (2, 0, 1), (4, 1, 0), (6, 1, 1)])
def test_factor_conditional_matches_the_joint_density(j, g, f):
    problem = tiny()
    mean, precision = factor_conditional(problem, j, g, f)
    np.testing.assert_allclose(
        brute_gaussian(problem, "V", (j, f)), (mean, 1 / precision), rtol=1e-6
    )


def test_factor_conditional_with_three_groups_matches_the_joint_density():
    problem = tiny(seed=1, sizes=(3, 3, 2))
    mean, precision = factor_conditional(problem, 4, 1, 1)
    np.testing.assert_allclose(
        brute_gaussian(problem, "V", (4, 1)), (mean, 1 / precision), rtol=1e-6
    )


@pytest.mark.parametrize("j, g, f", [(1, 0, 0), (5, 1, 1)])
def test_one_hot_conditionals_with_implicit_sets_match_the_joint_density(j, g, f):
    # A user's vector meets its own set as well as the item side's effective vector.
    problem = tiny(seed=2, implicit=True)
    mean, precision = factor_conditional(problem, j, g, f)
    np.testing.assert_allclose(
        brute_gaussian(problem, "V", (j, f)), (mean, 1 / precision), rtol=1e-6
    )


def start_block(data, params, cache, g, f):
    """Prepare implicit group ``g``'s anchors for dimension ``f`` as a sweep does:
    ``(sums, walk, order)``, the residuals in anchor order in ``walk.ep``."""
    a = data.anchor[g]
    first, last = data.offsets[a], data.offsets[a + 1]
    base, end = data.indptr[first], data.indptr[last]
    order = data.members[base:end]
    others = data.others[g - data.rows.shape[0]]
    walk = gibbs.Walk(params.e[order], np.zeros(end - base), others, cache.Veff.T.copy(), base)
    sums = gibbs.new_block_sums(data)
    gibbs._anchor_steps_serial(gibbs.NO_DIM, f, data.indptr, params, cache, sums, walk, first, last)
    return sums, walk, order


def finish_block(data, params, cache, g, f, block):
    """Apply dimension ``f``'s moves and put the residuals back in rating order."""
    sums, walk, order = block
    a = data.anchor[g]
    first, last = data.offsets[a], data.offsets[a + 1]
    gibbs._anchor_steps_serial(f, gibbs.NO_DIM, data.indptr, params, cache, sums, walk, first, last)
    params.e[order] = walk.ep


def implicit_conditional(problem, cache, sums, j, g, f):
    data, params, hyper = problem
    a = params.b[j] if f < 0 else params.V[j, f]
    mu, lam = (hyper.mu_b[g], hyper.lam_b[g]) if f < 0 else (hyper.mu_v[g, f], hyper.lam_v[g, f])
    return gibbs._block_conditional(j, a, f, data, sums, mu, lam, params.alpha[0])


# Implicit groups of tiny(implicit=True): group 2 (features 7-9, the items in
# users' sets) and group 3 (features 10-13, the users in items' sets).
@pytest.mark.parametrize("j, g, f", [(7, 2, -1), (9, 2, 1), (10, 3, -1), (12, 3, 0)])
def test_implicit_conditionals_match_the_joint_density(j, g, f):
    problem = tiny(seed=2, implicit=True)
    data, params, _ = problem
    cache = cache_of(data, params)
    sums = start_block(data, params, cache, g, f)[0]
    mean, precision = implicit_conditional(problem, cache, sums, j, g, f)
    field, index = ("b", j) if f < 0 else ("V", (j, f))
    np.testing.assert_allclose(
        brute_gaussian(problem, field, index), (mean, 1 / precision), rtol=1e-6
    )


@pytest.mark.parametrize("f", [-1, 0, 1])
def test_relation_block_sums_follow_each_move_exactly(f):
    # After features of the group move, the running sums give the next feature's
    # conditional as the joint does, and finishing the dimension leaves the
    # residuals and the sets' sums as computed afresh.
    problem = tiny(seed=5, implicit=True)
    data, params, hyper = problem
    g = 2
    cache = cache_of(data, params)
    block = start_block(data, params, cache, g, f)
    sums = block[0]
    for j, delta in ((7, 0.7), (8, -1.3)):
        a = params.b[j] if f < 0 else params.V[j, f]
        if f < 0:
            params.b[j] = a + delta
        else:
            params.V[j, f] = a + delta
        gibbs._block_update(j, a, delta, f, data, sums)
    mean, precision = implicit_conditional(problem, cache, sums, 9, g, f)
    field, index = ("b", 9) if f < 0 else ("V", (9, f))
    np.testing.assert_allclose(
        brute_gaussian(problem, field, index), (mean, 1 / precision), rtol=1e-6
    )
    finish_block(data, params, cache, g, f, block)
    e = params.e.copy()
    refresh_residuals(data, params)
    np.testing.assert_allclose(e, params.e, rtol=1e-12, atol=1e-12)
    fresh = cache_of(data, params)
    for name in fresh._fields:
        np.testing.assert_allclose(getattr(cache, name), getattr(fresh, name), atol=1e-12)


def test_noise_precision_conditional_matches_the_joint_density():
    problem = tiny()
    shape, rate = gibbs._alpha_conditional(problem[1].e, PRIOR)
    np.testing.assert_allclose(
        brute_gamma(problem, "alpha", 0), (shape / rate, shape / rate**2), rtol=1e-6
    )


@pytest.mark.parametrize("kind", ["bias", "factor"])
def test_hyperparameter_conditionals_match_the_joint_density(kind):
    problem = tiny()
    data, params, hyper = problem
    g = 1
    lo, hi = data.offsets[g], data.offsets[g + 1]
    if kind == "bias":
        values, mu_field, lam_field, index = params.b[lo:hi], "mu_b", "lam_b", g
    else:
        values, mu_field, lam_field, index = params.V[lo:hi, 1], "mu_v", "lam_v", (g, 1)
    mu, lam = getattr(hyper, mu_field)[index], getattr(hyper, lam_field)[index]
    shape, rate = gibbs._lambda_conditional(values, mu, PRIOR)
    np.testing.assert_allclose(
        brute_gamma(problem, lam_field, index), (shape / rate, shape / rate**2), rtol=1e-6
    )
    mean, precision = gibbs._mu_conditional(values, lam, PRIOR)
    np.testing.assert_allclose(
        brute_gaussian(problem, mu_field, index), (mean, 1 / precision), rtol=1e-6
    )


# ---------------------------------------------------------------- random streams


def draws(func, n=20_000):
    return np.array([func(naive_gibbs.key(5, 1, 9, i))[1] for i in range(n)])


def test_normal_stream_has_standard_moments():
    x = draws(naive_gibbs.normal)
    assert abs(x.mean()) < 4 / math.sqrt(len(x))
    assert abs(x.var() - 1) < 4 * math.sqrt(2 / len(x))
    assert abs(np.mean(x**4) - 3) < 0.15


@pytest.mark.parametrize("shape, rate", [(0.4, 1.0), (3.0, 2.0), (250.0, 10.0)])
def test_gamma_stream_has_the_gamma_moments(shape, rate):
    x = draws(lambda s: naive_gibbs.gamma(s, shape, rate))
    mean, var = shape / rate, shape / rate**2
    assert abs(x.mean() - mean) < 4 * math.sqrt(var / len(x))
    assert abs(x.var() / var - 1) < 0.08


def test_streams_differ_by_every_part_of_their_key():
    keys = {
        int(gibbs.stream_key(*key))
        for key in [(1, 1, 1, 1), (2, 1, 1, 1), (1, 2, 1, 1), (1, 1, 2, 1), (1, 1, 1, 2)]
    }
    assert len(keys) == 5


# ---------------------------------------------------------------- one sweep against its twin


def copies(problem):
    data, params, hyper = problem
    return (
        data,
        gibbs.GibbsParams(*(a.copy() for a in params)),
        gibbs.GibbsHyper(*(a.copy() for a in hyper)),
    )


@pytest.mark.parametrize(
    "sizes, implicit",
    [((4, 3), False), ((3, 3, 2), False), ((4, 3), True), ((3, 3, 2), True)],
    ids=["users-items", "three-groups", "implicit", "three-groups-implicit"],
)
@pytest.mark.parametrize("kernel", ["serial", "parallel"])
def test_sweep_matches_its_naive_twin(sizes, implicit, kernel):
    kernels = {"serial": gibbs.SERIAL, "parallel": gibbs.PARALLEL}[kernel]
    data, p1, h1 = copies(tiny(seed=3, sizes=sizes, implicit=implicit))
    _, p2, h2 = copies((data, p1, h1))
    for number in (1, 2, 3):
        sse1 = gibbs.gibbs_sweep(data, p1, h1, PRIOR, 11, number, kernels)
        sse2 = naive_gibbs.sweep(data, p2, h2, PRIOR, 11, number)
        assert sse1 == pytest.approx(sse2, rel=1e-9)
    for a, b in zip(p1 + h1, p2 + h2):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("implicit", [False, True], ids=["users-items", "implicit"])
def test_sweeps_cut_into_one_row_calls_stay_bit_identical(monkeypatch, implicit):
    data, p1, h1 = copies(tiny(seed=4, implicit=implicit))
    _, p2, h2 = copies((data, p1, h1))
    calls = []
    rows = gibbs.SERIAL.rows

    def counted(*args):
        calls.append(args[6] - args[5])
        return rows(*args)

    gibbs.gibbs_sweep(data, p1, h1, PRIOR, 5, 1)
    monkeypatch.setattr(gibbs, "units_per_call", lambda n, ns: 1)
    gibbs.gibbs_sweep(data, p2, h2, PRIOR, 5, 1, gibbs.SERIAL._replace(rows=counted))
    assert calls == [1] * int(data.offsets[data.rows.shape[0]])
    for a, b in zip(p1 + h1, p2 + h2):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- simulation-based calibration

SBC_PRIOR = gibbs.GibbsPrior(
    lam_w0=1.0,
    alpha_shape=8.0,
    alpha_rate=2.0,
    lam_shape=6.0,
    lam_rate=3.0,
    mu0=0.0,
    mu_strength=4.0,
)
SBC_SIZES = (5, 4)
SBC_REPLICATES = 300
SBC_BURN_IN = 100
SBC_DRAWS = 19  # ranks 0..19: 20 bins of 15 expected replicates each
SBC_THIN = 5
# The 0.999 quantile of the chi-square distribution with 19 degrees of freedom.
CHI2_19_999 = 43.82


def pair_prediction(data, u, i, w0, b, V):
    """The FM's prediction for user row ``u`` and item row ``i``, rated or not."""
    x = np.zeros(len(b))
    for a in (data.offsets[0] + u, data.offsets[1] + i):
        x[a] = 1.0
        for t in range(data.set_indptr[a], data.set_indptr[a + 1]):
            x[data.set_feat[t]] += data.set_w[t]
    xv = x @ V
    return w0 + x @ b + 0.5 * np.sum(xv**2 - (x**2) @ (V**2))


def sbc_ranks(kernels, seed=0, implicit=False):
    """Ranks of the true value among posterior draws, per statistic, over replicates.

    Each replicate draws hyperparameters, parameters and ratings from the prior
    (in NumPy, independent of the sampler's streams), then runs the chain from
    a fixed start. The statistics are the noise precision, the prediction for
    a rated and an unrated pair, and one precision hyperparameter (with
    ``implicit``, that of the implicit group of the items users rated).

    ``w0`` and the groups' means are left out: the data identify only their sum
    with the biases, along which coordinate-wise Gibbs moves slowly, so their
    ranks would need far longer chains than this test can afford (with these
    settings ``w0``'s ranks are not uniform). Their conditionals are checked
    against the joint density above.
    """
    rng = np.random.default_rng(seed)
    rows = [np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 0, 4, 2, 1, 3]),
            np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 2, 3, 1, 3, 2])]  # fmt: skip
    n = len(rows[0])
    sets = implicit_sets(rows, SBC_SIZES) if implicit else ()
    sizes = [*SBC_SIZES, *(group[1] for group in sets)]
    n_groups, nf = len(sizes), sum(sizes)
    watched = 2 if implicit else 0
    ranks = np.zeros((SBC_REPLICATES, 4), dtype=np.int64)
    P = SBC_PRIOR
    for rep in range(SBC_REPLICATES):
        lam = rng.gamma(P.lam_shape, 1 / P.lam_rate, size=(n_groups, 2))  # (group, bias/factor)
        mu = rng.normal(P.mu0, 1 / np.sqrt(P.mu_strength * lam))
        alpha = rng.gamma(P.alpha_shape, 1 / P.alpha_rate)
        w0 = rng.normal(0, 1 / math.sqrt(P.lam_w0))
        b = np.concatenate([rng.normal(mu[g, 0], 1 / math.sqrt(lam[g, 0]), s)
                            for g, s in enumerate(sizes)])  # fmt: skip
        V = np.concatenate([rng.normal(mu[g, 1], 1 / math.sqrt(lam[g, 1]), (s, 1))
                            for g, s in enumerate(sizes)])  # fmt: skip
        data = gibbs.gibbs_data(rows, list(SBC_SIZES), np.zeros(n), sets)
        clean, _ = naive_gibbs.predictions(data, w0, b, V)
        data = data._replace(y=clean + rng.normal(0, 1 / math.sqrt(alpha), n))

        def stats(w0, b, V, alpha, lam_v, data=data):
            rated = pair_prediction(data, 0, 0, w0, b, V)
            unrated = pair_prediction(data, 4, 1, w0, b, V)
            return np.array([alpha, rated, unrated, lam_v])

        truth = stats(w0, b, V, alpha, lam[watched, 1])
        params = gibbs.GibbsParams(
            np.zeros(1), np.zeros(nf), np.full((nf, 1), 0.5), np.ones(1), np.zeros(n)
        )
        hyper = gibbs.initial_hyper(n_groups, 1)
        count = np.zeros(4, dtype=np.int64)
        number = 0
        for _ in range(SBC_BURN_IN):
            number += 1
            gibbs.gibbs_sweep(data, params, hyper, P, rep, number, kernels)
        for _ in range(SBC_DRAWS):
            for _ in range(SBC_THIN):
                number += 1
                gibbs.gibbs_sweep(data, params, hyper, P, rep, number, kernels)
            drawn = stats(
                params.w0[0], params.b, params.V, params.alpha[0], hyper.lam_v[watched, 0]
            )
            count += drawn < truth
        ranks[rep] = count
    return ranks


def chi_square(ranks):
    """Chi-square statistic of each column of ranks against uniform over 0..SBC_DRAWS."""
    expected = len(ranks) / (SBC_DRAWS + 1)
    counts = np.stack([np.bincount(col, minlength=SBC_DRAWS + 1) for col in ranks.T])
    return ((counts - expected) ** 2 / expected).sum(axis=1)


def broken_kernels(name):
    """The sweep's kernels compiled again with the Gaussian conditional ``name``'s
    variance doubled."""
    names = dict(vars(gibbs))
    original = getattr(gibbs, name)

    def halved(*args):
        mean, precision = original(*args)
        return mean, precision / 2

    names[name] = numba.njit(halved)
    callers = ("_draw_row", "_draw_hyper", "_draw_globals", "_draw_rows", "_draw_block")
    for caller in callers:
        func = getattr(gibbs, caller)
        func = getattr(func, "py_func", func)
        names[caller] = numba.njit(types.FunctionType(func.__code__, names, caller))
    return gibbs.SweepKernels(
        gibbs._aggregates_serial,
        gibbs._residuals_serial,
        names["_draw_globals"],
        names["_draw_rows"],
        gibbs._anchor_steps_serial,
        names["_draw_block"],
    )


@pytest.mark.parametrize("implicit", [False, True], ids=["users-items", "implicit"])
def test_sbc_ranks_are_uniform(implicit):
    stat = chi_square(sbc_ranks(gibbs.SERIAL, implicit=implicit))
    assert (stat < CHI2_19_999).all(), stat


@pytest.mark.parametrize(
    "name, implicit",
    [
        ("_bias_conditional", False),
        ("_factor_conditional", False),
        ("_block_conditional", True),
    ],
)
def test_sbc_fails_when_a_conditional_is_broken(name, implicit):
    stat = chi_square(sbc_ranks(broken_kernels(name), implicit=implicit))
    assert stat.max() > 2 * CHI2_19_999, stat


# ---------------------------------------------------------------- the model


@pytest.fixture(scope="module")
def planted():
    ratings, truth = make_synthetic_ratings(
        150, 60, 7000, rank=3, noise=0.5, step=None, random_state=0
    )
    return ratings.iloc[:6000], ratings.iloc[6000:], truth


@pytest.fixture(scope="module")
def dense():
    """Rows with about 180 ratings each, so that estimation error is a few percent."""
    ratings, truth = make_synthetic_ratings(
        250, 250, 50_000, rank=2, noise=0.5, step=None, random_state=0
    )
    return ratings.iloc[:45_000], ratings.iloc[45_000:], truth


@pytest.fixture(scope="module")
def fitted(dense):
    train, valid, _ = dense
    return BayesianMF(n_factors=2, n_samples=120, random_state=0).fit(train, valid=valid)


def test_posterior_mean_reaches_the_noise_floor(fitted, dense):
    _, valid, truth = dense
    mse = fitted.evaluate(valid)["mse"]
    assert mse < 1.06 * truth.noise_floor, (mse, truth.noise_floor)
    # The history averages every sweep after the burn-in, predictions the kept ones.
    assert fitted.history_["valid_mse"][-1] == pytest.approx(mse, rel=0.01)


def test_predictive_std_covers_the_nominal_share(fitted, dense):
    _, valid, _ = dense
    mean, std = fitted.predict(valid["user"], valid["item"], return_std=True)
    inside = np.mean(np.abs(valid["rating"] - mean) <= 1.96 * std)
    assert 0.93 <= inside <= 0.97, inside
    assert (std > 0.45).all()  # at least the noise (0.5) minus its estimation error


def test_history_has_one_entry_per_sweep(fitted):
    assert fitted.history_["epoch"] == list(range(1, 121))
    assert fitted.n_epochs_ == 120
    assert fitted.n_burn_in_ == 3 and fitted.thin_ == 3  # 120 // 40; ceil(117 / max_kept=50)
    assert len(fitted.sample_w0_) == 39
    assert np.isfinite(fitted.history_["train_mse"]).all()


def test_thinning_bounds_the_kept_samples(planted):
    train, _, _ = planted
    model = BayesianMF(n_factors=2, n_samples=30, n_burn_in=5, max_kept=4, random_state=0)
    model.fit(train)
    assert model.thin_ == 7
    assert model.sample_user_factors_.shape == (3, len(model.user_index_), 2)


def test_same_seed_gives_a_bit_identical_model(planted):
    train, _, _ = planted
    a = BayesianMF(n_factors=2, n_samples=20, random_state=3).fit(train)
    b = BayesianMF(n_factors=2, n_samples=20, random_state=3).fit(train)
    c = BayesianMF(n_factors=2, n_samples=20, random_state=4).fit(train)
    for name in a._state_names():
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.sample_user_factors_, c.sample_user_factors_)


@two_threads
def test_thread_count_does_not_change_the_samples(monkeypatch, planted):
    from latentfactors.models import bayesian

    train, _, _ = planted
    monkeypatch.setattr(bayesian, "PARALLEL_MIN_RATINGS", 1)
    one = BayesianMF(n_factors=2, n_samples=10, random_state=1, n_threads=1).fit(train)
    two = BayesianMF(n_factors=2, n_samples=10, random_state=1, n_threads=2).fit(train)
    for name in one._state_names():
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
    users, items = train["user"].to_numpy(), train["item"].to_numpy()
    np.testing.assert_array_equal(one.predict(users, items), two.predict(users, items))


def test_rescaled_ratings_rescale_the_model(planted):
    train, _, _ = planted
    a = BayesianMF(n_factors=2, n_samples=10, random_state=1).fit(train)
    scaled = train.assign(rating=train["rating"] * 20)
    b = BayesianMF(n_factors=2, n_samples=10, random_state=1).fit(scaled)
    users, items = train["user"].to_numpy()[:50], train["item"].to_numpy()[:50]
    np.testing.assert_allclose(b.predict(users, items), 20 * a.predict(users, items), rtol=1e-4)


def test_predictions_are_clipped_to_the_rating_range(fitted, dense):
    train, _, _ = dense
    pred = fitted.predict(train["user"], train["item"])
    assert pred.min() >= train["rating"].min() and pred.max() <= train["rating"].max()


def test_save_and_load_through_a_path_and_a_file_object(fitted, dense, tmp_path):
    _, valid, _ = dense
    path = tmp_path / "bayes.npz"
    fitted.save(path)
    buffer = io.BytesIO()
    fitted.save(buffer)
    buffer.seek(0)
    expected = fitted.predict(valid["user"], valid["item"], return_std=True)
    for loaded in (BayesianMF.load(path), load_model(buffer)):
        assert isinstance(loaded, BayesianMF)
        got = loaded.predict(valid["user"], valid["item"], return_std=True)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
        assert loaded.get_params() == {**fitted.get_params(), "callback": None}


def test_a_file_with_mismatched_samples_is_refused(fitted, tmp_path):
    path = tmp_path / "bayes.npz"
    fitted.save(path)
    with np.load(path, allow_pickle=False) as npz:
        contents = dict(npz)
    contents["state/sample_user_bias_"] = contents["state/sample_user_bias_"][:, :-1]
    np.savez(path, **contents)
    with pytest.raises(ModelFileError, match="sample_user_bias_ has shape"):
        BayesianMF.load(path)


def test_pickle_round_trip(fitted, dense):
    _, valid, _ = dense
    clone = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(
        clone.predict(valid["user"], valid["item"]), fitted.predict(valid["user"], valid["item"])
    )


def test_unknown_ids_fall_back_to_the_known_parts(fitted):
    user = fitted.user_index_.decode(np.array([0]))[0]
    item = fitted.item_index_.decode(np.array([0]))[0]
    both_unknown = fitted.predict([10**9], [10**9])
    assert both_unknown[0] == pytest.approx(float(np.mean(fitted.sample_w0_, dtype=np.float64)))
    mean, std = fitted.predict([user, 10**9], [10**9, item], return_std=True)
    assert np.isfinite(mean).all() and (std > 0).all()
    with pytest.raises(UnknownIdError, match="is not known to this model"):
        fitted.recommend(10**9)


def test_recommend_and_similar_items_use_the_posterior_means(fitted):
    user = fitted.user_index_.decode(np.array([0]))[0]
    top = fitted.recommend(user, n=5)
    assert len(top) == 5
    item = fitted.item_index_.decode(np.array([0]))[0]
    assert len(fitted.similar_items(item, n=3)) == 3
    np.testing.assert_allclose(
        fitted.user_factors_, fitted.sample_user_factors_.mean(axis=0), rtol=1e-5, atol=1e-6
    )


def user_ratings(model, train, code=0):
    user = model.user_index_.decode(np.array([code]))[0]
    return user, train[train["user"] == user][["item", "rating"]]


def test_fold_in_solves_each_samples_conditional_mean(fitted, dense):
    """Against an independent solution: per sample, the prior as extra rows of a
    weighted least-squares problem, solved by ``lstsq``."""
    _, ratings = user_ratings(fitted, dense[0])
    codes = fitted.item_index_.encode(ratings["item"].to_numpy())
    r = ratings["rating"].to_numpy(np.float64)
    solutions = []
    for s in range(len(fitted.sample_w0_)):
        Q = fitted.sample_item_factors_[s, codes].astype(np.float64)
        X = np.hstack([np.ones((len(codes), 1)), Q])
        t = r - fitted.sample_w0_[s] - fitted.sample_item_bias_[s, codes].astype(np.float64)
        root_alpha = 1 / math.sqrt(fitted.sample_noise_var_[s])
        mean0, precision0 = fitted.sample_user_prior_[s].astype(np.float64)
        A = np.vstack([root_alpha * X, np.diag(np.sqrt(precision0))])
        y = np.concatenate([root_alpha * t, np.sqrt(precision0) * mean0])
        solutions.append(np.linalg.lstsq(A, y, rcond=None)[0])
    expected = np.mean(solutions, axis=0)
    vector, bias = fitted.fold_in(ratings)
    assert vector.dtype == np.float32 and vector.shape == (fitted.n_factors,)
    np.testing.assert_allclose(vector, expected[1:], rtol=1e-5, atol=1e-6)
    assert bias == pytest.approx(expected[0], rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("model_name", ["fitted", "fitted_implicit"])
def test_a_folded_in_training_user_predicts_as_the_model_does(request, model_name, dense):
    # With implicit sets the folded-in user gets the set they had in training (the
    # items they rated): their effective vector and bias must land where the model has them.
    model = request.getfixturevalue(model_name)
    user, ratings = user_ratings(model, dense[0], code=3)
    items = model.item_index_.decode(np.arange(len(model.item_index_)))
    known = model.predict(np.full(len(items), user), items)
    folded = model.predict_for(ratings, items)
    assert np.max(np.abs(folded - known)) < 0.15
    assert np.corrcoef(folded, known)[0, 1] > 0.99


def test_recommend_for_a_new_user_leaves_out_what_they_rated(fitted, dense):
    _, ratings = user_ratings(fitted, dense[0], code=5)
    top = fitted.recommend_for(ratings, n=5)
    assert len(top) == 5 and not set(top["item"]) & set(ratings["item"])


def test_not_fitted_model_says_so():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        BayesianMF().predict([1], [2])


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_factors": 0}, "n_factors"),
        ({"n_samples": 0}, "n_samples"),
        ({"n_samples": 10, "n_burn_in": 10}, "n_burn_in must be below n_samples"),
        ({"max_kept": 0}, "max_kept"),
        ({"init_std": 0.0}, "init_std"),
        ({"n_threads": 0}, "n_threads"),
        ({"clip": "yes"}, "clip"),
        ({"implicit": 1}, "implicit"),
        ({"time": "week"}, "time must be one of"),
    ],
)
def test_bad_hyperparameters_are_refused(params, message, planted):
    with pytest.raises(ValueError, match=message):
        BayesianMF(**params).fit(planted[0])


def test_return_std_must_be_a_bool(fitted):
    with pytest.raises(ValueError, match="return_std must be True or False"):
        fitted.predict([1], [1], return_std="yes")


def test_callback_sees_every_sweep(planted):
    seen = []
    BayesianMF(
        n_factors=2, n_samples=5, random_state=0, callback=lambda e, logs: seen.append(e)
    ).fit(planted[0])
    assert seen == [1, 2, 3, 4, 5]


def test_registered_for_loading_and_import():
    import latentfactors

    assert MODEL_CLASSES["BayesianMF"] is BayesianMF
    assert latentfactors.BayesianMF is BayesianMF


@pytest.mark.parametrize("stop_at", [2, 9], ids=["in-burn-in", "after-burn-in"])
def test_an_interrupted_chain_keeps_what_it_sampled(planted, stop_at):
    def stop(epoch, logs):
        if epoch == stop_at:
            raise KeyboardInterrupt

    model = BayesianMF(n_factors=2, n_samples=12, n_burn_in=4, random_state=0, callback=stop)
    with pytest.raises(KeyboardInterrupt):
        model.fit(planted[0])
    assert model.n_epochs_ == stop_at
    assert len(model.sample_w0_) == max(1, stop_at - 4)
    assert np.isfinite(model.predict(planted[1]["user"], planted[1]["item"])).all()


def test_a_callback_can_save_the_model_mid_chain(planted, tmp_path):
    def save(epoch, logs):
        if epoch == 6:
            model.save(tmp_path / "mid.npz")

    model = BayesianMF(n_factors=2, n_samples=8, n_burn_in=4, random_state=0, callback=save)
    model.fit(planted[0])
    assert len(BayesianMF.load(tmp_path / "mid.npz").sample_w0_) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"n_factors": 3},
        {"n_samples": 9},
        {"n_burn_in": 1},
        {"max_kept": 2},
        {"init_std": 0.3},
        {"random_state": 1},
        {"implicit": True},
    ],
)
def test_every_hyperparameter_changes_the_model(planted, change):
    train, valid, _ = planted
    base = {"n_factors": 2, "n_samples": 8, "random_state": 0}
    a = BayesianMF(**base).fit(train).predict(valid["user"], valid["item"])
    b = BayesianMF(**{**base, **change}).fit(train).predict(valid["user"], valid["item"])
    assert not np.array_equal(a, b)


def test_verbose_prints_one_line_per_sweep(planted, capsys):
    BayesianMF(n_factors=2, n_samples=3, random_state=0, verbose=1).fit(planted[0])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[-1].startswith("epoch 3/3")


def test_constant_ratings_fit_and_predict_that_constant():
    ratings = pd.DataFrame({"user": [1, 1, 2, 3], "item": [1, 2, 2, 3], "rating": [4.0] * 4})
    model = BayesianMF(n_factors=2, n_samples=10, random_state=0).fit(ratings)
    np.testing.assert_allclose(model.predict([1, 3], [2, 1]), 4.0)


# ---------------------------------------------------------------- implicit groups


@pytest.fixture(scope="module")
def fitted_implicit(dense):
    train, valid, _ = dense
    model = BayesianMF(n_factors=2, n_samples=120, implicit=True, random_state=0)
    return model.fit(train, valid=valid)


def test_implicit_model_reaches_the_noise_floor(fitted_implicit, dense):
    _, valid, truth = dense
    mse = fitted_implicit.evaluate(valid)["mse"]
    assert mse < 1.06 * truth.noise_floor, (mse, truth.noise_floor)


def test_implicit_samples_reproduce_the_chain_predictions(planted):
    # One kept sample, the last sweep's: its effective vectors and biases must give
    # the predictions the chain computed from all four groups (its training MSE).
    train, _, _ = planted
    model = BayesianMF(n_factors=3, n_samples=6, n_burn_in=5, implicit=True, random_state=0)
    model.fit(train)
    assert len(model.sample_w0_) == 1
    mse = model.evaluate(train)["mse"]
    assert mse == pytest.approx(model.history_["train_mse"][-1], rel=1e-5)


def test_implicit_model_saves_and_loads(fitted_implicit, dense, tmp_path):
    _, valid, _ = dense
    path = tmp_path / "implicit.npz"
    fitted_implicit.save(path)
    loaded = BayesianMF.load(path)
    assert loaded.implicit is True
    for a, b in zip(
        loaded.predict(valid["user"], valid["item"], return_std=True),
        fitted_implicit.predict(valid["user"], valid["item"], return_std=True),
    ):
        np.testing.assert_array_equal(a, b)
    with np.load(path, allow_pickle=False) as npz:
        contents = {k: v for k, v in npz.items() if "implicit_item_bias" not in k}
    np.savez(path, **contents)
    with pytest.raises(ModelFileError, match="sample_implicit_item_bias_"):
        BayesianMF.load(path)


@two_threads
def test_implicit_samples_do_not_depend_on_the_thread_count(monkeypatch, planted):
    from latentfactors.models import bayesian

    train, _, _ = planted
    monkeypatch.setattr(bayesian, "PARALLEL_MIN_RATINGS", 1)
    params = {"n_factors": 2, "n_samples": 6, "implicit": True, "random_state": 1}
    one = BayesianMF(**params, n_threads=1).fit(train)
    two = BayesianMF(**params, n_threads=2).fit(train)
    for name in one._state_names():
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))


def test_implicit_sets_are_the_distinct_rated_items_and_raters():
    from latentfactors.models.bayesian import _implicit_sets

    users = np.array([0, 0, 1, 0, 2], dtype=np.int32)  # user 0 rated item 1 twice
    items = np.array([1, 0, 1, 1, 2], dtype=np.int32)
    (a0, n0, p0, m0, w0), (a1, n1, p1, m1, w1) = _implicit_sets(users, items, 3, 3)
    assert (a0, n0, a1, n1) == (0, 3, 1, 3)
    assert p0.tolist() == [0, 2, 3, 4] and m0.tolist() == [0, 1, 1, 2]
    np.testing.assert_allclose(w0, [2**-0.5, 2**-0.5, 1.0, 1.0])
    assert p1.tolist() == [0, 1, 3, 4] and m1.tolist() == [0, 0, 1, 2]
    np.testing.assert_allclose(w1, [1.0, 2**-0.5, 2**-0.5, 1.0])


# ---------------------------------------------------------------- the day group

DAY = 86_400


@pytest.fixture(scope="module")
def daily():
    """Planted ratings with a strong effect of the calendar day: 40 days, each
    shifting its ratings by up to +-1, the test ratings on the same days."""
    ratings, truth = make_synthetic_ratings(
        120, 80, 9000, rank=2, noise=0.4, step=None, random_state=1
    )
    rng = np.random.default_rng(1)
    day = rng.integers(0, 40, len(ratings))
    shift = rng.uniform(-1, 1, 40)
    ratings = ratings.assign(
        rating=ratings["rating"] + shift[day], timestamp=(19_000 + day) * DAY + 3600
    )
    return ratings.iloc[:8000], ratings.iloc[8000:], truth


def test_day_numbers_from_seconds_and_datetimes_agree():
    from latentfactors.models.bayesian import _frame_days

    seconds = np.array([0, DAY - 1, DAY, 1_000_000_000])
    expected = [0, 0, 1, 1_000_000_000 // DAY]
    stamps = pd.to_datetime(seconds, unit="s")
    for column in (seconds, seconds.astype(float), stamps, stamps.tz_localize("UTC")):
        assert _frame_days(pd.DataFrame({"timestamp": column}), "x").tolist() == expected
    assert _frame_days(pd.DataFrame({"user": [1]}), "x") is None
    with pytest.raises(ValueError, match="NaN or infinite"):
        _frame_days(pd.DataFrame({"timestamp": [1.0, np.nan]}), "x")
    with pytest.raises(ValueError, match="seconds since the epoch or datetimes"):
        _frame_days(pd.DataFrame({"timestamp": ["2020-01-01"]}), "x")


def test_day_group_needs_timestamps(planted):
    train, _, _ = planted
    with pytest.raises(ValueError, match="timestamp column"):
        BayesianMF(n_factors=2, n_samples=3, time="day").fit(train)
    users, items, ratings = (train[c].to_numpy() for c in ("user", "item", "rating"))
    with pytest.raises(ValueError, match="timestamp column"):
        BayesianMF(n_factors=2, n_samples=3, time="day").fit((users, items, ratings))


@pytest.fixture(scope="module")
def fitted_daily(daily):
    train, valid, _ = daily
    model = BayesianMF(n_factors=2, n_samples=80, time="day", implicit=True, random_state=0)
    return model.fit(train, valid=valid)


def test_day_group_learns_a_day_effect(daily, fitted_daily):
    train, valid, _ = daily
    plain = BayesianMF(n_factors=2, n_samples=80, implicit=True, random_state=0).fit(train)
    with_days, without = fitted_daily.evaluate(valid)["mse"], plain.evaluate(valid)["mse"]
    assert with_days < 0.6 * without, (with_days, without)
    # The running valid MSE of the fit (all sweeps after the burn-in) saw the days too.
    assert fitted_daily.history_["valid_mse"][-1] == pytest.approx(with_days, rel=0.05)


def test_a_day_not_seen_in_training_is_the_day_groups_mean(daily, fitted_daily):
    _, valid, _ = daily
    m = fitted_daily
    unseen = valid.assign(timestamp=valid["timestamp"] + 1000 * DAY)
    none = m.predict(valid["user"], valid["item"])
    np.testing.assert_array_equal(m.predict(unseen), none)
    np.testing.assert_array_equal(m.predict(valid.drop(columns="timestamp")), none)
    assert not np.array_equal(m.predict(valid), none)
    # Each sample's prediction with its day group's mean bias and vector.
    u = m.user_index_.encode(valid["user"].to_numpy()[:20])
    i = m.item_index_.encode(valid["item"].to_numpy()[:20])
    f64 = np.float64
    P, Q = m.sample_user_factors_[:, u].astype(f64), m.sample_item_factors_[:, i].astype(f64)
    day = m.sample_day_mean_.astype(f64)
    per_sample = (
        m.sample_w0_[:, None] + m.sample_user_bias_[:, u] + m.sample_item_bias_[:, i]
        + np.einsum("spf,spf->sp", P, Q) + day[:, :1]
        + np.einsum("spf,sf->sp", P + Q, day[:, 1:])
    )  # fmt: skip
    lo, hi = m.rating_range_
    np.testing.assert_allclose(none[:20], np.clip(per_sample.mean(axis=0), lo, hi), rtol=1e-6)


def test_a_model_without_days_ignores_a_timestamp_column(fitted, dense):
    _, valid, _ = dense
    stamped = valid.assign(timestamp="2020-01-01")
    np.testing.assert_array_equal(fitted.predict(stamped), fitted.predict(valid))


def test_timestamps_far_beyond_seconds_are_refused():
    from latentfactors.models.bayesian import _frame_days

    with pytest.raises(ValueError, match="milliseconds"):
        _frame_days(pd.DataFrame({"timestamp": [1_500_000_000_000_000]}), "ratings")


def test_implicit_sets_with_a_repeated_member_are_refused():
    rows = [np.array([0, 1]), np.array([0, 1])]
    repeated = (0, 2, np.array([0, 2, 3]), np.array([1, 1, 0]), np.ones(3))
    with pytest.raises(ValueError, match="lists a feature twice"):
        gibbs.gibbs_data(rows, [2, 2], np.zeros(2), [repeated])
    bad_pointers = (0, 2, np.array([1, 2, 3]), np.array([1, 0, 0]), np.ones(3))
    with pytest.raises(ValueError, match="bad set pointers"):
        gibbs.gibbs_data(rows, [2, 2], np.zeros(2), [bad_pointers])


def test_day_samples_reproduce_the_chain_predictions(daily):
    train, _, _ = daily
    model = BayesianMF(n_factors=3, n_samples=6, n_burn_in=5, time="day", random_state=0)
    model.fit(train)
    assert model.evaluate(train)["mse"] == pytest.approx(model.history_["train_mse"][-1], rel=1e-5)


def test_day_model_saves_and_loads(daily, fitted_daily, tmp_path):
    _, valid, _ = daily
    path = tmp_path / "days.npz"
    fitted_daily.save(path)
    loaded = BayesianMF.load(path)
    assert loaded.time == "day"
    for a, b in zip(
        loaded.predict(valid, return_std=True), fitted_daily.predict(valid, return_std=True)
    ):
        np.testing.assert_array_equal(a, b)
    with np.load(path, allow_pickle=False) as npz:
        contents = dict(npz)
    contents["state/days_"] = contents["state/days_"][::-1].copy()
    np.savez(path, **contents)
    with pytest.raises(ModelFileError, match="increasing day numbers"):
        BayesianMF.load(path)


@two_threads
def test_day_samples_do_not_depend_on_the_thread_count(monkeypatch, daily):
    from latentfactors.models import bayesian

    train, _, _ = daily
    monkeypatch.setattr(bayesian, "PARALLEL_MIN_RATINGS", 1)
    params = {"n_factors": 2, "n_samples": 5, "time": "day", "implicit": True, "random_state": 2}
    one = BayesianMF(**params, n_threads=1).fit(train)
    two = BayesianMF(**params, n_threads=2).fit(train)
    for name in one._state_names():
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))


def test_sampled_precisions_of_every_group_are_kept(fitted_daily, fitted):
    assert fitted.group_names_ == ("user", "item")
    assert fitted_daily.group_names_ == ("user", "item", "day", "rated items", "raters")
    n_kept, k = len(fitted_daily.sample_w0_), fitted_daily.n_factors
    assert fitted_daily.sample_precision_.shape == (n_kept, 5, k + 1)
    for model in (fitted, fitted_daily):
        # The user group's are the ones fold-in uses.
        np.testing.assert_array_equal(model.sample_precision_[:, 0], model.sample_user_prior_[:, 1])
        assert (model.sample_precision_ > 0).all()


def test_preset_is_the_implicit_and_day_model(daily):
    from latentfactors import presets

    model = presets.bayes_timesvdpp(n_factors=2, n_samples=4, random_state=0)
    assert isinstance(model, BayesianMF) and (model.implicit, model.time) == (True, "day")
    assert model.fit(daily[0]).n_epochs_ == 4


@pytest.mark.parametrize("model_name", ["fitted_implicit", "fitted_daily"])
def test_fold_in_with_sets_and_days_solves_each_samples_conditional(request, model_name):
    """Against an independent solution per sample: the rating without a day is
    w0 + bi + (b + B + Zs) + (v + S) . q + mb + mv . (v + S + q) for the user's set
    sums S, B, Zs and the day group's mean (mb, mv); solve for (b, v) by lstsq
    with the prior as extra rows, then compare the effective vector and bias.
    A user with few ratings, so that the prior and the set both matter."""
    model = request.getfixturevalue(model_name)
    data = request.getfixturevalue("daily" if model_name == "fitted_daily" else "dense")
    train = data[0]
    user = train["user"].iloc[0]
    ratings = train[train["user"] == user].head(4)
    codes = model.item_index_.encode(ratings["item"].to_numpy())
    r = ratings["rating"].to_numpy(np.float64)
    members = np.unique(codes)
    w = 1 / math.sqrt(len(members))
    vectors, biases = [], []
    for s in range(len(model.sample_w0_)):
        A = model.sample_implicit_item_factors_[s, members].astype(np.float64)
        S = w * A.sum(axis=0)
        B = w * model.sample_implicit_item_bias_[s, members].astype(np.float64).sum()
        Zs = 0.5 * (S @ S - w * w * np.sum(A * A))
        mb, mv = 0.0, np.zeros_like(S)
        if model.time is not None:
            mb, mv = float(model.sample_day_mean_[s, 0]), model.sample_day_mean_[s, 1:]
        Q = model.sample_item_factors_[s, codes].astype(np.float64)
        X = np.hstack([np.ones((len(codes), 1)), Q + S + mv])
        t = (
            r - model.sample_w0_[s] - model.sample_item_bias_[s, codes] - B - Zs - Q @ S
            - mb - (S + Q) @ mv
        )  # fmt: skip
        root_alpha = 1 / math.sqrt(model.sample_noise_var_[s])
        mean0, precision0 = model.sample_user_prior_[s].astype(np.float64)
        design = np.vstack([root_alpha * X, np.diag(np.sqrt(precision0))])
        y = np.concatenate([root_alpha * t, np.sqrt(precision0) * mean0])
        b, *v = np.linalg.lstsq(design, y, rcond=None)[0]
        v = np.array(v)
        vectors.append(v + S)
        biases.append(b + B + Zs + v @ S)
    vector, bias = model.fold_in(ratings)
    np.testing.assert_allclose(vector, np.mean(vectors, axis=0), rtol=1e-4, atol=1e-5)
    assert bias == pytest.approx(np.mean(biases), rel=1e-5, abs=1e-6)


# Chains of many sweeps on thousands of ratings take hours as plain Python: the
# tests that run them (through these fixtures, or calibration by simulation) are
# left out where the kernels are not compiled (see the `jit` marker).
_CHAINS = {"planted", "dense", "fitted", "fitted_implicit", "fitted_daily", "daily"}
for _name, _test in list(globals().items()):
    if _name.startswith("test_") and callable(_test):
        _uses = set(inspect.signature(_test).parameters)
        if _uses & _CHAINS or "sbc" in _name or "model_name" in _uses:
            globals()[_name] = pytest.mark.jit("runs Gibbs chains on thousands of ratings")(_test)
