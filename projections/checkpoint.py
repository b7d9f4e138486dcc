"""Projection checkpoints: the position up to which an asynchronous projection has applied.

The checkpoint row is read ``FOR UPDATE`` (PostgreSQL) or under ``BEGIN IMMEDIATE`` (SQLite) at
the start of a runner's batch and written at its end, in the same transaction as the view
update: the checkpoint *is* the tracking record (eventsourcing's ``TrackingRecorder``), and the
row lock is what keeps two runners from applying the same event twice.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ledger.schema import projection_checkpoints

__all__ = ["lock_checkpoint", "read_checkpoints", "save_checkpoint"]


def lock_checkpoint(conn: sa.Connection, name: str) -> int:
    """Create the checkpoint if missing, lock it for this transaction and return its position."""
    t = projection_checkpoints
    values = {"name": name, "position": 0, "updated_at": dt.datetime.now(dt.UTC)}
    if conn.dialect.name == "sqlite":
        conn.execute(sqlite.insert(t).values(values).on_conflict_do_nothing())
    else:
        conn.execute(postgresql.insert(t).values(values).on_conflict_do_nothing())
    position = conn.execute(
        sa.select(t.c.position).where(t.c.name == name).with_for_update()
    ).scalar_one()
    return int(position)


def save_checkpoint(conn: sa.Connection, name: str, position: int) -> None:
    """Move the checkpoint of ``name`` to ``position`` (inside the caller's transaction)."""
    t = projection_checkpoints
    conn.execute(
        t.update()
        .where(t.c.name == name)
        .values(position=position, updated_at=dt.datetime.now(dt.UTC))
    )


def read_checkpoints(conn: sa.Connection) -> dict[str, int]:
    """Every stored checkpoint by projection name."""
    t = projection_checkpoints
    return {name: int(pos) for name, pos in conn.execute(sa.select(t.c.name, t.c.position))}
