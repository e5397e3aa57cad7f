"""Epochs run as several kernel calls, so that Ctrl-C takes effect within about a second,
and the cut never changes a result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from latentfactors.kernels import _config
from latentfactors.kernels import adam as adam_kernels
from latentfactors.kernels import mlp as mlp_kernels
from latentfactors.kernels import sgd as sgd_kernels
from tests.fingerprints import CASES, fingerprint, fit_case
from tests.test_fingerprints import RECORDED

REPO = Path(__file__).resolve().parent.parent
KERNEL_MODULES = (adam_kernels, mlp_kernels, sgd_kernels)
CALL_KERNELS = {
    adam_kernels: "_adam_batches",
    mlp_kernels: "_mlp_batches",
    sgd_kernels: "_sgd_rounds",
}


def cut_epochs(monkeypatch, units: int) -> dict:
    """Make every epoch run ``units`` batches (rounds) per call; returns call counts."""
    calls = {}
    for module in KERNEL_MODULES:
        monkeypatch.setattr(module, "units_per_call", lambda n, ns: min(n, units))
        name = CALL_KERNELS[module]
        kernel = getattr(module, name)

        def counted(*args, _kernel=kernel, _name=name):
            calls[_name] = calls.get(_name, 0) + 1
            return _kernel(*args)

        monkeypatch.setattr(module, name, counted)
    return calls


def kernel_of(name: str) -> str:
    if name.startswith("sgd"):
        return "_sgd_rounds"
    if name.startswith(("adam", "notebook-dot")):
        return "_adam_batches"
    return "_mlp_batches"


@pytest.mark.parametrize("name", sorted(CASES))
def test_epochs_cut_into_one_batch_calls_stay_bit_identical(monkeypatch, name):
    calls = cut_epochs(monkeypatch, 1)
    model = fit_case(name)
    assert fingerprint(model) == RECORDED[name]
    if name != "sgd-one-block":  # one block: an epoch is one round, so one call
        assert calls[kernel_of(name)] > model.n_epochs_


@pytest.mark.parametrize("name", ["sgd-grid", "adam-dense", "mlp-tanh-dropout-sgd-head"])
def test_epochs_cut_into_uneven_calls_stay_bit_identical(monkeypatch, name):
    cut_epochs(monkeypatch, 3)  # 4 rounds or 19 batches an epoch: the last call is short
    assert fingerprint(fit_case(name)) == RECORDED[name]


def test_units_per_call_follows_the_work_estimate_only():
    assert _config.units_per_call(10, 1e15) == 1
    assert _config.units_per_call(10, 1.0) == 10
    assert _config.units_per_call(1000, _config.CALL_NS / 7.5) == 7


INTERRUPTED_FIT = textwrap.dedent(
    """
    import json, os, signal, threading, time
    from latentfactors import MLPMF, make_synthetic_ratings

    ratings, _ = make_synthetic_ratings(3000, 2000, 150_000, random_state=0)
    MLPMF(16, hidden=(256, 256), n_epochs=1, random_state=0).fit(ratings.iloc[:2000])
    sent = {}

    def interrupt():
        sent["at"] = time.perf_counter()
        os.kill(os.getpid(), signal.SIGINT)

    def callback(epoch, logs):
        if epoch == 1:  # early in the second epoch
            threading.Timer(0.3, interrupt).start()

    model = MLPMF(16, hidden=(256, 256), n_epochs=3, random_state=0, callback=callback)
    try:
        model.fit(ratings)
        print(json.dumps({"interrupted": False}))
    except KeyboardInterrupt:
        print(json.dumps({
            "interrupted": True,
            "delay": time.perf_counter() - sent["at"],
            "epochs": model.history_["epoch"],
            "seconds": model.history_["seconds"],
        }))
    """
)


def test_interrupt_mid_epoch_takes_effect_within_a_second_or_two():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_FIT],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["interrupted"], "the fit finished before the interrupt was sent"
    assert result["epochs"] == [1]
    # One call per epoch would end only with the epoch, ~0.3 s short of a whole one.
    epoch_seconds = result["seconds"][0]
    assert result["delay"] < min(2.0, epoch_seconds / 2), (result["delay"], epoch_seconds)
