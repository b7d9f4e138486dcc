"""Session views: heads, transcript, active session per key, checkpoints, usage and search.

The tables are projections of the log (``ledger projections rebuild`` recreates their rows).
Full-text search is dialect-specific and therefore outside the SQLAlchemy MetaData: on SQLite an
external-content FTS5 table ``search_fts`` kept in step with ``search_documents`` by triggers; on
PostgreSQL a generated ``tsvector`` column ``tsv`` with a GIN index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger.schema import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "projection_checkpoints",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_projection_checkpoints")),
    )
    op.create_table(
        "search_documents",
        sa.Column(
            "doc_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("session_id", sa.String(length=255), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("doc_id", name=op.f("pk_search_documents")),
        sa.UniqueConstraint(
            "session_id", "message_id", name=op.f("uq_search_documents_session_id_message_id")
        ),
    )
    op.create_table(
        "session_heads",
        sa.Column("session_id", sa.String(length=255), nullable=False),
        sa.Column("session_key", sa.String(length=255), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column("model", sa.String(length=255), nullable=True),
        sa.Column("title", sa.String(length=1024), nullable=True),
        sa.Column("parent_session_id", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("token_count", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("writer", sa.String(length=255), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_session_heads")),
    )
    with op.batch_alter_table("session_heads", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_heads_session_key"), ["session_key"], unique=False
        )

    op.create_table(
        "session_keys",
        sa.Column("session_key", sa.String(length=255), nullable=False),
        sa.Column("session_id", sa.String(length=255), nullable=False),
        sa.Column("previous_session_id", sa.String(length=255), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("writer", sa.String(length=255), nullable=False),
        sa.Column("switched_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("session_key", name=op.f("pk_session_keys")),
    )
    op.create_table(
        "transcript_messages",
        sa.Column("session_id", sa.String(length=255), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("tool_name", sa.String(length=255), nullable=True),
        sa.Column("tool_call_id", sa.String(length=255), nullable=True),
        sa.Column("tool_calls", sa.Text(), nullable=True),
        sa.Column("token_count", sa.Integer(), nullable=True),
        sa.Column("finish_reason", sa.String(length=64), nullable=True),
        sa.Column("reasoning", sa.Text(), nullable=True),
        sa.Column("writer", sa.String(length=255), nullable=False),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
        sa.Column("retracted_position", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("session_id", "message_id", name=op.f("pk_transcript_messages")),
    )
    with op.batch_alter_table("transcript_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_transcript_messages_session_sequence", ["session_id", "sequence"], unique=False
        )

    with op.batch_alter_table("session_heads", schema=None) as batch_op:
        batch_op.create_index("ix_session_heads_updated_at", ["updated_at"], unique=False)

    op.create_table(
        "usage_daily",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("retractions", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source", "day", name=op.f("pk_usage_daily")),
    )

    _create_search_index()


def _create_search_index() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5(content, content='search_documents', "
            "content_rowid='doc_id', tokenize='unicode61 remove_diacritics 2')"
        )
        op.execute(
            "CREATE TRIGGER search_documents_ai AFTER INSERT ON search_documents BEGIN "
            "INSERT INTO search_fts(rowid, content) VALUES (new.doc_id, new.content); END"
        )
        op.execute(
            "CREATE TRIGGER search_documents_ad AFTER DELETE ON search_documents BEGIN "
            "INSERT INTO search_fts(search_fts, rowid, content) "
            "VALUES ('delete', old.doc_id, old.content); END"
        )
        return
    op.execute(
        "ALTER TABLE search_documents ADD COLUMN tsv tsvector "
        "GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED"
    )
    op.execute("CREATE INDEX ix_search_documents_tsv ON search_documents USING gin (tsv)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER search_documents_ad")
        op.execute("DROP TRIGGER search_documents_ai")
        op.execute("DROP TABLE search_fts")
    op.drop_table("usage_daily")
    with op.batch_alter_table("transcript_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_transcript_messages_session_sequence")

    op.drop_table("transcript_messages")
    op.drop_table("session_keys")
    with op.batch_alter_table("session_heads", schema=None) as batch_op:
        batch_op.drop_index("ix_session_heads_updated_at")
        batch_op.drop_index(batch_op.f("ix_session_heads_session_key"))

    op.drop_table("session_heads")
    op.drop_table("search_documents")
    op.drop_table("projection_checkpoints")
