"""The process around the kernels: Numba's disk cache, forked workers, thread counts."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numba
import pytest

import latentfactors
from latentfactors import MLPMF, BiasedMF
from latentfactors.kernels import _config
from latentfactors.kernels import mlp as mlp_kernels

PACKAGE = Path(latentfactors.__file__).parent

FIT_SCRIPT = """
import latentfactors
from latentfactors import BiasedMF, make_synthetic_ratings

ratings, _ = make_synthetic_ratings(40, 30, 400, random_state=0)
model = BiasedMF(4, n_epochs=2, n_threads=1, random_state=0).fit(ratings)
print("ok", model.predict(ratings.head(2)).round(3).tolist())
"""


def _clean_env(**extra):
    """The environment of a user with no Numba settings of their own."""
    keep = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    return {**keep, **extra}


def _can_run_as(user: str) -> bool:
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import numba, numpy, pandas"],
            user=user,
            env=_clean_env(HOME="/nonexistent"),
            capture_output=True,
            timeout=120,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


@pytest.fixture
def read_only_install():
    """A read-only copy of the package where no ``__pycache__`` can be created.

    Each package folder holds a plain file named ``__pycache__``, so even
    root (who ignores permissions) cannot make Numba's in-tree cache folder.
    """
    root = Path(tempfile.mkdtemp(prefix="lf-readonly-"))
    site = root / "site"
    shutil.copytree(PACKAGE, site / "latentfactors", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in [site / "latentfactors", *(site / "latentfactors").rglob("*")]:
        if folder.is_dir():
            (folder / "__pycache__").write_text("not a folder\n")
    tmp = root / "tmp"
    tmp.mkdir()
    for path in sorted(site.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    site.chmod(0o555)
    tmp.chmod(0o1777)
    root.chmod(0o755)
    try:
        yield site, tmp
    finally:
        for path in [site, *site.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(root)


def test_imports_and_fits_when_numba_cannot_write_its_cache(read_only_install):
    site, tmp = read_only_install
    run_as = None
    home = "/nonexistent"
    if os.geteuid() == 0:
        if _can_run_as("nobody"):
            run_as = "nobody"
        else:
            # nobody cannot run this interpreter (it lives in root's home): stay root,
            # and give a HOME below a plain file, which no one can create folders in.
            blocker = tmp / "home-is-a-file"
            blocker.write_text("")
            home = str(blocker / "home")
    env = _clean_env(PYTHONPATH=str(site), HOME=home, TMPDIR=str(tmp))
    fit = subprocess.run(
        [sys.executable, "-c", FIT_SCRIPT],
        user=run_as,
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert fit.returncode == 0, fit.stderr
    assert fit.stdout.startswith("ok ")
    notes = [line for line in fit.stderr.splitlines() if "latentfactors" in line]
    assert len(notes) == 1 and "Numba's cache is in" in notes[0], fit.stderr
    (cache,) = tmp.glob("latentfactors-numba-*")
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert any(cache.rglob("*.nbi"))

    version = subprocess.run(
        [sys.executable, "-m", "latentfactors", "--version"],
        user=run_as,
        env=env,
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert version.returncode == 0, version.stderr
    assert latentfactors.__version__ in version.stdout


FORK_SCRIPT = """
import multiprocessing

import numpy as np

from latentfactors import MLPMF, BiasedMF, make_synthetic_ratings

ratings, _ = make_synthetic_ratings(120, 80, 3000, random_state=0)


def fit(seed):
    mf = BiasedMF(6, n_epochs=3, n_threads=2, random_state=seed).fit(ratings)
    mlp = MLPMF(4, hidden=(8,), n_epochs=2, n_threads=2, random_state=seed).fit(ratings)
    return mf.user_factors_, mf.predict(ratings), mlp.predict(ratings)


if __name__ == "__main__":
    parent = fit(0)
    BiasedMF(6, n_epochs=1, n_threads=2, random_state=0).fit(ratings).recommend_all(5)
    with multiprocessing.Pool(2) as pool:  # the default start method: fork on Linux
        children = pool.map(fit, [0, 0])
    for child in children:
        for a, b in zip(parent, child):
            assert np.array_equal(a, b)
    print("ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_forked_pool_workers_fit_after_the_parent_used_threads(tmp_path):
    script = tmp_path / "fork_pool.py"
    script.write_text(FORK_SCRIPT)
    # Its own session, so that a hang can be ended with the workers it forked.
    run = subprocess.Popen(
        [sys.executable, str(script)],
        env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = run.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        stdout, stderr = run.communicate()
        pytest.fail(f"the forked workers hung; stderr: {stderr[-2000:]}")
    assert run.returncode == 0, stderr
    assert stdout.strip() == "ok"
    assert "unsafe" not in stderr


ONE_THREAD_SCRIPT = """
import sys

from latentfactors import MLPMF, BiasedMF, make_synthetic_ratings

ratings, _ = make_synthetic_ratings(120, 80, 3000, random_state=0)
for model in (
    BiasedMF(6, n_epochs=2, n_threads=1, random_state=0),
    BiasedMF(6, n_epochs=2, optimizer="adam", batch_size=2048, n_threads=1, random_state=0),
    MLPMF(4, hidden=(8,), n_epochs=2, n_threads=1, random_state=0),
):
    model.fit(ratings, valid=ratings.head(100))
    model.predict(ratings)
    model.recommend_all(5)
print(sys.modules["numba.np.ufunc.parallel"]._is_initialized)
"""


def test_one_thread_never_starts_numbas_thread_pool(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", ONE_THREAD_SCRIPT],
        env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


def test_serial_build_calls_the_serial_builds_of_its_callees():
    # The MLP epoch has no prange of its own; its batch gradients do.
    serial_names = mlp_kernels._mlp_batches_serial.py_func.__code__.co_names
    parallel_names = mlp_kernels._mlp_batches.py_func.__code__.co_names
    assert "_batch_grads_serial" in serial_names and "_batch_grads" not in serial_names
    assert "_batch_grads" in parallel_names
    assert _config._serial_build_of(mlp_kernels._batch_grads) is mlp_kernels._batch_grads_serial
    # The gradient checks' objective too: on one thread it must not start the pool.
    loss_names = mlp_kernels._loss_grad_serial.py_func.__code__.co_names
    assert "_batch_grads_serial" in loss_names and "_batch_grads" not in loss_names
    assert _config._serial_build_of(mlp_kernels._loss_grad) is mlp_kernels._loss_grad_serial


def test_each_python_thread_keeps_its_own_thread_choice():
    # Two fits on two Python threads: the one asking for one thread must get serial
    # builds while the other runs parallel ones, and both choices end with their calls.
    serial = lambda tag: ("serial", tag)  # noqa: E731
    parallel = lambda tag: ("parallel", tag)  # noqa: E731
    monkey = {id(parallel): (parallel, serial)}
    inside = threading.Barrier(2, timeout=30)
    seen = {}

    def epoch(tag):
        inside.wait()  # both threads are inside with_threads now
        seen[tag] = _config.run_kernel(parallel, tag)
        inside.wait()

    def fit(n_threads, tag):
        _config.with_threads(n_threads, epoch, tag)

    original = dict(_config._BUILDS)
    _config._BUILDS.update(monkey)
    try:
        threads = [threading.Thread(target=fit, args=(n, f"t{n}")) for n in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        _config._BUILDS.clear()
        _config._BUILDS.update(original)
    assert seen == {"t1": ("serial", "t1"), "t2": ("parallel", "t2")}
    assert getattr(_config._requested, "n", None) is None


def test_with_threads_runs_the_serial_build_in_a_forked_child(monkeypatch):
    calls = []
    pair = (lambda x: calls.append(("serial", x)), lambda x: calls.append(("parallel", x)))
    monkeypatch.setattr(_config, "_forked_from_threads", True)

    def no_threads(*args):
        raise AssertionError("Numba's thread pool touched in a forked child")

    monkeypatch.setattr(numba, "get_num_threads", no_threads)
    monkeypatch.setattr(numba, "set_num_threads", no_threads)
    _config.with_threads(2, pair, 1)
    assert calls == [("serial", 1)]
    assert _config.resolve_threads(-1) == 1
    assert _config.resolve_threads(4) == 1


@pytest.mark.parametrize("model", [BiasedMF, MLPMF])
def test_models_default_to_every_available_core(model):
    assert model().n_threads == -1


def test_all_cores_respects_cpu_affinity_and_numba_num_threads(monkeypatch):
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 8)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert _config.resolve_threads(-1) == 3
    assert _config.resolve_threads(6) == 6
    monkeypatch.setattr(numba.config, "NUMBA_NUM_THREADS", 2)
    assert _config.resolve_threads(-1) == 2
    assert _config.resolve_threads(6) == 2


COMPILE_AHEAD_SCRIPT = """
import sys
import numpy as np, pandas as pd
from latentfactors import MLPMF, BayesianMF
from latentfactors._compile_ahead import _cached, compile_ahead
from latentfactors.kernels import gibbs, mlp
from latentfactors.kernels._config import resolve_threads

if sys.argv[1] == "MLPMF":
    model = MLPMF(n_factors=4, hidden=(4,), n_epochs=2, n_threads=2, random_state=0)
    threads = resolve_threads(2)
    kernel = mlp._mlp_batches if threads > 1 else mlp._mlp_batches_serial
else:
    model = BayesianMF(n_factors=3, n_samples=4, implicit=True, n_threads=1, random_state=0)
    threads = 1
    kernel = gibbs._draw_block
name = type(model).__name__
print("cached before", _cached(name, threads))
helper = compile_ahead([model], (20, 15, 300, 40, 30))
print("helper", helper is not None)
print("finished", helper.wait(600))
print("cached after", _cached(name, threads))
rng = np.random.default_rng(1)
frame = lambda n: pd.DataFrame({"user": rng.integers(0, 20, n), "item": rng.integers(0, 15, n),
                                "rating": rng.integers(1, 11, n) / 2})
model.fit(frame(300), valid=frame(40))
print("compiled here", kernel.stats.cache_misses.most_common())
print("second", compile_ahead([model], (20, 15, 300, 40, 30)))
"""


def run_with_cache(script, cache_dir, *args):
    """Run ``script`` in a fresh Python with Numba's cache in ``cache_dir``; its output lines."""
    run = subprocess.run(
        [sys.executable, "-c", script, *args],
        env={**os.environ, "PYTHONPATH": str(PACKAGE.parent), "NUMBA_CACHE_DIR": str(cache_dir)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


@pytest.mark.skipif(_config.available_cores() < 2, reason="compiling ahead needs two cores")
@pytest.mark.parametrize("model", ["MLPMF", "BayesianMF"])
def test_compile_ahead_fills_the_cache_a_later_fit_loads(model, tmp_path):
    assert run_with_cache(COMPILE_AHEAD_SCRIPT, tmp_path, model) == [
        "cached before False",
        "helper True",
        "finished True",
        "cached after True",
        "compiled here []",  # the fit loaded every signature the helper compiled
        "second None",  # nothing left to compile: no helper
    ]


@pytest.mark.parametrize("n_ratings", [0, 1, 500])
def test_compile_ahead_seen_lists_match_the_kernel(n_ratings):
    # The helper replaces the seen-list kernel by NumPy; its models must not change.
    import numpy as np

    from latentfactors._compile_ahead import _seen_lists
    from latentfactors.kernels.scoring import csr_by_user

    rng = np.random.default_rng(n_ratings)
    users = rng.integers(0, 30, n_ratings).astype(np.int32)
    items = rng.integers(0, 50, n_ratings).astype(np.int32)
    want, got = csr_by_user(users, items, 31), _seen_lists(users, items, 31)
    for w, g in zip(want, got):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


COMPILE_PREDICTION_SCRIPT = """
import numpy as np, pandas as pd
from latentfactors import MLPMF
from latentfactors._compile_ahead import compile_prediction
from latentfactors.kernels import mlp

rng = np.random.default_rng(1)
frame = pd.DataFrame({"user": rng.integers(0, 20, 300), "item": rng.integers(0, 15, 300),
                      "rating": rng.integers(1, 11, 300) / 2})
model = MLPMF(n_factors=4, hidden=(4,), n_epochs=1, n_threads=1, random_state=0)
print("before", len(mlp._predict_serial.signatures))
compile_prediction(MLPMF(n_factors=4, hidden=(4,), n_threads=1), 50)
print("compiled", len(mlp._predict_serial.signatures))
model.fit(frame)
model.predict(frame.head(50))
print("after predicting", len(mlp._predict_serial.signatures))
"""


@pytest.mark.jit("counts the signatures Numba compiled")
def test_compile_prediction_compiles_what_a_fitted_model_predicts_with(tmp_path):
    # A fresh process: the dispatcher starts without signatures, whatever the disk cache holds.
    lines = run_with_cache(COMPILE_PREDICTION_SCRIPT, tmp_path)
    assert lines == ["before 0", "compiled 1", "after predicting 1"]


def test_demo_fits_biasedmf_on_one_thread_until_its_parallel_build_is_compiled(monkeypatch):
    from latentfactors import MLPMF, BayesianMF, BiasedMF, _compile_ahead, demo

    monkeypatch.setattr(_config, "resolve_threads", lambda n_threads: 2)
    for parallel_compiled in (False, True):
        monkeypatch.setattr(_compile_ahead, "_cached", lambda name, threads, c=parallel_compiled: c)
        models = [BiasedMF(), MLPMF(), BiasedMF(), BayesianMF()]
        serial = demo._serial_where_uncompiled(models)
        assert serial == ([] if parallel_compiled else ["BiasedMF", "BayesianMF"])
        assert [m.n_threads for m in models] == (
            [-1, -1, -1, -1] if parallel_compiled else [1, -1, 1, 1]
        )  # the MLP's second thread saves more than it costs


def test_compile_ahead_knows_the_bayesian_entry_kernel():
    from latentfactors import _compile_ahead

    assert _compile_ahead.compiled("BayesianMF", 1) in (True, False)
    assert _compile_ahead.compiled("NoSuchModel", 1) is None


def test_compile_ahead_only_where_it_can_help(monkeypatch):
    from latentfactors import _compile_ahead

    shape = (2, 2, 4, 0, 0)
    monkeypatch.setattr(_compile_ahead, "_cached", lambda name, threads: False)
    started = []
    monkeypatch.setattr(
        _compile_ahead.subprocess, "Popen", lambda *a, **k: started.append(a) or object()
    )
    monkeypatch.setattr(_config, "available_cores", lambda: 1)
    assert _compile_ahead.compile_ahead([MLPMF()], shape) is None
    monkeypatch.setattr(_config, "available_cores", lambda: 2)
    monkeypatch.setattr(numba.config, "DISABLE_JIT", True)
    assert _compile_ahead.compile_ahead([MLPMF()], shape) is None
    monkeypatch.setattr(numba.config, "DISABLE_JIT", False)
    monkeypatch.setattr("latentfactors._numba_setup.CACHE", False)
    assert _compile_ahead.compile_ahead([MLPMF()], shape) is None
    assert started == []
    monkeypatch.setattr("latentfactors._numba_setup.CACHE", True)
    assert _compile_ahead.compile_ahead([MLPMF()], shape) is not None
    assert len(started) == 1


def test_demo_fits_the_mlp_rows_once_their_helper_has_finished(monkeypatch, tmp_path):
    # The helper compiles the MLP's kernels while the dot-product rows fit; the MLP
    # rows wait for it, then fit on what it compiled.
    from latentfactors import _compile_ahead, demo

    events = []

    class Helper:
        def running(self):
            return False

        def wait(self, timeout=None):
            events.append("wait")
            return True

        def stop(self):
            events.append("stop")

    def fake_compile_ahead(models, shape, *, random_state=0, predict=True):
        events.append(("helper", [type(m).__name__ for m in models], shape[2:], predict))
        return Helper()

    def fake_compile_prediction(model, n_pairs):
        events.append(("prediction", type(model).__name__))

    from latentfactors.models.base import FactorModel

    fit = FactorModel.fit

    def logged_fit(self, *args, **kwargs):
        events.append(type(self).__name__)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(_compile_ahead, "compile_ahead", fake_compile_ahead)
    monkeypatch.setattr(_compile_ahead, "compile_prediction", fake_compile_prediction)
    monkeypatch.setattr(FactorModel, "fit", logged_fit)
    result = demo.run_demo(
        "ml-latest-small", quick=True, data_home=tmp_path, download=False, fallback=True
    )
    split = result.split
    assert events == [
        # The helper compiles the training kernels, this process the prediction ones.
        (
            "helper",
            ["BayesianMF", "MLPMF", "MLPMF"],
            (split["train"], split["valid"], split["test"]),
            False,
        ),
        "BiasedMF",
        "BiasedMF",
        "BayesianMF",
        *[("prediction", "MLPMF")] * (2 if split["valid"] != split["test"] else 1) * 2,
        "wait",
        "MLPMF",
        "MLPMF",
    ]
    assert [row.name for row in result.rows] == [
        "notebook: dot product",
        "notebook: MLP head",
        "ours: BiasedMF defaults",
        "ours: MLPMF defaults",
        "ours: BayesianMF defaults",
    ]
