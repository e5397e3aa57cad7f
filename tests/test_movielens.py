"""MovieLens loaders: real reference copies read in place, and downloads from a local server."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import socket
import threading
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from latentfactors._progress import TransferProgress
from latentfactors.data import movielens as ml
from tests.conftest import dataset_dir

# ---------------------------------------------------------------------------- real data

REAL = {
    # name: (ratings, users, distinct items, first row, rating histogram, movie-list rows)
    "ml-latest-small-2016": (
        100_004, 671, 9_066, (1, 31, 2.5, 1260759144),
        {0.5: 1101, 1.0: 3326, 1.5: 1687, 2.0: 7271, 2.5: 4449, 3.0: 20064, 3.5: 10538,
         4.0: 28750, 4.5: 7723, 5.0: 15095},
        9_125,
    ),
    "ml-latest-small": (
        100_836, 610, 9_724, (1, 1, 4.0, 964982703),
        {0.5: 1370, 1.0: 2811, 1.5: 1791, 2.0: 7551, 2.5: 5550, 3.0: 20047, 3.5: 13136,
         4.0: 26818, 4.5: 8551, 5.0: 13211},
        9_742,
    ),
    "ml-100k": (
        100_000, 943, 1_682, (196, 242, 3.0, 881250949),
        {1.0: 6110, 2.0: 11370, 3.0: 27145, 4.0: 34174, 5.0: 21201},
        1_682,
    ),
}  # fmt: skip


def _snapshot(folder: Path) -> dict:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.mark.parametrize("name", list(REAL))
def test_real_ratings_match_published_counts(shared_data, name):
    folder = dataset_dir(shared_data, name)
    n, users, items, first, histogram, _ = REAL[name]
    before = _snapshot(folder)
    frame = ml.load_movielens(name, data_home=shared_data, download=False)
    assert _snapshot(folder) == before  # read in place, nothing written
    assert list(frame.columns) == ["user", "item", "rating", "timestamp"]
    assert frame.dtypes.to_dict() == {
        "user": np.dtype(np.int64),
        "item": np.dtype(np.int64),
        "rating": np.dtype(np.float32),
        "timestamp": np.dtype(np.int64),
    }
    assert len(frame) == n
    assert frame["user"].nunique() == users
    assert frame["item"].nunique() == items
    assert tuple(frame.iloc[0]) == first
    counts = frame["rating"].value_counts().sort_index()
    assert {float(k): int(v) for k, v in counts.items()} == histogram
    variant = ml.MOVIELENS_VARIANTS[name]
    assert (variant.n_ratings, variant.n_users, variant.n_items) == (n, users, items)
    assert variant.has_timestamps


@pytest.mark.parametrize("name", list(REAL))
def test_real_items(shared_data, name):
    folder = dataset_dir(shared_data, name)
    before = _snapshot(folder)
    items = ml.load_movielens_items(name, data_home=shared_data, download=False)
    assert _snapshot(folder) == before
    assert list(items.columns) == ["item", "title", "genres", "year"]
    assert items["item"].dtype == np.int64
    assert str(items["year"].dtype) == "Int64"
    assert len(items) == REAL[name][5]
    assert items["item"].is_unique
    for col in ("title", "genres"):
        assert not items[col].str.contains("[\r\n]", regex=True).any()
        assert (items[col] == items[col].str.strip()).all()
    assert "Misérables, Les (1995)" in set(items["title"])
    toy = items.loc[items["item"] == 1].iloc[0]
    assert toy["title"] == "Toy Story (1995)"
    assert toy["year"] == 1995
    assert items["year"].notna().mean() > 0.99
    ratings = ml.load_movielens(name, data_home=shared_data, download=False)
    assert set(ratings["item"]) <= set(items["item"])


def test_real_item_genres(shared_data):
    dataset_dir(shared_data, "ml-latest-small")
    dataset_dir(shared_data, "ml-100k")
    latest = ml.load_movielens_items("ml-latest-small", data_home=shared_data)
    row = latest.loc[latest["item"] == 11].iloc[0]
    assert row["title"] == "American President, The (1995)"
    assert row["genres"] == "Comedy|Drama|Romance"
    assert "(no genres listed)" in set(latest["genres"])
    hk = ml.load_movielens_items("ml-100k", data_home=shared_data)
    by_id = hk.set_index("item")
    assert by_id.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert by_id.loc[2, "genres"] == "Action|Adventure|Thriller"
    assert by_id.loc[267, "title"] == "unknown"
    assert by_id.loc[267, "year"] is pd.NA


def test_real_status(shared_data):
    dataset_dir(shared_data, "ml-100k")
    status = {row["name"]: row for row in ml.dataset_status(shared_data)}
    assert list(status) == list(ml.MOVIELENS_VARIANTS)
    assert status["ml-100k"]["cached"]
    assert status["ml-100k"]["size_bytes"] > 1_979_173
    assert status["ml-100k"]["path"] == str(shared_data / "ml-100k")


# ------------------------------------------------------------------- local files


def test_local_dat_files_latin1_and_colons(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_bytes(
        b"1::1193::5::978300760\n1::661::3::978302109\n2::1::4::1\n"
    )
    (folder / "movies.dat").write_bytes(
        "1::Toy Story (1995)::Animation|Children's|Comedy\n"
        "661::Star Wars: Episode IV - A New Hope (1977)::Action|Sci-Fi\n"
        "1193::Misérables, Les (1995)::Drama\n".encode("latin-1")
    )
    ratings = ml.load_movielens("ml-1m", data_home=tmp_path, download=False, verify=False)
    assert ratings.dtypes.tolist() == [np.int64, np.int64, np.float32, np.int64]
    assert ratings.values.tolist() == [
        [1, 1193, 5, 978300760],
        [1, 661, 3, 978302109],
        [2, 1, 4, 1],
    ]
    items = ml.load_movielens_items("ml-1m", data_home=tmp_path, download=False)
    assert items["title"].tolist() == [
        "Toy Story (1995)",
        "Star Wars: Episode IV - A New Hope (1977)",
        "Misérables, Les (1995)",
    ]
    assert items["genres"].tolist()[1] == "Action|Sci-Fi"
    assert items["year"].tolist() == [1995, 1977, 1995]


def test_a_partial_cached_copy_is_refused_naming_the_file_counts_and_fixes(tmp_path):
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    rows = [f"{1 + k // 100},{k % 100 + 1},4.0,{964982703 + k}" for k in range(1_000)]
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(rows))
    with pytest.raises(
        ml.IncompleteDatasetError, match=r"holds 1,000 ratings, not the 100,836"
    ) as info:
        ml.load_movielens(data_home=tmp_path, download=False)
    message = str(info.value)
    assert str(folder / "ratings.csv") in message
    assert f"delete {folder} and load ml-latest-small again" in message
    assert "verify=False" in message
    assert isinstance(info.value, ValueError)
    assert len(ml.load_movielens(data_home=tmp_path, download=False, verify=False)) == 1_000


def test_a_partial_copy_of_a_release_no_longer_served_says_to_copy_the_file(tmp_path):
    folder = tmp_path / "ml-latest-small-2016"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,3.0,4\n")
    with pytest.raises(ml.IncompleteDatasetError, match=r"copy a complete ratings.csv into"):
        ml.load_movielens("ml-latest-small-2016", data_home=tmp_path)


def test_duplicate_pairs_raise(tmp_path):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("1\t2\t3\t10\n1\t2\t4\t11\n")
    with pytest.raises(ValueError, match="duplicate"):
        ml.load_movielens("ml-100k", data_home=tmp_path, download=False)


def test_wrong_csv_header(tmp_path):
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "ratings.csv").write_text("a,b,c,d\n1,2,3,4\n")
    with pytest.raises(ValueError, match="should start with the header"):
        ml.load_movielens(data_home=tmp_path, download=False)


def test_missing_data_without_download(tmp_path):
    with pytest.raises(ml.DatasetNotFoundError, match=r"download=False.*ml-1m.zip") as info:
        ml.load_movielens("ml-1m", data_home=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "ml-1m") in message
    assert "ratings.dat and movies.dat" in message
    assert isinstance(info.value, FileNotFoundError)
    assert (info.value.dataset, info.value.path) == ("ml-1m", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_ml10m_hint_mentions_archive_folder(tmp_path):
    with pytest.raises(ml.DatasetNotFoundError, match="ml-10M100K/ folder"):
        ml.load_movielens_items("ml-10m", data_home=tmp_path, download=False)


def test_2016_release_is_local_only(tmp_path):
    with pytest.raises(ml.DatasetNotFoundError, match="no longer serves"):
        ml.load_movielens("ml-latest-small-2016", data_home=tmp_path, download=True)
    assert list(tmp_path.iterdir()) == []


def test_folder_without_the_file_is_not_clobbered(tmp_path):
    (tmp_path / "ml-latest-small").mkdir()
    (tmp_path / "ml-latest-small" / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(ml.DatasetNotFoundError, match="exists but has no movies.csv"):
        ml.load_movielens_items(data_home=tmp_path)


def test_unknown_variant():
    with pytest.raises(ValueError, match=r"unknown MovieLens variant 'ml-2k'.*ml-latest-small"):
        ml.load_movielens("ml-2k")
    with pytest.raises(ValueError, match=r"unknown MovieLens variant 'ml-2k'"):
        ml.movielens_variant("ml-2k")
    with pytest.raises(ValueError, match="known variants"):
        ml.load_movielens_items("nope", download=False)


def test_variants_by_any_name_the_loaders_accept():
    assert ml.movielens_variant(" ML-10M100K ") is ml.MOVIELENS_VARIANTS["ml-10m"]
    assert ml.movielens_variant("ml-latest-small-2018").name == "ml-latest-small"
    with pytest.raises(TypeError, match="name must be a string"):
        ml.movielens_variant(100)


def test_registry():
    assert set(ml.MOVIELENS_VARIANTS) == {
        "ml-latest-small", "ml-latest-small-2016", "ml-100k", "ml-1m", "ml-10m", "ml-20m",
        "ml-25m", "ml-32m",
    }  # fmt: skip
    for name, variant in ml.MOVIELENS_VARIANTS.items():
        assert variant.name == name
        if name == "ml-latest-small-2016":
            assert variant.url is None
        else:
            assert variant.url == f"https://files.grouplens.org/datasets/movielens/{name}.zip"
    assert ml.MOVIELENS_VARIANTS["ml-10m"].archive_folder == "ml-10M100K"
    assert ml.MOVIELENS_VARIANTS["ml-latest-small"].sha256 == (
        "859da233c6929ebc9202e9516cdefa8a3c695aef67d1878249d6036c3513c023"
    )
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign"):
        ml.MOVIELENS_VARIANTS["ml-1m"].url = "x"  # type: ignore[misc]


def test_get_data_home_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LATENTFACTORS_DATA", raising=False)
    assert ml.get_data_home() == tmp_path / "home" / ".cache" / "latentfactors"
    monkeypatch.setenv("LATENTFACTORS_DATA", str(tmp_path / "env"))
    assert ml.get_data_home() == tmp_path / "env"
    assert ml.get_data_home(tmp_path / "arg") == tmp_path / "arg"
    assert ml.get_data_home("~/x") == tmp_path / "home" / "x"
    assert not (tmp_path / "env").exists()  # not created


def test_status_of_local_folder(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_bytes(b"1::2::3::4\n")
    status = {row["name"]: row for row in ml.dataset_status(tmp_path)}
    assert status["ml-1m"]["cached"] is True and status["ml-1m"]["incomplete"] is False
    assert status["ml-1m"]["size_bytes"] == 11
    (tmp_path / "ml-100k").mkdir()  # a folder without u.data: the loaders will not fill it
    status = {row["name"]: row for row in ml.dataset_status(tmp_path)}
    assert status["ml-100k"]["cached"] is False and status["ml-100k"]["incomplete"] is True
    assert status["ml-25m"] == {
        "name": "ml-25m",
        "cached": False,
        "incomplete": False,
        "is_data_home": False,
        "path": str(tmp_path / "ml-25m"),
        "size_bytes": 0,
        "download_size": ml.MOVIELENS_VARIANTS["ml-25m"].download_size,
        "downloadable": True,
        "url": "https://files.grouplens.org/datasets/movielens/ml-25m.zip",
    }
    assert status["ml-latest-small-2016"]["downloadable"] is False
    inside = {row["name"]: row for row in ml.dataset_status(folder)}  # the ml-1m folder
    assert [name for name, row in inside.items() if row["is_data_home"]] == ["ml-1m"]


def test_progress_line_on_a_tty():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    progress = TransferProgress("Downloading x", 2_000_000, stream=stream)
    progress.update(1_000_000)
    progress.finish(2_000_000)
    text = stream.getvalue()
    assert text.startswith("\r\x1b[KDownloading x: 1.0 MB / 2.0 MB ( 50%)")
    assert text.endswith("\r\x1b[KDownloading x: 2.0 MB / 2.0 MB (100%)\n")
    quiet = io.StringIO()
    progress = TransferProgress("Downloading x", 10, stream=quiet)
    progress.update(5)
    progress.finish(10)
    assert quiet.getvalue() == ""  # not a TTY and fast: silent


# ---------------------------------------------------------------------- downloads

RATINGS_CSV = b"userId,movieId,rating,timestamp\r\n1,10,4.0,100\r\n1,20,3.5,101\r\n2,10,5.0,102\r\n"
MOVIES_CSV = (
    b'movieId,title,genres\r\n10,"Foo, The (1999)",Comedy|Drama\r\n20,Bar (2001) ,Action\r\n'
)


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()


GOOD_ZIP = make_zip(
    {
        "ml-latest-small/ratings.csv": RATINGS_CSV,
        "ml-latest-small/movies.csv": MOVIES_CSV,
        "ml-latest-small/README.txt": b"tiny\r\n",
    }
)
GOOD_SHA = hashlib.sha256(GOOD_ZIP).hexdigest()


class _State:
    def __init__(self):
        self.routes: dict[str, tuple[bytes, str]] = {}
        self.requests: list[str] = []
        self.url = ""


@pytest.fixture
def server():
    """A local HTTP server: ``state.routes[path] = (body, mode)``, mode "ok" or "truncated"."""
    state = _State()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            state.requests.append(self.path)
            route = state.routes.get(self.path)
            if route is None:
                self.send_error(404, "Not Found")
                return
            body, mode = route
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            extra = 1000 if mode == "truncated" else 0
            self.send_header("Content-Length", str(len(body) + extra))
            self.end_headers()
            self.wfile.write(body if mode == "ok" else body[: len(body) // 2])
            self.close_connection = True

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture(autouse=True)
def _no_base_url_override(monkeypatch):
    monkeypatch.delenv(ml.BASE_URL_ENV, raising=False)


def serve(state, monkeypatch, body, *, sha256=None, mode="ok", name="ml-latest-small", n=3):
    """Route the variant's archive to the local server; return its URL.

    Without ``sha256`` a download is checked by its rating count, ``n``.
    """
    variant = ml.MOVIELENS_VARIANTS[name]
    path = f"/{variant.archive_name}"
    state.routes[path] = (body, mode)
    url = state.url + path
    monkeypatch.setitem(
        ml.MOVIELENS_VARIANTS,
        name,
        dataclasses.replace(variant, url=url, sha256=sha256, n_ratings=n),
    )
    return url


def _left_in(home: Path) -> list[str]:
    return sorted(p.name for p in home.rglob("*")) if home.exists() else []


def test_download_good_zip(server, monkeypatch, tmp_path):
    serve(server, monkeypatch, GOOD_ZIP, sha256=GOOD_SHA)
    home = tmp_path / "home"
    ratings = ml.load_movielens(data_home=home)
    assert ratings.values.tolist() == [[1, 10, 4.0, 100], [1, 20, 3.5, 101], [2, 10, 5.0, 102]]
    assert ratings["rating"].dtype == np.float32
    assert _left_in(home) == ["README.txt", "ml-latest-small", "movies.csv", "ratings.csv"]
    assert (home / "ml-latest-small" / "ratings.csv").read_bytes() == RATINGS_CSV
    assert server.requests == ["/ml-latest-small.zip"]
    # Second calls read the folder in place: no request.
    items = ml.load_movielens_items(data_home=home)
    ml.load_movielens(data_home=home)
    assert server.requests == ["/ml-latest-small.zip"]
    assert items["title"].tolist() == ["Foo, The (1999)", "Bar (2001)"]
    assert items["genres"].tolist() == ["Comedy|Drama", "Action"]
    assert items["year"].tolist() == [1999, 2001]


def test_download_via_base_url_env_and_archive_folder(server, monkeypatch, tmp_path):
    body = make_zip(
        {
            "ml-10M100K/ratings.dat": b"1::122::5::838985046\n1::185::4.5::838983525\n",
            "ml-10M100K/movies.dat": "122::Misérables: Redux (1995)::Drama\n".encode(),
        }
    )
    server.routes["/ml-10m.zip"] = (body, "ok")
    monkeypatch.setenv(ml.BASE_URL_ENV, server.url + "/")
    variant = ml.MOVIELENS_VARIANTS["ml-10m"]
    monkeypatch.setitem(ml.MOVIELENS_VARIANTS, "ml-10m", dataclasses.replace(variant, n_ratings=2))
    home = tmp_path / "home"
    ratings = ml.load_movielens("ml-10m", data_home=home)
    assert ratings.values.tolist() == [[1, 122, 5.0, 838985046], [1, 185, 4.5, 838983525]]
    assert (home / "ml-10m" / "ratings.dat").is_file()
    assert _left_in(home) == ["ml-10m", "movies.dat", "ratings.dat"]
    items = ml.load_movielens_items("ml-10m", data_home=home)
    assert items["title"].tolist() == ["Misérables: Redux (1995)"]  # UTF-8 decoded
    assert server.requests == ["/ml-10m.zip"]


def test_download_bad_checksum(server, monkeypatch, tmp_path):
    corrupted = bytearray(GOOD_ZIP)
    corrupted[len(corrupted) // 2] ^= 0xFF
    url = serve(server, monkeypatch, bytes(corrupted), sha256=GOOD_SHA)
    home = tmp_path / "home"
    with pytest.raises(ml.DownloadError, match="checksum mismatch") as info:
        ml.load_movielens(data_home=home)
    assert url in str(info.value)
    assert str(home / "ml-latest-small") in str(info.value)
    assert (info.value.dataset, info.value.url) == ("ml-latest-small", url)
    assert _left_in(home) == []


@pytest.mark.parametrize("name", ["ml-latest-small", "ml-100k"])
def test_download_without_a_digest_is_checked_by_its_rating_count(
    server, monkeypatch, tmp_path, name
):
    if name == "ml-100k":
        ratings = b"1\t10\t4\t100\n1\t20\t3\t101\n2\t10\t5\t102"  # no final newline
        body = make_zip({"ml-100k/u.data": ratings, "ml-100k/u.item": b"10|Foo (1999)|\n"})
    else:
        body = GOOD_ZIP  # a header and three ratings
    serve(server, monkeypatch, body, name=name, n=4)
    home = tmp_path / "home"
    with pytest.raises(ml.DownloadError, match="holds 3 ratings, not the 4 of the published"):
        ml.load_movielens(name, data_home=home)
    assert _left_in(home) == []
    serve(server, monkeypatch, body, name=name, n=3)
    assert len(ml.load_movielens(name, data_home=home)) == 3


def test_download_not_a_zip(server, monkeypatch, tmp_path):
    serve(server, monkeypatch, b"<html>oops</html>")
    home = tmp_path / "home"
    with pytest.raises(ml.DownloadError, match="not a valid zip"):
        ml.load_movielens(data_home=home)
    assert _left_in(home) == []


def test_download_zip_without_ratings(server, monkeypatch, tmp_path):
    serve(server, monkeypatch, make_zip({"other/ratings.csv": RATINGS_CSV}))
    home = tmp_path / "home"
    with pytest.raises(ml.DownloadError, match="archive has no ml-latest-small/ratings.csv"):
        ml.load_movielens(data_home=home)
    assert _left_in(home) == []


def test_download_truncated(server, monkeypatch, tmp_path):
    url = serve(server, monkeypatch, GOOD_ZIP, mode="truncated")
    home = tmp_path / "home"
    with pytest.raises(ml.DownloadError, match=r"truncated download: received \d+ of") as info:
        ml.load_movielens(data_home=home)
    assert url in str(info.value)
    assert _left_in(home) == []


@pytest.mark.parametrize(
    "member",
    ["../evil-{}.txt", "ml-latest-small/../../evil-{}.txt", "/tmp/evil-{}.txt", "C:/evil-{}.txt",
     "ml-latest-small\\..\\..\\evil-{}.txt"],
)  # fmt: skip
def test_download_path_traversal(server, monkeypatch, tmp_path, member):
    member = member.format(uuid.uuid4().hex)
    body = make_zip(
        {
            "ml-latest-small/ratings.csv": RATINGS_CSV,
            "ml-latest-small/movies.csv": MOVIES_CSV,
            member: b"pwned",
        }
    )
    serve(server, monkeypatch, body, sha256=hashlib.sha256(body).hexdigest())
    home = tmp_path / "home" / "deep"
    with pytest.raises(ml.DownloadError, match="unsafe path") as info:
        ml.load_movielens(data_home=home)
    assert repr(member) in str(info.value)
    assert _left_in(home) == []
    evil = Path(member.replace("\\", "/")).name
    assert list(tmp_path.rglob(evil)) == []
    assert not (Path("/tmp") / evil).exists()


def test_download_404(server, monkeypatch, tmp_path):
    url = serve(server, monkeypatch, GOOD_ZIP)
    server.routes.clear()
    home = tmp_path / "home"
    with pytest.raises(ml.DownloadError, match=r"HTTP 404") as info:
        ml.load_movielens(data_home=home)
    assert url in str(info.value)
    assert "ratings.csv and movies.csv" in str(info.value)
    assert _left_in(home) == []


def test_download_connection_refused(monkeypatch, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    variant = ml.MOVIELENS_VARIANTS["ml-100k"]
    url = f"http://127.0.0.1:{port}/ml-100k.zip"
    monkeypatch.setitem(ml.MOVIELENS_VARIANTS, "ml-100k", dataclasses.replace(variant, url=url))
    home = tmp_path / "home"
    with pytest.raises(ml.DownloadError, match="cannot connect") as info:
        ml.load_movielens("ml-100k", data_home=home)
    assert url in str(info.value)
    assert _left_in(home) == []


def test_download_false_makes_no_request(server, monkeypatch, tmp_path):
    serve(server, monkeypatch, GOOD_ZIP, sha256=GOOD_SHA)
    with pytest.raises(ml.DatasetNotFoundError, match="download=False"):
        ml.load_movielens(data_home=tmp_path / "home", download=False)
    assert server.requests == []
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize(
    "title, year",
    [
        ("Toy Story (1995)", "1995"),
        ("Land Before Time III: The Time of the Great Giving (1995) (V)", "1995"),
        ("The OA (2016-2019)", "2016"),
        ("Babylon 5", None),
        ("Movie (a tag)", None),
        ("2001: A Space Odyssey (1968) ", "1968"),
    ],
)
def test_year_is_read_from_the_end_of_a_title(title, year):
    from latentfactors.data import movielens

    found = movielens._YEAR.search(title)
    assert (found.group(1) if found else None) == year


def test_a_data_home_pointing_at_the_dataset_folder_names_its_parent(tmp_path):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("1\t2\t3\t4\n")
    with pytest.raises(ml.DatasetNotFoundError, match=r"is the ml-100k folder itself") as info:
        ml.load_movielens("ml-100k", data_home=folder, download=False)
    assert f"data_home={str(tmp_path)!r}" in str(info.value)
