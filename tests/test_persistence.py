"""Model files: what a save leaves behind when it is stopped, and what a load refuses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from latentfactors import BiasedMF, ModelFileError, load_model
from latentfactors.models import persistence

FAST = {"n_factors": 4, "n_epochs": 2, "random_state": 0}


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "user": rng.integers(0, 20, 200),
            "item": rng.integers(0, 15, 200),
            "rating": rng.integers(1, 6, 200).astype(np.float32),
        }
    ).drop_duplicates(["user", "item"])
    return BiasedMF(**FAST).fit(frame)


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# A child that fits a small model and saves it with a writer that blocks after
# writing part of the file, so that the parent can stop it mid-save.
_BLOCKED_SAVE = textwrap.dedent(
    """
    import sys
    import numpy as np
    from latentfactors import BiasedMF

    model = BiasedMF(n_factors=4, n_epochs=1, random_state=0).fit(
        (np.arange(50) % 7, np.arange(50) % 5, np.ones(50))
    )

    def blocked_savez(fh, **arrays):
        fh.write(b"x" * 1_000_000)
        print("writing", flush=True)
        sys.stdin.read()  # until the parent stops us

    np.savez = blocked_savez
    model.save(sys.argv[1])
    print("saved", flush=True)
    """
)


def test_sigterm_during_save_leaves_no_temporary(tmp_path):
    target = tmp_path / "out" / "model.npz"
    target.parent.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", _BLOCKED_SAVE, str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,  # the package on PYTHONPATH, not one in the current folder
    )
    try:
        assert proc.stdout.readline() == "writing\n", proc.stderr.read()
        assert any(p.name.startswith(".tmp-") for p in target.parent.iterdir())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGTERM, err  # it still ends as SIGTERM asked
    assert "saved" not in out
    assert list(target.parent.iterdir()) == []


def test_sigterm_handler_is_restored_after_save(model, tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    model.save(tmp_path / "m.npz")
    assert signal.getsignal(signal.SIGTERM) is before


def _temp(folder, pid, host=None):
    """A temporary named as a save names its own (``host=None``: this machine)."""
    host = persistence._host_tag() if host is None else host
    return folder / f".tmp-{pid}-{host}-0123456789ab.npz"


def test_stale_temporary_of_dead_writer_is_removed_on_next_save(model, tmp_path):
    stale = _temp(tmp_path, _dead_pid())
    stale.write_bytes(b"half a model")
    live = _temp(tmp_path, os.getppid())  # a writer that still runs
    live.write_bytes(b"being written")
    other = tmp_path / ".tmp-foo.npz"  # not our naming: never ours to remove
    other.write_bytes(b"someone else's")
    model.save(tmp_path / "model.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, other.name, "model.npz"]
    )


def test_another_machines_temporary_is_kept_until_old(model, tmp_path):
    # On a shared network folder a pid names a process of another machine: that
    # it does not run here says nothing. Older versions' names carry no host.
    elsewhere = "ffffffff" if persistence._host_tag() != "ffffffff" else "00000000"
    theirs = _temp(tmp_path, _dead_pid(), host=elsewhere)
    untagged = tmp_path / f".tmp-{_dead_pid()}-abc123_x.npz"
    for path in (theirs, untagged):
        path.write_bytes(b"being written elsewhere")
    model.save(tmp_path / "model.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [theirs.name, untagged.name, "model.npz"]
    )
    for path in (theirs, untagged):
        long_ago = path.stat().st_mtime - persistence.STALE_SECONDS - 60
        os.utime(path, (long_ago, long_ago))
    model.save(tmp_path / "model.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_stale_temporary_of_a_live_pid_is_removed_once_old(model, tmp_path):
    old = _temp(tmp_path, os.getppid())  # pid running, file long idle
    old.write_bytes(b"abandoned long ago")
    long_ago = old.stat().st_mtime - persistence.STALE_SECONDS - 60
    os.utime(old, (long_ago, long_ago))
    model.save(tmp_path / "model.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def _spy_on_temporaries(monkeypatch, after_open=None):
    """Record the names of the files a save opens; ``after_open`` runs once each is."""
    names = []
    real_open = persistence.os.open

    def spy(path, *args, **kwargs):
        fd = real_open(path, *args, **kwargs)
        names.append(os.path.basename(path))
        if after_open is not None:
            os.close(fd)
            after_open()
        return fd

    monkeypatch.setattr(persistence.os, "open", spy)
    return names


def test_save_temporaries_are_named_with_the_writer_pid_and_host(model, tmp_path, monkeypatch):
    names = _spy_on_temporaries(monkeypatch)
    model.save(tmp_path / "model.npz")
    assert len(names) == 1
    assert names[0].startswith(f".tmp-{os.getpid()}-{persistence._host_tag()}-")
    assert persistence._TEMP_NAME.fullmatch(names[0])


def test_interrupt_right_after_the_temporary_is_created_leaves_nothing(
    model, tmp_path, monkeypatch
):
    def interrupted():
        raise KeyboardInterrupt  # as a signal arriving before open() returns its fd

    names = _spy_on_temporaries(monkeypatch, after_open=interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.save(tmp_path / "model.npz")
    assert len(names) == 1
    assert list(tmp_path.iterdir()) == []


def test_save_to_a_directory_names_the_path(model, tmp_path):
    folder = tmp_path / "existing_dir"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=r"cannot save to .*existing_dir: it is a folder"):
        model.save(folder)
    assert list(folder.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["existing_dir"]


def test_loading_an_npy_array_says_it_is_not_a_model_file(tmp_path):
    path = tmp_path / "arr.npy"
    np.save(path, np.arange(3))
    with pytest.raises(
        ModelFileError,
        match=r"arr.npy is not a latentfactors model file: it is an "
        r"\.npy array, not an \.npz archive",
    ) as info:
        load_model(path)
    assert "context manager" not in str(info.value)
    with open(path, "rb") as fh, pytest.raises(ModelFileError, match=r"\.npy array"):
        load_model(fh)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (np.array(0), "format_version is 0; versions start at 1"),
        (np.array(-5), "format_version is -5; versions start at 1"),
        (np.array(1.0), r"format_version is 1.0, not a whole number"),
        (np.array(True), r"format_version is True, not a whole number"),
        (np.array([1]), r"format_version is \[1\], not a whole number"),
    ],
    ids=["zero", "negative", "float", "bool", "array"],
)
def test_format_version_below_one_or_not_an_integer_is_refused(model, tmp_path, version, message):
    good = tmp_path / "good.npz"
    model.save(good)
    with np.load(good, allow_pickle=False) as npz:
        contents = dict(npz)
    contents["format_version"] = version
    bad = tmp_path / "bad.npz"
    np.savez(bad, **contents)
    with pytest.raises(ModelFileError, match=rf"bad.npz is damaged: {message}"):
        load_model(bad)


def test_saved_format_version_still_loads(model, tmp_path):
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as npz:
        assert int(npz["format_version"]) == persistence.FORMAT_VERSION
        assert json.loads(str(npz["fit_info"]))["n_epochs_"] == FAST["n_epochs"]
    assert load_model(path).n_epochs_ == FAST["n_epochs"]
