"""Hermes rows to ledger events: what each ``sessions`` and ``messages`` column becomes.

The importer (``_importer``) plans a session through :meth:`RowMapper.plan` and writes what it
returns; the rules for each column are in the importer's module docstring. Every event id is a
UUIDv5 of (session id, message id, kind) in :data:`NAMESPACE`, so a re-import recognises what it
wrote before.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import msgspec

from ledger.events import (
    Event,
    MessageAppended,
    MessagesRetracted,
    SessionClosed,
    SessionOpened,
    SwitchReason,
)
from ledger.hermes._source import (
    ROLES,
    HermesSource,
    as_text,
    json_value,
    session_key_of,
    stripped,
    tool_calls_of,
)

if TYPE_CHECKING:
    from ledger.hermes._importer import ImportSummary

__all__ = [
    "MESSAGE_FIELDS",
    "NAMESPACE",
    "SESSION_FIELDS",
    "Planned",
    "RowMapper",
    "cut",
    "event_id",
]

#: The namespace of the importer's deterministic (UUIDv5) event ids.
NAMESPACE = uuid.UUID("0f4c7a9e-3b1d-5e62-9a07-6d2c8b41e5f3")

#: Columns with an event field of their own; every other column goes into ``metadata``.
SESSION_FIELDS = frozenset(
    ("id", "source", "user_id", "model", "title", "parent_session_id", "session_key")
)
MESSAGE_FIELDS = frozenset(("id", "session_id", "role", "content", "reasoning", "tool_calls"))
MESSAGE_FIELDS |= {"tool_call_id", "tool_name", "token_count", "finish_reason"}
MESSAGE_FIELDS |= {"active", "compacted"}  # these two become retractions
#: Hermes end reasons after which a child session is a reset rather than a compression.
_RESET_END_REASONS = frozenset(
    ("session_reset", "session_switch", "idle", "daily", "suspended", "resume_pending_expired")
)
#: Lengths of the view columns the projections write (PostgreSQL enforces them).
_LIMITS = {"user_id": 255, "model": 255, "title": 1024, "finish_reason": 64}
_LIMITS |= {"tool_name": 255, "tool_call_id": 255}
Planned = tuple[uuid.UUID, Event]
T = TypeVar("T")


def event_id(session_id: str, message_id: str, kind: str) -> uuid.UUID:
    """The deterministic event id of one imported fact (``kind``: opened, message…)."""
    return uuid.uuid5(NAMESPACE, f"hermes\x1f{session_id}\x1f{message_id}\x1f{kind}")


def cut(value: Any, name: str) -> str | None:
    """A text value as the views store it: NUL replaced, cut to the column's length."""
    return None if value is None else as_text(value).replace("\x00", "\ufffd")[: _LIMITS[name]]


class RowMapper:
    """Builds one session's events from its rows, counting what it had to change."""

    def __init__(self, source: HermesSource, summary: ImportSummary, max_event_bytes: int) -> None:
        self.source = source
        self.summary = summary
        self.max_event_bytes = max_event_bytes

    def plan(self, raw_id: Any, parent_end: Any) -> tuple[SwitchReason, Iterator[Planned]]:
        """The session's ``SessionOpened`` reason and all its events, messages read lazily."""
        row = self.source.session(raw_id)
        sid = str(raw_id)
        metadata = {k: v for k, v in row.items() if k not in SESSION_FIELDS and v is not None}
        fields = {name: self._fit(row.get(name), name, metadata) for name in _LIMITS}
        markers = json_value(row.get("model_config"))
        markers = markers if isinstance(markers, dict) else {}
        parent = stripped(row.get("parent_session_id"))
        reason: SwitchReason = "new"
        if parent and ("_branched_from" in markers or parent_end == "branched"):
            reason = "branch"
        elif parent and ("_reset_from" in markers or parent_end in _RESET_END_REASONS):
            reason = "reset"
        elif parent:
            reason = "compress"
        opened = SessionOpened(
            session_id=sid,
            session_key=session_key_of(row),
            source=self._clean(stripped(row.get("source")) or "unknown"),
            reason=reason,
            parent_session_id=parent,
            user_id=fields["user_id"],
            model=fields["model"],
            title=fields["title"],
            metadata=metadata or None,
        )
        ended = None
        if row.get("ended_at") is not None:
            ended = SessionClosed(session_id=sid, reason=stripped(row.get("end_reason")) or "ended")
        return reason, self.events(raw_id, self._sized(opened), ended)

    def events(
        self, raw_id: Any, opened: SessionOpened, ended: SessionClosed | None
    ) -> Iterator[Planned]:
        sid = opened.session_id
        yield event_id(sid, "", "opened"), opened
        for message in self.source.transcript(raw_id):
            if message["role"] not in ROLES:
                continue
            mid = str(message["id"])
            yield event_id(sid, mid, "message"), self._message(sid, mid, message)
            compacted = message.get("compacted") == 1
            if compacted or message.get("active") == 0:
                why: Literal["compact", "undo"] = "compact" if compacted else "undo"
                retracted = MessagesRetracted(session_id=sid, message_ids=[mid], reason=why)
                yield event_id(sid, mid, "retracted"), retracted
        if ended is not None:
            yield event_id(sid, "", "closed"), ended

    def _message(self, sid: str, mid: str, row: dict[str, Any]) -> MessageAppended:
        metadata = {k: v for k, v in row.items() if k not in MESSAGE_FIELDS and v is not None}
        fields = {name: self._fit(row.get(name), name, metadata) for name in _LIMITS}
        tokens = row.get("token_count")
        if tokens is not None and (type(tokens) is not int or tokens < 0):
            metadata["token_count"], tokens = tokens, None
        content, reasoning = row.get("content"), row.get("reasoning")
        message = MessageAppended(
            session_id=sid,
            message_id=mid,
            role=row["role"],
            content="" if content is None else self._clean(as_text(content)),
            tool_name=fields["tool_name"],
            tool_call_id=fields["tool_call_id"],
            tool_calls=tool_calls_of(row.get("tool_calls")),
            token_count=tokens,
            finish_reason=fields["finish_reason"],
            reasoning=None if reasoning is None else self._clean(as_text(reasoning)),
            metadata=metadata or None,
        )
        return self._sized(message)

    def _fit(self, value: Any, name: str, metadata: dict[str, Any]) -> str | None:
        """A text field cut to its view column's length (the whole value goes to metadata)."""
        if value is None:
            return None
        text = self._clean(as_text(value))
        if len(text) > _LIMITS[name]:
            metadata[name] = value
        return cut(text, name)

    def _clean(self, text: str) -> str:
        if "\x00" not in text:
            return text
        self.summary.nul_replaced += 1
        return text.replace("\x00", "\ufffd")

    def _sized(self, event: T) -> T:
        """``event`` without its metadata when the metadata would make it too large."""
        metadata = getattr(event, "metadata", None)
        if metadata is None:
            return event
        # JSON takes at most 6 bytes per character (``\u0000``): encode only when it might matter.
        texts = [
            getattr(event, "content", ""),
            getattr(event, "reasoning", None),
            *metadata.values(),
        ]
        rough = sum(len(v) for v in texts if isinstance(v, str | bytes)) + 32 * len(metadata)
        limit = self.max_event_bytes
        if 6 * rough + 1024 <= limit or len(msgspec.json.encode(event)) <= limit:
            return event
        self.summary.metadata_dropped += 1
        return msgspec.structs.replace(event, metadata=None)  # type: ignore[type-var]
