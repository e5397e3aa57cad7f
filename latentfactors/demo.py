"""The demo behind ``make demo`` / ``python -m latentfactors demo``.

It trains five models on one seeded ``random_split`` (80/12/8) of a MovieLens
release and compares their test error:

* the original Keras notebook's two configurations, dot product
  (:func:`latentfactors.presets.notebook_dot`) and MLP head
  (:func:`latentfactors.presets.notebook_mlp`), fitted without validation
  data as the notebook did, beside the figures the notebook published (test MSE
  1.008 and 0.842, on the 2016 snapshot of ``ml-latest-small``);
* our defaults, :class:`~latentfactors.BiasedMF` and
  :class:`~latentfactors.MLPMF`, fitted with ``valid=`` (early stopping), and
  :class:`~latentfactors.BayesianMF` (Gibbs sampling, 200 samples; ``valid``
  only feeds its history).

It then prints three recommendations, with titles, for one user.

Offline, with ``fallback=True`` (the command line's default dataset), a
release that is not cached and cannot be downloaded is replaced by a planted
dataset of ml-latest-small's shape from
:func:`~latentfactors.data.make_synthetic_ratings` (610 users, 9,724 items,
100,836 ratings, 0.5 to 5 stars in half steps, generated titles); the report
then gives its noise floor, the best test MSE any model can reach.
:func:`run_demo` returns everything as data; :func:`format_demo` renders the
table that the command line prints.
"""

from __future__ import annotations

import math
import textwrap
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

__all__ = ["DemoResult", "DemoRow", "format_demo", "run_demo"]

#: Epochs per model with ``quick=True`` (used by the tests).
QUICK_EPOCHS = 2
_PUBLISHED_SNAPSHOT = "ml-latest-small-2016"
#: The planted stand-in for ml-latest-small: its users, items and ratings.
PLANTED_SHAPE = (610, 9_724, 100_836)


@dataclass
class DemoRow:
    """One line of the demo table.

    Attributes
    ----------
    name : str
        What the row is, e.g. ``"notebook: dot product"``.
    model : str
        Class name (``"BiasedMF"``, ``"MLPMF"`` or ``"BayesianMF"``).
    config : str
        A short description of the configuration.
    uses_valid : bool
        Whether ``fit`` got the validation part (early stopping).
    published_mse : float or None
        The figure the original notebook printed, for its two configurations.
    mse, rmse : float or None
        Test error; ``None`` when the row was skipped.
    fit_seconds : float or None
        Wall time of ``fit`` (includes Numba compilation on a first run).
    epochs : int or None
        Epochs (or Gibbs sweeps) run; ``best_epoch`` is the epoch whose
        parameters early stopping kept (``None`` without early stopping).
    best_epoch : int or None
    note : str
        Why a row was skipped, or anything else worth a footnote.
    """

    name: str
    model: str
    config: str
    uses_valid: bool
    published_mse: float | None = None
    mse: float | None = None
    rmse: float | None = None
    fit_seconds: float | None = None
    epochs: int | None = None
    best_epoch: int | None = None
    note: str = ""


@dataclass
class DemoResult:
    """Everything the demo computed; :meth:`to_dict` gives plain JSON-ready data."""

    dataset: str
    seed: int
    quick: bool
    n_ratings: int
    n_users: int
    n_items: int
    split: dict
    rows: list[DemoRow]
    user: object = None
    recommender: str | None = None
    recommendations: list[dict] = field(default_factory=list)
    liked: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    fallback: str | None = None
    noise_floor: float | None = None

    def to_dict(self) -> dict:
        """The result as JSON-serialisable dicts and lists (numpy scalars converted)."""
        return _plain(asdict(self))


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


_OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adam-dense": "Keras Adam"}


def describe_model(model, uses_valid: bool) -> str:
    """A one-line summary of a model's configuration, e.g. ``256 factors, SGD lr 0.015, ...``."""
    p = model.get_params()
    k = p["n_factors"]
    if "n_samples" in p:
        kept = -(-(p["n_samples"] - model.n_burn_in_) // model.thin_)
        groups = " + ".join(model.group_names_)
        return (
            f"{k} factors, {groups}; Gibbs sampling, {p['n_samples']} samples "
            f"({model.n_burn_in_} burn-in, {kept} kept)"
        )
    if "hidden" in p:
        head = "-".join(str(h) for h in p["hidden"])
        parts = [f"{k}+{k} factors -> MLP {head} {p['activation']}"]
    else:
        parts = [f"{k} factors"]
    optimizer = _OPTIMIZERS.get(p["optimizer"], p["optimizer"])
    step = f"{optimizer} lr {model.learning_rate_:g}"
    if "hidden" in p:
        embed = _OPTIMIZERS.get(model.embedding_optimizer_, model.embedding_optimizer_)
        rate = model.embedding_learning_rate_
        if (embed, rate) != (optimizer, model.learning_rate_):
            step = f"embeddings {embed} lr {rate:g}, head {step}"
    if p["optimizer"] != "sgd" or "hidden" in p:
        step += f", batch {p['batch_size']}"
    parts.append(step)
    regs = [p["reg"], p.get("reg_bias") or 0.0, p.get("reg_weights", 0.0)]
    parts.append("no reg" if not any(regs) else f"reg {p['reg']:g}")
    if uses_valid and p["early_stopping"]:
        parts.append(f"max {p['n_epochs']} epochs, early stopping")
    else:
        parts.append(f"{p['n_epochs']} epochs")
    return ", ".join(parts)


def _configurations(seed: int, quick: bool, n_threads: int):
    """``(row, factory or None)`` for the five rows; a missing preset gives ``None``."""
    from latentfactors import presets
    from latentfactors.models import MLPMF, BayesianMF, BiasedMF

    cap = {"n_epochs": QUICK_EPOCHS} if quick else {}
    common = {"random_state": seed, "n_threads": n_threads, **cap}
    published = presets.NOTEBOOK_PUBLISHED
    rows = [
        (
            DemoRow("notebook: dot product", "BiasedMF", "", False, published.get("dot")),
            lambda: presets.notebook_dot(**common),
        ),
        (
            DemoRow("notebook: MLP head", "MLPMF", "", False, published.get("mlp")),
            lambda: presets.notebook_mlp(**common),
        ),
        (DemoRow("ours: BiasedMF defaults", "BiasedMF", "", True), lambda: BiasedMF(**common)),
        (DemoRow("ours: MLPMF defaults", "MLPMF", "", True), lambda: MLPMF(**common)),
        (
            DemoRow("ours: BayesianMF defaults", "BayesianMF", "", True),
            lambda: BayesianMF(
                random_state=seed,
                n_threads=n_threads,
                **({"n_samples": QUICK_EPOCHS} if quick else {}),
            ),
        ),
    ]
    return rows


def _planted(seed: int):
    """A MovieLens-shaped planted dataset, its generated titles and its truth."""
    from latentfactors.data import make_synthetic_ratings

    n_users, n_items, n_ratings = PLANTED_SHAPE
    ratings, truth = make_synthetic_ratings(
        n_users, n_items, n_ratings, scale=(0.5, 5.0), step=0.5, timestamps=True,
        random_state=seed,
    )  # fmt: skip
    years = np.random.default_rng(seed).integers(1920, 2019, n_items)
    titles = pd.DataFrame(
        {"item": np.arange(n_items), "title": [f"Film {i} ({y})" for i, y in enumerate(years)]}
    )
    return ratings, titles, truth


def _load(dataset, data_home, download, verify, fallback):
    """``(ratings, titles or None, truth or None, fallback line or None)``."""
    from latentfactors.data import (
        DatasetNotFoundError,
        DownloadError,
        get_data_home,
        load_movielens,
    )

    home = get_data_home(data_home)
    try:
        ratings = load_movielens(dataset, data_home=data_home, download=download, verify=verify)
    except (DatasetNotFoundError, DownloadError) as exc:
        # Only a dataset that is simply absent is replaced: a half-filled folder
        # or a wrong data home is a mistake to report.
        if not fallback or (home / dataset).exists() or home.absolute().name == dataset:
            raise
        why = "downloads are off" if not download else f"the download failed: {type(exc).__name__}"
        ratings, titles, truth = _planted(0)  # one dataset, as MovieLens is, whatever the seed
        n_users, n_items, n_ratings = PLANTED_SHAPE
        line = (
            f"{dataset} is not in {home} and cannot be had ({why}): using a planted dataset of "
            f"its shape instead ({n_users} users, {n_items:,} items, {n_ratings:,} ratings, "
            "0.5-5 stars)."
        )
        return ratings, titles, truth, line
    return ratings, None, None, None


# Seconds to wait for the compiling helper before compiling here instead.
HELPER_TIMEOUT = 600
# BiasedMF and BayesianMF fits on training sets up to this size run on one
# thread while their parallel build is not compiled. On ml-latest-small a second
# thread saves about 0.06 s a BiasedMF fit, and compiling its build costs 5-6 s;
# it saves 1.5-2 s of a BayesianMF fit, but the helper's compiling the parallel
# Gibbs build made the cold demo take 40-41 s instead of 30-32 s
# (benchmarks/results/cold-start.txt). MLPMF's second thread saves more than a
# second a fit, so its parallel build is compiled (by the helper).
FIRST_RUN_SERIAL_MAX = 200_000
FIRST_RUN_SERIAL = ("BiasedMF", "BayesianMF")


def _serial_where_uncompiled(models) -> list:
    """Set ``n_threads=1`` on the models whose parallel training build is not
    compiled yet (all cores are asked for); the names of their classes."""
    from latentfactors._compile_ahead import compiled
    from latentfactors.kernels._config import resolve_threads

    threads = resolve_threads(-1)
    changed = []
    for model in models:
        name = type(model).__name__
        if name not in FIRST_RUN_SERIAL:
            continue
        if threads > 1 and compiled(name, threads) is False:
            model.set_params(n_threads=1)
            if name not in changed:
                changed.append(name)
    return changed


def _demo_user(train, seed: int):
    """The user the demo recommends for: drawn among those with 20 training ratings or more."""
    counts = train["user"].value_counts()
    candidates = np.sort(counts.index[counts >= 20].to_numpy())
    if len(candidates) == 0:
        candidates = np.sort(counts.index.to_numpy())
    user = candidates[np.random.default_rng(seed).integers(len(candidates))]
    return user.item() if isinstance(user, np.generic) else user


def _fit_row(row, model, step, train, valid, test, progress) -> None:
    """Fit one row's model with its progress line; fill in the row's figures."""
    row.config = describe_model(model, row.uses_valid)
    tracker = None
    if progress is not None:
        stops_early = row.uses_valid and bool(getattr(model, "early_stopping", False))
        tracker = progress(f"{step} {row.name}", model.n_epochs, stops_early)
    if tracker is not None:
        model.set_params(callback=tracker)
    t0 = time.perf_counter()
    try:
        model.fit(train, valid=valid if row.uses_valid else None)
    finally:
        close = getattr(tracker, "close", None)
        if close is not None:
            close()
    row.fit_seconds = time.perf_counter() - t0
    model.set_params(callback=None)
    metrics = model.evaluate(test)
    row.mse, row.rmse = metrics["mse"], metrics["rmse"]
    row.epochs = int(model.n_epochs_)
    if getattr(model, "early_stopping", False):
        row.best_epoch = int(model.best_epoch_)


def run_demo(
    dataset: str = "ml-latest-small",
    *,
    seed: int = 0,
    quick: bool = False,
    data_home=None,
    download: bool = True,
    verify: bool = True,
    fallback: bool = False,
    n_threads: int = -1,
    n_recommendations: int = 3,
    progress=None,
) -> DemoResult:
    """Train the notebook's configurations and our defaults; recommend for one user.

    Parameters
    ----------
    dataset : str
        A MovieLens variant in the data home (``"ml-latest-small"`` is
        downloaded once when missing; ``"ml-latest-small-2016"`` is the
        notebook's own snapshot and must be present).
    seed : int
        Seeds the split, every model and the choice of user.
    quick : bool
        Cap every model at :data:`QUICK_EPOCHS` epochs (for tests).
    data_home : str or os.PathLike, optional
        See :func:`latentfactors.data.get_data_home`.
    download : bool
        Download the dataset when it is missing.
    verify : bool
        Refuse a cached copy that does not hold the published number of
        ratings (see :func:`~latentfactors.data.load_movielens`).
    fallback : bool
        When the dataset is absent from the data home and cannot be
        downloaded, train on a planted dataset of ml-latest-small's shape
        instead (:data:`PLANTED_SHAPE`, titles such as ``"Film 123 (1995)"``);
        ``result.fallback`` says so in one line and ``result.noise_floor``
        is the best achievable test MSE.
    n_threads : int
        Threads per model, ``-1`` for every available core (results do not
        depend on it).
    n_recommendations : int
        How many movies to recommend.
    progress : callable, optional
        ``progress(label, n_epochs, early_stopping)`` returns a
        ``callback(epoch, logs)`` for one fit (or ``None``); the object may
        have a ``close()`` method, called after the fit. ``early_stopping``
        says whether the fit may stop before ``n_epochs``. The command line
        passes a per-epoch printer.

    Returns
    -------
    DemoResult
        The table rows, the split sizes, the chosen user and the
        recommendations (``item``, ``title``, ``score``).
    """
    from latentfactors.data import load_movielens_items, random_split
    from latentfactors.models.recommend import with_titles

    started = time.perf_counter()
    ratings, planted_titles, truth, line = _load(dataset, data_home, download, verify, fallback)
    train, valid, test = random_split(ratings, random_state=seed)
    result = DemoResult(
        dataset="planted (ml-latest-small's shape)" if truth is not None else dataset,
        seed=seed,
        quick=quick,
        n_ratings=len(ratings),
        n_users=int(ratings["user"].nunique()),
        n_items=int(ratings["item"].nunique()),
        split={
            "method": "random_split 80/12/8",
            "train": len(train),
            "valid": len(valid),
            "test": len(test),
        },
        rows=[],
        fallback=line,
        noise_floor=None if truth is None else float(truth.noise_floor),
    )
    where = (
        "on this same 2016 snapshot, for its own random split"
        if dataset == _PUBLISHED_SNAPSHOT
        else f"on the 2016 snapshot of ml-latest-small (100,004 ratings), not on {dataset}: "
        "compare loosely"
    )
    if truth is None:
        result.notes.append(f"notebook: the test MSE the original notebook printed, {where}.")
    if quick:
        result.notes.append(f"--quick: every model stops after {QUICK_EPOCHS} epochs.")

    fitted = {}
    configurations = _configurations(seed, quick, n_threads)
    models = {}
    for row, factory in configurations:
        if truth is not None:
            row.published_mse = None  # the notebook's figures are MovieLens's
        result.rows.append(row)
        if factory is not None:
            models[row.name] = factory()
    if n_threads == -1 and len(train) <= FIRST_RUN_SERIAL_MAX:
        serial = _serial_where_uncompiled(models.values())
        if serial:
            result.notes.append(
                f"{' and '.join(serial)} rows fitted on one thread: their multi-threaded "
                "kernels are not "
                "compiled on this machine yet, and on data this size they would take "
                "longer to compile than they save (results do not depend on the thread "
                "count; --n-threads chooses)."
            )
    # A first run spends most of its time compiling: BayesianMF's and the MLP's
    # training kernels are compiled by a helper on the second core while the
    # dot-product rows fit here, and the MLP's prediction kernels here while the
    # helper finishes. BayesianMF's go first, as its row fits before the MLP's.
    from latentfactors._compile_ahead import compile_ahead, compile_prediction
    from latentfactors.models import MLPMF, BayesianMF

    ahead = [m for m in models.values() if isinstance(m, BayesianMF)]
    ahead += [m for m in models.values() if isinstance(m, MLPMF)]
    shape = (train["user"].nunique(), train["item"].nunique(), len(train), len(valid), len(test))
    helper = compile_ahead(ahead, shape, random_state=seed, predict=False) if ahead else None
    user = _demo_user(train, seed)
    recommendations = {}

    def recommend(name):
        """The demo user's list by one fitted model (without titles), computed once."""
        if name not in recommendations:
            recommendations[name] = fitted[name].recommend(user, n=n_recommendations)
        return recommendations[name]

    order = sorted(result.rows, key=lambda r: isinstance(models.get(r.name), MLPMF))
    try:
        for k, row in enumerate(order, 1):
            model = models.get(row.name)
            if model is None:
                continue
            if helper is not None and isinstance(model, MLPMF):
                # Rather than wait idle, make the lists the fitted rows may be asked for.
                for done in order[: k - 1]:
                    ready = done.uses_valid and done.name in fitted and n_recommendations > 0
                    if ready and helper.running():
                        recommend(done.name)
                for mlp in ahead:
                    if isinstance(mlp, MLPMF):
                        for n_pairs in {len(valid), len(test)}:
                            compile_prediction(mlp, n_pairs)
                helper.wait(timeout=HELPER_TIMEOUT)
                helper = None
            _fit_row(row, model, f"[{k}/{len(order)}]", train, valid, test, progress)
            fitted[row.name] = model
    finally:
        if helper is not None:
            helper.stop()
    result.notes.append(
        "Fit seconds include one-time Numba compilation on a first run "
        "(compiled kernels are cached on disk)."
    )

    ours = [r for r in result.rows if r.uses_valid and r.mse is not None]
    if ours and n_recommendations > 0:
        best = min(ours, key=lambda r: r.mse)
        result.recommender = best.name
        items = planted_titles
        try:
            if items is None:
                items = load_movielens_items(dataset, data_home=data_home, download=download)
                items = items[["item", "title"]]
        except (OSError, ValueError) as exc:
            items = None
            result.notes.append(f"Titles unavailable ({exc}).")
        result.user = user
        recs = recommend(best.name)
        if items is not None:
            recs = with_titles(recs, items)
        liked = train[train["user"] == user].sort_values(
            ["rating", "item"], ascending=[False, True], kind="stable"
        )
        liked = liked[["item", "rating"]].head(3)
        if items is not None:
            liked = with_titles(liked, items)
        for frame, key, value in ((recs, "recommendations", "score"), (liked, "liked", "rating")):
            setattr(
                result,
                key,
                [
                    {
                        "item": _plain(row["item"]),
                        "title": None if pd.isna(row.get("title")) else row.get("title"),
                        value: float(row[value]),
                    }
                    for _, row in frame.iterrows()
                ],
            )
    result.seconds = time.perf_counter() - started
    return result


def _fmt(value, spec: str, missing: str = "-") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    return format(value, spec)


def format_demo(result: DemoResult, width: int = 88) -> str:
    """The demo's printed report: a header, the table, notes and the recommendations."""
    lines = [result.fallback] if result.fallback else []
    lines += [
        f"latentfactors demo: {result.dataset}, {result.n_ratings:,} ratings, "
        f"{result.n_users:,} users, {result.n_items:,} movies (seed {result.seed})",
        f"split: {result.split['method']} -> {result.split['train']:,} train / "
        f"{result.split['valid']:,} valid / {result.split['test']:,} test",
        "",
    ]
    header = ["model", "valid", "test MSE", "RMSE", "notebook", "fit s", "epochs"]
    table = []
    for r in result.rows:
        epochs = "-"
        if r.epochs is not None:
            epochs = str(r.epochs)
            if r.uses_valid and r.best_epoch is not None:
                epochs += f" (best {r.best_epoch})"
        table.append(
            [
                r.name,
                "yes" if r.uses_valid else "no",
                _fmt(r.mse, ".3f"),
                _fmt(r.rmse, ".3f"),
                _fmt(r.published_mse, ".3f"),
                _fmt(r.fit_seconds, ".1f"),
                epochs,
            ]
        )
    widths = [max(len(str(row[c])) for row in [header, *table]) for c in range(len(header))]
    numeric = {2, 3, 4, 5}

    def render(row):
        cells = [
            str(v).rjust(w) if c in numeric else str(v).ljust(w)
            for c, (v, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    lines.append(render(header))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(render(row) for row in table)
    if result.noise_floor is not None:
        lines.append(
            f"best achievable test MSE (the planted data's noise floor): {result.noise_floor:.3f}"
        )
    lines.append("")
    name_width = max(len(r.name) for r in result.rows)
    for r in result.rows:
        lines.extend(
            textwrap.wrap(
                r.config,
                width,
                initial_indent=r.name.ljust(name_width + 2),
                subsequent_indent=" " * (name_width + 4),
                break_on_hyphens=False,
            )
        )
    lines.append("")
    notes = [f"{r.name}: {r.note}" for r in result.rows if r.note]
    notes += result.notes
    for note in notes:
        lines.extend(textwrap.wrap(note, width, subsequent_indent="  ", break_on_hyphens=False))
    if result.recommendations:
        lines.append("")
        lines.append(
            f"Top {len(result.recommendations)} for user {result.user} by {result.recommender} "
            "(movies they rated are left out):"
        )
        for rank, rec in enumerate(result.recommendations, 1):
            title = rec["title"] or f"item {rec['item']}"
            lines.append(f"  {rank}. {title}  (score {rec['score']:.2f})")
        if result.liked:
            liked = "; ".join(
                f"{x['title'] or 'item ' + str(x['item'])} ({x['rating']:g})" for x in result.liked
            )
            lines.extend(
                textwrap.wrap(
                    f"They rated highly: {liked}",
                    width,
                    initial_indent="  ",
                    subsequent_indent="    ",
                    break_on_hyphens=False,
                )
            )
    lines.append("")
    lines.append(f"total {result.seconds:.1f}s")
    return "\n".join(lines)
