"""The log as JSON Lines: one object per event, for export, transfer and offline replay.

Each line holds ``position, stream, sequence, type, event_id, writer, recorded_at,
schema_version`` and ``data`` (the event's payload, exactly as stored). Reading decodes through
the store's codec, so an unknown type or an invalid payload fails with the line number.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator
from typing import IO

import msgspec

from ledger.codec import Codec
from ledger.errors import EventDecodeError, InvalidArgumentError
from ledger.records import RecordedEvent

__all__ = ["ExportedEvent", "ImportPlan", "plan_import", "read_jsonl", "write_jsonl"]


class ExportedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One line of an export."""

    position: int
    stream: str
    sequence: int
    type: str
    event_id: uuid.UUID
    writer: str
    recorded_at: dt.datetime
    schema_version: int
    data: msgspec.Raw


def write_jsonl(records: Iterable[RecordedEvent], out: IO[bytes]) -> int:
    """Write ``records`` to ``out`` as JSON Lines; returns how many were written."""
    encoder = msgspec.json.Encoder()
    count = 0
    for record in records:
        line = ExportedEvent(
            position=record.position,
            stream=record.stream,
            sequence=record.sequence,
            type=record.type,
            event_id=record.event_id,
            writer=record.writer,
            recorded_at=record.recorded_at,
            schema_version=record.schema_version,
            data=msgspec.Raw(encoder.encode(record.event)),
        )
        out.write(encoder.encode(line))
        out.write(b"\n")
        count += 1
    return count


def read_jsonl(lines: Iterable[bytes], codec: Codec) -> Iterator[RecordedEvent]:
    """Decode an export line by line (lazily); errors name the line number."""
    decoder = msgspec.json.Decoder(ExportedEvent)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = decoder.decode(line)
        except msgspec.DecodeError as exc:
            raise InvalidArgumentError(
                f"JSONL line {number}", line[:80], f"an event ({exc})"
            ) from exc
        try:
            event = codec.decode(item.type, bytes(item.data), item.schema_version, item.position)
        except EventDecodeError as exc:
            raise InvalidArgumentError(f"JSONL line {number}", item.type, str(exc)) from exc
        yield RecordedEvent(
            stream=item.stream,
            sequence=item.sequence,
            position=item.position,
            type=item.type,
            event=event,
            event_id=item.event_id,
            writer=item.writer,
            recorded_at=item.recorded_at,
            schema_version=item.schema_version,
        )


class ImportPlan(msgspec.Struct, kw_only=True):
    """What a file holds per stream, checked against the store before anything is written."""

    #: stream -> (first sequence in the file, its line number, events in the file)
    streams: dict[str, tuple[int, int, int]] = msgspec.field(default_factory=dict)
    events: int = 0


def plan_import(lines: Iterable[bytes], codec: Codec) -> ImportPlan:
    """Decode every line and check each stream's sequences run on without a gap or a step
    back (1, 2, 3 …, from wherever the file starts the stream); a bad line is an
    :class:`InvalidArgumentError` naming it, found before anything is written."""
    plan = ImportPlan()
    last: dict[str, int] = {}
    number = 0
    for number, record in enumerate(read_jsonl(lines, codec), start=1):
        previous = last.get(record.stream)
        if previous is None:
            plan.streams[record.stream] = (record.sequence, number, 0)
        elif record.sequence != previous + 1:
            raise InvalidArgumentError(
                f"JSONL event {number}",
                f"{record.stream} sequence {record.sequence}",
                f"sequence {previous + 1}: an export holds each stream without gaps, in order",
            )
        last[record.stream] = record.sequence
        first, line, count = plan.streams[record.stream]
        plan.streams[record.stream] = (first, line, count + 1)
    plan.events = number
    return plan
