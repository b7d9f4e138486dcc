"""Hermes rows to ledger events: what each ``sessions`` and ``messages`` column becomes.

The importer (``_importer``) plans a session through :meth:`RowMapper.plan` and writes what it
returns; the rules for each column are in the importer's module docstring. Every event id is a
UUIDv5 of (session id, message id, kind) in :data:`NAMESPACE`, so a re-import recognises what it
wrote before.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from ledger.events import (
    Event,
    MessageAppended,
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
    "USAGE_COLUMNS",
    "Planned",
    "RowMapper",
    "cut",
    "event_id",
    "hermes_time",
]

#: The namespace of the importer's deterministic (UUIDv5) event ids.
NAMESPACE = uuid.UUID("0f4c7a9e-3b1d-5e62-9a07-6d2c8b41e5f3")

#: Columns with an event field of their own; every other column goes into ``metadata``.
SESSION_FIELDS = frozenset(
    ("id", "source", "user_id", "model", "title", "parent_session_id", "session_key")
)
SESSION_FIELDS |= {"started_at", "ended_at", "end_reason", "system_prompt", "system_prompt_hash"}
#: The usage counters, which go to the session's usage stream (``UsageRecorded``).
USAGE_COLUMNS = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_tokens": "cache_read_tokens",
    "cache_write_tokens": "cache_write_tokens",
    "reasoning_tokens": "reasoning_tokens",
}
SESSION_FIELDS |= set(USAGE_COLUMNS) | {"estimated_cost_usd", "actual_cost_usd"}
MESSAGE_FIELDS = frozenset(("id", "session_id", "role", "content", "reasoning", "tool_calls"))
MESSAGE_FIELDS |= {"tool_call_id", "tool_name", "token_count", "finish_reason", "timestamp"}
MESSAGE_FIELDS |= {"reasoning_content", "reasoning_details"}
MESSAGE_FIELDS |= {"active", "compacted"}  # these two become retractions
#: Hermes' marker of structured content (a list of parts) stored as JSON text.
CONTENT_JSON_PREFIX = "\x00json:"
#: Sources of delegated child sessions (a subagent's own transcript).
_DELEGATE_SOURCES = frozenset(("subagent", "delegate"))
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


def hermes_time(value: Any) -> dt.datetime | None:
    """A Hermes time column (Unix seconds, REAL) as an aware UTC datetime; None if not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


class RowMapper:
    """Builds one session's events from its rows, counting what it had to change."""

    def __init__(self, source: HermesSource, summary: ImportSummary, max_event_bytes: int) -> None:
        self.source = source
        self.summary = summary
        self.max_event_bytes = max_event_bytes

    def opened(self, raw_id: Any, parent_end: Any) -> SessionOpened:
        """The session's ``SessionOpened``: lineage reason, times, prompt, settings."""
        row = self.source.session(raw_id)
        sid = str(raw_id)
        metadata = {k: v for k, v in row.items() if k not in SESSION_FIELDS and v is not None}
        fields = {name: self._fit(row.get(name), name, metadata) for name in _LIMITS}
        config = json_value(row.get("model_config"))
        markers = config if isinstance(config, dict) else {}
        if isinstance(config, dict):
            metadata.pop("model_config", None)
        started_at = hermes_time(row.get("started_at"))
        if started_at is None and row.get("started_at") is not None:
            metadata["started_at"] = row["started_at"]
        parent = stripped(row.get("parent_session_id"))
        source = stripped(row.get("source")) or "unknown"
        reason: SwitchReason = "new"
        if parent and ("_branched_from" in markers or parent_end == "branched"):
            reason = "branch"
        elif parent and ("_reset_from" in markers or parent_end in _RESET_END_REASONS):
            reason = "reset"
        elif parent and (source in _DELEGATE_SOURCES or "_delegated_from" in markers):
            reason = "delegate"
        elif parent:
            reason = "compress"
        opened = SessionOpened(
            session_id=sid,
            session_key=session_key_of(row),
            source=self._clean(source)[:64],
            reason=reason,
            parent_session_id=parent,
            user_id=fields["user_id"],
            model=fields["model"],
            title=fields["title"],
            metadata=metadata or None,
            started_at=started_at,
            system_prompt=self.system_prompt(row),
            model_config=config if isinstance(config, dict) else None,
        )
        return self._sized(opened) or msgspec.structs.replace(opened, metadata=None)

    def system_prompt(self, row: dict[str, Any]) -> str | None:
        """The session's prompt: inline (before v25), else from ``system_prompts`` by hash."""
        inline = row.get("system_prompt")
        if inline is not None:
            return self._clean(as_text(inline))
        found = self.source.system_prompt(row.get("system_prompt_hash"))
        return None if found is None else self._clean(found)

    def closed(self, row: dict[str, Any]) -> SessionClosed | None:
        """``SessionClosed`` with Hermes' end reason and time, if the session has ended."""
        if row.get("ended_at") is None:
            return None
        return SessionClosed(
            session_id=str(row["id"]),
            reason=(stripped(row.get("end_reason")) or "ended")[:255],
            ended_at=hermes_time(row.get("ended_at")),
        )

    def messages(self, raw_id: Any) -> Iterator[tuple[str, MessageAppended, bool, str]]:
        """Per transcript row: (row id, message, live, retraction reason), lazily.

        A row the ledger cannot take (too large even without its metadata) is reported in
        ``bad_rows`` and left out; the session's other rows are imported.
        """
        sid = str(raw_id)
        for row in self.source.transcript(raw_id):
            if row["role"] not in ROLES:
                continue
            mid = str(row["id"])
            message = self._message(sid, mid, row)
            if message is None:
                continue
            compacted = row.get("compacted") == 1
            live = not compacted and row.get("active") != 0
            yield mid, message, live, "compact" if compacted else "undo"

    def _message(self, sid: str, mid: str, row: dict[str, Any]) -> MessageAppended | None:
        metadata = {k: v for k, v in row.items() if k not in MESSAGE_FIELDS and v is not None}
        fields = {name: self._fit(row.get(name), name, metadata) for name in _LIMITS}
        tokens = row.get("token_count")
        if tokens is not None and (type(tokens) is not int or tokens < 0):
            metadata["token_count"], tokens = tokens, None
        created_at = hermes_time(row.get("timestamp"))
        if created_at is None and row.get("timestamp") is not None:
            metadata["timestamp"] = row["timestamp"]
        details = self._parts(row.get("reasoning_details"))
        if details is None and row.get("reasoning_details") is not None:
            metadata["reasoning_details"] = row["reasoning_details"]
        message = MessageAppended(
            session_id=sid,
            message_id=mid,
            role=row["role"],
            content=self._content(sid, mid, row.get("content")),
            created_at=created_at,
            tool_name=fields["tool_name"],
            tool_call_id=fields["tool_call_id"],
            tool_calls=tool_calls_of(row.get("tool_calls")),
            token_count=tokens,
            finish_reason=fields["finish_reason"],
            reasoning=self._text(row.get("reasoning")),
            reasoning_content=self._text(row.get("reasoning_content")),
            reasoning_details=details,
            metadata=metadata or None,
        )
        sized = self._sized(message)
        if sized is None:
            self.summary.bad_rows[f"{sid}/{mid}"] = (
                f"larger than LEDGER_MAX_EVENT_BYTES ({self.max_event_bytes} bytes)"
            )
        return sized

    def _content(self, sid: str, mid: str, raw: Any) -> str | list[dict[str, Any]] | None:
        """Hermes content: NULL stays None; ``\\x00json:`` + JSON becomes the parts it holds."""
        if raw is None:
            return None
        text = as_text(raw)
        if not text.startswith(CONTENT_JSON_PREFIX):
            return self._clean(text)
        value = json_value(text[len(CONTENT_JSON_PREFIX) :])
        if isinstance(value, str):
            return self._clean(value)
        if isinstance(value, dict):
            value = [value]
        if isinstance(value, list) and all(isinstance(part, dict) for part in value):
            return [self._clean_part(part) for part in value]
        self.summary.bad_rows[f"{sid}/{mid}"] = "content: \\x00json: prefix without valid parts"
        return self._clean(text[len(CONTENT_JSON_PREFIX) :])

    def _clean_part(self, part: dict[str, Any]) -> dict[str, Any]:
        text = part.get("text")
        if isinstance(text, str) and "\x00" in text:
            return {**part, "text": self._clean(text)}
        return part

    @staticmethod
    def _parts(raw: Any) -> list[dict[str, Any]] | None:
        """JSON text of a list of dicts (a dict alone is a list of one); None otherwise."""
        value = json_value(raw) if raw is not None else None
        if isinstance(value, dict):
            return [value]
        if isinstance(value, list) and all(isinstance(item, dict) for item in value):
            return value
        return None

    def _text(self, value: Any) -> str | None:
        return None if value is None else self._clean(as_text(value))

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

    def _sized(self, event: T) -> T | None:
        """``event``, without its metadata if that makes it fit; None if it cannot fit."""
        limit = self.max_event_bytes
        # JSON takes at most 6 bytes per character (``\u0000``): encode only when it might matter.
        texts = [getattr(event, name, None) for name in ("content", "reasoning", "system_prompt")]
        texts += [getattr(event, "reasoning_content", None)]
        metadata = getattr(event, "metadata", None) or {}
        texts += list(metadata.values())
        rough = sum(len(v) for v in texts if isinstance(v, str | bytes)) + 32 * len(metadata)
        rough += sum(len(str(v)) for v in texts if isinstance(v, list))
        if 6 * rough + 1024 <= limit or len(msgspec.json.encode(event)) <= limit:
            return event
        if metadata:
            self.summary.metadata_dropped += 1
            event = msgspec.structs.replace(event, metadata=None)  # type: ignore[type-var]
            if len(msgspec.json.encode(event)) <= limit:
                return event
        return None
