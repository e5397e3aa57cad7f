"""Errors of the command line, and library errors rendered as one line by their type.

A command raises :class:`CLIError` (exit status 1) or :class:`UsageError`
(exit status 2) with a message written for the command line. Where the CLI
calls the library it catches the library's specific exception types and adds
what the command line knows (which flag fed which argument) beside the
library's own message; it never rewords that message.
"""

from __future__ import annotations

import sys

from latentfactors.errors import UnknownIdError

PROG = "latentfactors"

__all__ = ["PROG", "CLIError", "UnknownIdError", "UsageError", "describe", "print_error"]


class CLIError(Exception):
    """A runtime error reported as one line; exit status 1."""

    status = 1


class UsageError(CLIError):
    """Bad command-line usage; exit status 2."""

    status = 2


def _shown_ids(ids) -> str:
    ids = list(ids)
    shown = ", ".join(repr(i.item() if hasattr(i, "item") else i) for i in ids[:3])
    return shown + (", ..." if len(ids) > 3 else "")


def describe(exc: BaseException) -> str:
    """The text of a library error on the command line.

    An :class:`UnknownIdError` that names its ``kind`` and ``ids`` is said in
    the command line's words (the library's advice is about Python calls);
    a ``KeyError`` is shown without the quotes its ``str`` adds; anything
    else as its own message.
    """
    if isinstance(exc, UnknownIdError):
        kind, ids = getattr(exc, "kind", None), getattr(exc, "ids", None)
        if kind in ("user", "item") and ids is not None and len(ids) > 0:
            noun = kind if len(ids) == 1 else f"{kind}s"
            return f"unknown {noun} {_shown_ids(ids)}: not in the model's training ratings"
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        return exc.args[0]
    return str(exc) or type(exc).__name__


def print_error(message: str) -> None:
    """``latentfactors: error: ...`` on stderr, always one line."""
    text = " ".join(str(message).split())
    print(f"{PROG}: error: {text}", file=sys.stderr, flush=True)
