"""The command line on the data it is given: compressed and partial files, string and float
ids, clipped recommendations, JSON errors, and the demo without network or data.

Most run in-process through :func:`latentfactors.cli.main`; the offline demo
runs as users run it, in a subprocess whose downloads are refused at once.
"""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from latentfactors import BiasedMF, cli
from latentfactors.cli.parser import build_parser
from tests.test_cli import run


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LATENTFACTORS_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("LATENTFACTORS_BASE_URL", "http://127.0.0.1:9/")  # never download
    return tmp_path


def _ratings_text(sep=";") -> str:
    rows = [
        f"{u}{sep}{i}{sep}{1 + (u * i) % 5}{sep}{100 + u}" for u in range(1, 9) for i in range(1, 7)
    ]
    return sep.join(["userId", "movieId", "rating", "timestamp"]) + "\n" + "\n".join(rows) + "\n"


def test_train_reads_a_gzip_ratings_file_sniffing_its_decompressed_text(here, capsys):
    (here / "ratings.csv.gz").write_bytes(gzip.compress(_ratings_text().encode()))
    assert (
        cli.main(["train", "--ratings", "ratings.csv.gz", "--n-epochs", "2", "-q", "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["n_ratings"] == 48


def test_train_on_a_partial_cached_dataset_names_no_verify(here, capsys):
    folder = here / "home" / "ml-latest-small"
    folder.mkdir(parents=True)
    (folder / "ratings.csv").write_text(_ratings_text(","))
    argv = ["train", "--dataset", "ml-latest-small", "--data-home", "home", "-q", "--n-epochs", "2"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "holds 48 ratings, not the 100,836 of the published ml-latest-small" in err
    assert "(on the command line: --no-verify reads it as it is)" in err
    assert cli.main([*argv, "--no-verify"]) == 0


def test_iso_date_timestamps_split_by_time_without_advice_to_convert(here, capsys):
    rows = [
        f"{u},{i},{1 + (u + i) % 5},2020-01-{i:02d}T{u:02d}:00:00"
        for u in range(1, 9)
        for i in range(1, 7)
    ]
    (here / "r.csv").write_text("user,item,rating,timestamp\n" + "\n".join(rows) + "\n")
    argv = ["train", "--ratings", "r.csv", "--split", "time", "--n-epochs", "2", "-q", "--json"]
    assert cli.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["split"]["valid"] > 0


def test_string_ids_let_the_cli_evaluate_and_recommend_a_model_trained_on_them(here, capsys):
    users = [f"{u:03d}" for u in range(1, 9) for _ in range(6)]
    items = [f"{i:02d}" for _ in range(1, 9) for i in range(1, 7)]
    ratings = [float(1 + (k * 7) % 5) for k in range(48)]
    frame = pd.DataFrame({"user": users, "item": items, "rating": ratings})
    BiasedMF(n_epochs=2, random_state=0).fit(frame).save(here / "m.npz")
    frame.to_csv(here / "r.csv", index=False)
    assert cli.main(["evaluate", "m.npz", "--ratings", "r.csv"]) == 1
    assert "(or --string-ids, to read the ids as text)" in capsys.readouterr().err
    assert cli.main(["evaluate", "m.npz", "--ratings", "r.csv", "--string-ids", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["unknown_users"] == 0 and got["unknown_items"] == 0
    argv = ["recommend", "m.npz", "--user", "001", "--include-seen", "-n", "2", "--string-ids"]
    assert cli.main(argv) == 0
    assert "for user 001" in capsys.readouterr().out
    numeric = BiasedMF(n_epochs=1).fit(
        pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": [1, 2]})
    )
    numeric.save(here / "n.npz")
    assert cli.main(["recommend", "n.npz", "--user", "1", "--string-ids"]) == 1
    assert "this model's user ids are numbers" in capsys.readouterr().err


@pytest.fixture
def generous(tmp_path):
    """A model with whole-number float ids whose raw score for (1, 6) is far above its 1-4 range."""
    rows = [(1.0, float(i), 4.0) for i in range(7, 13)]
    for u in range(2, 21):
        rows.append((float(u), 6.0, 4.0))
        rows += [(float(u), float(i), 1.0) for i in range(7, 13) if (u + i) % 2]
    frame = pd.DataFrame(rows, columns=["user", "item", "rating"])
    model = BiasedMF(n_epochs=50, random_state=0).fit(frame)
    assert model.recommend(1.0, n=1)["score"].iloc[0] > 4.5  # what the table must not show
    model.save(tmp_path / "g.npz")
    return tmp_path / "g.npz"


def test_recommend_shows_the_clipped_predicted_rating_and_whole_float_ids_as_integers(
    generous, here, capsys
):
    assert cli.main(["recommend", str(generous), "--user", "1", "-n", "1"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "top 1 for user 1, leaving out items rated in training:"
    assert out.splitlines()[1].split() == ["#", "item", "rating", "title"]
    assert out.splitlines()[2].split() == ["1", "6", "4.000"]
    assert cli.main(["recommend", str(generous), "--user", "1", "-n", "1", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["user"] == 1 and got["recommendations"][0]["item"] == 6
    assert got["recommendations"][0]["predicted_rating"] == 4.0
    assert got["recommendations"][0]["score"] > 4.5  # the ranking score, as the library gives it
    assert cli.main(["similar", str(generous), "--item", "6", "-n", "1"]) == 0
    assert "items most similar to item 6:" in capsys.readouterr().out


def test_recommend_for_a_user_who_rated_everything_says_so(generous, here, capsys):
    frame = pd.DataFrame({"user": [1, 1, 2], "item": [1, 2, 1], "rating": [4.0, 3.0, 2.0]})
    BiasedMF(n_epochs=1).fit(frame).save(here / "all.npz")
    assert cli.main(["recommend", "all.npz", "--user", "1"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == (
        "user 1 rated every item the model knows in training: there is nothing left to "
        "recommend (--include-seen ranks the items they rated)"
    )
    assert "top 0" not in out
    assert cli.main(["recommend", "all.npz", "--user", "1", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["recommendations"] == [] and "nothing left to recommend" in got["note"]


@pytest.mark.parametrize(
    ("argv", "status", "kind", "message"),
    [
        (["--json", "train", "--ratings", "missing.csv"], 1, "CLIError",
         "ratings file not found: missing.csv"),
        (["train", "--json", "--ratings", "r.csv", "--optimizer", "rmsprop"], 2, "UsageError",
         "bad hyperparameter: optimizer must be one of"),
        (["train", "--dataset", "ml-100k", "--no-download", "--json"], 1, "DatasetNotFoundError",
         "ml-100k is not in"),
        (["recommend", "m.npz", "--user", "9", "--json"], 1, "UnknownIdError", "unknown user"),
    ],
)  # fmt: skip
def test_json_errors_are_a_json_object_on_stdout(here, capsys, argv, status, kind, message):
    (here / "r.csv").write_text("user,item,rating\n1,1,4\n1,2,3\n2,1,5\n")
    BiasedMF(n_epochs=1).fit(pd.read_csv(here / "r.csv")).save(here / "m.npz")
    assert cli.main(argv) == status
    captured = capsys.readouterr()
    got = json.loads(captured.out)
    assert set(got) == {"error"} and got["error"]["type"] == kind
    assert message in got["error"]["message"]
    assert captured.err.startswith("latentfactors: error: ")


def test_headerless_file_with_trailing_commas_trains(here, capsys):
    rows = [f"{u},{i},{1 + (u * i) % 5}," for u in range(1, 9) for i in range(1, 7)]
    (here / "r.csv").write_text("\n".join(rows) + "\n")
    assert cli.main(["train", "--ratings", "r.csv", "--n-epochs", "2", "-q", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_ratings"] == 48


# ---------------------------------------------------------------- demo


def test_demo_takes_n_threads_as_train_does_and_threads_as_a_hidden_alias(
    here, monkeypatch, capsys
):
    import latentfactors.demo

    parser = build_parser()
    assert parser.parse_args(["demo", "--n-threads", "2"]).n_threads == 2
    demo_help = parser._subparsers._group_actions[0].choices["demo"].format_help()
    assert "--n-threads" in demo_help and "--threads" not in demo_help.replace("--n-threads", "")
    seen = {}

    def fake(name, **kwargs):  # stop once the arguments are seen
        seen.update(kwargs)
        raise RuntimeError("stopped")

    monkeypatch.setattr(latentfactors.demo, "run_demo", fake)
    assert cli.main(["demo", "--threads", "2"]) == 1
    assert seen["n_threads"] == 2
    assert "--threads is now called --n-threads" in capsys.readouterr().err
    assert cli.main(["demo", "--n-threads", "0"]) == 2
    assert "argument --n-threads: n_threads" in capsys.readouterr().err


def test_format_demo_says_the_fallback_in_one_line_and_gives_the_noise_floor():
    from latentfactors.demo import DemoResult, DemoRow, format_demo

    result = DemoResult(
        dataset="planted (ml-latest-small's shape)", seed=0, quick=True, n_ratings=100_836,
        n_users=610, n_items=9_000, split={"method": "random_split 80/12/8", "train": 80_668,
        "valid": 12_100, "test": 8_068}, rows=[DemoRow("ours: BiasedMF defaults", "BiasedMF",
        "64 factors", True, mse=0.5, rmse=0.7)], fallback="ml-latest-small is not in x: planted.",
        noise_floor=0.3141,
    )  # fmt: skip
    text = format_demo(result)
    assert text.splitlines()[0] == "ml-latest-small is not in x: planted."
    assert "best achievable test MSE (the planted data's noise floor): 0.314" in text


def test_demo_without_network_or_data_falls_back_to_planted_movielens(tmp_path):
    """`make demo` on a fresh offline machine: an empty data home, downloads refused."""
    proc = run("demo", "--quick", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["fallback"].startswith("ml-latest-small is not in ")
    assert "\n" not in got["fallback"] and "planted dataset" in got["fallback"]
    assert (got["n_ratings"], got["n_users"]) == (100_836, 610)
    assert 0 < got["noise_floor"] < 1
    assert all(row["mse"] is not None and row["published_mse"] is None for row in got["rows"])
    assert len(got["recommendations"]) == 3
    assert all(rec["title"].startswith("Film ") for rec in got["recommendations"])
    assert not (tmp_path / "no-data" / "ml-latest-small").exists()  # nothing was left
    text = run("demo", "--quick", "--no-download", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0].startswith("ml-latest-small is not in ")
    assert "(downloads are off)" in text.stdout.splitlines()[0]
    assert "noise floor" in text.stdout
