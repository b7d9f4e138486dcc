"""The complete session data model: gateway times, settings, content parts, usage.

``session_heads`` gains the gateway's own times (``started_at``, ``ended_at``,
``last_activity_at``), the ``end_reason``, the system prompt and the model settings;
``transcript_messages`` gains the message's ``created_at``, content parts, ``name``, the
reasoning fields and ``metadata``, and its ``content`` may be NULL (no text); the new
``session_usage`` table holds the totals of each session's ``usage-*`` stream.

Existing rows are filled from what the views knew: ``started_at`` from ``created_at``,
``last_activity_at`` from ``updated_at``, a message's ``created_at`` from ``recorded_at``, a
closed session's ``ended_at`` from ``updated_at`` (its close was its last event) and its
``end_reason`` from the ``SessionClosed`` event in the log (NULL while the stream is archived:
``ledger projections rebuild sessions`` fills it). That is what a rebuild of events written
before this version gives, so ``ledger projections verify`` stays clean. Search now indexes tool
output and the text of content parts, so its documents are dropped and its checkpoint reset: the
projection runner indexes the log again.

On PostgreSQL ``ledger_append_message`` is replaced: it now takes the transcript row as one
``jsonb`` value (``jsonb_populate_record`` over the table's own row type), so new transcript
columns need no new function.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from ledger.schema import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_SIGNATURE = (
    "text, text, text, text, text, text, text, text, integer, text, text, bytea, uuid, text, "
    "timestamptz, smallint"
)
SIGNATURE = "text, text, jsonb, integer, timestamptz, bytea, uuid, text, timestamptz, smallint"

APPEND_MESSAGE = """
CREATE FUNCTION ledger_append_message(
    p_session_id text, p_stream text, p_message jsonb, p_token_count integer,
    p_activity timestamptz, p_data bytea, p_event_id uuid, p_writer text,
    p_recorded_at timestamptz, p_schema_version smallint,
    OUT o_status text, OUT o_position bigint, OUT o_sequence bigint
) LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_archived boolean;
    v_row transcript_messages;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(current_schema() || '.' || p_stream, 0));
    SELECT h.state INTO v_state FROM session_heads AS h WHERE h.session_id = p_session_id;
    IF NOT FOUND THEN
        o_status := 'missing';
        RETURN;
    END IF;
    IF v_state <> 'open' THEN
        o_status := v_state;
        RETURN;
    END IF;
    SELECT s.archived INTO v_archived FROM streams AS s WHERE s.stream = p_stream;
    IF v_archived THEN
        o_status := 'archived';
        RETURN;
    END IF;
    SELECT a.o_position, a.o_sequence INTO o_position, o_sequence
        FROM ledger_append_one(p_stream, 'MessageAppended', p_data, p_event_id, p_writer,
                               p_recorded_at, p_schema_version) AS a;
    UPDATE session_heads AS h
        SET sequence = o_sequence, message_count = h.message_count + 1,
            token_count = h.token_count + coalesce(p_token_count, 0), position = o_position,
            writer = p_writer, updated_at = p_recorded_at,
            last_activity_at = CASE WHEN h.last_activity_at IS NULL
                                      OR h.last_activity_at < p_activity
                                    THEN p_activity ELSE h.last_activity_at END
        WHERE h.session_id = p_session_id;
    v_row := jsonb_populate_record(NULL::transcript_messages, p_message);
    v_row.sequence := o_sequence;
    v_row.position := o_position;
    INSERT INTO transcript_messages SELECT (v_row).*;
    o_status := 'ok';
END
$$
"""


def _end_reason_sql(dialect: str) -> str:
    """The ``reason`` of the session's ``SessionClosed`` event, from its JSON payload."""
    payload = (
        "json_extract(CAST(e.data AS TEXT), '$.reason')"
        if dialect == "sqlite"
        else "convert_from(e.data, 'UTF8')::json ->> 'reason'"
    )
    return (
        f"UPDATE session_heads SET end_reason = (SELECT {payload} FROM events AS e "
        "WHERE e.stream = 'session-' || session_heads.session_id "
        "AND e.type = 'SessionClosed' ORDER BY e.sequence DESC LIMIT 1) "
        "WHERE state = 'closed'"
    )


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    with op.batch_alter_table("session_heads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_at", UTCDateTime, nullable=True))
        batch_op.add_column(sa.Column("ended_at", UTCDateTime, nullable=True))
        batch_op.add_column(sa.Column("end_reason", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("last_activity_at", UTCDateTime, nullable=True))
        batch_op.add_column(sa.Column("system_prompt", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("model_config", sa.Text(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_session_heads_last_activity_at"), ["last_activity_at"], unique=False
        )
    with op.batch_alter_table("transcript_messages", schema=None) as batch_op:
        batch_op.alter_column("content", existing_type=sa.Text(), nullable=True)
        batch_op.add_column(sa.Column("content_parts", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("created_at", UTCDateTime, nullable=True))
        batch_op.add_column(sa.Column("name", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("reasoning_content", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("reasoning_details", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("metadata", sa.Text(), nullable=True))
    op.create_table(
        "session_usage",
        sa.Column("session_id", sa.String(length=255), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_read_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_write_tokens", sa.BigInteger(), nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("model", sa.String(length=255), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_session_usage")),
    )
    op.execute(
        "UPDATE session_heads SET started_at = created_at, last_activity_at = updated_at, "
        "ended_at = CASE WHEN state = 'closed' THEN updated_at END"
    )
    op.execute(_end_reason_sql(dialect))
    op.execute("UPDATE transcript_messages SET created_at = recorded_at")
    # Search now indexes tool output and content parts too: index the whole log again.
    op.execute("DELETE FROM search_documents")
    op.execute("UPDATE projection_checkpoints SET position = 0 WHERE name = 'search'")
    if dialect == "postgresql":
        op.execute(f"DROP FUNCTION ledger_append_message({OLD_SIGNATURE})")
        op.execute(APPEND_MESSAGE)


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":
        op.execute(f"DROP FUNCTION ledger_append_message({SIGNATURE})")
        previous = context.script.get_revision("0006")
        assert previous is not None
        op.execute(previous.module.APPEND_MESSAGE)
    op.drop_table("session_usage")
    op.execute("UPDATE transcript_messages SET content = '' WHERE content IS NULL")
    with op.batch_alter_table("transcript_messages", schema=None) as batch_op:
        for column in (
            "metadata",
            "reasoning_details",
            "reasoning_content",
            "name",
            "created_at",
            "content_parts",
        ):
            batch_op.drop_column(column)
        batch_op.alter_column("content", existing_type=sa.Text(), nullable=False)
    with op.batch_alter_table("session_heads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_heads_last_activity_at"))
        for column in (
            "model_config",
            "system_prompt",
            "last_activity_at",
            "end_reason",
            "ended_at",
            "started_at",
        ):
            batch_op.drop_column(column)
