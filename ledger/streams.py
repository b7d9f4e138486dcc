"""The stream-name rule, in one place (Message DB's ``category``): nothing else splits names.

``session-<session_id>`` holds a session's content events, ``key-<session_key>`` the switches of
one conversation slot, ``usage-<session_id>`` its usage records. Any other name is a plain stream
of the caller's (the store accepts any name of 1..300 characters).
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "KEY_PREFIX",
    "SESSION_PREFIX",
    "USAGE_PREFIX",
    "category",
    "key_stream",
    "parse",
    "session_id_of",
    "session_key_of",
    "session_stream",
    "usage_stream",
]

SESSION_PREFIX = "session-"
KEY_PREFIX = "key-"
USAGE_PREFIX = "usage-"

Category = Literal["session", "key", "usage", "other"]


def session_stream(session_id: str) -> str:
    """The stream of one session's content events."""
    return f"{SESSION_PREFIX}{session_id}"


def key_stream(session_key: str) -> str:
    """The stream of one key's session switches."""
    return f"{KEY_PREFIX}{session_key}"


def usage_stream(session_id: str) -> str:
    """The stream of one session's usage records (never moves the session's ``sequence``)."""
    return f"{USAGE_PREFIX}{session_id}"


def category(stream: str) -> Category:
    """Which kind of stream ``stream`` is, by its prefix."""
    if stream.startswith(SESSION_PREFIX):
        return "session"
    if stream.startswith(KEY_PREFIX):
        return "key"
    if stream.startswith(USAGE_PREFIX):
        return "usage"
    return "other"


def parse(stream: str) -> tuple[Category, str]:
    """``(category, id)``: the session id, session key or whole name after the prefix."""
    for kind, prefix in (("session", SESSION_PREFIX), ("key", KEY_PREFIX), ("usage", USAGE_PREFIX)):
        if stream.startswith(prefix):
            return kind, stream[len(prefix) :]  # type: ignore[return-value]
    return "other", stream


def session_id_of(stream: str) -> str | None:
    """The session id of a ``session-*`` stream, else None."""
    return stream[len(SESSION_PREFIX) :] if stream.startswith(SESSION_PREFIX) else None


def session_key_of(stream: str) -> str | None:
    """The session key of a ``key-*`` stream, else None."""
    return stream[len(KEY_PREFIX) :] if stream.startswith(KEY_PREFIX) else None
