"""The event store: append to streams with optimistic concurrency (reads: ``ledger.reader``).

An append is one transaction that (1) takes the append lock, (2) returns the original result if
the given ``event_ids`` are stored already, (3) claims each stream's sequences with one upsert
of its head row and compares the head it had with ``expected_sequence`` (raising rolls it all
back), (4) inserts the events and (5) runs the inline projections on the same connection, so
views never lag the log. An append to an archived stream restores it first.

The append lock serialises writers so that positions commit in ascending order and a reader of
:meth:`EventStore.read_all` can never pass over an event that commits late: ``BEGIN IMMEDIATE`` on
SQLite, a transaction-scoped advisory lock on PostgreSQL (as eventsourcing's ``LOCK TABLE``). The
``UNIQUE (stream, sequence)`` index stays as the backstop, and :func:`translate_error` is the one
place that maps driver errors to the ledger's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import sqlalchemy as sa

from ledger import migration, plugins
from ledger.archive import restore_stream
from ledger.codec import Codec
from ledger.config import Settings
from ledger.database import WRITE, create_engine, is_sqlite
from ledger.errors import (
    DatabaseError,
    DuplicateEventError,
    InvalidEventError,
    SchemaNotCurrentError,
    WrongExpectedVersionError,
)
from ledger.events import Event
from ledger.reader import LogReader
from ledger.records import AppendResult, RecordedEvent, StreamAppend
from ledger.schema import events as events_table
from ledger.schema import streams as streams_table

__all__ = ["EventStore", "InlineProjection", "default_writer", "translate_error"]

#: One append lock per schema, so ledgers in separate schemas of a database do not contend.
_APPEND_LOCK_KEY = "hashtext(current_schema() || '.ledger_append')"
_MAX_STREAM = 300


class InlineProjection(Protocol):
    """A view updated inside the append transaction (read-your-writes)."""

    name: str

    def apply(self, conn: sa.Connection, records: Sequence[RecordedEvent]) -> None:
        """Fold ``records`` (just written, in position order) into the view."""


def default_writer() -> str:
    """``<hostname>:<pid>``, the writer id of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def translate_error(
    exc: sa.exc.DBAPIError,
    appends: Sequence[StreamAppend] = (),
    actual: Mapping[str, int] | None = None,
) -> Exception:
    """Map a driver error to the ledger's tree; the single place that inspects driver errors.

    A unique violation on ``(stream, sequence)`` means another writer moved a stream between our
    head read and our insert (possible only if something bypassed the append lock):
    :class:`WrongExpectedVersionError` for the first stream whose head differs from what the
    append expected. A violation on ``event_id`` is a :class:`DuplicateEventError`. Anything else
    is a :class:`DatabaseError` carrying the driver's text.
    """
    text = str(exc.orig)
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None) or text
    if isinstance(exc, sa.exc.IntegrityError) and appends:
        if "stream_sequence" in constraint or "events.stream, events.sequence" in constraint:
            heads = actual or {}
            for part in appends:
                expected = part.expected_sequence
                now = heads.get(part.stream, 0)
                if expected is None or expected != now:
                    return WrongExpectedVersionError(
                        part.stream, "any" if expected is None else expected, now
                    )
        if "event_id" in constraint:
            return DuplicateEventError(appends[0].stream, [])
        if "transcript_messages" in constraint:
            return InvalidEventError("MessageAppended", "message_id is already in this session")
    return DatabaseError(f"database error: {text}")


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidEventError("event_id", f"{value!r} is not a UUID") from None


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
        super().__init__()
        self.engine = engine
        self.settings = settings or Settings.from_env()
        self.writer = writer or default_writer()
        self.codec = codec or Codec(max_event_bytes=self.settings.max_event_bytes)
        if inline_projections is None:
            inline_projections = [cls() for cls in plugins.load("inline_projections")]
        self.inline_projections: list[InlineProjection] = list(inline_projections)
        self._sqlite = is_sqlite(engine)
        self._local_writer: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if self._sqlite else contextlib.nullcontext()
        )
        self._insert_sql = (
            "INSERT INTO events (stream, sequence, type, data, event_id, writer, recorded_at, "
            "schema_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        dialect = engine.dialect
        uuid_bind = events_table.c.event_id.type._cached_bind_processor(dialect)
        time_bind = events_table.c.recorded_at.type._cached_bind_processor(dialect)
        self._bind_uuid: Callable[[Any], Any] = uuid_bind or (lambda value: value)
        self._bind_time: Callable[[Any], Any] = time_bind or (lambda value: value)
        self._insert_returning = events_table.insert().returning(
            events_table.c.position, sort_by_parameter_order=True
        )
        # Plain text on purpose: SQLAlchemy's on_conflict_do_update constructs carry no cache
        # key and would be compiled again on every append; this SQL is the same on both.
        upsert = (
            "ON CONFLICT (stream) DO UPDATE SET sequence = streams.sequence + excluded.sequence "
            "RETURNING sequence, archived"
        )
        self._claim = sa.text(
            f"INSERT INTO streams (stream, sequence) VALUES (:stream, :sequence) {upsert}"
        )
        self._append_one = sa.text(
            "WITH claimed AS (INSERT INTO streams (stream, sequence) SELECT :stream, 1 "
            f"FROM (SELECT pg_advisory_xact_lock({_APPEND_LOCK_KEY})) AS append_lock {upsert}) "
            "INSERT INTO events (stream, sequence, type, data, event_id, writer, recorded_at, "
            "schema_version) SELECT :stream, claimed.sequence, :type, :data, :event_id, :writer, "
            ":recorded_at, :schema_version FROM claimed "
            "RETURNING position, sequence, (SELECT archived FROM claimed)"
        ).bindparams(
            sa.bindparam("data", type_=sa.LargeBinary),
            sa.bindparam("event_id", type_=sa.Uuid),
            sa.bindparam("recorded_at", type_=events_table.c.recorded_at.type),
        )
        self._insert_arrays = sa.text(
            "INSERT INTO events (stream, sequence, type, data, event_id, writer, recorded_at, "
            "schema_version) SELECT u.stream, u.sequence, u.type, u.data, u.event_id, u.writer, "
            "u.recorded_at, u.schema_version FROM unnest(CAST(:stream AS text[]), "
            "CAST(:sequence AS bigint[]), CAST(:type AS text[]), CAST(:data AS bytea[]), "
            "CAST(:event_id AS uuid[]), CAST(:writer AS text[]), "
            "CAST(:recorded_at AS timestamptz[]), CAST(:schema_version AS smallint[])) "
            "WITH ORDINALITY AS u(stream, sequence, type, data, event_id, writer, recorded_at, "
            "schema_version, ord) ORDER BY u.ord RETURNING position, stream, sequence"
        )
        # PostgreSQL: the row comes out of the lock call, so the lock is held before the upsert.
        self._claim_locking = sa.text(
            "INSERT INTO streams (stream, sequence) SELECT :stream, :sequence "
            f"FROM (SELECT pg_advisory_xact_lock({_APPEND_LOCK_KEY})) AS append_lock {upsert}"
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
    ) -> EventStore:
        """Open the store at ``url`` (else ``LEDGER_DATABASE_URL``, else the embedded file).

        A SQLite database is created and migrated to the head revision on first open. A
        PostgreSQL database that is not at the head raises :class:`SchemaNotCurrentError`.
        ``inline_projections=None`` applies the installed ones (``sessions``, ``keys``); pass
        ``()`` for a bare log without views.
        """
        settings = settings or Settings.from_env()
        engine = create_engine(settings.resolve_url(url), settings)
        try:
            ensure_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, writer=writer, settings=settings, inline_projections=inline_projections)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------

    @contextmanager
    def transaction(self, *, append_lock: bool = True) -> Iterator[sa.Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite) that commits on success.

        ``append_lock`` also takes PostgreSQL's append lock, which every append holds so that
        positions commit in order; writers that never insert events (projection runners) skip it.

        On SQLite the threads of this process queue on a lock first: SQLite admits one writer
        anyway, and its busy handler makes waiting writers sleep with growing back-off (p99 of
        hundreds of milliseconds under 32 concurrent tasks), where a queue hands over at once.
        """
        with self._local_writer:
            yield from self._transaction(append_lock)

    def _transaction(self, append_lock: bool) -> Iterator[sa.Connection]:
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{WRITE: True})
                with conn.begin():
                    if append_lock and not self._sqlite:
                        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_APPEND_LOCK_KEY})")
                    yield conn
        except sa.exc.DBAPIError as exc:
            raise translate_error(exc) from exc

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
        # Without caller-given event ids nothing is read before the first head claim, so on
        # PostgreSQL the append lock can ride on that statement and save a round trip.
        lock_in_claim = not self._sqlite and all(part.event_ids is None for part in appends)
        try:
            with self.transaction(append_lock=not lock_in_claim) as conn:
                return self.append_in(conn, appends, prepared, lock_in_claim=lock_in_claim)
        except DatabaseError as exc:
            cause = exc.__cause__
            if not isinstance(cause, sa.exc.IntegrityError):
                raise
            actual = {part.stream: self.head_sequence(part.stream) for part in appends}
            raise translate_error(cause, appends, actual) from cause

    def append_in(
        self,
        conn: sa.Connection,
        appends: Sequence[StreamAppend],
        prepared: Sequence[list[dict[str, Any]]] | None = None,
        *,
        lock_in_claim: bool = False,
    ) -> list[AppendResult]:
        """Append inside a :meth:`transaction` the caller holds (for read-check-write callers)."""
        if prepared is None:
            prepared = [self.prepare(part) for part in appends]
        duplicate = self._stored_result(conn, appends, prepared)
        if duplicate is not None:
            return duplicate
        if lock_in_claim and len(appends) == 1 and len(prepared[0]) == 1:
            return [self._append_one_postgres(conn, appends[0], prepared[0][0])]
        original = self._claim_sequences(conn, appends, lock_in_claim)
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
        positions = self._insert_events(conn, rows)
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
                RecordedEvent(
                    stream=row["stream"],
                    sequence=row["sequence"],
                    position=position,
                    type=row["type"],
                    event=event,
                    event_id=row["event_id"],
                    writer=row["writer"],
                    recorded_at=row["recorded_at"],
                    schema_version=row["schema_version"],
                )
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
        if not isinstance(part.stream, str) or not 0 < len(part.stream) <= _MAX_STREAM:
            raise InvalidEventError(
                "stream", f"stream name {part.stream!r} must be 1..{_MAX_STREAM} characters"
            )
        expected = part.expected_sequence
        if expected is not None and (
            isinstance(expected, bool) or not isinstance(expected, int) or expected < 0
        ):
            raise InvalidEventError(
                "expected_sequence", f"{expected!r} must be None or an integer >= 0"
            )
        if part.event_ids is not None and len(part.event_ids) != len(part.events):
            raise InvalidEventError(
                "event_ids",
                f"{len(part.event_ids)} event_ids given for {len(part.events)} events",
            )
        ids = (
            [_as_uuid(value) for value in part.event_ids]
            if part.event_ids is not None
            else [uuid.uuid4() for _ in part.events]
        )
        if len(set(ids)) != len(ids):
            raise InvalidEventError("event_ids", "the same event_id appears twice in one append")
        times = part.recorded_at
        if times is not None and (
            len(times) != len(part.events) or any(t.tzinfo is None for t in times)
        ):
            raise InvalidEventError(
                "recorded_at", f"{len(part.events)} timezone-aware datetimes expected"
            )
        writer = part.writer or self.writer
        owner = part.stream[len("session-") :] if part.stream.startswith("session-") else None
        rows: list[dict[str, Any]] = []
        for index, (event, event_id) in enumerate(zip(part.events, ids, strict=True)):
            type_name, payload = self.codec.encode(event)
            claimed = getattr(event, "session_id", owner)
            if owner is not None and claimed != owner:
                # The views key a head by its stream and transcript rows by the payload.
                raise InvalidEventError(
                    type_name,
                    f"session_id {claimed!r} is not that of stream {part.stream!r} "
                    "- at `$.session_id`",
                )
            row = {
                "stream": part.stream,
                "type": type_name,
                "data": payload,
                "event_id": event_id,
                "writer": writer,
                "schema_version": type(event).schema_version,
                "_event": event,
            }
            if times is not None:
                row["recorded_at"] = times[index].astimezone(dt.UTC)
            rows.append(row)
        return rows

    def restore_archived(self, conn: sa.Connection, names: set[str]) -> None:
        """Bring any archived stream among ``names`` back (inside the caller's append lock).

        A retry of an append whose events were archived since must find them to return the
        original result, and the append would restore the stream anyway.
        """
        if not names:
            return
        archived = conn.execute(
            sa.select(streams_table.c.stream).where(
                streams_table.c.stream.in_(sorted(names)), streams_table.c.archived.is_(sa.true())
            )
        ).scalars()
        for stream in list(archived):
            restore_stream(conn, stream)

    def _stored_result(
        self,
        conn: sa.Connection,
        appends: Sequence[StreamAppend],
        prepared: Sequence[list[dict[str, Any]]],
    ) -> list[AppendResult] | None:
        """The original results if these caller-given ``event_ids`` are stored already."""
        given = [
            row["event_id"]
            for part, rows in zip(appends, prepared, strict=True)
            if part.event_ids is not None
            for row in rows
        ]
        if not given:
            return None
        self.restore_archived(conn, {part.stream for part in appends if part.event_ids})
        t = events_table
        found = {
            row.event_id: row
            for row in conn.execute(
                sa.select(t.c.event_id, t.c.stream, t.c.sequence, t.c.position).where(
                    t.c.event_id.in_(given)
                )
            )
        }
        if not found:
            return None
        results: list[AppendResult] = []
        for part, rows in zip(appends, prepared, strict=True):
            stored = [found.get(row["event_id"]) for row in rows]
            if (
                part.event_ids is None
                or any(s is None or s.stream != part.stream for s in stored)
                or [s.sequence for s in stored if s is not None]
                != list(range(stored[0].sequence, stored[0].sequence + len(stored)))  # type: ignore[union-attr]
            ):
                clashing = [str(i) for i in given if i in found]
                raise DuplicateEventError(part.stream, clashing)
            results.append(
                AppendResult(
                    stream=part.stream,
                    sequence=stored[-1].sequence,  # type: ignore[union-attr]
                    position=stored[-1].position,  # type: ignore[union-attr]
                    sequences=tuple(s.sequence for s in stored),  # type: ignore[union-attr]
                    positions=tuple(s.position for s in stored),  # type: ignore[union-attr]
                    event_ids=tuple(row["event_id"] for row in rows),
                    duplicate=True,
                )
            )
        return results

    def _insert_events(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> list[int]:
        """Insert ``rows`` in order and return their positions.

        PostgreSQL: ``INSERT … RETURNING position`` in insertmanyvalues batches. SQLite runs a
        ``RETURNING`` executemany one row at a time, so there the rows go to the driver's
        ``executemany`` as tuples, bound once through SQLAlchemy's own type processors (the
        timestamp is the same for the whole append), and the positions are derived: under
        ``BEGIN IMMEDIATE`` no other writer runs and AUTOINCREMENT hands out consecutive rowids
        after the largest ever used, so the batch holds ``last_insert_rowid() - n + 1 …``.
        """
        if not self._sqlite:
            if len(rows) == 1:
                return list(conn.execute(self._insert_returning, rows).scalars())
            # One statement over arrays: psycopg sends each column as one array parameter,
            # far cheaper than binding a thousand rows through insertmanyvalues.
            columns = {
                name: [row[name] for row in rows]
                for name in (
                    "stream",
                    "sequence",
                    "type",
                    "data",
                    "event_id",
                    "writer",
                    "recorded_at",
                    "schema_version",
                )
            }
            placed = {
                (stream, sequence): position
                for position, stream, sequence in conn.execute(self._insert_arrays, columns)
            }
            return [placed[(row["stream"], row["sequence"])] for row in rows]
        first_time = rows[0]["recorded_at"]
        recorded_at = self._bind_time(first_time)
        params = [
            (
                row["stream"],
                row["sequence"],
                row["type"],
                row["data"],
                self._bind_uuid(row["event_id"]),
                row["writer"],
                recorded_at
                if row["recorded_at"] is first_time
                else self._bind_time(row["recorded_at"]),
                row["schema_version"],
            )
            for row in rows
        ]
        if len(params) == 1:
            last = conn.exec_driver_sql(self._insert_sql, params[0]).lastrowid
        else:
            conn.exec_driver_sql(self._insert_sql, params)
            last = conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one()
        return list(range(last - len(rows) + 1, last + 1))

    def _append_one_postgres(
        self, conn: sa.Connection, part: StreamAppend, row: dict[str, Any]
    ) -> AppendResult:
        """The gateway's hot path on PostgreSQL: lock, claim and insert in ONE statement.

        One event to one stream, no caller-given ids: the head upsert (under the append lock)
        feeds the event's sequence straight into the insert, so the append costs the same round
        trips as a bare one-row commit. A wrong ``expected_sequence`` raises afterwards and
        rolls the whole transaction back.
        """
        event = row.pop("_event")
        row["recorded_at"] = row.get("recorded_at") or dt.datetime.now(dt.UTC)
        position, sequence, archived = conn.execute(self._append_one, row).one()
        expected = part.expected_sequence
        if expected is not None and expected != sequence - 1:
            raise WrongExpectedVersionError(part.stream, expected, sequence - 1)
        if archived:
            restore_stream(conn, part.stream)
        record = RecordedEvent(
            stream=part.stream,
            sequence=sequence,
            position=position,
            type=row["type"],
            event=event,
            event_id=row["event_id"],
            writer=row["writer"],
            recorded_at=row["recorded_at"],
            schema_version=row["schema_version"],
        )
        for projection in self.inline_projections:
            projection.apply(conn, [record])
        return AppendResult(
            stream=part.stream,
            sequence=sequence,
            position=position,
            sequences=(sequence,),
            positions=(position,),
            event_ids=(row["event_id"],),
        )

    def _claim_sequences(
        self, conn: sa.Connection, appends: Sequence[StreamAppend], lock_in_claim: bool = False
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
        claim = self._claim_locking if lock_in_claim else self._claim
        for stream, count in counts.items():
            if count:
                head, archived = conn.execute(claim, {"stream": stream, "sequence": count}).one()
                before[stream] = int(head) - count
                claim = self._claim
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

    # -- reading -----------------------------------------------------------------------------


def ensure_schema(engine: sa.Engine) -> None:
    """Migrate SQLite to the head; require PostgreSQL to be there already.

    A database at a revision this code does not know (written by a newer version) is refused
    on both, rather than half-understood. Driver errors (server down, file unreadable) come out
    as :class:`DatabaseError`.
    """
    head = migration.head_revision()
    try:
        current = migration.current_revision(engine)
        if current == head:
            return
        if current is not None and current not in migration.known_revisions():
            raise SchemaNotCurrentError(current, head)
        if is_sqlite(engine):
            migration.upgrade(engine)
            return
    except sa.exc.DBAPIError as exc:
        raise translate_error(exc) from exc
    raise SchemaNotCurrentError(current, head)
