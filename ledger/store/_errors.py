"""Driver errors to the ledger's own: the single place that inspects a driver error.

Integrity errors are told apart by the name of the constraint they broke, looked up in
:data:`CONSTRAINTS`. PostgreSQL reports that name (``diag.constraint_name``); SQLite reports the
columns instead ("UNIQUE constraint failed: events.stream, events.sequence"), and the table's
key on those columns in the schema gives the same name. Every driver error
becomes a :class:`DatabaseError` naming the backend, at one place: the ``handle_error`` hook
every engine of the ledger carries.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Concatenate, Literal, ParamSpec, Protocol, TypeVar

import sqlalchemy as sa

from ledger.errors import (
    DatabaseError,
    DuplicateEventError,
    InvalidEventError,
    LedgerError,
    WrongExpectedVersionError,
)
from ledger.records import StreamAppend
from ledger.schema import metadata

__all__ = [
    "CONSTRAINTS",
    "append_error",
    "constraint_name",
    "database_error",
    "driver_error",
    "sqlalchemy_error",
    "translate_error",
    "translated",
    "translated_iter",
]

Violation = Literal["stream_sequence", "event_id", "message_id"]

#: Constraint name -> what breaking it means.
CONSTRAINTS: dict[str, Violation] = {
    "uq_events_stream_sequence": "stream_sequence",
    "uq_events_event_id": "event_id",
    "pk_transcript_messages": "message_id",
}

_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (\w+)\.(\w+(?:, \w+\.\w+)*)")


def constraint_name(exc: sa.exc.DBAPIError) -> str | None:
    """The name of the constraint ``exc`` broke, on either backend (None if not a constraint)."""
    name = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    if name:
        return str(name)
    found = _SQLITE_UNIQUE.search(str(exc.orig))
    if found is None:
        return None
    # SQLite names the columns, not the constraint: find the table's key on those columns.
    columns = [part.split(".")[-1] for part in found.group(2).split(", ")]
    table = metadata.tables.get(found.group(1))
    keys = [] if table is None else [table.primary_key, *table.constraints]
    for key in keys:
        if (
            isinstance(key, sa.PrimaryKeyConstraint | sa.UniqueConstraint)
            and [c.name for c in key.columns] == columns
        ):
            return str(key.name)
    return None


def _backend(exc: sa.exc.DBAPIError) -> str | None:
    module = type(exc.orig).__module__.split(".")[0]
    return {"sqlite3": "SQLite", "psycopg": "PostgreSQL", "psycopg2": "PostgreSQL"}.get(module)


def database_error(exc: sa.exc.DBAPIError) -> DatabaseError:
    """The ledger's error for any driver error: names the backend and any broken constraint.

    Installed as every engine's ``handle_error`` hook (``ledger.store.database``), so no driver
    or SQLAlchemy database exception leaves the ledger; the driver's error is the ``__cause__``.
    """
    constraint = constraint_name(exc) if isinstance(exc, sa.exc.IntegrityError) else None
    return DatabaseError(str(exc.orig).strip(), backend=_backend(exc), constraint=constraint)


def driver_error(exc: Exception, dbapi_error: type[Exception], sql: str | None) -> DatabaseError:
    """:func:`database_error` of an error raised by a raw driver call, which never passes
    SQLAlchemy's ``handle_error`` hook (``dbapi_error``: the driver's ``Error`` class)."""
    wrapped = sa.exc.DBAPIError.instance(sql, None, exc, dbapi_error)
    assert isinstance(wrapped, sa.exc.DBAPIError)
    return database_error(wrapped)


_BACKENDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def sqlalchemy_error(exc: sa.exc.SQLAlchemyError, engine: sa.Engine | None = None) -> DatabaseError:
    """Any SQLAlchemy exception as a :class:`DatabaseError`.

    A driver error goes through :func:`database_error`. The others never reach the engine's
    ``handle_error`` hook (``PendingRollbackError`` on a connection whose transaction died with
    the server, ``ResourceClosedError`` on a result whose connection went away…): they name
    the backend of ``engine`` and their own class.
    """
    if isinstance(exc, sa.exc.DBAPIError):
        return database_error(exc)
    backend = None if engine is None else _BACKENDS.get(engine.dialect.name)
    detail = str(exc).split("\n", 1)[0].strip() or type(exc).__name__
    return DatabaseError(f"{type(exc).__name__}: {detail}", backend=backend)


class _HasEngine(Protocol):
    engine: sa.Engine


S = TypeVar("S", bound=_HasEngine)
P = ParamSpec("P")
R = TypeVar("R")


def translated(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """A public read that lets no SQLAlchemy exception out: each becomes a DatabaseError.

    The engine hook already turns driver errors; this catches what SQLAlchemy raises itself.
    A ``try`` costs nothing on the path that does not raise.
    """

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sa.exc.SQLAlchemyError as exc:
            raise sqlalchemy_error(exc, self.engine) from exc

    return wrapper


def translated_iter(
    method: Callable[Concatenate[S, P], Iterator[R]],
) -> Callable[Concatenate[S, P], Iterator[R]]:
    """:func:`translated` for a lazy read: the errors of every step of the iteration too."""

    @functools.wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[R]:
        try:
            yield from method(self, *args, **kwargs)
        except sa.exc.SQLAlchemyError as exc:
            raise sqlalchemy_error(exc, self.engine) from exc

    return wrapper


def append_error(
    error: DatabaseError,
    appends: Sequence[StreamAppend] = (),
    actual: Mapping[str, int] | None = None,
) -> LedgerError:
    """What a failed append means, given the :class:`DatabaseError` it raised.

    A broken ``(stream, sequence)`` means another writer moved a stream between our head read
    and our insert: :class:`WrongExpectedVersionError` for the first stream whose head differs
    from what the append expected (``actual`` holds the heads read afterwards). A repeated
    ``event_id`` is a :class:`DuplicateEventError`, a repeated message id an
    :class:`InvalidEventError`. Anything else stays the :class:`DatabaseError` it was.
    """
    violation = CONSTRAINTS.get(error.constraint or "")
    if appends and violation == "stream_sequence":
        heads = actual or {}
        for part in appends:
            expected = part.expected_sequence
            now = heads.get(part.stream, 0)
            if expected is None or expected != now:
                return WrongExpectedVersionError(
                    part.stream, "any" if expected is None else expected, now
                )
    if appends and violation == "event_id":
        return DuplicateEventError(appends[0].stream, [])
    if violation == "message_id":
        return InvalidEventError("MessageAppended", "message_id is already in this session")
    return error


def translate_error(
    exc: sa.exc.DBAPIError,
    appends: Sequence[StreamAppend] = (),
    actual: Mapping[str, int] | None = None,
) -> LedgerError:
    """A driver error in the ledger's tree: :func:`database_error`, then :func:`append_error`."""
    return append_error(database_error(exc), appends, actual)
