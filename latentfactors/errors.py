"""Every exception and warning the library raises on purpose, in one place.

Each has a message written for people; the attributes carry the same facts
for programs (the command line maps errors by type and reads them there,
never by parsing a message).
"""

from __future__ import annotations

__all__ = [
    "DatasetNotFoundError",
    "DivergenceError",
    "DownloadError",
    "IncompleteDatasetError",
    "ModelFileError",
    "NotFittedError",
    "UnknownIdError",
    "UnstableTrainingWarning",
]


class DivergenceError(FloatingPointError):
    """Training blew up: NaN or infinite values, or a training MSE of runaway size.

    The message names the hyperparameter to change, most often the learning rate.
    """


class UnstableTrainingWarning(RuntimeWarning):
    """Training stayed finite but its error is far above that of predicting 0."""


class NotFittedError(ValueError, AttributeError):
    """The model is used before :meth:`fit`."""


class ModelFileError(ValueError):
    """A file is not a model saved by this library, or it is damaged.

    Attributes
    ----------
    file : str, os.PathLike, file object or None
        What ``load`` was given to read.
    """

    def __init__(self, message, *, file=None):
        super().__init__(message)
        self.file = file


class UnknownIdError(ValueError, KeyError):
    """A user or item id that the fitted model has never seen.

    Both a :class:`ValueError` (a bad argument) and a :class:`KeyError` (a
    failed lookup), so that either ``except`` clause catches it.

    Attributes
    ----------
    kind : {"user", "item"} or None
        Which ids were unknown.
    ids : list
        The unknown ids, all of them (the message shows a few).
    """

    def __init__(self, message, *, kind=None, ids=()):
        super().__init__(message)
        self.kind = kind
        self.ids = list(ids)

    def __str__(self):  # KeyError would show the message quoted, as a key
        return str(self.args[0]) if self.args else ""


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is not in the data home and was not (or cannot be) downloaded.

    Attributes
    ----------
    dataset : str or None
        The dataset's name, e.g. ``"ml-latest-small"``.
    path : pathlib.Path or None
        Where it was looked for: the data home, or the dataset's folder there.
    """

    def __init__(self, message, *, dataset=None, path=None):
        super().__init__(message)
        self.dataset = dataset
        self.path = path


class DownloadError(OSError):
    """Downloading, checking or unpacking a dataset archive failed; nothing was left behind.

    Attributes
    ----------
    dataset : str or None
        The dataset's name, when known.
    url : str or None
        The address it was downloaded from, when known.
    """

    def __init__(self, message, *, dataset=None, url=None):
        super().__init__(message)
        self.dataset = dataset
        self.url = url


class IncompleteDatasetError(ValueError):
    """A cached dataset holds another number of ratings than the published release.

    Attributes
    ----------
    dataset : str or None
        The release, e.g. ``"ml-latest-small"``.
    path : pathlib.Path or None
        The ratings file that was read.
    expected, found : int or None
        The published number of ratings, and the number in the file.
    """

    def __init__(self, message, *, dataset=None, path=None, expected=None, found=None):
        super().__init__(message)
        self.dataset = dataset
        self.path = path
        self.expected = expected
        self.found = found
