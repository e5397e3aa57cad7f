"""Every model, and each of its training paths, held to :class:`tests.contract.ModelContract`."""

from __future__ import annotations

from latentfactors import MLPMF, BayesianMF, BiasedMF
from tests.contract import ModelContract


class TestBiasedMFSGD(ModelContract):
    model_class = BiasedMF
    params = {"n_factors": 4, "n_epochs": 3}


class TestBiasedMFAdam(ModelContract):
    model_class = BiasedMF
    params = {"n_factors": 4, "n_epochs": 3, "optimizer": "adam", "batch_size": 64}


class TestBiasedMFAdamDense(ModelContract):
    model_class = BiasedMF
    params = {"n_factors": 4, "n_epochs": 3, "optimizer": "adam-dense", "batch_size": 64}


class TestMLPMF(ModelContract):
    model_class = MLPMF
    params = {"n_factors": 4, "hidden": (8,), "n_epochs": 2}


class TestMLPMFSGDHead(ModelContract):
    model_class = MLPMF
    params = {
        "n_factors": 4,
        "hidden": (6, 4),
        "activation": "tanh",
        "dropout": 0.2,
        "optimizer": "sgd",
        "n_epochs": 2,
    }


class TestBayesianMF(ModelContract):
    model_class = BayesianMF
    params = {"n_factors": 4, "n_samples": 12}


class TestBayesianMFImplicit(ModelContract):
    model_class = BayesianMF
    params = {"n_factors": 4, "n_samples": 12, "implicit": True}
