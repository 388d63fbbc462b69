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
