"""Driver errors to the ledger's own: the single place that inspects a driver error.

Integrity errors are told apart by the name of the constraint they broke, looked up in
:data:`CONSTRAINTS`. PostgreSQL reports that name (``diag.constraint_name``); SQLite reports the
columns instead ("UNIQUE constraint failed: events.stream, events.sequence"), from which the
schema's naming convention (``uq_<table>_<columns>``) gives the same name. Every other driver
error becomes a :class:`DatabaseError` naming the backend.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

import sqlalchemy as sa

from ledger.errors import (
    DatabaseError,
    DuplicateEventError,
    InvalidEventError,
    WrongExpectedVersionError,
)
from ledger.records import StreamAppend

__all__ = ["CONSTRAINTS", "constraint_name", "translate_error"]

Violation = Literal["stream_sequence", "event_id", "message_id"]

#: Constraint name -> what breaking it means.
CONSTRAINTS: dict[str, Violation] = {
    "uq_events_stream_sequence": "stream_sequence",
    "uq_events_event_id": "event_id",
    "uq_transcript_messages_session_id_message_id": "message_id",
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
    table = found.group(1)
    columns = [part.split(".")[-1] for part in found.group(2).split(", ")]
    return f"uq_{table}_{'_'.join(columns)}"


def _backend(exc: sa.exc.DBAPIError) -> str | None:
    module = type(exc.orig).__module__.split(".")[0]
    return {"sqlite3": "SQLite", "psycopg": "PostgreSQL", "psycopg2": "PostgreSQL"}.get(module)


def translate_error(
    exc: sa.exc.DBAPIError,
    appends: Sequence[StreamAppend] = (),
    actual: Mapping[str, int] | None = None,
) -> Exception:
    """Map a driver error to the ledger's tree.

    A broken ``(stream, sequence)`` means another writer moved a stream between our head read
    and our insert: :class:`WrongExpectedVersionError` for the first stream whose head differs
    from what the append expected (``actual`` holds the heads read afterwards). A repeated
    ``event_id`` is a :class:`DuplicateEventError`, a repeated message id an
    :class:`InvalidEventError`. Anything else is a :class:`DatabaseError` naming the backend.
    """
    violation = CONSTRAINTS.get(constraint_name(exc) or "")
    if isinstance(exc, sa.exc.IntegrityError) and appends and violation is not None:
        if violation == "stream_sequence":
            heads = actual or {}
            for part in appends:
                expected = part.expected_sequence
                now = heads.get(part.stream, 0)
                if expected is None or expected != now:
                    return WrongExpectedVersionError(
                        part.stream, "any" if expected is None else expected, now
                    )
        if violation == "event_id":
            return DuplicateEventError(appends[0].stream, [])
        if violation == "message_id":
            return InvalidEventError("MessageAppended", "message_id is already in this session")
    return DatabaseError(str(exc.orig).strip(), backend=_backend(exc))
