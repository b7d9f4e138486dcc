"""Event log: the ``events`` table and the ``streams`` head table.

``position`` is the log-wide order and is never reused (AUTOINCREMENT on SQLite, an identity
column on PostgreSQL); ``(stream, sequence)`` is unique as the backstop of the expected-sequence
check; ``event_id`` is unique as the idempotency key.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger.schema import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
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
        sa.PrimaryKeyConstraint("position", name=op.f("pk_events")),
        sa.UniqueConstraint("stream", "sequence", name=op.f("uq_events_stream_sequence")),
        sa.UniqueConstraint("event_id", name=op.f("uq_events_event_id")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "streams",
        sa.Column("stream", sa.String(300), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("stream", name=op.f("pk_streams")),
    )


def downgrade() -> None:
    op.drop_table("streams")
    op.drop_table("events")
