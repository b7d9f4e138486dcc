"""Helpers every test folder uses: counting what the log holds, checking for leaked connections."""

from __future__ import annotations

import sqlalchemy as sa

from ledger import EventStore, Ledger
from ledger.schema import archive_segments, events

__all__ = ["assert_no_connection_leaked", "count_events", "total_events"]


def _store(target: EventStore | Ledger) -> EventStore:
    return target.store if isinstance(target, Ledger) else target


def count_events(target: EventStore | Ledger) -> int:
    """Rows in the live ``events`` table (archived events not included)."""
    with _store(target).engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one())


def total_events(target: EventStore | Ledger) -> int:
    """Events in the live table plus events held by archive segments."""
    with _store(target).engine.connect() as conn:
        live = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
        archived = conn.execute(sa.select(sa.func.sum(archive_segments.c.event_count))).scalar()
    return int(live) + int(archived or 0)


def assert_no_connection_leaked(target: EventStore | Ledger) -> None:
    """No connection may be left checked out when a test ends (APScheduler's teardown check).

    Agent caches' decision recorders write on a thread of their own: they finish first, as
    they would when the store closes.
    """
    for finish in _store(target)._on_close:
        finish()
    pool = _store(target).engine.pool
    assert isinstance(pool, sa.pool.QueuePool)
    assert pool.checkedout() == 0, "a connection leaked out of the store"
