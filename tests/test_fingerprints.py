"""Every model stays bit-identical for fixed seeds (fingerprints recorded with
``python -m tests.fingerprints`` before the package was restructured)."""

import pytest

from tests.fingerprints import CASES, fingerprint, fit_case

# The hashes are of the compiled kernels' floating point (fastmath), which plain
# Python does not reproduce bit for bit; and the grid case fits 200,000 ratings.
pytestmark = pytest.mark.jit("pins hashes of compiled arithmetic")

RECORDED = {
    "sgd-one-block": "1d022c741b6abf95",
    "sgd-grid": "6b49ddfad5bd5226",
    "adam": "31cf44a6bba73654",
    "adam-parallel": "9b534dd0dca82bea",
    "adam-dense": "7cf7f6b7a0b5f20a",
    "mlp-default": "a21eef53d3fd31b6",
    "mlp-tanh-dropout-sgd-head": "65f78ddedfaa1b73",
    "mlp-adam-embeddings": "ed4ce52278462a3c",
    "mlp-parallel-batch": "ebb12220ac36f90a",
    "notebook-dot": "3baafa4bc9f6dd9f",
    "notebook-mlp": "dc1f49068e69b9b2",
}


def test_every_case_is_recorded():
    assert set(CASES) == set(RECORDED)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_fingerprint_unchanged(name):
    assert fingerprint(fit_case(name)) == RECORDED[name]


@pytest.mark.parametrize("name", ["sgd-grid", "adam-parallel", "mlp-parallel-batch"])
def test_fingerprint_same_on_two_threads(name):
    assert fingerprint(fit_case(name, n_threads=2)) == RECORDED[name]
