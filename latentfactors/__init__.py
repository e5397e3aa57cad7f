"""latentfactors: latent-factor recommenders for explicit ratings, in NumPy and Numba.

>>> from latentfactors import BiasedMF, load_movielens, random_split
>>> ratings = load_movielens("ml-latest-small")
>>> train, valid, test = random_split(ratings, random_state=0)
>>> model = BiasedMF(random_state=0).fit(train, valid=valid)
>>> model.evaluate(test)["rmse"]  # doctest: +SKIP
"""

__version__ = "0.1.0"

from latentfactors.data import (  # noqa: E402
    IdIndex,
    kfold,
    load_movielens,
    load_movielens_items,
    load_ratings,
    make_synthetic_ratings,
    random_split,
    temporal_split,
    user_holdout_split,
)
from latentfactors.models import (  # noqa: E402
    MLPMF,
    BiasedMF,
    DivergenceError,
    ModelFileError,
    NotFittedError,
    load_model,
)

__all__ = [
    "__version__",
    "BiasedMF",
    "DivergenceError",
    "MLPMF",
    "ModelFileError",
    "NotFittedError",
    "load_model",
    "IdIndex",
    "kfold",
    "load_movielens",
    "load_movielens_items",
    "load_ratings",
    "make_synthetic_ratings",
    "random_split",
    "temporal_split",
    "user_holdout_split",
]
