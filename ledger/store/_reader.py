"""Reading the log: streams and the whole log, live and archived, lazily and in batches.

:class:`LogReader` is the read half of :class:`~ledger.store.EventStore` (which inherits it).
Every read goes through ``_archive.SegmentReader``, so archived events read like
live ones, and converts raw driver values in bulk: that is most of what reading costs.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from ledger.codec import Codec, check_text
from ledger.records import RecordedEvent
from ledger.schema import streams as streams_table
from ledger.store._archive import SegmentReader, StoredRow
from ledger.store._errors import translated, translated_iter
from ledger.store._log import log_end

__all__ = ["READ_BATCH", "LogReader"]

#: Events per read round trip.
READ_BATCH = 1000


_new = object.__new__
_set = object.__setattr__
_UUID = uuid.UUID
_UNKNOWN = uuid.SafeUUID.unknown  # an Enum member: looking it up per call cost 0.6 µs


def _uuid_from_hex(text: str) -> uuid.UUID:
    """``uuid.UUID(text)`` for the 32 hex digits SQLite stores, at a sixth of the cost.

    ``UUID.__init__`` parses every accepted spelling in Python; reading a log calls this once
    per event. ``int`` and ``is_safe`` are the slots ``UUID`` itself sets.
    """
    value = _new(_UUID)
    _set(value, "int", int(text, 16))
    _set(value, "is_safe", _UNKNOWN)
    return value


def _utc(at: str | dt.datetime) -> dt.datetime:
    """A stored ``recorded_at`` as an aware UTC datetime.

    SQLite holds naive UTC text in SQLAlchemy's format (``2026-12-02 10:11:12.123456``):
    parsing it with the offset appended costs a seventh of ``fromisoformat(at)`` followed by
    ``replace(tzinfo=UTC)``. Any other spelling takes the general route.
    """
    if isinstance(at, str):
        if len(at) == 26 and at[19] == ".":
            return dt.datetime.fromisoformat(at + "+00:00")
        at = dt.datetime.fromisoformat(at)
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


class LogReader:
    """Reads one database's log; ``engine`` and ``codec`` are set by the subclass."""

    engine: sa.Engine
    codec: Codec

    def __init__(self, *, horizon: str | None = None) -> None:
        self._segments = SegmentReader(horizon=horizon)

    @translated
    def head_sequence(self, stream: str) -> int:
        """The stream's head sequence, 0 when it has no events."""
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(streams_table.c.sequence).where(streams_table.c.stream == stream)
            ).scalar()
        return int(value or 0)

    def last_position(self) -> int:
        """The highest position in the log (archived events included), 0 when it is empty."""
        with self.engine.connect() as conn:
            return log_end(conn)

    @translated_iter
    def read_stream(
        self, stream: str, from_sequence: int = 1, *, batch_size: int = READ_BATCH
    ) -> Iterator[RecordedEvent]:
        """Yield the events of ``stream`` from ``from_sequence`` on, lazily, in batches.

        Archived streams read from their segment, transparently.
        """
        check_text("stream", stream)
        first = from_sequence
        while True:
            with self.engine.connect() as conn:
                rows = self._segments.read_stream(conn, stream, first, batch_size)
            yield from self._records(rows)
            if len(rows) < batch_size:
                return
            first = rows[-1].sequence + 1

    def read_stream_in(self, conn: sa.Connection, stream: str) -> list[RecordedEvent]:
        """Every event of ``stream`` (archived or live), read on the caller's connection."""
        records: list[RecordedEvent] = []
        first = 1
        while batch := self._segments.read_stream(conn, stream, first, READ_BATCH):
            records.extend(self._records(batch))
            first = batch[-1].sequence + 1
        return records

    @translated_iter
    def read_all(
        self, after_position: int = 0, limit: int | None = None, *, batch_size: int = READ_BATCH
    ) -> Iterator[RecordedEvent]:
        """Yield events with ``position > after_position`` in log order, lazily, in batches.

        Each batch is its own short read, so a long iteration holds no transaction open.
        """
        remaining = limit
        after = after_position
        while remaining is None or remaining > 0:
            size = batch_size if remaining is None else min(batch_size, remaining)
            with self.engine.connect() as conn:
                batch = self.read_batch(conn, after, size)
            if not batch:
                # A short batch is not the end: one that meets archived events may stop early.
                return
            yield from batch
            after = batch[-1].position
            if remaining is not None:
                remaining -= len(batch)

    def read_batch(
        self, conn: sa.Connection, after_position: int, limit: int, *, final_only: bool = True
    ) -> list[RecordedEvent]:
        """Up to ``limit`` events after ``after_position``, read on the caller's connection.

        Live and archived events come from one statement, so an archive or restore running
        meanwhile can never make the reader skip or repeat an event. ``final_only=False``
        (PostgreSQL) also reads above the horizon: every event the caller's snapshot shows,
        for work that holds off appends or compares views with the log in one snapshot.
        """
        rows = self._segments.read_all(conn, after_position, limit, final_only=final_only)
        return self._records(rows)

    def _records(self, rows: Sequence[sa.Row[Any] | StoredRow]) -> list[RecordedEvent]:
        """Records of a batch of rows: times parsed once per distinct value (the events of
        one append share theirs), names looked up once per batch. Most of what a read costs."""
        decode = self.codec.decode
        times: dict[Any, dt.datetime] = {}
        records: list[RecordedEvent] = []
        add = records.append
        for row in rows:
            if isinstance(row, StoredRow):
                add(self._stored(row))
                continue
            # Live rows from SegmentReader: (kind, position, stream, sequence, type, data,
            # event_id, writer, recorded_at, schema_version, checksum), raw driver values.
            _, position, stream, sequence, type_name, data, event_id, writer, at, version, _ = row
            recorded_at = times.get(at)
            if recorded_at is None:
                recorded_at = times[at] = _utc(at)
            add(
                RecordedEvent(
                    stream=stream,
                    sequence=sequence,
                    position=position,
                    type=type_name,
                    event=decode(type_name, data, version, position),
                    event_id=event_id if type(event_id) is _UUID else _uuid_from_hex(event_id),
                    writer=writer,
                    recorded_at=recorded_at,
                    schema_version=version,
                )
            )
        return records

    def _stored(self, row: StoredRow) -> RecordedEvent:
        """The record of an event read from an archive segment."""
        return RecordedEvent(
            stream=row.stream,
            sequence=row.sequence,
            position=row.position,
            type=row.type,
            event=self.codec.decode(row.type, row.data, row.schema_version, row.position),
            event_id=uuid.UUID(bytes=row.event_id),
            writer=row.writer,
            recorded_at=row.recorded_at,
            schema_version=row.schema_version,
        )
