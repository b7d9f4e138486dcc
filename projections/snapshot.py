"""Projection snapshots: the inline views stored at a log position, so rebuilds start there.

``snapshot`` holds off appends (so no event lands while it reads), serialises every row of
each inline projection's tables with msgpack, compresses it and keeps a SHA-256 checksum.
``rebuild`` then loads the snapshot and folds only the events after its position. Retention
deletes the snapshots (they hold what it purged), so the next rebuild starts from the log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib
from typing import Any

import msgspec
import sqlalchemy as sa

from ledger.maintenance import CompactionReport
from ledger.schema import projection_snapshots
from ledger.store import EventStore, log_end
from projections.base import Projection
from projections.registry import all_projections

__all__ = ["load_snapshot", "snapshot"]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(dict[str, list[dict[str, Any]]])


def snapshot(store: EventStore, *, dry_run: bool = False, **_: Any) -> CompactionReport:
    """Store every inline projection's views at the current end of the log."""
    report = CompactionReport(job="snapshot", dry_run=dry_run)
    for projection in (p for p in all_projections() if p.inline):
        # A consistent cut: no append in flight while the views are copied.
        with store.transaction(exclusive=True) as conn:
            position = log_end(conn, final_only=False)
            tables = {
                name: [dict(row) for row in conn.execute(sa.select(table)).mappings()]
                for name, table in projection.tables.items()
            }
            raw = _encoder.encode(tables)
            data = zlib.compress(raw, 6)
            report.sessions += 1
            report.events += sum(len(rows) for rows in tables.values())
            report.bytes_before += len(raw)
            report.bytes_after += len(data)
            report.details.append(f"{projection.name} at position {position}")
            if dry_run:
                continue
            s = projection_snapshots
            conn.execute(s.delete().where(s.c.name == projection.name))
            conn.execute(
                s.insert().values(
                    name=projection.name,
                    position=position,
                    checksum=hashlib.sha256(raw).hexdigest(),
                    data=data,
                    created_at=dt.datetime.now(dt.UTC),
                )
            )
    return report


def load_snapshot(conn: sa.Connection, projection: Projection) -> int | None:
    """Replace the views with the projection's snapshot; returns its position (None: none)."""
    s = projection_snapshots
    row = conn.execute(
        sa.select(s.c.position, s.c.checksum, s.c.data).where(s.c.name == projection.name)
    ).first()
    if row is None:
        return None
    raw = zlib.decompress(row.data)
    if hashlib.sha256(raw).hexdigest() != row.checksum:
        return None  # a damaged snapshot is ignored: the rebuild starts from the log
    tables = _decoder.decode(raw)
    for table in reversed(list(projection.tables.values())):
        conn.execute(table.delete())
    for name, table in projection.tables.items():
        rows = tables.get(name, [])
        for row_values in rows:
            for column in table.columns:
                value = row_values.get(column.name)
                if isinstance(value, dt.datetime) and value.tzinfo is None:
                    row_values[column.name] = value.replace(tzinfo=dt.UTC)
        if rows:
            conn.execute(table.insert(), rows)
    return int(row.position)
