"""msgspec JSON codec for events, with validation on write and upcasting on read.

Writing encodes the Struct and decodes the bytes once more with the class's typed decoder: that
is how a Struct built with wrong types (msgspec does not check types in ``__init__``) is refused
before anything is stored, at the cost of about a microsecond per event.

Reading uses the typed decoder straight away when the stored ``schema_version`` is the class's
current one (the hot path); older payloads are decoded to plain data, passed through the chain of
upcasters registered for that type, and converted. Failures name the position and ``$.path``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from ledger.errors import (
    EventDecodeError,
    EventTooLargeError,
    InvalidEventError,
    UnknownEventTypeError,
)
from ledger.events import EVENT_TYPES, Event

__all__ = ["Codec", "Upcaster", "tool_calls_text"]

#: Turns the plain-data payload of version ``n`` into the payload of version ``n + 1``.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class Codec:
    """Encodes events to JSON bytes and back; one per store, safe to share between threads."""

    def __init__(self, event_types: Iterable[type[Event]] = (), *, max_event_bytes: int) -> None:
        self.max_event_bytes = max_event_bytes
        self._types: dict[str, type[Event]] = dict(EVENT_TYPES)
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
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
        """Validate and encode ``event``; returns its type tag and JSON payload."""
        if not isinstance(event, Event):
            raise InvalidEventError(type(event).__qualname__, "not a ledger Event")
        name = self.type_name(event)
        try:
            payload = self._encoder.encode(event)
        except (TypeError, ValueError) as exc:
            raise InvalidEventError(name, str(exc)) from exc
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
            if schema_version == cls.schema_version:
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


_tool_calls_encoder = msgspec.json.Encoder()


def tool_calls_text(tool_calls: list[dict[str, Any]] | None) -> str | None:
    """A message's ``tool_calls`` as the transcript view stores them (compact JSON text).

    One function for every writer of the view (the ``sessions`` projection and PostgreSQL's
    one-round-trip append), so their rows stay byte-equal to a rebuild.
    """
    return None if tool_calls is None else _tool_calls_encoder.encode(tool_calls).decode()
