"""The gateway's hottest call with the fewest statements: one message to an open session.

The general append path runs each step as an SQLAlchemy statement. For the call a gateway makes
on every turn (one generated message, no ``expected_sequence``, the installed ``sessions`` and
``keys`` views only) both backends have a shorter path that writes the same rows:

* **PostgreSQL**: ``ledger_append_message`` (migration 0006) takes the stream's lock, checks that
  the session exists and is open, appends the event and writes the ``sessions`` view's
  append-only update (head bump and transcript row) in ONE statement run in autocommit.
* **SQLite**: the same steps as plain SQL strings on the driver connection, inside one
  ``BEGIN IMMEDIATE`` transaction. The driver keeps them prepared in its statement cache, so an
  append costs six ``sqlite3`` calls and no statement building (SQLAlchemy's per-statement
  overhead was most of the time the append did not spend in the commit).

Anywhere else the caller takes the general path, and an archived stream sends it there too (it
restores the stream first). Both shortcuts are held to the general path by tests that compare
the views they write with a rebuild from the log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Callable
from typing import Any

import msgspec
import sqlalchemy as sa

from ledger.codec import transcript_row
from ledger.errors import SessionClosedError, SessionNotFoundError
from ledger.events import MessageAppended
from ledger.records import AppendResult, StreamAppend
from ledger.schema import events, transcript_messages
from ledger.store._backend import HEAD_UPSERT, INSERT_COLUMNS
from ledger.store._driver import driver_insert
from ledger.store._errors import driver_error
from ledger.store._sqlite_lock import begin_immediate
from ledger.streams import session_stream

__all__ = ["OneShot"]

#: The inline projections whose append-only writes both shortcuts make.
KNOWN_VIEWS = frozenset({"sessions", "keys"})

#: (status, position, sequence): status is ``ok``, ``missing``, ``archived`` or the session's state.
Outcome = tuple[str, int | None, int | None]

_CALL = sa.text(
    "SELECT o_status, o_position, o_sequence FROM ledger_append_message(:session_id, :stream, "
    "CAST(:message AS jsonb), CAST(:token_count AS integer), :activity, :data, :event_id, "
    ":writer, :recorded_at, CAST(:schema_version AS smallint))"
).bindparams(
    sa.bindparam("data", type_=sa.LargeBinary),
    sa.bindparam("event_id", type_=sa.Uuid),
    sa.bindparam("activity", type_=events.c.recorded_at.type),
    sa.bindparam("recorded_at", type_=events.c.recorded_at.type),
)
_json = msgspec.json.Encoder()

#: The transcript row's columns, in the order the SQLite statement binds them.
_TRANSCRIPT_COLUMNS = tuple(transcript_messages.c.keys())
_SQLITE_STATE = "SELECT state FROM session_heads WHERE session_id = ?"
_SQLITE_CLAIM = f"INSERT INTO streams (stream, sequence) VALUES (?, 1) {HEAD_UPSERT}"
_SQLITE_BUMP = (
    "UPDATE session_heads SET sequence = ?1, message_count = message_count + 1, "
    "token_count = token_count + ?2, position = ?3, writer = ?4, updated_at = ?5, "
    "last_activity_at = CASE WHEN last_activity_at IS NULL OR last_activity_at < ?6 "
    "THEN ?6 ELSE last_activity_at END WHERE session_id = ?7"
)


class OneShot:
    """Appends single messages through the backend's shortcut where that is equivalent.

    ``writer_lock`` is the store's in-process queue of SQLite writers (see
    :meth:`EventStore.transaction`); the SQLite shortcut waits in it like any other write, then
    for the database's write lock for up to ``busy_timeout_ms``.
    """

    def __init__(
        self,
        engine: sa.Engine,
        view_names: set[str],
        writer_lock: contextlib.AbstractContextManager[Any] | None = None,
        *,
        busy_timeout_ms: int,
    ) -> None:
        self.engine = engine
        self._busy_timeout_ms = busy_timeout_ms
        self.enabled = view_names == KNOWN_VIEWS
        self._sqlite = engine.dialect.name == "sqlite"
        self._writer_lock = writer_lock or contextlib.nullcontext()
        time_bind = events.c.recorded_at.type._cached_bind_processor(engine.dialect)
        self._bind_time: Callable[[Any], Any] = time_bind or (lambda value: value)
        self._event = driver_insert(events, engine.dialect, INSERT_COLUMNS)
        self._transcript = driver_insert(transcript_messages, engine.dialect, _TRANSCRIPT_COLUMNS)

    def append(self, row: dict[str, Any], event: MessageAppended) -> AppendResult | None:
        """Append ``event`` (``row`` from ``EventStore.prepare``); None: take the general path.

        Raises :class:`SessionNotFoundError` / :class:`SessionClosedError` as the general path
        would, having written nothing.
        """
        if not self.enabled:
            return None
        recorded_at = row.get("recorded_at") or dt.datetime.now(dt.UTC)
        stream = session_stream(event.session_id)
        message = transcript_row(
            event, sequence=None, position=None, writer=row["writer"], recorded_at=recorded_at
        )
        if self._sqlite:
            status, position, sequence = self._sqlite_append(row, event, stream, message)
        else:
            status, position, sequence = self._postgres_append(row, event, stream, message)
        if status == "missing":
            raise SessionNotFoundError(event.session_id)
        if status == "archived":
            return None
        if status != "ok":
            raise SessionClosedError(event.session_id)
        assert position is not None
        assert sequence is not None
        return AppendResult(
            stream=stream,
            sequence=sequence,
            position=position,
            sequences=(sequence,),
            positions=(position,),
            event_ids=(row["event_id"],),
        )

    def _postgres_append(
        self, row: dict[str, Any], event: MessageAppended, stream: str, message: dict[str, Any]
    ) -> Outcome:
        """One autocommit call of ``ledger_append_message``."""
        params = {
            "session_id": event.session_id,
            "stream": stream,
            "message": _json.encode(message).decode(),
            "token_count": event.token_count,
            "activity": message["created_at"],
            "data": row["data"],
            "event_id": row["event_id"],
            "writer": row["writer"],
            "recorded_at": message["recorded_at"],
            "schema_version": row["schema_version"],
        }
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            status, position, sequence = conn.execute(_CALL, params).one()
        return str(status), _int(position), _int(sequence)

    def _sqlite_append(
        self, row: dict[str, Any], event: MessageAppended, stream: str, message: dict[str, Any]
    ) -> Outcome:
        """The general path's statements on the driver connection, in one write transaction."""
        with self._writer_lock:
            pooled = self.engine.raw_connection()
            try:
                db = pooled.driver_connection
                assert isinstance(db, sqlite3.Connection)
                try:
                    return self._sqlite_steps(db, row, event, stream, message)
                except sqlite3.Error as exc:  # outside SQLAlchemy's handle_error hook
                    raise driver_error(exc, sqlite3.Error, None) from exc
                finally:
                    if db.in_transaction:
                        db.rollback()
            finally:
                pooled.close()

    def _sqlite_steps(
        self,
        db: sqlite3.Connection,
        row: dict[str, Any],
        event: MessageAppended,
        stream: str,
        message: dict[str, Any],
    ) -> Outcome:
        session_id = event.session_id
        begin_immediate(db, self._busy_timeout_ms)
        state = db.execute(_SQLITE_STATE, (session_id,)).fetchone()
        if state is None or state[0] != "open":
            return ("missing" if state is None else str(state[0])), None, None
        sequence, archived = db.execute(_SQLITE_CLAIM, (stream,)).fetchone()
        if archived:
            return "archived", None, None
        at = self._bind_time(message["recorded_at"])
        event_row = {**row, "sequence": sequence, "recorded_at": message["recorded_at"]}
        position = db.execute(self._event.sql, self._event.bind(event_row)).lastrowid
        assert position is not None
        activity = self._bind_time(message["created_at"])
        bump = (sequence, event.token_count or 0, position, row["writer"], at, activity)
        db.execute(_SQLITE_BUMP, (*bump, session_id))
        message["sequence"], message["position"] = sequence, position
        db.execute(self._transcript.sql, self._transcript.bind(message))
        db.commit()
        return "ok", int(position), int(sequence)

    @staticmethod
    def eligible(part: StreamAppend) -> bool:
        """One generated message, no caller-given id, no expected sequence."""
        return (
            len(part.events) == 1
            and isinstance(part.events[0], MessageAppended)
            and part.event_ids is None
            and part.expected_sequence is None
        )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
