"""The event store: append to streams with optimistic concurrency (reads: ``_reader``).

An append is one transaction that (1) locks the streams it writes, (2) returns the original
result if the given ``event_ids`` are stored already, (3) claims each stream's sequences with one
upsert of its head row and compares the head it had with ``expected_sequence`` (raising rolls it
all back), (4) inserts the events and (5) runs the inline projections on the same connection, so
views never lag the log. An append to an archived stream restores it first.

How writers are ordered, so that a reader of :meth:`EventStore.read_all` can never pass over an
event that commits late, is each backend's business: ``_sqlite`` (one writer at a time) and
``_postgres`` (per-stream locks, positions from transaction ids, reads below a horizon). The
``UNIQUE (stream, sequence)`` index stays as the backstop, and ``_errors`` is the one place
that maps driver errors.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import sqlalchemy as sa

from ledger import plugins
from ledger.codec import Codec, check_text
from ledger.config import Settings
from ledger.errors import DatabaseError, InvalidArgumentError, WrongExpectedVersionError
from ledger.events import Event
from ledger.records import AppendResult, RecordedEvent, StreamAppend
from ledger.schema import streams as streams_table
from ledger.store import migration
from ledger.store._archive import restore_archived, restore_stream
from ledger.store._backend import WritePath
from ledger.store._errors import CONSTRAINTS, append_error
from ledger.store._idempotency import stored_result
from ledger.store._oneshot import OneShot
from ledger.store._postgres import HORIZON, MAX_EVENTS_PER_TRANSACTION, PostgresWritePath
from ledger.store._prepare import prepare
from ledger.store._reader import LogReader
from ledger.store._sqlite import SqliteWritePath
from ledger.store.database import WRITE, create_engine, is_sqlite, require_existing

__all__ = ["EventStore", "InlineProjection", "default_writer"]


#: ``Connection.info`` key: the streams the open transaction has locked (taken once each).
_LOCKED = "ledger_locked_streams"


class InlineProjection(Protocol):
    """A view updated inside the append transaction (read-your-writes)."""

    name: str

    def apply(self, conn: sa.Connection, records: Sequence[RecordedEvent]) -> None:
        """Fold ``records`` (just written, in position order) into the view."""


_WRITER_SUFFIX: dict[int, str] = {}


def default_writer() -> str:
    """``<hostname>:<pid>:<random>``, the writer id of this process for its lifetime.

    The random part keeps two containers whose processes are both PID 1 on hosts of one name,
    or a PID reused after a restart, from passing as one writer (the agent cache would take
    each other's writes as its own). A forked child gets its own.
    """
    pid = os.getpid()
    suffix = _WRITER_SUFFIX.setdefault(pid, secrets.token_hex(4))
    return f"{socket.gethostname()}:{pid}:{suffix}"


def _recorded(row: dict[str, Any], sequence: int, position: int, event: Event) -> RecordedEvent:
    """The record of a row just inserted, for the inline projections."""
    return RecordedEvent(
        stream=row["stream"],
        sequence=sequence,
        position=position,
        type=row["type"],
        event=event,
        event_id=row["event_id"],
        writer=row["writer"],
        recorded_at=row["recorded_at"],
        schema_version=row["schema_version"],
    )


class EventStore(LogReader):
    """An append-only log of events in streams, on SQLite or PostgreSQL.

    Open with :meth:`open`; the store owns its engine and must be :meth:`close`\\ d (or used as
    a context manager). Instances are safe to share between threads.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        writer: str | None = None,
        settings: Settings | None = None,
        codec: Codec | None = None,
        inline_projections: Sequence[InlineProjection] | None = None,
    ) -> None:
        self._sqlite = is_sqlite(engine)
        super().__init__(horizon=None if self._sqlite else HORIZON)
        self.engine = engine
        self.settings = settings or Settings.from_env()
        self.writer = writer or default_writer()
        self._on_close: list[Callable[[], None]] = []
        self.codec = codec or Codec(max_event_bytes=self.settings.max_event_bytes)
        if inline_projections is None:
            inline_projections = [cls() for cls in plugins.load("inline_projections")]
        self.inline_projections: list[InlineProjection] = list(inline_projections)
        self._local_writer: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if self._sqlite else contextlib.nullcontext()
        )
        #: The single-message shortcut of the gateway API (``_oneshot``).
        self.one_shot = OneShot(
            engine,
            {p.name for p in self.inline_projections},
            self._local_writer,
            busy_timeout_ms=self.settings.busy_timeout_ms,
        )
        self._path: WritePath = (
            SqliteWritePath(engine.dialect) if self._sqlite else PostgresWritePath()
        )
        self._head = sa.select(streams_table.c.stream, streams_table.c.sequence).where(
            streams_table.c.stream.in_(sa.bindparam("streams", expanding=True))
        )

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        writer: str | None = None,
        settings: Settings | None = None,
        inline_projections: Sequence[InlineProjection] | None = None,
        create: bool = True,
    ) -> EventStore:
        """Open the store at ``url`` (else ``LEDGER_DATABASE_URL``, else the embedded file).

        A SQLite database is created and migrated to the head revision on first open, unless
        ``create=False`` (what read-only tools pass): then a missing file is an
        :class:`InvalidArgumentError` naming its path, and an older schema is refused as on
        PostgreSQL, where a database that is not at the head raises
        :class:`SchemaNotCurrentError`. ``inline_projections=None`` applies the installed ones
        (``sessions``, ``keys``); pass ``()`` for a bare log without views.
        """
        settings = settings or Settings.from_env()
        resolved = settings.resolve_url(url)
        if not create:
            require_existing(resolved)
        engine = create_engine(resolved, settings)
        try:
            migration.ensure_schema(engine, migrate=create)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, writer=writer, settings=settings, inline_projections=inline_projections)

    def close(self) -> None:
        """Finish what was handed to the store's background writers (:meth:`on_close`), then
        release every pooled connection."""
        for finish in list(self._on_close):
            finish()
        self.engine.dispose()

    def on_close(self, finish: Callable[[], None]) -> None:
        """Call ``finish`` when the store closes, before its connections go (an agent cache's
        decision recorder writes its last decisions there)."""
        self._on_close.append(finish)

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------

    @contextmanager
    def transaction(
        self, *, streams: Sequence[str] = (), exclusive: bool = False, append_lock: bool = False
    ) -> Iterator[sa.Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite) that commits on success.

        ``streams``: lock these streams' heads first, so checks made inside the transaction and
        the append that follows cannot be split by another writer of them (PostgreSQL; SQLite's
        write lock already excludes every other writer). ``exclusive`` waits for appends in
        flight and holds off new ones until the end, for work that needs one consistent cut of
        the whole log (snapshots, rebuilds); ``append_lock`` is its old name.

        On SQLite the threads of this process queue on a lock first: SQLite admits one writer
        anyway, and its busy handler makes waiting writers sleep with growing back-off (p99 of
        hundreds of milliseconds under 32 concurrent tasks), where a queue hands over at once.
        """
        with self._local_writer:
            yield from self._transaction(streams, exclusive or append_lock)

    def _transaction(self, streams: Sequence[str], exclusive: bool) -> Iterator[sa.Connection]:
        # Driver errors arrive as DatabaseError already (the engine's handle_error hook).
        with self.engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            conn.info[_LOCKED] = set()
            try:
                with conn.begin():
                    if exclusive:
                        self._path.quiesce(conn)
                    self._lock(conn, streams)
                    yield conn
            finally:  # the locks end with the transaction
                del conn.info[_LOCKED]

    def _lock(self, conn: sa.Connection, streams: Sequence[str]) -> None:
        """Lock the streams this transaction does not hold yet (one statement, name order)."""
        held: set[str] | None = conn.info.get(_LOCKED)
        wanted = [s for s in streams if held is None or s not in held]
        for stream in wanted:
            check_text("stream", stream)
        if wanted:
            self._path.lock_streams(conn, wanted)
            if held is not None:
                held.update(wanted)

    def append(
        self,
        stream: str,
        events: Sequence[Event],
        *,
        expected_sequence: int | None = None,
        event_ids: Sequence[uuid.UUID | str] | None = None,
    ) -> AppendResult:
        """Append ``events`` to ``stream`` in one transaction.

        ``expected_sequence``: ``None`` accepts any head, ``0`` requires that the stream does not
        exist, ``n`` requires head ``n``; otherwise :class:`WrongExpectedVersionError` and nothing
        is written. Re-appending stored ``event_ids`` returns the original result.
        """
        part = StreamAppend(
            stream=stream, events=events, expected_sequence=expected_sequence, event_ids=event_ids
        )
        return self.append_streams([part])[0]

    def append_streams(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        """Append to several streams in ONE transaction: all are written, or none."""
        prepared = [self.prepare(part) for part in appends]
        try:
            with self.transaction() as conn:
                return self.append_in(conn, appends, prepared)
        except DatabaseError as exc:
            if exc.constraint not in CONSTRAINTS:
                raise
            actual = {part.stream: self.head_sequence(part.stream) for part in appends}
            raise append_error(exc, appends, actual) from exc

    def append_in(
        self,
        conn: sa.Connection,
        appends: Sequence[StreamAppend],
        prepared: Sequence[list[dict[str, Any]]] | None = None,
    ) -> list[AppendResult]:
        """Append inside a :meth:`transaction` the caller holds (for read-check-write callers)."""
        if prepared is None:
            prepared = [self.prepare(part) for part in appends]
        one = len(appends) == 1 and len(prepared[0]) == 1 and appends[0].event_ids is None
        if not one:  # the one-event path takes its stream's lock itself
            # Every stream this append writes is locked before anything is written (_postgres).
            self._lock(conn, [part.stream for part in appends])
        total = sum(len(rows) for rows in prepared)
        if total > MAX_EVENTS_PER_TRANSACTION:
            raise InvalidArgumentError(
                "events", f"{total} events", f"at most {MAX_EVENTS_PER_TRANSACTION} per append"
            )
        if any(part.event_ids for part in appends):
            restore_archived(conn, {part.stream for part in appends if part.event_ids})
        duplicate = stored_result(conn, appends, prepared, self.codec.decode)
        if duplicate is not None:
            return duplicate
        if one:
            done = self._append_one(conn, appends[0], prepared[0][0])
            if done is not None:
                return [done]
        original = self._claim_sequences(conn, appends)
        heads = dict(original)
        for part in appends:
            actual = heads.get(part.stream, 0)
            expected = part.expected_sequence
            if expected is not None and expected != actual:
                raise WrongExpectedVersionError(part.stream, expected, actual)
            heads[part.stream] = actual + len(part.events)
        now = dt.datetime.now(dt.UTC)
        rows: list[dict[str, Any]] = []
        sequences: list[tuple[int, ...]] = []
        cursor = dict(original)
        for part, part_rows in zip(appends, prepared, strict=True):
            start = cursor.get(part.stream, 0)
            seqs = tuple(range(start + 1, start + 1 + len(part_rows)))
            cursor[part.stream] = start + len(part_rows)
            sequences.append(seqs)
            for row, seq in zip(part_rows, seqs, strict=True):
                row["sequence"] = seq
                row.setdefault("recorded_at", now)
                rows.append(row)
        if not rows:
            return [self._empty_result(part.stream, heads) for part in appends]
        events_in_order = [row.pop("_event") for row in rows]
        positions = self._path.insert(conn, rows)
        results: list[AppendResult] = []
        index = 0
        for part, seqs in zip(appends, sequences, strict=True):
            part_positions = tuple(positions[index : index + len(seqs)])
            ids = tuple(row["event_id"] for row in rows[index : index + len(seqs)])
            index += len(seqs)
            if not seqs:
                results.append(self._empty_result(part.stream, heads))
                continue
            results.append(
                AppendResult(
                    stream=part.stream,
                    sequence=seqs[-1],
                    position=part_positions[-1],
                    sequences=seqs,
                    positions=part_positions,
                    event_ids=ids,
                )
            )
        if self.inline_projections:
            records = [
                _recorded(row, row["sequence"], position, event)
                for row, position, event in zip(rows, positions, events_in_order, strict=True)
            ]
            for projection in self.inline_projections:
                projection.apply(conn, records)
        return results

    def prepare(self, part: StreamAppend) -> list[dict[str, Any]]:
        """Validate and encode one stream's events, before any lock is taken.

        Callers holding their own :meth:`transaction` prepare first and pass the rows to
        :meth:`append_in`, so bad input fails before the database is touched.
        """
        return prepare(part, writer=self.writer, codec=self.codec)

    def restore_archived(self, conn: sa.Connection, names: set[str]) -> None:
        """Bring archived streams among ``names`` back, so a retried append finds its events."""
        restore_archived(conn, names)

    def _append_one(
        self, conn: sa.Connection, part: StreamAppend, row: dict[str, Any]
    ) -> AppendResult | None:
        """The gateway's hot path where the backend has one: lock, claim and insert at once.

        One event to one stream, no caller-given ids: the head upsert (under the stream's lock)
        feeds the event's sequence straight into the insert, so the append costs the same round
        trips as a bare one-row commit. A wrong ``expected_sequence`` raises afterwards and
        rolls the whole transaction back. None: the backend has no such path.
        """
        row["recorded_at"] = row.get("recorded_at") or dt.datetime.now(dt.UTC)
        done = self._path.append_one(conn, {k: v for k, v in row.items() if k != "_event"})
        if done is None:
            return None
        event = row.pop("_event")
        position, sequence, archived = done
        expected = part.expected_sequence
        if expected is not None and expected != sequence - 1:
            raise WrongExpectedVersionError(part.stream, expected, sequence - 1)
        if archived:
            restore_stream(conn, part.stream)
        for projection in self.inline_projections:
            projection.apply(conn, [_recorded(row, sequence, position, event)])
        return AppendResult(
            stream=part.stream,
            sequence=sequence,
            position=position,
            sequences=(sequence,),
            positions=(position,),
            event_ids=(row["event_id"],),
        )

    def _claim_sequences(
        self, conn: sa.Connection, appends: Sequence[StreamAppend]
    ) -> dict[str, int]:
        """Move each written stream's head forward and return the heads as they were before.

        One upsert per stream (``INSERT … ON CONFLICT DO UPDATE … RETURNING``) both reads and
        advances the head; if the caller's expected sequence then turns out wrong, raising
        rolls the whole transaction back, the head included. Streams that get no events are
        only read.
        """
        counts: dict[str, int] = {}
        for part in appends:
            counts[part.stream] = counts.get(part.stream, 0) + len(part.events)
        before: dict[str, int] = {}
        # Heads are claimed in name order: two appends to the same streams lock them in the
        # same order and so can never deadlock.
        for stream in sorted(counts):
            count = counts[stream]
            if count:
                head, archived = self._path.claim(conn, stream, count)
                before[stream] = head - count
                if archived:
                    # An append to an archived stream brings its events back first, in the
                    # same transaction, so the stream is never split between the two places.
                    restore_stream(conn, stream)
        unread = [stream for stream, count in counts.items() if not count]
        if unread:
            before.update(conn.execute(self._head, {"streams": unread}).tuples().all())
        return before

    @staticmethod
    def _empty_result(stream: str, heads: Mapping[str, int]) -> AppendResult:
        return AppendResult(
            stream=stream,
            sequence=heads.get(stream, 0),
            position=0,
            sequences=(),
            positions=(),
            event_ids=(),
        )
