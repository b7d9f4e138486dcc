"""Contract tests of ``Ledger``'s message writes, on SQLite and PostgreSQL.

One behaviour per test: what ``append_message``, ``append_messages`` and ``retract_messages``
do to the log, the head and the transcript, each error path's typed exception (and that it
wrote nothing).
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from ledger import (
    AppendResult,
    EventTooLargeError,
    InvalidArgumentError,
    InvalidEventError,
    Ledger,
    LedgerError,
    MessagesRetracted,
    SessionClosedError,
    SessionNotFoundError,
    WrongExpectedVersionError,
)
from ledger.config import Settings
from ledger.facade import session_stream
from tests.gateway.support import KEY, head_of
from tests.helpers import count_events

# -- append_message ----------------------------------------------------------------------------


def test_append_message_returns_the_new_session_sequence(ledger: Ledger) -> None:
    """The result names the session stream, the new head sequence and a position."""
    session_id = ledger.open_session(KEY)
    result = ledger.append_message(session_id, "user", "hello")
    assert isinstance(result, AppendResult)
    assert (result.stream, result.sequence, result.sequences) == (
        session_stream(session_id),
        2,
        (2,),
    )
    assert result.position > 0
    assert not result.duplicate


def test_append_message_moves_the_head_sequence_and_message_count(ledger: Ledger) -> None:
    """Each message adds one to both the head ``sequence`` and ``message_count``."""
    session_id = ledger.open_session(KEY)
    ledger.append_message(session_id, "user", "one")
    ledger.append_message(session_id, "assistant", "two")
    head = ledger.head(session_id)
    assert head is not None
    assert (head.sequence, head.message_count, head.writer) == (3, 2, "gateway-1")


@pytest.mark.parametrize("role", ["user", "assistant", "tool", "system"])
def test_append_message_accepts_each_chat_role(ledger: Ledger, role: str) -> None:
    """Every chat role is stored and read back in the transcript."""
    session_id = ledger.open_session(KEY)
    ledger.append_message(session_id, role, f"a {role} message")
    (message,) = ledger.transcript(session_id)
    assert (message.role, message.content) == (role, f"a {role} message")


def test_append_message_with_an_invalid_role_names_the_path(ledger: Ledger) -> None:
    """An unknown role is an ``InvalidEventError`` (a ``ValueError``) at ``$.role``."""
    session_id = ledger.open_session(KEY)
    before = count_events(ledger)
    with pytest.raises(InvalidEventError, match=r"\$\.role") as caught:
        ledger.append_message(session_id, "robot", "hello")
    assert isinstance(caught.value, ValueError)
    assert caught.value.path == "$.role"
    assert count_events(ledger) == before


@pytest.mark.parametrize("content", ["", "   \n"])
def test_append_message_with_empty_content_raises_invalid_argument(
    ledger: Ledger, content: str
) -> None:
    """A message without text (and without tool calls) is refused and nothing is written."""
    session_id = ledger.open_session(KEY)
    before = count_events(ledger)
    with pytest.raises(InvalidArgumentError, match="Invalid content"):
        ledger.append_message(session_id, "user", content)
    assert count_events(ledger) == before


def test_append_message_over_the_size_limit_raises_event_too_large(
    migrated_url: str, settings: Settings
) -> None:
    """Content that encodes above ``max_event_bytes`` is an ``EventTooLargeError``, unwritten."""
    small = dataclasses.replace(settings, max_event_bytes=2000)
    with Ledger.open(migrated_url, writer="gateway-1", settings=small) as ledger:
        session_id = ledger.open_session(KEY)
        ledger.append_message(session_id, "user", "x" * 1000)
        before = count_events(ledger)
        with pytest.raises(EventTooLargeError, match="exceeds the limit of 2000 bytes"):
            ledger.append_message(session_id, "user", "x" * 3000)
        assert count_events(ledger) == before
        assert head_of(ledger, session_id) == (2, 1)


def test_append_message_to_an_unknown_session_raises_session_not_found(ledger: Ledger) -> None:
    """Appending to a session never opened is a ``SessionNotFoundError`` with no writes."""
    with pytest.raises(SessionNotFoundError, match="'ghost' does not exist"):
        ledger.append_message("ghost", "user", "hello")
    assert count_events(ledger) == 0


def test_append_message_to_a_closed_session_raises_session_closed(ledger: Ledger) -> None:
    """Appending to a closed session is a ``SessionClosedError`` with no writes."""
    session_id = ledger.open_session(KEY)
    ledger.close_session(session_id)
    before = count_events(ledger)
    with pytest.raises(SessionClosedError, match="is closed"):
        ledger.append_message(session_id, "user", "hello")
    assert count_events(ledger) == before


def test_append_message_with_a_wrong_expected_sequence_raises(ledger: Ledger) -> None:
    """A stale ``expected_sequence`` is a ``WrongExpectedVersionError`` naming both numbers."""
    session_id = ledger.open_session(KEY)
    ledger.append_message(session_id, "user", "one", expected_sequence=1)
    before = count_events(ledger)
    with pytest.raises(WrongExpectedVersionError, match="expected 1, actual 2") as caught:
        ledger.append_message(session_id, "user", "two", expected_sequence=1)
    assert (caught.value.stream, caught.value.expected, caught.value.actual) == (
        session_stream(session_id),
        1,
        2,
    )
    assert count_events(ledger) == before
    assert head_of(ledger, session_id) == (2, 1)


def test_append_message_with_the_same_event_id_is_stored_once(ledger: Ledger) -> None:
    """Re-sending an ``event_id`` returns the original result flagged duplicate, writing nothing."""
    session_id = ledger.open_session(KEY)
    event_id = uuid.uuid4()
    first = ledger.append_message(session_id, "user", "hello", event_id=event_id)
    before = count_events(ledger)
    again = ledger.append_message(session_id, "user", "hello", event_id=str(event_id))
    assert again.duplicate
    assert (again.sequence, again.position, again.event_ids) == (
        first.sequence,
        first.position,
        (event_id,),
    )
    assert count_events(ledger) == before
    assert head_of(ledger, session_id) == (2, 1)


def test_append_message_with_a_malformed_event_id_raises_invalid_argument(ledger: Ledger) -> None:
    """An ``event_id`` that is not a UUID is a typed ``InvalidArgumentError``, with no writes."""
    session_id = ledger.open_session(KEY)
    before = count_events(ledger)
    with pytest.raises(
        InvalidArgumentError, match=r"^Invalid event_id 'not-a-uuid': expected a UUID$"
    ):
        ledger.append_message(session_id, "user", "hello", event_id="not-a-uuid")
    assert count_events(ledger) == before


def test_append_message_with_a_reused_message_id_raises_a_typed_value_error(
    ledger: Ledger,
) -> None:
    """A ``message_id`` already in the session is refused as bad input, and nothing is written."""
    session_id = ledger.open_session(KEY)
    ledger.append_message(session_id, "user", "first", message_id="m-1")
    before = count_events(ledger)
    with pytest.raises(LedgerError, match="m-1") as caught:
        ledger.append_message(session_id, "user", "second", message_id="m-1")
    assert isinstance(caught.value, ValueError), type(caught.value).__mro__
    assert count_events(ledger) == before


def test_tool_fields_round_trip_through_the_transcript(ledger: Ledger) -> None:
    """``tool_calls``, ``tool_call_id``, ``tool_name`` and ``token_count`` read back unchanged."""
    session_id = ledger.open_session(KEY)
    calls = [{"id": "call-1", "type": "function", "function": {"name": "ls", "arguments": "{}"}}]
    ledger.append_message(session_id, "assistant", "", tool_calls=calls, token_count=12)
    ledger.append_message(
        session_id, "tool", "a.txt", tool_call_id="call-1", tool_name="ls", token_count=3
    )
    call, output = ledger.transcript(session_id)
    assert (call.role, call.content, call.tool_calls, call.token_count) == (
        "assistant",
        "",
        calls,
        12,
    )
    assert (output.tool_call_id, output.tool_name, output.token_count, output.tool_calls) == (
        "call-1",
        "ls",
        3,
        None,
    )
    head = ledger.head(session_id)
    assert head is not None
    assert head.token_count == 15


# -- append_messages ---------------------------------------------------------------------------


def test_append_messages_writes_all_in_one_append_with_consecutive_sequences(
    ledger: Ledger,
) -> None:
    """Several messages give one result whose sequences follow the head without a gap."""
    session_id = ledger.open_session(KEY)
    result = ledger.append_messages(
        session_id,
        [
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "two"},
            {"role": "user", "content": "three"},
        ],
    )
    assert (result.sequences, result.sequence) == ((2, 3, 4), 4)
    assert list(result.positions) == sorted(result.positions)
    assert [m.content for m in ledger.transcript(session_id)] == ["one", "two", "three"]
    assert head_of(ledger, session_id) == (4, 3)


def test_append_messages_with_an_empty_list_raises_invalid_argument(ledger: Ledger) -> None:
    """An empty batch is refused rather than silently writing nothing."""
    session_id = ledger.open_session(KEY)
    with pytest.raises(InvalidArgumentError, match="at least one message"):
        ledger.append_messages(session_id, [])


def test_append_messages_with_one_invalid_message_writes_none(ledger: Ledger) -> None:
    """One bad message in a batch rejects the whole batch; the valid ones are not written."""
    session_id = ledger.open_session(KEY)
    before = count_events(ledger)
    batch = [{"role": "user", "content": "fine"}, {"role": "robot", "content": "bad"}]
    with pytest.raises(InvalidEventError, match=r"\$\.role"):
        ledger.append_messages(session_id, batch)
    assert count_events(ledger) == before
    assert ledger.transcript(session_id) == []


def test_append_messages_with_an_empty_event_id_list_raises_invalid_argument(
    ledger: Ledger,
) -> None:
    """``event_ids`` of the wrong length is a typed ``InvalidArgumentError``, with no writes."""
    session_id = ledger.open_session(KEY)
    before = count_events(ledger)
    with pytest.raises(InvalidArgumentError, match=r"^Invalid event_ids '0 ids'"):
        ledger.append_messages(session_id, [{"role": "user", "content": "a"}], event_ids=[])
    assert count_events(ledger) == before


# -- retract_messages --------------------------------------------------------------------------


def test_retract_messages_removes_the_last_live_messages(ledger: Ledger) -> None:
    """Retracting two drops the last two from the transcript; count falls, sequence rises."""
    session_id = ledger.open_session(KEY)
    for text in ("one", "two", "three"):
        ledger.append_message(session_id, "user", text)
    result = ledger.retract_messages(session_id, 2)
    assert result.sequence == 5
    assert [m.content for m in ledger.transcript(session_id)] == ["one"]
    assert head_of(ledger, session_id) == (5, 1)
    everything = ledger.transcript(session_id, include_retracted=True)
    assert [(m.content, m.retracted) for m in everything] == [
        ("one", False),
        ("two", True),
        ("three", True),
    ]


def test_retract_more_than_the_live_messages_raises_and_writes_nothing(ledger: Ledger) -> None:
    """Asking to retract more messages than are live is refused with no writes."""
    session_id = ledger.open_session(KEY)
    ledger.append_message(session_id, "user", "only")
    before = count_events(ledger)
    with pytest.raises(InvalidArgumentError, match="Invalid count 2: expected at most 1"):
        ledger.retract_messages(session_id, 2)
    assert count_events(ledger) == before
    assert head_of(ledger, session_id) == (2, 1)


@pytest.mark.parametrize("count", [0, -1])
def test_retract_a_non_positive_count_raises_invalid_argument(ledger: Ledger, count: int) -> None:
    """A count below one is refused before anything is read or written."""
    session_id = ledger.open_session(KEY)
    ledger.append_message(session_id, "user", "hello")
    before = count_events(ledger)
    with pytest.raises(InvalidArgumentError, match=f"Invalid count {count}"):
        ledger.retract_messages(session_id, count)
    assert count_events(ledger) == before


def test_retract_with_reason_retry_records_the_reason(ledger: Ledger) -> None:
    """``reason="retry"`` is stored on the ``MessagesRetracted`` event with the message ids."""
    session_id = ledger.open_session(KEY)
    ledger.append_message(session_id, "user", "hello", message_id="m-1")
    ledger.retract_messages(session_id, reason="retry")
    last = list(ledger.read_stream(session_stream(session_id)))[-1].event
    assert last == MessagesRetracted(session_id=session_id, message_ids=["m-1"], reason="retry")


def test_retract_with_an_unknown_reason_raises_invalid_argument(ledger: Ledger) -> None:
    """A retraction reason other than undo/retry is refused with no writes."""
    session_id = ledger.open_session(KEY)
    ledger.append_message(session_id, "user", "hello")
    before = count_events(ledger)
    with pytest.raises(InvalidArgumentError, match="Invalid reason 'oops'"):
        ledger.retract_messages(session_id, reason="oops")
    assert count_events(ledger) == before


def test_undo_then_one_new_message_keeps_the_count_but_raises_the_sequence(
    ledger: Ledger,
) -> None:
    """The ABA case: after undo + append the count is unchanged while the sequence grew."""
    session_id = ledger.open_session(KEY)
    ledger.append_message(session_id, "user", "hello")
    ledger.append_message(session_id, "assistant", "hi")
    sequence, count = head_of(ledger, session_id)
    ledger.retract_messages(session_id)
    ledger.append_message(session_id, "assistant", "hi again")
    new_sequence, new_count = head_of(ledger, session_id)
    assert new_count == count
    assert new_sequence > sequence
