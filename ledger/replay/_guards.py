"""The cache guards replay compares, as objects with one interface (:class:`Guard`).

Each simulated cache (one per writer) holds one instance of each guard. Before a turn the
replay asks every guard to :meth:`~Guard.check` the turn's key and session; after the turn it
calls :meth:`~Guard.rebaseline`. A guard sees only what a gateway would: the session's live
``message_count`` and ``sequence``, the turn's signature (the session's model), and whether
the events it has not seen yet include a retraction or another writer's write.

``legacy``
    a ``(signature, message_count)`` snapshot per key, compared with the live count of the
    key's active session and re-baselined from it after each turn (before the upstream fix);
``hermes``
    the 4-tuple fix of :mod:`ledger.hermes.guard`;
``ledger``
    :func:`ledger.cache.decide`, the decision table of :class:`ledger.AgentCache`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from ledger.cache import decide
from ledger.hermes import guard as hermes

__all__ = ["GUARDS", "GUARD_TYPES", "Guard", "HermesGuard", "LedgerGuard", "LegacyGuard", "Live"]

Decision = tuple[str, str]
"""(action, reason)"""


@dataclass(frozen=True, slots=True)
class Live:
    """What a guard may read of a session at the start of a turn."""

    signature: Any
    message_count: int
    sequence: int
    #: Since this cache last saw the session: a retraction / another writer's write.
    retracted: bool = False
    foreign: bool = False


class Guard(Protocol):
    """One cache guard's entries for every key of one simulated cache."""

    name: ClassVar[str]

    def check(self, key: str, session_id: str, live: Live) -> Decision:
        """Decide for this turn, and record what a real cache would record when deciding."""

    def rebaseline(self, key: str, session_id: str, live: Live) -> None:
        """After the turn: re-baseline as that guard's cache does."""


class LegacyGuard:
    """The mutable per-key message counter."""

    name: ClassVar[str] = "legacy"

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Any, int]] = {}

    def check(self, key: str, session_id: str, live: Live) -> Decision:
        entry = self.entries.get(key)
        if entry is None or entry[0] != live.signature or entry[1] != live.message_count:
            self.entries[key] = (live.signature, live.message_count)
            return ("miss", "miss") if entry is None else ("rebuild", "count_changed")
        return "reuse", "hit"

    def rebaseline(self, key: str, session_id: str, live: Live) -> None:
        entry = self.entries.get(key)
        if entry is not None:
            self.entries[key] = (entry[0], live.message_count)


class HermesGuard:
    """Upstream Hermes' 4-tuple ``(agent, signature, message_count, session_id)``."""

    name: ClassVar[str] = "hermes"

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Any, ...]] = {}

    def check(self, key: str, session_id: str, live: Live) -> Decision:
        entry = self.entries.get(key)
        fresh = hermes.make_entry(None, live.signature, live.message_count, session_id)
        if entry is None or entry[1] != live.signature:
            self.entries[key] = fresh
            return ("miss", "miss") if entry is None else ("rebuild", "signature_changed")
        if hermes.guard(entry, session_id, live.message_count) == "rebuild":
            self.entries[key] = fresh
            return "rebuild", "count_changed"
        return "reuse", "hit" if entry[3] == session_id else "other_session"

    def rebaseline(self, key: str, session_id: str, live: Live) -> None:
        entry = self.entries.get(key)
        if entry is not None:
            refreshed = hermes.refresh_message_count(entry, session_id, live.message_count)
            assert isinstance(refreshed, tuple)
            self.entries[key] = refreshed


class LedgerGuard:
    """The ledger's ``(session_id, sequence)`` baselines and decision table."""

    name: ClassVar[str] = "ledger"

    def __init__(self) -> None:
        self.entries: dict[str, tuple[Any, dict[str, int]]] = {}

    def check(self, key: str, session_id: str, live: Live) -> Decision:
        entry = self.entries.get(key)
        verdict = (
            "retracted" if live.retracted else "foreign_write" if live.foreign else "own_write"
        )
        action, reason = decide(
            has_entry=entry is not None,
            signature_matches=entry is not None and entry[0] == live.signature,
            baseline=None if entry is None else entry[1].get(session_id),
            live=live.sequence,
            between=lambda _low, _high: verdict,  # type: ignore[arg-type,return-value]
        )
        baselines = {} if entry is None else entry[1]
        baselines[session_id] = live.sequence
        self.entries[key] = (live.signature, baselines)
        return action, reason

    def rebaseline(self, key: str, session_id: str, live: Live) -> None:
        entry = self.entries.get(key)
        if entry is not None:
            entry[1][session_id] = live.sequence


#: Every guard replay knows, by name, in report order.
GUARD_TYPES: dict[str, type[LegacyGuard | HermesGuard | LedgerGuard]] = {
    guard.name: guard for guard in (LegacyGuard, HermesGuard, LedgerGuard)
}
GUARDS = tuple(GUARD_TYPES)
