"""A lease on every job run, so a run whose process was killed does not stay ``running``.

A run holds its claim until ``lease_until``; the process running it extends the lease while
the job works (a heartbeat). A scheduled run whose lease has expired (its runner died) may be
taken over by another scheduler, and an unscheduled one is marked ``abandoned``. Runs that were
``running`` before this revision get an expired lease: nothing is heartbeating them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger.schema import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("compaction_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_until", UTCDateTime(), nullable=True))
    op.execute("UPDATE compaction_runs SET lease_until = started_at WHERE status = 'running'")


def downgrade() -> None:
    with op.batch_alter_table("compaction_runs", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
