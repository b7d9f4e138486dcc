"""The ledger's exception tree.

Every error the ledger raises derives from :class:`LedgerError` and also from the nearest
builtin, so callers may catch either ``LedgerError`` or, say, ``LookupError``. Each message is
built in ``__init__`` from the attributes, so the text always names the object and the values.

::

    LedgerError(Exception)
    ├── WrongExpectedVersionError(LedgerError)           stream, expected, actual
    ├── StreamNotFoundError(LedgerError, LookupError)     stream
    ├── SessionNotFoundError(StreamNotFoundError)         session_id
    ├── SessionClosedError(LedgerError)                   session_id
    ├── UnknownEventTypeError(LedgerError, LookupError)   type, position
    ├── EventDecodeError(LedgerError, ValueError)         type, position, path, detail
    ├── InvalidEventError(LedgerError, ValueError)        event type, path, detail
    │   └── EventTooLargeError(InvalidEventError)        size, limit, stream
    ├── DuplicateEventError(LedgerError, ValueError)      event_ids stored elsewhere
    │   └── IdempotencyConflictError(DuplicateEventError) an event_id with new content
    ├── InvalidArgumentError(LedgerError, ValueError)     argument, value, expected
    ├── ConfigurationError(LedgerError, ValueError)       variable, value, expected
    ├── SchemaNotCurrentError(LedgerError)                current, head
    ├── CorruptSegmentError(LedgerError, ValueError)      archived stream
    ├── BuildTimeoutError(LedgerError, TimeoutError)      session_key, timeout
    ├── DatabaseError(LedgerError, OSError)               backend, constraint, driver text
    └── ProjectionError(LedgerError)                      projection, position
        └── RebuildRunningError(ProjectionError)          projection (another rebuild holds it)

Driver errors are translated in exactly one place, :func:`ledger.store.translate_error`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any, Self

from ledger.streams import session_stream

__all__ = [
    "BuildTimeoutError",
    "ConfigurationError",
    "CorruptSegmentError",
    "DatabaseError",
    "DuplicateEventError",
    "EventDecodeError",
    "EventTooLargeError",
    "IdempotencyConflictError",
    "InvalidArgumentError",
    "InvalidEventError",
    "LedgerError",
    "ProjectionError",
    "RebuildRunningError",
    "SchemaNotCurrentError",
    "SessionClosedError",
    "SessionNotFoundError",
    "StreamNotFoundError",
    "UnknownEventTypeError",
    "WrongExpectedVersionError",
]


class LedgerError(Exception):
    """Base class of every error the ledger raises.

    The constructor arguments are kept so every subclass pickles (errors cross process
    boundaries in multi-process gateways) although each builds its own message.
    """

    _init_args: tuple[tuple[Any, ...], dict[str, Any]]

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        self = super().__new__(cls, *args)
        self._init_args = (args, kwargs)
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        args, kwargs = self._init_args
        return (functools.partial(type(self), **kwargs), args)


class WrongExpectedVersionError(LedgerError):
    """A stream's head differs from the ``expected_sequence`` the writer gave; nothing written."""

    def __init__(self, stream: str, expected: int | str, actual: int) -> None:
        self.stream = stream
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"Wrong expected version for stream {stream!r}: expected {expected}, actual {actual}"
        )


class StreamNotFoundError(LedgerError, LookupError):
    """A stream that must exist has no events."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        super().__init__(f"Stream {stream!r} does not exist")


class SessionNotFoundError(StreamNotFoundError):
    """No session with this ``session_id`` was ever opened."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(session_stream(session_id))
        self.args = (f"Session {session_id!r} does not exist",)

    def __str__(self) -> str:
        return f"Session {self.session_id!r} does not exist"


class SessionClosedError(LedgerError):
    """The session is closed; it takes no more messages."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(f"Session {session_id!r} is closed and takes no more events")


class UnknownEventTypeError(LedgerError, LookupError):
    """A stored event's type names no registered event class."""

    def __init__(self, type_name: str, position: int | None = None) -> None:
        self.type = type_name
        self.position = position
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"Unknown event type {type_name!r}{where}")


_PATH = re.compile(r"at `(\$[^`]*)`")


def _path_of(detail: str) -> str:
    """The ``$.path`` msgspec puts in a validation message, or ``$`` for the whole payload."""
    match = _PATH.search(detail)
    return match.group(1) if match else "$"


class EventDecodeError(LedgerError, ValueError):
    """A stored payload fails validation against its event class; names position and path."""

    def __init__(self, type_name: str, position: int | None, detail: str) -> None:
        self.type = type_name
        self.position = position
        self.detail = detail
        self.path = _path_of(detail)
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"Cannot decode event {type_name!r}{where}: {detail}")


class InvalidEventError(LedgerError, ValueError):
    """An event handed to ``append`` is not valid; nothing was written."""

    def __init__(self, type_name: str, detail: str) -> None:
        self.type = type_name
        self.detail = detail
        self.path = _path_of(detail)
        super().__init__(f"Invalid event {type_name!r}: {detail}")


class EventTooLargeError(InvalidEventError):
    """An encoded event exceeds ``LEDGER_MAX_EVENT_BYTES``; nothing was written."""

    def __init__(self, type_name: str, size: int, limit: int, stream: str | None = None) -> None:
        self.size = size
        self.limit = limit
        self.stream = stream
        where = "" if stream is None else f" in stream {stream!r}"
        super().__init__(
            type_name,
            f"encoded size {size} bytes{where} exceeds the limit of {limit} bytes "
            "(LEDGER_MAX_EVENT_BYTES)",
        )


class DuplicateEventError(LedgerError, ValueError):
    """Some ``event_ids`` are stored already, but not as this exact append; nothing written."""

    def __init__(self, stream: str, event_ids: Sequence[str]) -> None:
        self.stream = stream
        self.event_ids = list(event_ids)
        super().__init__(
            f"Event ids {', '.join(self.event_ids)} are already stored, but not as one append "
            f"to stream {stream!r} in this order"
        )


class IdempotencyConflictError(DuplicateEventError):
    """An ``event_id`` is stored already with DIFFERENT content; nothing was written.

    A retry must carry the same event; two different messages under one platform update id
    (see :func:`ledger.platform_event_id`) are a bug in the caller, never silently merged.
    """

    def __init__(self, stream: str, event_id: str) -> None:
        self.stream = stream
        self.event_ids = [event_id]
        LedgerError.__init__(
            self,
            f"Event id {event_id} is already stored in stream {stream!r} with different "
            "content; a retry must carry the same event",
        )


class InvalidArgumentError(LedgerError, ValueError):
    """An argument to a ledger call is out of range or malformed; nothing was done."""

    def __init__(self, argument: str, value: object, expected: str) -> None:
        self.argument = argument
        self.value = value
        self.expected = expected
        super().__init__(f"Invalid {argument} {value!r}: expected {expected}")


class ConfigurationError(LedgerError, ValueError):
    """A setting (usually a ``LEDGER_`` variable) has a value the ledger cannot use."""

    def __init__(self, variable: str, value: object, expected: str) -> None:
        self.variable = variable
        self.value = value
        self.expected = expected
        super().__init__(f"{variable}={value!r} is not valid: expected {expected}")


class SchemaNotCurrentError(LedgerError):
    """The database is not at the Alembic head revision this code needs."""

    def __init__(self, current: str | None, head: str) -> None:
        self.current = current
        self.head = head
        super().__init__(
            f"Database schema is at revision {current or '<empty>'}, this ledger needs {head}: "
            "run `ledger db upgrade`"
        )


class CorruptSegmentError(LedgerError, ValueError):
    """An archive segment does not decompress or fails its checksum; nothing was restored."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        super().__init__(f"Archive segment of stream {stream!r} is damaged (checksum or zlib)")


class BuildTimeoutError(LedgerError, TimeoutError):
    """An agent build other callers were waiting for did not finish in time."""

    def __init__(self, session_key: str, timeout: float) -> None:
        self.session_key = session_key
        self.timeout = timeout
        super().__init__(f"Agent build for key {session_key!r} did not finish within {timeout}s")


class DatabaseError(LedgerError, OSError):
    """The database driver failed in a way the ledger does not map to a narrower error.

    ``backend`` names the database (``SQLite``/``PostgreSQL``) when the failure came from one,
    so "the connection dropped" says where it dropped.
    """

    def __init__(
        self, detail: str, *, backend: str | None = None, constraint: str | None = None
    ) -> None:
        self.detail = detail
        self.backend = backend
        #: The name of the constraint an integrity error broke (``uq_events_stream_sequence``…).
        self.constraint = constraint
        message = f"{backend} error: {detail}" if backend else detail
        super().__init__(message)
        self.args = (message,)  # OSError fixes its args in __new__, from the raw arguments


class ProjectionError(LedgerError):
    """A projection failed to apply the event at ``position``."""

    def __init__(self, projection: str, position: int | None, detail: str) -> None:
        self.projection = projection
        self.position = position
        self.detail = detail
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"Projection {projection!r} failed{where}: {detail}")


class RebuildRunningError(ProjectionError):
    """Another rebuild runs on this database; this one stopped before changing anything.

    Two rebuilds at once would drop each other's shadow tables midway.
    """

    def __init__(self, projection: str) -> None:
        super().__init__(
            projection, None, "another rebuild is running on this database; try again later"
        )
