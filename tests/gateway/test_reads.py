"""Contract tests of ``Ledger``'s reads, on SQLite and PostgreSQL.

One behaviour per test: ``head``, ``active_session``, ``transcript``, ``sessions`` and
``search`` answer from the views, ``read_stream`` and ``read_all`` delegate to the store, and
``cache()`` binds an ``AgentCache`` to the ledger.
"""

from __future__ import annotations

import pytest

from ledger import (
    AgentCache,
    InvalidArgumentError,
    Ledger,
    MessageAppended,
    SessionNotFoundError,
    StreamAppend,
)
from ledger.facade import session_stream
from tests.gateway.support import KEY


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


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_search_reads_its_own_write_while_another_transaction_is_open(ledger: Ledger) -> None:
    """An older transaction still open elsewhere holds the reader's horizon back; a fresh
    search waits for it (briefly) instead of missing the message just written."""
    import threading

    from tests import controls

    other = ledger.open_session("k:other")
    opened = threading.Event()
    release = threading.Event()

    def hold_a_write_open() -> None:
        with ledger.store.transaction(streams=[session_stream(other)]) as conn:
            part = StreamAppend(stream=session_stream(other), events=[controls.message(other)])
            ledger.store.append_in(conn, [part])
            opened.set()
            release.wait(10)

    holder = threading.Thread(target=hold_a_write_open)
    holder.start()
    try:
        opened.wait(10)
        session_id = ledger.open_session(KEY)
        ledger.append_message(session_id, "user", "kumquat harvest")
        threading.Timer(0.3, release.set).start()
        hits = ledger.search("kumquat")
    finally:
        release.set()
        holder.join(10)
    assert [h.session_id for h in hits] == [session_id]
