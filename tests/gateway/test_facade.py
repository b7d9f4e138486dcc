"""Contract tests of ``Ledger``, the gateway facade, on SQLite and PostgreSQL.

One behaviour per test: each write method's effect on the log and the views, each error path's
typed exception (and that it wrote nothing), and each read delegating to the views or the store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid

import pytest

from ledger import (
    AgentCache,
    AppendResult,
    EventTooLargeError,
    InvalidArgumentError,
    InvalidEventError,
    Ledger,
    LedgerError,
    MessageAppended,
    MessagesRetracted,
    SessionClosedError,
    SessionNotFoundError,
    SessionOpened,
    SessionSwitched,
    StreamNotFoundError,
    WrongExpectedVersionError,
)
from ledger.config import Settings
from ledger.facade import key_stream, session_stream
from tests.helpers import count_events

KEY = "telegram:12345:thread-9"


def head_of(ledger: Ledger, session_id: str) -> tuple[int, int]:
    """The session's ``(sequence, message_count)``."""
    head = ledger.head(session_id)
    assert head is not None, f"no head for {session_id!r}"
    return head.sequence, head.message_count


# -- open_session ------------------------------------------------------------------------------


def test_open_session_returns_a_new_id_that_sorts_by_creation_time(ledger: Ledger) -> None:
    """A generated session id starts with its UTC creation time, so ids sort by age."""
    before = dt.datetime.now(dt.UTC).strftime("%Y%m%d_%H%M%S")
    first = ledger.open_session(KEY)
    second = ledger.open_session(KEY)
    after = dt.datetime.now(dt.UTC).strftime("%Y%m%d_%H%M%S")
    assert first != second
    for session_id in (first, second):
        assert re.fullmatch(r"\d{8}_\d{6}_[0-9a-f]{8}", session_id), session_id
        assert before <= session_id[:15] <= after
    assert ledger.open_session(KEY, session_id="00000000_000000_00000000") < first


def test_open_session_makes_the_new_session_active_for_its_key(ledger: Ledger) -> None:
    """After opening, the key's active session is the new one."""
    first = ledger.open_session(KEY)
    assert ledger.active_session(KEY) == first
    second = ledger.open_session(KEY, reason="reset")
    assert ledger.active_session(KEY) == second


def test_open_session_writes_session_opened_to_the_session_stream(ledger: Ledger) -> None:
    """``SessionOpened`` is the first and only event of ``session-<id>``, by this writer."""
    session_id = ledger.open_session(KEY, source="telegram", user_id="u1", model="m", title="T")
    (record,) = ledger.read_stream(session_stream(session_id))
    assert record.sequence == 1
    assert record.writer == "gateway-1"
    assert record.event == SessionOpened(
        session_id=session_id,
        session_key=KEY,
        source="telegram",
        reason="new",
        user_id="u1",
        model="m",
        title="T",
    )


def test_open_session_writes_session_switched_with_the_previous_session(ledger: Ledger) -> None:
    """Each open appends ``SessionSwitched`` to ``key-<key>`` naming the session it replaced."""
    first = ledger.open_session(KEY)
    second = ledger.open_session(KEY, reason="reset")
    records = list(ledger.read_stream(key_stream(KEY)))
    assert [r.event for r in records] == [
        SessionSwitched(session_key=KEY, session_id=first, previous_session_id=None, reason="new"),
        SessionSwitched(
            session_key=KEY, session_id=second, previous_session_id=first, reason="reset"
        ),
    ]
    assert [r.sequence for r in records] == [1, 2]


def test_open_session_uses_an_explicit_session_id(ledger: Ledger) -> None:
    """A caller-given ``session_id`` is used as is."""
    assert ledger.open_session(KEY, session_id="my-session") == "my-session"
    head = ledger.head("my-session")
    assert head is not None
    assert (head.session_key, head.sequence, head.message_count) == (KEY, 1, 0)


def test_open_session_with_an_existing_id_raises_and_writes_nothing(ledger: Ledger) -> None:
    """Opening a session id a second time is a wrong-expected-version error with no writes."""
    ledger.open_session(KEY, session_id="dup")
    before = count_events(ledger)
    with pytest.raises(WrongExpectedVersionError, match="'session-dup': expected 0, actual 1"):
        ledger.open_session("other:key", session_id="dup")
    assert count_events(ledger) == before
    assert ledger.active_session("other:key") is None


def test_open_session_with_an_unknown_parent_raises_and_writes_nothing(ledger: Ledger) -> None:
    """A ``parent_session_id`` that was never opened is a ``SessionNotFoundError``."""
    with pytest.raises(SessionNotFoundError, match="'ghost' does not exist"):
        ledger.open_session(KEY, reason="branch", parent_session_id="ghost")
    assert count_events(ledger) == 0


@pytest.mark.parametrize("reason", ["compress", "branch"])
def test_child_session_links_to_its_parent_and_lineage_walks_root_to_child(
    ledger: Ledger, reason: str
) -> None:
    """A compress/branch child records its parent, and ``lineage`` lists root → child."""
    root = ledger.open_session(KEY, session_id="root")
    child = ledger.open_session(KEY, session_id="child", reason=reason, parent_session_id=root)
    grandchild = ledger.open_session(
        KEY, session_id="grandchild", reason=reason, parent_session_id=child
    )
    head = ledger.head(child)
    assert head is not None
    assert head.parent_session_id == root
    assert ledger.lineage(grandchild) == [root, child, grandchild]
    assert ledger.lineage(root) == [root]


def test_open_session_with_an_unknown_reason_raises_invalid_argument(ledger: Ledger) -> None:
    """A reason outside new/reset/resume/branch/compress is refused before any write."""
    with pytest.raises(InvalidArgumentError, match="Invalid reason 'fork'"):
        ledger.open_session(KEY, reason="fork")
    assert count_events(ledger) == 0


# -- switch_session ----------------------------------------------------------------------------


def test_switch_session_makes_an_existing_session_active(ledger: Ledger) -> None:
    """Switching moves the key's active session and appends one event to the key stream."""
    first = ledger.open_session(KEY)
    second = ledger.open_session(KEY)
    result = ledger.switch_session(KEY, first)
    assert result is not None
    assert (result.stream, result.sequence) == (key_stream(KEY), 3)
    assert ledger.active_session(KEY) == first
    last = list(ledger.read_stream(key_stream(KEY)))[-1].event
    assert last == SessionSwitched(
        session_key=KEY, session_id=first, previous_session_id=second, reason="resume"
    )


def test_switch_session_to_an_unknown_session_raises_and_writes_nothing(ledger: Ledger) -> None:
    """Switching to a session never opened is a ``StreamNotFoundError`` with no writes."""
    ledger.open_session(KEY)
    before = count_events(ledger)
    with pytest.raises(StreamNotFoundError) as caught:
        ledger.switch_session(KEY, "ghost")
    assert isinstance(caught.value, SessionNotFoundError)
    assert count_events(ledger) == before


def test_switch_session_to_the_active_session_is_a_no_op(ledger: Ledger) -> None:
    """Switching to the session already active returns ``None`` and leaves the key stream."""
    session_id = ledger.open_session(KEY)
    key_head = ledger.store.head_sequence(key_stream(KEY))
    assert ledger.switch_session(KEY, session_id) is None
    assert ledger.store.head_sequence(key_stream(KEY)) == key_head


def test_switch_session_never_changes_a_session_head_sequence(ledger: Ledger) -> None:
    """Switching back and forth moves no session's ``sequence`` or ``message_count``."""
    first = ledger.open_session(KEY)
    ledger.append_message(first, "user", "hello")
    second = ledger.open_session(KEY)
    heads = {sid: head_of(ledger, sid) for sid in (first, second)}
    for target in (first, second, first, second):
        ledger.switch_session(KEY, target)
    assert {sid: head_of(ledger, sid) for sid in (first, second)} == heads


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


# -- close_session and set_title ---------------------------------------------------------------


def test_close_session_then_append_raises_session_closed(ledger: Ledger) -> None:
    """A closed session's head says so and it takes no more messages."""
    session_id = ledger.open_session(KEY)
    result = ledger.close_session(session_id, reason="done")
    assert result.sequence == 2
    head = ledger.head(session_id)
    assert head is not None
    assert head.state == "closed"
    with pytest.raises(SessionClosedError):
        ledger.append_message(session_id, "user", "too late")


def test_set_title_updates_the_head_title(ledger: Ledger) -> None:
    """A new title shows in the head and moves the session's sequence."""
    session_id = ledger.open_session(KEY, title="old")
    result = ledger.set_title(session_id, "new title")
    head = ledger.head(session_id)
    assert head is not None
    assert (head.title, head.sequence, result.sequence) == ("new title", 2, 2)


def test_set_title_of_an_unknown_session_raises_session_not_found(ledger: Ledger) -> None:
    """Titling a session never opened is a ``SessionNotFoundError`` with no writes."""
    with pytest.raises(SessionNotFoundError):
        ledger.set_title("ghost", "title")
    assert count_events(ledger) == 0


# -- reads -------------------------------------------------------------------------------------


def test_head_of_an_unknown_session_is_none(ledger: Ledger) -> None:
    """``head`` answers ``None`` for a session never opened."""
    assert ledger.head("ghost") is None


def test_active_session_of_a_new_key_is_none(ledger: Ledger) -> None:
    """``active_session`` answers ``None`` for a key never used."""
    assert ledger.active_session("new:key") is None


def test_transcript_of_an_unknown_session_raises_session_not_found(ledger: Ledger) -> None:
    """``transcript`` distinguishes a missing session from an empty one."""
    assert ledger.transcript(ledger.open_session(KEY)) == []
    with pytest.raises(SessionNotFoundError):
        ledger.transcript("ghost")


def test_transcript_lists_messages_in_sequence_order_with_metadata(ledger: Ledger) -> None:
    """Transcript rows carry session, sequence, position and writer of each message."""
    session_id = ledger.open_session(KEY)
    first = ledger.append_message(session_id, "user", "one")
    second = ledger.append_message(session_id, "assistant", "two")
    rows = ledger.transcript(session_id)
    assert [(m.sequence, m.position, m.writer) for m in rows] == [
        (first.sequence, first.position, "gateway-1"),
        (second.sequence, second.position, "gateway-1"),
    ]
    assert {m.session_id for m in rows} == {session_id}


def test_sessions_filters_by_key_source_and_state(ledger: Ledger) -> None:
    """The catalog narrows by ``session_key``, ``source`` and ``state``."""
    a = ledger.open_session("k:a", session_id="a", source="telegram")
    b = ledger.open_session("k:b", session_id="b", source="discord")
    c = ledger.open_session("k:b", session_id="c", source="discord")
    ledger.close_session(c)
    assert {h.session_id for h in ledger.sessions()} == {a, b, c}
    assert [h.session_id for h in ledger.sessions(session_key="k:a")] == [a]
    assert {h.session_id for h in ledger.sessions(source="discord")} == {b, c}
    assert [h.session_id for h in ledger.sessions(state="closed")] == [c]
    assert {h.session_id for h in ledger.sessions(session_key="k:b", state="open")} == {b}


def test_sessions_pages_most_recently_updated_first(ledger: Ledger) -> None:
    """``limit`` and ``offset`` page the catalog, newest update first."""
    for name in ("a", "b", "c"):
        ledger.open_session(KEY, session_id=name)
    ledger.append_message("a", "user", "touch a last")
    ordered = [h.session_id for h in ledger.sessions()]
    assert ordered[0] == "a"
    assert [h.session_id for h in ledger.sessions(limit=1, offset=1)] == [ordered[1]]
    with pytest.raises(InvalidArgumentError):
        ledger.sessions(limit=0)


def test_search_finds_a_just_appended_message(ledger: Ledger) -> None:
    """With ``fresh=True`` search first catches up, so a new message is found at once."""
    session_id = ledger.open_session(KEY)
    ledger.append_message(session_id, "user", "the quick brown fox")
    result = ledger.append_message(session_id, "assistant", "jumps over the lazy dog")
    (hit,) = ledger.search("lazy dog")
    assert (hit.session_id, hit.role, hit.position) == (session_id, "assistant", result.position)
    assert "lazy" in hit.snippet


def test_search_does_not_find_a_retracted_message(ledger: Ledger) -> None:
    """A message taken back by undo disappears from search results."""
    session_id = ledger.open_session(KEY)
    ledger.append_message(session_id, "user", "pineapple pizza")
    assert len(ledger.search("pineapple")) == 1
    ledger.retract_messages(session_id)
    assert ledger.search("pineapple") == []


def test_read_stream_delegates_to_the_store(ledger: Ledger) -> None:
    """``read_stream`` returns exactly what the store reads, from ``from_sequence`` on."""
    session_id = ledger.open_session(KEY)
    ledger.append_messages(session_id, [{"role": "user", "content": str(i)} for i in range(3)])
    stream = session_stream(session_id)
    assert list(ledger.read_stream(stream, 2)) == list(ledger.store.read_stream(stream, 2))
    assert [r.sequence for r in ledger.read_stream(stream, 2)] == [2, 3, 4]
    assert all(isinstance(r.event, MessageAppended) for r in ledger.read_stream(stream, 2))


def test_read_all_delegates_to_the_store(ledger: Ledger) -> None:
    """``read_all`` returns the log after a position, bounded by ``limit``, as the store does."""
    session_id = ledger.open_session(KEY)
    ledger.append_message(session_id, "user", "hello")
    everything = list(ledger.read_all())
    assert len(everything) == 3
    assert everything == list(ledger.store.read_all())
    first = everything[0].position
    assert list(ledger.read_all(after_position=first, limit=1)) == everything[1:2]


def test_cache_returns_an_agent_cache_with_the_ledger_writer(ledger: Ledger) -> None:
    """``cache()`` binds an ``AgentCache`` to this ledger's store and writer."""
    cache = ledger.cache(max_entries=4)
    assert isinstance(cache, AgentCache)
    assert cache.writer == "gateway-1"
    assert cache.event_store is ledger.store
    assert cache.max_entries == 4
