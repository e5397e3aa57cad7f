"""Progress lines on standard error: training epochs and downloads.

One writer for both: on a terminal the line is rewritten in place, elsewhere
(a log file, a pipe) each update is a line of its own. Imports nothing from
the package, so that ``data/`` can use it without loading the models.
"""

from __future__ import annotations

import sys
import time

__all__ = [
    "EpochProgress",
    "ProgressLine",
    "TransferProgress",
    "format_duration",
    "format_megabytes",
]


def format_duration(seconds: float) -> str:
    """``"4.2s"``, ``"3m05s"`` or ``"1h02m"``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class ProgressLine:
    """A progress line on ``stream``: rewritten in place on a terminal, appended elsewhere.

    Parameters
    ----------
    stream : file, optional
        Default ``sys.stderr`` (looked up when the line is made, so that a
        replaced ``sys.stderr`` is honoured).
    """

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):  # no isatty, or a closed file
            self.tty = False
        self.open_line = False

    def show(self, text: str, final: bool = False) -> None:
        """Write ``text``; ``final`` ends the line on a terminal too."""
        if self.tty:
            end = "\n" if final else ""
            print("\r\x1b[K" + text, end=end, file=self.stream, flush=True)
            self.open_line = not final
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        """End a line left open on a terminal."""
        if self.open_line:
            print(file=self.stream, flush=True)
            self.open_line = False


class EpochProgress(ProgressLine):
    """``callback(epoch, logs)`` that prints one progress line per epoch, with an ETA.

    The ETA is the mean wall time of the epochs so far times the epochs left.
    The first epoch is left out of the mean once there are others, because it
    includes Numba compilation on a first run. With early stopping the ETA is
    an upper bound, shown as ``ETA <=``.

    Parameters
    ----------
    n_epochs : int
        The model's ``n_epochs``.
    label : str
        Printed before each line (e.g. the model's name in the demo).
    stream : file, optional
        Default ``sys.stderr``.
    early_stopping : bool
        The fit may stop before ``n_epochs``: the ETA is then a bound.
    """

    def __init__(self, n_epochs: int, label: str = "", stream=None, early_stopping=False):
        super().__init__(stream)
        self.n_epochs = int(n_epochs)
        self.label = f"{label}: " if label else ""
        self.early_stopping = bool(early_stopping)
        self.start = self.last = time.perf_counter()
        self.durations: list[float] = []

    def __call__(self, epoch: int, logs: dict) -> None:
        now = time.perf_counter()
        self.durations.append(now - self.last)
        self.last = now
        steady = self.durations[1:] or self.durations
        eta = sum(steady) / len(steady) * max(0, self.n_epochs - epoch)
        width = len(str(self.n_epochs))
        parts = [
            f"{self.label}epoch {epoch:>{width}}/{self.n_epochs}",
            f"train_mse {logs['train_mse']:.4f}",
        ]
        if "valid_mse" in logs:
            parts.append(f"valid_mse {logs['valid_mse']:.4f}")
        parts += [
            f"{self.durations[-1]:.2f}s",
            f"elapsed {format_duration(now - self.start)}",
            f"ETA {'<=' if self.early_stopping else ''}{format_duration(eta)}",
        ]
        self.show("  ".join(parts))


def format_megabytes(n: int) -> str:
    """``"4.9 MB"``."""
    return f"{n / 1e6:.1f} MB"


class TransferProgress(ProgressLine):
    """``label: done / total (percent)`` in megabytes, shown on a terminal or once slow.

    Away from a terminal nothing is written during the first ``after``
    seconds (a fast download leaves no trace in a log), then at most one line
    every ten seconds.

    Parameters
    ----------
    label : str
        E.g. ``"Downloading ml-100k (4.9 MB)"``.
    total : int or None
        Bytes expected, when known.
    stream : file, optional
        Default ``sys.stderr``.
    after : float
        Seconds of silence away from a terminal.
    """

    def __init__(self, label: str, total: int | None, stream=None, after: float = 10.0):
        super().__init__(stream)
        self.label = label
        self.total = total
        self.start = time.monotonic()
        self.after = after
        self.last = 0.0
        self.shown = False

    def update(self, done: int, final: bool = False) -> None:
        """Report ``done`` bytes (throttled unless ``final``)."""
        now = time.monotonic()
        if not self.tty and now - self.start < self.after:
            return
        interval = 0.2 if self.tty else 10.0
        if not final and self.shown and now - self.last < interval:
            return
        self.last = now
        self.shown = True
        text = f"{self.label}: {format_megabytes(done)}"
        if self.total:
            text += f" / {format_megabytes(self.total)} ({100 * done / self.total:3.0f}%)"
        self.show(text, final=final)

    def finish(self, done: int) -> None:
        """The last report, if anything was shown."""
        if self.shown:
            self.update(done, final=True)
