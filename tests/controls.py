"""Builders of test data (message-db's "controls"): small, valid events with overridable fields."""

from __future__ import annotations

import itertools
from typing import Any

from ledger.events import (
    MessageAppended,
    MessagesRetracted,
    SessionClosed,
    SessionOpened,
    SessionSwitched,
    SessionTitled,
)

_counter = itertools.count(1)


def opened(session_id: str = "a", session_key: str = "cli:local", **fields: Any) -> SessionOpened:
    """A ``SessionOpened`` for ``session_id`` under ``session_key``."""
    values: dict[str, Any] = {"source": "cli", "reason": "new"} | fields
    return SessionOpened(session_id=session_id, session_key=session_key, **values)


def message(
    session_id: str = "a", content: str | list[dict[str, Any]] | None = "hello", **fields: Any
) -> MessageAppended:
    """A user ``MessageAppended`` with a fresh ``message_id``."""
    values: dict[str, Any] = {"role": "user", "message_id": f"m{next(_counter)}"} | fields
    return MessageAppended(session_id=session_id, content=content, **values)


def messages(count: int, session_id: str = "a") -> list[MessageAppended]:
    """``count`` user messages for ``session_id``."""
    return [message(session_id, f"message {i}") for i in range(count)]


def titled(session_id: str = "a", title: str = "A title") -> SessionTitled:
    """A ``SessionTitled``."""
    return SessionTitled(session_id=session_id, title=title)


def switched(
    session_key: str = "cli:local",
    session_id: str = "a",
    previous_session_id: str | None = None,
    reason: str = "resume",
) -> SessionSwitched:
    """A ``SessionSwitched`` making ``session_id`` the active session of ``session_key``."""
    return SessionSwitched(
        session_key=session_key,
        session_id=session_id,
        previous_session_id=previous_session_id,
        reason=reason,  # type: ignore[arg-type]
    )


def retracted(session_id: str = "a", *message_ids: str, reason: str = "undo") -> MessagesRetracted:
    """A ``MessagesRetracted`` taking ``message_ids`` back from ``session_id``."""
    return MessagesRetracted(
        session_id=session_id,
        message_ids=list(message_ids),
        reason=reason,  # type: ignore[arg-type]
    )


def closed(session_id: str = "a", reason: str = "done") -> SessionClosed:
    """A ``SessionClosed``."""
    return SessionClosed(session_id=session_id, reason=reason)
