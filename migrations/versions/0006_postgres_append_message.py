"""PostgreSQL: a gateway message in ONE round trip (``ledger_append_message``).

The gateway's hot call, one message to an open session, was seven round trips (BEGIN, stream
lock, state check, append, head update, transcript insert, COMMIT). This function does the
same work in one statement, run in autocommit, so one round trip: the session stream's
advisory lock, the "session exists and is open" check, the head claim and event insert (a call
of ``ledger_append_one``, whose lock is re-entrant), and the two inline-view writes of the
``sessions`` projection's append-only path (head bump, transcript row). It writes nothing
and returns a status when the session is missing or not open, or when its stream is archived
(the caller then takes the general path, which restores it). The views it writes are checked
against a rebuild from the log by the same tests as the Python path.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = (
    "text, text, text, text, text, text, text, text, integer, text, text, bytea, uuid, text, "
    "timestamptz, smallint"
)

APPEND_MESSAGE = """
CREATE FUNCTION ledger_append_message(
    p_session_id text, p_stream text, p_message_id text, p_role text, p_content text,
    p_tool_name text, p_tool_call_id text, p_tool_calls text, p_token_count integer,
    p_finish_reason text, p_reasoning text, p_data bytea, p_event_id uuid, p_writer text,
    p_recorded_at timestamptz, p_schema_version smallint,
    OUT o_status text, OUT o_position bigint, OUT o_sequence bigint
) LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
    v_archived boolean;
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
            writer = p_writer, updated_at = p_recorded_at
        WHERE h.session_id = p_session_id;
    INSERT INTO transcript_messages (session_id, message_id, sequence, position, role, content,
                                     tool_name, tool_call_id, tool_calls, token_count,
                                     finish_reason, reasoning, writer, recorded_at,
                                     retracted_position)
        VALUES (p_session_id, p_message_id, o_sequence, o_position, p_role, p_content,
                p_tool_name, p_tool_call_id, p_tool_calls, p_token_count, p_finish_reason,
                p_reasoning, p_writer, p_recorded_at, NULL);
    o_status := 'ok';
END
$$
"""


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(APPEND_MESSAGE)


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION ledger_append_message({SIGNATURE})")
