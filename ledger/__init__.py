"""session-ledger: an event-sourced storage backend for chat-agent gateways.

The public names live here; the modules behind them are private to the package layout and may
move. ``from ledger import EventStore`` is the supported way in.

Each name is imported when it is first used (PEP 562), so ``import ledger`` (and the ``ledger``
command's startup, which imports ``ledger.cli``) loads neither SQLAlchemy nor the event types
until something needs them. The errors, which import nothing heavy, are bound at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ledger.errors import (
    BuildTimeoutError,
    ConfigurationError,
    CorruptSegmentError,
    DatabaseError,
    DuplicateEventError,
    EventDecodeError,
    EventTooLargeError,
    IdempotencyConflictError,
    InvalidArgumentError,
    InvalidEventError,
    LedgerError,
    ProjectionError,
    RebuildRunningError,
    SchemaNotCurrentError,
    SessionClosedError,
    SessionNotFoundError,
    StreamNotFoundError,
    UnknownEventTypeError,
    WrongExpectedVersionError,
)

if TYPE_CHECKING:
    from ledger.aio import AsyncLedger
    from ledger.cache import AgentCache, AsyncAgentCache, CacheDecision, CacheStats
    from ledger.codec import Codec
    from ledger.config import Settings
    from ledger.events import (
        CacheDecided,
        Event,
        MessageAppended,
        MessagesRetracted,
        SessionClosed,
        SessionConfigured,
        SessionOpened,
        SessionReopened,
        SessionSwitched,
        SessionTitled,
        UsageRecorded,
    )
    from ledger.facade import Ledger
    from ledger.idempotency import platform_event_id
    from ledger.records import ANY, NO_STREAM, AppendResult, RecordedEvent, StreamAppend
    from ledger.store import EventStore
    from ledger.views import SearchHit, SessionHead, SessionUsage, SessionViews, TranscriptMessage

#: Where each lazily imported public name is defined.
_LAZY = {
    "ANY": "ledger.records",
    "AgentCache": "ledger.cache",
    "AppendResult": "ledger.records",
    "AsyncAgentCache": "ledger.cache",
    "AsyncLedger": "ledger.aio",
    "CacheDecision": "ledger.cache",
    "CacheStats": "ledger.cache",
    "Codec": "ledger.codec",
    "Event": "ledger.events",
    "EventStore": "ledger.store",
    "Ledger": "ledger.facade",
    "MessageAppended": "ledger.events",
    "MessagesRetracted": "ledger.events",
    "NO_STREAM": "ledger.records",
    "RecordedEvent": "ledger.records",
    "SearchHit": "ledger.views",
    "SessionClosed": "ledger.events",
    "SessionConfigured": "ledger.events",
    "SessionHead": "ledger.views",
    "SessionOpened": "ledger.events",
    "SessionReopened": "ledger.events",
    "SessionSwitched": "ledger.events",
    "SessionTitled": "ledger.events",
    "SessionUsage": "ledger.views",
    "SessionViews": "ledger.views",
    "Settings": "ledger.config",
    "StreamAppend": "ledger.records",
    "TranscriptMessage": "ledger.views",
    "UsageRecorded": "ledger.events",
    "CacheDecided": "ledger.events",
    "platform_event_id": "ledger.idempotency",
}

__all__ = [
    "ANY",
    "NO_STREAM",
    "AgentCache",
    "AppendResult",
    "AsyncAgentCache",
    "AsyncLedger",
    "BuildTimeoutError",
    "CacheDecided",
    "CacheDecision",
    "CacheStats",
    "Codec",
    "ConfigurationError",
    "CorruptSegmentError",
    "DatabaseError",
    "DuplicateEventError",
    "Event",
    "EventDecodeError",
    "EventStore",
    "EventTooLargeError",
    "IdempotencyConflictError",
    "InvalidArgumentError",
    "InvalidEventError",
    "Ledger",
    "LedgerError",
    "MessageAppended",
    "MessagesRetracted",
    "ProjectionError",
    "RebuildRunningError",
    "RecordedEvent",
    "SchemaNotCurrentError",
    "SearchHit",
    "SessionClosed",
    "SessionClosedError",
    "SessionConfigured",
    "SessionHead",
    "SessionNotFoundError",
    "SessionOpened",
    "SessionReopened",
    "SessionSwitched",
    "SessionTitled",
    "SessionUsage",
    "SessionViews",
    "Settings",
    "StreamAppend",
    "StreamNotFoundError",
    "TranscriptMessage",
    "UnknownEventTypeError",
    "UsageRecorded",
    "WrongExpectedVersionError",
    "platform_event_id",
]


def __getattr__(name: str) -> Any:
    """``ledger.<name>`` for a public name not imported yet: import it, and keep it bound."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
