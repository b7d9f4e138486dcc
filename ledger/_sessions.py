"""The gateway API's writes of a session's life beyond its messages (a mixin of ``Ledger``).

Closing, reopening, titling and configuring a session are content (they go to its stream and
move its ``sequence``); usage goes to the session's ``usage-*`` stream and never does. Each
write checks the session's state inside its own transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import msgspec

from ledger._preconditions import session_state
from ledger.errors import InvalidArgumentError, InvalidEventError, SessionClosedError
from ledger.events import (
    Event,
    MessageAppended,
    MessagesRetracted,
    SessionClosed,
    SessionConfigured,
    SessionReopened,
    SessionTitled,
    UsageRecorded,
)
from ledger.records import AppendResult, StreamAppend
from ledger.store import EventStore
from ledger.streams import session_stream, usage_stream

__all__ = ["SessionWrites", "convert"]

E = TypeVar("E", bound=Event)
SessionEvent = MessageAppended | SessionTitled | SessionClosed | MessagesRetracted


def convert(cls: type[E], **fields: Any) -> E:
    """``cls(**fields)`` validated (msgspec does not check types in ``__init__``)."""
    try:
        return msgspec.convert(fields, cls)
    except msgspec.ValidationError as exc:
        raise InvalidEventError(cls.__name__, str(exc)) from exc


class SessionWrites:
    """Session writes besides messages; ``Ledger`` provides ``store`` and ``_append``."""

    store: EventStore

    def _append(
        self,
        session_id: str,
        events: Sequence[SessionEvent],
        expected_sequence: int | None,
        event_ids: Sequence[Any] | None,
        given_message_ids: list[str] | None = None,
    ) -> AppendResult:
        raise NotImplementedError

    def close_session(
        self, session_id: str, *, reason: str = "closed", ended_at: dt.datetime | None = None
    ) -> AppendResult:
        """Close the session; it takes no more messages until :meth:`reopen_session`.

        ``reason`` is kept as the head's ``end_reason``; ``ended_at`` is the gateway's time.
        """
        event = convert(SessionClosed, session_id=session_id, reason=reason, ended_at=ended_at)
        return self._append(session_id, [event], None, None)

    def reopen_session(self, session_id: str, *, reason: str = "resume") -> AppendResult | None:
        """Let a closed session take messages again (a no-op, None, if it is open).

        A session purged by retention cannot be reopened (its transcript is gone).
        """
        event = convert(SessionReopened, session_id=session_id, reason=reason)
        with self.store.transaction(streams=[session_stream(session_id)]) as conn:
            state = session_state(conn, session_id)
            if state == "open":
                return None
            if state != "closed":
                raise SessionClosedError(session_id)
            part = StreamAppend(stream=session_stream(session_id), events=[event])
            return self.store.append_in(conn, [part])[0]

    def set_title(self, session_id: str, title: str | None) -> AppendResult:
        """Give the session a (new) title; ``None`` clears it."""
        event = convert(SessionTitled, session_id=session_id, title=title)
        return self._append_unless_purged(session_id, event)

    def configure_session(
        self,
        session_id: str,
        *,
        system_prompt: str | None = None,
        model: str | None = None,
        model_config: Mapping[str, Any] | None = None,
    ) -> AppendResult:
        """Change the system prompt, model or model settings (``None``: keep; ``""`` clears
        the prompt). This is content: it moves the session's ``sequence`` (a cached agent built
        with the old prompt is stale)."""
        if system_prompt is None and model is None and model_config is None:
            raise InvalidArgumentError(
                "configure_session", "nothing", "system_prompt, model or model_config"
            )
        event = convert(
            SessionConfigured,
            session_id=session_id,
            system_prompt=system_prompt,
            model=model,
            model_config=None if model_config is None else dict(model_config),
        )
        return self._append_unless_purged(session_id, event)

    def record_usage(
        self,
        session_id: str,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        cost_usd: float | None = None,
        model: str | None = None,
    ) -> AppendResult:
        """Record one API call's usage in the session's ``usage-*`` stream.

        Usage is not content: it never moves the session's ``sequence``, so a billing process
        recording it never makes a cached agent stale. Any session but a purged one takes it.
        """
        event = convert(
            UsageRecorded,
            session_id=session_id,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            reasoning_tokens=reasoning_tokens,
            cost_usd=cost_usd,
            model=model,
        )
        stream = usage_stream(session_id)
        with self.store.transaction(streams=[stream]) as conn:
            if session_state(conn, session_id) == "purged":
                raise SessionClosedError(session_id)
            return self.store.append_in(conn, [StreamAppend(stream=stream, events=[event])])[0]

    def _append_unless_purged(self, session_id: str, event: Event) -> AppendResult:
        with self.store.transaction(streams=[session_stream(session_id)]) as conn:
            if session_state(conn, session_id) == "purged":
                raise SessionClosedError(session_id)
            part = StreamAppend(stream=session_stream(session_id), events=[event])
            return self.store.append_in(conn, [part])[0]
