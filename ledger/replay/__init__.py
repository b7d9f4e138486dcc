"""Debugging cache busts: guards as objects, the replay simulation, explain and its HTML page."""

from ledger.replay._simulation import (
    GUARDS,
    GuardDecision,
    GuardTotals,
    KeyReport,
    ReplayReport,
    TimelineEntry,
    replay,
)

__all__ = [
    "GUARDS",
    "GuardDecision",
    "GuardTotals",
    "KeyReport",
    "ReplayReport",
    "TimelineEntry",
    "replay",
]
