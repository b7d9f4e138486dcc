"""Value objects the store hands out: stored events and append results."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import msgspec

from ledger.events import Event

__all__ = ["ANY", "NO_STREAM", "AppendResult", "RecordedEvent", "StreamAppend"]

#: ``expected_sequence`` meaning "whatever the head is".
ANY: None = None
#: ``expected_sequence`` meaning "the stream must not exist yet".
NO_STREAM: int = 0


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One event as stored: its place in its stream and in the log, and its metadata.

    ``gc=False``: records never take part in reference cycles, and keeping a million of them
    out of the cyclic garbage collector's sight is a fifth of the cost of reading a log.
    """

    stream: str
    sequence: int
    position: int
    type: str
    event: Event
    event_id: uuid.UUID
    writer: str
    recorded_at: dt.datetime
    schema_version: int


class AppendResult(msgspec.Struct, frozen=True, kw_only=True):
    """What one stream append wrote: the stream's new head and each event's place.

    ``sequence`` and ``position`` are those of the last event; ``sequences``, ``positions`` and
    ``event_ids`` list every event in order. ``duplicate`` is true when the ``event_ids`` were
    already stored and this is the original result, returned without writing.
    """

    stream: str
    sequence: int
    position: int
    sequences: tuple[int, ...]
    positions: tuple[int, ...]
    event_ids: tuple[uuid.UUID, ...]
    duplicate: bool = False


class StreamAppend(msgspec.Struct, frozen=True, kw_only=True):
    """One stream's part of a multi-stream append (:meth:`EventStore.append_streams`).

    ``writer`` and ``recorded_at`` (one per event) are for importers that carry events over
    from another log or system, keeping who wrote them and when; a gateway leaves them unset.
    """

    stream: str
    events: Sequence[Event]
    expected_sequence: int | None = None
    event_ids: Sequence[uuid.UUID | str] | None = None
    writer: str | None = None
    recorded_at: Sequence[dt.datetime] | None = None
