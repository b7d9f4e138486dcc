"""Archive segments: a stream's events moved out of ``events`` into one compressed blob.

A segment holds every stored row of one stream (position, sequence, type, payload bytes,
event_id, writer, recorded_at, schema_version) as msgpack, zlib-compressed, with a SHA-256
checksum of the uncompressed bytes and its first/last position. Restoring inserts the very same
rows back, positions included, so a restore is byte-for-byte.

Reads stay transparent: :class:`SegmentReader` reads live rows and the segments that overlap
them in ONE statement (one snapshot on every backend), so a concurrent archive or restore can
never make a reader skip or repeat an event. A read round covers a window of positions, so
memory is bounded by the segments that overlap one window, not by the archive's size.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from ledger.errors import CorruptSegmentError
from ledger.schema import archive_segments, events, streams

__all__ = [
    "SegmentInfo",
    "SegmentReader",
    "StoredRow",
    "archive_stream",
    "restore_archived",
    "restore_stream",
]

CODEC = "msgpack+zlib"
#: A read round looks at segments overlapping this many batch sizes of positions.
_WINDOW = 4
#: The largest position there can be (BIGINT).
_LAST_POSITION = 2**63 - 1


class StoredRow(msgspec.Struct, array_like=True, frozen=True):
    """One row of ``events`` exactly as stored."""

    position: int
    stream: str
    sequence: int
    type: str
    data: bytes
    event_id: bytes
    writer: str
    recorded_at: dt.datetime
    schema_version: int

    def values(self) -> dict[str, Any]:
        """The row as column values for an INSERT into ``events``."""
        return {
            "position": self.position,
            "stream": self.stream,
            "sequence": self.sequence,
            "type": self.type,
            "data": self.data,
            "event_id": uuid.UUID(bytes=self.event_id),
            "writer": self.writer,
            "recorded_at": self.recorded_at,
            "schema_version": self.schema_version,
        }


class SegmentInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What an archive wrote (or, in a dry run, would write) for one stream."""

    stream: str
    events: int
    raw_bytes: int
    compressed_bytes: int
    first_position: int
    last_position: int


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[StoredRow])


def _row(row: sa.Row[Any]) -> StoredRow:
    return StoredRow(
        position=row.position,
        stream=row.stream,
        sequence=row.sequence,
        type=row.type,
        data=bytes(row.data),
        event_id=row.event_id.bytes,
        writer=row.writer,
        recorded_at=row.recorded_at,
        schema_version=row.schema_version,
    )


def encode_segment(rows: Sequence[StoredRow]) -> tuple[bytes, str, int]:
    """Compressed blob, checksum and uncompressed size of ``rows``."""
    raw = _encoder.encode(list(rows))
    return zlib.compress(raw, 6), hashlib.sha256(raw).hexdigest(), len(raw)


def decode_segment(stream: str, data: bytes, checksum: str) -> list[StoredRow]:
    """The rows of a segment, after checking its checksum; damage raises CorruptSegmentError."""
    try:
        raw = zlib.decompress(data)
    except zlib.error as exc:
        raise CorruptSegmentError(stream) from exc
    if hashlib.sha256(raw).hexdigest() != checksum:
        raise CorruptSegmentError(stream)
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise CorruptSegmentError(stream) from exc


def archive_stream(
    conn: sa.Connection, stream: str, *, dry_run: bool = False
) -> SegmentInfo | None:
    """Move ``stream``'s events into a segment (inside the caller's append transaction)."""
    found = conn.execute(
        sa.select(events).where(events.c.stream == stream).order_by(events.c.sequence)
    ).all()
    if not found:
        return None
    rows = [_row(r) for r in found]
    data, checksum, raw_size = encode_segment(rows)
    info = SegmentInfo(
        stream=stream,
        events=len(rows),
        raw_bytes=raw_size,
        compressed_bytes=len(data),
        first_position=rows[0].position,
        last_position=rows[-1].position,
    )
    if dry_run:
        return info
    conn.execute(
        archive_segments.insert().values(
            stream=stream,
            first_position=info.first_position,
            last_position=info.last_position,
            first_sequence=rows[0].sequence,
            last_sequence=rows[-1].sequence,
            event_count=len(rows),
            codec=CODEC,
            checksum=checksum,
            raw_bytes=raw_size,
            data=data,
            archived_at=dt.datetime.now(dt.UTC),
        )
    )
    conn.execute(events.delete().where(events.c.stream == stream))
    conn.execute(streams.update().where(streams.c.stream == stream).values(archived=True))
    return info


def restore_stream(conn: sa.Connection, stream: str) -> int:
    """Put an archived stream's rows back into ``events`` unchanged; returns how many."""
    segment = conn.execute(
        sa.select(archive_segments.c.data, archive_segments.c.checksum).where(
            archive_segments.c.stream == stream
        )
    ).first()
    if segment is None:
        return 0
    rows = decode_segment(stream, segment.data, segment.checksum)
    conn.execute(events.insert(), [row.values() for row in rows])
    conn.execute(archive_segments.delete().where(archive_segments.c.stream == stream))
    conn.execute(streams.update().where(streams.c.stream == stream).values(archived=False))
    return len(rows)


def restore_archived(conn: sa.Connection, names: set[str]) -> None:
    """Restore every archived stream among ``names`` (the caller holds their locks)."""
    if not names:
        return
    archived = conn.execute(
        sa.select(streams.c.stream).where(
            streams.c.stream.in_(sorted(names)), streams.c.archived.is_(sa.true())
        )
    ).scalars()
    for stream in list(archived):
        restore_stream(conn, stream)


def _event_columns() -> list[Any]:
    e = events
    # event_id and recorded_at come back as the driver gives them (text on SQLite): converting
    # them in bulk in EventStore is far cheaper than SQLAlchemy's per-row type processors.
    return [
        sa.literal("e").label("kind"),
        e.c.position,
        e.c.stream,
        e.c.sequence,
        e.c.type,
        e.c.data,
        sa.type_coerce(e.c.event_id, sa.String).label("event_id"),
        e.c.writer,
        sa.type_coerce(e.c.recorded_at, sa.String).label("recorded_at"),
        e.c.schema_version,
        sa.cast(sa.null(), sa.String(64)).label("checksum"),
    ]


def _segment_columns() -> list[Any]:
    s = archive_segments
    return [
        sa.literal("s").label("kind"),
        s.c.first_position.label("position"),
        s.c.stream,
        s.c.first_sequence.label("sequence"),
        sa.cast(sa.null(), sa.String(100)).label("type"),
        s.c.data,
        sa.cast(sa.null(), sa.Uuid).label("event_id"),
        sa.cast(sa.null(), sa.String(255)).label("writer"),
        sa.type_coerce(s.c.archived_at, sa.String).label("recorded_at"),
        sa.cast(sa.null(), sa.SmallInteger).label("schema_version"),
        s.c.checksum,
    ]


def _window_statement(horizon: str | None) -> sa.CompoundSelect[Any]:
    """One read round: live rows, overlapping segments, the next segment's start, the horizon."""
    e, s = events, archive_segments
    below = [] if horizon is None else [e.c.position < sa.literal_column(horizon)]
    live = (
        sa.select(*_event_columns())
        .where(e.c.position > sa.bindparam("after"), *below)
        .order_by(e.c.position)
        .limit(sa.bindparam("size"))
        .subquery()
    )
    archived = (
        sa.select(*_segment_columns())
        .where(
            s.c.last_position > sa.bindparam("after"),
            s.c.first_position <= sa.bindparam("upper"),
        )
        .subquery()
    )
    # Where the next segment beyond the window starts: it comes from the SAME statement as the
    # rows, so "nothing in this window" and "something further on" share one snapshot.
    following = sa.select(
        sa.literal("n").label("kind"),
        sa.func.min(s.c.first_position).label("position"),
        *[sa.null()] * 9,
    ).where(s.c.first_position > sa.bindparam("upper"))
    parts = [sa.select(live), sa.select(archived), following]
    if horizon is not None:
        parts.append(
            sa.select(
                sa.literal("h").label("kind"),
                sa.literal_column(horizon).label("position"),
                *[sa.null()] * 9,
            )
        )
    return sa.union_all(*parts)


class SegmentReader:
    """Reads live rows and archived rows together, consistently and in bounded batches."""

    def __init__(self, cache_size: int = 64, *, horizon: str | None = None) -> None:
        self._cache: OrderedDict[tuple[str, str], list[StoredRow]] = OrderedDict()
        self._cache_size = cache_size
        e, s = events, archive_segments
        # ``horizon`` (SQL, PostgreSQL): positions at or above it may still be taken by a
        # transaction in flight, so a tail reads nothing there yet (see ``_postgres``).
        self._final = _window_statement(horizon)
        # Everything this snapshot shows, for work that holds off appends or compares the views
        # with the log inside one snapshot (rebuild, verify).
        self._visible = _window_statement(None)
        stream_live = (
            sa.select(*_event_columns())
            .where(e.c.stream == sa.bindparam("stream"), e.c.sequence >= sa.bindparam("first"))
            .order_by(e.c.sequence)
            .limit(sa.bindparam("size"))
            .subquery()
        )
        stream_archived = sa.select(*_segment_columns()).where(s.c.stream == sa.bindparam("stream"))
        self._stream = sa.union_all(sa.select(stream_live), stream_archived.subquery().select())

    def _segment(self, stream: str, data: bytes, checksum: str) -> list[StoredRow]:
        key = (stream, checksum)
        rows = self._cache.get(key)
        if rows is None:
            rows = decode_segment(stream, data, checksum)
            self._cache[key] = rows
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return rows

    def read_all(
        self, conn: sa.Connection, after: int, size: int, *, final_only: bool = True
    ) -> list[sa.Row[Any] | StoredRow]:
        """Up to ``size`` rows with position > ``after``, live and archived, in position order.

        ``final_only`` (PostgreSQL) reads only below the horizon, where nothing can appear
        later: what a tail needs. Without it, every row this snapshot shows.

        Each round reads the next ``size`` live rows and every segment overlapping a window of
        ``_WINDOW * size`` positions, in one statement; memory is bounded by the segments that
        overlap one window. With no segment in the window, the round returns every live row up
        to the next segment's start. An empty window (a stretch of positions whose events were
        purged or compacted away) moves on, so an empty result means the end of the log (or,
        with ``final_only``, of what is final so far).
        """
        while True:
            upper = after + _WINDOW * size
            statement = self._final if final_only else self._visible
            found = conn.execute(statement, {"after": after, "size": size, "upper": upper}).all()
            live: list[sa.Row[Any]] = []
            segments: list[sa.Row[Any]] = []
            next_segment: int | None = None
            horizon: int | None = None
            for row in found:  # index access: this loop runs once per event read
                kind = row[0]
                if kind == "e":
                    live.append(row)
                elif kind == "s":
                    segments.append(row)
                elif kind == "n":
                    next_segment = row[1]
                else:
                    horizon = int(row[1])
            if not segments:
                # No segment overlaps the window and the next one starts at ``next_segment``:
                # no archived row lies before it, so every live row below it may be returned
                # (positions are sparse on PostgreSQL: a window would hold one transaction).
                upper = _LAST_POSITION if next_segment is None else next_segment - 1
            if horizon is not None:
                # Nothing at or above the horizon is final yet: never read or jump past it.
                upper = min(upper, horizon - 1)
                if next_segment is not None and next_segment >= horizon:
                    next_segment = None
                if upper <= after:
                    return []
            if len(live) == size:
                upper = min(upper, live[-1][1])
            # Live rows past the window are left for the next round even without segments in
            # this one: a segment may start between them and the window's end.
            merged: list[sa.Row[Any] | StoredRow]
            if not live or live[-1][1] <= upper:
                merged = list(live)
            else:
                merged = [r for r in live if r[1] <= upper]
            beyond: list[int] = []  # the first row past the window of each segment met
            for segment in segments:
                rows = self._segment(segment.stream, segment.data, segment.checksum)
                merged.extend(row for row in rows if after < row.position <= upper)
                beyond.extend(
                    itertools.islice((row.position for row in rows if row.position > upper), 1)
                )
            if merged:
                if segments:
                    merged.sort(key=lambda r: r.position)
                return merged[:size]
            # Nothing in this window: its events were purged or compacted away, or the log ends
            # here. Jump to just before the first event this same snapshot shows further on
            # (a live row, a row of a segment met, or the next segment's start). Nothing can
            # commit later below it: on SQLite positions commit in ascending order (one writer
            # at a time), on PostgreSQL everything below the horizon is final.
            ahead = [*beyond, *(p for p in (live[0][1] if live else None, next_segment) if p)]
            if horizon is not None:
                ahead = [p for p in ahead if p < horizon]
            if not ahead:
                return []
            after = max(upper, min(ahead) - 1)

    def read_stream(
        self, conn: sa.Connection, stream: str, first: int, size: int
    ) -> list[sa.Row[Any] | StoredRow]:
        """Up to ``size`` rows of ``stream`` from sequence ``first``, wherever they are stored."""
        found = conn.execute(self._stream, {"stream": stream, "first": first, "size": size}).all()
        rows: list[sa.Row[Any] | StoredRow] = [r for r in found if r.kind == "e"]
        for segment in (r for r in found if r.kind == "s"):
            rows.extend(
                row
                for row in self._segment(segment.stream, segment.data, segment.checksum)
                if row.sequence >= first
            )
        rows.sort(key=lambda r: r.sequence)
        return rows[:size]
