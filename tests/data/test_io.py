from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlwright.data.io import read_table, require_column
from mlwright.errors import ColumnError, DataError, DataSourceError


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(
    ("sep", "name"), [(",", "comma"), (";", "semi"), ("\t", "tab"), ("|", "pipe")]
)
def test_csv_delimiter_is_detected(tmp_path: Path, sep: str, name: str) -> None:
    rows = [sep.join(["a", "b", "label"])] + [
        sep.join([str(i), f"{i * 0.5}", "x"]) for i in range(30)
    ]
    path = write(tmp_path / f"{name}.csv", "\n".join(rows) + "\n")
    frame, info = read_table(path)
    assert list(frame.columns) == ["a", "b", "label"]
    assert frame.shape == (30, 3)
    assert info.delimiter == sep
    assert info.kind == "csv"
    assert frame["b"].iloc[3] == pytest.approx(1.5)


def test_quoted_fields_keep_delimiters_and_newlines(tmp_path: Path) -> None:
    text = 'id,comment,y\n1,"hello, world",a\n2,"two\nlines",b\n3,"say ""hi""",a\n'
    frame, _ = read_table(write(tmp_path / "q.csv", text))
    assert frame["comment"].tolist() == ["hello, world", "two\nlines", 'say "hi"']


def test_non_utf8_csv_is_decoded_and_the_encoding_reported(tmp_path: Path) -> None:
    rows = ["ville;prix"] + [f"Montréal;{i}" for i in range(50)] + ["Genève;3", "Zürich;4"]
    path = write(tmp_path / "fr.csv", "\n".join(rows) + "\n", encoding="cp1252")
    frame, info = read_table(path)
    assert info.encoding is not None
    assert info.encoding.lower() not in ("utf-8", "utf-8-sig")
    assert frame["ville"].iloc[0] == "Montréal"
    assert "Zürich" in set(frame["ville"])


def test_utf8_bom_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfa,b\n1,2\n")
    frame, info = read_table(path)
    assert list(frame.columns) == ["a", "b"]
    assert info.encoding == "utf-8-sig"


@pytest.mark.parametrize(("sep", "suffix"), [(";", "csv"), ("\t", "tsv"), ("|", "txt")])
def test_a_decimal_comma_is_detected(tmp_path: Path, sep: str, suffix: str) -> None:
    text = f"a{sep}b{sep}n\n1,5{sep}2,25{sep}3\n-0,75{sep}10{sep}4\n"
    frame, info = read_table(write(tmp_path / f"eu.{suffix}", text))
    assert info.decimal == ","
    assert frame["a"].tolist() == [1.5, -0.75]
    assert frame["b"].tolist() == [2.25, 10.0]
    assert frame["n"].tolist() == [3, 4]


def test_thousands_are_read_when_the_file_is_european(tmp_path: Path) -> None:
    text = (
        "price;count;ambiguous;day;code\n"
        "1.234,5;12.000;1.234;01.02.2024;1.5a\n"
        "7,25;3;2.500;02.02.2024;x\n"
        ";1.000.000;1;;y\n"
    )
    frame, info = read_table(write(tmp_path / "eu.csv", text))
    assert info.decimal == ","
    assert frame["price"].tolist()[:2] == [1234.5, 7.25]
    assert pd.isna(frame["price"].iloc[2])
    assert frame["count"].tolist() == [12000, 3, 1000000]
    assert frame["ambiguous"].tolist() == [1234, 2500, 1]  # the file's convention decides
    assert frame["day"].tolist()[:2] == ["01.02.2024", "02.02.2024"]  # dates stay text
    assert frame["code"].tolist() == ["1.5a", "x", "y"]


@pytest.mark.parametrize(
    ("text", "column", "expected"),
    [  # comma-separated: a comma is never a decimal mark, quoted or not
        ('a,b\n"1,5",2\n"2,5",3\n', "a", ["1,5", "2,5"]),
        ("a,b\n1.5,2\n2.25,3\n", "a", [1.5, 2.25]),
        # semicolons with decimal points: 1,234 groups thousands or is a decimal; left as text
        ("a;b\n1.5;1,234\n2.5;2,345\n", "b", ["1,234", "2,345"]),
        ("a;b\n1.5;1,234\n2.5;2,345\n", "a", [1.5, 2.5]),
        # both marks in one file: nothing is guessed, the commas stay text
        ("a;b\n1,5;2.5\n", "a", ["1,5"]),
        ("a;b\n1,5;2.5\n", "b", [2.5]),
    ],
)
def test_a_file_with_decimal_points_is_never_misread(
    tmp_path: Path, text: str, column: str, expected: list[object]
) -> None:
    frame, info = read_table(write(tmp_path / "t.csv", text))
    assert info.decimal == "."
    assert frame[column].tolist() == expected


def test_a_file_that_shows_no_mark_is_read_with_the_one_given(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a;b\n1;1.234\n2;2.500\n")
    assert read_table(path)[0]["b"].tolist() == [1.234, 2.5]
    frame, info = read_table(path, decimal=",")
    assert (info.decimal, frame["b"].tolist()) == (",", [1234, 2500])
    shown = write(tmp_path / "dots.csv", "a;b\n1.5;1.234\n")  # the file's own mark wins
    assert read_table(shown, decimal=",")[1].decimal == "."
    plain = write(tmp_path / "plain.csv", "a,b\n1,2\n")  # and a comma delimiter always
    assert read_table(plain, decimal=",")[1].decimal == "."


def test_a_model_reads_new_files_with_its_training_files_decimal_mark(tmp_path: Path) -> None:
    import mlwright as mw

    r = np.random.default_rng(0)
    x = np.round(r.normal(size=150) * 1000, 2)
    k = r.integers(1, 9, size=150)
    y = np.where(x / 1000 + r.normal(size=150) * 0.3 > 0, "yes", "no")
    european = pd.DataFrame({"x": [f"{v:,.2f}" for v in x], "k": k, "y": y})
    european["x"] = european["x"].str.replace(",", "_").str.replace(".", ",")
    european["x"] = european["x"].str.replace("_", ".")
    european.to_csv(tmp_path / "train.csv", sep=";", index=False)
    model = mw.train(str(tmp_path / "train.csv"), target="y", families=("linear",), max_trials=1,
                     n_folds=2, tracker="none", out=str(tmp_path / "pkg"))  # fmt: skip
    assert model.recipe.data.source["decimal"] == ","
    notes = mw.profile(str(tmp_path / "train.csv"), target="y").notes
    assert any("decimal comma" in note for note in notes)
    assert model.schema["x"].kind == "numeric"
    loaded = mw.load(str(tmp_path / "pkg"))
    # new rows whose numbers show no decimal mark: 2.500 is two thousand five hundred
    (tmp_path / "new.csv").write_text("x;k\n2.500;3\n-1.250;4\n7;5\n")
    want = loaded.predict(pd.DataFrame({"x": [2500.0, -1250.0, 7.0], "k": [3, 4, 5]}))
    pd.testing.assert_frame_equal(loaded.predict(str(tmp_path / "new.csv")), want)
    (tmp_path / "labelled.csv").write_text("x;k;y\n2.500,5;3;yes\n-1.250;4;no\n")
    assert loaded.evaluate(str(tmp_path / "labelled.csv"))["accuracy"] == 1.0


def test_thousands_of_columns(tmp_path: Path) -> None:
    wide = pd.DataFrame(
        np.arange(20 * 2500).reshape(20, 2500), columns=[f"c{i}" for i in range(2500)]
    )
    path = tmp_path / "wide.csv"
    wide.to_csv(path, index=False)
    frame, _ = read_table(path)
    assert frame.shape == (20, 2500)
    assert frame["c2499"].iloc[-1] == wide["c2499"].iloc[-1]


def test_gzipped_csv(tmp_path: Path) -> None:
    path = tmp_path / "d.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("a,b\n1,x\n2,y\n")
    frame, _ = read_table(path)
    assert frame.shape == (2, 2)


def test_parquet_round_trip(tmp_path: Path, frame: pd.DataFrame) -> None:
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    read, info = read_table(path)
    pd.testing.assert_frame_equal(read, frame)
    assert info.kind == "parquet"


def test_frame_and_arrow_inputs(frame: pd.DataFrame) -> None:
    same, info = read_table(frame)
    assert same is frame
    assert info.kind == "frame"
    from_arrow, info = read_table(pa.table(frame))
    pd.testing.assert_frame_equal(from_arrow, frame)
    assert info.location == "<Table>"


def test_sql_query(shop: Path) -> None:
    frame, info = read_table(
        f"sqlite:///{shop}", sql="select amount, returned from orders where id < 10"
    )
    assert frame.shape == (10, 2)
    assert info.kind == "sql"


def test_sql_errors(shop: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{shop}"
    with pytest.raises(DataSourceError, match="no such table: nope"):
        read_table(url, sql="select * from nope")
    with pytest.raises(DataSourceError, match="a query is needed"):
        read_table(url)
    with pytest.raises(DataSourceError, match="does not exist"):
        read_table(f"sqlite:///{tmp_path / 'missing.db'}", sql="select 1")
    assert not (tmp_path / "missing.db").exists()  # nothing was created
    with pytest.raises(DataSourceError, match="has a header but no data rows"):
        read_table(url, sql="select * from orders where id < 0")
    with pytest.raises(DataSourceError, match="not a valid database URL"):
        read_table("not a url://x", sql="select 1")
    with pytest.raises(DataSourceError, match="not a database URL"):
        read_table(str(shop), sql="select 1")


def test_sql_password_is_never_shown() -> None:
    with pytest.raises(DataSourceError) as err:
        read_table("nosuchdialect://user:s3cret@host/db", sql="select 1")
    assert "s3cret" not in str(err.value)


@pytest.mark.parametrize(
    ("setup", "pattern"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_bytes(b""), "is empty"),
        (lambda p: p.write_bytes(b"  \n \n"), "only whitespace"),
        (lambda p: p.write_bytes(b"a,b,c\n"), "header but no data rows"),
        (
            lambda p: p.write_bytes(b"a,b,a\n1,2,3\n"),
            r"duplicate column names: 'a' at positions \[1, 3\]",
        ),
        (lambda p: p.write_bytes(b"a,b\n1,2\n3,4,5,6\n"), "cannot be parsed as comma-separated"),
        (lambda p: p.write_bytes(bytes(range(256)) * 40), "not a text file|not text"),
    ],
    ids=[
        "missing",
        "directory",
        "empty",
        "whitespace",
        "header-only",
        "duplicates",
        "ragged",
        "binary",
    ],
)
def test_bad_csv_files(tmp_path: Path, setup, pattern: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.csv"
    setup(path)
    with pytest.raises(DataError, match=pattern):
        read_table(path)


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1" + b"\x00garbage" * 20)
    with pytest.raises(DataSourceError, match="not a readable Parquet file"):
        read_table(path)


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    path.write_bytes(b"stuff")
    with pytest.raises(DataSourceError, match=r"unsupported extension '\.xlsx'"):
        read_table(path)


def test_duplicate_columns_in_frames() -> None:
    dup = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(ColumnError, match="duplicate column names"):
        read_table(dup)


def test_empty_frame_and_unknown_type() -> None:
    with pytest.raises(DataSourceError, match="no data rows"):
        read_table(pd.DataFrame({"a": []}))
    with pytest.raises(DataSourceError, match="cannot read data of type int"):
        read_table(42)


def test_missing_column_suggests_close_names(frame: pd.DataFrame) -> None:
    with pytest.raises(
        ColumnError, match=r"target 'churn' is not in the data; did you mean 'churned'"
    ):
        require_column(frame, "churn", "target")
    with pytest.raises(ColumnError, match="the columns are 'x1', 'x2'"):
        require_column(frame, "zzzz", "target")
