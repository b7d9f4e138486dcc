"""Throw-away SQLite folders, and the baseline every append benchmark measures the ledger by.

SQLite files live in a fresh temporary folder (its parent decides the file system, hence the
cost of ``fsync``); ``postgres`` makes the PostgreSQL counterpart, a schema per run. The
baseline writes the same row as an event (stream, sequence, type, the encoded payload, a fresh
UUID, writer, timestamp, schema version) into a table of the same columns, types and indexes as
``events``, one ``INSERT`` per ``engine.begin()`` on an engine made by
:func:`ledger.store.database.create_engine`, so the same PRAGMAs or server settings apply: the
physical limit of a durable one-event commit.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ledger import MessageAppended
from ledger.schema import UTCDateTime
from ledger.store.database import WRITE

__all__ = [
    "CONTENT",
    "EVENT_TYPE",
    "SCHEMA_VERSION",
    "core_committer",
    "event_row",
    "raw_table",
    "scratch_folder",
]

#: The text of a typical assistant message.
CONTENT = "Sure - the deploy finished at 14:02 and every check passed."
EVENT_TYPE = MessageAppended.__struct_config__.tag
SCHEMA_VERSION = MessageAppended.schema_version


@contextmanager
def scratch_folder(parent: str | None) -> Iterator[Path]:
    """A fresh temporary folder under ``parent`` (the system's default: ``None``), then gone."""
    with tempfile.TemporaryDirectory(prefix="ledger-bench-", dir=parent) as tmp:
        yield Path(tmp)


def raw_table(metadata: sa.MetaData, name: str) -> sa.Table:
    """A table shaped like ``ledger.schema.events``: same columns, types and indexes."""
    return sa.Table(
        name,
        metadata,
        sa.Column(
            "position",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("stream", sa.String(300), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("writer", sa.String(255), nullable=False),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
        sa.Column("schema_version", sa.SmallInteger, nullable=False),
        sa.UniqueConstraint("stream", "sequence", name=f"uq_{name}_stream_sequence"),
        sa.UniqueConstraint("event_id", name=f"uq_{name}_event_id"),
        sqlite_autoincrement=True,
    )


def event_row(stream: str, sequence: int, payload: bytes, writer: str) -> dict[str, Any]:
    """One baseline row: a ``MessageAppended`` as ``events`` would hold it."""
    return {
        "stream": stream,
        "sequence": sequence,
        "type": EVENT_TYPE,
        "data": payload,
        "event_id": uuid.uuid4(),
        "writer": writer,
        "recorded_at": dt.datetime.now(dt.UTC),
        "schema_version": SCHEMA_VERSION,
    }


def core_committer(engine: sa.Engine, table: sa.Table) -> Callable[[dict[str, Any]], None]:
    """One Core ``INSERT`` of one row per ``engine.begin()`` (``BEGIN IMMEDIATE`` on SQLite,
    as the store takes it)."""
    insert = table.insert()
    writer_engine = engine.execution_options(**{WRITE: True})

    def commit(row: dict[str, Any]) -> None:
        with writer_engine.begin() as conn:
            conn.execute(insert, row)

    return commit
