"""The ``sessions`` inline projection: ``session_heads`` and ``transcript_messages``.

Heads and the live transcript are one projection because a head's ``message_count`` is exactly
the number of live transcript rows: a retraction lowers it by the number of rows it really took
out of the transcript, whatever ids it named. ``sequence`` is the session stream's head, so it
keeps rising through undo and retry while ``message_count`` goes down.

A batch is folded per session in memory and written with one statement per touched session, so
a single-message append costs one UPDATE and one INSERT, and a rebuild writes few rows per batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import sqlalchemy as sa

from ledger.codec import tool_calls_text
from ledger.events import (
    MessageAppended,
    MessagesRetracted,
    SessionClosed,
    SessionOpened,
    SessionTitled,
)
from ledger.records import RecordedEvent
from ledger.schema import session_heads, session_tombstones, transcript_messages
from ledger.streams import category, parse
from projections.base import Projection, insert_rows, select_by_keys, write_rows

__all__ = ["SessionsProjection"]


def _message_row(record: RecordedEvent, event: MessageAppended) -> dict[str, Any]:
    return {
        "session_id": event.session_id,
        "message_id": event.message_id,
        "sequence": record.sequence,
        "position": record.position,
        "role": event.role,
        "content": event.content,
        "tool_name": event.tool_name,
        "tool_call_id": event.tool_call_id,
        "tool_calls": tool_calls_text(event.tool_calls),
        "token_count": event.token_count,
        "finish_reason": event.finish_reason,
        "reasoning": event.reasoning,
        "writer": record.writer,
        "recorded_at": record.recorded_at,
        "retracted_position": None,
    }


def _new_head(session_id: str, record: RecordedEvent) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "session_key": None,
        "source": None,
        "user_id": None,
        "model": None,
        "title": None,
        "parent_session_id": None,
        "state": "open",
        "sequence": 0,
        "message_count": 0,
        "token_count": 0,
        "position": 0,
        "writer": record.writer,
        "created_at": record.recorded_at,
        "updated_at": record.recorded_at,
    }


@functools.cache
def _bump_statement(table: sa.Table) -> sa.Update:
    """Advance a head by a run of appended messages, without reading it first."""
    c = table.c
    return (
        table.update()
        .where(c.session_id == sa.bindparam("sid"))
        .values(
            sequence=sa.bindparam("sequence"),
            message_count=c.message_count + sa.bindparam("messages"),
            token_count=c.token_count + sa.bindparam("tokens"),
            position=sa.bindparam("position"),
            writer=sa.bindparam("writer"),
            updated_at=sa.bindparam("updated_at"),
        )
    )


@functools.cache
def _retract_statement(table: sa.Table) -> sa.Update:
    """Mark named live messages of a session retracted at a position."""
    c = table.c
    return (
        table.update()
        .where(
            c.session_id == sa.bindparam("sid"),
            c.message_id.in_(sa.bindparam("ids", expanding=True)),
            c.retracted_position.is_(None),
        )
        .values(retracted_position=sa.bindparam("at"))
    )


class SessionsProjection(Projection):
    """Per-session heads and the live transcript, updated inside every append."""

    name: ClassVar[str] = "sessions"
    inline: ClassVar[bool] = True
    default_tables: ClassVar[tuple[sa.Table, ...]] = (session_heads, transcript_messages)
    keys: ClassVar[dict[str, tuple[str, ...]]] = {
        "session_heads": ("session_id",),
        "transcript_messages": ("session_id", "message_id"),
    }

    def apply(self, conn: sa.Connection, records: Sequence[RecordedEvent]) -> None:
        heads_table = self.table("session_heads")
        mine = [r for r in records if category(r.stream) == "session"]
        if not mine:
            return
        session_ids = {parse(r.stream)[1] for r in mine}
        if len(session_ids) == 1 and self._append_only(conn, session_ids.pop(), mine):
            return
        session_ids = {parse(r.stream)[1] for r in mine}
        query = select_by_keys(heads_table, "session_id")
        loaded = {
            row["session_id"]: dict(row)
            for row in conn.execute(query, {"keys": list(session_ids)}).mappings()
        }
        heads = {sid: dict(row) for sid, row in loaded.items()}
        pending: list[dict[str, Any]] = []
        for record in mine:
            session_id = parse(record.stream)[1]
            head = heads.get(session_id)
            if head is None:
                head = heads[session_id] = _new_head(session_id, record)
            self._fold(conn, head, record, pending)
        self._flush(conn, pending)
        changed = {sid: head for sid, head in heads.items() if loaded.get(sid) != head}
        write_rows(conn, heads_table, "session_id", changed, loaded)

    def _append_only(
        self, conn: sa.Connection, session_id: str, records: Sequence[RecordedEvent]
    ) -> bool:
        """The gateway's hot path: only new messages for one existing session.

        Bumps the head with one arithmetic UPDATE instead of read-fold-write; returns False (and
        writes nothing) when the batch holds other events or the head does not exist yet.
        """
        messages = [r.event for r in records if isinstance(r.event, MessageAppended)]
        if len(messages) != len(records):
            return False
        last = records[-1]
        bumped = conn.execute(
            _bump_statement(self.table("session_heads")),
            {
                "sid": session_id,
                "sequence": last.sequence,
                "messages": len(messages),
                "tokens": sum(m.token_count or 0 for m in messages),
                "position": last.position,
                "writer": last.writer,
                "updated_at": last.recorded_at,
            },
        )
        if bumped.rowcount != 1:
            return False
        pending = [_message_row(r, m) for r, m in zip(records, messages, strict=True)]
        self._flush(conn, pending)
        return True

    def _fold(
        self,
        conn: sa.Connection,
        head: dict[str, Any],
        record: RecordedEvent,
        pending: list[dict[str, Any]],
    ) -> None:
        event = record.event
        head["sequence"] = record.sequence
        head["position"] = record.position
        head["writer"] = record.writer
        head["updated_at"] = record.recorded_at
        if isinstance(event, MessageAppended):
            pending.append(_message_row(record, event))
            head["message_count"] += 1
            head["token_count"] += event.token_count or 0
        elif isinstance(event, MessagesRetracted):
            self._flush(conn, pending)
            head["message_count"] -= self._retract(conn, head["session_id"], event, record)
        elif isinstance(event, SessionOpened):
            head.update(
                session_key=event.session_key,
                source=event.source,
                user_id=event.user_id,
                model=event.model,
                title=event.title,
                parent_session_id=event.parent_session_id,
                created_at=record.recorded_at,
            )
        elif isinstance(event, SessionTitled):
            head["title"] = event.title
        elif isinstance(event, SessionClosed):
            head["state"] = "closed"

    def _retract(
        self, conn: sa.Connection, session_id: str, event: MessagesRetracted, record: RecordedEvent
    ) -> int:
        """Mark the named live messages retracted; returns how many were live."""
        result = conn.execute(
            _retract_statement(self.table("transcript_messages")),
            {"sid": session_id, "ids": list(event.message_ids), "at": record.position},
        )
        return int(result.rowcount)

    def _flush(self, conn: sa.Connection, pending: list[dict[str, Any]]) -> None:
        if pending:
            insert_rows(conn, self.table("transcript_messages"), pending)
            pending.clear()

    def seed(self, conn: sa.Connection, session_id: str | None = None) -> None:
        """Put back the tombstone heads of purged sessions (all, or one)."""
        seed_tombstones(conn, self.table("session_heads"), session_id)

    def forget(
        self, conn: sa.Connection, session_id: str, records: Sequence[RecordedEvent]
    ) -> None:
        """A purged session keeps only its tombstone head; its transcript goes."""
        transcript = self.table("transcript_messages")
        heads = self.table("session_heads")
        conn.execute(transcript.delete().where(transcript.c.session_id == session_id))
        conn.execute(heads.delete().where(heads.c.session_id == session_id))
        self.seed(conn, session_id)


def seed_tombstones(conn: sa.Connection, heads: sa.Table, session_id: str | None) -> None:
    """Insert a head row (state ``purged``) for each tombstone into ``heads``."""
    t = session_tombstones
    query = sa.select(
        t.c.session_id,
        t.c.session_key,
        t.c.source,
        sa.literal("purged"),
        t.c.sequence,
        sa.literal(0),
        sa.literal(0),
        t.c.position,
        t.c.writer,
        t.c.created_at,
        t.c.purged_at,
    )
    if session_id is not None:
        query = query.where(t.c.session_id == session_id)
    columns = [
        "session_id",
        "session_key",
        "source",
        "state",
        "sequence",
        "message_count",
        "token_count",
        "position",
        "writer",
        "created_at",
        "updated_at",
    ]
    conn.execute(heads.insert().from_select(columns, query))
