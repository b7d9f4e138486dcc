"""PostgreSQL: positions from transaction ids, and the one-event append as a server function.

From this revision on, appends on PostgreSQL take no global lock: each event's position is
``xid * 2**20 + n`` and readers stay below ``pg_snapshot_xmin(...) * 2**20`` (see
``ledger/store/_postgres.py``). Existing events keep their positions; the revision checks that
every one of them lies below the first new position, so log order is unchanged and checkpoints
(positions already delivered) stay valid. ``ledger_append_one`` is the gateway's hot path in one
round trip (as Message DB's ``write_message``): the stream's advisory lock, the head claim and
the insert, in that order, so the transaction id is assigned only once the lock is held.
SQLite is unchanged (one writer at a time already orders positions).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SPAN = 2**20

APPEND_ONE = f"""
CREATE FUNCTION ledger_append_one(
    p_stream text, p_type text, p_data bytea, p_event_id uuid, p_writer text,
    p_recorded_at timestamptz, p_schema_version smallint,
    OUT o_position bigint, OUT o_sequence bigint, OUT o_archived boolean
) LANGUAGE plpgsql AS $$
DECLARE
    base bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(current_schema() || '.' || p_stream, 0));
    INSERT INTO streams AS s (stream, sequence) VALUES (p_stream, 1)
        ON CONFLICT (stream) DO UPDATE SET sequence = s.sequence + 1
        RETURNING s.sequence, s.archived INTO o_sequence, o_archived;
    base := pg_current_xact_id()::text::bigint * {SPAN};
    SELECT coalesce(max(e.position), base) + 1 INTO o_position
        FROM events AS e WHERE e.position >= base AND e.position < base + {SPAN};
    INSERT INTO events (position, stream, sequence, type, data, event_id, writer, recorded_at,
                        schema_version)
        VALUES (o_position, p_stream, o_sequence, p_type, p_data, p_event_id, p_writer,
                p_recorded_at, p_schema_version);
END
$$
"""

CHECK = f"""
DO $$
DECLARE
    highest bigint;
    first_new bigint := pg_current_xact_id()::text::bigint * {SPAN};
BEGIN
    SELECT greatest(coalesce((SELECT max(position) FROM events), 0),
                    coalesce((SELECT max(last_position) FROM archive_segments), 0))
        INTO highest;
    IF highest >= first_new THEN
        RAISE EXCEPTION 'existing position % is not below the first xid position %: '
            'export the log (ledger export), upgrade an empty database, import it again',
            highest, first_new;
    END IF;
END
$$
"""


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(CHECK)
    op.execute(APPEND_ONE)


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(
        "DROP FUNCTION ledger_append_one(text, text, bytea, uuid, text, timestamptz, smallint)"
    )
