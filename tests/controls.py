"""Builders of test data (message-db's "controls"): small, valid events with overridable fields."""

from __future__ import annotations

import itertools
from typing import Any

from ledger.events import MessageAppended, SessionOpened, SessionTitled

_counter = itertools.count(1)


def opened(session_id: str = "a", session_key: str = "cli:local", **fields: Any) -> SessionOpened:
    """A ``SessionOpened`` for ``session_id`` under ``session_key``."""
    values: dict[str, Any] = {"source": "cli", "reason": "new"} | fields
    return SessionOpened(session_id=session_id, session_key=session_key, **values)


def message(session_id: str = "a", content: str = "hello", **fields: Any) -> MessageAppended:
    """A user ``MessageAppended`` with a fresh ``message_id``."""
    values: dict[str, Any] = {"role": "user", "message_id": f"m{next(_counter)}"} | fields
    return MessageAppended(session_id=session_id, content=content, **values)


def messages(count: int, session_id: str = "a") -> list[MessageAppended]:
    """``count`` user messages for ``session_id``."""
    return [message(session_id, f"message {i}") for i in range(count)]


def titled(session_id: str = "a", title: str = "A title") -> SessionTitled:
    """A ``SessionTitled``."""
    return SessionTitled(session_id=session_id, title=title)
