"""Named configurations, shared by the demo, the CLI, the benchmarks and the notebooks.

The two presets ``notebook_dot`` and ``notebook_mlp`` reproduce the original
Keras notebook on MovieLens ``ml-latest-small`` (2016): Keras ``Embedding``
layers (vectors and biases start uniform in +-0.05: ``init="uniform"`` with
standard deviation 0.05/sqrt(3)), no global mean (the biases learn the
average), Keras's Adam (which moves every embedding row at every step:
``optimizer="adam-dense"``), learning rate 1e-2 throughout, five epochs, no
regularisation, no early stopping and no clipping.

``bayes_timesvdpp`` is the most accurate configuration measured on that
protocol: :class:`~latentfactors.BayesianMF` with the implicit and the day
groups ("timeSVD++ flipped", Rendle, Zhang & Koren 2019).

``implicit_binary`` is :class:`~latentfactors.ImplicitMF` for data that holds
only which pairs were observed.
"""

from __future__ import annotations

import math

KERAS_INIT_STD = 0.05 / math.sqrt(3.0)

NOTEBOOK_DOT = {
    "n_factors": 5,
    "optimizer": "adam-dense",
    "learning_rate": 1e-2,
    "n_epochs": 5,
    "batch_size": 32,
    "reg": 0.0,
    "reg_bias": 0.0,
    "init_std": KERAS_INIT_STD,
    "init": "uniform",
    "early_stopping": False,
    "clip": False,
    "center": False,
}

# What the notebook printed for its two models (test MSE on the 8% split).
NOTEBOOK_PUBLISHED = {"dot": 1.008, "mlp": 0.842}


def notebook_dot(**overrides):
    """The notebook's 5-factor dot-product model with biases, as a :class:`BiasedMF`."""
    from latentfactors.models import BiasedMF

    return BiasedMF(**{**NOTEBOOK_DOT, **overrides})


NOTEBOOK_MLP = {
    "n_factors": 5,
    "hidden": (5,),
    "activation": "linear",
    "optimizer": "adam-dense",
    "embedding_optimizer": "adam-dense",
    "learning_rate": 1e-2,
    "lr_decay": 1.0,
    "n_epochs": 5,
    "batch_size": 64,
    "reg": 0.0,
    "reg_weights": 0.0,
    "reg_bias": 0.0,
    "init_std": KERAS_INIT_STD,
    "init": "uniform",
    "early_stopping": False,
    "clip": False,
    "center": False,
}


def notebook_mlp(**overrides):
    """The notebook's "complex model" (concatenated embeddings, Dense(5), Dense(1), biases).

    Its Dense layers have no activation, so the head is linear and the model
    is additive in user and item: see :class:`~latentfactors.MLPMF`.
    """
    from latentfactors.models import MLPMF

    return MLPMF(**{**NOTEBOOK_MLP, **overrides})


#: BayesianMF with SVD++'s implicit feedback and the calendar day: test MSE
#: 0.7134 on the notebook's protocol (median of seeds 0-2; README, and
#: benchmarks/results/accuracy-ml-latest-small-2016-bayes.md).
BAYES_TIMESVDPP = {"implicit": True, "time": "day"}


def bayes_timesvdpp(**overrides):
    """A :class:`~latentfactors.BayesianMF` with the implicit and the day groups.

    Its ``fit`` needs a frame with a ``timestamp`` column.
    """
    from latentfactors.models import BayesianMF

    return BayesianMF(**{**BAYES_TIMESVDPP, **overrides})


#: ImplicitMF on the pairs alone (every observed pair the same confidence), for
#: data without ratings, such as clicks or views: chosen on a validation split
#: of ml-latest-small's training part (NDCG@10 0.181 there, against 0.200 with
#: the defaults, which weigh the best ratings most; benchmarks/recommend.py).
IMPLICIT_BINARY = {"confidence": "binary", "alpha": 10.0, "reg": 0.02}


def implicit_binary(**overrides):
    """An :class:`~latentfactors.ImplicitMF` that uses only which pairs were observed."""
    from latentfactors.models import ImplicitMF

    return ImplicitMF(**{**IMPLICIT_BINARY, **overrides})
