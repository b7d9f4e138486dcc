"""Contract tests of ``EventStore``: the same suite runs on SQLite and PostgreSQL.

The store here has NO inline projections (the ``log_store`` fixture): what the log promises
must hold whatever views are installed, as eventsourcing's recorder test case checks a recorder
alone. Each test states the behaviour it pins in its name and opening sentence, as message-db's
test scripts do; builders live in ``tests/controls.py``.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from ledger import (
    DuplicateEventError,
    EventStore,
    IdempotencyConflictError,
    StreamAppend,
    WrongExpectedVersionError,
)
from tests import controls
from tests.helpers import count_events


@pytest.fixture
def store(log_store: EventStore) -> EventStore:
    """The log alone, on each backend."""
    assert log_store.inline_projections == []
    return log_store


def test_append_then_read_stream_returns_the_same_events_in_order(store: EventStore) -> None:
    """Events come back from their stream as they went in, with sequences from 1."""
    written = [controls.opened(), *controls.messages(3)]
    store.append("session-a", written)
    read = list(store.read_stream("session-a"))
    assert [r.event for r in read] == written
    assert [r.sequence for r in read] == [1, 2, 3, 4]
    assert all(r.stream == "session-a" and r.writer == "test-writer" for r in read)


def test_append_returns_the_head_sequence_and_each_position(store: EventStore) -> None:
    """The result names the new head and every event's sequence and position."""
    first = store.append("session-a", controls.messages(2))
    second = store.append("session-b", controls.messages(1, "b"))
    third = store.append("session-a", controls.messages(2))
    assert (first.sequence, first.sequences) == (2, (1, 2))
    assert third.sequences == (3, 4)
    assert first.positions[0] < first.positions[1] < second.position < third.positions[0]
    assert third.position == third.positions[-1]


def test_recorded_metadata_has_a_uuid_event_id_utc_time_and_schema_version(
    store: EventStore,
) -> None:
    """Every stored event carries event_id, writer, recorded_at (UTC) and schema_version."""
    before = dt.datetime.now(dt.UTC)
    result = store.append("session-a", [controls.opened()])
    (record,) = store.read_stream("session-a")
    assert isinstance(record.event_id, uuid.UUID)
    assert record.event_id == result.event_ids[0]
    assert record.recorded_at.tzinfo is not None
    assert before - dt.timedelta(seconds=5) <= record.recorded_at <= dt.datetime.now(dt.UTC)
    assert record.schema_version == 1
    assert record.type == "SessionOpened"


def test_read_stream_from_sequence_skips_earlier_events(store: EventStore) -> None:
    """``from_sequence`` starts the read at that sequence."""
    store.append("session-a", controls.messages(5))
    assert [r.sequence for r in store.read_stream("session-a", from_sequence=4)] == [4, 5]


def test_read_stream_of_a_missing_stream_is_empty(store: EventStore) -> None:
    """A stream without events reads as empty and has head 0."""
    assert list(store.read_stream("session-none")) == []
    assert store.head_sequence("session-none") == 0


def test_read_stream_pages_through_batches(store: EventStore) -> None:
    """Reading in small batches yields every event exactly once."""
    store.append("session-a", controls.messages(25))
    assert [r.sequence for r in store.read_stream("session-a", batch_size=4)] == list(range(1, 26))


def test_read_all_yields_every_event_in_position_order(store: EventStore) -> None:
    """The log reads back across streams in ascending position."""
    for i in range(5):
        store.append(f"session-{i % 2}", controls.messages(3, str(i % 2)))
    positions = [r.position for r in store.read_all(batch_size=4)]
    assert len(positions) == 15
    assert positions == sorted(positions)


def test_read_all_after_position_and_limit(store: EventStore) -> None:
    """``after_position`` is exclusive and ``limit`` bounds the count."""
    result = store.append("session-a", controls.messages(10))
    after = result.positions[3]
    read = list(store.read_all(after_position=after, limit=3, batch_size=2))
    assert [r.position for r in read] == list(result.positions[4:7])


def test_read_all_is_lazy(store: EventStore) -> None:
    """``read_all`` runs no statement until iterated, and then reads one batch at a time."""
    store.append("session-a", controls.messages(5))
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        iterator = store.read_all(batch_size=2)
        assert statements == [], "read_all ran a statement before it was iterated"
        assert next(iterator).sequence == 1
        after_first = len(statements)
        assert next(iterator).sequence == 2  # still the first batch: no new statement
        assert len(statements) == after_first
        assert next(iterator).sequence == 3  # the second batch
        assert len(statements) > after_first
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)


def test_expected_sequence_zero_requires_a_new_stream(store: EventStore) -> None:
    """``expected_sequence=0`` means the stream must not exist yet."""
    store.append("session-a", [controls.opened()], expected_sequence=0)
    with pytest.raises(
        WrongExpectedVersionError,
        match=r"^Wrong expected version for stream 'session-a': expected 0, actual 1$",
    ):
        store.append("session-a", [controls.opened()], expected_sequence=0)


def test_wrong_expected_sequence_raises_with_stream_expected_actual(store: EventStore) -> None:
    """A mismatch names the stream and both numbers, and writes nothing."""
    store.append("session-a", controls.messages(3))
    with pytest.raises(WrongExpectedVersionError) as info:
        store.append("session-a", controls.messages(1), expected_sequence=1)
    assert (info.value.stream, info.value.expected, info.value.actual) == ("session-a", 1, 3)
    assert str(info.value) == "Wrong expected version for stream 'session-a': expected 1, actual 3"
    assert store.head_sequence("session-a") == 3
    assert count_events(store) == 3


def test_matching_expected_sequence_appends(store: EventStore) -> None:
    """The head the writer expects lets the append through."""
    store.append("session-a", controls.messages(2))
    assert store.append("session-a", controls.messages(1), expected_sequence=2).sequence == 3


def test_reappending_stored_event_ids_returns_the_original_result(store: EventStore) -> None:
    """An append whose event_ids are stored returns the first result and writes nothing."""
    ids = [uuid.uuid4(), uuid.uuid4()]
    events = controls.messages(2)
    first = store.append("session-a", events, event_ids=ids)
    store.append("session-a", controls.messages(1))
    again = store.append("session-a", events, event_ids=[str(i) for i in ids])
    assert again.duplicate
    assert not first.duplicate
    assert (again.sequences, again.positions) == (first.sequences, first.positions)
    assert count_events(store) == 3


def test_reappending_is_idempotent_even_with_a_stale_expected_sequence(store: EventStore) -> None:
    """A retried append (same ids, same expected_sequence) succeeds as the original did."""
    ids = [uuid.uuid4()]
    events = controls.messages(1)
    first = store.append("session-a", events, expected_sequence=0, event_ids=ids)
    retry = store.append("session-a", events, expected_sequence=0, event_ids=ids)
    assert retry.position == first.position
    assert retry.duplicate


def test_reappending_a_stored_event_id_with_different_content_is_a_conflict(
    store: EventStore,
) -> None:
    """The same event_id with another event raises IdempotencyConflictError; nothing written."""
    ids = [uuid.uuid4()]
    store.append("session-a", [controls.message("a", "first")], event_ids=ids)
    before = count_events(store)
    with pytest.raises(IdempotencyConflictError, match="different content"):
        store.append("session-a", [controls.message("a", "second")], event_ids=ids)
    assert count_events(store) == before


def test_event_ids_stored_in_another_stream_are_refused(store: EventStore) -> None:
    """Reusing an event_id for a different stream is a typed error, nothing written."""
    ids = [uuid.uuid4()]
    store.append("session-a", controls.messages(1), event_ids=ids)
    with pytest.raises(DuplicateEventError, match="already stored"):
        store.append("session-b", controls.messages(1, "b"), event_ids=ids)
    assert count_events(store) == 1


def test_append_streams_writes_every_stream_in_one_transaction(store: EventStore) -> None:
    """A multi-stream append writes all of its streams with consecutive positions."""
    results = store.append_streams(
        [
            StreamAppend(stream="session-a", events=[controls.opened()], expected_sequence=0),
            StreamAppend(stream="key-cli:local", events=[controls.titled()]),
        ]
    )
    assert [r.sequence for r in results] == [1, 1]
    assert results[1].position == results[0].position + 1


def test_append_streams_is_all_or_nothing(store: EventStore) -> None:
    """One stream's expected_sequence mismatch rejects the whole multi-stream append."""
    store.append("session-b", controls.messages(2, "b"))
    with pytest.raises(WrongExpectedVersionError, match="'session-b': expected 0, actual 2"):
        store.append_streams(
            [
                StreamAppend(stream="session-a", events=[controls.opened()]),
                StreamAppend(
                    stream="session-b", events=[controls.titled("b")], expected_sequence=0
                ),
            ]
        )
    assert store.head_sequence("session-a") == 0
    assert count_events(store) == 2


def test_append_streams_may_touch_one_stream_twice(store: EventStore) -> None:
    """Two parts for the same stream get consecutive sequences."""
    results = store.append_streams(
        [
            StreamAppend(stream="session-a", events=controls.messages(2)),
            StreamAppend(stream="session-a", events=controls.messages(1)),
        ]
    )
    assert [r.sequences for r in results] == [(1, 2), (3,)]


def test_empty_append_writes_nothing_and_reports_the_head(store: EventStore) -> None:
    """Appending no events is allowed and leaves the log untouched."""
    store.append("session-a", controls.messages(2))
    result = store.append("session-a", [])
    assert result.sequence == 2
    assert result.sequences == ()
    assert count_events(store) == 2


def test_sequences_stay_gap_free_after_a_rejected_append(store: EventStore) -> None:
    """A rejected append leaves no hole: the next event gets the next sequence."""
    store.append("session-a", controls.messages(1))
    with pytest.raises(WrongExpectedVersionError):
        store.append("session-a", controls.messages(1), expected_sequence=5)
    assert store.append("session-a", controls.messages(1)).sequence == 2


def test_head_sequence_and_last_position(store: EventStore) -> None:
    """``head_sequence`` tracks the stream; ``last_position`` the log."""
    result = store.append("session-a", controls.messages(3))
    assert store.head_sequence("session-a") == 3
    assert store.last_position() == result.position
