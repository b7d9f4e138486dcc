"""Engines for the two supported databases, configured for an append-only log.

SQLite: WAL journal, ``synchronous=FULL`` unless ``LEDGER_SQLITE_SYNCHRONOUS`` says otherwise, a
busy timeout, and transactions begun by us rather than by pysqlite: ``BEGIN IMMEDIATE`` for
writes, so two writers queue on the database lock instead of failing on upgrade from a read
lock, and a plain deferred ``BEGIN`` for reads. The database file is created 0600 and its folder
0700, because it holds private conversations.

PostgreSQL: psycopg 3 with ``synchronous_commit`` left as the server has it (on).

Every engine carries a ``handle_error`` hook that turns driver errors into the ledger's
:class:`DatabaseError` (naming the backend and any broken constraint), so no SQLAlchemy or
driver exception leaves the ledger, whichever layer ran the statement.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from ledger.config import Settings
from ledger.errors import ConfigurationError, DatabaseError, InvalidArgumentError, LedgerError
from ledger.store._errors import database_error

__all__ = [
    "AUTOCOMMIT_READ",
    "RAW_ERRORS",
    "WRITE",
    "create_engine",
    "is_sqlite",
    "normalize_url",
    "require_existing",
]

#: Execution option that makes a connection's next transaction a write (``BEGIN IMMEDIATE``).
WRITE = "ledger_write"
#: Execution option for single-statement reads: on SQLite no BEGIN at all (the statement is its
#: own snapshot), which halves the cost of the agent cache's per-turn head read.
AUTOCOMMIT_READ = "ledger_autocommit_read"
#: Execution option for third-party code given the engine (APScheduler's job store) that
#: catches SQLAlchemy's own exceptions: its errors are left untranslated.
RAW_ERRORS = "ledger_raw_errors"


def normalize_url(url: str) -> sa.URL:
    """Parse ``url``; plain ``postgresql://`` and ``postgres://`` mean the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError("database URL", url, "an SQLAlchemy URL") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigurationError("database URL", url, "a sqlite:/// or postgresql:// URL")
    return parsed


def require_existing(url: str) -> None:
    """Refuse a SQLite URL whose file does not exist yet (or is empty): for read-only tools,
    which must never create a database at a mistyped path. Other URLs pass."""
    parsed = normalize_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:"):
        return
    path = Path(database).expanduser()
    if not path.is_file() or path.stat().st_size == 0:
        raise InvalidArgumentError(
            "database", str(path), "an existing ledger database (nothing was created)"
        )


def is_sqlite(engine: sa.Engine) -> bool:
    """Whether ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"


def _prepare_sqlite_file(url: sa.URL, settings: Settings) -> None:
    """Create a new database file owner-only (folder 0700) and switch it to WAL.

    Two processes opening a new file at once would both try to switch it to WAL, which needs an
    exclusive lock SQLite does not wait for: one would stay in rollback-journal mode. So a new
    file is initialised under an ``flock`` on a sidecar ``<file>.init-lock``.

    An existing database file is never opened here: closing any descriptor of a file drops every
    POSIX lock this process holds on it, including those of open SQLite connections, which lets
    another process write at the same time and corrupts the database.
    """
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database).expanduser()
    if path.exists() and path.stat().st_size > 0:
        return
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = os.open(path.with_name(path.name + ".init-lock"), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists() and path.stat().st_size > 0:
            return  # another process initialised it while we waited
        # Nothing in this process can have the file open yet (it is new or empty).
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        connection = sqlite3.connect(path, timeout=settings.busy_timeout_ms / 1000)
        try:
            # Incremental auto-vacuum can only be chosen before the first table exists; it
            # lets `ledger compact vacuum` free pages in small steps instead of a long VACUUM.
            connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
            connection.execute("PRAGMA journal_mode = WAL")
        finally:
            connection.close()
    finally:
        os.close(lock)  # also releases the flock


def _sqlite_engine(url: sa.URL, settings: Settings, **kwargs: Any) -> sa.Engine:
    _prepare_sqlite_file(url, settings)
    engine = sa.create_engine(
        url,
        connect_args={"timeout": settings.busy_timeout_ms / 1000, "isolation_level": None},
        **kwargs,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {settings.busy_timeout_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {settings.sqlite_synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Straight to the driver: this runs once per transaction on the append hot path.
        options = conn.get_execution_options()
        if options.get(AUTOCOMMIT_READ, False):
            return
        try:
            conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                "BEGIN IMMEDIATE" if options.get(WRITE, False) else "BEGIN"
            )
        except sqlite3.Error as exc:  # outside SQLAlchemy's error handling: translate here
            raise DatabaseError(str(exc), backend="SQLite") from exc

    return engine


def _translate(context: sa.engine.ExceptionContext) -> BaseException | None:
    """``handle_error`` hook: every driver error leaves as the ledger's DatabaseError."""
    connection = context.connection
    if connection is not None and connection.get_execution_options().get(RAW_ERRORS, False):
        return None
    if isinstance(context.original_exception, LedgerError):
        return context.original_exception  # raised by our own bind processors: unwrap it
    error = context.sqlalchemy_exception
    if isinstance(error, sa.exc.DBAPIError):
        return database_error(error)
    return None


def create_engine(url: str, settings: Settings | None = None, **kwargs: Any) -> sa.Engine:
    """An engine for ``url`` with the ledger's connection settings applied."""
    settings = settings or Settings.from_env()
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, settings, **kwargs)
    else:
        # No pool_pre_ping: it would add a round trip to every checkout, and the gateway's
        # message append is one round trip. A connection the server or network dropped fails
        # its next statement once; SQLAlchemy then invalidates the pool, so the retry (the
        # cache retries reads; see ledger.cache) gets a fresh connection.
        engine = sa.create_engine(parsed, **kwargs)
    event.listen(engine, "handle_error", _translate)
    return engine
