"""Contract tests of ``Ledger``'s session lifecycle, on SQLite and PostgreSQL.

One behaviour per test: what ``open_session`` (lineage included), ``switch_session``,
``close_session`` and ``set_title`` write to the key and session streams and the views, each
error path's typed exception (and that it wrote nothing).
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from ledger import (
    InvalidArgumentError,
    Ledger,
    SessionClosedError,
    SessionNotFoundError,
    SessionOpened,
    SessionSwitched,
    StreamNotFoundError,
    WrongExpectedVersionError,
)
from ledger.facade import key_stream, session_stream
from tests.gateway.support import KEY, head_of
from tests.helpers import count_events

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
