"""Driver errors become the ledger's own, the same way on SQLite and PostgreSQL.

Each broken constraint is provoked for real (a raw statement that breaks it, or an append whose
head claim was made stale, as a writer bypassing the stream locks would), and each test checks
the constraint name the error carries and the typed error the store turns it into; a dead
connection and a file that is not a database become a :class:`DatabaseError` naming the backend.
No SQLAlchemy or driver exception may come out of the public API.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ledger import (
    DatabaseError,
    DuplicateEventError,
    EventStore,
    InvalidEventError,
    Ledger,
    StreamAppend,
    WrongExpectedVersionError,
)
from ledger.config import Settings
from ledger.schema import events, transcript_messages
from ledger.store import translate_error
from ledger.store._errors import append_error
from tests import controls


def _event_row(stream: str, sequence: int, event_id: uuid.UUID | None = None) -> dict[str, Any]:
    return {
        "stream": stream,
        "sequence": sequence,
        "type": "MessageAppended",
        "data": b"{}",
        "event_id": event_id or uuid.uuid4(),
        "writer": "raw",
        "recorded_at": dt.datetime.now(dt.UTC),
        "schema_version": 1,
    }


def _violation(store: EventStore, table: sa.Table, row: dict[str, Any]) -> DatabaseError:
    with pytest.raises(DatabaseError) as raised, store.transaction() as conn:
        conn.execute(table.insert().values(**row))
    return raised.value


def test_a_repeated_stream_sequence_names_its_constraint(store: EventStore) -> None:
    """Inserting a taken (stream, sequence) is a DatabaseError naming uq_events_stream_sequence."""
    store.append("s-1", [controls.message("x")])
    error = _violation(store, events, _event_row("s-1", 1))
    assert error.constraint == "uq_events_stream_sequence"
    assert error.backend in ("SQLite", "PostgreSQL")


def test_a_repeated_stream_sequence_means_wrong_expected_version(store: EventStore) -> None:
    """The (stream, sequence) violation maps to WrongExpectedVersionError with both numbers."""
    store.append("s-1", [controls.message("x")])
    error = _violation(store, events, _event_row("s-1", 1))
    part = StreamAppend(stream="s-1", events=[controls.message("x")], expected_sequence=0)
    typed = append_error(error, [part], {"s-1": 1})
    assert isinstance(typed, WrongExpectedVersionError)
    assert str(typed) == "Wrong expected version for stream 's-1': expected 0, actual 1"


def test_an_append_losing_a_race_past_the_lock_is_wrong_expected_version(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An append whose head claim went stale hits the unique index: WrongExpectedVersionError."""
    store.append("s-1", [controls.message("x")])
    real_claim = store._path.claim

    def stale_claim(conn: sa.Connection, stream: str, count: int) -> Any:
        head, archived = real_claim(conn, stream, count)
        return head - 1, archived  # as if another writer's event were not there

    monkeypatch.setattr(store._path, "claim", stale_claim)
    monkeypatch.setattr(store._path, "append_one", lambda *_: None)
    with pytest.raises(WrongExpectedVersionError, match=r"'s-1': expected any, actual 1$"):
        store.append("s-1", [controls.message("x")])
    monkeypatch.undo()
    assert [r.sequence for r in store.read_stream("s-1")] == [1]


def test_a_repeated_event_id_names_its_constraint_and_is_a_duplicate(store: EventStore) -> None:
    """A stored event_id inserted again: uq_events_event_id, then DuplicateEventError."""
    stored = store.append("s-1", [controls.message("x")]).event_ids[0]
    error = _violation(store, events, _event_row("s-2", 1, stored))
    assert error.constraint == "uq_events_event_id"
    part = StreamAppend(stream="s-2", events=[controls.message("x")])
    assert isinstance(append_error(error, [part]), DuplicateEventError)


def test_a_repeated_message_id_names_the_transcript_key(store: EventStore) -> None:
    """A message id used twice in a session breaks pk_transcript_messages: InvalidEventError."""
    store.append("session-a", [controls.opened("a"), controls.message("a", message_id="m1")])
    with store.engine.connect() as conn:
        row = dict(conn.execute(sa.select(transcript_messages)).mappings().one())
    error = _violation(store, transcript_messages, row)
    assert error.constraint == "pk_transcript_messages"
    typed = append_error(error, [StreamAppend(stream="session-a", events=[])])
    assert isinstance(typed, InvalidEventError)


def test_translate_error_is_the_public_one_step_mapping(store: EventStore) -> None:
    """``translate_error`` maps a raw SQLAlchemy error exactly as the engine hook does."""
    engine = sa.create_engine(store.engine.url)  # a plain engine: no ledger hook on it
    try:
        store.append("s-1", [controls.message("x")])
        with pytest.raises(sa.exc.IntegrityError) as raised, engine.begin() as conn:
            conn.execute(events.insert().values(**_event_row("s-1", 1)))
    finally:
        engine.dispose()
    typed = translate_error(raised.value)
    assert isinstance(typed, DatabaseError)
    assert typed.constraint == "uq_events_stream_sequence"


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_dropped_postgresql_connection_is_a_database_error_naming_postgresql(
    migrated_url: str, settings: Settings
) -> None:
    """The server ending a connection mid-session surfaces as DatabaseError('PostgreSQL …')."""
    with Ledger.open(migrated_url, settings=settings) as ledger:
        session_id = ledger.open_session("k")
        with ledger.store.engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            with pytest.raises(DatabaseError, match=r"^PostgreSQL error: ") as raised:
                conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        assert raised.value.backend == "PostgreSQL"
        assert ledger.head(session_id) is not None  # the pool recovers with a new connection


def test_a_file_that_is_not_a_database_is_a_database_error_naming_sqlite(tmp_path: Path) -> None:
    """Opening a non-database file fails with DatabaseError('SQLite …'), never sqlite3's own."""
    path = tmp_path / "not-a.db"
    path.write_bytes(b"this is not an SQLite file" * 100)
    with pytest.raises(DatabaseError, match=r"^SQLite error: file is not a database$"):
        EventStore.open(f"sqlite:///{path}", settings=Settings.from_env({}))
