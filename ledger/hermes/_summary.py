"""What one Hermes import run did and found (:class:`ImportSummary`, the ``--json`` output)."""

from __future__ import annotations

import msgspec

__all__ = ["ImportSummary"]


class ImportSummary(msgspec.Struct, kw_only=True):
    """What one import wrote (``sessions`` … ``events``) and what the source held."""

    path: str
    #: Sessions new to the ledger / imported before but given the source's new events /
    #: imported before and unchanged / refused (session id → error; nothing of them written).
    sessions: int = 0
    updated_sessions: int = 0
    skipped_sessions: int = 0
    failed_sessions: dict[str, str] = msgspec.field(default_factory=dict)
    #: Events this run wrote, by kind, and in all; keys that got a switch.
    messages: int = 0
    retractions: int = 0
    closed_sessions: int = 0
    reopened_sessions: int = 0
    usage_records: int = 0
    switches: int = 0
    events: int = 0
    keys: int = 0
    #: Source rows left out of the transcript, parents that are not in the file.
    skipped_meta_rows: int = 0
    unknown_role_rows: int = 0
    orphan_rows: int = 0
    missing_parents: int = 0
    #: Values changed on the way (NUL replaced; metadata left out of an oversized event).
    nul_replaced: int = 0
    metadata_dropped: int = 0
    #: Source rows that could not be imported as they are ("<session>/<row id>" → why); the
    #: rest of their session is imported.
    bad_rows: dict[str, str] = msgspec.field(default_factory=dict)
    #: Columns per table with no event field of their own (their values are in ``metadata``).
    unknown_columns: dict[str, list[str]] = msgspec.field(default_factory=dict)
    seconds: float = 0.0
