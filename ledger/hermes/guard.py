"""The seed fix for Hermes-style tuple caches, for gateways that keep tuple-shaped entries.

Hermes caches ``(agent, signature, message_count)`` per ``session_key`` and compares the count
with the live count of the key's active session each turn. The upstream fix adds the session the
count belongs to, making a 4-tuple ``(agent, signature, message_count, session_id)``:

* a 4-tuple whose ``session_id`` differs from the active session is REUSED without comparing
  counts (the counts belong to different sessions), and re-baselining leaves it untouched, so the
  snapshot is never poisoned with another session's count;
* with the same ``session_id`` the counts are compared and re-baselining updates the count;
* a legacy 3-tuple is guarded and re-baselined as before and stays a 3-tuple;
* a 2-tuple ``(agent, signature)`` opts out of the guard (always reused, never changed);
* the :data:`PENDING` sentinel (an agent being built) is never changed.

What the fix cannot see, because a count is not a version: undo-then-append (same count, new
content) and a write by another process to a session the key is not on. ``ledger.AgentCache``
catches both; ``ledger replay`` counts what each guard misses.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from ledger.errors import InvalidArgumentError

__all__ = ["PENDING", "guard", "make_entry", "refresh_message_count"]


class _Pending:
    """The marker a gateway stores while an agent for the key is being built."""

    _instance: _Pending | None = None

    def __new__(cls) -> _Pending:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "PENDING"

    def __reduce__(self) -> str:
        return "PENDING"


#: Sentinel cached while an agent is being built.
PENDING: Final = _Pending()

Entry = tuple[Any, ...] | _Pending


def make_entry(agent: Any, signature: Any, message_count: int, session_id: str) -> tuple[Any, ...]:
    """A 4-tuple entry: the agent, its config signature, and the count of ``session_id``."""
    return (agent, signature, message_count, session_id)


def guard(
    entry: Entry, session_id: str, live_message_count: int
) -> Literal["reuse", "rebuild", "pending"]:
    """Whether a cached entry may serve the active ``session_id`` with its live count."""
    if entry is PENDING:
        return "pending"
    assert isinstance(entry, tuple)
    if len(entry) == 2:
        return "reuse"
    if len(entry) == 4 and entry[3] != session_id:
        return "reuse"
    if len(entry) in (3, 4):
        return "reuse" if entry[2] == live_message_count else "rebuild"
    raise InvalidArgumentError("cache entry", entry, "a tuple of 2, 3 or 4 fields")


def refresh_message_count(entry: Entry, session_id: str, live_message_count: int) -> Entry:
    """Re-baseline after a turn: update the count only where it belongs to ``session_id``."""
    if entry is PENDING or not isinstance(entry, tuple) or len(entry) == 2:
        return entry
    if len(entry) == 3:
        return (entry[0], entry[1], live_message_count)
    if len(entry) == 4:
        if entry[3] != session_id:
            return entry
        return (entry[0], entry[1], live_message_count, session_id)
    raise InvalidArgumentError("cache entry", entry, "a tuple of 2, 3 or 4 fields")
