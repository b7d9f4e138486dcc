"""The gateway's hottest call in one round trip on PostgreSQL: one message to an open session.

``ledger_append_message`` (migration 0006) takes the stream's lock, checks that the session
exists and is open, appends the event and writes the ``sessions`` view's append-only update
(head bump and transcript row), in one statement run in autocommit. It is used only when the
store's inline projections are exactly the installed ``sessions`` and ``keys`` (the views the
function knows) and the message needs nothing the general path does besides (a caller-given
id, an expected sequence, an archived stream). Anywhere else, and on SQLite, the caller takes
the general path; the results are the same rows either way.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from ledger.codec import tool_calls_text
from ledger.errors import SessionClosedError, SessionNotFoundError
from ledger.events import MessageAppended
from ledger.records import AppendResult, StreamAppend
from ledger.schema import events
from ledger.streams import session_stream

__all__ = ["OneShot"]

#: The inline projections whose append-only writes the server function makes.
KNOWN_VIEWS = frozenset({"sessions", "keys"})

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


class OneShot:
    """Appends single messages through ``ledger_append_message`` where that is equivalent."""

    def __init__(self, engine: sa.Engine, view_names: set[str]) -> None:
        self.engine = engine
        self.enabled = engine.dialect.name == "postgresql" and view_names == KNOWN_VIEWS

    def append(self, row: dict[str, Any], event: MessageAppended) -> AppendResult | None:
        """Append ``event`` (``row`` from ``EventStore.prepare``); None: take the general path.

        Raises :class:`SessionNotFoundError` / :class:`SessionClosedError` as the general path
        would, having written nothing.
        """
        if not self.enabled:
            return None
        params = {
            "session_id": event.session_id,
            "stream": session_stream(event.session_id),
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
            "recorded_at": row.get("recorded_at") or dt.datetime.now(dt.UTC),
            "schema_version": row["schema_version"],
        }
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            status, position, sequence = conn.execute(_CALL, params).one()
        if status == "missing":
            raise SessionNotFoundError(event.session_id)
        if status == "archived":
            return None
        if status != "ok":
            raise SessionClosedError(event.session_id)
        return AppendResult(
            stream=params["stream"],
            sequence=int(sequence),
            position=int(position),
            sequences=(int(sequence),),
            positions=(int(position),),
            event_ids=(row["event_id"],),
        )

    @staticmethod
    def eligible(part: StreamAppend) -> bool:
        """One generated message, no caller-given id, no expected sequence."""
        return (
            len(part.events) == 1
            and isinstance(part.events[0], MessageAppended)
            and part.event_ids is None
            and part.expected_sequence is None
        )
