"""Estimators. Only this package decides which kernel runs."""

from latentfactors.models.base import (
    DivergenceError,
    FactorModel,
    ModelFileError,
    NotFittedError,
    load_model,
)
from latentfactors.models.biased_mf import BiasedMF

MODEL_CLASSES = {"BiasedMF": BiasedMF}

__all__ = [
    "BiasedMF",
    "DivergenceError",
    "FactorModel",
    "MODEL_CLASSES",
    "ModelFileError",
    "NotFittedError",
    "load_model",
]
