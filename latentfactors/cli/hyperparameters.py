"""The model flags of ``train``: names and help here; defaults, types and ranges from the models.

A flag is accepted only by the models whose ``get_params()`` has its name.
The string typed is converted by the type of the parameter's default (an
integer, a number, a word, ``64,32`` for a tuple of widths, ``--flag`` /
``--no-flag`` for a boolean); the model itself then checks the values, so
the ranges live in one place, the library.
"""

from __future__ import annotations

import argparse

from latentfactors.cli.errors import CLIError, UsageError

__all__ = ["MODEL_NAMES", "add_model_flags", "build_model"]

MODEL_NAMES = {
    "biased-mf": "BiasedMF",
    "mlp": "MLPMF",
    "bayes": "BayesianMF",
    "implicit": "ImplicitMF",
}

# (model parameter name, metavar, help); the order of ``train --help``.
FLAGS = [
    ("n_factors", "K", "length of each user and item vector"),
    (
        "optimizer",
        "NAME",
        "biased-mf: sgd, adam, adam-dense; mlp (its head): adam, sgd, adam-dense (Keras)",
    ),
    (
        "embedding_optimizer",
        "NAME",
        "mlp: optimizer of the embedding rows and biases: sgd, adam, adam-dense",
    ),
    ("learning_rate", "LR", "step size (default: the optimizer's)"),
    ("embedding_learning_rate", "LR", "mlp: step size of the embedding rows and biases"),
    ("lr_decay", "F", "mlp: multiply the learning rates by F after every epoch"),
    ("reg", "L2", "L2 penalty on the factors"),
    ("reg_bias", "L2", "L2 penalty on the biases"),
    ("reg_weights", "L2", "mlp: L2 penalty on the dense weights"),
    ("n_epochs", "N", "maximum number of epochs"),
    ("batch_size", "N", "ratings per step (Adam, mlp)"),
    ("init_std", "STD", "standard deviation of the initial factors"),
    ("init", "NAME", "normal (zero biases) or uniform (vectors and biases, as Keras)"),
    ("hidden", "W1,W2", "mlp: hidden layer widths, e.g. 64,32"),
    ("activation", "NAME", "mlp: relu, tanh or linear"),
    ("dropout", "P", "mlp: dropout probability of the hidden units"),
    ("n_samples", "N", "bayes: Gibbs sweeps, burn-in included"),
    ("n_burn_in", "N", "bayes: sweeps discarded before any is kept (default: n_samples // 40)"),
    ("max_kept", "N", "bayes: at most N thinned samples kept for prediction"),
    (
        "implicit",
        None,
        "bayes: add the items each user rated and the users who rated each item (SVD++'s "
        "implicit feedback)",
    ),
    ("time", "day", "bayes: day adds each rating's calendar day (needs a timestamp column)"),
    ("alpha", "A", "implicit: confidence of an observed pair is 1 + A * f(rating)"),
    ("confidence", "NAME", "implicit: f is rating ((r / r_max) ** power), binary (1) or log"),
    ("power", "P", "implicit: the exponent of confidence rating"),
    ("reg_exponent", "NU", "implicit: a row's penalty is reg * (its total weight) ** NU"),
    ("solver", "NAME", "implicit: cg (conjugate gradient) or cholesky (exact) row solves"),
    ("cg_steps", "N", "implicit: conjugate-gradient steps per row and sweep"),
    ("patience", "N", "epochs without a better valid MSE before stopping"),
    ("n_threads", "N", "threads, -1 for all cores (results do not depend on it)"),
    ("early_stopping", None, "stop when the valid MSE stops improving, keep the best epoch"),
    ("clip", None, "keep predictions within the training rating range"),
    ("center", None, "predict around the global mean of the training ratings"),
]


def _model_classes() -> dict:
    """``{flag value: model class}`` for the models this version has."""
    from latentfactors.models import MODEL_CLASSES

    return {
        flag: MODEL_CLASSES[name] for flag, name in MODEL_NAMES.items() if name in MODEL_CLASSES
    }


def _defaults() -> dict:
    """``{flag value: get_params() of a default instance}``."""
    return {flag: cls().get_params() for flag, cls in _model_classes().items()}


def flag(name: str) -> str:
    """``n_factors`` -> ``--n-factors``."""
    return "--" + name.replace("_", "-")


def _integer(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _number(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _integers(text):
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 64,32, got {text!r}"
        ) from None


# Parameters whose default is None (the model chooses) but whose values are counts,
# or words.
COUNTS = {"n_burn_in"}
WORDS = {"time"}


def _converter(name, default):
    """How to read a flag's text, from the type of the parameter's default.

    ``None`` stands for a value the model chooses: a count for the names in
    ``COUNTS``, a number (a learning rate) otherwise.
    """
    if default is None and name in COUNTS:
        return _integer
    if default is None and name in WORDS:
        return str
    if isinstance(default, tuple):
        return _integers
    if isinstance(default, int):
        return _integer
    if isinstance(default, str):
        return str
    return _number


def _shown(name: str, value) -> str:
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if value is None:
        return "auto" if name in ("learning_rate", "n_burn_in") else "none"
    return str(value)


def add_model_flags(group) -> None:
    """Add ``--model`` and one flag per hyperparameter to an argparse group."""
    defaults = _defaults()
    group.add_argument(
        "--model",
        choices=list(MODEL_NAMES),
        default="biased-mf",
        help="biased-mf (BiasedMF, default), mlp (MLPMF), bayes (BayesianMF) or implicit "
        "(ImplicitMF: which items people choose, for top-N)",
    )
    for name, metavar, help_text in FLAGS:
        values = {model: params[name] for model, params in defaults.items() if name in params}
        shown = ", ".join(f"{model} {_shown(name, v)}" for model, v in values.items())
        help_text += f" (default: {shown})" if shown else ""
        default = next((v for v in values.values() if v is not None), None)
        if isinstance(default, bool):
            group.add_argument(
                flag(name),
                dest="hp_" + name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            group.add_argument(
                flag(name),
                dest="hp_" + name,
                type=_converter(name, default),
                metavar=metavar,
                default=None,
                help=help_text,
            )


def build_model(args):
    """The estimator named by ``--model`` with the flags given, checked by the model.

    Raises
    ------
    UsageError
        A flag the model does not take, or a value the model refuses (the
        model's own message, which names the parameter).
    """
    classes = _model_classes()
    cls = classes.get(args.model)
    if cls is None:
        raise CLIError(f"model {args.model!r} ({MODEL_NAMES[args.model]}) is not available")
    model = cls()
    accepted = model.get_params()
    params = {}
    for name, *_ in FLAGS:
        value = getattr(args, "hp_" + name)
        if value is None:
            continue
        if name not in accepted:
            applies = [m for m, c in classes.items() if name in c().get_params()]
            raise UsageError(
                f"{flag(name)} does not apply to --model {args.model}"
                + (f" (only to --model {', '.join(applies)})" if applies else "")
            )
        params[name] = value
    try:
        model.set_params(random_state=args.seed, **params)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"bad hyperparameter: {exc}") from exc
    return model
