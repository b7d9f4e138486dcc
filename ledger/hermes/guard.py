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
* an agent being built is marked as upstream marks it, a tuple whose first item is the
  :data:`PENDING` sentinel, ``(PENDING, signature, 0)`` (:func:`make_pending`; the bare
  sentinel is accepted too): it reports ``pending`` and re-baselining leaves it alone;
* as upstream: a falsy ``session_id`` makes re-baselining a no-op, and an unknown count
  (``None``: the database read failed or the row is missing), live or in the snapshot, REUSES
  rather than crashing or busting the turn.

What the fix cannot see, because a count is not a version: undo-then-append (same count, new
content) and a write by another process to a session the key is not on. ``ledger.AgentCache``
catches both; ``ledger replay`` counts what each guard misses.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from ledger.errors import InvalidArgumentError

__all__ = ["PENDING", "guard", "make_entry", "make_pending", "refresh_message_count"]


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


def make_pending(signature: Any) -> tuple[Any, ...]:
    """Upstream's marker of an agent being built for the key: ``(PENDING, signature, 0)``."""
    return (PENDING, signature, 0)


def _pending(entry: Entry) -> bool:
    return entry is PENDING or (isinstance(entry, tuple) and bool(entry) and entry[0] is PENDING)


def guard(
    entry: Entry, session_id: str | None, live_message_count: int | None
) -> Literal["reuse", "rebuild", "pending"]:
    """Whether a cached entry may serve the active ``session_id`` with its live count."""
    if _pending(entry):
        return "pending"
    assert isinstance(entry, tuple)
    if len(entry) == 2:
        return "reuse"
    if len(entry) == 4 and entry[3] != session_id:
        return "reuse"
    if len(entry) in (3, 4):
        if live_message_count is None or entry[2] is None:
            return "reuse"  # unknown: never crash or bust a turn on a failed read
        return "reuse" if entry[2] == live_message_count else "rebuild"
    raise InvalidArgumentError("cache entry", entry, "a tuple of 2, 3 or 4 fields")


def refresh_message_count(
    entry: Entry, session_id: str | None, live_message_count: int | None
) -> Entry:
    """Re-baseline after a turn: update the count only where it belongs to ``session_id``.

    A pending entry, a falsy ``session_id`` and an unknown live count leave the entry alone.
    """
    if _pending(entry) or not isinstance(entry, tuple) or len(entry) == 2:
        return entry
    if not session_id or live_message_count is None:
        return entry
    if len(entry) == 3:
        return (entry[0], entry[1], live_message_count)
    if len(entry) == 4:
        if entry[3] != session_id:
            return entry
        return (entry[0], entry[1], live_message_count, session_id)
    raise InvalidArgumentError("cache entry", entry, "a tuple of 2, 3 or 4 fields")
