"""Queries on the log tables that other layers need, so no SQL on them is written elsewhere.

The cache asks what lies between a baseline and the head, the gateway API whether an event id
is stored, the importer which ids a stream holds, maintenance which streams are archived, how
big a segment is, and which key switches are old enough to drop. Each takes the caller's
connection, so it runs inside the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec
import sqlalchemy as sa

from ledger.schema import archive_segments, events, session_tombstones, streams
from ledger.store._archive import restore_stream
from ledger.store._postgres import HORIZON
from ledger.streams import KEY_PREFIX, SESSION_PREFIX, parse

__all__ = [
    "HeadDrift",
    "drop_old_key_switches",
    "event_ids",
    "has_event",
    "head_drift",
    "kinds_between",
    "log_end",
    "old_key_switches",
    "purge_stream",
    "segment_size",
    "session_stream_is_live",
]

_between = (
    sa.select(events.c.type, events.c.writer)
    .where(
        events.c.stream == sa.bindparam("stream"),
        events.c.sequence > sa.bindparam("low"),
        events.c.sequence <= sa.bindparam("high"),
    )
    .order_by(events.c.sequence)
)


def log_end(conn: sa.Connection, *, final_only: bool = True) -> int:
    """The highest position in the log (archived events included), 0 when it is empty.

    ``final_only`` (PostgreSQL): the highest a reader can be given now, below the horizon
    (``_postgres``), so a reader starting after it misses no event still in flight. One
    statement, so an archive or restore committing meanwhile is seen on both sides.
    """
    live, segment = events.c.position, archive_segments.c.last_position
    if final_only and conn.dialect.name == "postgresql":
        horizon: sa.ColumnElement[int] = sa.literal_column(HORIZON)
        live_max = sa.select(sa.func.max(live)).where(live < horizon)
        segment_max = sa.select(sa.func.max(segment)).where(segment < horizon)
    else:
        live_max, segment_max = sa.select(sa.func.max(live)), sa.select(sa.func.max(segment))
    both = sa.select(live_max.scalar_subquery(), segment_max.scalar_subquery())
    live, archived = conn.execute(both).one()
    return max(int(live or 0), int(archived or 0))


def kinds_between(conn: sa.Connection, stream: str, low: int, high: int) -> list[tuple[str, str]]:
    """``(type, writer)`` of the LIVE events of ``stream`` with ``low < sequence <= high``.

    Fewer than ``high - low`` rows means the stream is archived: read it with ``read_stream``.
    """
    found = conn.execute(_between, {"stream": stream, "low": low, "high": high})
    return [(row.type, row.writer) for row in found]


def has_event(conn: sa.Connection, event_id: uuid.UUID) -> bool:
    """Whether an event with this id is in the live log."""
    found = conn.execute(sa.select(events.c.position).where(events.c.event_id == event_id))
    return found.first() is not None


def event_ids(conn: sa.Connection, stream: str) -> set[uuid.UUID]:
    """The ids of ``stream``'s live events."""
    query = sa.select(events.c.event_id).where(events.c.stream == stream)
    return set(conn.execute(query).scalars())


def session_stream_is_live(session_id: Any) -> sa.ColumnElement[bool]:
    """SQL: the session (a column or value) has a stream that is not archived."""
    return (
        sa.select(streams.c.stream)
        .where(
            streams.c.stream == sa.literal(SESSION_PREFIX) + session_id,
            streams.c.archived.is_(sa.false()),
        )
        .exists()
    )


def segment_size(conn: sa.Connection, stream: str) -> tuple[int, int] | None:
    """``(events, uncompressed bytes)`` of ``stream``'s archive segment, None if not archived."""
    found = conn.execute(
        sa.select(archive_segments.c.event_count, archive_segments.c.raw_bytes).where(
            archive_segments.c.stream == stream
        )
    ).first()
    return None if found is None else (int(found.event_count), int(found.raw_bytes))


def purge_stream(conn: sa.Connection, stream: str) -> None:
    """Delete every event of ``stream``, archived or live (retention; its head stays)."""
    restore_stream(conn, stream)
    conn.execute(events.delete().where(events.c.stream == stream))


def _old_switches(cutoff: dt.datetime) -> sa.ColumnElement[bool]:
    e = events
    latest = sa.select(streams.c.sequence).where(streams.c.stream == e.c.stream).scalar_subquery()
    return sa.and_(
        e.c.stream.startswith(KEY_PREFIX, autoescape=True),
        e.c.recorded_at < cutoff,
        e.c.sequence < latest,
    )


def old_key_switches(conn: sa.Connection, cutoff: dt.datetime) -> list[tuple[str, int, int]]:
    """Per key stream: ``(stream, events, payload bytes)`` recorded before ``cutoff``, each
    key's latest switch excepted."""
    e = events
    query = (
        sa.select(e.c.stream, sa.func.count(), sa.func.sum(sa.func.length(e.c.data)))
        .where(_old_switches(cutoff))
        .group_by(e.c.stream)
    )
    return [(stream, int(count), int(size or 0)) for stream, count, size in conn.execute(query)]


def drop_old_key_switches(conn: sa.Connection, stream: str, cutoff: dt.datetime) -> None:
    """Delete what :func:`old_key_switches` counted for ``stream``."""
    conn.execute(events.delete().where(_old_switches(cutoff), events.c.stream == stream))


class HeadDrift(msgspec.Struct, frozen=True, kw_only=True):
    """A ``streams`` head row that does not match the stream's events (``ledger projections
    verify`` reports it as the ``log`` check)."""

    stream: str
    kind: str  # missing | behind | ahead | archived_flag
    head: int | None
    events: int | None
    detail: str


def head_drift(conn: sa.Connection, limit: int = 1000) -> list[HeadDrift]:
    """Every ``streams`` row that disagrees with its events (live rows and archive segments).

    A head must equal the stream's last sequence, except where events were deleted on purpose
    and the head kept so no sequence is ever reused: a purged or erased session's streams
    (``session-*``, ``usage-*`` with a tombstone) may be ahead of what is left. ``archived``
    must be set exactly when the stream's events are in a segment.
    """
    e, s, a = events, streams, archive_segments
    live = (
        sa.select(e.c.stream, sa.func.max(e.c.sequence).label("last"))
        .group_by(e.c.stream)
        .subquery()
    )
    found: list[HeadDrift] = []
    missing = (
        sa.select(live.c.stream, live.c.last)
        .outerjoin(s, s.c.stream == live.c.stream)
        .where(s.c.stream.is_(None))
        .limit(limit)
    )
    for stream, last in conn.execute(missing):
        found.append(
            HeadDrift(
                stream=stream,
                kind="missing",
                head=None,
                events=int(last),
                detail="events without a head row",
            )
        )
    last_of = sa.func.coalesce(live.c.last, a.c.last_sequence)
    rows = conn.execute(
        sa.select(s.c.stream, s.c.sequence, s.c.archived, live.c.last, a.c.last_sequence)
        .outerjoin(live, live.c.stream == s.c.stream)
        .outerjoin(a, a.c.stream == s.c.stream)
        .where(
            sa.or_(
                last_of.is_(None),
                s.c.sequence != last_of,
                s.c.archived != (a.c.stream.is_not(None) & live.c.stream.is_(None)),
            )
        )
        .limit(limit)
    )
    purged = set(conn.execute(sa.select(session_tombstones.c.session_id)).scalars())
    for stream, head, archived, live_last, segment_last in rows:
        last = live_last if live_last is not None else segment_last
        in_segment = segment_last is not None and live_last is None
        category, ident = parse(stream)
        if bool(archived) != in_segment:
            where = "in a segment" if in_segment else "live"
            kind, detail = "archived_flag", f"archived={bool(archived)} but events are {where}"
        elif last is not None and head < last:
            kind, detail = "behind", "the head is below the last event: a sequence would be reused"
        elif category in ("session", "usage") and ident in purged:
            continue  # purged or erased on purpose; the head keeps its sequences
        elif last is None and category == "other":
            continue  # a caller's stream emptied by the caller (nothing of ours to check)
        else:
            kind, detail = "ahead", "the head is above the last event, which no job removed"
        found.append(
            HeadDrift(stream=stream, kind=kind, head=int(head), events=last, detail=detail)
        )
    return found
