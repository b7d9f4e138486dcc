"""Validation and encoding of an append, before any lock is taken or any row is touched.

Bad arguments (a stream name, ``expected_sequence``, ``event_ids``, ``recorded_at``) raise
:class:`InvalidArgumentError`; events that cannot be stored raise :class:`InvalidEventError`
(or :class:`EventTooLargeError` from the codec) naming the event type and the ``$.path``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from ledger.codec import Codec, check_text
from ledger.errors import EventTooLargeError, InvalidArgumentError, InvalidEventError
from ledger.records import StreamAppend
from ledger.streams import session_id_of

__all__ = ["MAX_STREAM", "prepare"]

#: Longest stream name (the ``streams.stream`` column).
MAX_STREAM = 300


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidArgumentError("event_id", value, "a UUID") from None


def _check_arguments(part: StreamAppend) -> None:
    if not isinstance(part.stream, str) or not 0 < len(part.stream) <= MAX_STREAM:
        raise InvalidArgumentError("stream", part.stream, f"a name of 1..{MAX_STREAM} characters")
    check_text("stream", part.stream)
    expected = part.expected_sequence
    if expected is not None and (
        isinstance(expected, bool) or not isinstance(expected, int) or expected < 0
    ):
        raise InvalidArgumentError("expected_sequence", expected, "None or an integer >= 0")
    if part.event_ids is not None and len(part.event_ids) != len(part.events):
        raise InvalidArgumentError(
            "event_ids", f"{len(part.event_ids)} ids", f"one per event ({len(part.events)})"
        )
    times = part.recorded_at
    if times is not None and (
        len(times) != len(part.events) or any(t.tzinfo is None for t in times)
    ):
        raise InvalidArgumentError(
            "recorded_at", times, f"{len(part.events)} timezone-aware datetimes"
        )


def prepare(part: StreamAppend, *, writer: str, codec: Codec) -> list[dict[str, Any]]:
    """One row per event of ``part``: encoded payload, event id, writer, schema version.

    The rows carry the event itself under ``_event`` (for the inline projections) and, when the
    caller gave them, their ``recorded_at``; the store adds sequences and the append's time.
    """
    _check_arguments(part)
    ids = (
        [_as_uuid(value) for value in part.event_ids]
        if part.event_ids is not None
        else [uuid.uuid4() for _ in part.events]
    )
    if len(set(ids)) != len(ids):
        raise InvalidArgumentError("event_ids", "a repeated id", "each event_id once per append")
    owner = session_id_of(part.stream)
    rows: list[dict[str, Any]] = []
    for index, (event, event_id) in enumerate(zip(part.events, ids, strict=True)):
        try:
            type_name, payload = codec.encode(event)
        except EventTooLargeError as exc:  # name the stream (so the session) it was meant for
            raise EventTooLargeError(exc.type, exc.size, exc.limit, part.stream) from None
        claimed = getattr(event, "session_id", owner)
        if owner is not None and claimed != owner:
            # The views key a head by its stream and transcript rows by the payload.
            raise InvalidEventError(
                type_name,
                f"session_id {claimed!r} is not that of stream {part.stream!r} - at `$.session_id`",
            )
        row = {
            "stream": part.stream,
            "type": type_name,
            "data": payload,
            "event_id": event_id,
            "writer": part.writer or writer,
            "schema_version": type(event).schema_version,
            "_event": event,
        }
        if part.recorded_at is not None:
            row["recorded_at"] = part.recorded_at[index].astimezone(dt.UTC)
        rows.append(row)
    return rows
