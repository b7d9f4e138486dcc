"""Helpers shared by the ``Ledger`` facade tests: the key they use and a head's counters."""

from __future__ import annotations

from ledger import Ledger

KEY = "telegram:12345:thread-9"


def head_of(ledger: Ledger, session_id: str) -> tuple[int, int]:
    """The session's ``(sequence, message_count)``."""
    head = ledger.head(session_id)
    assert head is not None, f"no head for {session_id!r}"
    return head.sequence, head.message_count
