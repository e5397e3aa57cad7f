"""Estimators. Only this package decides which kernel runs."""

from latentfactors.errors import (
    DivergenceError,
    ModelFileError,
    NotFittedError,
    UnknownIdError,
    UnstableTrainingWarning,
)
from latentfactors.models.base import FactorModel
from latentfactors.models.bayesian import BayesianMF
from latentfactors.models.biased_mf import BiasedMF
from latentfactors.models.implicit import ImplicitMF
from latentfactors.models.mlp import MLPMF
from latentfactors.models.persistence import load_model

MODEL_CLASSES = {
    "BiasedMF": BiasedMF,
    "MLPMF": MLPMF,
    "BayesianMF": BayesianMF,
    "ImplicitMF": ImplicitMF,
}

__all__ = [
    "BayesianMF",
    "BiasedMF",
    "DivergenceError",
    "FactorModel",
    "ImplicitMF",
    "MLPMF",
    "MODEL_CLASSES",
    "ModelFileError",
    "NotFittedError",
    "UnknownIdError",
    "UnstableTrainingWarning",
    "load_model",
]
