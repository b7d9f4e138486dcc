"""What a backend's write path provides to the append transaction (:class:`WritePath`).

:mod:`ledger.store._store` runs the transaction the same way on every database; the steps that
differ by dialect (locking streams, claiming heads, inserting events, the one-event fast path)
live in one private module per backend, ``_sqlite`` and ``_postgres``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa

__all__ = ["HEAD_UPSERT", "INSERT_COLUMNS", "WritePath"]

#: Reads and advances a stream's head in one statement, on both backends. Plain text on purpose:
#: SQLAlchemy's on_conflict_do_update constructs carry no cache key and would be compiled again
#: on every append.
HEAD_UPSERT = (
    "ON CONFLICT (stream) DO UPDATE SET sequence = streams.sequence + excluded.sequence "
    "RETURNING sequence, archived"
)

#: The ``events`` columns an append writes, in the order both backends bind them.
INSERT_COLUMNS = (
    "stream",
    "sequence",
    "type",
    "data",
    "event_id",
    "writer",
    "recorded_at",
    "schema_version",
)


class WritePath(Protocol):
    """One backend's statements for the append transaction."""

    #: Name for messages: ``SQLite`` or ``PostgreSQL``.
    name: str

    def quiesce(self, conn: sa.Connection) -> None:
        """Wait for appends in flight and hold off new ones until this transaction ends.

        For maintenance that needs one consistent cut of the whole log (snapshots, rebuilds).
        """

    def lock_streams(self, conn: sa.Connection, streams: Sequence[str]) -> None:
        """Lock these streams (in name order) until the transaction ends.

        A check made after this and the append that follows can never be split by another
        writer of those streams.
        """

    def claim(self, conn: sa.Connection, stream: str, count: int) -> tuple[int, bool]:
        """Advance ``stream``'s head by ``count``: (new head, whether it is archived)."""

    def insert(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> list[int]:
        """Insert ``rows`` (with their sequences) in order; returns their positions."""

    def append_one(self, conn: sa.Connection, row: dict[str, Any]) -> tuple[int, int, bool] | None:
        """Claim and insert one event in one statement: (position, sequence, archived).

        None when the backend has no such fast path (the generic path then runs).
        """
