"""The domain events a chat gateway records, as frozen, keyword-only, tagged msgspec Structs.

Each class carries a stable ``tag`` (stored in the ``events.type`` column), never an import path,
so classes can move between modules without breaking stored data. Schema evolution follows
msgspec's rules: a new field always gets a default, a field's type never changes, and a change
that cannot follow those rules bumps ``schema_version`` and registers an upcaster in
:mod:`ledger.codec` that turns old payloads into the new shape on read.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec

__all__ = [
    "EVENT_TYPES",
    "Event",
    "MessageAppended",
    "MessagesRetracted",
    "Role",
    "SessionClosed",
    "SessionOpened",
    "SessionSwitched",
    "SessionTitled",
    "SwitchReason",
]

#: A non-empty identifier of bounded size (session ids, keys, message ids).
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
#: Roles a chat message may have.
Role = Literal["user", "assistant", "tool", "system"]
#: Why a key's active session changed.
SwitchReason = Literal["new", "reset", "resume", "branch", "compress"]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
#: Bounded names (models, users, tools): the width of their view columns.
Name = Annotated[str, msgspec.Meta(max_length=255)]
Title = Annotated[str, msgspec.Meta(max_length=1024)]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    """Base of every event; ``schema_version`` is the payload shape this class writes.

    Events are values that never form reference cycles, so they stay out of the cyclic GC.
    """

    schema_version: ClassVar[int] = 1


class SessionOpened(Event, frozen=True, kw_only=True, tag="SessionOpened"):
    """A new session (transcript) began under a ``session_key``."""

    session_id: Id
    session_key: Id
    source: Annotated[str, msgspec.Meta(max_length=64)]
    reason: SwitchReason
    parent_session_id: Id | None = None
    user_id: Name | None = None
    model: Name | None = None
    title: Title | None = None
    #: Source-system fields the ledger has no column for (kept, never interpreted).
    metadata: dict[str, Any] | None = None


class SessionSwitched(Event, frozen=True, kw_only=True, tag="SessionSwitched"):
    """The active session of a key changed; lives in the ``key-*`` stream only."""

    session_key: Id
    session_id: Id
    previous_session_id: Id | None
    reason: SwitchReason


class MessageAppended(Event, frozen=True, kw_only=True, tag="MessageAppended"):
    """One chat message added to a session's transcript."""

    session_id: Id
    message_id: Id
    role: Role
    content: str
    tool_name: Name | None = None
    tool_call_id: Name | None = None
    tool_calls: list[dict[str, Any]] | None = None
    token_count: NonNegative | None = None
    finish_reason: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    reasoning: str | None = None
    #: Source-system fields the ledger has no column for (kept, never interpreted).
    metadata: dict[str, Any] | None = None


class MessagesRetracted(Event, frozen=True, kw_only=True, tag="MessagesRetracted"):
    """Messages taken back (``/undo``, ``/retry``); their ids leave the live transcript."""

    session_id: Id
    message_ids: Annotated[list[Id], msgspec.Meta(min_length=1)]
    reason: Literal["undo", "retry", "compact", "import"]


class SessionTitled(Event, frozen=True, kw_only=True, tag="SessionTitled"):
    """The session got a (new) title."""

    session_id: Id
    title: Title


class SessionClosed(Event, frozen=True, kw_only=True, tag="SessionClosed"):
    """The session ended; it takes no more messages."""

    session_id: Id
    reason: str


#: Every event class by its stored tag.
EVENT_TYPES: dict[str, type[Event]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (
        SessionOpened,
        SessionSwitched,
        MessageAppended,
        MessagesRetracted,
        SessionTitled,
        SessionClosed,
    )
}
