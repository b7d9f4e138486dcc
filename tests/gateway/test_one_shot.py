"""On PostgreSQL one message to an open session is ONE round trip, with the same result.

``ledger_append_message`` (migration 0006) does what the general path does (lock, state check,
append, the ``sessions`` view's append-only writes) in one statement. These tests pin that it
is used, that it refuses what the general path refuses without writing, and that the views it
writes equal a rebuild from the log.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ledger import Ledger, SessionClosedError, SessionNotFoundError
from projections.rebuild import verify
from projections.sessions import SessionsProjection
from tests.helpers import count_events

KEY = "agent:main:telegram:dm:1"
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]


def test_one_message_is_one_statement(ledger: Ledger) -> None:
    """``append_message`` to an open session sends exactly one statement (in autocommit)."""
    session_id = ledger.open_session(KEY)
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    sa.event.listen(ledger.store.engine, "before_cursor_execute", count)
    try:
        result = ledger.append_message(session_id, "user", "hello")
    finally:
        sa.event.remove(ledger.store.engine, "before_cursor_execute", count)
    assert len(statements) == 1
    assert "ledger_append_message" in statements[0]
    assert result.sequence == 2
    head = ledger.head(session_id)
    assert head is not None
    assert (head.sequence, head.message_count, head.position) == (2, 1, result.position)


def test_views_written_by_the_server_function_equal_a_rebuild(ledger: Ledger) -> None:
    """Heads and transcript rows from the one-shot path match a fold of the log exactly."""
    session_id = ledger.open_session(KEY)
    ledger.append_message(session_id, "user", "hi", token_count=3)
    ledger.append_message(
        session_id,
        "assistant",
        "",
        tool_calls=[{"id": "c1", "function": {"name": "grep", "arguments": "{}"}}],
        finish_reason="tool_calls",
        reasoning="look it up",
    )
    ledger.append_message(session_id, "tool", "result", tool_name="grep", tool_call_id="c1")
    ledger.retract_messages(session_id)
    ledger.append_message(session_id, "user", "again")
    assert verify(ledger.store, SessionsProjection()) == []
    assert [m.content for m in ledger.transcript(session_id)] == ["hi", "", "again"]


def test_a_closed_session_is_refused_without_a_write(ledger: Ledger) -> None:
    """The server function finds the session closed: SessionClosedError, nothing written."""
    session_id = ledger.open_session(KEY)
    ledger.close_session(session_id)
    before = count_events(ledger)
    with pytest.raises(SessionClosedError):
        ledger.append_message(session_id, "user", "late")
    assert count_events(ledger) == before


def test_a_missing_session_is_refused_without_a_write(ledger: Ledger) -> None:
    """No such session: SessionNotFoundError, nothing written."""
    before = count_events(ledger)
    with pytest.raises(SessionNotFoundError):
        ledger.append_message("no-such-session", "user", "hello")
    assert count_events(ledger) == before


def test_a_transaction_locks_each_stream_once(ledger: Ledger) -> None:
    """The general path (a batch) locks the session stream once, not again inside the append."""
    session_id = ledger.open_session(KEY)
    locks: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "pg_advisory_xact_lock" in statement:
            locks.append(statement)

    sa.event.listen(ledger.store.engine, "before_cursor_execute", count)
    try:
        ledger.append_messages(session_id, [{"role": "user", "content": str(i)} for i in range(3)])
    finally:
        sa.event.remove(ledger.store.engine, "before_cursor_execute", count)
    assert len(locks) == 1
    assert [m.content for m in ledger.transcript(session_id)] == ["0", "1", "2"]
