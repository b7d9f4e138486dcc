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
from ledger.store._sidecar import sidecar_lock, sqlite_file
from ledger.store._sqlite_lock import begin_immediate

__all__ = [
    "APPLICATION_ID",
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
    path = sqlite_file(parsed) if parsed.get_backend_name() == "sqlite" else None
    if path is None:
        return
    if not path.is_file() or path.stat().st_size == 0:
        raise InvalidArgumentError(
            "database", str(path), "an existing ledger database (nothing was created)"
        )


def is_sqlite(engine: sa.Engine) -> bool:
    """Whether ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"


#: ``PRAGMA application_id`` of a ledger's SQLite file ("LEDG"): what marks a file as ours.
APPLICATION_ID = 0x4C454447
#: Tables whose presence (with ``alembic_version``) marks a ledger made before the marker.
_LEDGER_TABLES = frozenset({"alembic_version", "events", "streams"})


def _private_dir(folder: Path) -> None:
    """Create ``folder`` and its missing parents owner-only (0700), whatever the umask."""
    missing = []
    for parent in (folder, *folder.parents):
        if parent.exists():
            break
        missing.append(parent)
    for parent in reversed(missing):
        parent.mkdir(mode=0o700, exist_ok=True)
        os.chmod(parent, 0o700)  # mkdir's mode is filtered by the umask


def _refuse_symlink(path: Path) -> None:
    if path.is_symlink():
        raise ConfigurationError(
            "database file", str(path), "a regular file, not a symbolic link (nothing was opened)"
        )


def _check_existing(path: Path, settings: Settings) -> None:
    """Refuse a SQLite file that belongs to another application, before anything writes to it.

    It is opened read-only through SQLite itself (never with ``open()``/``close()``, which
    would drop this process's POSIX locks on it): a file is a ledger if its ``application_id``
    is :data:`APPLICATION_ID`, or, made before that marker, it holds the ledger's tables.
    """
    try:
        connection = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro",
            uri=True,
            timeout=settings.busy_timeout_ms / 1000,
        )
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot open {path}: {exc}", backend="SQLite") from exc
    try:
        application = connection.execute("PRAGMA application_id").fetchone()[0]
        if application == APPLICATION_ID:
            return
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    except sqlite3.DatabaseError as exc:  # not a database at all (a text file, an image...)
        raise DatabaseError(str(exc), backend="SQLite") from exc
    finally:
        connection.close()
    if not tables or tables >= _LEDGER_TABLES:
        return  # an empty database, or a ledger from before the marker
    shown = ", ".join(sorted(tables)[:6]) + (", ..." if len(tables) > 6 else "")
    raise ConfigurationError(
        "database file",
        str(path),
        f"a ledger database or a new file: it belongs to another application (tables {shown}; "
        "nothing was changed)",
    )


def _tighten(path: Path) -> None:
    """Make an existing ledger file of ours and its WAL/SHM owner-only."""
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            info = file.lstat()
        except FileNotFoundError:
            continue
        if info.st_uid == os.getuid() and info.st_mode & 0o077:
            os.chmod(file, info.st_mode & 0o700)


def _prepare_sqlite_file(url: sa.URL, settings: Settings) -> None:
    """Create a new database file owner-only (folder 0700), marked as a ledger, in WAL mode.

    An existing file is used only if it is a ledger (:func:`_check_existing`): a Hermes
    ``state.db`` given as ``--url`` by mistake is refused before any PRAGMA that persists. A
    symbolic link where the database (or its init lock) should be is refused.

    Two processes opening a new file at once would both try to switch it to WAL, which needs an
    exclusive lock SQLite does not wait for: one would stay in rollback-journal mode. So a new
    file is initialised under an ``flock`` on a sidecar ``<file>.init-lock``.

    An existing database file is never opened with ``open()`` here: closing any descriptor of a
    file drops every POSIX lock this process holds on it, including those of open SQLite
    connections, which lets another process write at the same time and corrupts the database.
    """
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database).expanduser()
    _refuse_symlink(path)
    if path.exists() and path.stat().st_size > 0:
        _check_existing(path, settings)
        _tighten(path)
        return
    if not path.parent.exists():
        _private_dir(path.parent)
    with sidecar_lock(path, ".init-lock", wait=True):
        if path.exists() and path.stat().st_size > 0:
            return  # another process initialised it while we waited
        # Nothing in this process can have the file open yet (it is new or empty).
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
        os.chmod(path, 0o600)  # an empty file that was already there may have had 0644
        connection = sqlite3.connect(path, timeout=settings.busy_timeout_ms / 1000)
        try:
            # Incremental auto-vacuum can only be chosen before the first table exists; it
            # lets `ledger compact vacuum` free pages in small steps instead of a long VACUUM.
            connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
            connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            connection.execute("PRAGMA journal_mode = WAL")
        finally:
            connection.close()


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
        db = conn.connection.driver_connection
        assert isinstance(db, sqlite3.Connection)
        try:
            if options.get(WRITE, False):
                begin_immediate(db, settings.busy_timeout_ms)
            else:
                db.execute("BEGIN")
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
