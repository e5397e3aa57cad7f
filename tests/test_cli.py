"""The command line, driven as users drive it: ``python -m latentfactors ...`` in a subprocess.

Each subprocess pays the package import and loads the compiled kernels from
Numba's disk cache, so the tests share one trained model (module fixture) and
check several things per run. Argument parsing details that need no data run
in-process through :func:`latentfactors.cli.main`.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from latentfactors import cli, load_model
from latentfactors._progress import EpochProgress
from latentfactors.cli import files as cli_files
from latentfactors.cli.parser import dataset_name
from latentfactors.cli.recommend import parse_id
from latentfactors.errors import UnknownIdError
from tests.conftest import dataset_dir

N_USERS, N_ITEMS = 30, 24
TIMEOUT = 240  # a cold Numba cache on a busy 2-core machine


def run(*args, cwd, data_home=None):
    """Run the CLI; return the completed process (text stdout/stderr)."""
    env = dict(os.environ)
    # An empty data home unless a test gives one: nothing is ever downloaded.
    env["LATENTFACTORS_DATA"] = str(data_home if data_home is not None else cwd / "no-data")
    env["LATENTFACTORS_BASE_URL"] = "http://127.0.0.1:9/"  # refuse any download at once
    return subprocess.run(
        [sys.executable, "-m", "latentfactors", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def one_error_line(proc) -> str:
    """The single ``latentfactors: error: ...`` line on stderr (no traceback)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) >= 1 and lines[-1].startswith("latentfactors: error: "), proc.stderr
    return lines[-1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small planted rank-2 ratings CSV (string user ids, int item ids) and a titles CSV."""
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    P = rng.normal(size=(N_USERS, 2))
    Q = rng.normal(size=(N_ITEMS, 2))
    lines = ["userId,movieId,rating,timestamp"]
    for u in range(N_USERS):
        for i in rng.choice(N_ITEMS, size=14, replace=False):
            r = np.clip(np.round(3 + P[u] @ Q[i] + rng.normal(0, 0.3)), 1, 5)
            lines.append(f"u{u},{i + 100},{r:.0f},{1_000_000 + 10 * u + int(i)}")
    ratings = root / "ratings.csv"
    ratings.write_text("\n".join(lines) + "\n")
    items = root / "items.csv"
    items.write_text(
        "movieId,title\n" + "".join(f"{i + 100},Film {i + 100}\n" for i in range(N_ITEMS))
    )
    return {"root": root, "ratings": ratings, "items": items}


@pytest.fixture(scope="module")
def trained(files):
    """``train ... --save model.npz --json``: the run and its parsed output."""
    root = files["root"]
    proc = run(
        "train", "--ratings", files["ratings"], "--n-factors", 4, "--n-epochs", 6,
        "--learning-rate", 0.02, "--test-fraction", 0.1, "--items", files["items"],
        "--save", root / "model.npz", "--json", cwd=root,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return {**files, "model": root / "model.npz", "proc": proc, "out": json.loads(proc.stdout)}


# ---------------------------------------------------------------- round trip


def test_train_reports_progress_and_metrics_and_saves(trained):
    out, proc = trained["out"], trained["proc"]
    assert out["command"] == "train" and out["model"] == "BiasedMF"
    assert out["params"]["n_factors"] == 4 and out["params"]["random_state"] == 0
    assert out["n_epochs"] <= 6 and 1 <= out["best_epoch"] <= out["n_epochs"]
    for part in ("train", "valid", "test"):
        assert out["metrics"][part]["rmse"] == pytest.approx(out["metrics"][part]["mse"] ** 0.5)
    assert out["split"]["train"] + out["split"]["valid"] + out["split"]["test"] == 30 * 14
    # One progress line per epoch on stderr, with elapsed time and an ETA.
    progress = [line for line in proc.stderr.splitlines() if line.startswith("epoch ")]
    assert len(progress) == out["n_epochs"]
    assert "valid_mse" in progress[0] and "elapsed" in progress[0] and "ETA" in progress[0]
    assert trained["model"].is_file()
    sidecar = json.loads((trained["root"] / "model.npz.json").read_text())
    assert sidecar["items"] == str(trained["items"]) and sidecar["dataset"] is None


def test_info_evaluate_recommend_similar(trained):
    root, model = trained["root"], trained["model"]

    info = run("info", model, "--json", cwd=root)
    assert info.returncode == 0, info.stderr
    got = json.loads(info.stdout)
    assert got["model"] == "BiasedMF" and got["n_users"] == N_USERS
    assert got["user_id_type"].startswith("<U") and got["item_id_type"] == "int64"
    assert got["sidecar"]["ratings"] == str(trained["ratings"])

    ev = run("evaluate", model, "--ratings", trained["ratings"], "--json", cwd=root)
    assert ev.returncode == 0, ev.stderr
    got = json.loads(ev.stdout)
    assert got["n"] == 30 * 14 and got["unknown_users"] == 0
    assert 0 < got["mse"] < 2 and got["rmse"] == pytest.approx(got["mse"] ** 0.5)
    # the whole file holds the training part: counted, and flagged in the text
    assert got["in_training"] == trained["out"]["split"]["train"] > 0
    ev = run("evaluate", model, "--ratings", trained["ratings"], cwd=root)
    assert f"note: {got['in_training']:,} of these ratings" in ev.stdout

    # String user ids stay strings; titles come from the sidecar's --items file.
    rec = run("recommend", model, "--user", "u3", "--n", 3, "--json", cwd=root)
    assert rec.returncode == 0, rec.stderr
    got = json.loads(rec.stdout)
    assert got["user"] == "u3" and len(got["recommendations"]) == 3
    first = got["recommendations"][0]
    assert first["title"] == f"Film {first['item']}" and isinstance(first["item"], int)
    scores = [r["score"] for r in got["recommendations"]]
    assert scores == sorted(scores, reverse=True)
    train = np.loadtxt(trained["ratings"], delimiter=",", skiprows=1, dtype=str)
    rated = {int(i) for u, i, *_ in train if u == "u3"}
    assert not rated & {r["item"] for r in got["recommendations"]}

    # Titles from a dataset the model was not trained on come with a warning.
    other = run(
        "recommend", model, "--user", "u3", "--n", 3, "--dataset", "ml-100k",
        "--data-home", root / "no-data-here", cwd=root,
    )  # fmt: skip
    assert other.returncode == 0, other.stderr
    assert f"trained on {trained['ratings']}, not ml-100k" in other.stderr
    assert "no titles" in other.stderr

    # Integer item ids typed on the command line are converted; human output has titles.
    sim = run("similar", model, "--item", 105, "-n", 4, cwd=root)
    assert sim.returncode == 0, sim.stderr
    assert "Film 105" in sim.stdout and sim.stdout.count("Film ") == 5


def test_similar_users_popularity_prior_and_ranking_in_process(trained, capsys):
    model = str(trained["model"])
    assert cli.main(["similar", model, "--user", "u1", "-n", "3", "--metric", "dot", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["user"] == "u1" and got["metric"] == "dot"
    assert [r["rank"] for r in got["similar"]] == [1, 2, 3]
    assert "u1" not in {r["user"] for r in got["similar"]}

    argv = ["recommend", model, "--user", "u1", "-n", str(N_ITEMS), "--json"]
    assert cli.main([*argv, "--include-seen"]) == 0
    everything = json.loads(capsys.readouterr().out)["recommendations"]
    assert len(everything) == N_ITEMS  # nothing left out
    assert cli.main([*argv, "--popularity-weight", "5"]) == 0
    boosted = json.loads(capsys.readouterr().out)["recommendations"]
    assert 0 < len(boosted) < N_ITEMS

    argv = ["evaluate", model, "--ratings", str(trained["ratings"]), "--k", "5", "--json"]
    assert cli.main([*argv, "--threshold", "3"]) == 0
    ranking = json.loads(capsys.readouterr().out)["ranking"]
    assert ranking["k"] == 5 and ranking["n_users"] > 0 and ranking["n_skipped_users"] == 0
    for name in ("precision", "recall", "ndcg", "map", "hit_rate", "coverage"):
        assert 0 <= ranking[name] <= 1
    # users the model does not know are left out and counted, not scored as misses
    more = trained["root"] / "with-new-users.csv"
    new = "".join(f"new{u},{100 + i},5,1\n" for u in range(4) for i in range(3))
    more.write_text(trained["ratings"].read_text() + new)
    argv[3] = str(more)
    assert cli.main([*argv, "--threshold", "3"]) == 0
    with_new = json.loads(capsys.readouterr().out)["ranking"]
    assert with_new["n_skipped_users"] == 4
    assert with_new == {**ranking, "n_skipped_users": 4}


# ---------------------------------------------------------------- interruptions


def write_small_ratings(path) -> None:
    """Ratings of 12 users on 8 items, enough for every part of the default split."""
    rng = np.random.default_rng(1)
    rows = [f"{u},{i},{rng.integers(1, 6)}" for u in range(12) for i in range(8) if (u + i) % 3]
    path.write_text("user,item,rating\n" + "\n".join(rows) + "\n")


def test_ctrl_c_in_train_saves_the_last_finished_epoch(files, tmp_path):
    """SIGINT once an epoch has been reported: the model of the last finished epoch is saved."""
    env = {**os.environ, "LATENTFACTORS_DATA": str(tmp_path / "no-data")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "latentfactors", "train", "--ratings", str(files["ratings"]),
         "--n-factors", "4", "--n-epochs", "1000000", "--valid-fraction", "0",
         "--save", "model.npz"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("epoch "):
                break
        assert seen and seen[-1].startswith("epoch "), "".join(seen)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    last = [line for line in err.splitlines() if line.strip()][-1]
    epochs = load_model(tmp_path / "model.npz").n_epochs_
    assert 1 <= epochs < 1_000_000
    # Ctrl-C may land while the next epoch's copy is taken; the message says which.
    assert last in (
        f"latentfactors: error: interrupted: saved model.npz as it was after epoch {epochs} "
        "of 1000000, the last finished epoch",
        f"latentfactors: error: interrupted: saved model.npz as it was after epoch {epochs} "
        f"of 1000000 (Ctrl-C came while epoch {epochs + 1} was being copied)",
    )
    assert out == ""
    assert cli_files.read_sidecar(tmp_path / "model.npz")["ratings"] == str(files["ratings"])
    # Exactly that epoch's parameters: those of a run of that many epochs.
    again = run(
        "train", "--ratings", files["ratings"], "--n-factors", 4, "--n-epochs", epochs,
        "--valid-fraction", 0, "--save", "again.npz", "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    saved, full = load_model(tmp_path / "model.npz"), load_model(tmp_path / "again.npz")
    assert saved.history_["train_mse"] == full.history_["train_mse"]
    np.testing.assert_array_equal(saved.user_factors_, full.user_factors_)
    np.testing.assert_array_equal(saved.item_bias_, full.item_bias_)


def test_ctrl_c_during_an_epoch_saves_the_last_finished_one(tmp_path, monkeypatch, capsys):
    """Ctrl-C part-way through epoch 3 takes effect at once; --save writes the model as
    epoch 2 left it, so the saved parameters and history agree."""
    from latentfactors import BiasedMF

    epoch = BiasedMF._epoch

    def ctrl_c_during_epoch_3(self, state, number, rng):
        sse = epoch(self, state, number, rng)
        if number == 3:
            os.kill(os.getpid(), signal.SIGINT)  # as if pressed while the kernel ran
        return sse

    monkeypatch.chdir(tmp_path)
    write_small_ratings(tmp_path / "r.csv")
    argv = ["train", "--ratings", "r.csv", "--valid-fraction", "0", "--quiet"]
    assert cli.main([*argv, "--n-epochs", "2", "--save", "two.npz"]) == 0
    with monkeypatch.context() as patch:
        patch.setattr(BiasedMF, "_epoch", ctrl_c_during_epoch_3)
        assert cli.main([*argv, "--n-epochs", "5", "--save", "m.npz"]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        "latentfactors: error: interrupted: saved m.npz as it was after epoch 2 of 5, "
        "the last finished epoch"
    )
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    saved, two = load_model("m.npz"), load_model("two.npz")
    assert saved.n_epochs_ == 2 and saved.history_["epoch"] == [1, 2]
    assert saved.history_["train_mse"] == two.history_["train_mse"]
    np.testing.assert_array_equal(saved.user_factors_, two.user_factors_)
    np.testing.assert_array_equal(saved.item_bias_, two.item_bias_)


def test_ctrl_c_with_early_stopping_saves_the_best_epoch_so_far(tmp_path, monkeypatch, capsys):
    """With a validation part and early stopping, Ctrl-C saves the epoch the fit would
    have restored: the lowest validation MSE so far, not the last finished epoch."""
    from latentfactors import BiasedMF
    from latentfactors.cli import training

    epoch = BiasedMF._epoch
    script = {1: 1.0, 2: 0.5, 3: 0.7, 4: 0.8}  # validation MSE the callback sees
    callback = training._EpochEnd.__call__

    def scripted(self, number, logs):
        callback(self, number, {**logs, "valid_mse": script[number]})

    def ctrl_c_during_epoch_5(self, state, number, rng):
        if number == 5:
            raise KeyboardInterrupt
        return epoch(self, state, number, rng)

    monkeypatch.chdir(tmp_path)
    write_small_ratings(tmp_path / "r.csv")
    argv = ["train", "--ratings", "r.csv", "--quiet", "--n-epochs", "9", "--patience", "9"]
    monkeypatch.setattr(training._EpochEnd, "__call__", scripted)
    monkeypatch.setattr(BiasedMF, "_epoch", ctrl_c_during_epoch_5)
    assert cli.main([*argv, "--save", "m.npz"]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        "latentfactors: error: interrupted: saved m.npz as it was after epoch 2, the lowest "
        "validation MSE of the 4 epochs that finished (early stopping keeps it)"
    )
    assert load_model("m.npz").n_epochs_ == 2


def test_ctrl_c_while_the_first_copy_is_taken_says_so(tmp_path, monkeypatch, capsys):
    from latentfactors import BiasedMF

    save = BiasedMF.save

    def interrupted_copy(self, file):
        if isinstance(file, io.BytesIO):
            raise KeyboardInterrupt
        save(self, file)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(BiasedMF, "save", interrupted_copy)
    write_small_ratings(tmp_path / "r.csv")
    assert cli.main(["train", "--ratings", "r.csv", "--quiet", "--save", "m.npz"]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        "latentfactors: error: interrupted before the first epoch could be kept: "
        "nothing saved to m.npz"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


def test_ctrl_c_while_a_later_copy_is_taken_saves_the_one_before(tmp_path, monkeypatch, capsys):
    from latentfactors import BiasedMF

    save = BiasedMF.save
    copies = []

    def third_copy_interrupted(self, file):
        if isinstance(file, io.BytesIO):
            copies.append(self.n_epochs_)
            if len(copies) == 3:
                raise KeyboardInterrupt
        save(self, file)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(BiasedMF, "save", third_copy_interrupted)
    write_small_ratings(tmp_path / "r.csv")
    argv = ["train", "--ratings", "r.csv", "--valid-fraction", "0", "--n-epochs", "9"]
    assert cli.main([*argv, "--quiet", "--save", "m.npz"]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        "latentfactors: error: interrupted: saved m.npz as it was after epoch 2 of 9 "
        "(Ctrl-C came while epoch 3 was being copied)"
    )
    assert load_model("m.npz").n_epochs_ == 2


def test_train_bayes_samples_saves_and_recommends(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_small_ratings(tmp_path / "r.csv")
    argv = ["train", "--ratings", "r.csv", "--model", "bayes", "--n-factors", "3",
            "--n-samples", "12", "--n-burn-in", "4", "--max-kept", "4", "--implicit",
            "--save", "m.npz"]  # fmt: skip
    assert cli.main(argv) == 0
    assert "trained BayesianMF" in capsys.readouterr().out
    model = load_model("m.npz")
    assert type(model).__name__ == "BayesianMF"
    assert (model.n_factors, model.n_samples, model.n_burn_in_, model.max_kept) == (3, 12, 4, 4)
    assert model.implicit is True and model.sample_implicit_item_factors_.shape[0] == 4
    assert model.sample_w0_.shape == (4,)
    assert cli_files.read_sidecar("m.npz")["model_class"] == "BayesianMF"
    user = open("r.csv").read().splitlines()[1].split(",")[0]
    assert cli.main(["recommend", "m.npz", "--user", user, "-n", "2"]) == 0
    assert f"top 2 for user {user}" in capsys.readouterr().out


def test_train_implicit_saves_and_recommends(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_small_ratings(tmp_path / "r.csv")
    argv = ["train", "--ratings", "r.csv", "--model", "implicit", "--n-factors", "3",
            "--n-epochs", "4", "--alpha", "5", "--confidence", "binary", "--solver", "cholesky",
            "--save", "m.npz"]  # fmt: skip
    assert cli.main(argv) == 0
    assert "trained ImplicitMF" in capsys.readouterr().out
    model = load_model("m.npz")
    assert type(model).__name__ == "ImplicitMF"
    assert (model.n_factors, model.n_epochs_, model.alpha, model.solver) == (3, 4, 5.0, "cholesky")
    user = open("r.csv").read().splitlines()[1].split(",")[0]
    assert cli.main(["recommend", "m.npz", "--user", user, "-n", "2"]) == 0
    assert f"top 2 for user {user}" in capsys.readouterr().out
    bad = ["train", "--ratings", "r.csv", "--model", "implicit", "--solver", "lu"]
    assert cli.main(bad) == 2
    assert "solver must be one of" in capsys.readouterr().err


def test_train_bayes_with_the_day_group(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(2)
    rows = [f"{u},{i},{rng.integers(1, 6)},{86_400 * (u % 4) + 7}"
            for u in range(12) for i in range(8) if (u + i) % 3]  # fmt: skip
    (tmp_path / "r.csv").write_text("user,item,rating,timestamp\n" + "\n".join(rows) + "\n")
    argv = ["train", "--ratings", "r.csv", "--model", "bayes", "--n-factors", "2",
            "--n-samples", "6", "--time", "day", "--save", "m.npz"]  # fmt: skip
    assert cli.main(argv) == 0
    model = load_model("m.npz")
    assert model.time == "day" and model.days_.tolist() == [0, 1, 2, 3]
    bad = ["train", "--ratings", "r.csv", "--model", "bayes", "--time", "week"]
    assert cli.main(bad) == 2
    assert "time must be one of" in capsys.readouterr().err


def test_ctrl_c_after_training_saves_the_model_without_metrics(tmp_path, monkeypatch, capsys):
    from latentfactors.cli import training

    def interrupted(model, part):
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(training, "_metrics_dict", interrupted)
    write_small_ratings(tmp_path / "r.csv")
    argv = ["train", "--ratings", "r.csv", "--valid-fraction", "0", "--n-epochs", "3"]
    assert cli.main([*argv, "--save", "m.npz"]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        "latentfactors: error: interrupted after training had finished: saved m.npz "
        "(kept epoch 3 of 3) without its metrics"
    )
    assert load_model("m.npz").n_epochs_ == 3
    assert cli_files.read_sidecar("m.npz")["metrics"] is None


def test_ctrl_c_in_train_before_an_epoch_finished_saves_nothing(tmp_path, monkeypatch, capsys):
    from latentfactors import BiasedMF

    def interrupt(self, data, rng):
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(BiasedMF, "_setup", interrupt)
    write_small_ratings(tmp_path / "r.csv")
    assert cli.main(["train", "--ratings", "r.csv", "--save", "m.npz"]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        "latentfactors: error: interrupted before the first epoch finished: nothing saved to m.npz"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


def test_ctrl_c_in_train_without_save_still_says_interrupted(tmp_path, monkeypatch, capsys):
    from latentfactors import BiasedMF

    def stop(self, epoch, logs):
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(BiasedMF, "_report", stop)
    write_small_ratings(tmp_path / "r.csv")
    assert cli.main(["train", "--ratings", "r.csv", "--quiet"]) == 130
    assert capsys.readouterr().err.splitlines()[-1] == "latentfactors: error: interrupted"


# ---------------------------------------------------------------- bad input


def test_corrupted_model_file(trained, tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(trained["model"].read_bytes()[:2000])
    proc = run("recommend", broken, "--user", "u1", cwd=tmp_path)
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert "broken.npz is not a readable latentfactors model file" in line
    assert proc.stdout == ""


def test_unknown_user(trained, tmp_path):
    proc = run("recommend", trained["model"], "--user", "nobody", cwd=tmp_path)
    assert proc.returncode == 1
    assert "unknown user 'nobody'" in one_error_line(proc)


def test_malformed_csv(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("userId,movieId,rating\n1,10,4\n2,11,great\n")
    proc = run("train", "--ratings", bad, "--n-epochs", 1, cwd=tmp_path)
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert "bad.csv" in line and "non-numeric rating 'great'" in line


def test_bad_hyperparameter(files, tmp_path):
    proc = run("train", "--ratings", files["ratings"], "--n-factors", 0, cwd=tmp_path)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "bad hyperparameter: n_factors must be an integer >= 1 and <= 100000, got 0" in line


def test_datasets_lists_variants(tmp_path):
    proc = run("datasets", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    names = [d["name"] for d in got["datasets"]]
    assert "ml-latest-small" in names and "ml-100k" in names
    assert got["data_home"] == str(tmp_path / "no-data")
    assert not any(d["cached"] for d in got["datasets"])
    (tmp_path / "no-data" / "ml-100k").mkdir(parents=True)  # incomplete: said so
    proc = run("datasets", cwd=tmp_path)
    assert "incomplete:" in proc.stdout and "lacks its ratings file" in proc.stdout
    (tmp_path / "no-data" / "ml-100k" / "u.data").write_text("1\t1\t4\t0\n")
    inside = tmp_path / "no-data" / "ml-100k"  # a data home that is the dataset folder
    proc = run("datasets", cwd=tmp_path, data_home=inside)
    assert proc.returncode == 0, proc.stderr
    assert (
        f"is the ml-100k folder itself; the data home is the folder that holds it: "
        f"--data-home {tmp_path / 'no-data'}" in proc.stderr
    )


def test_help(tmp_path):
    proc = run("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for command in ("demo", "train", "evaluate", "recommend", "similar", "info", "datasets"):
        assert command in proc.stdout


# ---------------------------------------------------------------- in-process checks


@pytest.mark.parametrize(
    "command", ["demo", "train", "evaluate", "recommend", "similar", "info", "datasets"]
)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: latentfactors {command}") and "--json" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["fly"], "invalid choice: 'fly'"),
        (["recommend", "m.npz"], "the following arguments are required: --user"),
        (["train", "--dataset", "ml-1b"], "unknown dataset 'ml-1b'"),
        (["train", "--ratings", "r.csv", "--hidden", "64,x"], "expected comma-separated"),
        (["train", "--ratings", "r.csv", "--model", "mlp", "--dropout", "1"],
         "bad hyperparameter: dropout must be a finite number >= 0 and < 1, got 1.0"),
        (["train", "--ratings", "r.csv", "--valid-fraction", "0.6", "--test-fraction", "0.5"],
         "leave nothing to train on"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.csv").write_text("user,item,rating\n1,1,4\n1,2,3\n2,1,5\n")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("latentfactors: error: "), err
    assert message in err[0]


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["train", "--ratings", "r.csv", "--hidden", "64,32"], 2,
         "--hidden does not apply to --model biased-mf (only to --model mlp)"),
        (["train", "--ratings", "r.csv", "--optimizer", "rmsprop"], 2,
         "bad hyperparameter: optimizer must be one of"),
        (["train", "--ratings", "r.csv", "--model", "mlp", "--activation", "gelu"], 2,
         "bad hyperparameter: activation must be one of"),
        (["train", "--ratings", "r.csv", "--model", "mlp", "--embedding-optimizer", "lbfgs"], 2,
         "bad hyperparameter: embedding_optimizer must be one of"),
        (["train", "--ratings", "r.csv", "--model", "bayes", "--reg", "0.1"], 2,
         "--reg does not apply to --model bayes (only to --model biased-mf, mlp, implicit)"),
        (["train", "--ratings", "r.csv", "--model", "bayes", "--n-samples", "40",
          "--n-burn-in", "40"], 2, "bad hyperparameter: n_burn_in must be below n_samples (40)"),
        (["train", "--ratings", "r.csv", "--model", "bayes", "--n-burn-in", "2.5"], 2,
         "expected an integer, got '2.5'"),
        (["train", "--ratings", "r.csv", "--n-samples", "40"], 2,
         "--n-samples does not apply to --model biased-mf (only to --model bayes)"),
        (["train", "--ratings", "r.csv", "--embedding-optimizer", "adam"], 2,
         "--embedding-optimizer does not apply to --model biased-mf (only to --model mlp)"),
        (["train", "--ratings", "missing.csv"], 1, "ratings file not found: missing.csv"),
        (["evaluate", "missing.npz", "--ratings", "r.csv"], 1, "model file not found: missing.npz"),
        (["info", "r.csv"], 1, "r.csv is not a readable latentfactors model file"),
        (["recommend", "m.npz", "--user", "1", "--items", "nope.csv"], 1,
         "model file not found: m.npz"),
        (["demo", "--dataset", "ml-100k", "--no-download", "--quick"], 1,
         "ml-100k is not in"),
        (["train", "--dataset", "ml-100k", "--no-download"], 1,
         "(--no-download was given; without it ml-100k is downloaded)"),
        (["train", "--ratings", "dup.csv"], 1,
         "pass duplicates='last' to keep the last rating of each pair, or duplicates='mean' to "
         "average them (on the command line: --columns user,item,rating names the columns"),
        (["train", "--ratings", "dup.csv"], 1,
         "--duplicates last|first|mean keeps the last or first rating of each pair, or their "
         "mean)"),
        (["train", "--ratings", "t.csv", "--split", "time", "-q"], 1,
         "cannot hold out the validation part (--split time, --valid-fraction 0.1; "
         "temporal_split's test set is the validation part): test_fraction=0.1 of 3 rating(s) "
         "is less than one rating: the test set would be empty"),
        (["train", "-q", "--ratings", "r.csv", "--test-fraction", "0.5",
          "--valid-fraction", "0.4"], 1,
         "cannot split the ratings (--split random; parts 0, 1, 2 of the split are train, "
         "valid, test): part 0 of the split would be empty: 3 row(s) are too few for fractions "
         "(0.1, 0.4, 0.5)"),
        (["train", "--dataset", "ml-100k", "--data-home", "home/ml-100k"], 1,
         "itself; the data home is the folder that holds it: pass --data-home /"),
        (["train", "--ratings", "r.csv", "--columns", "user,item"], 1,
         "--columns user,item,rating names the columns of a file without a header in order"),
        (["train", "--ratings", "r.csv", "--save", "."], 1,
         "cannot save to .: it is a folder; name a file in it"),
        (["train", "--ratings", "r.csv", "--save", "m.npz.json"], 2,
         "names ending in .json are kept for the file that describes a model"),
    ],
)  # fmt: skip
def test_errors_in_process(argv, status, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LATENTFACTORS_DATA", str(tmp_path / "no-data"))
    (tmp_path / "r.csv").write_text("user,item,rating\n1,1,4\n1,2,3\n2,1,5\n")
    (tmp_path / "dup.csv").write_text("user,item,rating\n1,1,4\n1,1,3\n2,1,5\n")
    (tmp_path / "t.csv").write_text("user,item,rating,timestamp\n1,1,4,1\n1,2,3,2\n2,1,5,3\n")
    (tmp_path / "home" / "ml-100k").mkdir(parents=True)
    (tmp_path / "home" / "ml-100k" / "u.data").write_text("1\t1\t4\t0\n")
    assert cli.main(argv) == status
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("latentfactors: error: "), err
    assert message in err[0]
    assert captured.out == ""


def test_dataset_aliases_are_accepted_as_load_movielens_accepts_them():
    assert dataset_name("ml-latest-small-2018") == "ml-latest-small"
    assert dataset_name(" ML-10M100K ") == "ml-10m"


def test_ids_are_converted_to_the_models_type():
    from latentfactors.data import IdIndex

    ints = IdIndex(np.array([1, 2, 30]))
    assert parse_id("30", ints, "user") == 30
    assert parse_id("30.0", ints, "user") == 30 and parse_id("3e1", ints, "user") == 30
    assert isinstance(parse_id("30.0", ints, "user"), int)
    big = IdIndex(np.array([2**53 + 1], dtype=np.int64))  # not a float64
    assert parse_id(f"{2**53 + 1}.0", big, "user") == 2**53 + 1
    for text in ("x1", "30.5", "inf", "nan", ""):
        with pytest.raises(UnknownIdError, match=f"user id '{text}' is not an integer"):
            parse_id(text, ints, "user")
    floats = IdIndex(np.array([0.5, 2.0]))
    assert parse_id("0.5", floats, "item") == 0.5
    with pytest.raises(UnknownIdError, match="item id 'y' is not a number"):
        parse_id("y", floats, "item")
    with pytest.raises(UnknownIdError, match="unknown user '4'.*knows 3 users"):
        parse_id("4", ints, "user")
    strings = IdIndex(np.array(["a", "b"]))
    assert parse_id("b", strings, "item") == "b"


def test_progress_line_has_eta_from_steady_epochs(capsys):
    import io

    stream = io.StringIO()
    progress = EpochProgress(10, label="m", stream=stream, early_stopping=True)
    progress.durations = [5.0]  # a slow first epoch (compilation) ...
    progress(2, {"train_mse": 0.5, "valid_mse": 0.6})  # ... is left out of the mean
    line = stream.getvalue().strip()
    assert line.startswith("m: epoch  2/10  train_mse 0.5000  valid_mse 0.6000")
    assert "ETA <=0.0s" in line


def test_stale_sidecar_is_ignored(tmp_path):
    model = tmp_path / "m.npz"
    model.write_bytes(b"one")
    meta = {
        "format": cli_files.SIDECAR_FORMAT,
        "model_sha256": cli_files.sha256(model),
        "dataset": "x",
    }
    (tmp_path / "m.npz.json").write_text(json.dumps(meta))
    assert cli_files.read_sidecar(model)["dataset"] == "x"
    model.write_bytes(b"two")  # the model was replaced: the sidecar describes another one
    assert cli_files.read_sidecar(model) is None


# ---------------------------------------------------------------- the demo on real data


@pytest.mark.jit("runs the demo on 100,000 real ratings")
def test_demo_quick_on_real_data(shared_data, tmp_path):
    dataset_dir(shared_data, "ml-latest-small")
    proc = run("demo", "--quick", "--seed", 1, "--json", cwd=tmp_path, data_home=shared_data)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["dataset"] == "ml-latest-small" and got["quick"] and got["seed"] == 1
    assert got["split"]["train"] + got["split"]["valid"] + got["split"]["test"] == 100_836
    rows = {r["name"]: r for r in got["rows"]}
    assert rows["notebook: dot product"]["published_mse"] == 1.008
    assert rows["notebook: MLP head"]["published_mse"] == 0.842
    assert not rows["notebook: dot product"]["uses_valid"]
    assert rows["ours: BiasedMF defaults"]["uses_valid"]
    bayes = rows["ours: BayesianMF defaults"]
    assert bayes["best_epoch"] is None and "Gibbs sampling, 2 samples" in bayes["config"]
    for row in got["rows"]:
        assert 0.5 < row["mse"] < 1.5 and row["epochs"] == 2 and row["fit_seconds"] > 0
        assert row["rmse"] == pytest.approx(row["mse"] ** 0.5)
    assert len(got["recommendations"]) == 3
    assert all(r["title"] for r in got["recommendations"])
    assert "2016 snapshot" in " ".join(got["notes"])
    # Per-epoch progress went to stderr, labelled by model.
    assert "[2/5] ours: BiasedMF defaults: epoch 2/2" in proc.stderr  # fitted second


def test_format_demo_renders_rows_notes_and_recommendations():
    from latentfactors.demo import DemoResult, DemoRow, format_demo

    result = DemoResult(
        dataset="ml-latest-small",
        seed=0,
        quick=False,
        n_ratings=100_836,
        n_users=610,
        n_items=9_724,
        split={"method": "random_split 80/12/8", "train": 80_668, "valid": 12_101, "test": 8_067},
        rows=[
            DemoRow("notebook: dot product", "BiasedMF", "5 factors", False, 1.008, 0.95, 0.97,
                    1.25, 5, 5),
            DemoRow("ours: BiasedMF defaults", "BiasedMF", "256 factors", True, None, 0.73, 0.85,
                    0.8, 28, 23),
            DemoRow("ours: BayesianMF defaults", "BayesianMF", "10 factors", True, None, 0.72,
                    0.85, 3.1, 200, None),
        ],
        user=516,
        recommender="ours: BiasedMF defaults",
        recommendations=[{"item": 318, "title": "Shawshank Redemption, The (1994)", "score": 4.5}],
        notes=["notebook: printed on the 2016 snapshot"],
    )  # fmt: skip
    text = format_demo(result)
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("notebook: dot product      no"))
    assert row.split()[-5:] == ["0.950", "0.970", "1.008", "1.2", "5"]
    assert any(line.startswith("ours: BiasedMF defaults    yes") and "28 (best 23)" in line
               for line in lines)  # fmt: skip
    bayes = next(line for line in lines if line.startswith("ours: BayesianMF defaults  yes"))
    assert bayes.endswith(" 200")  # sampling has no best epoch
    assert "2016 snapshot" in text and "1. Shawshank Redemption, The (1994)" in text
    assert result.to_dict()["rows"][0]["published_mse"] == 1.008


def test_describe_model_names_each_optimizer_and_rate():
    from latentfactors import MLPMF, BayesianMF, BiasedMF, presets
    from latentfactors.demo import describe_model

    assert describe_model(BiasedMF(), True) == (
        "256 factors, SGD lr 0.015, reg 0.05, max 30 epochs, early stopping"
    )
    assert "embeddings SGD lr 1.536, head Adam lr 0.0001, batch 256" in describe_model(
        MLPMF(), True
    )
    assert describe_model(BayesianMF(), True) == (
        "10 factors, user + item; Gibbs sampling, 200 samples (5 burn-in, 49 kept)"
    )
    assert describe_model(BayesianMF(n_samples=30, implicit=True, time="day"), True) == (
        "10 factors, user + item + day + rated items + raters; Gibbs sampling, 30 samples "
        "(0 burn-in, 30 kept)"
    )
    # one optimizer and one rate for everything: said once
    assert "Keras Adam lr 0.01, batch 64, no reg, 5 epochs" in describe_model(
        presets.notebook_mlp(), False
    )


def test_titles_files_in_latin1_with_pipes_and_commas_in_titles(tmp_path):
    """Like ml-100k's u.item: no header, ``|``-separated, Latin-1, commas inside titles."""
    path = tmp_path / "u.item"
    rows = ["1|Toy Story (1995)|01-Jan-1995||0|1", "2|Città, La (1996)|01-Jan-1996||1|0"]
    path.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    assert cli_files.read_titles(path) == {"1": "Toy Story (1995)", "2": "Città, La (1996)"}
    quoted = tmp_path / "movies.csv"
    quoted.write_text('movieId,title,genres\n1,"American President, The (1995)",Drama\n')
    assert cli_files.read_titles(quoted) == {"1": "American President, The (1995)"}


def test_a_relative_data_home_is_stored_absolute(tmp_path, monkeypatch, capsys):
    """Titles are found again from another folder, however the data home was given."""
    folder = tmp_path / "work" / "data" / "ml-100k"
    folder.mkdir(parents=True)
    rows = [f"{u}\t{i}\t{1 + (u * i) % 5}\t{100 + u}" for u in range(1, 9) for i in range(1, 5)]
    (folder / "u.data").write_text("\n".join(rows) + "\n")
    rows += [f"9\t{i}\t4\t100" for i in range(5, 7)]
    genres = "|".join("0" * 19)
    titles = [f"{i}|Film {i} (1999)|01-Jan-1999||http://x|{genres}" for i in range(1, 7)]
    (folder / "u.item").write_text("\n".join(titles) + "\n", encoding="latin-1")
    monkeypatch.chdir(tmp_path / "work")
    argv = ["train", "--dataset", "ml-100k", "--data-home", "data", "--n-epochs", "2", "-q"]
    argv.append("--no-verify")  # a few ratings stand for the release
    assert cli.main([*argv, "--save", "m.npz"]) == 0
    sidecar = json.loads((tmp_path / "work" / "m.npz.json").read_text())
    assert sidecar["data_home"] == str(tmp_path / "work" / "data")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert cli.main(["recommend", "work/m.npz", "--user", "1", "-n", "2"]) == 0
    out = capsys.readouterr()
    assert "Film " in out.out and "no titles" not in out.err


def test_id_type_advice_reads_as_command_line_advice(trained, tmp_path, capsys):
    """The library's `.astype(...)` advice means nothing on the command line."""
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("user,item,rating\n1,101,4\n2,102,3\n")
    assert cli.main(["evaluate", str(trained["model"]), "--ratings", str(numbers)]) == 1
    err = capsys.readouterr().err
    assert "ids given are numbers" in err and "model's ids are strings" in err
    assert "astype" not in err
    assert "check that the file and the model go together" in err


def test_data_home_advice_is_quoted_and_found_from_inside(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LATENTFACTORS_BASE_URL", "http://127.0.0.1:9/")  # never download
    inside = tmp_path / "my data" / "ml-100k"
    inside.mkdir(parents=True)
    (inside / "u.data").write_text("1\t1\t4\t0\n")
    monkeypatch.chdir(inside)
    assert cli.main(["datasets", "--data-home", "."]) == 0
    assert f"--data-home '{tmp_path / 'my data'}'" in capsys.readouterr().err
    assert cli.main(["train", "--dataset", "ml-100k", "--data-home", ".", "-q"]) == 1
    assert f"pass --data-home '{tmp_path / 'my data'}'" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_train_checks_that_the_model_can_be_saved_before_training(tmp_path, monkeypatch, capsys):
    """A folder that takes no new file fails at once, not after every epoch.

    /proc/self exists but takes no new file, even for root (who may write anywhere else).
    """
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.csv").write_text("user,item,rating\n1,1,4\n1,2,3\n2,1,5\n")
    assert cli.main(["train", "--ratings", "r.csv", "--save", "/proc/self/m.npz"]) == 1
    err = capsys.readouterr().err
    assert "cannot save to /proc/self/m.npz: " in err and "epoch" not in err


def test_runs_with_standard_output_closed(tmp_path):
    """`latentfactors ... >&-`: Python then has no sys.stdout at all."""
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; sys.stdout = None; from latentfactors.cli import "
         "main; sys.exit(main(['datasets']))"],
        cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT,
        env={**os.environ, "LATENTFACTORS_DATA": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_library_errors_are_rendered_by_type():
    from latentfactors.cli.errors import describe

    plain = UnknownIdError("user 'x' is not known to this model")
    assert describe(plain) == "user 'x' is not known to this model"
    plain.kind, plain.ids = "item", np.array([7, 8, 9, 10])  # what the library attaches
    assert describe(plain) == "unknown items 7, 8, 9, ...: not in the model's training ratings"
    assert describe(KeyError("no such column")) == "no such column"  # not quoted
    assert describe(ValueError()) == "ValueError"
