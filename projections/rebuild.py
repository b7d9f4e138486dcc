"""Rebuild, verify and report the status of projections, always from the log.

``rebuild`` of an inline projection runs in ONE transaction that holds off appends, empties
the views and folds the whole log back in batches, so the views are never seen half-
built and an interrupted rebuild rolls back to the old views (rerun it). ``rebuild`` of an
asynchronous projection empties its views and resets its checkpoint in one transaction, then
lets the runner catch up in checkpointed batches, so an interruption resumes where it stopped.

``verify`` folds the log into TEMPORARY copies of a projection's tables inside one snapshot
(``REPEATABLE READ`` on PostgreSQL, a read transaction on SQLite) and compares them with the live
views in SQL (``EXCEPT`` both ways), so memory stays flat however large the views are.
Asynchronous projections are compared up to their checkpoint, since they lag by design.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from ledger.store import EventStore
from projections.base import Projection
from projections.checkpoint import lock_checkpoint, read_checkpoints, save_checkpoint
from projections.runner import ProjectionRunner
from projections.snapshot import load_snapshot

__all__ = ["Mismatch", "ProjectionStatus", "rebuild", "status", "verify"]

Progress = Callable[[int], None]
_BATCH = 2000


class Mismatch(msgspec.Struct, frozen=True, kw_only=True):
    """One row where a live view differs from the log: missing, unexpected or different."""

    projection: str
    table: str
    key: dict[str, Any]
    kind: str
    live: dict[str, Any] | None
    expected: dict[str, Any] | None


class ProjectionStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Where a projection stands: inline ones are always at the log's end."""

    name: str
    kind: str
    checkpoint: int
    last_position: int
    lag: int


def _fold_log(
    store: EventStore,
    conn: sa.Connection,
    projection: Projection,
    until: int | None,
    progress: Progress | None,
    *,
    after: int = 0,
) -> int:
    """Apply the log after ``after`` (up to ``until``) to ``projection``; returns the count."""
    total = 0
    while True:
        # Everything this transaction's snapshot shows: appends are held off (rebuild) or the
        # views are compared in the same snapshot (verify), so nothing in flight is missed.
        batch = store.read_batch(conn, after, _BATCH, final_only=False)
        if until is not None:
            batch = [r for r in batch if r.position <= until]
        if not batch:
            return total
        projection.apply(conn, batch)
        total += len(batch)
        after = batch[-1].position
        if progress is not None:
            progress(len(batch))


def rebuild(
    store: EventStore,
    projection: Projection,
    progress: Progress | None = None,
    *,
    from_snapshot: bool = False,
) -> int:
    """Recreate ``projection``'s views from the log; returns how many events were folded.

    With ``from_snapshot`` an inline projection starts from its latest snapshot and folds only
    the later events: fast, but it keeps whatever the snapshot holds, so repairing a damaged
    view is a rebuild from the log (the default).
    """
    if projection.inline:
        # Appends update inline views: hold them off while the views are rebuilt.
        with store.transaction(exclusive=True) as conn:
            start = load_snapshot(conn, projection) if from_snapshot else None
            if start is None:
                projection.reset(conn)
            return _fold_log(store, conn, projection, None, progress, after=start or 0)
    with store.transaction() as conn:
        lock_checkpoint(conn, projection.name)
        projection.reset(conn)
        save_checkpoint(conn, projection.name, 0)
    return ProjectionRunner(store, [projection], batch_size=_BATCH).catch_up(progress)


def _temporary_copy(table: sa.Table, keys: Sequence[str]) -> sa.Table:
    columns = [
        sa.Column(c.name, c.type, primary_key=c.name in keys, nullable=c.name not in keys)
        for c in table.columns
    ]
    return sa.Table(
        f"verify_{table.name}_{uuid.uuid4().hex[:8]}",
        sa.MetaData(),
        *columns,
        prefixes=["TEMPORARY"],
    )


def _differences(
    conn: sa.Connection,
    projection: Projection,
    live: sa.Table,
    expected: sa.Table,
    limit: int,
) -> Iterator[Mismatch]:
    ignored = set(getattr(projection, "ignored", {}).get(live.name, ()))
    names = [c.name for c in live.columns if c.name not in ignored]
    keys = projection.keys[live.name]

    def rows(a: sa.Table, b: sa.Table) -> dict[tuple[Any, ...], dict[str, Any]]:
        query = sa.except_(
            sa.select(*[a.c[n] for n in names]), sa.select(*[b.c[n] for n in names])
        ).limit(limit)
        found = conn.execute(query).mappings().all()
        return {tuple(row[k] for k in keys): dict(row) for row in found}

    live_only = rows(live, expected)
    expected_only = rows(expected, live)
    for key in sorted(live_only.keys() | expected_only.keys(), key=repr):
        have, want = live_only.get(key), expected_only.get(key)
        kind = "different" if have and want else ("unexpected" if have else "missing")
        yield Mismatch(
            projection=projection.name,
            table=str(live.name),
            key=dict(zip(keys, key, strict=True)),
            kind=kind,
            live=have,
            expected=want,
        )


def verify(
    store: EventStore,
    projection: Projection,
    progress: Progress | None = None,
    *,
    limit: int = 1000,
) -> list[Mismatch]:
    """Every row where ``projection``'s views differ from a fold of the log (empty: in step)."""
    with store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin() as transaction:
            until = None
            if not projection.inline:
                until = read_checkpoints(conn).get(projection.name, 0)
            copies = {
                name: _temporary_copy(table, projection.keys[name])
                for name, table in projection.tables.items()
            }
            for copy in copies.values():
                copy.create(conn)
            shadow = type(projection)(copies)
            shadow.seed(conn)
            _fold_log(store, conn, shadow, until, progress)
            found = [
                mismatch
                for name, table in projection.tables.items()
                for mismatch in _differences(conn, projection, table, copies[name], limit)
            ]
            transaction.rollback()
    return found


def status(store: EventStore, projections: Sequence[Projection]) -> list[ProjectionStatus]:
    """Checkpoint and lag of every projection."""
    last = store.last_position()
    with store.engine.connect() as conn:
        checkpoints = read_checkpoints(conn)
    result = []
    for projection in projections:
        at = last if projection.inline else checkpoints.get(projection.name, 0)
        result.append(
            ProjectionStatus(
                name=projection.name,
                kind="inline" if projection.inline else "async",
                checkpoint=at,
                last_position=last,
                lag=max(0, last - at),
            )
        )
    return result
