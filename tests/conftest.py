"""Shared fixtures. Real-data tests read ../shared/data in place and skip without it.

With ``NUMBA_DISABLE_JIT=1`` (``make coverage``) the kernels run as plain
Python, and tests marked ``jit`` (they need compiled code) are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

import numba
import pytest

REPO = Path(__file__).resolve().parent.parent


def _shared_data() -> Path | None:
    for candidate in (os.environ.get("LATENTFACTORS_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "ml-latest-small-2016" / "ratings.csv").exists():
            return Path(candidate)
    return None


SHARED_DATA = _shared_data()

# Thread-count tests compare 1 thread with 2; with one thread available both run alike.
two_threads = pytest.mark.skipif(
    numba.config.NUMBA_NUM_THREADS < 2,
    reason="needs 2 threads: NUMBA_NUM_THREADS is below 2 on this machine",
)


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``jit`` when Numba's compiler is disabled.

    ``@pytest.mark.jit("why")``: the reason is shown with the skip, e.g. the
    data size that plain Python would take minutes over.
    """
    if not numba.config.DISABLE_JIT:
        return
    for item in items:
        marker = item.get_closest_marker("jit")
        if marker is not None:
            why = marker.args[0] if marker.args else "needs compiled code"
            item.add_marker(pytest.mark.skip(reason=f"NUMBA_DISABLE_JIT is set: {why}"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder with the reference MovieLens copies, or skip the test."""
    if SHARED_DATA is None:
        pytest.skip(
            "reference data not found: set LATENTFACTORS_DATA or place it at ../shared/data"
        )
    return SHARED_DATA


def dataset_dir(shared: Path, name: str) -> Path:
    path = shared / name
    if not path.is_dir():
        pytest.skip(f"{name} is not in {shared}")
    return path
