"""Reading and shaping ratings. Knows nothing of models or kernels."""

from latentfactors.data.files import sniff_separator
from latentfactors.data.ids import IdIndex
from latentfactors.data.movielens import (
    MOVIELENS_VARIANTS,
    DatasetNotFoundError,
    DownloadError,
    IncompleteDatasetError,
    dataset_status,
    get_data_home,
    load_movielens,
    load_movielens_items,
    movielens_variant,
)
from latentfactors.data.ratings import load_ratings
from latentfactors.data.split import kfold, random_split, temporal_split, user_holdout_split
from latentfactors.data.synthetic import SyntheticTruth, make_synthetic_ratings

__all__ = [
    "MOVIELENS_VARIANTS",
    "DatasetNotFoundError",
    "DownloadError",
    "IdIndex",
    "IncompleteDatasetError",
    "SyntheticTruth",
    "dataset_status",
    "get_data_home",
    "kfold",
    "load_movielens",
    "load_movielens_items",
    "load_ratings",
    "make_synthetic_ratings",
    "movielens_variant",
    "random_split",
    "sniff_separator",
    "temporal_split",
    "user_holdout_split",
]
