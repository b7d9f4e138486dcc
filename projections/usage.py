"""The ``usage`` asynchronous projection: sessions, messages, retractions and tokens per day.

Rows are keyed by ``(source, day)`` with the day in UTC. A message's source is its session's,
read from ``session_heads`` (an inline view, so always current; a session's source never
changes). Events of sessions without a head count under source ``unknown``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, ClassVar

import sqlalchemy as sa

from ledger.events import MessageAppended, MessagesRetracted, SessionOpened
from ledger.records import RecordedEvent
from ledger.schema import session_heads, usage_daily
from projections.base import Projection
from projections.checkpoint import lock_checkpoint

__all__ = ["UsageProjection"]

UNKNOWN_SOURCE = "unknown"


class UsageProjection(Projection):
    """Usage statistics per source and UTC day."""

    name: ClassVar[str] = "usage"
    inline: ClassVar[bool] = False
    default_tables: ClassVar[tuple[sa.Table, ...]] = (usage_daily,)
    keys: ClassVar[dict[str, tuple[str, ...]]] = {"usage_daily": ("source", "day")}

    def apply(self, conn: sa.Connection, records: Sequence[RecordedEvent]) -> None:
        self._fold(conn, records, 1)

    def forget(
        self, conn: sa.Connection, session_id: str, records: Sequence[RecordedEvent]
    ) -> None:
        """Subtract a purged session's events, those this projection had already applied.

        Locks the checkpoint first, so a runner batch in flight finishes (or waits) before:
        otherwise it could count events this purge is about to remove.
        """
        applied = lock_checkpoint(conn, self.name)
        self._fold(conn, [r for r in records if r.position <= applied], -1)

    def _fold(self, conn: sa.Connection, records: Sequence[RecordedEvent], sign: int) -> None:
        relevant = [
            r
            for r in records
            if isinstance(r.event, MessageAppended | MessagesRetracted | SessionOpened)
        ]
        if not relevant:
            return
        sources = self._sources(conn, relevant)
        deltas: dict[tuple[str, dt.date], dict[str, int]] = {}
        for record in relevant:
            event = record.event
            assert isinstance(event, MessageAppended | MessagesRetracted | SessionOpened)
            source = (
                event.source
                if isinstance(event, SessionOpened)
                else sources.get(event.session_id, UNKNOWN_SOURCE)
            )
            key = (source, record.recorded_at.date())
            delta = deltas.setdefault(
                key, {"sessions": 0, "messages": 0, "retractions": 0, "tokens": 0}
            )
            if isinstance(event, SessionOpened):
                delta["sessions"] += sign
            elif isinstance(event, MessageAppended):
                delta["messages"] += sign
                delta["tokens"] += sign * (event.token_count or 0)
            else:
                delta["retractions"] += sign * len(event.message_ids)
        self._add(conn, deltas)

    @staticmethod
    def _sources(conn: sa.Connection, records: Sequence[RecordedEvent]) -> dict[str, str]:
        wanted = {
            r.event.session_id
            for r in records
            if isinstance(r.event, MessageAppended | MessagesRetracted)
        }
        opened = {
            r.event.session_id: r.event.source
            for r in records
            if isinstance(r.event, SessionOpened)
        }
        missing = wanted - opened.keys()
        if missing:
            h = session_heads
            rows = conn.execute(
                sa.select(h.c.session_id, h.c.source).where(h.c.session_id.in_(missing))
            )
            opened.update({sid: src or UNKNOWN_SOURCE for sid, src in rows})
        return opened

    def _add(self, conn: sa.Connection, deltas: dict[tuple[str, dt.date], dict[str, int]]) -> None:
        t = self.table("usage_daily")
        current = {
            (row.source, row.day): row
            for row in conn.execute(
                sa.select(t).where(sa.tuple_(t.c.source, t.c.day).in_(list(deltas)))
            )
        }
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        emptied: list[dict[str, Any]] = []
        for (source, day), delta in deltas.items():
            row = current.get((source, day))
            if row is None:
                inserts.append({"source": source, "day": day, **delta})
                continue
            totals = {name: getattr(row, name) + value for name, value in delta.items()}
            if any(totals.values()):
                updates.append({"_source": source, "_day": day, **totals})
            else:
                # Everything it counted was purged: a rebuild would have no row here either.
                emptied.append({"_source": source, "_day": day})
        if emptied:
            conn.execute(
                t.delete().where(
                    t.c.source == sa.bindparam("_source"), t.c.day == sa.bindparam("_day")
                ),
                emptied,
            )
        if inserts:
            conn.execute(t.insert(), inserts)
        if updates:
            conn.execute(
                t.update()
                .where(t.c.source == sa.bindparam("_source"), t.c.day == sa.bindparam("_day"))
                .values(
                    {
                        name: sa.bindparam(name)
                        for name in ("sessions", "messages", "retractions", "tokens")
                    }
                ),
                updates,
            )
