"""msgspec JSON codec for events, with validation on write and upcasting on read.

Writing encodes the Struct and decodes the bytes once more with the class's typed decoder: that
is how a Struct built with wrong types (msgspec does not check types in ``__init__``) is refused
before anything is stored, at the cost of about a microsecond per event.

Reading uses the typed decoder straight away when the stored ``schema_version`` is the class's
current one (the hot path); older payloads are decoded to plain data, passed through the chain of
upcasters registered for that type, and converted. Failures name the position and ``$.path``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from ledger.errors import (
    EventDecodeError,
    EventTooLargeError,
    InvalidArgumentError,
    InvalidEventError,
    UnknownEventTypeError,
)
from ledger.events import EVENT_TYPES, Event, MessageAppended

__all__ = [
    "COMPATIBLE_VERSIONS",
    "STORABLE_TEXT",
    "Codec",
    "Upcaster",
    "check_text",
    "content_text",
    "json_text",
    "tool_calls_text",
    "transcript_row",
]

#: Turns the plain-data payload of version ``n`` into the payload of version ``n + 1``.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

#: (type, old schema_version) pairs whose payloads the current class reads as they are.
#: ``MessageAppended`` 1 -> 2 widened ``content`` and added fields with defaults.
COMPATIBLE_VERSIONS: frozenset[tuple[str, int]] = frozenset({("MessageAppended", 1)})


#: What :func:`check_text` and :meth:`Codec.encode` refuse, as an error's ``expected``.
STORABLE_TEXT = "text without NUL characters or lone surrogates"
#: How msgspec's JSON writes a NUL character (PostgreSQL text and JSONB cannot hold it).
_NUL = b"\\u0000"


def _unstorable(value: Any) -> bool:
    """Whether a string holds NUL or a lone surrogate (neither survives PostgreSQL)."""
    if "\x00" in value:
        return True
    if value.isascii():
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return True
    return False


def check_text(argument: str, value: object) -> None:
    """Refuse a string argument PostgreSQL cannot store (NUL, lone surrogates), on any backend.

    For identifiers given to reads and locks (a session id, a key): a few nanoseconds for
    ASCII. ``argument`` names it in the :class:`InvalidArgumentError`.
    """
    if isinstance(value, str) and _unstorable(value):
        raise InvalidArgumentError(argument, value[:40], STORABLE_TEXT)


def _bad_path(value: Any, path: str) -> str | None:
    """The path of the first string (dict key or value) in ``value`` that is unstorable."""
    if isinstance(value, str):
        return path if _unstorable(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and _unstorable(key):
                return f"{path}[{key[:40]!r}]"
            found = _bad_path(item, f"{path}[{key!r}]")
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _bad_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    elif isinstance(value, msgspec.Struct):
        for name in value.__struct_fields__:
            found = _bad_path(getattr(value, name), name)
            if found is not None:
                return found
    return None


def unstorable_text(event: Event) -> InvalidArgumentError | None:
    """The error naming the field of ``event`` that holds NUL or a lone surrogate, if any.

    Only called once the encoded payload showed a sign of one (``\\u0000`` in the JSON, or an
    encoding failure), so the walk over the fields costs nothing on the hot path. None when
    the sign was a false alarm (a text holding a backslash followed by ``u0000``).
    """
    path = _bad_path(event, "")
    if path is None:
        return None
    return InvalidArgumentError(path, _shown(event, path), STORABLE_TEXT)


def _shown(event: Event, path: str) -> str:
    """The top-level field's value, shortened, for the error message."""
    field = path.split("[", 1)[0]
    value = getattr(event, field, None)
    text = value if isinstance(value, str) else repr(value)
    return text[:40]


class Codec:
    """Encodes events to JSON bytes and back; one per store, safe to share between threads."""

    def __init__(self, event_types: Iterable[type[Event]] = (), *, max_event_bytes: int) -> None:
        self.max_event_bytes = max_event_bytes
        self._types: dict[str, type[Event]] = dict(EVENT_TYPES)
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        #: Old versions whose payloads are valid current ones (the change only added defaults
        #: or widened a type): decoded straight with the typed decoder, no upcaster needed.
        self._compatible: set[tuple[str, int]] = set(COMPATIBLE_VERSIONS)
        self._encoder = msgspec.json.Encoder()
        self._raw = msgspec.json.Decoder(dict[str, Any])
        for cls in event_types:
            self.register(cls)
        for name, cls in self._types.items():
            self._decoders[name] = msgspec.json.Decoder(cls)

    def register(self, cls: type[Event]) -> None:
        """Make a custom event class readable and writable under its tag."""
        tag = cls.__struct_config__.tag
        if not isinstance(tag, str):
            raise TypeError(f"{cls.__qualname__} needs an explicit string tag")
        self._types[tag] = cls
        self._decoders[tag] = msgspec.json.Decoder(cls)

    def register_upcaster(self, type_name: str, from_version: int, upcaster: Upcaster) -> None:
        """Register the step that lifts ``type_name`` payloads from ``from_version`` by one."""
        self._upcasters[(type_name, from_version)] = upcaster

    def type_name(self, event: Event) -> str:
        """The stored tag of ``event``; refuses classes that were never registered."""
        tag = event.__struct_config__.tag
        if not isinstance(tag, str) or self._types.get(tag) is not type(event):
            raise InvalidEventError(type(event).__qualname__, "event class is not registered")
        return tag

    def encode(self, event: Event) -> tuple[str, bytes]:
        """Validate and encode ``event``; returns its type tag and JSON payload.

        Text PostgreSQL cannot store (NUL, lone surrogates) anywhere in the event is refused
        on every backend alike (:class:`InvalidArgumentError` naming the field), so a ledger
        on SQLite always moves to PostgreSQL.
        """
        if not isinstance(event, Event):
            raise InvalidEventError(type(event).__qualname__, "not a ledger Event")
        name = self.type_name(event)
        try:
            payload = self._encoder.encode(event)
        except UnicodeEncodeError as exc:  # a lone surrogate somewhere in the event
            raise (unstorable_text(event) or InvalidEventError(name, str(exc))) from None
        except (TypeError, ValueError) as exc:
            raise InvalidEventError(name, str(exc)) from exc
        if _NUL in payload:  # one scan of the bytes; PostgreSQL cannot store NUL
            refused = unstorable_text(event)
            if refused is not None:
                raise refused
        if len(payload) > self.max_event_bytes:
            raise EventTooLargeError(name, len(payload), self.max_event_bytes)
        try:
            self._decoders[name].decode(payload)
        except msgspec.ValidationError as exc:
            raise InvalidEventError(name, str(exc)) from exc
        return name, payload

    def decode(
        self, type_name: str, payload: bytes, schema_version: int, position: int | None = None
    ) -> Event:
        """Decode a stored payload, upcasting old versions; errors name position and path."""
        decoder = self._decoders.get(type_name)
        if decoder is None:
            raise UnknownEventTypeError(type_name, position)
        cls = self._types[type_name]
        try:
            if schema_version == cls.schema_version or (
                (type_name, schema_version) in self._compatible
            ):
                event: Event = decoder.decode(payload)
                return event
            data = self._raw.decode(payload)
            version = schema_version
            while version < cls.schema_version:
                step = self._upcasters.get((type_name, version))
                if step is None:
                    raise EventDecodeError(
                        type_name, position, f"no upcaster from schema_version {version}"
                    )
                data = step(data)
                version += 1
            if version != cls.schema_version:
                raise EventDecodeError(
                    type_name,
                    position,
                    f"schema_version {schema_version} is newer than this code's "
                    f"{cls.schema_version}",
                )
            converted: Event = msgspec.convert(data, cls)
            return converted
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise EventDecodeError(type_name, position, str(exc)) from exc


_json_encoder = msgspec.json.Encoder()


def json_text(value: Any) -> str | None:
    """A JSON-able value as the views store it (compact JSON text); ``None`` stays NULL.

    One function for every writer of the views (the ``sessions`` projection and the
    single-message shortcuts), so their rows stay byte-equal to a rebuild.
    """
    return None if value is None else _json_encoder.encode(value).decode()


def tool_calls_text(tool_calls: list[dict[str, Any]] | None) -> str | None:
    """A message's ``tool_calls`` as the transcript view stores them (see :func:`json_text`)."""
    return json_text(tool_calls)


def content_text(content: str | list[dict[str, Any]] | None) -> str:
    """The text of a message's content: itself, the text parts joined by newlines, or ``""``.

    What search indexes and what plain-text renderings show of content parts; images and other
    non-text parts have no text.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = [part.get("text") for part in content]
    return "\n".join(text for text in texts if isinstance(text, str))


def transcript_row(
    event: MessageAppended,
    *,
    sequence: int | None,
    position: int | None,
    writer: str,
    recorded_at: dt.datetime,
) -> dict[str, Any]:
    """The transcript view's row of a message, as every writer of the view builds it.

    Text content goes to ``content``; content parts to ``content_parts`` as JSON text (with
    ``content`` NULL), so both round-trip exactly. ``created_at`` is the gateway's time, else
    the log's. One function for the ``sessions`` projection and both single-message shortcuts,
    so their rows stay byte-equal to a rebuild.
    """
    parts = isinstance(event.content, list)
    return {
        "session_id": event.session_id,
        "message_id": event.message_id,
        "sequence": sequence,
        "position": position,
        "role": event.role,
        "content": None if parts else event.content,
        "tool_name": event.tool_name,
        "tool_call_id": event.tool_call_id,
        "tool_calls": json_text(event.tool_calls),
        "token_count": event.token_count,
        "finish_reason": event.finish_reason,
        "reasoning": event.reasoning,
        "writer": writer,
        "recorded_at": recorded_at,
        "retracted_position": None,
        "content_parts": json_text(event.content) if parts else None,
        "created_at": event.created_at or recorded_at,
        "name": event.name,
        "reasoning_content": event.reasoning_content,
        "reasoning_details": json_text(event.reasoning_details),
        "metadata": json_text(event.metadata),
    }
