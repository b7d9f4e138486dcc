"""PostgreSQL's write path: per-stream locks, and positions from the transaction id (xid8).

Appends to different streams commit in parallel; appends to one stream are serialised by a
transaction-scoped advisory lock on that stream (Message DB's design), taken before the
transaction writes anything, so ``expected_sequence`` stays exact and no append waits for
another stream's writer.

A reader of the whole log must still never pass over an event that commits late, although
transactions now commit in any order. Each event's ``position`` is therefore made from its
transaction's id: ``xid * 2**20 + n`` (``n`` = 1, 2, … within the transaction, so at most
:data:`MAX_EVENTS_PER_TRANSACTION` events per transaction). A reader reads only below the
*horizon* ``pg_snapshot_xmin(pg_current_snapshot()) * 2**20``, computed in the same statement
as the rows (one snapshot): every transaction with an id below the snapshot's ``xmin`` has
finished, and every transaction still running, or not yet started, has an id of at least
``xmin`` and so positions at or above the horizon. Below the horizon nothing can ever appear
again, so a reader that checkpoints the last position it delivered skips nothing. This is the
xid8 outbox pattern, with the (xid, order) pair packed into one ascending ``position``.

Within one stream, positions follow sequences: a transaction gets its id at its first write,
which comes after it holds its streams' locks, so the next writer of a stream (which waited
for that lock) always has a larger id. Every stream a transaction writes is therefore locked
before it writes anything: :meth:`PostgresWritePath.lock_streams` takes them all in one
statement in name order (no deadlocks), and the one-event path is a server function (migration
0005) that takes its lock before it writes.

Compared with the anchors: eventsourcing serialises all writers with ``LOCK TABLE``; Message DB
takes a per-stream advisory lock, which alone would let a global reader skip late commits;
Marten's async daemon waits out gaps behind a "high-water mark" with a timeout, a heuristic.
Here nothing is waited out: the horizon is exact. Its cost: while any transaction that holds an
xid stays open (in the same PostgreSQL cluster), events of later transactions are held back from
readers until it ends; they are never lost or reordered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ledger.schema import events
from ledger.store._backend import HEAD_UPSERT, INSERT_COLUMNS

__all__ = ["HORIZON", "MAX_EVENTS_PER_TRANSACTION", "PostgresWritePath"]

#: Events one transaction may append (the low 20 bits of a position).
MAX_EVENTS_PER_TRANSACTION = 2**20 - 1
_SPAN = 2**20
#: SQL: the lowest position a transaction still running (or yet to start) can hold.
HORIZON = f"(pg_snapshot_xmin(pg_current_snapshot())::text::bigint * {_SPAN})"
#: SQL: one stream's advisory lock key (per schema, so ledgers in separate schemas never meet).
_STREAM_KEY = "hashtextextended(current_schema() || '.' || {}, 0)"
#: SQL: the position just before this transaction's next event (its first: xid * 2**20).
_LAST_USED = (
    f"(SELECT coalesce(max(e.position), b.base) FROM (SELECT pg_current_xact_id()::text::bigint "
    f"* {_SPAN} AS base) AS b LEFT JOIN events AS e ON e.position >= b.base "
    f"AND e.position < b.base + {_SPAN} GROUP BY b.base)"
)
_ARRAY_TYPES = ("text", "bigint", "text", "bytea", "uuid", "text", "timestamptz", "smallint")


class PostgresWritePath:
    """The append statements for PostgreSQL (psycopg 3)."""

    name = "PostgreSQL"

    def __init__(self) -> None:
        columns = ", ".join(INSERT_COLUMNS)
        self._claim = sa.text(
            f"INSERT INTO streams (stream, sequence) VALUES (:stream, :sequence) {HEAD_UPSERT}"
        )
        self._lock_streams = sa.text(
            f"SELECT count(pg_advisory_xact_lock({_STREAM_KEY.format('s')})) FROM "
            "(SELECT DISTINCT unnest(CAST(:streams AS text[])) AS s ORDER BY 1) AS sorted"
        )
        # The hot path in one round trip: migration 0005's server function takes the stream's
        # lock, claims the head and inserts, in that order. (One statement with CTEs cannot:
        # PostgreSQL may assign the transaction id before a CTE's lock is granted.)
        self._append_one = sa.text(
            "SELECT o_position, o_sequence, o_archived FROM ledger_append_one(:stream, :type, "
            ":data, :event_id, :writer, :recorded_at, CAST(:schema_version AS smallint))"
        ).bindparams(
            sa.bindparam("data", type_=sa.LargeBinary),
            sa.bindparam("event_id", type_=sa.Uuid),
            sa.bindparam("recorded_at", type_=events.c.recorded_at.type),
        )
        arrays = ", ".join(
            f"CAST(:{name} AS {kind}[])"
            for name, kind in zip(INSERT_COLUMNS, _ARRAY_TYPES, strict=True)
        )
        self._insert_arrays = sa.text(
            f"WITH used AS (SELECT {_LAST_USED} AS last) "
            f"INSERT INTO events (position, {columns}) SELECT used.last + u.ord, "
            + ", ".join(f"u.{name}" for name in INSERT_COLUMNS)
            + f" FROM used, unnest({arrays}) WITH ORDINALITY AS u({columns}, ord) "
            "ORDER BY u.ord RETURNING position, stream, sequence"
        )

    def quiesce(self, conn: sa.Connection) -> None:
        """Wait for in-flight appends and hold off new ones (a self-conflicting table lock)."""
        conn.exec_driver_sql("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")

    def lock_streams(self, conn: sa.Connection, streams: Sequence[str]) -> None:
        """Take the streams' advisory locks in one statement, in name order (no deadlocks).

        The locks are re-entrant within a transaction and held until it ends.
        """
        if streams:
            conn.execute(self._lock_streams, {"streams": list(streams)})

    def claim(self, conn: sa.Connection, stream: str, count: int) -> tuple[int, bool]:
        """Advance ``stream``'s head by ``count`` (its lock is held already)."""
        head, archived = conn.execute(self._claim, {"stream": stream, "sequence": count}).one()
        return int(head), bool(archived)

    def insert(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> list[int]:
        """ONE statement over arrays, positions from the transaction id.

        psycopg sends each column as one array parameter, far cheaper than binding a thousand
        rows through insertmanyvalues.
        """
        columns = {name: [row[name] for row in rows] for name in INSERT_COLUMNS}
        placed = {
            (stream, sequence): position
            for position, stream, sequence in conn.execute(self._insert_arrays, columns)
        }
        return [placed[(row["stream"], row["sequence"])] for row in rows]

    def append_one(self, conn: sa.Connection, row: dict[str, Any]) -> tuple[int, int, bool] | None:
        """Lock, claim and insert in ONE round trip: the cost of a bare one-row commit."""
        position, sequence, archived = conn.execute(self._append_one, row).one()
        return int(position), int(sequence), bool(archived)
