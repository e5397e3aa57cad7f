"""Reading and shaping ratings. Knows nothing of models or kernels."""

from latentfactors.data.ids import IdIndex
from latentfactors.data.movielens import (
    MOVIELENS_VARIANTS,
    DatasetNotFoundError,
    DownloadError,
    get_data_home,
    load_movielens,
    load_movielens_items,
)
from latentfactors.data.ratings import load_ratings
from latentfactors.data.split import kfold, random_split, temporal_split, user_holdout_split
from latentfactors.data.synthetic import SyntheticTruth, make_synthetic_ratings

__all__ = [
    "MOVIELENS_VARIANTS",
    "DatasetNotFoundError",
    "DownloadError",
    "IdIndex",
    "SyntheticTruth",
    "get_data_home",
    "kfold",
    "load_movielens",
    "load_movielens_items",
    "load_ratings",
    "make_synthetic_ratings",
    "random_split",
    "temporal_split",
    "user_holdout_split",
]
