"""One message to an open session takes the shortest path each backend has, with the same result.

On PostgreSQL ``ledger_append_message`` (migration 0006) does what the general path does (lock,
state check, append, the ``sessions`` view's append-only writes) in ONE statement; on SQLite the
same steps run as plain SQL on the driver connection in one ``BEGIN IMMEDIATE`` transaction.
These tests pin that the shortcut is used, that it refuses what the general path refuses without
writing, and that the views it writes equal a rebuild from the log.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from ledger import DatabaseError, Ledger, SessionClosedError, SessionNotFoundError
from ledger.store._sqlite_lock import POLL_MS
from projections.rebuild import verify
from projections.sessions import SessionsProjection
from tests.helpers import count_events

KEY = "agent:main:telegram:dm:1"


@contextmanager
def _sqlalchemy_statements(ledger: Ledger) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    sa.event.listen(ledger.store.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(ledger.store.engine, "before_cursor_execute", count)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_one_message_is_one_statement_on_postgresql(ledger: Ledger) -> None:
    """``append_message`` to an open session sends exactly one statement (in autocommit)."""
    session_id = ledger.open_session(KEY)
    with _sqlalchemy_statements(ledger) as statements:
        result = ledger.append_message(session_id, "user", "hello")
    assert len(statements) == 1
    assert "ledger_append_message" in statements[0]
    assert result.sequence == 2
    head = ledger.head(session_id)
    assert head is not None
    assert (head.sequence, head.message_count, head.position) == (2, 1, result.position)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_one_message_is_one_driver_transaction_on_sqlite(ledger: Ledger) -> None:
    """On SQLite: no SQLAlchemy statement, one BEGIN IMMEDIATE ... COMMIT of five statements.

    The BEGIN is polled for with a short busy timeout, set before it and put back after it.
    """
    session_id = ledger.open_session(KEY)
    traced: list[str] = []

    def trace(dbapi_connection: sqlite3.Connection, *_: object) -> None:
        dbapi_connection.set_trace_callback(traced.append)

    sa.event.listen(ledger.store.engine, "checkout", trace)
    try:
        with _sqlalchemy_statements(ledger) as statements:
            result = ledger.append_message(session_id, "user", "hello")
    finally:
        sa.event.remove(ledger.store.engine, "checkout", trace)
    assert statements == []
    busy = ledger.store.settings.busy_timeout_ms
    assert traced[:3] == [
        f"PRAGMA busy_timeout = {POLL_MS}",
        "BEGIN IMMEDIATE",
        f"PRAGMA busy_timeout = {busy}",
    ]
    assert traced[-1] == "COMMIT"
    assert len(traced) == 9
    head = ledger.head(session_id)
    assert head is not None
    assert (head.sequence, head.message_count, head.position) == (2, 1, result.position)


def test_messages_from_many_threads_all_land_once(ledger: Ledger) -> None:
    """Threads appending through the shortcut at once: every message once, sequences dense."""
    session_id = ledger.open_session(KEY)

    def write(n: int) -> None:
        for i in range(25):
            ledger.append_message(session_id, "user", f"{n}-{i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    transcript = ledger.transcript(session_id)
    assert sorted(m.content for m in transcript) == sorted(
        f"{n}-{i}" for n in range(4) for i in range(25)
    )
    assert [m.sequence for m in transcript] == list(range(2, 102))
    assert verify(ledger.store, SessionsProjection()) == []


def test_views_written_by_the_shortcut_equal_a_rebuild(ledger: Ledger) -> None:
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
    """The shortcut finds the session closed: SessionClosedError, nothing written."""
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


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_transaction_locks_each_stream_once(ledger: Ledger) -> None:
    """The general path (a batch) locks the session stream once, not again inside the append."""
    session_id = ledger.open_session(KEY)
    with _sqlalchemy_statements(ledger) as statements:
        ledger.append_messages(session_id, [{"role": "user", "content": str(i)} for i in range(3)])
    assert len([s for s in statements if "pg_advisory_xact_lock" in s]) == 1
    assert [m.content for m in ledger.transcript(session_id)] == ["0", "1", "2"]


def _fail_transcript_inserts(ledger: Ledger) -> None:
    """Make every transcript insert fail inside the database (a trigger)."""
    with ledger.store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER fail_transcript BEFORE INSERT ON transcript_messages "
                "BEGIN SELECT RAISE(ABORT, 'transcript is read-only'); END"
            )
            return
        conn.exec_driver_sql(
            "CREATE FUNCTION fail_transcript() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'transcript is read-only'; END $$"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER fail_transcript BEFORE INSERT ON transcript_messages "
            "FOR EACH ROW EXECUTE FUNCTION fail_transcript()"
        )


def test_a_failure_inside_the_shortcut_is_a_database_error_and_writes_nothing(
    ledger: Ledger,
) -> None:
    """A driver error mid-append leaves as DatabaseError; the event and head roll back."""
    session_id = ledger.open_session(KEY)
    _fail_transcript_inserts(ledger)
    before = count_events(ledger)
    with pytest.raises(DatabaseError, match="transcript is read-only"):
        ledger.append_message(session_id, "user", "hello")
    assert count_events(ledger) == before
    head = ledger.head(session_id)
    assert head is not None
    assert (head.sequence, head.message_count) == (1, 0)
