"""A SQL source is only ever read: `--sql` runs one SELECT (or WITH … SELECT) statement on a
connection the database itself keeps read-only, so a hostile or mistaken query cannot drop a
table, write a file or attach another database."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlwright.data.io import read_table
from mlwright.data.sql import check_query, read_only_setup
from mlwright.errors import DataSourceError
from tests.conftest import CliResult


def _rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        (n,) = conn.execute("select count(*) from orders").fetchone()
    conn.close()
    return int(n)


def test_drop_table_is_refused_and_the_table_survives(
    shop: Path, cli: Callable[..., CliResult]
) -> None:
    url = f"sqlite:///{shop}"
    with pytest.raises(DataSourceError, match=r"DROP.*only .*SELECT"):
        read_table(url, sql="DROP TABLE orders")
    done = cli("profile", url, "--target", "returned", "--sql", "drop table orders")
    assert done.code == 1 and "DROP" in done.err and "fix:" in done.err
    assert _rows(shop) == 40


def test_vacuum_into_writes_no_file(shop: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    with pytest.raises(DataSourceError, match=r"VACUUM"):
        read_table(f"sqlite:///{shop}", sql=f"VACUUM INTO '{copy}'")
    assert not copy.exists()


def test_attach_is_refused_and_creates_no_database(shop: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    for query in (f"ATTACH DATABASE '{other}' AS other", f"attach 'file:{other}?mode=rwc' as o"):
        with pytest.raises(DataSourceError, match=r"ATTACH"):
            read_table(f"sqlite:///{shop}", sql=query)
    assert not other.exists()


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("select * from orders; drop table orders", r"2 statements"),
        ("select 1; select 2", r"2 statements"),
        ("insert into orders values (99, 1.0, 'no')", r"INSERT"),
        ("update orders set amount = 0", r"UPDATE"),
        ("with x as (select 1) delete from orders", r"DELETE"),
        ("with d as (delete from orders returning *) select * from d", r"DELETE"),
        ("select * into copy from orders", r"INTO"),
        ("pragma writable_schema = 1", r"PRAGMA"),
        ("create table t2 (x)", r"CREATE"),
        ("", r"a query is needed"),
        (" ; -- nothing", r"empty"),
    ],
)
def test_anything_but_one_select_is_refused_by_name(shop: Path, query: str, named: str) -> None:
    with pytest.raises(DataSourceError, match=named) as err:
        read_table(f"sqlite:///{shop}", sql=query)
    assert err.value.fix and "select" in err.value.fix.lower()
    assert _rows(shop) == 40


@pytest.mark.parametrize(
    "query",
    [
        "select amount, returned from orders where id < 10",
        "  -- the first ten\nSELECT amount, returned FROM orders WHERE id < 10;",
        "with first as (select * from orders where id < 10) select amount, returned from first",
        "select amount, replace(returned, 'x', 'y') as returned from orders where id < 10",
        "select amount, returned from orders where returned != 'drop table orders;' and id < 10",
    ],
)
def test_select_queries_still_read(shop: Path, query: str) -> None:
    frame, info = read_table(f"sqlite:///{shop}", sql=query)
    assert frame.shape == (10, 2) and info.kind == "sql"


def test_the_sqlite_connection_itself_refuses_writes(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the statement check (patched away here), SQLite's read-only mode and authorizer
    still refuse: the statement check is the first line, not the only one."""
    import mlwright.data.sql as sql

    monkeypatch.setattr(sql, "check_query", lambda query: None)
    monkeypatch.chdir(tmp_path)
    copy = tmp_path / "copy.db"
    for query in (
        "drop table orders",
        "delete from orders",
        f"vacuum into '{copy}'",
        "attach 'x.db' as x",
        "attach 'file:y.db?mode=rwc' as y",
        "pragma query_only = 0",
    ):
        with pytest.raises(DataSourceError, match=r"authoriz|read-?only") as err:
            read_table(f"sqlite:///{shop}", sql=query)
        assert err.value.fix and "SELECT" in err.value.fix
    assert _rows(shop) == 40
    assert not copy.exists() and not (tmp_path / "x.db").exists()
    assert not (tmp_path / "y.db").exists()


def test_the_check_uses_a_sql_tokenizer_not_a_pattern() -> None:
    check_query("select ';drop table t' as x, \"update\" from t -- delete")
    check_query("select * from t where update_time > 1 /* ; insert */")
    with pytest.raises(DataSourceError, match="DELETE"):
        check_query("select 1; delete from t")


@pytest.mark.parametrize(
    ("url", "statements"),
    [
        ("postgresql://u:secret@db.example/shop", ("SET TRANSACTION READ ONLY",)),
        ("postgresql+psycopg://u@db/shop", ("SET TRANSACTION READ ONLY",)),
        ("postgresql+pg8000://u@db/shop", ("SET TRANSACTION READ ONLY",)),
        ("mysql+pymysql://u@db/shop", ("START TRANSACTION READ ONLY",)),
        ("mariadb://u@db/shop", ("START TRANSACTION READ ONLY",)),
        ("oracle://u@db/shop", ("SET TRANSACTION READ ONLY",)),
    ],
)
def test_server_databases_run_the_query_in_a_read_only_transaction(
    url: str, statements: tuple[str, ...]
) -> None:
    import sqlalchemy as sa

    setup = read_only_setup(sa.engine.make_url(url))
    assert setup.statements == statements and setup.enforced


def test_postgres_runs_the_read_only_setup_before_the_query(
    shop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fake engine stands for Postgres: the transaction is made read-only before the query, on
    the same connection, and rolled back afterwards."""
    import sqlalchemy as sa

    import mlwright.data.io as io

    executed: list[str] = []

    class FakeResult:
        returns_rows = True

        def keys(self) -> list[str]:
            return ["amount", "returned"]

        def fetchall(self) -> list[tuple[Any, ...]]:
            return [(1.5, "yes"), (3.0, "no")]

    class FakeConnection:
        def __enter__(self) -> FakeConnection:
            return self

        def __exit__(self, *exc: object) -> None:
            executed.append("closed")  # SQLAlchemy rolls back an open transaction on close

        def exec_driver_sql(self, statement: str) -> None:
            executed.append(statement)

        def execute(self, statement: Any) -> FakeResult:
            executed.append(str(statement))
            return FakeResult()

    class FakeEngine:
        def connect(self) -> FakeConnection:
            return FakeConnection()

        def dispose(self) -> None:
            pass

    made: list[Any] = []

    def create_engine(url: Any, **kwargs: Any) -> FakeEngine:
        made.append((url, kwargs))
        return FakeEngine()

    monkeypatch.setattr(sa, "create_engine", create_engine)
    frame, info = io.read_table(
        "postgresql://u:secret@db.example/shop", sql="select amount, returned from orders"
    )
    assert frame.shape == (2, 2) and "secret" not in info.location
    assert executed == [
        "SET TRANSACTION READ ONLY",
        "select amount, returned from orders",
        "closed",
    ]
    assert made and made[0][0].get_backend_name() == "postgresql"
    with pytest.raises(DataSourceError, match="DROP"):
        io.read_table("postgresql://u@db/shop", sql="drop table orders")
    assert len(made) == 1  # a refused query never connects


def test_a_query_too_large_to_check_is_refused_clearly() -> None:
    query = "select id from orders where id in (" + ", ".join(map(str, range(6000))) + ")"
    with pytest.raises(DataSourceError, match="too large or too deeply nested to check"):
        check_query(query)
