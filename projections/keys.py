"""The ``keys`` inline projection: the active session of every ``session_key``.

It reads ``SessionSwitched`` events from the ``key-*`` streams only; a switch never touches a
session stream, so switching never moves any session's ``sequence``. The history of switches is
the key stream itself (``Ledger.read_stream("key-<session_key>")``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import sqlalchemy as sa

from ledger.events import SessionSwitched
from ledger.records import RecordedEvent
from ledger.schema import session_keys
from ledger.streams import category
from projections.base import Projection, select_by_keys, write_rows

__all__ = ["KeysProjection"]


class KeysProjection(Projection):
    """``session_key`` → active ``session_id``, from the latest switch on the key stream."""

    name: ClassVar[str] = "keys"
    inline: ClassVar[bool] = True
    default_tables: ClassVar[tuple[sa.Table, ...]] = (session_keys,)
    keys: ClassVar[dict[str, tuple[str, ...]]] = {"session_keys": ("session_key",)}

    def apply(self, conn: sa.Connection, records: Sequence[RecordedEvent]) -> None:
        latest: dict[str, dict[str, Any]] = {}
        for record in records:
            event = record.event
            if isinstance(event, SessionSwitched) and category(record.stream) == "key":
                latest[event.session_key] = {
                    "session_key": event.session_key,
                    "session_id": event.session_id,
                    "previous_session_id": event.previous_session_id,
                    "reason": event.reason,
                    "sequence": record.sequence,
                    "position": record.position,
                    "writer": record.writer,
                    "switched_at": record.recorded_at,
                }
        if not latest:
            return
        t = self.table("session_keys")
        query = select_by_keys(t, "session_key")
        known = {row.session_key for row in conn.execute(query, {"keys": list(latest)})}
        write_rows(conn, t, "session_key", latest, known)
