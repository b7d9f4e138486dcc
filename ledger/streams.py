"""The stream-name rule, in one place (Message DB's ``category``): nothing else splits names.

``session-<session_id>`` holds a session's content events, ``key-<session_key>`` the switches of
one conversation slot, ``usage-<session_id>`` its usage records, ``decisions-<session_key>`` the
live agent caches' recorded decisions for a key. Any other name is a plain stream
of the caller's (the store accepts any name of 1..300 characters).
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "DECISIONS_PREFIX",
    "KEY_PREFIX",
    "SESSION_PREFIX",
    "USAGE_PREFIX",
    "category",
    "decisions_stream",
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
DECISIONS_PREFIX = "decisions-"

Category = Literal["session", "key", "usage", "decisions", "other"]


def session_stream(session_id: str) -> str:
    """The stream of one session's content events."""
    return f"{SESSION_PREFIX}{session_id}"


def key_stream(session_key: str) -> str:
    """The stream of one key's session switches."""
    return f"{KEY_PREFIX}{session_key}"


def usage_stream(session_id: str) -> str:
    """The stream of one session's usage records (never moves the session's ``sequence``)."""
    return f"{USAGE_PREFIX}{session_id}"


def decisions_stream(session_key: str) -> str:
    """The stream of the decisions live caches recorded for one key (never a session's)."""
    return f"{DECISIONS_PREFIX}{session_key}"


def category(stream: str) -> Category:
    """Which kind of stream ``stream`` is, by its prefix."""
    if stream.startswith(SESSION_PREFIX):
        return "session"
    if stream.startswith(KEY_PREFIX):
        return "key"
    if stream.startswith(USAGE_PREFIX):
        return "usage"
    if stream.startswith(DECISIONS_PREFIX):
        return "decisions"
    return "other"


def parse(stream: str) -> tuple[Category, str]:
    """``(category, id)``: the session id, session key or whole name after the prefix."""
    prefixes = (
        ("session", SESSION_PREFIX),
        ("key", KEY_PREFIX),
        ("usage", USAGE_PREFIX),
        ("decisions", DECISIONS_PREFIX),
    )
    for kind, prefix in prefixes:
        if stream.startswith(prefix):
            return kind, stream[len(prefix) :]  # type: ignore[return-value]
    return "other", stream


def session_id_of(stream: str) -> str | None:
    """The session id of a ``session-*`` stream, else None."""
    return stream[len(SESSION_PREFIX) :] if stream.startswith(SESSION_PREFIX) else None


def session_key_of(stream: str) -> str | None:
    """The session key of a ``key-*`` stream, else None."""
    return stream[len(KEY_PREFIX) :] if stream.startswith(KEY_PREFIX) else None
