"""The erasure record: ``ledger erase`` notes who erased which scope, when, and what it removed.

An erasure deletes a user's, a key's or a session's content from the log, the views, the
archive segments, the search index and the snapshots; this table keeps the fact that it
happened (scope, subject, who asked, when, how many sessions and events, the session ids), never
the content.

On SQLite it also marks the file as a ledger (``PRAGMA application_id``), which new files get
when they are created: the ledger then refuses to open, and so to change, a SQLite file of
another application given as its URL by mistake.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger.schema import UTCDateTime
from ledger.store.database import APPLICATION_ID

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("erasure_id", BigId, autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("erased_at", UTCDateTime(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("session_ids", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("erasure_id", name=op.f("pk_erasures")),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"PRAGMA application_id = {APPLICATION_ID}")


def downgrade() -> None:
    op.drop_table("erasures")
