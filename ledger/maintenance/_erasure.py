"""Privacy requests: export or erase one user's, one key's or one session's conversations.

A *scope* is exactly one of ``user`` (every session opened with that ``user_id``), ``key`` (every
session opened under that ``session_key``) or ``session`` (one session id).

:func:`export_scope` yields the scope's events in log order: each session's ``session-*`` and
``usage-*`` stream and, for a key, its ``key-*`` stream (archived events included), the same
JSON Lines ``ledger export`` writes.

:func:`erase` removes the scope's content everywhere the ledger keeps it: the session's events
(live rows and archive segments), its usage stream, its transcript, its usage totals, its search
documents and every projection snapshot. What stays is what keeps the invariants:

* the session's head becomes a tombstone (state ``purged``, its ``sequence`` and ``position``,
  no title, user, model or prompt), so a sequence is never reused or lowered and the session id
  can never be opened again;
* a cache holding an agent for the session rebuilds on its next check (``regressed``: the
  session is gone), so an erased conversation never lives on in a reused agent;
* the key streams keep their ``SessionSwitched`` events (session ids, reasons, times; no
  content), so the key's history of switches and every view stays equal to a rebuild;
* one ``erasures`` row records that it happened: scope, subject, who asked, when, how many
  sessions and events, and the session ids. Never the content.

On SQLite an erasure runs with ``PRAGMA secure_delete`` so the freed pages are zeroed, and ends
with a WAL checkpoint; on PostgreSQL the deleted rows stay in the table files until ``VACUUM``
reuses their space (``VACUUM FULL`` rewrites them): the content is gone from every read at
once, from the disk when the space is reused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import heapq
import socket
from collections.abc import Iterator, Sequence
from typing import Literal

import msgspec
import sqlalchemy as sa

from ledger.errors import InvalidArgumentError, SessionNotFoundError
from ledger.maintenance._jobs import CompactionReport, Progress, forgetters, purge_session
from ledger.records import RecordedEvent
from ledger.schema import erasures, projection_snapshots, session_heads, session_usage
from ledger.store import EventStore, purge_stream
from ledger.streams import key_stream, session_stream, usage_stream

__all__ = [
    "ErasureRecord",
    "Scope",
    "erase",
    "erasure_history",
    "export_scope",
    "operator",
    "scope_of",
    "scope_sessions",
]

ScopeKind = Literal["user", "key", "session"]


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    """Whose data: ``kind`` (user | key | session) and the ``subject`` of that kind."""

    kind: ScopeKind
    subject: str


class ErasureRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded erasure (the ``erasures`` table): the fact, never the content."""

    erasure_id: int
    scope: ScopeKind
    subject: str
    requested_by: str
    erased_at: dt.datetime
    sessions: int
    events: int
    session_ids: list[str]


def operator() -> str:
    """Who runs this process, ``user@host``: the default ``requested_by`` of an erasure."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def scope_of(
    *, user: str | None = None, key: str | None = None, session: str | None = None
) -> Scope:
    """The one scope given; anything else is an :class:`InvalidArgumentError`."""
    given = [
        (kind, value)
        for kind, value in (("user", user), ("key", key), ("session", session))
        if value is not None
    ]
    if len(given) != 1:
        raise InvalidArgumentError(
            "scope", dict(given) or None, "exactly one of user, key or session"
        )
    kind, subject = given[0]
    if not subject.strip():
        raise InvalidArgumentError(kind, subject, f"a non-empty {kind}")
    return Scope(kind=kind, subject=subject)  # type: ignore[arg-type]


def _scope_condition(scope: Scope) -> sa.ColumnElement[bool]:
    h = session_heads
    column = {"user": h.c.user_id, "key": h.c.session_key, "session": h.c.session_id}
    return column[scope.kind] == scope.subject


def scope_sessions(store: EventStore, scope: Scope) -> list[str]:
    """The session ids in ``scope``, oldest first; an unknown ``session`` is an error."""
    h = session_heads
    query = sa.select(h.c.session_id).where(_scope_condition(scope))
    with store.engine.connect() as conn:
        found = list(conn.execute(query.order_by(h.c.created_at, h.c.session_id)).scalars())
    if scope.kind == "session" and not found:
        raise SessionNotFoundError(scope.subject)
    return found


def _streams(scope: Scope, session_ids: Sequence[str]) -> list[str]:
    names = [name for sid in session_ids for name in (session_stream(sid), usage_stream(sid))]
    if scope.kind == "key":
        names.append(key_stream(scope.subject))
    return names


def export_scope(store: EventStore, scope: Scope) -> Iterator[RecordedEvent]:
    """The events of ``scope`` in log order (archived ones included), lazily per stream."""
    streams = _streams(scope, scope_sessions(store, scope))
    return heapq.merge(*(store.read_stream(name) for name in streams), key=lambda r: r.position)


def erase(
    store: EventStore,
    scope: Scope,
    *,
    requested_by: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> CompactionReport:
    """Remove the content of every session in ``scope``; see the module docstring.

    One session per transaction (its streams locked), so an erasure killed midway leaves every
    session either erased or untouched, and a rerun finishes the rest. ``dry_run`` lists the
    sessions (``session_ids``) and counts what would go, writing nothing, the record included.
    """
    candidates = scope_sessions(store, scope)
    report = CompactionReport(job="erase", dry_run=dry_run)
    projections = forgetters()
    for session_id in candidates:
        stream, usage = session_stream(session_id), usage_stream(session_id)
        with store.transaction(streams=[stream, usage]) as conn, _secure_delete(conn):
            records = store.read_stream_in(conn, stream)
            usage_records = store.read_stream_in(conn, usage)
            report.sessions += 1
            report.session_ids.append(session_id)
            report.events += len(records) + len(usage_records)
            report.bytes_before += sum(
                len(msgspec.json.encode(r.event)) for r in (*records, *usage_records)
            )
            if not dry_run:
                if records:  # a session purged by retention has a tombstone already
                    purge_session(conn, session_id, stream, records, projections)
                purge_stream(conn, usage)
                conn.execute(session_usage.delete().where(session_usage.c.session_id == session_id))
        if progress is not None:
            progress(1)
    if dry_run:
        return report
    with store.transaction() as conn:
        if report.sessions:
            # The snapshots hold what was just erased; the next rebuild starts from the log.
            conn.execute(projection_snapshots.delete())
        conn.execute(
            erasures.insert().values(
                scope=scope.kind,
                subject=scope.subject,
                requested_by=requested_by or operator(),
                erased_at=dt.datetime.now(dt.UTC),
                sessions=report.sessions,
                events=report.events,
                session_ids=msgspec.json.encode(report.session_ids).decode(),
            )
        )
    _checkpoint(store, report)
    return report


@contextlib.contextmanager
def _secure_delete(conn: sa.Connection) -> Iterator[None]:
    """SQLite: zero the pages this transaction frees (``PRAGMA secure_delete``), then restore."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = int(conn.exec_driver_sql("PRAGMA secure_delete").scalar_one())
    conn.exec_driver_sql("PRAGMA secure_delete = ON")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA secure_delete = {before}")


def _checkpoint(store: EventStore, report: CompactionReport) -> None:
    """SQLite: copy the WAL into the file and truncate it, so old page images go too."""
    if store.engine.dialect.name != "sqlite" or not report.sessions:
        return
    with store.engine.connect() as conn:
        busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
    if busy is not None and busy[0]:
        report.details.append(
            "the WAL could not be truncated while other connections read; "
            "it is reused as they finish"
        )


def erasure_history(store: EventStore, *, limit: int = 50) -> list[ErasureRecord]:
    """The most recent erasures, newest first."""
    e = erasures
    query = sa.select(e).order_by(e.c.erasure_id.desc()).limit(limit)
    with store.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        ErasureRecord(
            **{k: row[k] for k in ErasureRecord.__struct_fields__ if k != "session_ids"},
            session_ids=msgspec.json.decode(row["session_ids"]),
        )
        for row in rows
    ]
