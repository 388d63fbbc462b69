"""Reading a table from a database: one SELECT query, on a connection that cannot write.

mlwright only ever reads a SQL source, and two guards make sure of it:

1. :func:`check_query` parses the query with a SQL tokenizer (sqlparse) and refuses anything but
   one ``SELECT`` (or ``WITH … SELECT``) statement: no second statement, no ``INSERT`` /
   ``UPDATE`` / ``DELETE`` / DDL anywhere in it (a ``WITH`` clause can hide one), no
   ``SELECT … INTO``, no ``ATTACH``, ``PRAGMA`` or ``VACUUM``. The refusal names what it found.
2. The database keeps the connection read-only (:func:`read_only_setup`): SQLite files are opened
   with ``mode=ro`` and ``query_only``, and an authorizer allows nothing but reads; PostgreSQL
   and Oracle run the query in a ``SET TRANSACTION READ ONLY`` transaction, MySQL / MariaDB in
   ``START TRANSACTION READ ONLY``, DuckDB opens the file ``read_only``. Every transaction is
   rolled back. Other engines have only the statement check: connect as a user that may only
   read.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mlwright.errors import DataSourceError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

_URL_MARKER = "://"
_FIX = 'pass one SELECT (or WITH … SELECT) statement, e.g. --sql "select * from orders"'
# keywords that never belong in a read (sqlparse tags DML and DDL; these it leaves as keywords)
_WRITES = {"INTO", "ATTACH", "DETACH", "PRAGMA", "VACUUM", "COPY", "GRANT", "REVOKE", "CALL"}
_SQLITE_READS = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    sqlite3.SQLITE_RECURSIVE,
}
_SQLITE_DENIED_FUNCTIONS = {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"}


@dataclass(frozen=True)
class ReadOnlySetup:
    """How a dialect's connection is kept from writing."""

    statements: tuple[str, ...] = ()  # run first, in the query's own transaction
    connect_args: dict[str, Any] = field(default_factory=dict)
    enforced: bool = False  # whether the database itself refuses writes


def read_only_setup(url: URL) -> ReadOnlySetup:
    """The read-only setup for ``url``'s dialect (SQLite is opened by :func:`_sqlite_engine`)."""
    backend = url.get_backend_name()
    if backend in ("postgresql", "oracle"):
        return ReadOnlySetup(("SET TRANSACTION READ ONLY",), enforced=True)
    if backend in ("mysql", "mariadb"):
        return ReadOnlySetup(("START TRANSACTION READ ONLY",), enforced=True)
    if backend == "duckdb":
        return ReadOnlySetup(connect_args={"read_only": True}, enforced=True)
    if backend == "sqlite":
        return ReadOnlySetup(enforced=True)
    return ReadOnlySetup()


def check_query(query: str) -> None:
    """Refuse anything but one SELECT or WITH … SELECT statement, naming what was found."""
    import sqlparse
    from sqlparse import tokens

    try:
        parsed = sqlparse.parse(query)
    except sqlparse.exceptions.SQLParseError as exc:  # its limits on tokens and nesting
        raise DataSourceError(
            f"the SQL query is too large or too deeply nested to check ({exc})",
            fix="select from a view or a smaller query; long IN (...) lists belong in a table",
        ) from None
    statements = [s for s in parsed if _meaningful(s)]
    if not statements:
        raise DataSourceError("the SQL query is empty", fix=_FIX)
    if len(statements) > 1:
        kinds = "; ".join(_kind(s) for s in statements)
        raise DataSourceError(
            f"the SQL query holds {len(statements)} statements ({kinds}); mlwright runs only one "
            "SELECT statement and never writes to the database",
            fix=_FIX,
        )
    statement: Any = statements[0]
    kind = _kind(statement)
    if kind not in ("SELECT", "WITH"):
        raise DataSourceError(
            f"refusing a {kind} statement: mlwright runs only a SELECT (or WITH … SELECT) query "
            "and never writes to the database",
            fix=_FIX,
        )
    selects = 0
    for token in statement.flatten():
        word = str(token.normalized).upper()
        selects += token.ttype in tokens.Keyword.DML and word == "SELECT"
        if (token.ttype in tokens.Keyword.DML and word != "SELECT") or (
            token.ttype in tokens.Keyword.DDL or (token.ttype in tokens.Keyword and word in _WRITES)
        ):
            raise DataSourceError(
                f"refusing the SQL query: it contains {word} (a {kind} query that writes, or "
                "reaches outside the query); mlwright never writes to the database",
                fix=_FIX,
            )
    if not selects:
        raise DataSourceError("refusing the SQL query: its WITH clause has no SELECT", fix=_FIX)


def _meaningful(statement: Any) -> bool:
    from sqlparse import tokens

    return any(
        not t.is_whitespace and t.ttype not in tokens.Comment and t.ttype is not tokens.Punctuation
        for t in statement.flatten()
    )


def _kind(statement: Any) -> str:
    """The statement's first keyword (SELECT, WITH, DROP, VACUUM, ...)."""
    from sqlparse import tokens

    for token in statement.flatten():
        if token.is_whitespace or token.ttype in tokens.Comment:
            continue
        word = str(token.value)
        return word.upper() if word.isidentifier() else repr(word)
    return "empty"


def query_table(url: str, query: str | None) -> tuple[list[str], list[Any], str]:
    """Run ``query`` on the database at ``url``, read-only: (column names, rows, the URL with
    its password hidden)."""
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc

    if not query:
        raise DataSourceError(
            f"{redact(url)!r} is a database URL, so a query is needed",
            fix='pass --sql "select ... from ..." (or sql=... in Python)',
        )
    if _URL_MARKER not in url:
        raise DataSourceError(
            f"a SQL query was given, but {url!r} is not a database URL",
            fix="pass a SQLAlchemy URL such as sqlite:///shop.db",
        )
    shown = redact(url)
    try:
        parsed = sa.engine.make_url(url)
    except sa_exc.ArgumentError:
        raise DataSourceError(
            f"{shown!r} is not a valid database URL",
            fix="use the SQLAlchemy form dialect://user:password@host/database, "
            "e.g. sqlite:///shop.db",
        ) from None
    check_query(query)
    setup = read_only_setup(parsed)
    sqlite = parsed.get_backend_name() == "sqlite"
    try:
        if sqlite:
            engine = _sqlite_engine(parsed, shown)
        else:
            engine = sa.create_engine(parsed, connect_args=setup.connect_args)
    except (sa_exc.NoSuchModuleError, ImportError) as exc:
        raise DataSourceError(
            f"no driver for {parsed.drivername!r} is installed ({exc})",
            fix="install the database driver package for that dialect",
        ) from None
    try:
        with engine.connect() as conn:  # leaving it rolls the transaction back
            for statement in setup.statements:
                conn.exec_driver_sql(statement)
            if sqlite:
                raw = conn.connection.driver_connection  # our creator's sqlite3 connection
                if isinstance(raw, sqlite3.Connection):
                    raw.set_authorizer(_sqlite_authorizer)
            result = conn.execute(sa.text(query))
            if not result.returns_rows:
                raise DataSourceError(
                    f"the query on {shown!r} returns no table", fix="pass a SELECT query"
                )
            columns = [str(c) for c in result.keys()]  # noqa: SIM118 (a Result, not a dict)
            rows = list(result.fetchall())
    except sa_exc.SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        lowered = detail.lower()
        refused = "authoriz" in lowered or "read-only" in lowered or "readonly" in lowered
        raise DataSourceError(
            f"the query failed on {shown!r}: {detail}"
            + (" (the database is opened read-only)" if refused else ""),
            fix=_FIX if refused else "check the table and column names in the query",
        ) from None
    finally:
        engine.dispose()
    return columns, rows, shown


def _sqlite_engine(url: URL, shown: str) -> Any:
    """An engine whose connections open the SQLite file read-only (``mode=ro``, ``query_only``);
    the authorizer is set per connection once SQLAlchemy has initialised it."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    if url.get_driver_name() != "pysqlite":
        raise DataSourceError(
            f"{shown!r} uses the SQLite driver {url.get_driver_name()!r}; mlwright reads SQLite "
            "through Python's own sqlite3 module",
            fix="use a sqlite:///path/to/file.db URL",
        )
    db = url.database
    if not db or db == ":memory:":
        raise DataSourceError(
            f"{shown!r} names no SQLite database file", fix="use sqlite:///path/to/file.db"
        )
    if not Path(db).is_file():
        raise DataSourceError(
            f"SQLite database {db!r} does not exist", fix="check the path in the URL"
        )
    target = f"file:{quote(str(Path(db).resolve()))}?mode=ro"

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(target, uri=True, check_same_thread=False)
        conn.execute("PRAGMA query_only = ON")
        return conn

    return sa.create_engine("sqlite://", creator=connect, poolclass=NullPool)


def _sqlite_authorizer(
    action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None
) -> int:
    """Reads and ordinary functions only: no write, ATTACH, PRAGMA, VACUUM or extension."""
    if action not in _SQLITE_READS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _SQLITE_DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def redact(url: str) -> str:
    """The URL with any password replaced by ***."""
    try:
        import sqlalchemy as sa

        return str(sa.engine.make_url(url).render_as_string(hide_password=True))
    except Exception:  # the raw URL is unparseable; show nothing secret-looking
        return url.split("@")[-1] if "@" in url else url
