"""BiasedMF: kernels against their NumPy twins, gradients, and the estimator contract."""

from __future__ import annotations

import io
import json
import pickle

import numba
import numpy as np
import pandas as pd
import pytest

import latentfactors.models.biased_mf as bmf
from latentfactors import BiasedMF, DivergenceError, ModelFileError, NotFittedError, load_model
from latentfactors.data import make_synthetic_ratings
from latentfactors.data.coerce import TrainData
from latentfactors.data.ids import IdIndex
from latentfactors.kernels import _atomic as atomic
from latentfactors.kernels import adam as adam_kernels
from latentfactors.kernels import layout as layout_kernels
from latentfactors.kernels import sgd as sgd_kernels
from latentfactors.kernels._prefetch import LINE_BYTES, aligned_empty
from latentfactors.kernels.bundles import Embeddings, Ratings
from latentfactors.kernels.layout import BlockLayout, Blocks
from latentfactors.kernels.scoring import csr_by_user, with_threads
from tests import naive
from tests.conftest import two_threads

FAST = {"n_factors": 8, "n_epochs": 5, "random_state": 0}


def tiny_ratings(n_users=40, n_items=30, n=600, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    keys = rng.choice(n_users * n_items, size=n, replace=False)
    return pd.DataFrame(
        {
            "user": keys // n_items,
            "item": keys % n_items,
            "rating": rng.integers(1, 6, size=n).astype(np.float32),
        }
    )


@pytest.fixture(scope="module")
def ratings():
    return tiny_ratings()


@pytest.fixture(scope="module")
def synthetic():
    frame, truth = make_synthetic_ratings(500, 300, 90_000, rank=4, noise=0.5, random_state=1)
    return frame, truth


def encoded(frame) -> TrainData:
    ui, ii = IdIndex(frame["user"]), IdIndex(frame["item"])
    return TrainData(
        ui.encode(frame["user"]),
        ii.encode(frame["item"]),
        frame["rating"].to_numpy(np.float32),
        ui,
        ii,
    )


def block_layout(data, width, rng, by_user=False):
    """A BlockLayout of encoded ratings, which it takes over."""
    columns = {"users": data.users, "items": data.items, "ratings": data.ratings}
    data.users = data.items = data.ratings = None
    return BlockLayout(columns, len(data.user_index), len(data.item_index), width, rng, by_user)


def random_params(rng, n_users, n_items, k, dtype=np.float32):
    return (
        (rng.standard_normal((n_users, k)) * 0.3).astype(dtype),
        (rng.standard_normal((n_items, k)) * 0.3).astype(dtype),
        (rng.standard_normal(n_users) * 0.1).astype(dtype),
        (rng.standard_normal(n_items) * 0.1).astype(dtype),
    )


# ---------------------------------------------------------------- kernels vs twins


@pytest.mark.parametrize(
    "width, by_user, run_ratings",
    [(1, False, 4096), (3, False, 4096), (3, True, 4096), (3, True, 5)],
)
def test_sgd_block_epoch_matches_naive_twin(monkeypatch, ratings, width, by_user, run_ratings):
    monkeypatch.setattr(layout_kernels, "RUN_RATINGS", run_ratings)
    data = encoded(ratings)
    rng = np.random.default_rng(3)
    layout = block_layout(data, width, rng, by_user)
    if run_ratings < 10:  # several runs per block, so their order and wrap-round count
        assert len(layout.run_ptr) - 1 > 2 * width * width
    blocks, plan = layout.epoch_args(rng)
    P, Q, bu, bi = random_params(rng, 40, 30, 6)
    twin_blocks = Blocks(*(a.copy() if isinstance(a, np.ndarray) else a for a in blocks))
    assert blocks.reshuffle is (not by_user)  # grouped layouts sweep from a random start
    if by_user:  # the kernel reads each group's user from group_users
        assert np.array_equal(blocks.group_users, layout.users[layout.group_ptr[:-1]])
    twin_params = [a.copy() for a in (P, Q, bu, bi)]
    f32 = np.float32
    hyper = sgd_kernels.SGDHyper(f32(3.0), f32(0.02), f32(0.05), f32(0.01))
    loss = sgd_kernels._sgd_block_epoch(blocks, plan, Embeddings(P, Q, bu, bi), hyper)
    twin_loss = naive.sgd_block_epoch(twin_blocks, plan, *twin_params, *hyper)
    for name in ("users", "items", "ratings"):  # the same shuffles, bit for bit
        np.testing.assert_array_equal(getattr(blocks, name), getattr(twin_blocks, name))
    np.testing.assert_array_equal(blocks.run_order, twin_blocks.run_order)  # same run order
    for got, want in zip((P, Q, bu, bi), twin_params):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert loss == pytest.approx(twin_loss, rel=1e-4)


@pytest.mark.parametrize("by_user", [False, True])
def test_block_layout_groups_blocks_and_keeps_every_rating(ratings, by_user):
    data = encoded(ratings)
    before = set(zip(data.users.tolist(), data.items.tolist(), data.ratings.tolist()))
    columns = {"users": data.users, "items": data.items, "ratings": data.ratings}
    n_users, n_items = len(data.user_index), len(data.item_index)
    layout = BlockLayout(columns, n_users, n_items, 4, np.random.default_rng(0), by_user)
    assert columns == {}  # the layout took the arrays over: no second copy kept
    if by_user:  # rows renumbered so that every stripe is a consecutive range
        users, items = layout.user_rows[layout.users], layout.item_rows[layout.items]
    else:
        assert layout.user_rows is None and layout.item_rows is None
        users, items = layout.users, layout.items
    after = set(zip(users.tolist(), items.tolist(), layout.ratings.tolist()))
    assert before == after
    ptr = layout.block_ptr
    assert ptr[0] == 0 and ptr[-1] == len(ratings) and np.all(np.diff(ptr) >= 0)
    user_stripe, item_stripe = {}, {}
    for b in range(16):
        for u in layout.users[ptr[b] : ptr[b + 1]]:
            assert user_stripe.setdefault(int(u), b // 4) == b // 4
        for i in layout.items[ptr[b] : ptr[b + 1]]:
            assert item_stripe.setdefault(int(i), b % 4) == b % 4
    groups = layout.group_ptr
    assert groups[-1] == len(ratings)
    if by_user:  # every group is one user's ratings within one block, and never empty
        assert np.all(np.diff(groups) > 0)
        for g in range(len(groups) - 1):
            assert len(set(layout.users[groups[g] : groups[g + 1]].tolist())) == 1
        block_of = np.searchsorted(ptr, np.arange(len(ratings)), side="right") - 1
        assert len(groups) - 1 == len(set(zip(layout.users.tolist(), block_of.tolist())))
        # a block's groups follow its users' row order, so a run reads user rows in order
        for b in range(16):
            firsts = layout.users[groups[layout.block_groups[b] : layout.block_groups[b + 1]]]
            assert np.all(np.diff(firsts) > 0)
        # each stripe's rows are one consecutive range, in stripe order
        for rows, stripe in ((user_stripe, 0), (item_stripe, 1)):
            codes = np.array(sorted(rows))
            stripes = np.array([rows[c] for c in codes])
            assert np.all(np.diff(stripes) >= 0), stripe
        P = np.arange(40 * 3, dtype=np.float32).reshape(40, 3)
        Q = -np.arange(30 * 3, dtype=np.float32).reshape(30, 3)
        bu, bi = P[:, 0].copy(), Q[:, 0].copy()
        inside = layout.to_layout((P, Q, bu, bi))
        assert all(a.ctypes.data % LINE_BYTES == 0 for a in inside)  # rows start on a line
        assert np.array_equal(inside[0], P[layout.user_rows])
        assert np.array_equal(inside[1], Q[layout.item_rows])
        assert np.array_equal(inside[3], bi[layout.item_rows])
        back = [np.zeros_like(a) for a in (P, Q, bu, bi)]
        layout.to_model(inside, back)
        for got, want in zip(back, (P, Q, bu, bi)):
            assert np.array_equal(got, want)


def test_runs_are_stretches_of_consecutive_groups_within_a_block():
    # three blocks: groups of sizes (3, 4, 2, 5 | - | 6, 1, 1, 1)
    sizes = [3, 4, 2, 5, 6, 1, 1, 1]
    group_ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    block_groups = np.array([0, 4, 4, 8], dtype=np.int64)
    run_ptr, block_runs = layout_kernels._runs(group_ptr, block_groups, 6)
    # block 0 starts its groups at offsets 0, 3, 7, 9 -> stretches 0, 0, 1, 1;
    # block 2 at 0, 6, 7, 8 -> 0, 1, 1, 1
    assert run_ptr.tolist() == [0, 2, 4, 5, 8]
    assert block_runs.tolist() == [0, 2, 2, 4]
    one_run_each, _ = layout_kernels._runs(group_ptr, block_groups, 10**6)
    assert one_run_each.tolist() == [0, 4, 8]


@pytest.mark.parametrize("run_ratings", [1, 50, 10**6])
def test_layout_runs_cover_every_group_once(monkeypatch, synthetic, run_ratings):
    monkeypatch.setattr(layout_kernels, "RUN_RATINGS", run_ratings)
    frame, _ = synthetic
    layout = block_layout(encoded(frame), 4, np.random.default_rng(0), by_user=True)
    run_ptr, block_runs, bg = layout.run_ptr, layout.block_runs, layout.block_groups
    assert run_ptr[0] == 0 and run_ptr[-1] == len(layout.group_ptr) - 1
    assert np.all(np.diff(run_ptr) > 0)  # never empty
    assert block_runs[0] == 0 and block_runs[-1] == len(run_ptr) - 1
    for b in range(16):  # a block's runs start at its first group and end at its last
        assert run_ptr[block_runs[b]] == bg[b] or block_runs[b] == block_runs[b + 1]
        assert run_ptr[block_runs[b + 1]] == bg[b + 1] or block_runs[b] == block_runs[b + 1]
    ratings_per_run = np.diff(layout.group_ptr[run_ptr])
    if run_ratings == 1:
        assert len(run_ptr) == len(layout.group_ptr)  # one group each
    elif run_ratings == 10**6:
        assert len(run_ptr) - 1 == np.count_nonzero(np.diff(bg))  # one run per block
    else:  # a run ends with the group that crosses its stretch
        biggest = np.diff(layout.group_ptr).max()
        assert ratings_per_run.max() < run_ratings + biggest
    assert sorted(layout.run_order.tolist()) == list(range(len(run_ptr) - 1))


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("stripe", [7, 300, 5000])  # one pass; two passes; wide low buckets
def test_group_by_user_is_a_stable_sort_by_rank_within_each_block(stripe, n_threads):
    rng = np.random.default_rng(stripe)
    n = 20_000
    users = rng.integers(0, stripe, n).astype(np.int32)
    urank = rng.permutation(stripe).astype(np.int32)
    block_ptr = np.array([0, 0, 4_000, 4_001, 13_000, n], dtype=np.int64)  # an empty block too
    col = np.arange(n, dtype=np.float32)  # records where each entry came from
    keys = users.copy()
    group = layout_kernels._group_by_user
    with_threads(n_threads, group, col, users, urank, block_ptr, stripe)
    with_threads(n_threads, group, keys, keys, urank, block_ptr, stripe)  # sorting its own keys
    for lo, hi in zip(block_ptr[:-1], block_ptr[1:]):
        want = lo + np.argsort(urank[users[lo:hi]], kind="stable")
        np.testing.assert_array_equal(col[lo:hi], want.astype(np.float32))
        np.testing.assert_array_equal(keys[lo:hi], users[want])
    ptr = layout_kernels._user_cells(keys, urank, block_ptr, stripe)
    want_ptr = np.zeros(5 * stripe + 1, dtype=np.int64)
    for b in range(5):
        ranks = urank[users[block_ptr[b] : block_ptr[b + 1]]]
        want_ptr[b * stripe + 1 : (b + 1) * stripe + 1] = np.bincount(ranks, minlength=stripe)
    np.testing.assert_array_equal(ptr, np.cumsum(want_ptr))


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("n_users", [2, 40, 1000, 70_000])  # one or two passes
def test_csr_by_user_lists_each_users_items_sorted(n_users, n_threads):
    rng = np.random.default_rng(n_users)
    n = 30_000
    users = rng.integers(0, n_users, n).astype(np.int32)
    users[users == n_users // 2] = 0  # a user with no ratings
    items = rng.integers(0, 500, n).astype(np.int32)
    indptr, indices = csr_by_user(users, items, n_users, n_threads)
    assert indptr.dtype == np.int64 and indices.dtype == np.int32
    np.testing.assert_array_equal(
        indptr, np.r_[0, np.cumsum(np.bincount(users, minlength=n_users))]
    )
    order = np.lexsort((items, users))
    np.testing.assert_array_equal(indices, items[order])


def test_csr_by_user_without_ratings():
    empty = np.zeros(0, dtype=np.int32)
    for n_users in (0, 3):
        indptr, indices = csr_by_user(empty, empty, n_users)
        assert np.array_equal(indptr, np.zeros(n_users + 1)) and len(indices) == 0


def test_shuffle_groups_permutes_each_group_deterministically():
    u = np.arange(100, dtype=np.int32)
    i = u.copy()
    r = u.astype(np.float32)
    ptr = np.array([0, 10, 90, 90, 100], dtype=np.int64)  # an empty group too
    layout_kernels._shuffle_groups(u, i, r, ptr, np.uint64(12345))
    for lo, hi in zip(ptr[:-1], ptr[1:]):
        assert sorted(u[lo:hi].tolist()) == list(range(lo, hi))  # stays inside its group
    assert not np.array_equal(u[10:90], np.arange(10, 90))
    assert not np.array_equal(u[90:], np.arange(90, 100))
    assert np.array_equal(u, i) and np.array_equal(u, r.astype(np.int32))  # triples move together
    u2 = np.arange(100, dtype=np.int32)
    naive.shuffle_groups(u2, u2.copy(), u2.astype(np.float32), ptr, 12345)
    assert np.array_equal(u, u2)


@pytest.mark.parametrize("batch", [64, 500])  # 500: several tasks per parallel pass
@pytest.mark.parametrize("parts", [1, 3])
@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("records", [False, True])  # interleaved views, as fit uses
def test_adam_epoch_matches_naive_twin(records, dense, parts, batch):
    nu, ni, k = 300, 200, 4
    ratings = tiny_ratings(nu, ni, n=3000, seed=4)
    data = encoded(ratings)
    assert (len(data.user_index), len(data.item_index)) == (nu, ni)
    rng = np.random.default_rng(5)
    # Dense mode's closed form for skipped steps neglects eps against sqrt(v) (see the
    # module): exact for eps far below sqrt(v), as here, not for every Keras eps.
    eps = 1e-10 if dense else 1e-7
    P, Q, bu, bi = random_params(rng, nu, ni, k)
    twin = [a.copy() for a in (P, Q, bu, bi)]
    order = rng.permutation(len(ratings)).astype(np.int32)
    f32 = np.float32
    params, moments, scratch = adam_kernels.adam_buffers(P, Q, bu, bi, records=records)
    P, Q, bu, bi = params
    if records:
        assert not P.flags.c_contiguous and np.array_equal(P, twin[0])
    n_batches = -(-len(order) // batch)
    drift = adam_kernels.drift_table(0.01, 0.9, 0.999, 0, n_batches)
    hyper = adam_kernels.AdamHyper(f32(0.01), f32(0.9), f32(0.999), f32(eps), f32(0.05), f32(0.01))
    clock = adam_kernels.AdamClock(0, dense, np.zeros(nu, np.int64), np.zeros(ni, np.int64), drift)
    loss = adam_kernels._adam_epoch(
        Ratings(data.users, data.items, data.ratings),
        order,
        batch,
        params,
        f32(3.0),
        moments,
        scratch,
        hyper,
        clock,
        parts,
    )
    twin_moments = [(np.zeros(a.shape), np.zeros(a.shape)) for a in twin]
    twin_loss = naive.adam_epoch(
        data.users,
        data.items,
        data.ratings.astype(np.float64),
        order,
        batch,
        *twin,
        3.0,
        twin_moments,
        0.01,
        0.05,
        0.01,
        0,
        dense,
        eps=eps,
    )
    for got, want in zip((P, Q, bu, bi), twin):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
    assert loss == pytest.approx(twin_loss, rel=1e-4)


@pytest.mark.parametrize("reg, reg_bias", [(0.0, 0.0), (0.07, 0.03)])
def test_adam_gradient_matches_central_differences(reg, reg_bias):
    rng = np.random.default_rng(11)
    nu, ni, k, m = 6, 5, 3, 12
    users = rng.integers(0, nu, m).astype(np.int32)
    items = rng.integers(0, ni, m).astype(np.int32)
    ratings = rng.uniform(1, 5, m)
    P, Q, bu, bi = random_params(rng, nu, ni, k, dtype=np.float64)
    order = np.arange(m, dtype=np.int32)
    grads = [np.zeros_like(P), np.zeros_like(Q), np.zeros_like(bu), np.zeros_like(bi)]
    stamps = [np.full(nu, -1, np.int64), np.full(ni, -1, np.int64)]
    touched = [np.zeros(nu, np.int32), np.zeros(ni, np.int32)]
    adam_kernels._batch_gradient(
        Ratings(users, items, ratings),
        order,
        0,
        m,
        Embeddings(P, Q, bu, bi),
        3.2,
        reg,
        reg_bias,
        adam_kernels.RowScratch(*grads, *stamps, *touched),
        1,
    )
    untouched_u = np.setdiff1d(np.arange(nu), users)
    grads[0][untouched_u] = 0.0  # stale rows are never read: only touched rows count
    grads[2][untouched_u] = 0.0
    untouched_i = np.setdiff1d(np.arange(ni), items)
    grads[1][untouched_i] = 0.0
    grads[3][untouched_i] = 0.0
    params = [P, Q, bu, bi]
    h = 1e-6
    for p, g in zip(params, grads):
        numeric = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + h
            plus = naive.batch_objective(users, items, ratings, *params, 3.2, reg, reg_bias)
            p[idx] = old - h
            minus = naive.batch_objective(users, items, ratings, *params, 3.2, reg, reg_bias)
            p[idx] = old
            numeric[idx] = (plus - minus) / (2 * h)
        np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------- reproducibility


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adam-dense"])
def test_same_seed_same_model_and_other_seed_differs(ratings, optimizer):
    a = BiasedMF(**{**FAST, "optimizer": optimizer}).fit(ratings)
    b = BiasedMF(**{**FAST, "optimizer": optimizer}).fit(ratings)
    c = BiasedMF(**{**FAST, "optimizer": optimizer, "random_state": 1}).fit(ratings)
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.user_factors_, c.user_factors_)


def test_optimizers_start_from_the_same_initialisation(ratings):
    inits = {}
    for opt in ("sgd", "adam"):
        model = BiasedMF(**{**FAST, "optimizer": opt, "n_epochs": 1})
        model.callback = None
        original = model._setup

        def capture(data, rng, _m=model, _o=original, _opt=opt):
            inits[_opt] = _m.user_factors_.copy()
            return _o(data, rng)

        model._setup = capture
        model.fit(ratings)
    assert np.array_equal(inits["sgd"], inits["adam"])


@pytest.mark.jit("compares thread counts on 90,000 ratings")
@two_threads
@pytest.mark.parametrize("cache_bytes", [10**9, 1024])
def test_threads_give_bit_identical_sgd(monkeypatch, synthetic, cache_bytes):
    frame, _ = synthetic
    # force a real grid on small data, with and without grouping by user
    monkeypatch.setattr(layout_kernels, "CACHE_BYTES", cache_bytes)
    monkeypatch.setattr(layout_kernels, "STRIPE_BYTES", 2048)
    monkeypatch.setattr(layout_kernels, "MIN_RATINGS_PER_BLOCK", 64)
    if cache_bytes > 10**6:
        monkeypatch.setattr(bmf, "grid_plan", lambda *a: (6, False))
    width, _ = bmf.grid_plan(500, 300, len(frame), 8)
    assert width > 2
    one = BiasedMF(**FAST, n_threads=1).fit(frame)
    two = BiasedMF(**FAST, n_threads=2).fit(frame)
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        assert np.array_equal(getattr(one, name), getattr(two, name))


@pytest.mark.jit("compares thread counts on 90,000 ratings")
@two_threads
@pytest.mark.parametrize("optimizer", ["adam", "adam-dense"])
def test_threads_give_bit_identical_adam(monkeypatch, synthetic, optimizer):
    frame, _ = synthetic
    monkeypatch.setattr(bmf, "ADAM_PARALLEL_MIN_BATCH", 256)  # batches of 512 use both threads
    kw = {**FAST, "optimizer": optimizer, "batch_size": 512, "n_epochs": 3}
    one = BiasedMF(**kw, n_threads=1).fit(frame)
    two = BiasedMF(**kw, n_threads=2).fit(frame)
    assert one.history_["train_mse"] == two.history_["train_mse"]
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        assert np.array_equal(getattr(one, name), getattr(two, name))


@pytest.mark.parametrize("width", [1, 3, 4])
def test_each_block_waits_for_the_last_earlier_block_on_its_stripes(width):
    rng = np.random.default_rng(width)
    for _ in range(5):
        pu, pi, shifts = rng.permutation(width), rng.permutation(width), rng.permutation(width)
        a = np.arange(width)
        schedule = pu[None, :] * width + pi[(a[None, :] + shifts[:, None]) % width]
        for rounds in (schedule, schedule[1:], schedule[:1]):
            after_u, after_i = sgd_kernels._block_waits(rounds.astype(np.int64))
            flat = rounds.ravel()
            for k, b in enumerate(flat):
                same_u = [j for j in range(k) if flat[j] // width == b // width]
                same_i = [j for j in range(k) if flat[j] % width == b % width]
                assert after_u[k] == (same_u[-1] if same_u else -1)
                assert after_i[k] == (same_i[-1] if same_i else -1)
    with pytest.raises(ValueError, match="outside the grid"):
        sgd_kernels._block_waits(np.full((1, width), width * width, dtype=np.int64))


@two_threads
def test_blocks_wait_for_their_stripes_on_any_thread_count():
    # Blocks of very unequal size (five heavy users on four user stripes), so
    # that a thread that did not wait for a block's stripes would overtake.
    rng = np.random.default_rng(4)
    users = np.concatenate([np.repeat(np.arange(5), 6000), np.repeat(np.arange(5, 200), 10)])
    items = rng.integers(0, 100, len(users))
    ratings = rng.integers(1, 6, len(users)).astype(np.float32)
    data = TrainData(
        users.astype(np.int32),
        items.astype(np.int32),
        ratings,
        IdIndex(np.arange(200)),
        IdIndex(np.arange(100)),
    )
    layout = block_layout(data, 4, np.random.default_rng(0), by_user=True)
    sizes = np.diff(layout.block_ptr)
    assert sizes.max() > 2 * sizes.min()
    start = layout.to_layout(random_params(np.random.default_rng(1), 200, 100, 8))
    order = layout.run_order.copy()
    f32 = np.float32
    hyper = sgd_kernels.SGDHyper(f32(3.5), f32(0.02), f32(0.02), f32(0.01))
    for seed in range(6):
        results = []
        for threads in (1, 2, 2, 2):
            layout.run_order[:] = order
            rows = Embeddings(*(a.copy() for a in start))
            args = layout.epoch_args(np.random.default_rng(seed))
            sse = with_threads(threads, sgd_kernels._sgd_block_epoch, *args, rows, hyper)
            results.append((sse, rows))
        for sse, rows in results[1:]:
            assert sse == results[0][0]
            for got, want in zip(rows, results[0][1]):
                np.testing.assert_array_equal(got, want)


@two_threads
def test_atomics_count_every_claim_once_across_threads():
    n = 20_000
    claims = np.zeros(1, dtype=np.int64)
    done = np.zeros(n, dtype=np.int64)
    order = _claim_in_order(n, claims, done)
    assert claims[0] == n + 4  # every worker's last claim finds nothing left
    assert np.array_equal(np.sort(order), np.arange(n)) and done.all()


@numba.njit(parallel=True)
def _claim_in_order(n, claims, done):
    """Workers claim 0..n-1; each waits for the one before to be done, then logs it."""
    log = np.full(n, -1, dtype=np.int64)
    for _ in numba.prange(4):
        while True:
            k = atomic.fetch_add(claims, 0, 1)
            if k >= n:
                break
            if k > 0:
                while atomic.load(done, k - 1) == 0:
                    pass
            log[k] = k if k == 0 or log[k - 1] == k - 1 else -2  # saw the one before
            atomic.store(done, k, 1)
    return log


@two_threads
def test_compare_exchange_lets_exactly_one_thread_take_each_slot():
    slots = np.zeros(5000, dtype=np.int64)
    takers = _take_slots(slots)
    assert np.array_equal(slots, np.ones(5000, dtype=np.int64))
    assert takers.sum() == len(slots)  # each slot taken once, over all workers
    arr = np.array([3], dtype=np.int64)
    assert not _swap(arr, 4, 9) and arr[0] == 3
    assert _swap(arr, 3, 9) and arr[0] == 9


@numba.njit(parallel=True)
def _take_slots(slots):
    takers = np.zeros(4, dtype=np.int64)
    for w in numba.prange(4):
        for k in range(len(slots)):
            if atomic.compare_exchange(slots, k, 0, 1):
                takers[w] += 1
    return takers


@numba.njit
def _swap(arr, old, new):
    return atomic.compare_exchange(arr, 0, old, new)


@pytest.mark.jit("checks Numba's typing errors")
def test_atomics_refuse_arrays_other_than_int64():
    with pytest.raises(numba.core.errors.TypingError):
        _add_one(np.zeros(2, dtype=np.int32))
    frozen = np.zeros(2, dtype=np.int64)
    frozen.flags.writeable = False
    with pytest.raises(numba.core.errors.TypingError):
        _add_one(frozen)


@numba.njit
def _add_one(arr):
    return atomic.fetch_add(arr, 0, 1)


def test_grid_depends_on_data_not_threads():
    assert layout_kernels.grid_plan(671, 9066, 80_000, 8) == (
        1,
        False,
    )  # fits in cache: one shuffle
    width, by_user = layout_kernels.grid_plan(200_000, 50_000, 20_000_000, 32)
    assert by_user and 4 <= width <= 64
    # never more blocks than the ratings can fill
    assert layout_kernels.grid_size(10**6, 10**6, 10_000, 128) ** 2 * 1024 <= 10_000 + 1024


@pytest.mark.jit("fits 90,000 ratings for 25 epochs, twice")
def test_block_schedule_converges_like_a_plain_shuffle(monkeypatch, synthetic):
    frame, truth = synthetic
    fresh = truth.sample(20_000, random_state=7)
    params = dict(n_factors=4, learning_rate=0.005, reg=0.02, n_epochs=25, random_state=0)
    plain = BiasedMF(**params).fit(frame).evaluate(fresh)["mse"]
    monkeypatch.setattr(bmf, "grid_plan", lambda *a: (8, True))
    blocked = BiasedMF(**params).fit(frame).evaluate(fresh)["mse"]
    assert abs(blocked - plain) <= 0.02 * plain, (plain, blocked)


# ---------------------------------------------------------------- learning


@pytest.mark.jit("fits 90,000 ratings for many epochs")
@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.005), ("adam", 0.003)])
def test_learns_planted_structure_close_to_noise_floor(synthetic, optimizer, lr):
    frame, truth = synthetic
    fresh = truth.sample(20_000, random_state=7)
    model = BiasedMF(
        4,
        optimizer=optimizer,
        learning_rate=lr,
        reg=0.02,
        n_epochs=100,
        batch_size=128,
        random_state=0,
    )
    model.fit(frame, valid=truth.sample(5_000, random_state=8))
    mse = model.evaluate(fresh)["mse"]
    assert mse <= 1.05 * truth.noise_floor, (mse, truth.noise_floor)
    # and far better than the biases alone
    biases_only = BiasedMF(1, init_std=1e-6, reg=10.0, random_state=0, n_epochs=30).fit(frame)
    assert mse < 0.9 * biases_only.evaluate(fresh)["mse"]


PARAM_CHANGES = {
    "n_factors": 4,
    "optimizer": "adam",
    "learning_rate": 0.05,
    "reg": 0.3,
    "reg_bias": 0.5,
    "n_epochs": 3,
    "init_std": 0.3,
    "init": "uniform",
    "center": False,
    "random_state": 9,
}


@pytest.mark.parametrize("name, value", sorted(PARAM_CHANGES.items()))
def test_every_hyperparameter_changes_the_result(ratings, name, value):
    base = dict(FAST)
    probe = tiny_ratings(seed=1)
    ref = BiasedMF(**base).fit(ratings).predict(probe)
    changed = BiasedMF(**{**base, name: value}).fit(ratings).predict(probe)
    assert not np.allclose(ref, changed)


def test_batch_size_early_stopping_and_patience_change_the_result(ratings):
    valid = tiny_ratings(seed=3)
    adam = {**FAST, "optimizer": "adam", "n_epochs": 30}
    ref = BiasedMF(**adam).fit(ratings).predict(valid)
    assert not np.allclose(ref, BiasedMF(**adam, batch_size=16).fit(ratings).predict(valid))
    run = {**FAST, "n_epochs": 40, "learning_rate": 0.05, "reg": 0.0}
    stopped = BiasedMF(**run, patience=1).fit(ratings, valid=valid)
    patient = BiasedMF(**run, patience=5).fit(ratings, valid=valid)
    full = BiasedMF(**run, early_stopping=False).fit(ratings, valid=valid)
    assert stopped.n_epochs_ < patient.n_epochs_ <= full.n_epochs_ == 40
    assert not np.allclose(stopped.predict(valid), full.predict(valid))


def test_early_stopping_restores_the_best_epoch(ratings):
    valid = tiny_ratings(seed=3)
    model = BiasedMF(**{**FAST, "n_epochs": 40, "learning_rate": 0.05, "reg": 0.0}, patience=3).fit(
        ratings, valid=valid
    )
    hist = model.history_
    best = int(np.argmin(hist["valid_mse"]))
    assert model.best_epoch_ == best + 1
    assert model.n_epochs_ == len(hist["epoch"]) == model.best_epoch_ + 3
    assert model.evaluate(valid)["mse"] == pytest.approx(hist["valid_mse"][best], rel=1e-6)


def test_without_early_stopping_the_last_epoch_is_kept_and_reported(ratings):
    valid = tiny_ratings(seed=3)
    params = {**FAST, "n_epochs": 25, "learning_rate": 0.05, "reg": 0.0}
    model = BiasedMF(**params, early_stopping=False).fit(ratings, valid=valid)
    hist = model.history_
    assert int(np.argmin(hist["valid_mse"])) + 1 < 25  # overfits: the best epoch is earlier
    assert model.n_epochs_ == model.best_epoch_ == 25  # but the last one is kept
    assert model.evaluate(valid)["mse"] == pytest.approx(hist["valid_mse"][-1], rel=1e-6)


# ---------------------------------------------------------------- prediction


def test_unknown_ids_fall_back_to_mean_plus_known_bias(ratings):
    model = BiasedMF(**FAST, clip=False).fit(ratings)
    known_u, known_i = ratings["user"].iloc[0], ratings["item"].iloc[0]
    ui = model.user_index_.encode([known_u])[0]
    ii = model.item_index_.encode([known_i])[0]
    pred = model.predict([known_u, 10_000, 10_000], [10_001, known_i, 10_001])
    mu = model.global_mean_
    np.testing.assert_allclose(
        pred, [mu + model.user_bias_[ui], mu + model.item_bias_[ii], mu], rtol=1e-6
    )
    # ids of the other type are refused, not silently predicted as unknown
    with pytest.raises(TypeError, match="ids given are strings"):
        model.predict(["x"], [known_i])
    frame = ratings.astype({"item": str})
    with pytest.raises(TypeError, match="convert them"):
        model.evaluate(frame)


def test_predict_frame_and_arrays_agree_and_clip_holds(ratings):
    model = BiasedMF(**{**FAST, "learning_rate": 0.05, "reg": 0.0, "n_epochs": 30}).fit(ratings)
    a = model.predict(ratings)
    b = model.predict(ratings["user"].to_numpy(), ratings["item"].to_numpy())
    assert np.array_equal(a, b)
    assert a.min() >= 1.0 and a.max() <= 5.0
    unclipped = model.set_params(clip=False).predict(ratings)
    assert unclipped.min() < 1.0 or unclipped.max() > 5.0
    assert np.isscalar(model.predict(ratings["user"].iloc[0], ratings["item"].iloc[0])[0])


def test_evaluate_reports_the_error_metrics(ratings):
    model = BiasedMF(**FAST).fit(ratings)
    got = model.evaluate(ratings)
    err = ratings["rating"].to_numpy(np.float64) - model.predict(ratings)
    assert got["mse"] == pytest.approx(np.mean(err**2))
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)))
    assert got["mae"] == pytest.approx(np.mean(np.abs(err)))


def test_tuple_input_and_string_ids():
    users = np.array(["ann", "bob", "ann", "cy"])
    items = np.array(["x", "y", "y", "x"])
    model = BiasedMF(**FAST).fit((users, items, np.array([5.0, 3.0, 4.0, 1.0])))
    assert model.user_index_.ids.tolist() == ["ann", "bob", "cy"]
    assert model.predict(["ann"], ["x"]).shape == (1,)


# ---------------------------------------------------------------- progress


@pytest.mark.parametrize("flag", [True, np.True_])
def test_verbose_true_is_accepted_and_saved(ratings, capsys, tmp_path, flag):
    model = BiasedMF(**{**FAST, "n_epochs": 2}, verbose=flag).fit(ratings)
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    model.save(tmp_path / "m.npz")
    assert BiasedMF.load(tmp_path / "m.npz").verbose is True
    with pytest.raises(ValueError, match="verbose must be an integer >= 0"):
        BiasedMF(verbose=-1).fit(ratings)


def test_verbose_prints_one_keras_like_line_per_epoch(ratings, capsys):
    BiasedMF(**{**FAST, "n_epochs": 3}, verbose=1).fit(ratings, valid=tiny_ratings(seed=3))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[2].startswith("epoch 3/3 - ")
    assert "s - train_mse " in lines[2] and " - valid_mse " in lines[2]


def test_callback_gets_epoch_and_logs(ratings):
    seen = []
    BiasedMF(**{**FAST, "n_epochs": 4}, callback=lambda e, logs: seen.append((e, logs))).fit(
        ratings
    )
    assert [e for e, _ in seen] == [1, 2, 3, 4]
    assert set(seen[0][1]) == {"train_mse", "seconds"}
    assert seen[-1][1]["train_mse"] < seen[0][1]["train_mse"]


@pytest.mark.parametrize("refit", [False, True])
def test_a_checkpoint_saved_by_a_callback_loads_as_that_epoch(ratings, refit):
    """Saving from a callback writes the epoch just run, on a first fit and on a refit."""
    model = BiasedMF(**{**FAST, "n_epochs": 5})
    if refit:
        model.fit(ratings)  # best_epoch_ 5 left over; the refit below runs 3
    files = []

    def checkpoint(epoch, logs):
        buffer = io.BytesIO()
        model.save(buffer)
        files.append((epoch, buffer.getvalue(), model.predict(ratings)))

    model.set_params(n_epochs=3, callback=checkpoint)
    model.fit(ratings, valid=tiny_ratings(seed=3))
    assert [e for e, _, _ in files] == [1, 2, 3]
    for epoch, data, predicted in files:
        loaded = load_model(io.BytesIO(data))
        assert (loaded.n_epochs_, loaded.best_epoch_) == (epoch, epoch)
        assert np.array_equal(loaded.predict(ratings), predicted)


# ---------------------------------------------------------------- persistence


def test_an_interrupt_before_the_first_epoch_ends_leaves_the_model_as_it_was(ratings, monkeypatch):
    model = BiasedMF(**FAST).fit(ratings)
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(model).items()}
    other = tiny_ratings(seed=7)

    def interrupt(self, *args):
        raise KeyboardInterrupt

    for method in ("_setup", "_epoch"):  # while laying out, and in the first epoch
        with monkeypatch.context() as m:
            m.setattr(BiasedMF, method, interrupt)
            with pytest.raises(KeyboardInterrupt):
                model.fit(other)
        assert model.history_ == before["history_"]
        np.testing.assert_array_equal(model.user_factors_, before["user_factors_"])
        assert model.user_index_ == before["user_index_"]
    fresh = BiasedMF(**FAST)
    with monkeypatch.context() as m:
        m.setattr(BiasedMF, "_setup", interrupt)
        with pytest.raises(KeyboardInterrupt):
            fresh.fit(ratings)
    with pytest.raises(NotFittedError):
        fresh.predict([1], [1])


def test_save_keeps_links_modes_and_read_only_files(ratings, tmp_path):
    import os
    import stat

    model = BiasedMF(**FAST).fit(ratings)
    real = tmp_path / "real.npz"
    model.save(real)
    os.chmod(real, 0o600)  # private: it holds the ids
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    refit = BiasedMF(**{**FAST, "n_epochs": FAST["n_epochs"] + 1}).fit(ratings)
    refit.save(link)
    assert link.is_symlink()  # still a link, and the file it names was replaced
    assert load_model(real).n_epochs_ == refit.n_epochs_
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    os.chmod(real, 0o444)
    with pytest.raises(PermissionError, match="real.npz: the file is read-only"):
        model.save(real)
    assert load_model(real).n_epochs_ == refit.n_epochs_
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.npz", "real.npz"]


def test_save_load_path_file_and_pickle_round_trip(ratings, tmp_path):
    model = BiasedMF(**FAST, optimizer="adam").fit(ratings, valid=tiny_ratings(seed=3))
    probe = tiny_ratings(seed=4)
    want = model.predict(probe)
    path = tmp_path / "model.npz"
    model.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temp files left
    loaded = BiasedMF.load(path)
    assert np.array_equal(loaded.predict(probe), want)
    assert loaded.get_params() == {**model.get_params(), "callback": None}
    assert loaded.history_ == model.history_
    assert (loaded.n_epochs_, loaded.best_epoch_) == (model.n_epochs_, model.best_epoch_)
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    assert np.array_equal(load_model(buffer).predict(probe), want)
    clone = pickle.loads(pickle.dumps(model))
    assert np.array_equal(clone.predict(probe), want)


def test_pickle_drops_an_unpicklable_callback(ratings):
    model = BiasedMF(**FAST, callback=lambda e, logs: None).fit(ratings)
    clone = pickle.loads(pickle.dumps(model))
    assert clone.callback is None
    assert np.array_equal(clone.predict(ratings), model.predict(ratings))


def test_string_ids_survive_save_without_pickle(tmp_path):
    model = BiasedMF(**FAST).fit((np.array(["a", "b"]), np.array(["x", "y"]), np.array([4.0, 2.0])))
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        assert npz["user_ids"].dtype.kind == "U"
    assert BiasedMF.load(tmp_path / "m.npz").user_index_.ids.tolist() == ["a", "b"]


def test_loading_bad_files_gives_clear_errors(ratings, tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(ModelFileError, match="not a readable latentfactors model") as info:
        BiasedMF.load(junk)
    # NumPy's advice to unpickle the file is not passed on
    assert "(not an .npz archive)" in str(info.value) and "pickle" not in str(info.value)
    assert info.value.file == junk
    other = tmp_path / "other.npz"
    np.savez(other, a=np.arange(3))
    with pytest.raises(ModelFileError, match="not a latentfactors model file"):
        BiasedMF.load(other)
    good = tmp_path / "good.npz"
    BiasedMF(**FAST).fit(ratings).save(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:-200])
    with pytest.raises(ModelFileError):
        BiasedMF.load(truncated)
    with np.load(good, allow_pickle=False) as npz:
        contents = dict(npz)
    contents["state/user_bias_"] = contents["state/user_bias_"][:-1]
    damaged = tmp_path / "damaged.npz"
    np.savez(damaged, **contents)
    with pytest.raises(ModelFileError, match="damaged"):
        BiasedMF.load(damaged)
    with pytest.raises(FileNotFoundError):
        BiasedMF.load(tmp_path / "missing.npz")


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c.update(
            seen_indptr=np.r_[0, np.full(len(c["seen_indptr"]) - 2, -(10**9)), c["seen_indptr"][-1]]
        ),
        lambda c: c.update(seen_indptr=c["seen_indptr"][::-1].copy()),
        lambda c: c.update({"state/user_bias_": np.repeat(c["state/user_bias_"][:, None], 2, 1)}),
        lambda c: c.update({"state/item_bias_": c["state/item_bias_"][:, None]}),
        lambda c: c["state/user_factors_"].__setitem__((0, 0), np.nan),
        lambda c: c.update(global_mean=np.array(np.nan)),
        lambda c: c.update(rating_range=c["rating_range"][::-1].copy()),
        lambda c: c.update(rating_range=np.array([1.0, 3.0, 5.0])),
        lambda c: c.update(fit_info=np.array(json.dumps({"n_epochs_": 5, "predict": 1}))),
        lambda c: c.update(fit_info=np.array(json.dumps({"n_epochs_": 5, "best_epoch_": 6}))),
        lambda c: c.update(seen_items=c["seen_items"].astype(np.float64) + 0.5),
        lambda c: c.pop("format_version"),
        lambda c: c.update(format_version=np.array("x")),
        lambda c: c.update(
            hyperparams=np.array(
                json.dumps({**json.loads(str(c["hyperparams"])), "learning_rate": "x"})
            )
        ),
        lambda c: c.pop("model_class"),
        lambda c: c.update(history=np.array("3")),
        lambda c: c.update(
            history=np.array(json.dumps({**json.loads(str(c["history"])), "train_mse": ["a"]}))
        ),
        lambda c: c.update(
            history=np.array(json.dumps({**json.loads(str(c["history"])), "seconds": []}))
        ),
    ],
    ids=[
        "indptr-out-of-range",
        "indptr-decreasing",
        "2-D-user-bias",
        "2-D-item-bias",
        "nan-factor",
        "nan-mean",
        "reversed-range",
        "three-value-range",
        "unknown-fit-info",
        "best-after-last-epoch",
        "float-seen-items",
        "no-version",
        "bad-version",
        "bad-param",
        "no-model-class",
        "history-not-a-dict",
        "history-text-mse",
        "history-short-list",
    ],
)
def test_tampered_model_files_are_rejected_on_load(ratings, tmp_path, edit):
    good = tmp_path / "good.npz"
    BiasedMF(**FAST).fit(ratings).save(good)
    with np.load(good, allow_pickle=False) as npz:
        contents = dict(npz)
    edit(contents)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **contents)
    with pytest.raises(ModelFileError, match="damaged"):
        BiasedMF.load(bad)


def test_saving_into_a_missing_folder_names_the_folder(ratings, tmp_path):
    model = BiasedMF(**FAST).fit(ratings)
    with pytest.raises(FileNotFoundError, match=r"folder .*nope does not exist"):
        model.save(tmp_path / "nope" / "m.npz")


def test_saved_files_get_the_usual_file_mode(ratings, tmp_path):
    import os

    path = tmp_path / "m.npz"
    old = os.umask(0o022)
    try:
        BiasedMF(**FAST).fit(ratings).save(path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_ratings_beyond_float32_are_a_clear_error(ratings):
    frame = ratings.copy()
    frame["rating"] = frame["rating"].astype(np.float64)
    frame.loc[3, "rating"] = 1e39
    with pytest.raises(ValueError, match="beyond float32's range"):
        BiasedMF(**FAST).fit(frame)


def test_failed_save_leaves_the_old_file_intact(ratings, tmp_path, monkeypatch):
    model = BiasedMF(**FAST).fit(ratings)
    path = tmp_path / "m.npz"
    model.save(path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


# ---------------------------------------------------------------- estimator rules


def test_get_set_params_and_refit_starts_fresh(ratings):
    model = BiasedMF(8, reg=0.2)
    assert model.get_params()["reg"] == 0.2 and model.get_params()["n_factors"] == 8
    clone = BiasedMF(**model.get_params())
    assert repr(clone) == "BiasedMF(n_factors=8, reg=0.2)"
    with pytest.raises(ValueError, match="'regg' is not a parameter of BiasedMF"):
        model.set_params(regg=1)
    model.set_params(random_state=0, n_epochs=3)
    first = model.fit(ratings).predict(ratings)
    second = model.fit(ratings).predict(ratings)
    assert np.array_equal(first, second)


@pytest.mark.parametrize("grid", [None, (3, True)])
def test_divergence_raises_a_named_error(monkeypatch, ratings, grid):
    if grid:  # trained on renumbered copies: the check must look at those
        monkeypatch.setattr(bmf, "grid_plan", lambda *a: grid)
    with pytest.raises(DivergenceError, match=r"epoch 1\b.*smaller learning_rate"):
        BiasedMF(**FAST, learning_rate=1e6, reg=0.0, init_std=10.0).fit(ratings)


@pytest.mark.parametrize("optimizer", ["adam", "adam-dense"])
def test_adam_divergence_names_the_parameters(ratings, optimizer):
    # Adam trains on copies in its records: the check must look at those
    model = BiasedMF(**FAST, optimizer=optimizer, learning_rate=1e20, reg=0.0)
    with pytest.raises(DivergenceError, match=r"parameters \['user_factors_'"):
        model.fit(ratings)


def test_a_diverged_fit_leaves_the_model_as_it_was(ratings):
    model = BiasedMF(**FAST).fit(ratings)
    before = {k: v.copy() for k, v in model._get_state().items()}
    pred = model.predict([0, 1], [0, 1])
    model.set_params(learning_rate=1e6, reg=0.0, init_std=10.0)
    with pytest.raises(DivergenceError):
        model.fit(ratings)
    for name, arr in model._get_state().items():
        assert np.array_equal(arr, before[name])
    np.testing.assert_array_equal(model.predict([0, 1], [0, 1]), pred)
    assert model.learning_rate == 1e6  # hyperparameters stay as the caller set them
    fresh = BiasedMF(**FAST, learning_rate=1e6, reg=0.0, init_std=10.0)
    with pytest.raises(DivergenceError):
        fresh.fit(ratings)
    with pytest.raises(NotFittedError):
        fresh.predict([0], [0])


def test_an_error_in_a_refit_leaves_the_model_as_it_was(ratings):
    model = BiasedMF(**FAST).fit(ratings)
    before = {k: v.copy() for k, v in model._get_state().items()}
    other = ratings.assign(user=ratings["user"] + 1000)  # other ids: a different model

    def fail(epoch, logs):
        if epoch == 2:
            raise RuntimeError("my callback broke")

    with pytest.raises(RuntimeError, match="my callback broke"):
        model.set_params(callback=fail).fit(other)
    assert model.user_index_.ids.min() < 1000  # the ids of the earlier fit
    for name, arr in model._get_state().items():
        assert np.array_equal(arr, before[name])
    assert model.n_epochs_ == FAST["n_epochs"]


@pytest.mark.parametrize(
    "params, words",
    [
        (
            {"learning_rate": 0.01, "reg": 1e30},
            ["reg=1e+30 times the learning rate", "smaller reg"],
        ),
        ({"learning_rate": 0.01, "reg": 0.0, "reg_bias": 500.0}, ["reg_bias=500"]),
        ({"learning_rate": 0.01, "init_std": 1e30}, ["init_std=1e+30", "default is 0.02"]),
    ],
)
def test_divergence_names_the_hyperparameter_out_of_scale(ratings, params, words):
    with pytest.raises(DivergenceError) as info:
        BiasedMF(**{**FAST, **params}).fit(ratings)
    for word in words:
        assert word in str(info.value)


def test_a_finite_blow_up_of_the_training_error_is_a_divergence(monkeypatch, ratings):
    from latentfactors.models import base

    model = BiasedMF(**FAST).fit(ratings)
    before = model.user_factors_.copy()
    monkeypatch.setattr(base, "MSE_BLOWUP", 1e-3)  # any real training MSE is over this
    with pytest.raises(DivergenceError, match=r"epoch 1: the training MSE reached .* over 0.001"):
        model.fit(ratings)
    assert np.array_equal(model.user_factors_, before)  # left as it was


def test_a_divergence_on_ratings_of_timestamp_size_suspects_the_columns():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"user": rng.integers(0, 50, 2000), "item": rng.integers(0, 40, 2000)}
    ).drop_duplicates()
    stamps = frame.assign(rating=rng.uniform(8e8, 1.5e9, len(frame)))
    # Training is scale-free, so only a step too large for any scale diverges here.
    with pytest.raises(DivergenceError, match=r"ratings reach 1.5e\+09: .* check which column"):
        BiasedMF(learning_rate=5.0, random_state=0).fit(stamps)
    with pytest.raises(DivergenceError) as info:
        BiasedMF(learning_rate=5.0, random_state=0).fit(frame.assign(rating=4.0))
    assert "check which column" not in str(info.value)  # ratings on a usual scale


def test_unusual_id_inputs_to_predict_and_fit(ratings):
    model = BiasedMF(**FAST).fit(ratings)
    users, items = ratings["user"].to_numpy()[:5], ratings["item"].to_numpy()[:5]
    want = model.predict(users, items)
    # a generator is read once, not taken for one id
    np.testing.assert_array_equal(model.predict((u for u in users), iter(items)), want)
    with pytest.raises(TypeError, match="users must be ordered .* not a set"):
        model.predict(set(users), items)
    # float16 ids (pandas has no float16 index) and integer ids from 2**63 up
    small = pd.DataFrame({"user": [1, 2, 3], "item": [1, 2, 3], "rating": [4.0, 3.0, 5.0]})
    half = BiasedMF(**FAST).fit(small.astype({"user": np.float16}))
    np.testing.assert_array_equal(
        half.predict(np.array([1, 2], dtype=np.float16), [1, 2]), half.predict([1, 2], [1, 2])
    )
    big = small.assign(user=np.array([2**63, 2**64 - 1, 5], dtype=object))
    assert BiasedMF(**FAST).fit(big).user_index_.ids.dtype == np.uint64
    with pytest.raises(ValueError, match="integer ids must fit in 64 bits"):
        BiasedMF(**FAST).fit(small.assign(user=np.array([2**64, 1, 5], dtype=object)))
    with pytest.raises(ValueError, match="n_threads must be an integer >= 1, or -1 for all"):
        BiasedMF(n_threads=-2).fit(small)
    with pytest.raises(ValueError, match="NaN or infinite, e.g. row 1; drop or fill them first"):
        model.evaluate(small.assign(rating=[4.0, np.nan, 5.0]))


@pytest.mark.parametrize("optimizer", ["adam", "adam-dense"])
def test_adam_batches_larger_than_the_data_are_one_batch(ratings, optimizer):
    """The kernel's scratch was sized by batch_size: 10**10 failed to allocate."""
    whole = BiasedMF(**FAST, optimizer=optimizer, batch_size=len(ratings)).fit(ratings)
    huge = BiasedMF(**FAST, optimizer=optimizer, batch_size=10**10).fit(ratings)
    np.testing.assert_array_equal(huge.user_factors_, whole.user_factors_)
    np.testing.assert_array_equal(huge.item_bias_, whole.item_bias_)


def test_set_params_checks_the_values_and_keeps_the_old_ones_on_error(ratings, tmp_path):
    model = BiasedMF(**FAST).fit(ratings)
    for bad in ({"reg": -5}, {"clip": "yes"}, {"n_factors": 4.0}, {"reg": 0.1, "n_epochs": 0}):
        with pytest.raises(ValueError, match=next(iter(bad.keys() - {"reg"}), "reg")):
            model.set_params(**bad)
        assert model.get_params() == BiasedMF(**FAST).get_params()  # nothing was set
    model.set_params(reg=0.5).save(tmp_path / "m.npz")  # a valid change still saves and loads
    assert load_model(tmp_path / "m.npz").reg == 0.5


def test_check_params_checks_as_set_params_does_and_sets_nothing():
    model = BiasedMF(**FAST)
    model.check_params(reg=0.5, optimizer="adam")
    assert model.get_params() == BiasedMF(**FAST).get_params()
    with pytest.raises(ValueError, match=r"n_factors must be an integer >= 1 and <= 100000"):
        model.check_params(n_factors=0)
    with pytest.raises(
        ValueError, match=r"optimizer must be one of \['adam', 'adam-dense', 'sgd'\]"
    ):
        model.check_params(optimizer="rmsprop")
    with pytest.raises(ValueError, match="'regg' is not a parameter of BiasedMF"):
        model.check_params(regg=1)
    assert model.get_params() == BiasedMF(**FAST).get_params()


def test_numpy_numbers_as_hyperparameters_save_as_plain_numbers(ratings, tmp_path):
    params = {"n_factors": np.int64(4), "n_epochs": np.int32(2), "reg": np.float32(0.25)}
    model = BiasedMF(**params, random_state=np.int64(3)).fit(ratings)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert (loaded.n_factors, loaded.n_epochs, loaded.random_state) == (4, 2, 3)
    assert loaded.reg == pytest.approx(0.25) and type(loaded.reg) is float
    np.testing.assert_array_equal(loaded.predict(ratings), model.predict(ratings))


def test_an_interrupted_fit_can_still_be_saved(ratings, tmp_path):
    def stop(epoch, logs):
        if epoch == 2:
            raise KeyboardInterrupt

    model = BiasedMF(**FAST, callback=stop)
    with pytest.raises(KeyboardInterrupt):
        model.fit(ratings)
    assert model.n_epochs_ == 2 and model.best_epoch_ == 2
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert np.array_equal(loaded.user_factors_, model.user_factors_)


def test_changing_n_factors_after_fit_is_a_clear_error(ratings, tmp_path):
    model = BiasedMF(**FAST).fit(ratings)
    model.set_params(n_factors=4)
    with pytest.raises(ValueError, match=r"n_factors=4 \(fitted with 8\).*fit again"):
        model.predict([0], [0])
    with pytest.raises(ValueError, match="fit again"):
        model.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()
    model.set_params(n_factors=8)
    model.save(tmp_path / "m.npz")
    assert load_model(tmp_path / "m.npz").n_factors == 8


@pytest.mark.jit("fits 90,000 ratings")
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adam-dense"])
def test_model_arrays_are_current_whenever_something_reads_them(monkeypatch, synthetic, optimizer):
    # SGD on a renumbered grid, and Adam in its interleaved records, train on copies
    # of the parameters; the model's own arrays must still be current for callbacks,
    # validation and after fit.
    monkeypatch.setattr(bmf, "grid_plan", lambda *a: (4, True))
    frame, _ = synthetic
    seen = []

    names = ("user_factors_", "item_factors_", "user_bias_", "item_bias_")

    def callback(epoch, logs):
        seen.append({name: getattr(model, name).copy() for name in names})

    kw = {**FAST, "optimizer": optimizer}
    model = BiasedMF(**kw, callback=callback)
    model.fit(frame)
    assert len(seen) == FAST["n_epochs"]
    for name in names:
        # every array moved every epoch, and the last callback saw the final model
        assert all(not np.array_equal(a[name], b[name]) for a, b in zip(seen, seen[1:]))
        assert np.array_equal(seen[-1][name], getattr(model, name))
    # the model a callback sees after epoch e is the model that e epochs make
    short = BiasedMF(**{**kw, "n_epochs": 2}).fit(frame)
    for name in names:
        assert np.array_equal(seen[1][name], getattr(short, name))
    # with valid: each epoch's valid MSE is that of the model as it then stood
    held = frame.sample(2000, random_state=1)
    mses = []
    model = BiasedMF(
        **kw, early_stopping=False, callback=lambda e, logs: mses.append(model.evaluate(held))
    )
    model.fit(frame, valid=held)
    assert [m["mse"] for m in mses] == pytest.approx(model.history_["valid_mse"], rel=1e-6)


def test_predict_before_fit_is_a_clear_error():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        BiasedMF().predict([1], [2])


BAD_PARAMS = [
    ({"n_factors": 0}, "n_factors must be an integer >= 1"),
    ({"n_factors": 2.5}, "n_factors must be an integer"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of"),
    ({"learning_rate": 0.0}, "learning_rate must be a finite number > 0"),
    ({"learning_rate": float("nan")}, "learning_rate must be a finite number"),
    ({"reg": -1.0}, "reg must be a finite number >= 0"),
    ({"reg_bias": float("inf")}, "reg_bias must be a finite number"),
    ({"n_epochs": 0}, "n_epochs must be an integer >= 1"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"init_std": 0.0}, "init_std must be a finite number > 0"),
    ({"init": "zeros"}, "init must be one of"),
    ({"early_stopping": "yes"}, "early_stopping must be True or False"),
    ({"patience": 0}, "patience must be an integer >= 1"),
    ({"clip": 1}, "clip must be True or False"),
    ({"center": None}, "center must be True or False"),
    ({"random_state": -3}, "random_state must be a non-negative integer"),
    ({"random_state": "seed"}, "random_state must be None, an int"),
    ({"n_threads": 0}, "n_threads must be an integer >= 1"),
    ({"verbose": -1}, "verbose must be an integer >= 0"),
    ({"callback": 5}, "callback must be callable"),
]


@pytest.mark.parametrize("params, message", BAD_PARAMS)
def test_bad_hyperparameters_are_named(ratings, params, message):
    with pytest.raises(ValueError, match=message):
        BiasedMF(**params).fit(ratings)


def test_bad_training_data_is_rejected_before_any_kernel(ratings):
    model = BiasedMF(**FAST)
    with pytest.raises(ValueError, match="ratings is empty"):
        model.fit(ratings.iloc[:0])
    with pytest.raises(ValueError, match=r"missing column\(s\) \['rating'\]"):
        model.fit(ratings.drop(columns="rating"))
    bad = ratings.copy()
    bad.loc[3, "rating"] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite, e.g. row 3"):
        model.fit(bad)
    bad.loc[3, "rating"] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.fit(bad)
    with pytest.raises(ValueError, match="ratings must be numbers"):
        model.fit(ratings.assign(rating=ratings["rating"].astype(str)))
    with pytest.raises(ValueError, match="same length"):
        model.fit((np.arange(3), np.arange(3), np.ones(2)))
    with pytest.raises(ValueError, match="must be 1-D"):
        model.fit((np.zeros((2, 2)), np.arange(2), np.ones(2)))
    with pytest.raises(ValueError, match="user ids contain NaN"):
        model.fit((np.array([1.0, np.nan]), np.arange(2), np.ones(2)))
    with pytest.raises(TypeError, match="must be a pandas.DataFrame"):
        model.fit("ratings.csv")
    with pytest.raises(ValueError, match="valid is empty"):
        model.fit(ratings, valid=ratings.iloc[:0])
    fitted = BiasedMF(**FAST).fit(ratings)
    with pytest.raises(ValueError, match="same length"):
        fitted.predict([1, 2], [3])
    with pytest.raises(ValueError, match="predict needs items"):
        fitted.predict([1, 2])


def test_prefetch_hints_change_nothing():
    import numba

    from latentfactors.kernels._prefetch import prefetch_at, prefetch_row

    @numba.njit
    def touch(flat, rows, codes):
        total = 0.0
        for j in range(len(codes)):
            prefetch_at(flat, codes[j])
            prefetch_at(codes, j)
            prefetch_row(rows, codes[j] % rows.shape[0])
            total += flat[codes[j]]
        return total

    flat = np.arange(100, dtype=np.float32)
    rows = np.arange(300, dtype=np.float64).reshape(100, 3)
    codes = np.array([5, 99, 0, 42], dtype=np.int32)
    before = (flat.copy(), rows.copy(), codes.copy())
    assert touch(flat, rows, codes) == 146.0
    for got, want in zip((flat, rows, codes), before):
        assert np.array_equal(got, want)


def test_adam_records_interleave_a_rows_state():
    W = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    (Wr, m, v, g), (br, mb, vb, gb) = adam_kernels.adam_records(W, b)
    assert np.array_equal(Wr, W) and np.array_equal(br, b)
    assert not np.shares_memory(Wr, W) and not np.shares_memory(br, b)
    for arr in (m, v, g, mb, vb, gb):
        assert arr.dtype == np.float32 and not arr.any()
    # one buffer each, a row's four slots side by side
    assert all(a.base is Wr.base for a in (m, v, g))
    assert all(a.base is br.base for a in (mb, vb, gb))
    assert Wr.strides == (4 * 4 * 4, 4) and br.strides == (4 * 4,)
    assert [a.ctypes.data - Wr.ctypes.data for a in (m, v, g)] == [16, 32, 48]
    assert [a.ctypes.data - br.ctypes.data for a in (mb, vb, gb)] == [4, 8, 12]
    assert Wr.ctypes.data % LINE_BYTES == 0 and br.ctypes.data % LINE_BYTES == 0


@pytest.mark.parametrize(
    "shape, dtype",
    [
        ((3, 32), np.float32),
        (7, np.int64),
        ((0, 5), np.float32),
        ((5, 3), "f8"),
        (np.int64(4), "i4"),
    ],
)
def test_aligned_empty_starts_on_a_cache_line(shape, dtype):
    arrays = [aligned_empty(shape, dtype) for _ in range(4)]
    want = (int(shape),) if np.ndim(shape) == 0 else shape
    for a in arrays:
        assert a.shape == want and a.dtype == np.dtype(dtype) and a.flags.c_contiguous
        assert a.flags.writeable and (a.size == 0 or a.ctypes.data % LINE_BYTES == 0)
    for j, a in enumerate(arrays):  # separate buffers
        a[...] = j
    for j, a in enumerate(arrays):
        assert np.all(a == j)


def test_sgd_epoch_does_not_depend_on_where_rows_start(ratings):
    layout = block_layout(encoded(ratings), 3, np.random.default_rng(0), by_user=True)
    rows = layout.to_layout(random_params(np.random.default_rng(1), 40, 30, 16))
    order = layout.run_order.copy()
    f32 = np.float32
    results = []
    for offset in (0, 4, 16, 36):
        copies = []
        for a in rows:
            buf = aligned_empty(a.nbytes + LINE_BYTES, np.uint8)
            copies.append(buf[offset : offset + a.nbytes].view(a.dtype).reshape(a.shape))
            copies[-1][...] = a
        layout.run_order[:] = order
        args = layout.epoch_args(np.random.default_rng(2))
        hyper = sgd_kernels.SGDHyper(f32(3.0), f32(0.02), f32(0.05), f32(0.01))
        loss = sgd_kernels._sgd_block_epoch(*args, Embeddings(*copies), hyper)
        results.append((loss, copies))
    for loss, copies in results[1:]:
        assert loss == results[0][0]
        for got, want in zip(copies, results[0][1]):
            np.testing.assert_array_equal(got, want)
    assert not np.array_equal(results[0][1][0], rows[0])  # the epoch did move the rows


def test_a_list_of_row_tuples_is_not_read_as_columns(ratings):
    rows = [(1, 10, 5.0), (2, 20, 1.0), (3, 30, 3.0)]
    with pytest.raises(ValueError, match=r"list of rows \(user, item, rating\).*DataFrame"):
        BiasedMF(**FAST).fit(rows)
    model = BiasedMF(**FAST).fit(ratings)
    pairs = [(ratings["item"].iloc[0], 4.0), (ratings["item"].iloc[1], 2.0)]
    with pytest.raises(ValueError, match=r"list of rows \(item, rating\)"):
        model.fold_in(pairs)
    columns = tuple(zip(*rows))  # the same data as columns is fine
    assert BiasedMF(**FAST).fit(columns).user_index_.to_array().tolist() == [1, 2, 3]
