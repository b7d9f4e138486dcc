"""The database schema in SQLAlchemy Core: one ``MetaData`` with a naming convention.

Tables are created only through Alembic (``migrations/``); this module is the target the
migrations are checked against (``alembic check`` in the tests finds no drift).

``events`` is the log: ``position`` is log-wide and never reused (``AUTOINCREMENT`` on SQLite, an
identity sequence on PostgreSQL), ``(stream, sequence)`` is unique and ``event_id`` is the
idempotency key. ``streams`` keeps each stream's head so an append reads one row, not an index
range, before it writes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = ["UTCDateTime", "events", "metadata", "streams"]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

#: 64-bit on PostgreSQL; plain INTEGER on SQLite so the column is the rowid alias.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back as a timezone-aware UTC ``datetime``."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware value")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


events = sa.Table(
    "events",
    metadata,
    sa.Column("position", BigId, primary_key=True, autoincrement=True),
    sa.Column("stream", sa.String(300), nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("event_id", sa.Uuid, nullable=False),
    sa.Column("writer", sa.String(255), nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.Column("schema_version", sa.SmallInteger, nullable=False),
    sa.UniqueConstraint("stream", "sequence"),
    sa.UniqueConstraint("event_id"),
    sqlite_autoincrement=True,
)

streams = sa.Table(
    "streams",
    metadata,
    sa.Column("stream", sa.String(300), primary_key=True),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
)
