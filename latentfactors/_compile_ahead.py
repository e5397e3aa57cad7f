"""Compiling the kernels of a later step in a second process while this one works.

A first run spends most of its time compiling kernels, one after another
under Numba's compiler lock. On a machine with a spare core, the kernels a
later fit needs can be compiled meanwhile by a helper process: it fits a
throw-away model of the same class and hyperparameters (one epoch) on random
ratings of the same size and predicts, which compiles the same signatures,
and Numba's disk cache hands that work over. The cache holds machine code
keyed by signature, so nothing the helper does changes a result; if it fails
or is slow, the fit compiles what it needs itself.

The helper is started only where it can help: the JIT and the disk cache are
on, the process may use two cores or more, and the model's main training
kernel has no cached compilation for the current source. It runs at a lower
priority, so a fit running meanwhile keeps its cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numba

__all__ = ["CompileAhead", "compile_ahead", "compile_prediction", "compiled"]

# The kernel whose cache tells whether a class's training kernels are compiled:
# (module, name of the parallel build, name of the serial build).
_ENTRY_KERNELS = {
    "BiasedMF": ("latentfactors.kernels.sgd", "_sgd_rounds", "_sgd_rounds_serial"),
    "MLPMF": ("latentfactors.kernels.mlp", "_mlp_batches", "_mlp_batches_serial"),
    "BayesianMF": ("latentfactors.kernels.gibbs", "_draw_rows_parallel", "_draw_rows_serial"),
}
# How much lower the helper's scheduling priority is.
_NICENESS = 10


class CompileAhead:
    """A running helper process; :meth:`wait` before the fits it prepares."""

    def __init__(self, process: subprocess.Popen):
        self._process = process

    def running(self) -> bool:
        """Whether the helper is still at work."""
        return self._process.poll() is None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the helper; ``True`` if it finished its work.

        On a timeout the helper is stopped (the fit compiles what it lacks);
        its exit status never raises: whatever it did not compile, the fit will.
        """
        try:
            return self._process.wait(timeout) == 0
        except subprocess.TimeoutExpired:
            self.stop()
            return False

    def stop(self) -> None:
        """Stop the helper if it still runs (a half-written cache entry is never used)."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()


def compiled(cls_name: str, n_threads: int) -> bool | None:
    """Whether the class's main training kernel, in its build for ``n_threads``,
    has a compilation cached for this source (``None`` for a class not tracked)."""
    if cls_name not in _ENTRY_KERNELS:
        return None
    return _cached(cls_name, n_threads)


def _cached(cls_name: str, n_threads: int) -> bool:
    """Whether the class's main training kernel has a compilation cached for this source."""
    module_name, parallel, serial = _ENTRY_KERNELS[cls_name]
    module = __import__(module_name, fromlist=[parallel])
    kernel = getattr(module, parallel if n_threads > 1 else serial)
    try:
        return bool(kernel._cache._cache_file._load_index())
    except Exception:  # noqa: BLE001 - Numba's cache internals moved: assume compiled
        return True


def compile_prediction(model, n_pairs: int) -> None:
    """Compile the kernels that ``model`` will predict ``n_pairs`` pairs with, here.

    Works on an untrained copy of two users and two items, so it can run
    while the helper compiles the training kernels: the two processes then
    share the work instead of both compiling the prediction kernels.
    """
    import numpy as np

    copy = type(model)(**{**model.get_params(), "callback": None})
    copy.global_mean_ = 0.0
    copy.rating_range_ = (0.0, 1.0)
    copy.rating_scale_ = 1.0
    copy._set_state(copy._init_state(np.random.default_rng(0), 2, 2))
    codes = np.zeros(max(int(n_pairs), 1), dtype=np.int32)
    copy._predict_codes(codes, codes)


def compile_ahead(
    models, shape, *, random_state: int = 0, predict: bool = True
) -> CompileAhead | None:
    """Start compiling what fitting ``models`` will need, in a helper process.

    Parameters
    ----------
    models : list of unfitted models
        Their classes and hyperparameters (``n_epochs`` and ``n_samples``
        are ignored), in the order the helper compiles them.
    shape : (n_users, n_items, n_train, n_valid, n_test)
        The sizes of the data the fits will see; ``n_valid`` or ``n_test`` of
        0 leaves that step out. Some kernels switch between serial and
        parallel builds by size, so the helper works at the same sizes.
    predict : bool
        Whether the helper also compiles the prediction kernels; without, the
        caller compiles them with :func:`compile_prediction` meanwhile.

    Returns
    -------
    CompileAhead or None
        ``None`` where a helper would not help (see the module's notes).
    """
    from latentfactors.kernels._config import available_cores, resolve_threads
    from latentfactors.models.persistence import hyperparams_json

    if numba.config.DISABLE_JIT or available_cores() < 2:
        return None
    from latentfactors._numba_setup import CACHE

    if not CACHE:
        return None
    jobs = []
    for model in models:
        name = type(model).__name__
        if name not in _ENTRY_KERNELS:
            continue
        if _cached(name, resolve_threads(model.n_threads)):
            continue
        jobs.append({"class": name, "params": json.loads(hyperparams_json(model))})
    if not jobs:
        return None
    request = json.dumps(
        {
            "jobs": jobs,
            "shape": [int(n) for n in shape],
            "seed": random_state,
            "predict": bool(predict),
        }
    )
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": package_parent + (os.pathsep + path if path else "")}
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "latentfactors._compile_ahead", request],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
    except OSError:
        return None
    return CompileAhead(process)


def _random_ratings(n_users: int, n_items: int, n: int, rng):
    """``n`` ratings of 0.5-5 stars with every user and item id in range, as a frame."""
    import numpy as np
    import pandas as pd

    return pd.DataFrame(
        {
            "user": rng.integers(0, n_users, n, dtype=np.int64),
            "item": rng.integers(0, n_items, n, dtype=np.int64),
            "rating": rng.integers(1, 11, n).astype(np.float64) / 2,
        }
    )


def _seen_lists(users, items, n_users, n_threads=1):
    """NumPy stand-in for :func:`~latentfactors.kernels.scoring.csr_by_user` (same result)."""
    import numpy as np

    order = np.lexsort((items, users))
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
    return indptr, items[order].astype(np.int32, copy=False)


def _run(request: dict) -> None:
    """The helper's work: fit and predict with each requested model.

    Recommending is left out: which model recommends is often decided after
    the fits, and its kernels compile in seconds. So are the kernels of the
    seen lists: every fit in the parent compiles them at once, so compiling
    them here too would only delay the helper's own work.
    """
    import numpy as np

    from latentfactors.models import MODEL_CLASSES, base

    base.csr_by_user = _seen_lists  # this process's throw-away models only

    n_users, n_items, n_train, n_valid, n_test = request["shape"]
    if not request.get("predict", True):
        n_valid = n_test = 0  # a fit without validation data never predicts
    rng = np.random.default_rng(request["seed"])
    train = _random_ratings(n_users, n_items, max(n_train, 1), rng)
    valid = _random_ratings(n_users, n_items, n_valid, rng) if n_valid else None
    test = _random_ratings(n_users, n_items, n_test, rng) if n_test else None
    for job in request["jobs"]:
        cls = MODEL_CLASSES[job["class"]]
        params = cls._saved_hyperparams(job["params"])
        # One epoch, or one Gibbs sweep, compiles every kernel the fit runs.
        length = "n_samples" if "n_samples" in params else "n_epochs"
        model = cls(**{**params, length: 1, "verbose": False})
        model.fit(train, valid=valid)
        if test is not None and valid is None:  # a fit with valid has predicted already
            model.evaluate(test)


if __name__ == "__main__":
    try:
        os.nice(_NICENESS)
    except (AttributeError, OSError):
        pass
    _run(json.loads(sys.argv[1]))
