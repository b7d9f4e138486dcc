"""session-ledger: an event-sourced storage backend for chat-agent gateways.

The public names live here; the modules behind them are private to the package layout and may
move. ``from ledger import EventStore`` is the supported way in.
"""

from ledger.aio import AsyncLedger
from ledger.cache import AgentCache, AsyncAgentCache, CacheDecision
from ledger.codec import Codec
from ledger.config import Settings
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
    SchemaNotCurrentError,
    SessionClosedError,
    SessionNotFoundError,
    StreamNotFoundError,
    UnknownEventTypeError,
    WrongExpectedVersionError,
)
from ledger.events import (
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

__all__ = [
    "ANY",
    "NO_STREAM",
    "AgentCache",
    "AppendResult",
    "AsyncAgentCache",
    "AsyncLedger",
    "BuildTimeoutError",
    "CacheDecision",
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
