"""The ``sessions`` inline projection: ``session_heads`` and ``transcript_messages``.

Heads and the live transcript are one projection because a head's ``message_count`` is exactly
the number of live transcript rows: a retraction lowers it by the number of rows it really took
out of the transcript, whatever ids it named. ``sequence`` is the session stream's head, so it
keeps rising through undo and retry while ``message_count`` goes down.

A batch is folded per session in memory and written with one statement per touched session, so
a single-message append costs one UPDATE and one INSERT, and a rebuild writes few rows per batch.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import sqlalchemy as sa

from ledger.codec import json_text, transcript_row
from ledger.events import (
    MessageAppended,
    MessagesRetracted,
    SessionClosed,
    SessionConfigured,
    SessionOpened,
    SessionReopened,
    SessionTitled,
    UsageRecorded,
)
from ledger.records import RecordedEvent
from ledger.schema import (
    UTCDateTime,
    session_heads,
    session_tombstones,
    session_usage,
    transcript_messages,
)
from ledger.streams import parse
from projections.base import Projection, insert_rows, select_by_keys, write_rows

__all__ = ["SessionsProjection"]


def _message_row(record: RecordedEvent, event: MessageAppended) -> dict[str, Any]:
    return transcript_row(
        event,
        sequence=record.sequence,
        position=record.position,
        writer=record.writer,
        recorded_at=record.recorded_at,
    )


def activity_time(record: RecordedEvent) -> dt.datetime | None:
    """When the gateway says this event happened, for ``last_activity_at``; None: not activity.

    Messages, opening, closing and reopening are a session's activity (in the gateway's time
    where it gave one); titles, settings and retractions are not, so an import that titles old
    sessions today does not make them look recent.
    """
    event = record.event
    if isinstance(event, MessageAppended):
        return event.created_at or record.recorded_at
    if isinstance(event, SessionOpened):
        return event.started_at or record.recorded_at
    if isinstance(event, SessionClosed):
        return event.ended_at or record.recorded_at
    if isinstance(event, SessionReopened):
        return record.recorded_at
    return None


def _later(current: dt.datetime | None, candidate: dt.datetime | None) -> dt.datetime | None:
    if candidate is None:
        return current
    return candidate if current is None or candidate > current else current


#: The token counters of a ``UsageRecorded`` that ``session_usage`` sums.
USAGE_COUNTERS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


def _new_usage(session_id: str) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "calls": 0,
        **dict.fromkeys(USAGE_COUNTERS, 0),
        "cost_usd": None,
        "model": None,
        "position": 0,
        "updated_at": None,
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
        "started_at": None,
        "ended_at": None,
        "end_reason": None,
        "last_activity_at": None,
        "system_prompt": None,
        "model_config": None,
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
            last_activity_at=sa.case(
                (
                    sa.or_(
                        c.last_activity_at.is_(None),
                        c.last_activity_at < sa.bindparam("activity", type_=UTCDateTime),
                    ),
                    sa.bindparam("activity", type_=UTCDateTime),
                ),
                else_=c.last_activity_at,
            ),
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


class _Pending:
    """Transcript rows folded but not written yet, by (session id, message id)."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], dict[str, Any]] = {}
        #: How many messages the last :meth:`retract` marked in memory.
        self.taken = 0

    def add(self, row: dict[str, Any]) -> None:
        self._rows[(row["session_id"], row["message_id"])] = row

    def retract(self, session_id: str, message_ids: Sequence[str], position: int) -> list[str]:
        """Mark the live pending ones among ``message_ids``; returns the ids not pending."""
        rest: list[str] = []
        self.taken = 0
        for message_id in dict.fromkeys(message_ids):
            row = self._rows.get((session_id, message_id))
            if row is None:
                rest.append(message_id)
            elif row["retracted_position"] is None:
                row["retracted_position"] = position
                self.taken += 1
        return rest

    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows.values())

    def clear(self) -> None:
        self._rows.clear()


class SessionsProjection(Projection):
    """Per-session heads and the live transcript, updated inside every append."""

    name: ClassVar[str] = "sessions"
    inline: ClassVar[bool] = True
    default_tables: ClassVar[tuple[sa.Table, ...]] = (
        session_heads,
        transcript_messages,
        session_usage,
    )
    keys: ClassVar[dict[str, tuple[str, ...]]] = {
        "session_heads": ("session_id",),
        "transcript_messages": ("session_id", "message_id"),
        "session_usage": ("session_id",),
    }

    def apply(self, conn: sa.Connection, records: Sequence[RecordedEvent]) -> None:
        heads_table = self.table("session_heads")
        usage: list[RecordedEvent] = []
        mine: list[tuple[str, RecordedEvent]] = []  # (session id, record), parsed once
        for record in records:
            kind, name = parse(record.stream)
            if kind == "session":
                mine.append((name, record))
            elif kind == "usage":
                usage.append(record)
        if usage:
            self._apply_usage(conn, usage)
        if not mine:
            return
        session_ids = {sid for sid, _ in mine}
        if len(session_ids) == 1 and self._append_only(
            conn, next(iter(session_ids)), [r for _, r in mine]
        ):
            return
        query = select_by_keys(heads_table, "session_id")
        loaded = {
            row["session_id"]: dict(row)
            for row in conn.execute(query, {"keys": list(session_ids)}).mappings()
        }
        heads = {sid: dict(row) for sid, row in loaded.items()}
        pending = _Pending()
        for session_id, record in mine:
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
                "activity": max(
                    m.created_at or r.recorded_at for r, m in zip(records, messages, strict=True)
                ),
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
        pending: _Pending,
    ) -> None:
        event = record.event
        head["sequence"] = record.sequence
        head["position"] = record.position
        head["writer"] = record.writer
        head["updated_at"] = record.recorded_at
        head["last_activity_at"] = _later(head["last_activity_at"], activity_time(record))
        if isinstance(event, MessageAppended):
            pending.add(_message_row(record, event))
            head["message_count"] += 1
            head["token_count"] += event.token_count or 0
        elif isinstance(event, MessagesRetracted):
            # Messages of this batch not written yet are marked in memory; only the others
            # cost a statement, so a batch's rows still go out in one insert.
            session_id = head["session_id"]
            rest = pending.retract(session_id, event.message_ids, record.position)
            head["message_count"] -= pending.taken
            if rest:
                head["message_count"] -= self._retract(conn, session_id, rest, record)
        elif isinstance(event, SessionOpened):
            head.update(
                session_key=event.session_key,
                source=event.source,
                user_id=event.user_id,
                model=event.model,
                title=event.title,
                parent_session_id=event.parent_session_id,
                created_at=record.recorded_at,
                started_at=event.started_at or record.recorded_at,
                system_prompt=event.system_prompt,
                model_config=json_text(event.model_config),
            )
        elif isinstance(event, SessionTitled):
            head["title"] = event.title
        elif isinstance(event, SessionConfigured):
            if event.system_prompt is not None:
                head["system_prompt"] = event.system_prompt or None
            if event.model is not None:
                head["model"] = event.model
            if event.model_config is not None:
                head["model_config"] = json_text(event.model_config)
        elif isinstance(event, SessionClosed):
            head.update(
                state="closed",
                ended_at=event.ended_at or record.recorded_at,
                end_reason=event.reason,
            )
        elif isinstance(event, SessionReopened):
            head.update(state="open", ended_at=None, end_reason=None)

    def _apply_usage(self, conn: sa.Connection, records: Sequence[RecordedEvent]) -> None:
        """Add each ``UsageRecorded`` to its session's totals in ``session_usage``."""
        table = self.table("session_usage")
        session_ids = [parse(r.stream)[1] for r in records]
        query = select_by_keys(table, "session_id")
        loaded = {
            row["session_id"]: dict(row)
            for row in conn.execute(query, {"keys": sorted(set(session_ids))}).mappings()
        }
        totals = {sid: dict(row) for sid, row in loaded.items()}
        for session_id, record in zip(session_ids, records, strict=True):
            event = record.event
            if not isinstance(event, UsageRecorded):
                continue
            row = totals.setdefault(session_id, _new_usage(session_id))
            row["calls"] += 1
            for name in USAGE_COUNTERS:
                row[name] += getattr(event, name)
            if event.cost_usd is not None:
                row["cost_usd"] = (row["cost_usd"] or 0.0) + event.cost_usd
            if event.model is not None:
                row["model"] = event.model
            row["position"] = record.position
            row["updated_at"] = record.recorded_at
        changed = {sid: row for sid, row in totals.items() if loaded.get(sid) != row}
        write_rows(conn, table, "session_id", changed, loaded)

    def _retract(
        self, conn: sa.Connection, session_id: str, ids: Sequence[str], record: RecordedEvent
    ) -> int:
        """Mark the named live messages retracted; returns how many were live."""
        result = conn.execute(
            _retract_statement(self.table("transcript_messages")),
            {"sid": session_id, "ids": list(ids), "at": record.position},
        )
        return int(result.rowcount)

    def _flush(self, conn: sa.Connection, pending: _Pending | list[dict[str, Any]]) -> None:
        rows = pending.rows() if isinstance(pending, _Pending) else pending
        if rows:
            insert_rows(conn, self.table("transcript_messages"), rows)
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
        "started_at",
        "last_activity_at",
    ]
    conn.execute(heads.insert().from_select(columns, query))
