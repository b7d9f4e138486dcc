"""The domain events a chat gateway records, as frozen, keyword-only, tagged msgspec Structs.

Each class carries a stable ``tag`` (stored in the ``events.type`` column), never an import path,
so classes can move between modules without breaking stored data. Schema evolution follows
msgspec's rules: a new field always gets a default, a field's type never changes, and a change
that cannot follow those rules bumps ``schema_version`` and registers an upcaster in
:mod:`ledger.codec` that turns old payloads into the new shape on read.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal

import msgspec

__all__ = [
    "EVENT_TYPES",
    "CacheDecided",
    "Event",
    "MessageAppended",
    "MessagesRetracted",
    "Role",
    "SessionClosed",
    "SessionConfigured",
    "SessionOpened",
    "SessionReopened",
    "SessionSwitched",
    "SessionTitled",
    "SwitchReason",
    "UsageRecorded",
]

#: A non-empty identifier of bounded size (session ids, keys, message ids).
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
#: Roles a chat message may have.
Role = Literal["user", "assistant", "tool", "system", "developer"]
#: Why a key's active session changed (``delegate``: a subagent's child session).
SwitchReason = Literal["new", "reset", "resume", "branch", "compress", "delegate"]
#: A count the views keep in a BIGINT column (PostgreSQL refuses anything wider).
NonNegative = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
#: A count the views keep in an INTEGER column (``transcript_messages.token_count``).
Count32 = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
#: Bounded names (models, users, tools): the width of their view columns.
Name = Annotated[str, msgspec.Meta(max_length=255)]
Title = Annotated[str, msgspec.Meta(max_length=1024)]
Short = Annotated[str, msgspec.Meta(max_length=64)]
#: A time given by the gateway: timezone-aware (a naive datetime is refused).
Time = Annotated[dt.datetime, msgspec.Meta(tz=True)]
#: A message's content: text, ``None`` (an assistant turn that only calls tools), or a list of
#: content parts (``{"type": "text", "text": ...}``, ``{"type": "image_url", ...}``, as the
#: OpenAI and Anthropic message formats have them), kept exactly as given.
Content = str | list[dict[str, Any]] | None


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
    #: When the gateway started the session (its own clock); the view falls back to the log's.
    started_at: Time | None = None
    system_prompt: str | None = None
    #: The model's settings (temperature, max tokens, ...), as the gateway keeps them.
    model_config: dict[str, Any] | None = None


class SessionSwitched(Event, frozen=True, kw_only=True, tag="SessionSwitched"):
    """The active session of a key changed; lives in the ``key-*`` stream only."""

    session_key: Id
    session_id: Id
    previous_session_id: Id | None
    reason: SwitchReason


class MessageAppended(Event, frozen=True, kw_only=True, tag="MessageAppended"):
    """One chat message added to a session's transcript.

    Schema version 2 widened ``content`` (``None`` and content parts besides text) and added
    ``created_at``, ``name`` and the reasoning fields; a version-1 payload is a valid version-2
    payload, so its upcaster changes nothing.
    """

    schema_version: ClassVar[int] = 2

    session_id: Id
    message_id: Id
    role: Role
    content: Content
    #: When the gateway says the message was written; None: the log's ``recorded_at``.
    created_at: Time | None = None
    #: The participant's name (OpenAI's ``name`` field).
    name: Name | None = None
    tool_name: Name | None = None
    tool_call_id: Name | None = None
    tool_calls: list[dict[str, Any]] | None = None
    token_count: Count32 | None = None
    finish_reason: Short | None = None
    reasoning: str | None = None
    #: The provider's own reasoning text and structured reasoning blocks, kept verbatim.
    reasoning_content: str | None = None
    reasoning_details: list[dict[str, Any]] | None = None
    #: Source-system fields the ledger has no column for (kept, never interpreted).
    metadata: dict[str, Any] | None = None


class MessagesRetracted(Event, frozen=True, kw_only=True, tag="MessagesRetracted"):
    """Messages taken back (``/undo``, ``/retry``); their ids leave the live transcript."""

    session_id: Id
    message_ids: Annotated[list[Id], msgspec.Meta(min_length=1)]
    reason: Literal["undo", "retry", "rewind", "compact", "import"]


class SessionTitled(Event, frozen=True, kw_only=True, tag="SessionTitled"):
    """The session got a (new) title; ``None`` clears it."""

    session_id: Id
    title: Title | None


class SessionConfigured(Event, frozen=True, kw_only=True, tag="SessionConfigured"):
    """The session's system prompt, model or model settings changed (content: moves sequence).

    A field left ``None`` keeps its value; ``system_prompt=""`` clears the prompt.
    """

    session_id: Id
    system_prompt: str | None = None
    model: Name | None = None
    model_config: dict[str, Any] | None = None


class SessionClosed(Event, frozen=True, kw_only=True, tag="SessionClosed"):
    """The session ended; it takes no more messages until reopened."""

    session_id: Id
    reason: str
    #: When the gateway ended it (its own clock); None: the log's ``recorded_at``.
    ended_at: Time | None = None


class SessionReopened(Event, frozen=True, kw_only=True, tag="SessionReopened"):
    """A closed session takes messages again (Hermes' ``/resume`` of an ended session)."""

    session_id: Id
    reason: Short = "resume"


class UsageRecorded(Event, frozen=True, kw_only=True, tag="UsageRecorded"):
    """One API call's usage; lives in the ``usage-*`` stream, so it never moves a session."""

    session_id: Id
    input_tokens: NonNegative = 0
    output_tokens: NonNegative = 0
    cache_read_tokens: NonNegative = 0
    cache_write_tokens: NonNegative = 0
    reasoning_tokens: NonNegative = 0
    cost_usd: Annotated[float, msgspec.Meta(ge=0)] | None = None
    model: Name | None = None


class CacheDecided(Event, frozen=True, kw_only=True, tag="CacheDecided"):
    """A live agent cache's decision that was not a plain ``hit``; lives in the key's
    ``decisions-*`` stream, so recording it never moves a session's ``sequence``.

    ``reason`` is a decision-table reason, or ``evicted`` / ``expired`` (the entry left the
    cache: LRU size, idle TTL). For a ``miss``/``rebuild``, ``build_seconds`` is the time from
    the decision to the ``store`` that cached the new agent, and ``built`` is False when the
    build was abandoned.
    """

    session_key: Id
    session_id: Id | None = None
    action: Short
    reason: Short
    baseline: NonNegative | None = None
    live: NonNegative | None = None
    build_seconds: Annotated[float, msgspec.Meta(ge=0)] | None = None
    built: bool | None = None
    #: When the cache decided (the append may come a little later, off the turn's path).
    decided_at: Time | None = None


#: Every event class by its stored tag.
EVENT_TYPES: dict[str, type[Event]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in (
        SessionOpened,
        SessionSwitched,
        MessageAppended,
        MessagesRetracted,
        SessionTitled,
        SessionConfigured,
        SessionClosed,
        SessionReopened,
        UsageRecorded,
        CacheDecided,
    )
}
