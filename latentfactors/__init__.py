"""latentfactors: latent-factor recommenders for explicit ratings, in NumPy and Numba.

>>> from latentfactors import BiasedMF, load_movielens, random_split
>>> ratings = load_movielens("ml-latest-small")
>>> train, valid, test = random_split(ratings, random_state=0)
>>> model = BiasedMF(random_state=0).fit(train, valid=valid)
>>> model.evaluate(test)["rmse"]  # doctest: +SKIP

The public names are imported on first use, so ``import latentfactors`` (and
``latentfactors.__version__``) stays quick and does not load Numba until a
model or a loader is needed.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "IdIndex": "latentfactors.data",
    "kfold": "latentfactors.data",
    "load_movielens": "latentfactors.data",
    "load_movielens_items": "latentfactors.data",
    "load_ratings": "latentfactors.data",
    "make_synthetic_ratings": "latentfactors.data",
    "random_split": "latentfactors.data",
    "temporal_split": "latentfactors.data",
    "user_holdout_split": "latentfactors.data",
    "BayesianMF": "latentfactors.models",
    "BiasedMF": "latentfactors.models",
    "ImplicitMF": "latentfactors.models",
    "MLPMF": "latentfactors.models",
    "DivergenceError": "latentfactors.errors",
    "ModelFileError": "latentfactors.errors",
    "NotFittedError": "latentfactors.errors",
    "UnknownIdError": "latentfactors.errors",
    "UnstableTrainingWarning": "latentfactors.errors",
    "load_model": "latentfactors.models",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'latentfactors' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
