"""load_ratings on files as they come: compressed, Parquet, ISO dates, string ids, line numbers."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from latentfactors.data.ratings import load_ratings

# Semicolons and a header: sniffing the compressed bytes instead of the text
# finds no separator (or a wrong one) and then "missing columns".
TEXT = "userId;movieId;rating;timestamp\n1;10;4.0;100\n1;20;3.5;101\n2;10;5.0;102\n"
EXPECTED = [[1, 10, 4.0, 100], [1, 20, 3.5, 101], [2, 10, 5.0, 102]]


def _zip(text: str, names=("ratings.csv",)) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ratings/", b"")  # a folder entry is no member
        for name in names:
            zf.writestr(f"ratings/{name}", text.encode())
    return buffer.getvalue()


COMPRESSORS = {
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zip": _zip,
}


@pytest.mark.parametrize("ext", list(COMPRESSORS))
def test_compressed_files_are_sniffed_from_their_decompressed_text(tmp_path, ext):
    data = COMPRESSORS[ext](TEXT if ext == "zip" else TEXT.encode())
    path = tmp_path / f"ratings.csv.{ext}"
    path.write_bytes(data)
    frame = load_ratings(path)
    assert frame.values.tolist() == EXPECTED
    assert frame["timestamp"].dtype == np.int64


def test_gzip_without_gz_extension_is_recognised_by_its_magic_bytes(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_bytes(gzip.compress(TEXT.encode()))
    assert load_ratings(path).values.tolist() == EXPECTED


def test_zip_with_several_files_is_refused_naming_them(tmp_path):
    path = tmp_path / "ratings.zip"
    path.write_bytes(_zip(TEXT, names=("a.csv", "b.csv")))
    with pytest.raises(ValueError, match=r"holds 2 files \(ratings/a.csv, ratings/b.csv\)"):
        load_ratings(path)


def test_damaged_gzip_is_a_clear_error(tmp_path):
    path = tmp_path / "ratings.csv.gz"
    path.write_bytes(gzip.compress(TEXT.encode() * 50)[:40])
    with pytest.raises(ValueError, match=r"ratings.csv.gz is not readable gzip data \(damaged"):
        load_ratings(path)


def test_gz_extension_on_plain_text_is_refused(tmp_path):
    path = tmp_path / "ratings.csv.gz"
    path.write_text(TEXT)
    with pytest.raises(ValueError, match=r"ends in .gz but is not gzip data"):
        load_ratings(path)


def test_zstd_files_are_read(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    path = tmp_path / "ratings.csv.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(TEXT.encode()))
    assert load_ratings(path).values.tolist() == EXPECTED


def test_zstd_without_zstandard_says_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "zstandard", None)  # import zstandard now fails
    path = tmp_path / "ratings.csv.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00" * 20)
    with pytest.raises(ImportError, match=r"zstd-compressed, which needs the zstandard package"):
        load_ratings(path)


def test_parquet_files_are_read(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "ratings.parquet"
    pd.DataFrame(
        {"userId": ["001", "002"], "movieId": [10, 20], "stars": [4.0, 3.0], "ts": [1, 2]}
    ).to_parquet(path)
    frame = load_ratings(path, columns={"stars": "rating"})
    assert frame.values.tolist() == [["001", 10, 4.0, 1], ["002", 20, 3.0, 2]]
    data = path.read_bytes()
    (tmp_path / "ratings.bin").write_bytes(data)  # known by its magic bytes too
    assert len(load_ratings(tmp_path / "ratings.bin", columns={"stars": "rating"})) == 2


def test_parquet_without_pyarrow_says_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now fails
    path = tmp_path / "ratings.parquet"
    path.write_bytes(b"PAR1" + b"\x00" * 20 + b"PAR1")
    with pytest.raises(ImportError, match=r"Parquet file, which needs the pyarrow package"):
        load_ratings(path)


def test_iso_dates_and_datetimes_become_unix_seconds(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(
        "user,item,rating,timestamp\n"
        "1,10,4,2020-01-31\n"
        "1,20,3,2020-01-31T12:00:00Z\n"
        "2,10,5,2020-01-31 13:00:00+01:00\n"
    )
    frame = load_ratings(path)
    assert frame["timestamp"].dtype == np.int64
    assert frame["timestamp"].tolist() == [1580428800, 1580472000, 1580472000]


def test_errors_name_the_files_line_counting_the_header_and_blank_lines(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\n\n1,2,3\n\n1,3,x\n")
    with pytest.raises(ValueError, match=r"non-numeric rating 'x' at line 5 in .*r.csv"):
        load_ratings(path)
    path.write_text("1\t2\t3\n1\t3\tx\n")  # no header
    with pytest.raises(ValueError, match=r"at line 2 in"):
        load_ratings(path)
    path = tmp_path / "r.csv.gz"
    path.write_bytes(gzip.compress(b"user,item,rating\n1,2,3\n1,3,x\n"))
    with pytest.raises(ValueError, match=r"at line 3 in"):
        load_ratings(path)


def test_string_ids_keep_leading_zeros(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\n001,01,4\n1,1,3\n")
    frame = load_ratings(path, id_dtype=str)
    assert frame["user"].tolist() == ["001", "1"] and frame["item"].tolist() == ["01", "1"]
    assert frame["rating"].dtype == np.float32
    frame = load_ratings(pd.DataFrame({"user": [1.0, 2.0], "item": [3, 4], "rating": [1, 2]}),
                         id_dtype=str)  # fmt: skip
    assert frame["user"].tolist() == ["1", "2"] and frame["item"].tolist() == ["3", "4"]
    with pytest.raises(ValueError, match=r"id_dtype must be None or str, got 'int'"):
        load_ratings(path, id_dtype="int")


def test_headerless_lines_ending_in_a_separator_are_data_not_a_header(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("1,10,4,\n1,20,3,\n2,10,5,\n")
    frame = load_ratings(path)
    assert list(frame.columns) == ["user", "item", "rating"]
    assert frame.values.tolist() == [[1, 10, 4], [1, 20, 3], [2, 10, 5]]
    path.write_text("1,10,4,100,\n1,20,3,101,\n")
    assert load_ratings(path)["timestamp"].tolist() == [100, 101]
