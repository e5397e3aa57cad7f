"""The argument parser, the command-line types and :func:`main` (which renders errors)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from latentfactors.cli.datasets import cmd_datasets, cmd_demo
from latentfactors.cli.errors import (
    PROG,
    CLIError,
    UnknownIdError,
    UsageError,
    describe,
    print_error,
)
from latentfactors.cli.hyperparameters import add_model_flags
from latentfactors.cli.output import Output
from latentfactors.cli.recommend import cmd_recommend, cmd_similar
from latentfactors.cli.training import cmd_evaluate, cmd_info, cmd_train

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of printing usage and exiting."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


# ---------------------------------------------------------------- argument types


def _int_type(low=None, what="an integer"):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


def _float_type(low=None, high=None, high_open=False, what="a number"):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        bad = not math.isfinite(value)
        if low is not None:
            bad = bad or value < low
        if high is not None:
            bad = bad or (value >= high if high_open else value > high)
        if bad:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_POS_INT = _int_type(1, "a positive integer")
_SEED = _int_type(0, "a non-negative integer")
_FRACTION = _float_type(0, high=1, high_open=True, what="a number in [0, 1)")


def _columns(text):
    """``user,item,rating`` (a headerless file's columns) or ``userId=user,movieId=item``."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("expected column names, e.g. user,item,rating")
    if any("=" in p for p in parts):
        mapping = {}
        for p in parts:
            source, sep, target = p.partition("=")
            if not sep or not source.strip() or not target.strip():
                raise argparse.ArgumentTypeError(
                    f"expected SOURCE=TARGET pairs such as userId=user,movieId=item, got {p!r}"
                )
            mapping[source.strip()] = target.strip()
        return mapping
    return parts


def _separator(text):
    names = {"tab": "\t", "\\t": "\t", "comma": ",", "space": " ", "semicolon": ";"}
    return names.get(text.lower(), text)


def dataset_name(text):
    """A MovieLens variant's registry name, from any name the loaders accept."""
    from latentfactors.data import MOVIELENS_VARIANTS, movielens_variant

    try:
        return movielens_variant(text).name
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"unknown dataset {text!r}; known: {', '.join(MOVIELENS_VARIANTS)}"
        ) from None


# ---------------------------------------------------------------- option groups


def _common():
    """Options every command takes (also accepted before the command name)."""
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("output")
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print one JSON object on stdout",
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress or notes on stderr",
    )
    group.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show a traceback on errors"
    )
    return parent


def _data_home_arg(parser):
    parser.add_argument(
        "--data-home",
        metavar="DIR",
        default=None,
        help="dataset folder (default: $LATENTFACTORS_DATA or ~/.cache/latentfactors)",
    )


def _no_download_arg(parser):
    parser.add_argument(
        "--no-download", action="store_true", help="fail instead of downloading a missing dataset"
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="read a cached dataset even if it does not hold the published number of ratings "
        "(a deliberate subset)",
    )


def _string_ids_arg(parser):
    parser.add_argument(
        "--string-ids",
        action="store_true",
        help="read user and item ids as text, as typed ('001' stays '001'), for models "
        "trained on string ids",
    )


def _ratings_args(parser, *, dataset_help="a MovieLens variant"):
    group = parser.add_argument_group("ratings")
    source = group.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", type=dataset_name, metavar="NAME", help=dataset_help)
    source.add_argument(
        "--ratings",
        metavar="FILE",
        help="a CSV/TSV/'::' file of user,item,rating[,timestamp], plain or compressed "
        "(.gz, .bz2, .xz, .zst, single-file .zip), or a .parquet file",
    )
    group.add_argument(
        "--columns",
        type=_columns,
        metavar="COLS",
        help="--ratings columns: names in order for a headerless file (user,item,rating,skip) "
        "or a header mapping (userId=user,movieId=item,stars=rating)",
    )
    group.add_argument(
        "--sep",
        type=_separator,
        metavar="SEP",
        help="--ratings field separator (default: sniffed; 'tab' for TAB)",
    )
    group.add_argument(
        "--duplicates",
        choices=["raise", "last", "first", "mean"],
        default="raise",
        help="repeated (user, item) pairs (default: raise)",
    )
    _string_ids_arg(group)
    _no_download_arg(group)
    _data_home_arg(group)


def _titles_args(parser):
    group = parser.add_argument_group("titles")
    src = group.add_mutually_exclusive_group()
    src.add_argument(
        "--items", metavar="FILE", help="CSV with an item id column and a title column"
    )
    src.add_argument(
        "--dataset",
        type=dataset_name,
        metavar="NAME",
        help="read titles from this MovieLens variant (default: the sidecar's)",
    )
    _data_home_arg(group)


# ---------------------------------------------------------------- the parser


def _add_demo(add):
    p = add(
        "demo",
        cmd_demo,
        "train the notebook's models and ours; print a comparison",
        "Train the original notebook's two configurations and our defaults on one "
        "seeded 80/12/8 random split, print their test MSE beside the notebook's "
        "published figures, then three recommendations for one user.",
    )
    p.add_argument(
        "--dataset",
        type=dataset_name,
        default=None,
        metavar="NAME",
        help="MovieLens variant (default ml-latest-small, or a planted dataset of its size "
        "when it is not cached and cannot be downloaded; ml-latest-small-2016 is the "
        "notebook's snapshot)",
    )
    p.add_argument(
        "--seed", type=_SEED, default=0, help="seeds the split, the models and the user (default 0)"
    )
    p.add_argument("--quick", action="store_true", help="2 epochs per model (for tests)")
    p.add_argument(
        "--n-threads",
        type=_int_type(what="an integer"),
        default=-1,
        metavar="N",
        help="threads per model (default -1: all cores; results do not depend on it)",
    )
    # The demo's old name for --n-threads, kept working but no longer shown.
    p.add_argument(
        "--threads", type=_int_type(what="an integer"), dest="old_threads", help=argparse.SUPPRESS
    )
    _no_download_arg(p)
    _data_home_arg(p)


def _add_train(add):
    p = add(
        "train",
        cmd_train,
        "fit a model on ratings and save it",
        "Fit a model, printing one line per epoch with an ETA (stderr), then the "
        "train/valid/test metrics. --save also writes MODEL.npz.json beside the model, "
        "naming the data so that 'recommend' can show titles.",
    )
    _ratings_args(p, dataset_help="a MovieLens variant (downloaded once when missing)")
    add_model_flags(p.add_argument_group("model"))
    g = p.add_argument_group("split")
    g.add_argument(
        "--split",
        choices=["random", "user", "time"],
        default="random",
        help="random: shuffled rows; user: a share of each user's ratings; time: "
        "the latest ratings (default random)",
    )
    g.add_argument(
        "--valid-fraction",
        type=_FRACTION,
        default=0.1,
        metavar="F",
        help="share held out for validation and early stopping; 0 = none (default 0.1)",
    )
    g.add_argument(
        "--test-fraction",
        type=_FRACTION,
        default=0.0,
        metavar="F",
        help="share held out for a final test (default 0)",
    )
    g.add_argument(
        "--seed", type=_SEED, default=0, help="seeds the split and the model (default 0)"
    )
    g = p.add_argument_group("output files")
    g.add_argument("--save", metavar="MODEL.npz", help="write the fitted model here")
    g.add_argument(
        "--items",
        metavar="FILE",
        help="titles file to record for 'recommend' (item id and title columns)",
    )


def _add_evaluate(add):
    p = add(
        "evaluate",
        cmd_evaluate,
        "MSE/RMSE/MAE of a saved model on ratings (and ranking metrics with --k)",
    )
    p.add_argument("model_file", metavar="MODEL.npz")
    _ratings_args(p)
    g = p.add_argument_group("ranking")
    g.add_argument(
        "--k",
        type=_POS_INT,
        metavar="K",
        help="also score top-K lists: precision, recall, NDCG, MAP, hit rate, coverage",
    )
    g.add_argument(
        "--threshold",
        type=_float_type(),
        default=4.0,
        metavar="T",
        help="a rating >= T makes an item relevant (default 4)",
    )


def _add_recommend_and_similar(add):
    p = add(
        "recommend",
        cmd_recommend,
        "top-N items for a user",
        "Top-N items for a user by predicted rating, leaving out what the user rated "
        "in training. Titles come from --items, --dataset or the model's sidecar.",
    )
    p.add_argument("model_file", metavar="MODEL.npz")
    p.add_argument("--user", required=True, metavar="ID", help="raw user id")
    _string_ids_arg(p)
    p.add_argument("-n", "--n", type=_POS_INT, default=10, help="how many (default 10)")
    p.add_argument(
        "--include-seen", action="store_true", help="keep items the user rated in training"
    )
    p.add_argument(
        "--popularity-weight",
        type=_float_type(),
        default=0.0,
        metavar="W",
        help="rank by score + W * ln(1 + ratings of the item) (default 0: the model alone)",
    )
    _titles_args(p)

    p = add(
        "similar",
        cmd_similar,
        "the items (or users) most similar to an item (or user)",
        "The items most similar to --item ID (or the users most similar to --user ID), "
        "by the cosine (or dot product) of their learned vectors.",
    )
    p.add_argument("model_file", metavar="MODEL.npz")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--item", metavar="ID", help="raw item id")
    which.add_argument("--user", metavar="ID", help="raw user id (similar users)")
    _string_ids_arg(p)
    p.add_argument("-n", "--n", type=_POS_INT, default=10, help="how many (default 10)")
    p.add_argument("--metric", choices=["cosine", "dot"], default="cosine", help="(default cosine)")
    _titles_args(p)


def build_parser() -> argparse.ArgumentParser:
    """The ``latentfactors`` argument parser with all its subcommands."""
    from latentfactors import __version__

    common = _common()
    parser = _Parser(
        prog=PROG,
        description="Latent-factor recommenders for explicit ratings.",
        epilog="Run 'latentfactors COMMAND --help' for a command's options. Exit status: "
        "0 ok, 1 runtime error, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name, func, help, description=None):
        p = sub.add_parser(name, parents=[common], help=help, description=description or help)
        p.set_defaults(func=func)
        return p

    _add_demo(add)
    _add_train(add)
    _add_evaluate(add)
    _add_recommend_and_similar(add)
    p = add("info", cmd_info, "describe a saved model")
    p.add_argument("model_file", metavar="MODEL.npz")
    p = add("datasets", cmd_datasets, "list the MovieLens variants and which are cached")
    _data_home_arg(p)
    return parser


def _report(exc: BaseException, message: str, as_json: bool) -> None:
    """The error line on stderr, and with ``--json`` an error object on stdout.

    The object's ``type`` is ``UsageError`` for bad usage (exit status 2),
    else the library's exception class when the command line caught one
    (``DatasetNotFoundError``, ``ValueError``, ...), else ``CLIError``.
    """
    print_error(message)
    if as_json:
        caught = isinstance(exc, CLIError) and not isinstance(exc, UsageError)
        cause = exc.__cause__ if caught and exc.__cause__ is not None else exc
        error = {"type": type(cause).__name__, "message": " ".join(message.split())}
        print(json.dumps({"error": error}), flush=True)


def main(argv=None) -> int:
    """Run the command line; return the exit status (0 ok, 1 runtime error, 2 usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    as_json = "--json" in argv
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:  # started with the stream closed (`>&-`)
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - kept for the run
    try:
        args = build_parser().parse_args(argv)
        debug = debug or args.debug
        return args.func(args, Output(args))
    except CLIError as exc:
        if debug:
            raise
        _report(exc, str(exc), as_json)
        return exc.status
    except UnknownIdError as exc:
        if debug:
            raise
        _report(exc, describe(exc), as_json)
        return 1
    except KeyboardInterrupt as exc:
        print(file=sys.stderr)
        _report(exc, "interrupted", as_json)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:  # noqa: BLE001 - one line instead of a traceback
        if debug:
            raise
        _report(
            exc,
            f"{describe(exc)} ({type(exc).__name__}; rerun with --debug for a traceback)",
            as_json,
        )
        return 1
