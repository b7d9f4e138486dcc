"""What a replay reports: totals per guard, each key's timeline, and each decision's verdict."""

from __future__ import annotations

import datetime as dt

import msgspec

__all__ = ["GuardDecision", "GuardTotals", "KeyReport", "ReplayReport", "TimelineEntry"]


class GuardTotals(msgspec.Struct, kw_only=True):
    """Per guard: turns seen, agents built (first builds and rebuilds), and its mistakes."""

    turns: int = 0
    builds: int = 0
    rebuilds: int = 0
    false_busts: int = 0
    missed_changes: int = 0

    def add(self, other: GuardTotals) -> None:
        """Add ``other``'s counts to these."""
        for name in self.__struct_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class GuardDecision(msgspec.Struct, frozen=True, kw_only=True):
    """One guard's decision at one turn, and how it compares with the ground truth."""

    action: str
    reason: str
    verdict: str  # ok | false_bust | missed_change | build


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


class KeyReport(msgspec.Struct, kw_only=True):
    """Totals of one key, and its timeline when it was asked for."""

    session_key: str
    guards: dict[str, GuardTotals]
    timeline: list[TimelineEntry] = msgspec.field(default_factory=list)


class ReplayReport(msgspec.Struct, kw_only=True):
    """Totals per guard over every key, plus per-key detail."""

    events: int
    turns: int
    guards: dict[str, GuardTotals]
    keys: dict[str, KeyReport]
