"""The cache decision table as a pure function, shared by the live cache and ``ledger replay``.

=====================================================  ========  ===================
situation                                              action    reason
=====================================================  ========  ===================
no entry for the key                                   miss      ``miss``
signature differs                                      rebuild   ``signature_changed``
no baseline for this session (first switch to it)      reuse     ``switch``
live sequence == baseline                              reuse     ``hit``
live > baseline, a retraction in between               rebuild   ``retracted``
live > baseline, everything in between is ours         reuse     ``own_write``
live > baseline, anything in between from elsewhere    rebuild   ``foreign_write``
live < baseline, or the session is gone                rebuild   ``regressed``
the head cannot be read (database down), entry fits    reuse     ``unverified``
=====================================================  ========  ===================

``unverified`` moves no baseline: the next check that can read the head compares it with the
last baseline seen, so every write made meanwhile (by anyone) is still judged. A sequence makes
this safe; a count would not (an undo plus a message during the outage leaves it unchanged).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

__all__ = ["RETRACTION", "Action", "Reason", "Verdict", "decide"]

Action = Literal["reuse", "rebuild", "miss"]
Reason = Literal[
    "miss",
    "signature_changed",
    "switch",
    "hit",
    "own_write",
    "foreign_write",
    "retracted",
    "regressed",
    "unverified",
]
RETRACTION = "MessagesRetracted"


Verdict = Literal["own_write", "foreign_write", "retracted"]


def decide(
    *,
    has_entry: bool,
    signature_matches: bool,
    baseline: int | None,
    live: int | None,
    between: Callable[[int, int], Verdict],
) -> tuple[Action, Reason]:
    """The decision table above as a pure function (shared with ``ledger replay``).

    ``between(baseline, live)`` classifies the events after the baseline up to the live head;
    it is only called when the head moved forward.
    """
    if not has_entry:
        return "miss", "miss"
    if not signature_matches:
        return "rebuild", "signature_changed"
    if baseline is None:
        return "reuse", "switch"
    if live is None or live < baseline:
        return "rebuild", "regressed"
    if live == baseline:
        return "reuse", "hit"
    verdict = between(baseline, live)
    if verdict == "own_write":
        return "reuse", "own_write"
    return "rebuild", verdict
