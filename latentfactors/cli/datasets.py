"""``datasets`` and ``demo``: the MovieLens variants at hand, and the notebook's comparison."""

from __future__ import annotations

from latentfactors.cli.errors import UsageError
from latentfactors.cli.files import data_home_advice, load_dataset
from latentfactors.cli.output import Output, table

__all__ = ["cmd_datasets", "cmd_demo"]


def cmd_datasets(args, out: Output) -> int:
    """``latentfactors datasets``: the known MovieLens variants and which are cached."""
    from latentfactors.data import MOVIELENS_VARIANTS, dataset_status, get_data_home

    home = get_data_home(args.data_home)
    status = dataset_status(args.data_home)
    for row in status:
        v = MOVIELENS_VARIANTS[row["name"]]
        row.update(n_ratings=v.n_ratings, n_users=v.n_users, n_items=v.n_items)
        if row["is_data_home"]:
            out.note(f"note: {data_home_advice(home, v.name, verb='')}")
    rows = []
    for row in status:
        if row["cached"]:
            where = f"cached, {row['size_bytes'] / 1e6:.1f} MB"
        elif row["incomplete"]:
            where = f"incomplete: {row['path']} lacks its ratings file; remove the folder"
        elif row["downloadable"]:
            size = f"{row['download_size'] / 1e6:.1f} MB" if row["download_size"] else "?"
            where = f"download {size}"
        else:
            where = "not cached, not downloadable"
        rows.append(
            [
                row["name"],
                f"{row['n_ratings']:,}",
                f"{row['n_users']:,}",
                f"{row['n_items']:,}",
                where,
            ]
        )
    text = f"data home: {home}\n" + table(
        ["dataset", "ratings", "users", "items", "status"], rows, numeric={1, 2, 3}
    )
    out.result({"command": "datasets", "data_home": str(home), "datasets": status}, text)
    return 0


def cmd_demo(args, out: Output) -> int:
    """``latentfactors demo``: the notebook's models beside ours, then recommendations.

    Without ``--dataset``, ml-latest-small is used when it is cached or can be
    downloaded, and a planted dataset of its size otherwise, so that the demo
    runs offline.
    """
    from latentfactors.demo import format_demo, run_demo
    from latentfactors.models import BiasedMF

    n_threads, flag = args.n_threads, "--n-threads"
    if args.old_threads is not None:
        out.note("note: --threads is now called --n-threads, as in train")
        n_threads, flag = args.old_threads, "--threads"
    try:  # the model decides which thread counts are valid
        BiasedMF().set_params(n_threads=n_threads)
    except ValueError as exc:
        raise UsageError(f"argument {flag}: {exc}") from exc

    def progress(label, n_epochs, early_stopping):
        return out.progress(n_epochs, label=label, early_stopping=early_stopping)

    def demo(name, *, data_home, download, verify):
        return run_demo(
            name,
            seed=args.seed,
            quick=args.quick,
            data_home=data_home,
            download=download,
            verify=verify,
            fallback=args.dataset is None,
            n_threads=n_threads,
            progress=progress,
        )

    name = args.dataset or "ml-latest-small"
    result = load_dataset(name, args.data_home, args.no_download, demo, verify=not args.no_verify)
    out.result({"command": "demo", **result.to_dict()}, format_demo(result))
    return 0
