"""The gateway API's writes of a session's life beyond appending messages (a mixin of
``Ledger``).

Switching a key's session goes to the key stream; retracting, closing, reopening, titling and
configuring a session are content (they go to its stream and move its ``sequence``); usage goes
to the session's ``usage-*`` stream and never does. Each write checks the session's state
inside its own transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa

from ledger._preconditions import (
    LAST_LIVE,
    LAST_USER,
    active_session_in,
    check_reason,
    live_from,
    require_open,
    session_state,
)
from ledger.errors import InvalidArgumentError, InvalidEventError, SessionClosedError
from ledger.events import (
    Event,
    MessageAppended,
    MessagesRetracted,
    SessionClosed,
    SessionConfigured,
    SessionReopened,
    SessionSwitched,
    SessionTitled,
    UsageRecorded,
)
from ledger.records import AppendResult, StreamAppend
from ledger.store import EventStore
from ledger.streams import key_stream, session_stream, usage_stream

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

    def switch_session(
        self, session_key: str, session_id: str, *, reason: str = "resume"
    ) -> AppendResult | None:
        """Make ``session_id`` the key's active session; a no-op (None) if it already is.

        A session purged by retention cannot become active again (its transcript is gone).
        """
        check_reason(reason)
        locked = [session_stream(session_id), key_stream(session_key)]
        with self.store.transaction(streams=locked) as conn:
            if session_state(conn, session_id) == "purged":
                raise SessionClosedError(session_id)
            previous = active_session_in(conn, session_key)
            if previous == session_id:
                return None
            event = SessionSwitched(
                session_key=session_key,
                session_id=session_id,
                previous_session_id=previous,
                reason=reason,  # type: ignore[arg-type]
            )
            part = StreamAppend(stream=key_stream(session_key), events=[event])
            return self.store.append_in(conn, [part])[0]

    def retract_messages(
        self,
        session_id: str,
        count: int = 1,
        *,
        from_message_id: str | None = None,
        reason: str | None = None,
    ) -> AppendResult:
        """Take back the last ``count`` live messages (``/undo``, ``/retry``), or rewind.

        ``from_message_id`` rewinds instead: that message and every live one after it are
        taken back (``count`` is then ignored; ``reason`` defaults to ``rewind``).
        """
        reason = reason or ("undo" if from_message_id is None else "rewind")
        if reason not in ("undo", "retry", "rewind"):
            raise InvalidArgumentError("reason", reason, "undo, retry or rewind")
        if from_message_id is None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            raise InvalidArgumentError("count", count, "an integer >= 1")
        with self.store.transaction(streams=[session_stream(session_id)]) as conn:
            require_open(conn, session_id)
            if from_message_id is not None:
                ids = live_from(conn, session_id, from_message_id)
            else:
                ids = list(conn.execute(LAST_LIVE, {"sid": session_id, "n": count}).scalars())
                if len(ids) < count:
                    raise InvalidArgumentError(
                        "count", count, f"at most {len(ids)} (the live messages of {session_id!r})"
                    )
                ids.reverse()
            return self._retract_in(conn, session_id, ids, reason)

    def retract_turn(self, session_id: str, *, reason: str = "undo") -> AppendResult:
        """Take back the last turn: the last live user message and everything after it.

        ``/undo`` and ``/retry`` this way never leave an assistant's tool call without its
        result, or a result without its call. A session without a live user message is an
        :class:`InvalidArgumentError`.
        """
        if reason not in ("undo", "retry"):
            raise InvalidArgumentError("reason", reason, "undo or retry")
        with self.store.transaction(streams=[session_stream(session_id)]) as conn:
            require_open(conn, session_id)
            last_user = conn.execute(LAST_USER, {"sid": session_id}).scalar()
            if last_user is None:
                raise InvalidArgumentError(
                    "session_id", session_id, "a session with a live user message"
                )
            ids = live_from(conn, session_id, str(last_user))
            return self._retract_in(conn, session_id, ids, reason)

    def _retract_in(
        self, conn: sa.Connection, session_id: str, ids: list[str], reason: str
    ) -> AppendResult:
        event = MessagesRetracted(
            session_id=session_id,
            message_ids=ids,
            reason=reason,  # type: ignore[arg-type]
        )
        part = StreamAppend(stream=session_stream(session_id), events=[event])
        return self.store.append_in(conn, [part])[0]

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
