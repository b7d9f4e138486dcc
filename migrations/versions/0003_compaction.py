"""Compaction: archive segments, tombstones, projection snapshots, job runs, archived streams.

``streams.archived`` tells an append that the stream's events sit in ``archive_segments`` and
must be restored first; ``compaction_runs`` has UNIQUE (job, scheduled_for) so a scheduled run
executes once across schedulers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger.schema import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "archive_segments",
        sa.Column("stream", sa.String(length=300), nullable=False),
        sa.Column("first_position", sa.BigInteger(), nullable=False),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.Column("first_sequence", sa.BigInteger(), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("codec", sa.String(length=32), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("raw_bytes", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("archived_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("stream", name=op.f("pk_archive_segments")),
    )
    with op.batch_alter_table("archive_segments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_archive_segments_last_position"), ["last_position"], unique=False
        )

    op.create_table(
        "compaction_runs",
        sa.Column(
            "run_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("job", sa.String(length=32), nullable=False),
        sa.Column("scheduled_for", UTCDateTime, nullable=True),
        sa.Column("runner", sa.String(length=255), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("report", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_compaction_runs")),
        sa.UniqueConstraint(
            "job", "scheduled_for", name=op.f("uq_compaction_runs_job_scheduled_for")
        ),
    )
    op.create_table(
        "projection_snapshots",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_projection_snapshots")),
    )
    op.create_table(
        "session_tombstones",
        sa.Column("session_id", sa.String(length=255), nullable=False),
        sa.Column("session_key", sa.String(length=255), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("writer", sa.String(length=255), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("purged_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_session_tombstones")),
    )
    with op.batch_alter_table("streams", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("archived", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("streams", schema=None) as batch_op:
        batch_op.drop_column("archived")

    op.drop_table("session_tombstones")
    op.drop_table("projection_snapshots")
    op.drop_table("compaction_runs")
    with op.batch_alter_table("archive_segments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_archive_segments_last_position"))

    op.drop_table("archive_segments")
