"""What a replay reports: totals per guard, each key's timeline, and each decision's verdict."""

from __future__ import annotations

import datetime as dt

import msgspec

__all__ = [
    "GuardDecision",
    "GuardTotals",
    "KeyReport",
    "RecordedDecision",
    "RecordedTotals",
    "ReplayReport",
    "TimelineEntry",
]


class _Counts(msgspec.Struct, kw_only=True):
    """Counters that add up field by field (per key into the report's totals)."""

    def add(self, other: _Counts) -> None:
        """Add ``other``'s counts to these."""
        for name in self.__struct_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class GuardTotals(_Counts, kw_only=True):
    """Per guard: turns seen, agents built (first builds and rebuilds), and its mistakes."""

    turns: int = 0
    builds: int = 0
    rebuilds: int = 0
    false_busts: int = 0
    missed_changes: int = 0


class GuardDecision(msgspec.Struct, frozen=True, kw_only=True):
    """One guard's decision at one turn, and how it compares with the ground truth."""

    action: str
    reason: str
    verdict: str  # ok | false_bust | missed_change | build


class RecordedDecision(msgspec.Struct, frozen=True, kw_only=True):
    """What a live agent cache really decided (its ``decisions-*`` stream), not a simulation.

    ``reason`` is a decision-table reason, or ``evicted`` / ``expired`` when the cache dropped
    the key's entry (LRU size, idle TTL); ``build_seconds`` is the time from the decision to
    the ``store`` that followed it, when one did.
    """

    position: int
    recorded_at: dt.datetime
    writer: str
    session_id: str | None
    action: str
    reason: str
    baseline: int | None = None
    live: int | None = None
    build_seconds: float | None = None


class RecordedTotals(_Counts, kw_only=True):
    """Recorded live decisions: how many, how many built an agent, and how many turns' recorded
    decision differs from the simulated ``ledger`` guard's."""

    decisions: int = 0
    builds: int = 0
    disagreements: int = 0


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One event of a key's timeline; turns carry the three guards' decisions."""

    position: int
    recorded_at: dt.datetime
    writer: str
    session_id: str
    kind: str
    detail: str
    needed: bool | None = None
    why: str | None = None
    decisions: dict[str, GuardDecision] | None = None
    #: On a turn: the decision the live cache recorded for it (``None``: none was recorded,
    #: e.g. a plain ``hit``, which is never recorded, or a cache without recording).
    recorded: RecordedDecision | None = None


class KeyReport(msgspec.Struct, kw_only=True):
    """Totals of one key, and its timeline when it was asked for."""

    session_key: str
    guards: dict[str, GuardTotals]
    timeline: list[TimelineEntry] = msgspec.field(default_factory=list)
    recorded: RecordedTotals = msgspec.field(default_factory=RecordedTotals)


class ReplayReport(msgspec.Struct, kw_only=True):
    """Totals per guard over every key, plus per-key detail."""

    events: int
    turns: int
    guards: dict[str, GuardTotals]
    keys: dict[str, KeyReport]
    recorded: RecordedTotals = msgspec.field(default_factory=RecordedTotals)
