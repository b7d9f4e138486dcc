"""PostgreSQL's write path: the append lock, array inserts and the one-statement append.

Every append holds a transaction-scoped advisory lock (one per schema, so ledgers in separate
schemas do not contend), as eventsourcing's ``LOCK TABLE``: positions then commit in ascending
order, so a reader of the whole log can never pass over an event that commits late. Where
nothing has been read before the first head claim, the lock rides on that statement.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ledger.schema import events
from ledger.store._backend import HEAD_UPSERT, INSERT_COLUMNS

__all__ = ["APPEND_LOCK", "PostgresWritePath"]

#: One append lock per schema, so ledgers in separate schemas of a database do not contend.
APPEND_LOCK = "pg_advisory_xact_lock(hashtext(current_schema() || '.ledger_append'))"
_LOCKED = f"FROM (SELECT {APPEND_LOCK}) AS append_lock"
_ARRAY_TYPES = ("text", "bigint", "text", "bytea", "uuid", "text", "timestamptz", "smallint")


class PostgresWritePath:
    """The append statements for PostgreSQL (psycopg 3)."""

    name = "PostgreSQL"

    def __init__(self) -> None:
        columns = ", ".join(INSERT_COLUMNS)
        self._claim = sa.text(
            f"INSERT INTO streams (stream, sequence) VALUES (:stream, :sequence) {HEAD_UPSERT}"
        )
        # The row comes out of the lock call, so the lock is held before the upsert runs.
        self._claim_locking = sa.text(
            f"INSERT INTO streams (stream, sequence) SELECT :stream, :sequence {_LOCKED} "
            f"{HEAD_UPSERT}"
        )
        self._append_one = sa.text(
            "WITH claimed AS (INSERT INTO streams (stream, sequence) SELECT :stream, 1 "
            f"{_LOCKED} {HEAD_UPSERT}) "
            f"INSERT INTO events ({columns}) SELECT :stream, claimed.sequence, :type, :data, "
            ":event_id, :writer, :recorded_at, :schema_version FROM claimed "
            "RETURNING position, sequence, (SELECT archived FROM claimed)"
        ).bindparams(
            sa.bindparam("data", type_=sa.LargeBinary),
            sa.bindparam("event_id", type_=sa.Uuid),
            sa.bindparam("recorded_at", type_=events.c.recorded_at.type),
        )
        self._insert_one = events.insert().returning(
            events.c.position, sort_by_parameter_order=True
        )
        arrays = ", ".join(
            f"CAST(:{name} AS {kind}[])"
            for name, kind in zip(INSERT_COLUMNS, _ARRAY_TYPES, strict=True)
        )
        self._insert_arrays = sa.text(
            f"INSERT INTO events ({columns}) SELECT "
            + ", ".join(f"u.{name}" for name in INSERT_COLUMNS)
            + f" FROM unnest({arrays}) WITH ORDINALITY AS u({columns}, ord) "
            "ORDER BY u.ord RETURNING position, stream, sequence"
        )

    def lock(self, conn: sa.Connection) -> None:
        """Take the schema's append lock until the transaction ends."""
        conn.exec_driver_sql(f"SELECT {APPEND_LOCK}")

    def claim(
        self, conn: sa.Connection, stream: str, count: int, *, lock: bool
    ) -> tuple[int, bool]:
        """Advance ``stream``'s head by ``count``, taking the append lock first if ``lock``."""
        statement = self._claim_locking if lock else self._claim
        head, archived = conn.execute(statement, {"stream": stream, "sequence": count}).one()
        return int(head), bool(archived)

    def insert(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> list[int]:
        """One row: ``INSERT … RETURNING``; more: ONE statement over arrays.

        psycopg sends each column as one array parameter, far cheaper than binding a thousand
        rows through insertmanyvalues.
        """
        if len(rows) == 1:
            return list(conn.execute(self._insert_one, rows).scalars())
        columns = {name: [row[name] for row in rows] for name in INSERT_COLUMNS}
        placed = {
            (stream, sequence): position
            for position, stream, sequence in conn.execute(self._insert_arrays, columns)
        }
        return [placed[(row["stream"], row["sequence"])] for row in rows]

    def append_one(self, conn: sa.Connection, row: dict[str, Any]) -> tuple[int, int, bool] | None:
        """Lock, claim and insert in ONE statement: the cost of a bare one-row commit."""
        position, sequence, archived = conn.execute(self._append_one, row).one()
        return int(position), int(sequence), bool(archived)
