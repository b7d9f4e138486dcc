"""The ``keys`` inline projection: the active session of every ``session_key``.

A ``SessionSwitched`` lives in the ``key-<session_key>`` stream only, so these tests also pin
the rule that switching never moves any session's head ``sequence``.
"""

from __future__ import annotations

import pytest

from ledger import EventStore, StreamAppend
from ledger.views import SessionHead, SessionViews
from tests import controls

KEY = "telegram:12345:thread-9"


@pytest.fixture
def views(store: EventStore) -> SessionViews:
    """Read access to the views of the ``store`` under test."""
    return SessionViews(store.engine)


def _open(store: EventStore, session_id: str, key: str = KEY) -> None:
    """Open ``session_id`` under ``key`` and switch the key to it, in one append."""
    store.append_streams(
        [
            StreamAppend(stream=f"session-{session_id}", events=[controls.opened(session_id, key)]),
            StreamAppend(
                stream=f"key-{key}", events=[controls.switched(key, session_id, reason="new")]
            ),
        ]
    )


def _heads(views: SessionViews, *session_ids: str) -> list[SessionHead | None]:
    return [views.head(sid) for sid in session_ids]


def test_switch_sets_the_active_session(store: EventStore, views: SessionViews) -> None:
    """A SessionSwitched on the key stream makes its session the key's active one."""
    store.append(f"key-{KEY}", [controls.switched(KEY, "a", reason="new")])
    assert views.active_session(KEY) == "a"


def test_a_later_switch_replaces_the_active_session(store: EventStore, views: SessionViews) -> None:
    """Each switch replaces the previous one; switching back restores the earlier session."""
    _open(store, "a")
    _open(store, "b")
    assert views.active_session(KEY) == "b"
    store.append(f"key-{KEY}", [controls.switched(KEY, "a", previous_session_id="b")])
    assert views.active_session(KEY) == "a"


def test_the_last_of_several_switches_in_one_append_wins(
    store: EventStore, views: SessionViews
) -> None:
    """Several switches in one append leave the key on the last one."""
    store.append(
        f"key-{KEY}",
        [controls.switched(KEY, "a"), controls.switched(KEY, "b"), controls.switched(KEY, "c")],
    )
    assert views.active_session(KEY) == "c"


def test_switching_never_changes_a_session_head(store: EventStore, views: SessionViews) -> None:
    """Moving a key between sessions leaves every session's sequence, position and count alone."""
    _open(store, "a")
    store.append("session-a", controls.messages(2, "a"))
    _open(store, "b")
    store.append("session-b", controls.messages(1, "b"))
    before = _heads(views, "a", "b")
    for target, previous in [("a", "b"), ("b", "a"), ("a", "b")]:
        store.append(f"key-{KEY}", [controls.switched(KEY, target, previous)])
    assert _heads(views, "a", "b") == before
    assert (store.head_sequence("session-a"), store.head_sequence("session-b")) == (3, 2)
    assert store.head_sequence(f"key-{KEY}") == 5


def test_switching_one_key_leaves_other_keys_alone(store: EventStore, views: SessionViews) -> None:
    """Keys are independent: a switch on one never changes another key's active session."""
    _open(store, "a", "k1")
    _open(store, "b", "k2")
    store.append("key-k1", [controls.switched("k1", "c")])
    assert (views.active_session("k1"), views.active_session("k2")) == ("c", "b")


def test_active_session_of_an_unknown_key_is_none(store: EventStore, views: SessionViews) -> None:
    """A key that never had a switch has no active session."""
    _open(store, "a")
    assert views.active_session("never-seen") is None


def test_opening_a_session_alone_does_not_switch_its_key(
    store: EventStore, views: SessionViews
) -> None:
    """SessionOpened is a session event; only SessionSwitched moves the key."""
    store.append("session-a", [controls.opened("a", KEY)])
    assert views.active_session(KEY) is None


def test_a_switch_outside_a_key_stream_is_ignored_by_the_keys_view(
    store: EventStore, views: SessionViews
) -> None:
    """A SessionSwitched written to some other stream does not change the active session."""
    _open(store, "a")
    store.append("misc-stream", [controls.switched(KEY, "b")])
    assert views.active_session(KEY) == "a"
