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

from ledger.errors import InvalidArgumentError

__all__ = [
    "UTCDateTime",
    "apscheduler_jobs",
    "archive_segments",
    "compaction_runs",
    "erasures",
    "events",
    "metadata",
    "projection_checkpoints",
    "projection_snapshots",
    "search_documents",
    "session_heads",
    "session_keys",
    "session_tombstones",
    "session_usage",
    "streams",
    "transcript_messages",
    "usage_daily",
]

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
            raise InvalidArgumentError("datetime", value, "a timezone-aware datetime")
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
    sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
)

# -- views derived from the log (written by the ``projections`` package) -----------------------

session_heads = sa.Table(
    "session_heads",
    metadata,
    sa.Column("session_id", sa.String(255), primary_key=True),
    sa.Column("session_key", sa.String(255), nullable=True, index=True),
    sa.Column("source", sa.String(64), nullable=True),
    sa.Column("user_id", sa.String(255), nullable=True),
    sa.Column("model", sa.String(255), nullable=True),
    sa.Column("title", sa.String(1024), nullable=True),
    sa.Column("parent_session_id", sa.String(255), nullable=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("message_count", sa.Integer, nullable=False),
    sa.Column("token_count", sa.BigInteger, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("writer", sa.String(255), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Migration 0007: the gateway's own times and settings (NULL in a tombstone head).
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Column("end_reason", sa.String(64), nullable=True),
    sa.Column("last_activity_at", UTCDateTime, nullable=True),
    sa.Column("system_prompt", sa.Text, nullable=True),
    sa.Column("model_config", sa.Text, nullable=True),
    sa.Index("ix_session_heads_updated_at", "updated_at"),
    sa.Index("ix_session_heads_last_activity_at", "last_activity_at"),
)

transcript_messages = sa.Table(
    "transcript_messages",
    metadata,
    sa.Column("session_id", sa.String(255), primary_key=True),
    sa.Column("message_id", sa.String(255), primary_key=True),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    # Text content; NULL for no content or content parts (then in ``content_parts``, as JSON).
    sa.Column("content", sa.Text, nullable=True),
    sa.Column("tool_name", sa.String(255), nullable=True),
    sa.Column("tool_call_id", sa.String(255), nullable=True),
    sa.Column("tool_calls", sa.Text, nullable=True),
    sa.Column("token_count", sa.Integer, nullable=True),
    sa.Column("finish_reason", sa.String(64), nullable=True),
    sa.Column("reasoning", sa.Text, nullable=True),
    sa.Column("writer", sa.String(255), nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.Column("retracted_position", sa.BigInteger, nullable=True),
    # Migration 0007: everything else a gateway stores with a message.
    sa.Column("content_parts", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=True),
    sa.Column("name", sa.String(255), nullable=True),
    sa.Column("reasoning_content", sa.Text, nullable=True),
    sa.Column("reasoning_details", sa.Text, nullable=True),
    sa.Column("metadata", sa.Text, nullable=True),
    sa.Index("ix_transcript_messages_session_sequence", "session_id", "sequence"),
)

#: Per-session usage totals, folded from the ``usage-*`` streams (migration 0007).
session_usage = sa.Table(
    "session_usage",
    metadata,
    sa.Column("session_id", sa.String(255), primary_key=True),
    sa.Column("calls", sa.Integer, nullable=False),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
    sa.Column("cache_read_tokens", sa.BigInteger, nullable=False),
    sa.Column("cache_write_tokens", sa.BigInteger, nullable=False),
    sa.Column("reasoning_tokens", sa.BigInteger, nullable=False),
    sa.Column("cost_usd", sa.Float, nullable=True),
    sa.Column("model", sa.String(255), nullable=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

session_keys = sa.Table(
    "session_keys",
    metadata,
    sa.Column("session_key", sa.String(255), primary_key=True),
    sa.Column("session_id", sa.String(255), nullable=False),
    sa.Column("previous_session_id", sa.String(255), nullable=True),
    sa.Column("reason", sa.String(16), nullable=False),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("writer", sa.String(255), nullable=False),
    sa.Column("switched_at", UTCDateTime, nullable=False),
)

projection_checkpoints = sa.Table(
    "projection_checkpoints",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

usage_daily = sa.Table(
    "usage_daily",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("sessions", sa.Integer, nullable=False),
    sa.Column("messages", sa.Integer, nullable=False),
    sa.Column("retractions", sa.Integer, nullable=False),
    sa.Column("tokens", sa.BigInteger, nullable=False),
)

#: Full-text search documents. The index itself is dialect-specific and lives outside this
#: MetaData (created by migration 0002): an FTS5 table ``search_fts`` over this table's rows on
#: SQLite, a generated ``tsvector`` column with a GIN index on PostgreSQL.
search_documents = sa.Table(
    "search_documents",
    metadata,
    sa.Column("doc_id", BigId, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(255), nullable=False),
    sa.Column("message_id", sa.String(255), nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.UniqueConstraint("session_id", "message_id"),
)

# -- compaction (migration 0003) ------------------------------------------------------------

#: Events of archived streams, moved out of ``events`` into one compressed segment per stream.
archive_segments = sa.Table(
    "archive_segments",
    metadata,
    sa.Column("stream", sa.String(300), primary_key=True),
    sa.Column("first_position", sa.BigInteger, nullable=False),
    sa.Column("last_position", sa.BigInteger, nullable=False, index=True),
    sa.Column("first_sequence", sa.BigInteger, nullable=False),
    sa.Column("last_sequence", sa.BigInteger, nullable=False),
    sa.Column("event_count", sa.Integer, nullable=False),
    sa.Column("codec", sa.String(32), nullable=False),
    sa.Column("checksum", sa.String(64), nullable=False),
    sa.Column("raw_bytes", sa.BigInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("archived_at", UTCDateTime, nullable=False),
)

#: What retention keeps of a purged session: its head, so its sequence is never reused.
session_tombstones = sa.Table(
    "session_tombstones",
    metadata,
    sa.Column("session_id", sa.String(255), primary_key=True),
    sa.Column("session_key", sa.String(255), nullable=True),
    sa.Column("source", sa.String(64), nullable=True),
    sa.Column("sequence", sa.BigInteger, nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("writer", sa.String(255), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("purged_at", UTCDateTime, nullable=False),
)

#: Inline views serialised at a log position, so a rebuild can start there.
projection_snapshots = sa.Table(
    "projection_snapshots",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("checksum", sa.String(64), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

#: One row per compaction job run; UNIQUE (job, scheduled_for) makes a scheduled run happen
#: once however many schedulers fire it.
compaction_runs = sa.Table(
    "compaction_runs",
    metadata,
    sa.Column("run_id", BigId, primary_key=True, autoincrement=True),
    sa.Column("job", sa.String(32), nullable=False),
    sa.Column("scheduled_for", UTCDateTime, nullable=True),
    sa.Column("runner", sa.String(255), nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("report", sa.Text, nullable=True),
    # Migration 0009: the claim holds until then; the running process keeps extending it.
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.UniqueConstraint("job", "scheduled_for"),
)

#: One row per erasure (``ledger erase``, migration 0008): who asked, when, for which scope, and
#: which sessions it removed. It records that the content was erased, never the content.
erasures = sa.Table(
    "erasures",
    metadata,
    sa.Column("erasure_id", BigId, primary_key=True, autoincrement=True),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("requested_by", sa.String(255), nullable=False),
    sa.Column("erased_at", UTCDateTime, nullable=False),
    sa.Column("sessions", sa.Integer, nullable=False),
    sa.Column("events", sa.Integer, nullable=False),
    # The erased session ids, a JSON array (ids only: they stay as tombstone heads anyway).
    sa.Column("session_ids", sa.Text, nullable=False),
)

#: APScheduler 3's job table (its ``SQLAlchemyJobStore`` layout), created by migration 0004 so
#: that several schedulers starting at once never race to create it.
apscheduler_jobs = sa.Table(
    "apscheduler_jobs",
    metadata,
    sa.Column("id", sa.Unicode(191), primary_key=True),
    sa.Column("next_run_time", sa.Float(25), index=True),
    sa.Column("job_state", sa.LargeBinary, nullable=False),
)
