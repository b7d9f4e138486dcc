"""SQLite's write path: ``BEGIN IMMEDIATE`` serialises writers, rows go to the driver directly.

The write transaction itself serialises writers (``ledger.store.database`` issues ``BEGIN
IMMEDIATE`` for write connections), so positions commit in ascending order and no further lock
is needed. SQLite runs a ``RETURNING`` executemany one row at a time, so rows are bound once
through SQLAlchemy's own type processors and handed to the driver's ``executemany`` as tuples;
their positions are derived: under the write lock AUTOINCREMENT hands out consecutive rowids
after the largest ever used, so a batch of ``n`` holds ``last_insert_rowid() - n + 1 …``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from ledger.schema import events
from ledger.store._backend import HEAD_UPSERT, INSERT_COLUMNS
from ledger.store._driver import driver_insert

__all__ = ["SqliteWritePath"]


class SqliteWritePath:
    """The append statements for SQLite."""

    name = "SQLite"

    def __init__(self, dialect: sa.Dialect) -> None:
        uuid_bind = events.c.event_id.type._cached_bind_processor(dialect)
        time_bind = events.c.recorded_at.type._cached_bind_processor(dialect)
        self._bind_uuid: Callable[[Any], Any] = uuid_bind or (lambda value: value)
        self._bind_time: Callable[[Any], Any] = time_bind or (lambda value: value)
        self._insert = driver_insert(events, dialect, INSERT_COLUMNS).sql
        self._claim = sa.text(
            f"INSERT INTO streams (stream, sequence) VALUES (:stream, :sequence) {HEAD_UPSERT}"
        )

    def quiesce(self, conn: sa.Connection) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` already excludes every other writer."""

    def lock_streams(self, conn: sa.Connection, streams: Sequence[str]) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` already excludes every other writer."""

    def claim(self, conn: sa.Connection, stream: str, count: int) -> tuple[int, bool]:
        """Advance ``stream``'s head by ``count``."""
        head, archived = conn.execute(self._claim, {"stream": stream, "sequence": count}).one()
        return int(head), bool(archived)

    def insert(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> list[int]:
        """Insert ``rows`` through the driver's ``executemany``; positions are derived."""
        first_time = rows[0]["recorded_at"]
        recorded_at = self._bind_time(first_time)  # the same for the whole append, bound once
        params = [
            (
                row["stream"],
                row["sequence"],
                row["type"],
                row["data"],
                self._bind_uuid(row["event_id"]),
                row["writer"],
                recorded_at
                if row["recorded_at"] is first_time
                else self._bind_time(row["recorded_at"]),
                row["schema_version"],
            )
            for row in rows
        ]
        if len(params) == 1:
            last = conn.exec_driver_sql(self._insert, params[0]).lastrowid
        else:
            conn.exec_driver_sql(self._insert, params)
            last = conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one()
        return list(range(last - len(rows) + 1, last + 1))

    def append_one(self, conn: sa.Connection, row: dict[str, Any]) -> tuple[int, int, bool] | None:
        """No one-statement path: the generic one is as fast on an embedded database."""
        return None
