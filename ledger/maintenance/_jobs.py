"""Compaction jobs: keep the store small without losing anything it promised to keep.

=============  =========================================================================
job            what it does
=============  =========================================================================
``archive``    moves closed or idle sessions' events into compressed segments (restorable
               byte-for-byte; reads stay transparent; an append restores first)
``restore``    brings one archived session back into ``events``
``retention``  purges sessions idle longer than an explicit age, leaving a tombstone head
               that keeps ``sequence`` (opt-in: it needs ``older_than``)
``keys``       drops ``SessionSwitched`` events older than a horizon from key streams,
               keeping each key's latest switch (Kafka-style log compaction)
``snapshot``   stores the inline views at a log position so a rebuild starts there
``vacuum``     returns free pages to the file system (SQLite) / ``ANALYZE`` (PostgreSQL)
=============  =========================================================================

Every job works in bounded transactions (one session or one key at a time, holding the append
lock only for that), so a job killed at any point leaves the store consistent and a rerun
finishes the work; ``dry_run`` computes the same report and writes nothing. Archive, keys and
snapshot change no head, no live transcript and no cache decision.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Protocol

import msgspec
import sqlalchemy as sa

from ledger import plugins
from ledger.errors import InvalidArgumentError, SessionNotFoundError
from ledger.records import RecordedEvent
from ledger.schema import (
    projection_snapshots,
    session_heads,
    session_keys,
    session_tombstones,
)
from ledger.store import (
    EventStore,
    archive_stream,
    drop_old_key_switches,
    old_key_switches,
    purge_stream,
    restore_stream,
    segment_size,
    session_stream_is_live,
)
from ledger.streams import session_stream

__all__ = [
    "JOBS",
    "CompactionReport",
    "Progress",
    "archive",
    "compact_keys",
    "database_bytes",
    "parse_duration",
    "restore",
    "retention",
    "vacuum",
]

Progress = Callable[[int], None]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class CompactionReport(msgspec.Struct, kw_only=True):
    """What a job did, or with ``dry_run`` what it would do."""

    job: str
    dry_run: bool
    sessions: int = 0
    events: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    details: list[str] = msgspec.field(default_factory=list)
    #: The sessions it touched (or, with ``dry_run``, would touch), in the order it went.
    session_ids: list[str] = msgspec.field(default_factory=list)


class ForgettingProjection(Protocol):
    """A projection that can drop what it derived from a purged session."""

    name: str

    def forget(
        self, conn: sa.Connection, session_id: str, records: Sequence[RecordedEvent]
    ) -> None:
        """Remove ``session_id``'s contribution (``records`` are its events, in order)."""


#: The longest duration :func:`parse_duration` takes: far older than any stored event, and
#: far from where ``timedelta`` (or a cutoff ``now - duration``) overflows.
MAX_DURATION = dt.timedelta(days=365 * 1000)


def parse_duration(text: str | float | int) -> dt.timedelta:
    """``30d``, ``12h``, ``15m``, ``90s``, ``2w``; a bare number is seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if match is None:
            raise InvalidArgumentError("duration", text, "a number with unit s, m, h, d or w")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not seconds > 0:  # NaN too
        raise InvalidArgumentError("duration", text, "a duration > 0")
    if seconds > MAX_DURATION.total_seconds():  # also what timedelta and ``now -`` overflow on
        raise InvalidArgumentError("duration", text, f"at most {MAX_DURATION.days // 365} years")
    return dt.timedelta(seconds=seconds)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def archive(
    store: EventStore,
    *,
    older_than: dt.timedelta | None = dt.timedelta(days=30),
    dry_run: bool = False,
    limit: int | None = None,
    progress: Progress | None = None,
) -> CompactionReport:
    """Archive closed sessions and sessions idle longer than ``older_than``."""
    h = session_heads
    condition = h.c.state == "closed"
    if older_than is not None:
        condition = sa.or_(condition, h.c.updated_at < _now() - older_than)
    query = (
        sa.select(h.c.session_id)
        .where(condition, h.c.state != "purged", session_stream_is_live(h.c.session_id))
        .order_by(h.c.updated_at)
    )
    if limit is not None:
        query = query.limit(limit)
    with store.engine.connect() as conn:
        candidates = list(conn.execute(query).scalars())
    report = CompactionReport(job="archive", dry_run=dry_run)
    for session_id in candidates:
        stream = session_stream(session_id)
        with store.transaction(streams=[stream]) as conn:
            info = archive_stream(conn, stream, dry_run=dry_run)
        if info is not None:
            report.sessions += 1
            report.session_ids.append(session_id)
            report.events += info.events
            report.bytes_before += info.raw_bytes
            report.bytes_after += info.compressed_bytes
        if progress is not None:
            progress(1)
    return report


def restore(store: EventStore, session_id: str, *, dry_run: bool = False) -> CompactionReport:
    """Bring an archived session back into the live table, byte-for-byte."""
    report = CompactionReport(job="restore", dry_run=dry_run)
    stream = session_stream(session_id)
    with store.transaction(streams=[stream]) as conn:
        segment = segment_size(conn, stream)
        if segment is None:
            if store.head_sequence(stream) == 0:
                raise SessionNotFoundError(session_id)
            report.details.append(f"{session_id} is not archived")
            return report
        report.sessions, (report.events, report.bytes_after) = 1, segment
        if not dry_run:
            restore_stream(conn, stream)
    return report


def forgetters() -> list[ForgettingProjection]:
    """The installed projections that can forget a purged session."""
    return [p for p in (cls() for cls in plugins.load("projections")) if hasattr(p, "forget")]


def retention(
    store: EventStore,
    *,
    older_than: dt.timedelta | None,
    key: str | None = None,
    user: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> CompactionReport:
    """Purge sessions idle longer than ``older_than``, keeping a tombstone head for each.

    ``key`` / ``user`` narrow it to the sessions opened under that session key / by that user.
    The active session of a key is kept unless it is closed. Usage statistics lose what the
    purged sessions contributed (they are derived from the log, and those events are gone);
    every other view keeps equalling a rebuild from the log. The report's ``session_ids``
    lists the sessions purged (with ``dry_run``: those it would purge).
    """
    if older_than is None:
        raise InvalidArgumentError("older_than", None, "an explicit age: retention is opt-in")
    for name, value in (("key", key), ("user", user)):
        if value is not None and not value.strip():
            raise InvalidArgumentError(name, value, f"a non-empty {name}")
    h, k = session_heads, session_keys
    active = sa.select(k.c.session_id).where(k.c.session_id == h.c.session_id).exists()
    query = sa.select(h.c.session_id).where(
        h.c.updated_at < _now() - older_than,
        h.c.state != "purged",
        sa.or_(h.c.state == "closed", ~active),
    )
    if key is not None:
        query = query.where(h.c.session_key == key)
    if user is not None:
        query = query.where(h.c.user_id == user)
    with store.engine.connect() as conn:
        candidates = list(conn.execute(query.order_by(h.c.updated_at)).scalars())
    report = CompactionReport(job="retention", dry_run=dry_run)
    projections = forgetters()
    for session_id in candidates:
        stream = session_stream(session_id)
        with store.transaction(streams=[stream]) as conn:
            # With the stream locked, ask again: an append since the scan makes it young.
            if conn.execute(query.where(h.c.session_id == session_id)).first() is None:
                continue
            records = store.read_stream_in(conn, stream)
            report.sessions += 1
            report.session_ids.append(session_id)
            report.events += len(records)
            report.bytes_before += sum(len(msgspec.json.encode(r.event)) for r in records)
            if not dry_run:
                purge_session(conn, session_id, stream, records, projections)
        if progress is not None:
            progress(1)
    if report.sessions and not dry_run:
        with store.transaction() as conn:
            # The snapshots hold what was just purged; the next rebuild starts from the log.
            conn.execute(projection_snapshots.delete())
    return report


def purge_session(
    conn: sa.Connection,
    session_id: str,
    stream: str,
    records: Sequence[RecordedEvent],
    projections: Sequence[ForgettingProjection],
) -> None:
    """Delete ``session_id``'s events (archived too), keep a tombstone head, and let each
    projection forget what it derived from ``records``."""
    row = (
        conn.execute(sa.select(session_heads).where(session_heads.c.session_id == session_id))
        .mappings()
        .one()
    )
    purge_stream(conn, stream)
    conn.execute(
        session_tombstones.insert().values(
            session_id=session_id,
            session_key=row["session_key"],
            source=row["source"],
            sequence=row["sequence"],
            position=row["position"],
            writer=row["writer"],
            created_at=row["created_at"],
            purged_at=_now(),
        )
    )
    # After the tombstone exists: the sessions projection rebuilds the head from it.
    for projection in projections:
        projection.forget(conn, session_id, records)


def compact_keys(
    store: EventStore,
    *,
    older_than: dt.timedelta = dt.timedelta(days=7),
    dry_run: bool = False,
    progress: Progress | None = None,
) -> CompactionReport:
    """Drop key-stream switches older than ``older_than``, keeping each key's latest one."""
    cutoff = _now() - older_than
    with store.engine.connect() as conn:
        found = old_key_switches(conn, cutoff)
    report = CompactionReport(job="keys", dry_run=dry_run)
    for stream, count, size in found:
        report.sessions += 1
        report.details.append(f"{stream}: {count} old switches")
        report.events += count
        report.bytes_before += size
        if not dry_run:
            with store.transaction(streams=[stream]) as conn:
                drop_old_key_switches(conn, stream, cutoff)
        if progress is not None:
            progress(1)
    return report


def database_bytes(store: EventStore) -> int:
    """The size of the ledger's data: file pages (SQLite) or its tables (PostgreSQL)."""
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "sqlite":
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
            size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
            return int(pages) * int(size)
        total = conn.exec_driver_sql(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
        ).scalar_one()
        return int(total)


def vacuum(
    store: EventStore,
    *,
    dry_run: bool = False,
    pages: int = 2000,
    progress: Progress | None = None,
) -> CompactionReport:
    """SQLite: give free pages back in bounded steps; PostgreSQL: refresh planner statistics."""
    report = CompactionReport(job="vacuum", dry_run=dry_run)
    report.bytes_before = database_bytes(store)
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA auto_vacuum").scalar_one()
            free = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
            size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
        report.details.append(f"{free} free pages, auto_vacuum mode {mode}")
        if mode != 2:
            report.details.append("file not in incremental auto_vacuum mode; nothing freed")
        elif dry_run:
            report.bytes_after = report.bytes_before - int(free) * int(size)
            return report
        else:
            while free:
                with store.transaction() as conn:
                    conn.exec_driver_sql(f"PRAGMA incremental_vacuum({pages})")
                    free = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
                if progress is not None:
                    progress(pages)
    elif not dry_run:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    report.bytes_after = database_bytes(store) if not dry_run else report.bytes_before
    return report


#: The jobs of the core; ``jobs()`` adds those plugged in (``snapshot`` from projections).
JOBS: dict[str, Callable[..., CompactionReport]] = {
    "archive": archive,
    "retention": retention,
    "keys": compact_keys,
    "vacuum": vacuum,
}
