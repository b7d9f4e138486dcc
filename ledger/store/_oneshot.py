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

import sqlalchemy as sa

from ledger.codec import tool_calls_text
from ledger.errors import SessionClosedError, SessionNotFoundError
from ledger.events import MessageAppended
from ledger.records import AppendResult, StreamAppend
from ledger.schema import events
from ledger.store._backend import HEAD_UPSERT, INSERT_COLUMNS
from ledger.store._errors import database_error
from ledger.streams import session_stream

__all__ = ["OneShot"]

#: The inline projections whose append-only writes both shortcuts make.
KNOWN_VIEWS = frozenset({"sessions", "keys"})

#: (status, position, sequence): status is ``ok``, ``missing``, ``archived`` or the session's state.
Outcome = tuple[str, int | None, int | None]

_CALL = sa.text(
    "SELECT o_status, o_position, o_sequence FROM ledger_append_message(:session_id, :stream, "
    ":message_id, :role, :content, :tool_name, :tool_call_id, :tool_calls, "
    "CAST(:token_count AS integer), :finish_reason, :reasoning, :data, :event_id, :writer, "
    ":recorded_at, CAST(:schema_version AS smallint))"
).bindparams(
    sa.bindparam("data", type_=sa.LargeBinary),
    sa.bindparam("event_id", type_=sa.Uuid),
    sa.bindparam("recorded_at", type_=events.c.recorded_at.type),
)

#: The transcript columns of one message, in the order the SQLite statement binds them.
_TRANSCRIPT_COLUMNS = (
    "session_id",
    "message_id",
    "sequence",
    "position",
    "role",
    "content",
    "tool_name",
    "tool_call_id",
    "tool_calls",
    "token_count",
    "finish_reason",
    "reasoning",
    "writer",
    "recorded_at",
)
_SQLITE_STATE = "SELECT state FROM session_heads WHERE session_id = ?"
_SQLITE_CLAIM = f"INSERT INTO streams (stream, sequence) VALUES (?, 1) {HEAD_UPSERT}"
_SQLITE_INSERT = (
    f"INSERT INTO events ({', '.join(INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in INSERT_COLUMNS)})"
)
_SQLITE_BUMP = (
    "UPDATE session_heads SET sequence = ?, message_count = message_count + 1, "
    "token_count = token_count + ?, position = ?, writer = ?, updated_at = ? "
    "WHERE session_id = ?"
)
_SQLITE_TRANSCRIPT = (
    f"INSERT INTO transcript_messages ({', '.join(_TRANSCRIPT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _TRANSCRIPT_COLUMNS)})"
)


class OneShot:
    """Appends single messages through the backend's shortcut where that is equivalent.

    ``writer_lock`` is the store's in-process queue of SQLite writers (see
    :meth:`EventStore.transaction`); the SQLite shortcut waits in it like any other write.
    """

    def __init__(
        self,
        engine: sa.Engine,
        view_names: set[str],
        writer_lock: contextlib.AbstractContextManager[Any] | None = None,
    ) -> None:
        self.engine = engine
        self.enabled = view_names == KNOWN_VIEWS
        self._sqlite = engine.dialect.name == "sqlite"
        self._writer_lock = writer_lock or contextlib.nullcontext()
        uuid_bind = events.c.event_id.type._cached_bind_processor(engine.dialect)
        time_bind = events.c.recorded_at.type._cached_bind_processor(engine.dialect)
        self._bind_uuid: Callable[[Any], Any] = uuid_bind or (lambda value: value)
        self._bind_time: Callable[[Any], Any] = time_bind or (lambda value: value)

    def append(self, row: dict[str, Any], event: MessageAppended) -> AppendResult | None:
        """Append ``event`` (``row`` from ``EventStore.prepare``); None: take the general path.

        Raises :class:`SessionNotFoundError` / :class:`SessionClosedError` as the general path
        would, having written nothing.
        """
        if not self.enabled:
            return None
        recorded_at = row.get("recorded_at") or dt.datetime.now(dt.UTC)
        stream = session_stream(event.session_id)
        if self._sqlite:
            status, position, sequence = self._sqlite_append(row, event, stream, recorded_at)
        else:
            status, position, sequence = self._postgres_append(row, event, stream, recorded_at)
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
        self, row: dict[str, Any], event: MessageAppended, stream: str, recorded_at: dt.datetime
    ) -> Outcome:
        """One autocommit call of ``ledger_append_message``."""
        params = {
            "session_id": event.session_id,
            "stream": stream,
            "message_id": event.message_id,
            "role": event.role,
            "content": event.content,
            "tool_name": event.tool_name,
            "tool_call_id": event.tool_call_id,
            "tool_calls": tool_calls_text(event.tool_calls),
            "token_count": event.token_count,
            "finish_reason": event.finish_reason,
            "reasoning": event.reasoning,
            "data": row["data"],
            "event_id": row["event_id"],
            "writer": row["writer"],
            "recorded_at": recorded_at,
            "schema_version": row["schema_version"],
        }
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            status, position, sequence = conn.execute(_CALL, params).one()
        return str(status), _int(position), _int(sequence)

    def _sqlite_append(
        self, row: dict[str, Any], event: MessageAppended, stream: str, recorded_at: dt.datetime
    ) -> Outcome:
        """The general path's statements on the driver connection, in one write transaction."""
        with self._writer_lock:
            pooled = self.engine.raw_connection()
            try:
                db = pooled.driver_connection
                assert isinstance(db, sqlite3.Connection)
                try:
                    return self._sqlite_steps(db, row, event, stream, self._bind_time(recorded_at))
                except sqlite3.Error as exc:  # outside SQLAlchemy's handle_error hook
                    wrapped = sa.exc.DBAPIError.instance(None, None, exc, sqlite3.Error)
                    assert isinstance(wrapped, sa.exc.DBAPIError)
                    raise database_error(wrapped) from exc
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
        at: Any,
    ) -> Outcome:
        session_id = event.session_id
        db.execute("BEGIN IMMEDIATE")
        state = db.execute(_SQLITE_STATE, (session_id,)).fetchone()
        if state is None or state[0] != "open":
            return ("missing" if state is None else str(state[0])), None, None
        sequence, archived = db.execute(_SQLITE_CLAIM, (stream,)).fetchone()
        if archived:
            return "archived", None, None
        position = db.execute(
            _SQLITE_INSERT,
            (
                stream,
                sequence,
                row["type"],
                row["data"],
                self._bind_uuid(row["event_id"]),
                row["writer"],
                at,
                row["schema_version"],
            ),
        ).lastrowid
        assert position is not None
        db.execute(
            _SQLITE_BUMP,
            (sequence, event.token_count or 0, position, row["writer"], at, session_id),
        )
        db.execute(
            _SQLITE_TRANSCRIPT,
            (
                session_id,
                event.message_id,
                sequence,
                position,
                event.role,
                event.content,
                event.tool_name,
                event.tool_call_id,
                tool_calls_text(event.tool_calls),
                event.token_count,
                event.finish_reason,
                event.reasoning,
                row["writer"],
                at,
            ),
        )
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
