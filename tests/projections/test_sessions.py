"""The ``sessions`` inline projection: every event type's effect on heads and the transcript.

Each test appends through the public ``EventStore`` and reads back through ``SessionViews``, on
SQLite and PostgreSQL. The projection runs inside the append transaction, so every read here
sees the append that precedes it (read-your-writes) without any runner.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ledger import EventStore, StreamAppend
from ledger.errors import InvalidArgumentError, LedgerError
from ledger.schema import events as events_table
from ledger.views import SessionViews
from tests import controls


@pytest.fixture
def views(store: EventStore) -> SessionViews:
    """Read access to the views of the ``store`` under test."""
    return SessionViews(store.engine)


def test_session_opened_fills_the_head(store: EventStore, views: SessionViews) -> None:
    """An opened session's head carries its key, source, user, model, title and parent."""
    result = store.append(
        "session-a",
        [
            controls.opened(
                "a",
                "telegram:1:t",
                source="telegram",
                user_id="u-7",
                model="gpt-x",
                title="First",
                parent_session_id="p",
            )
        ],
    )
    head = views.head("a")
    assert head is not None
    assert (head.session_key, head.source, head.user_id) == ("telegram:1:t", "telegram", "u-7")
    assert (head.model, head.title, head.parent_session_id) == ("gpt-x", "First", "p")
    assert (head.state, head.sequence, head.message_count, head.token_count) == ("open", 1, 0, 0)
    assert (head.position, head.writer) == (result.position, "test-writer")
    assert head.created_at == head.updated_at


def test_session_opened_without_optional_fields_leaves_them_empty(
    store: EventStore, views: SessionViews
) -> None:
    """Optional fields of ``SessionOpened`` that were not given read back as ``None``."""
    store.append("session-a", [controls.opened()])
    head = views.head("a")
    assert head is not None
    assert (head.user_id, head.model, head.title, head.parent_session_id) == (None,) * 4


def test_message_appended_raises_sequence_and_message_count(
    store: EventStore, views: SessionViews
) -> None:
    """Each message moves the head sequence and the live message count up by one."""
    store.append("session-a", [controls.opened()])
    store.append("session-a", controls.messages(2))
    result = store.append("session-a", controls.messages(1))
    head = views.head("a")
    assert head is not None
    assert (head.sequence, head.message_count) == (4, 3)
    assert head.position == result.position
    assert views.head_sequence("a") == 4


def test_message_token_counts_are_summed_on_the_head(
    store: EventStore, views: SessionViews
) -> None:
    """The head's token_count is the sum of its messages' counts; a missing count adds 0."""
    store.append(
        "session-a",
        [
            controls.opened(),
            controls.message(token_count=10),
            controls.message(token_count=None),
            controls.message(token_count=32),
        ],
    )
    head = views.head("a")
    assert head is not None
    assert head.token_count == 42


def test_transcript_lists_messages_in_sequence_order_with_their_fields(
    store: EventStore, views: SessionViews
) -> None:
    """The transcript returns each message with its role, content, sequence and metadata."""
    first = controls.message(content="question")
    second = controls.message(
        role="assistant", content="answer", finish_reason="stop", reasoning="because", token_count=5
    )
    result = store.append("session-a", [controls.opened(), first, second])
    transcript = views.transcript("a")
    assert [m.message_id for m in transcript] == [first.message_id, second.message_id]
    assert [m.sequence for m in transcript] == [2, 3]
    assert [m.position for m in transcript] == list(result.positions[1:])
    answer = transcript[1]
    assert (answer.role, answer.content, answer.finish_reason) == ("assistant", "answer", "stop")
    assert (answer.reasoning, answer.token_count, answer.writer) == ("because", 5, "test-writer")
    assert not answer.retracted


def test_tool_calls_round_trip_through_the_transcript(
    store: EventStore, views: SessionViews
) -> None:
    """A message's tool_calls, tool name and call id read back exactly as written."""
    calls = [
        {"id": "call-1", "type": "function", "function": {"name": "search", "arguments": "{}"}},
        {"id": "call-2", "nested": {"list": [1, 2.5, None, True], "text": "ünïcode"}},
    ]
    request = controls.message(role="assistant", content="", tool_calls=calls)
    reply = controls.message(role="tool", content="42", tool_name="search", tool_call_id="call-1")
    store.append("session-a", [controls.opened(), request, reply])
    sent, received = views.transcript("a")
    assert sent.tool_calls == calls
    assert (sent.tool_name, sent.tool_call_id) == (None, None)
    assert received.tool_calls is None
    assert (received.tool_name, received.tool_call_id) == ("search", "call-1")


def test_retraction_lowers_message_count_while_sequence_still_rises(
    store: EventStore, views: SessionViews
) -> None:
    """Undo takes messages out of the live count, yet the head sequence keeps growing."""
    one, two, three = controls.messages(3)
    store.append("session-a", [controls.opened(), one, two, three])
    store.append("session-a", [controls.retracted("a", two.message_id, three.message_id)])
    head = views.head("a")
    assert head is not None
    assert (head.sequence, head.message_count) == (5, 1)


def test_retracted_messages_leave_the_transcript_but_show_when_included(
    store: EventStore, views: SessionViews
) -> None:
    """Retracted messages vanish from transcript() and reappear, flagged, with include_retracted."""
    one, two, three = controls.messages(3)
    store.append("session-a", [controls.opened(), one, two, three])
    undo = store.append("session-a", [controls.retracted("a", two.message_id)])
    assert [m.message_id for m in views.transcript("a")] == [one.message_id, three.message_id]
    everything = views.transcript("a", include_retracted=True)
    assert [(m.message_id, m.retracted) for m in everything] == [
        (one.message_id, False),
        (two.message_id, True),
        (three.message_id, False),
    ]
    with store.engine.connect() as conn:
        marked = conn.execute(
            sa.text("SELECT retracted_position FROM transcript_messages WHERE message_id = :m"),
            {"m": two.message_id},
        ).scalar_one()
    assert marked == undo.position


def test_retracting_an_unknown_message_id_does_not_lower_the_count(
    store: EventStore, views: SessionViews
) -> None:
    """A retraction naming ids the session never had changes the count by nothing."""
    store.append("session-a", [controls.opened(), *controls.messages(2)])
    store.append("session-a", [controls.retracted("a", "no-such-message")])
    head = views.head("a")
    assert head is not None
    assert (head.sequence, head.message_count) == (4, 2)


def test_retracting_an_already_retracted_message_does_not_lower_the_count_again(
    store: EventStore, views: SessionViews
) -> None:
    """Retracting the same message twice lowers the count only the first time."""
    one, two = controls.messages(2)
    store.append("session-a", [controls.opened(), one, two])
    store.append("session-a", [controls.retracted("a", one.message_id)])
    store.append("session-a", [controls.retracted("a", one.message_id, one.message_id)])
    head = views.head("a")
    assert head is not None
    assert (head.sequence, head.message_count) == (5, 1)


def test_retracting_a_message_of_another_session_does_not_touch_either(
    store: EventStore, views: SessionViews
) -> None:
    """A retraction in session a naming a message of session b leaves both counts alone."""
    theirs = controls.message("b")
    store.append("session-b", [controls.opened("b"), theirs])
    store.append("session-a", [controls.opened("a"), controls.message("a")])
    store.append("session-a", [controls.retracted("a", theirs.message_id)])
    a, b = views.head("a"), views.head("b")
    assert a is not None
    assert b is not None
    assert (a.message_count, b.message_count) == (1, 1)
    assert [m.message_id for m in views.transcript("b")] == [theirs.message_id]


def test_session_titled_sets_the_title(store: EventStore, views: SessionViews) -> None:
    """A SessionTitled replaces the title and moves the sequence."""
    store.append("session-a", [controls.opened(title="old")])
    store.append("session-a", [controls.titled("a", "new title")])
    head = views.head("a")
    assert head is not None
    assert (head.title, head.sequence, head.message_count) == ("new title", 2, 0)


def test_session_closed_marks_the_head_closed(store: EventStore, views: SessionViews) -> None:
    """A SessionClosed turns the head's state to closed and keeps its messages."""
    store.append("session-a", [controls.opened(), *controls.messages(2)])
    store.append("session-a", [controls.closed("a")])
    head = views.head("a")
    assert head is not None
    assert (head.state, head.sequence, head.message_count) == ("closed", 4, 2)
    assert len(views.transcript("a")) == 2


def test_head_of_an_unknown_session_is_none(store: EventStore, views: SessionViews) -> None:
    """Asking for a session nobody opened returns None, not an error."""
    store.append("session-a", [controls.opened()])
    assert views.head("nope") is None
    assert views.head_sequence("nope") is None
    assert views.transcript("nope") == []


def test_head_follows_the_writer_of_the_latest_event(
    migrated_url: str, store: EventStore, views: SessionViews
) -> None:
    """The head names the writer of the session's latest event, and keeps created_at."""
    store.append("session-a", [controls.opened()])
    created = views.head("a")
    other = EventStore.open(migrated_url, writer="other-writer", settings=store.settings)
    try:
        other.append("session-a", controls.messages(1))
    finally:
        other.close()
    head = views.head("a")
    assert head is not None
    assert created is not None
    assert head.writer == "other-writer"
    assert head.created_at == created.created_at
    assert head.updated_at > created.updated_at


def test_events_on_a_key_stream_do_not_create_a_session_head(
    store: EventStore, views: SessionViews
) -> None:
    """Only ``session-*`` streams feed the heads: a switch on a key stream creates no head."""
    store.append("key-cli:local", [controls.switched("cli:local", "a")])
    assert views.head("a") is None
    assert views.sessions() == []


def _open_many(store: EventStore) -> None:
    """Four sessions over two keys and two sources; c closed; updated in the order a, b, c, d."""
    store.append("session-a", [controls.opened("a", "k1", source="cli")])
    store.append("session-b", [controls.opened("b", "k1", source="telegram")])
    store.append("session-c", [controls.opened("c", "k2", source="telegram")])
    store.append("session-d", [controls.opened("d", "k2", source="cli")])
    store.append("session-c", [controls.closed("c")])


def test_sessions_filter_by_key(store: EventStore, views: SessionViews) -> None:
    """``session_key=`` keeps only that key's sessions."""
    _open_many(store)
    assert {h.session_id for h in views.sessions(session_key="k1")} == {"a", "b"}
    assert views.sessions(session_key="missing") == []


def test_sessions_filter_by_source(store: EventStore, views: SessionViews) -> None:
    """``source=`` keeps only sessions from that platform."""
    _open_many(store)
    assert {h.session_id for h in views.sessions(source="telegram")} == {"b", "c"}


def test_sessions_filter_by_state(store: EventStore, views: SessionViews) -> None:
    """``state=`` separates open from closed sessions, and filters combine."""
    _open_many(store)
    assert [h.session_id for h in views.sessions(state="closed")] == ["c"]
    assert {h.session_id for h in views.sessions(state="open")} == {"a", "b", "d"}
    assert [h.session_id for h in views.sessions(source="telegram", state="open")] == ["b"]


def test_sessions_are_listed_most_recently_updated_first(
    store: EventStore, views: SessionViews
) -> None:
    """The catalog orders sessions by their latest event, newest first."""
    _open_many(store)
    assert [h.session_id for h in views.sessions()] == ["c", "d", "b", "a"]
    store.append("session-a", controls.messages(1, "a"))
    assert [h.session_id for h in views.sessions()] == ["a", "c", "d", "b"]


def test_sessions_page_with_limit_and_offset(store: EventStore, views: SessionViews) -> None:
    """Pages of the catalog partition it without overlap, in the same order."""
    _open_many(store)
    first = [h.session_id for h in views.sessions(limit=3)]
    second = [h.session_id for h in views.sessions(limit=3, offset=3)]
    assert first == ["c", "d", "b"]
    assert second == ["a"]
    assert views.sessions(offset=10) == []


@pytest.mark.parametrize("limit", [0, -1, 10_001])
def test_sessions_reject_a_limit_out_of_range(
    store: EventStore, views: SessionViews, limit: int
) -> None:
    """A page size outside 1..10000 raises InvalidArgumentError naming the limit."""
    with pytest.raises(InvalidArgumentError, match=rf"Invalid limit {limit}"):
        views.sessions(limit=limit)


def test_sessions_reject_a_negative_offset(store: EventStore, views: SessionViews) -> None:
    """A negative offset raises InvalidArgumentError, which is also a ValueError."""
    with pytest.raises(ValueError, match="Invalid offset -1"):
        views.sessions(offset=-1)


def test_one_append_with_messages_and_a_retraction_of_one_folds_correctly(
    store: EventStore, views: SessionViews
) -> None:
    """Messages and a retraction of one of them in the SAME append fold in log order."""
    one, two, three = controls.messages(3)
    store.append(
        "session-a",
        [controls.opened(), one, two, controls.retracted("a", one.message_id), three],
    )
    head = views.head("a")
    assert head is not None
    assert (head.sequence, head.message_count) == (5, 2)
    assert [m.message_id for m in views.transcript("a")] == [two.message_id, three.message_id]
    assert [m.retracted for m in views.transcript("a", include_retracted=True)] == [
        True,
        False,
        False,
    ]


def test_one_append_to_two_sessions_folds_each_head(store: EventStore, views: SessionViews) -> None:
    """A multi-stream append moves each session's head by its own events only."""
    store.append_streams(
        [
            StreamAppend(stream="session-a", events=[controls.opened("a"), controls.message("a")]),
            StreamAppend(stream="session-b", events=[controls.opened("b")]),
            StreamAppend(stream="key-cli:local", events=[controls.switched("cli:local", "b")]),
        ]
    )
    a, b = views.head("a"), views.head("b")
    assert a is not None
    assert b is not None
    assert (a.sequence, a.message_count, b.sequence, b.message_count) == (2, 1, 1, 0)


def test_a_reused_message_id_is_refused_and_nothing_is_written(
    store: EventStore, views: SessionViews
) -> None:
    """Appending a message id the session already has raises a LedgerError and writes nothing."""
    first = controls.message(message_id="dup")
    store.append("session-a", [controls.opened(), first])
    with pytest.raises(LedgerError):
        store.append("session-a", [controls.message(message_id="dup", content="again")])
    head = views.head("a")
    assert head is not None
    assert (head.sequence, head.message_count) == (2, 1)
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(events_table)).scalar_one()
    assert stored == 2
    assert store.head_sequence("session-a") == 2
