"""Estimators. Only this package decides which kernel runs."""

from latentfactors.models.base import (
    DivergenceError,
    FactorModel,
    ModelFileError,
    NotFittedError,
    UnstableTrainingWarning,
    load_model,
)
from latentfactors.models.biased_mf import BiasedMF
from latentfactors.models.mlp import MLPMF

MODEL_CLASSES = {"BiasedMF": BiasedMF, "MLPMF": MLPMF}

__all__ = [
    "BiasedMF",
    "DivergenceError",
    "FactorModel",
    "MLPMF",
    "MODEL_CLASSES",
    "ModelFileError",
    "NotFittedError",
    "UnstableTrainingWarning",
    "load_model",
]
