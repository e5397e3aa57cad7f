"""The ``latentfactors`` command line (also ``python -m latentfactors``).

Commands::

    latentfactors demo [--dataset NAME] [--seed N] [--quick] [--n-threads N]
    latentfactors train (--dataset NAME | --ratings FILE [--columns ...])
                        [--model biased-mf|mlp|bayes|implicit] [hyperparameters]
                        [--split random|user|time] [--valid-fraction F] [--test-fraction F]
                        [--seed N] [--items FILE] [--save model.npz]
    latentfactors evaluate model.npz (--ratings FILE | --dataset NAME) [--k 10 [--threshold 4]]
    latentfactors recommend model.npz --user ID [--n 10] [--include-seen]
                            [--popularity-weight W] [--items FILE | --dataset NAME]
    latentfactors similar model.npz (--item ID | --user ID) [--n 10] [--metric cosine|dot]
                          [--items FILE | --dataset NAME]
    latentfactors info model.npz
    latentfactors datasets

Every command takes ``--help``, ``--quiet`` (no progress or notes on stderr),
``--json`` (one JSON object on stdout) and ``--debug`` (tracebacks).
Errors are one line on stderr, ``latentfactors: error: ...``, with exit
status 2 for bad usage (unknown option, bad hyperparameter value) and 1 for
everything else (missing or malformed file, unknown user, damaged model);
with ``--json`` they are also a JSON object on stdout,
``{"error": {"type": ..., "message": ...}}``.

The command line uses the package's public API only. Its modules:
:mod:`~latentfactors.cli.parser` (the parser, argument types and
:func:`main`), :mod:`~latentfactors.cli.errors` (library errors rendered by
type), :mod:`~latentfactors.cli.output` (results, notes and progress),
:mod:`~latentfactors.cli.hyperparameters` (the model flags, read from the
models), :mod:`~latentfactors.cli.files` (model, ratings and titles files,
sidecars) and one module per command group:
:mod:`~latentfactors.cli.training` (train, evaluate, info),
:mod:`~latentfactors.cli.recommend` (recommend, similar) and
:mod:`~latentfactors.cli.datasets` (datasets, demo).

Titles
------
A saved model does not know where its ratings came from, so ``train --save
model.npz`` also writes a small JSON *sidecar*, ``model.npz.json``, naming the
dataset (or the ratings file and ``--items`` titles file) and the model file's
SHA-256. ``recommend`` and ``similar`` read titles from ``--items FILE``
(a CSV with an item id column and a ``title`` column), else ``--dataset
NAME``, else the sidecar when it matches the model file. Without any of
them the commands print item ids only.
"""

from latentfactors.cli.parser import main
from latentfactors.cli.recommend import recommend_frame, similar_frame

__all__ = ["main", "recommend_frame", "similar_frame"]
