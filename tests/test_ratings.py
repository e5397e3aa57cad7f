"""load_ratings, canonicalize and IdIndex: reading, validation and id encoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from latentfactors.data.ids import IdIndex
from latentfactors.data.ratings import canonicalize, load_ratings


def write(tmp_path: Path, name: str, text: str) -> Path:
    """Write ``text`` byte for byte (no newline translation)."""
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def assert_canonical(frame: pd.DataFrame, *, timestamp: bool) -> None:
    expected = ["user", "item", "rating"] + (["timestamp"] if timestamp else [])
    assert list(frame.columns) == expected
    assert frame["rating"].dtype == np.float32
    if timestamp:
        assert frame["timestamp"].dtype == np.int64
    assert isinstance(frame.index, pd.RangeIndex)
    assert frame.index[0] == 0


def is_string_column(series: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(series) and all(isinstance(v, str) for v in series)


# ------------------------------------------------------------------ separators


def test_comma_with_header(tmp_path):
    path = write(tmp_path, "r.csv", "user,item,rating,timestamp\n1,10,4.5,100\n2,20,3,200\n")
    df = load_ratings(path)
    assert_canonical(df, timestamp=True)
    assert df["user"].dtype == np.int64 and df["item"].dtype == np.int64
    assert df["user"].tolist() == [1, 2]
    assert df["item"].tolist() == [10, 20]
    assert df["rating"].tolist() == [4.5, 3.0]
    assert df["timestamp"].tolist() == [100, 200]


def test_str_path_and_pathlike_agree(tmp_path):
    path = write(tmp_path, "r.csv", "user,item,rating\n1,10,4\n")
    pd.testing.assert_frame_equal(load_ratings(path), load_ratings(str(path)))


def test_tab_headerless_four_columns(tmp_path):
    # ml-100k u.data
    path = write(tmp_path, "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    df = load_ratings(path)
    assert_canonical(df, timestamp=True)
    assert df["user"].tolist() == [196, 186]
    assert df["item"].tolist() == [242, 302]
    assert df["timestamp"].tolist() == [881250949, 891717742]


def test_tab_headerless_three_columns(tmp_path):
    path = write(tmp_path, "r.tsv", "1\t10\t4\n2\t20\t3\n")
    df = load_ratings(path)
    assert_canonical(df, timestamp=False)
    assert df["rating"].tolist() == [4.0, 3.0]


def test_double_colon_headerless_like_ml1m(tmp_path):
    path = write(tmp_path, "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n")
    df = load_ratings(path)
    assert_canonical(df, timestamp=True)
    assert df["user"].dtype == np.int64 and df["item"].dtype == np.int64
    assert df["user"].tolist() == [1, 1]
    assert df["item"].tolist() == [1193, 661]
    assert df["rating"].tolist() == [5.0, 3.0]
    assert df["timestamp"].tolist() == [978300760, 978302109]


def test_double_colon_with_header(tmp_path):
    path = write(tmp_path, "r.dat", "UserID::MovieID::Rating\n1::10::4\n2::20::3\n")
    df = load_ratings(path)
    assert_canonical(df, timestamp=False)
    assert df["user"].dtype == np.int64
    assert df["item"].tolist() == [10, 20]


def test_double_colon_with_single_colons_inside_ids(tmp_path):
    path = write(tmp_path, "r.dat", "user::item::rating\nu:1::i:2::4\nu:3::i:4::5\n")
    df = load_ratings(path)
    assert df["user"].tolist() == ["u:1", "u:3"]
    assert df["item"].tolist() == ["i:2", "i:4"]
    assert df["rating"].tolist() == [4.0, 5.0]


def test_double_colon_column_list_drops_extras(tmp_path):
    path = write(tmp_path, "ratings.dat", "1::10::5::978300760\n2::20::3::978302109\n")
    df = load_ratings(path, columns=["user", "item", "rating", "skip"])
    assert_canonical(df, timestamp=False)
    assert df["user"].tolist() == [1, 2]


def test_whitespace_separated(tmp_path):
    # FilmTrust ratings.txt style, with runs of spaces
    path = write(tmp_path, "ratings.txt", "1 1 2\n1  2   4\n2 3 3.5\n")
    df = load_ratings(path)
    assert_canonical(df, timestamp=False)
    assert df["user"].tolist() == [1, 1, 2]
    assert df["item"].tolist() == [1, 2, 3]
    assert df["rating"].tolist() == [2.0, 4.0, 3.5]


def test_whitespace_with_leading_spaces(tmp_path):
    path = write(tmp_path, "r.txt", "  1 10 4\n  2 20 3\n")
    df = load_ratings(path)
    assert df["user"].tolist() == [1, 2]
    assert df["rating"].tolist() == [4.0, 3.0]


def test_semicolon_with_header(tmp_path):
    path = write(tmp_path, "r.csv", "user;item;rating\na;x;4\nb;y;3\n")
    df = load_ratings(path)
    assert_canonical(df, timestamp=False)
    assert df["user"].tolist() == ["a", "b"]
    assert df["item"].tolist() == ["x", "y"]


def test_pipe_separated(tmp_path):
    path = write(tmp_path, "r.txt", "user|item|rating\n1|2|3\n")
    assert load_ratings(path)["item"].tolist() == [2]


def test_sniff_separator_needs_every_line_to_agree():
    from latentfactors.data import sniff_separator

    # ml-100k's u.item: "|"-separated, commas inside titles
    assert sniff_separator(["2|Citta, La (1996)|01-Jan-1996", "1|Toy Story (1995)|x"]) == "|"
    assert sniff_separator(["movieId,title", '1,"President, The (1995)"']) == ","
    assert sniff_separator(["1::2::5::978300760"]) == "::"
    assert sniff_separator(["", "1\t2\t3"]) == "\t"
    assert sniff_separator(["1,2;3", "1,2,3;4"]) == ";"  # ";" splits both lines in two
    assert sniff_separator(["a,b", "c"]) == ","  # no rule fits every line: the first line decides
    assert sniff_separator(["1 2 3"]) == r"\s+"
    assert sniff_separator([]) == r"\s+"


def test_explicit_separator(tmp_path):
    path = write(tmp_path, "r.txt", "user;item;rating\n1;2;3\n")
    assert load_ratings(path, sep=";")["rating"].tolist() == [3.0]


@pytest.mark.parametrize(
    "text",
    [
        "userId,movieId,rating,timestamp\r\n1,10,4.5,100\r\n2,20,3,200\r\n",
        "1\t10\t4.5\t100\r\n2\t20\t3\t200\r\n",
        "1::10::4.5::100\r\n2::20::3::200\r\n",
        "1 10 4.5 100\r\n2 20 3 200\r\n",
    ],
    ids=["csv", "tsv", "double-colon", "whitespace"],
)
def test_crlf_line_endings(tmp_path, text):
    df = load_ratings(write(tmp_path, "r.txt", text))
    assert_canonical(df, timestamp=True)
    assert df["user"].dtype == np.int64
    assert df["item"].tolist() == [10, 20]
    assert df["rating"].tolist() == [4.5, 3.0]
    assert df["timestamp"].tolist() == [100, 200]


def test_crlf_string_ids_have_no_carriage_return(tmp_path):
    df = load_ratings(write(tmp_path, "r.csv", "rating,user,item\r\n4,u1,i1\r\n3,u2,i2\r\n"))
    assert df["item"].tolist() == ["i1", "i2"]


def test_utf8_bom(tmp_path):
    header = load_ratings(write(tmp_path, "a.csv", "\ufeffuserId,movieId,rating\n1,10,4\n"))
    assert header["user"].tolist() == [1]
    headerless = load_ratings(write(tmp_path, "b.csv", "\ufeff1,10,4\n2,20,3\n"))
    assert headerless["user"].tolist() == [1, 2]


def test_blank_lines_are_skipped(tmp_path):
    df = load_ratings(write(tmp_path, "r.csv", "\nuser,item,rating\n1,2,3\n\n4,5,6\n\n"))
    assert df["user"].tolist() == [1, 4]


# ------------------------------------------------------------------- columns


@pytest.mark.parametrize(
    "header",
    [
        "userId,movieId,rating,timestamp",
        "user_id,item_id,rating,timestamp",
        "UserID,ItemID,Rating,Timestamp",
        "uid,iid,score,ts",
        "user,movie_id,ratings,time",
    ],
)
def test_header_aliases(tmp_path, header):
    df = load_ratings(write(tmp_path, "r.csv", f"{header}\n1,10,4,100\n"))
    assert_canonical(df, timestamp=True)
    assert df.iloc[0].tolist() == [1, 10, 4.0, 100]


def test_extra_header_columns_are_dropped(tmp_path):
    df = load_ratings(write(tmp_path, "r.csv", "userId,title,movieId,rating,tag\n1,Heat,10,4,x\n"))
    assert_canonical(df, timestamp=False)
    assert df.iloc[0].tolist() == [1, 10, 4.0]


def test_canonical_name_wins_over_alias(tmp_path):
    df = load_ratings(write(tmp_path, "r.csv", "userId,user,item,rating\n7,1,10,4\n"))
    assert df["user"].tolist() == [1]


def test_column_list_for_headerless_file(tmp_path):
    path = write(tmp_path, "r.csv", "4,1,10\n3,2,20\n")
    df = load_ratings(path, columns=["rating", "user", "item"])
    assert_canonical(df, timestamp=False)
    assert df["user"].tolist() == [1, 2]
    assert df["item"].tolist() == [10, 20]
    assert df["rating"].tolist() == [4.0, 3.0]


def test_column_list_drops_extra_columns(tmp_path):
    path = write(tmp_path, "r.tsv", "1\tx\t10\t4\t100\tfoo\n2\ty\t20\t3\t200\tbar\n")
    df = load_ratings(path, columns=["user", "skip", "item", "rating", "timestamp", "skip"])
    assert_canonical(df, timestamp=True)
    assert df["user"].tolist() == [1, 2]
    assert df["item"].tolist() == [10, 20]
    assert df["timestamp"].tolist() == [100, 200]


def test_column_list_as_tuple(tmp_path):
    path = write(tmp_path, "r.csv", "1,10,4\n")
    assert load_ratings(path, columns=("user", "item", "rating"))["item"].tolist() == [10]


def test_column_list_lets_string_ids_be_headerless(tmp_path):
    path = write(tmp_path, "r.csv", "u1,i1,4\nu2,i2,3\n")
    df = load_ratings(path, columns=["user", "item", "rating"])
    assert df["user"].tolist() == ["u1", "u2"]


def test_column_list_wrong_length(tmp_path):
    path = write(tmp_path, "r.tsv", "1\t10\t4\t100\n")
    with pytest.raises(ValueError, match=r"has 4 columns but columns names 3"):
        load_ratings(path, columns=["user", "item", "rating"])
    with pytest.raises(ValueError, match=r"has 4 columns but columns names 5"):
        load_ratings(path, columns=["user", "item", "rating", "timestamp", "skip"])


def test_column_list_on_file_with_header(tmp_path):
    path = write(tmp_path, "r.csv", "userId,movieId,rating\n1,10,4\n2,20,3\n")
    with pytest.raises(ValueError, match=r"looks like a header .*mapping"):
        load_ratings(path, columns=["user", "item", "rating"])


def test_column_list_naming_a_column_twice(tmp_path):
    path = write(tmp_path, "r.csv", "1,10,4\n")
    with pytest.raises(ValueError, match=r"columns names \['user'\] more than once"):
        load_ratings(path, columns=["user", "user", "rating"])


def test_headerless_file_with_unexpected_column_count(tmp_path):
    path = write(tmp_path, "r.csv", "1,10,4,100,7\n")
    with pytest.raises(ValueError, match=r"no header row and 5 columns; pass columns as a list"):
        load_ratings(path)


def test_mapping(tmp_path):
    path = write(tmp_path, "r.csv", "who,what,stars,when\n1,10,4,100\n")
    df = load_ratings(
        path, columns={"who": "user", "what": "item", "stars": "rating", "when": "timestamp"}
    )
    assert_canonical(df, timestamp=True)
    assert df.iloc[0].tolist() == [1, 10, 4.0, 100]


def test_partial_mapping_keeps_aliases(tmp_path):
    path = write(tmp_path, "r.csv", "userId,movieId,stars\n1,10,4\n")
    df = load_ratings(path, columns={"stars": "rating"})
    assert df.iloc[0].tolist() == [1, 10, 4.0]


def test_mapping_wins_over_alias(tmp_path):
    path = write(tmp_path, "r.csv", "userId,account,movieId,rating\n1,77,10,4\n")
    df = load_ratings(path, columns={"account": "user"})
    assert df["user"].tolist() == [77]


def test_mapping_unknown_source_column(tmp_path):
    path = write(tmp_path, "r.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match=r"columns maps \['nope'\] but the data has columns"):
        load_ratings(path, columns={"nope": "user"})


def test_mapping_bad_target(tmp_path):
    path = write(tmp_path, "r.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match=r"columns must map to .*got target\(s\) \['usr'\]"):
        load_ratings(path, columns={"a": "usr"})


def test_mapping_two_columns_to_one_target(tmp_path):
    path = write(tmp_path, "r.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match=r"maps several columns to \['user'\]"):
        load_ratings(path, columns={"a": "user", "b": "user", "c": "rating"})


def test_mapping_colliding_with_existing_column(tmp_path):
    path = write(tmp_path, "r.csv", "user,item,rating,stars\n1,2,3,4\n")
    with pytest.raises(ValueError, match=r"several columns are named \['rating'\]"):
        load_ratings(path, columns={"stars": "rating"})


def test_mapping_on_headerless_file(tmp_path):
    path = write(tmp_path, "r.csv", "1,10,4\n")
    with pytest.raises(ValueError, match=r"no header row, so a column mapping cannot be applied"):
        load_ratings(path, columns={"a": "user"})


@pytest.mark.parametrize("columns", ["user,item,rating", 3, {"user", "item", "rating"}])
def test_columns_of_wrong_type(tmp_path, columns):
    path = write(tmp_path, "r.csv", "user,item,rating\n1,2,3\n")
    with pytest.raises(TypeError, match=r"columns must be a list .* or a mapping"):
        load_ratings(path, columns=columns)


# ------------------------------------------------------------ DataFrame input


def test_dataframe_with_mapping_and_datetime_timestamps():
    source = pd.DataFrame(
        {
            "customer": ["a", "b", "a"],
            "product": [1, 2, 2],
            "stars": [4, 3, 5],
            "when": pd.to_datetime(
                ["1970-01-01 00:00:10", "2000-01-01 00:00:00", "2000-01-02 00:00:00"]
            ),
        }
    )
    before = source.copy()
    df = load_ratings(
        source,
        columns={"customer": "user", "product": "item", "stars": "rating", "when": "timestamp"},
    )
    assert_canonical(df, timestamp=True)
    assert df["user"].tolist() == ["a", "b", "a"]
    assert df["item"].dtype == np.int64
    assert df["timestamp"].tolist() == [10, 946684800, 946771200]
    pd.testing.assert_frame_equal(source, before)  # the input is not modified


def test_dataframe_timezone_aware_and_subsecond_timestamps():
    ts = pd.to_datetime(["2000-01-01 01:00:00.750"]).tz_localize("Europe/Paris")
    df = load_ratings(pd.DataFrame({"user": [1], "item": [2], "rating": [3], "timestamp": ts}))
    assert df["timestamp"].dtype == np.int64
    assert df["timestamp"].tolist() == [946684800]  # 00:00:00.750 UTC, truncated to seconds


def test_dataframe_float_timestamps_truncate():
    df = load_ratings(
        pd.DataFrame({"user": [1, 2], "item": [2, 3], "rating": [3, 4], "timestamp": [1.9, 5.0]})
    )
    assert df["timestamp"].tolist() == [1, 5]


def test_dataframe_with_column_list_and_skip():
    source = pd.DataFrame([[1, "x", 10, 4.0], [2, "y", 20, 3.0]])
    df = load_ratings(source, columns=["user", "skip", "item", "rating"])
    assert_canonical(df, timestamp=False)
    assert df["item"].tolist() == [10, 20]


def test_dataframe_column_list_wrong_length():
    with pytest.raises(ValueError, match=r"columns names 2 columns but the frame has 3"):
        load_ratings(pd.DataFrame([[1, 2, 3]]), columns=["user", "item"])


def test_dataframe_with_aliases_and_custom_index():
    source = pd.DataFrame(
        {"userId": [5, 6], "movieId": [7, 8], "rating": [1, 2]}, index=["r1", "r2"]
    )
    df = load_ratings(source)
    assert_canonical(df, timestamp=False)
    assert df["user"].tolist() == [5, 6]


def test_int32_ids_become_int64_and_float64_ratings_become_float32():
    source = pd.DataFrame(
        {
            "user": np.array([1, 2], dtype=np.int32),
            "item": np.array([3, 4], dtype=np.uint16),
            "rating": np.array([0.1, 0.2], dtype=np.float64),
        }
    )
    df = load_ratings(source)
    assert df["user"].dtype == np.int64 and df["item"].dtype == np.int64
    np.testing.assert_array_equal(df["rating"].to_numpy(), np.array([0.1, 0.2], np.float32))


def test_string_ids_stay_strings_even_when_they_look_numeric():
    source = pd.DataFrame({"user": ["001", "2"], "item": ["a", "b"], "rating": [1, 2]})
    df = load_ratings(source)
    assert is_string_column(df["user"])
    assert df["user"].tolist() == ["001", "2"]


def test_string_ids_from_file(tmp_path):
    df = load_ratings(write(tmp_path, "r.csv", "user,item,rating\nalice,i1,4\nbob,i2,3\n"))
    assert is_string_column(df["user"]) and is_string_column(df["item"])
    assert df["user"].tolist() == ["alice", "bob"]


def test_whole_float_ids_become_int64():
    source = pd.DataFrame({"user": [1.0, 2.0], "item": [3.0, 40.0], "rating": [1, 2]})
    df = load_ratings(source)
    assert df["user"].dtype == np.int64 and df["item"].dtype == np.int64
    assert df["item"].tolist() == [3, 40]


def test_whole_float_ids_from_file(tmp_path):
    df = load_ratings(write(tmp_path, "r.csv", "user,item,rating\n1.0,2.0,3\n"))
    assert df["user"].dtype == np.int64 and df["user"].tolist() == [1]


def test_object_column_of_python_ints_becomes_int64():
    source = pd.DataFrame(
        {"user": np.array([1, 2], dtype=object), "item": [1, 2], "rating": [1, 2]}
    )
    df = load_ratings(source)
    assert df["user"].dtype == np.int64


def test_nullable_and_categorical_columns():
    source = pd.DataFrame(
        {
            "user": pd.array([1, 2], dtype="Int64"),
            "item": pd.Categorical(["x", "y"]),
            "rating": pd.array([1.5, 2.5], dtype="Float64"),
        }
    )
    df = load_ratings(source)
    assert df["user"].dtype == np.int64
    assert df["item"].tolist() == ["x", "y"]
    assert df["rating"].dtype == np.float32


def test_ids_mixing_ints_and_strings_become_strings():
    source = pd.DataFrame(
        {"user": np.array([1, "a"], dtype=object), "item": [1, 2], "rating": [1, 2]}
    )
    df = load_ratings(source)
    assert df["user"].tolist() == ["1", "a"]


def test_non_integer_float_id():
    source = pd.DataFrame({"user": [1.0, 2.5], "item": [1, 2], "rating": [1, 2]})
    with pytest.raises(ValueError, match=r"user id 2.5 at row 1 is not a whole number"):
        load_ratings(source)


def test_fit_refuses_float_ids_that_load_ratings_refuses():
    from latentfactors import BiasedMF

    users = np.array([1.0, 0.5, 2.0])
    items, ratings = np.array([1, 2, 3]), np.array([4.0, 3.0, 5.0])
    with pytest.raises(ValueError, match=r"user id 0.5 at row 1 is not a whole number"):
        load_ratings(pd.DataFrame({"user": users, "item": items, "rating": ratings}))
    model = BiasedMF(4, n_epochs=1, random_state=0)
    message = r"^ratings: user id 0.5 at row 1 is not a whole number; ids must be integers or"
    with pytest.raises(ValueError, match=message):
        model.fit((users, items, ratings))
    with pytest.raises(ValueError, match=message.replace("user", "item")):
        model.fit((items, users, ratings))
    with pytest.raises(ValueError, match=r"beyond 2\*\*53"):
        model.fit((np.array([1.0, 2.0**60, 3.0]), items, ratings))
    whole = np.array([1.0, 2.0, 3.0], dtype=object)
    model.fit((whole, items, ratings))  # whole floats are ids, as before
    assert model.user_index_.ids.tolist() == [1.0, 2.0, 3.0]
    assert model.predict([2.0], [2]).shape == (1,)
    for call, what in [
        (lambda: model.predict([0.5], [2]), "predict: user id 0.5"),
        (
            lambda: model.predict(pd.DataFrame({"user": [1.0], "item": [2.5]})),
            "predict: item id 2.5",
        ),
        (lambda: model.evaluate((users, items, ratings)), "ratings: user id 0.5"),
        (lambda: model.recommend_all(1, users=[1.0, 0.5]), "users: id 0.5"),
        (lambda: model.recommend_all(1, exclude=(users, items)), "exclude: user id 0.5"),
        (lambda: model.recommend_for((np.array([1.5]), np.array([4.0]))), "rated items: id 1.5"),
    ]:
        with pytest.raises(ValueError, match=rf"^{what} at row \d is not a whole number"):
            call()


def test_unsupported_id_values():
    source = pd.DataFrame({"user": [(1, 2), (3, 4)], "item": [1, 2], "rating": [1, 2]})
    with pytest.raises(ValueError, match=r"user ids must be integers or strings"):
        load_ratings(source)


def test_canonicalize_directly():
    out = canonicalize(pd.DataFrame({"user": [1], "item": [2], "rating": [3]}), source="x.csv")
    assert_canonical(out, timestamp=False)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['rating'\] in x.csv"):
        canonicalize(pd.DataFrame({"user": [1], "item": [2]}), source="x.csv")


# -------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"ratings file not found: .*nope.csv"):
        load_ratings(tmp_path / "nope.csv")


@pytest.mark.parametrize("text", ["", "\n\n  \n", "\r\n"])
def test_empty_file(tmp_path, text):
    with pytest.raises(ValueError, match=r"is empty: there are no ratings to read"):
        load_ratings(write(tmp_path, "e.csv", text))


def test_header_only_file(tmp_path):
    with pytest.raises(ValueError, match=r"no ratings in .*h.csv: the data is empty"):
        load_ratings(write(tmp_path, "h.csv", "user,item,rating\n"))


def test_empty_dataframe():
    with pytest.raises(ValueError, match=r"no ratings: the data is empty"):
        load_ratings(pd.DataFrame({"user": [], "item": [], "rating": []}))


def test_missing_column(tmp_path):
    path = write(tmp_path, "r.csv", "user,item,stars\n1,2,3\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['rating'\] in .*r.csv; found"):
        load_ratings(path)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['item', 'rating'\]; found"):
        load_ratings(pd.DataFrame({"user": [1]}))


def test_non_numeric_rating_names_the_line(tmp_path):
    path = write(tmp_path, "r.csv", "user,item,rating\n1,2,3\n1,3,4\n2,3,abc\n")
    with pytest.raises(ValueError, match=r"non-numeric rating 'abc' at line 4 in .*r.csv"):
        load_ratings(path)


def test_nan_rating(tmp_path):
    path = write(tmp_path, "r.csv", "user,item,rating\n1,2,3\n1,3,\n")
    with pytest.raises(ValueError, match=r"1 rating\(s\) are NaN or infinite in .*line 3"):
        load_ratings(path)
    with pytest.raises(ValueError, match=r"2 rating\(s\) are NaN or infinite, e.g. row 0"):
        load_ratings(pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [np.nan, None]}))


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_inf_rating(value):
    source = pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": [1.0, value]})
    with pytest.raises(ValueError, match=r"1 rating\(s\) are NaN or infinite, e.g. row 1"):
        load_ratings(source)


def test_inf_rating_in_file(tmp_path):
    path = write(tmp_path, "r.csv", "user,item,rating\n1,2,inf\n")
    with pytest.raises(ValueError, match=r"NaN or infinite in .*line 2"):
        load_ratings(path)


def test_nan_user_id(tmp_path):
    path = write(tmp_path, "r.csv", "user,item,rating\n1,2,3\n,3,4\n")
    with pytest.raises(ValueError, match=r"user ids are missing \(NaN\) in 1 row\(s\) .*line 3"):
        load_ratings(path)


def test_missing_string_item_id():
    source = pd.DataFrame({"user": [1, 2], "item": ["a", None], "rating": [1, 2]})
    with pytest.raises(ValueError, match=r"item ids are missing \(NaN\) in 1 row\(s\), e.g. row 1"):
        load_ratings(source)


def test_bad_timestamp(tmp_path):
    path = write(tmp_path, "r.csv", "user,item,rating,timestamp\n1,2,3,100\n1,3,3,2020-01-01\n")
    with pytest.raises(
        ValueError,
        match=r"mix numbers of seconds \('100' at line 2\) and dates \('2020-01-01' at line 3",
    ):
        load_ratings(path)
    path = write(tmp_path, "r2.csv", "user,item,rating,timestamp\n1,2,3,\n")
    with pytest.raises(ValueError, match=r"timestamp is missing at line 2 in .*r2.csv"):
        load_ratings(path)


def test_missing_datetime_timestamp():
    ts = pd.to_datetime(["2000-01-01", None])
    source = pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": [1, 2], "timestamp": ts})
    with pytest.raises(ValueError, match=r"timestamp is missing at row 1"):
        load_ratings(source)


def test_malformed_file(tmp_path):
    path = write(tmp_path, "bad.csv", "user,item,rating\n1,2,3\n1,2,3,4,5\n")
    with pytest.raises(ValueError, match=r"bad.csv is not a well-formed delimited file"):
        load_ratings(path)
    path = write(tmp_path, "bad.dat", "1::2::3\n1::2::3::4::5\n")
    with pytest.raises(ValueError, match=r"bad.dat is not a well-formed delimited file"):
        load_ratings(path)


def test_binary_file(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"user,item,rating\n1,2,\xff\xfe\x00\x81\n")
    with pytest.raises(ValueError, match=r"model.npz is not a UTF-8 text file"):
        load_ratings(path)


@pytest.mark.parametrize("source", [123, None, [(1, 2, 3)], b"r.csv"])
def test_bad_source_type(source):
    with pytest.raises(TypeError, match=r"source must be a path or a pandas.DataFrame, got"):
        load_ratings(source)


# ---------------------------------------------------------------- duplicates

DUPLICATED = "user,item,rating,timestamp\n1,2,3,10\n1,2,5,30\n2,2,1,5\n1,2,4,20\nu,9,2,1\n"


def test_duplicates_raise_names_pairs_and_suggests_policies(tmp_path):
    path = write(tmp_path, "d.csv", DUPLICATED.replace("u,9", "3,9"))
    with pytest.raises(
        ValueError,
        match=r"2 duplicate \(user, item\) rating\(s\), e.g. \(user=1, item=2\); "
        r"pass duplicates='last'.*duplicates='mean'",
    ):
        load_ratings(path)


def test_duplicates_raise_is_the_default_for_frames():
    source = pd.DataFrame({"user": ["a", "a", "b", "b"], "item": [1, 1, 2, 2], "rating": 1})
    with pytest.raises(ValueError, match=r"\(user='a', item=1\), \(user='b', item=2\)"):
        load_ratings(source)


def test_duplicates_last(tmp_path):
    df = load_ratings(write(tmp_path, "d.csv", DUPLICATED), duplicates="last")
    assert_canonical(df, timestamp=True)
    assert list(df.itertuples(index=False, name=None)) == [
        ("2", 2, 1.0, 5),
        ("1", 2, 4.0, 20),
        ("u", 9, 2.0, 1),
    ]


def test_duplicates_first():
    source = pd.DataFrame(
        {"user": [1, 1, 2, 1], "item": [2, 2, 2, 2], "rating": [3, 5, 1, 4], "timestamp": 0}
    )
    df = load_ratings(source, duplicates="first")
    assert df[["user", "item", "rating"]].values.tolist() == [[1, 2, 3.0], [2, 2, 1.0]]


def test_duplicates_mean(tmp_path):
    path = write(tmp_path, "d.csv", DUPLICATED.replace("u,9", "3,9"))
    df = load_ratings(path, duplicates="mean")
    assert_canonical(df, timestamp=True)
    # (1, 2): mean(3, 5, 4) = 4, latest timestamp 30; order of first appearance
    assert df["user"].tolist() == [1, 2, 3]
    assert df["item"].tolist() == [2, 2, 9]
    assert df["rating"].tolist() == [4.0, 1.0, 2.0]
    assert df["timestamp"].tolist() == [30, 5, 1]
    assert df["user"].dtype == np.int64


def test_duplicates_mean_of_unrepresentable_values():
    source = pd.DataFrame({"user": [1, 1, 1], "item": [1, 1, 1], "rating": [1.0, 2.0, 2.0]})
    df = load_ratings(source, duplicates="mean")
    assert df["rating"].tolist() == [np.float32(5 / 3)]


def test_no_duplicates_any_policy_is_identity():
    source = pd.DataFrame({"user": [1, 2], "item": [1, 1], "rating": [1, 2]})
    frames = [load_ratings(source, duplicates=p) for p in ("raise", "last", "first", "mean")]
    for frame in frames[1:]:
        pd.testing.assert_frame_equal(frame, frames[0])


@pytest.mark.parametrize("policy", ["max", "drop", None, "Last"])
def test_bad_duplicates_value(policy):
    source = pd.DataFrame({"user": [1], "item": [1], "rating": [1]})
    with pytest.raises(ValueError, match=r"duplicates must be one of \('raise', 'last'"):
        load_ratings(source, duplicates=policy)


# -------------------------------------------------------------------- IdIndex


def test_idindex_int_ids_sorted_and_round_trip():
    index = IdIndex([30, 10, 20, 10])
    assert len(index) == 3
    assert index.ids.tolist() == [10, 20, 30]
    codes = index.encode([20, 30, 10, 20])
    assert codes.dtype == np.int32
    assert codes.tolist() == [1, 2, 0, 1]
    assert index.decode(codes).tolist() == [20, 30, 10, 20]


def test_idindex_string_ids():
    index = IdIndex(pd.Series(["b", "a", "c", "a"]))
    assert index.ids.dtype.kind == "U"
    assert index.ids.tolist() == ["a", "b", "c"]
    assert index.encode(np.array(["c", "a"], dtype=object)).tolist() == [2, 0]
    assert index.decode([1]).tolist() == ["b"]


def test_idindex_unknown_ids_are_minus_one():
    index = IdIndex([1, 2, 3])
    assert index.encode([3, 99, -1, 1]).tolist() == [2, -1, -1, 0]
    assert index.encode([99, -1]).tolist() == [-1, -1]  # all new, of the right type
    strings = IdIndex(["1", "2"])
    assert strings.encode(["2", "zz"]).tolist() == [1, -1]
    assert strings.encode(["zz"]).tolist() == [-1]
    # one id of the other type among known ones is just unknown
    assert index.encode(np.array([1, "a"], dtype=object)).tolist() == [0, -1]


@pytest.mark.parametrize(
    "known, given, words",
    [
        ([1, 2, 3], ["1", "a"], ("strings", "numbers", "'1', 'a'", ".astype(int)")),
        ([1, 2, 3], np.array(["1"], dtype=object), ("strings", "numbers", ".astype(int)")),
        (["1", "2"], [1, 2], ("numbers", "strings", "'1', '2'", ".astype(str)")),
        (["1", "2"], np.array([1.0]), ("numbers", "strings", ".astype(str)")),
        (["1", "2"], np.array([7], dtype=object), ("numbers", "strings")),
    ],
)
def test_idindex_refuses_ids_of_the_other_type(known, given, words):
    """Not one id known because they are all of the other type: a mistake, said plainly."""
    with pytest.raises(TypeError, match="no id is known") as info:
        IdIndex(known).encode(given)
    for word in words:
        assert word in str(info.value)


def test_idindex_encode_scalar_and_empty():
    index = IdIndex([5, 6])
    assert index.encode(6).tolist() == [1]
    empty = index.encode([])
    assert empty.dtype == np.int32 and empty.shape == (0,)


def test_idindex_float_input_against_int_index():
    index = IdIndex(np.array([1, 2, 3], dtype=np.int64))
    codes = index.encode(np.array([2.0, 3.0, 2.5, np.nan, np.inf, 7.0]))
    assert codes.dtype == np.int32
    assert codes.tolist() == [1, 2, -1, -1, -1, -1]


def test_idindex_mixed_input_against_int_index():
    index = IdIndex([1, 2])
    values = np.array([2, "a", None, 1.0], dtype=object)
    assert index.encode(values).tolist() == [1, -1, -1, 0]


def test_idindex_rejects_mixed_type_ids():
    with pytest.raises(TypeError, match=r"ids must be all integers or all strings"):
        IdIndex(np.array([1, "a"], dtype=object))


def test_idindex_rejects_missing_ids():
    with pytest.raises(ValueError, match=r"ids contain missing values"):
        IdIndex([1.0, np.nan])
    with pytest.raises(ValueError, match=r"ids contain missing values"):
        IdIndex(np.array(["a", None], dtype=object))


def test_idindex_object_ints_are_int64():
    index = IdIndex(np.array([3, 1, 2], dtype=object))
    assert index.ids.dtype == np.int64
    assert index == IdIndex([1, 2, 3])


def test_idindex_decode_out_of_range():
    index = IdIndex([10, 20])
    with pytest.raises(IndexError, match=r"code 2 is out of range for an IdIndex of 2 ids"):
        index.decode([0, 2])
    with pytest.raises(IndexError, match=r"code -1 is out of range"):
        index.decode(np.array([-1], dtype=np.int32))


def test_idindex_decode_empty_and_non_integer_codes():
    index = IdIndex(["a", "b"])
    assert index.decode([]).tolist() == []
    with pytest.raises(TypeError, match=r"codes must be integers, got dtype float64"):
        index.decode([0.0, 1.0])
    with pytest.raises(TypeError, match=r"codes must be integers, got dtype bool"):
        index.decode([True, False])


def test_idindex_len_contains_eq_repr():
    index = IdIndex(["x", "y", "z", "w"])
    assert len(index) == 4
    assert "x" in index and "q" not in index and 1 not in index
    assert 2 in IdIndex([1, 2]) and "2" not in IdIndex([1, 2])
    assert index == IdIndex(["w", "z", "y", "x", "x"])
    assert index != IdIndex(["x", "y", "z"])
    assert IdIndex([1, 2]) != IdIndex(["1", "2"])
    assert IdIndex([1, 2]) != [1, 2]
    assert repr(index) == "IdIndex(n=4: ['w', 'x', 'y', ...])"
    with pytest.raises(TypeError, match=r"unhashable"):
        hash(index)


def test_idindex_empty():
    index = IdIndex([])
    assert len(index) == 0
    assert index.encode([1, 2]).tolist() == [-1, -1]


@pytest.mark.parametrize(
    "ids",
    [[7, 3, 5], ["b", "a", "ccc", "é"], np.array([2**40, 1], dtype=np.int64)],
    ids=["int", "str", "int64"],
)
def test_idindex_to_array_from_array_through_npz(tmp_path, ids):
    index = IdIndex(ids)
    saved = index.to_array()
    assert saved.dtype != object
    np.savez(tmp_path / "ids.npz", ids=saved)
    with np.load(tmp_path / "ids.npz", allow_pickle=False) as npz:
        loaded = IdIndex.from_array(npz["ids"])
    assert loaded == index
    assert loaded.ids.dtype.kind == index.ids.dtype.kind
    np.testing.assert_array_equal(loaded.encode(ids), index.encode(ids))
    assert loaded.decode([0]).tolist() == index.decode([0]).tolist()


def test_idindex_string_ids_saved_as_unicode_not_object(tmp_path):
    index = IdIndex(pd.Series(["u2", "u1"], dtype=object))
    assert index.to_array().dtype.kind == "U"
    np.save(tmp_path / "ids.npy", index.to_array(), allow_pickle=False)
    loaded = np.load(tmp_path / "ids.npy", allow_pickle=False)
    assert IdIndex.from_array(loaded).encode(["u1", "u2"]).tolist() == [0, 1]


def test_idindex_from_array_keeps_code_order():
    index = IdIndex.from_array(np.array(["z", "a"]))
    assert index.encode(["z", "a"]).tolist() == [0, 1]


def test_idindex_from_array_validates():
    with pytest.raises(ValueError, match=r"saved ids contain duplicates"):
        IdIndex.from_array(np.array([1, 1]))
    with pytest.raises(ValueError, match=r"saved ids must be a 1-D array, got shape \(1, 2\)"):
        IdIndex.from_array(np.array([[1, 2]]))


def test_idindex_from_canonical_frame(tmp_path):
    df = load_ratings(write(tmp_path, "r.csv", "user,item,rating\nb,1,4\na,2,3\nb,2,5\n"))
    users, items = IdIndex(df["user"]), IdIndex(df["item"])
    assert users.encode(df["user"]).tolist() == [1, 0, 1]
    assert items.encode(df["item"]).tolist() == [0, 1, 1]
    assert users.to_array().dtype.kind == "U"


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int64, st.integers(0, 50), elements=st.integers(-(2**62), 2**62)))
def test_idindex_int_round_trip_property(ids):
    index = IdIndex(ids)
    assert len(index) == len(np.unique(ids))
    codes = index.encode(ids)
    assert codes.dtype == np.int32
    assert ((codes >= 0) & (codes < len(index))).all()
    np.testing.assert_array_equal(index.decode(codes), ids)
    assert IdIndex.from_array(index.to_array()) == index


# numpy unicode arrays drop trailing NUL characters, so ids never contain them
id_text = st.text(st.characters(exclude_characters="\x00"), max_size=8)


@settings(max_examples=60, deadline=None)
@given(st.lists(id_text, max_size=30))
def test_idindex_string_round_trip_property(ids):
    index = IdIndex(np.array(ids, dtype=object))
    codes = index.encode(np.array(ids, dtype=object))
    assert ((codes >= 0) & (codes < len(index))).all()
    assert index.decode(codes).tolist() == ids
    saved = index.to_array()
    assert saved.dtype.kind == "U" or len(ids) == 0
    assert IdIndex.from_array(saved).decode(codes).tolist() == ids


@pytest.mark.parametrize("kind", [object, str])
def test_idindex_holds_ids_pandas_cannot_store_in_arrow(kind):
    """A lone surrogate is a Python string that Arrow (pandas' string storage with
    pyarrow installed) cannot encode; ids must not depend on that storage."""
    ids = ["\ud800", "a", "\udfff"]
    index = IdIndex(np.array(ids, dtype=kind))
    codes = index.encode(np.array(ids + ["zz"], dtype=kind))
    assert index.decode(codes[:3]).tolist() == ids and codes[3] == -1
    assert "\ud800" in index
    again = IdIndex.from_array(index.to_array())
    assert (
        again == index and again.encode(np.array(ids, dtype=object)).tolist() == codes[:3].tolist()
    )


def test_ratings_beyond_float32_are_rejected(tmp_path):
    path = write(tmp_path, "r.csv", "user,item,rating\n1,10,4.5\n2,20,1e39\n")
    with pytest.raises(ValueError, match=r"1e\+39 at row 1 in .*beyond float32's range"):
        load_ratings(path)


def test_ids_beyond_int64_are_kept_exactly(tmp_path):
    big = 2**63 + 12345  # a hashed id, say
    path = write(tmp_path, "r.csv", f"user,item,rating\n{big},1,4\n5,2,3\n")
    df = load_ratings(path)
    assert df["user"].dtype == np.uint64 and df["user"].tolist() == [big, 5]
    huge = 10**20  # beyond uint64: kept as its decimal string
    path = write(tmp_path, "s.csv", f"user,item,rating\n{huge},1,4\n5,2,3\n")
    assert load_ratings(path)["user"].tolist() == [str(huge), "5"]
    path = write(tmp_path, "f.csv", "user,item,rating\n1e19,1,4\n5.5e0,2,3\n")
    with pytest.raises(ValueError, match="not a whole number|beyond 2\\*\\*53"):
        load_ratings(path)
    path = write(tmp_path, "g.csv", "user,item,rating\n1e19,1,4\n5.0,2,3\n")
    with pytest.raises(ValueError, match=r"1e\+19 at line 2 .*beyond 2\*\*53"):
        load_ratings(path)


def test_boolean_ratings_are_refused(tmp_path):
    path = write(tmp_path, "r.csv", "user,item,rating\n1,10,True\n2,20,False\n")
    with pytest.raises(ValueError, match="ratings are True/False"):
        load_ratings(path)


def test_zero_padded_ids_stay_apart_when_read_as_text(tmp_path):
    path = tmp_path / "padded.csv"
    path.write_text("user,item,rating\n01,7,1\n1,7,5\n")
    with pytest.raises(ValueError, match="duplicate"):  # read as numbers, 01 is 1 (documented)
        load_ratings(path)
    frame = load_ratings(pd.read_csv(path, dtype=str))  # the documented way to keep them apart
    assert frame["user"].tolist() == ["01", "1"] and frame["rating"].tolist() == [1.0, 5.0]


@pytest.mark.parametrize(
    "ids, what",
    [
        (np.array([True, False]), "booleans"),
        (np.array([1 + 2j, 3j]), "complex numbers"),
        (np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"), "dates"),
        (np.array([1, 2], dtype="timedelta64[s]"), "time spans"),
        (np.array([b"a", b"b"]), "values"),
    ],
)
def test_ids_that_are_neither_integers_nor_strings_are_refused(ids, what):
    with pytest.raises(TypeError, match=f"ids must be integers or strings, got .*{what}"):
        IdIndex(ids)
    with pytest.raises(TypeError, match=what):  # nor looked up: True would match id 1
        IdIndex([0, 1, 2]).encode(ids)


def test_string_ids_ending_in_nul_are_refused():
    """NumPy's unicode arrays drop trailing NULs: "a\\x00" would merge with "a"."""
    with pytest.raises(ValueError, match=r"id 'a\\x00' ends with a NUL character"):
        IdIndex(np.array(["a", "a\x00", "b"], dtype=object))
    inner = IdIndex(np.array(["a", "b\x00c"], dtype=object))  # a NUL inside is kept
    assert list(inner.ids) == ["a", "b\x00c"]
    assert list(inner.encode(np.array(["b\x00c", "b"], dtype=object))) == [1, -1]


def test_fit_refuses_ids_that_do_not_encode_before_any_kernel_runs(monkeypatch):
    from latentfactors import BiasedMF

    frame = pd.DataFrame({"user": ["a", "a\x00", "b"], "item": [1, 2, 1], "rating": [4.0, 3, 5]})
    with pytest.raises(ValueError, match="ends with a NUL character"):
        BiasedMF(2, n_epochs=1).fit(frame)
    # however an id came to be missing from its own index, fit stops before the kernels
    monkeypatch.setattr(IdIndex, "encode", lambda self, values: np.full(len(values), -1, np.int32))
    with pytest.raises(ValueError, match="user id 'a' does not map back to itself"):
        BiasedMF(2, n_epochs=1).fit(frame.iloc[[0, 2]])


def test_spaces_around_ids_in_files_are_dropped_on_both_sides(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_text("user\t item \trating\n a \tx \t4\na\t x\t3\nb \ty\t5\n")
    frame = load_ratings(path, duplicates="mean")
    assert frame["user"].tolist() == ["a", "b"] and frame["item"].tolist() == ["x", "y"]
    assert frame["rating"].tolist() == [3.5, 5.0]
    comma = tmp_path / "r.csv"
    comma.write_text("user , item,rating \nu1 ,10 ,4\nu1, 11,3\n")
    frame = load_ratings(comma)
    assert frame["user"].tolist() == ["u1", "u1"] and frame["item"].tolist() == [10, 11]


def test_booleans_among_integer_ids_are_refused_wherever_they_stand():
    for ids in ([1, True, 2], [0, False, 3], [True, 1, 2]):
        with pytest.raises(TypeError, match="all integers or all strings"):
            IdIndex(np.array(ids, dtype=object))


def test_python_integers_beyond_2_53_in_lists_stay_exact():
    """NumPy reads [5, 2**64 - 1] as float64; ids are kept as integers instead."""
    from latentfactors import BiasedMF

    index = IdIndex([5, 2**64 - 1, 2**63])
    assert index.ids.dtype == np.uint64 and index.ids.tolist() == [5, 2**63, 2**64 - 1]
    assert index.encode([2**63 + 1, 2**64 - 1, 5]).tolist() == [-1, 2, 0]
    with pytest.raises(ValueError, match="float ids beyond 2\\*\\*53"):
        index.encode(np.array([2.0**63]))
    model = BiasedMF(2, n_epochs=2, random_state=0).fit(
        ([5, 2**64 - 1, 2**63], [1, 2, 2], [4.0, 3.0, 5.0])
    )
    alone = model.predict([2**64 - 1], [2])
    assert model.predict([5, 2**64 - 1], [2, 2])[1] == alone[0]
    assert model.predict([2**63 + 1], [2])[0] != alone[0]  # unknown: the global mean path
    assert model.recommend(2**64 - 1, 1)["item"].tolist() == [1]
