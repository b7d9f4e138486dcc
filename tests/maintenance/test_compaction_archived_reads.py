"""Reading archived sessions, on SQLite and PostgreSQL.

While a session is archived every read (facade, store, CLI export and replay, projections,
search, the agent cache) must give what it gave before.
"""

from __future__ import annotations

import json

import pytest

from ledger import AgentCache, Ledger
from ledger.streams import key_stream, session_stream
from tests.maintenance.support import (
    KEY_A,
    KEY_B,
    archive_all,
    archived_streams,
    invoke,
    verify_all,
)

SIGNATURE = ("model", "prompt-v1")


def all_streams(sessions: dict[str, str]) -> list[str]:
    """Every stream of the history: its session streams and key streams."""
    return [session_stream(s) for s in sessions.values()] + [key_stream(KEY_A), key_stream(KEY_B)]


# -- transparent reads ---------------------------------------------------------------------------


def test_transcript_is_unchanged_while_archived(ledger: Ledger, sessions: dict[str, str]) -> None:
    """``Ledger.transcript`` (live and with retracted messages) reads the same when archived."""
    before = {
        s: (ledger.transcript(s), ledger.transcript(s, include_retracted=True))
        for s in sessions.values()
    }
    archive_all(ledger)
    after = {
        s: (ledger.transcript(s), ledger.transcript(s, include_retracted=True))
        for s in sessions.values()
    }
    assert after == before


def test_read_stream_is_unchanged_while_archived(ledger: Ledger, sessions: dict[str, str]) -> None:
    """``read_stream`` of every stream gives the same records from any sequence."""
    starts = (1, 2, 4)
    before = {(s, n): list(ledger.read_stream(s, n)) for s in all_streams(sessions) for n in starts}
    archive_all(ledger)
    after = {(s, n): list(ledger.read_stream(s, n)) for s in all_streams(sessions) for n in starts}
    assert after == before


def test_store_read_stream_in_small_batches_is_unchanged_while_archived(
    ledger: Ledger, sessions: dict[str, str]
) -> None:
    """``EventStore.read_stream`` in batches of 1, 2, 3 or 1000 reads an archived stream whole."""
    stream = session_stream(sessions["a"])
    before = list(ledger.store.read_stream(stream))
    archive_all(ledger)
    for batch_size in (1, 2, 3, 1000):
        assert list(ledger.store.read_stream(stream, batch_size=batch_size)) == before, batch_size


def test_read_all_is_unchanged_while_archived(ledger: Ledger, sessions: dict[str, str]) -> None:
    """``read_all`` in batches of 1, 2, 3 or 1000 yields every record, in order, once."""
    before = list(ledger.store.read_all())
    archive_all(ledger)
    assert list(ledger.read_all()) == before
    for batch_size in (1, 2, 3, 1000):
        assert list(ledger.store.read_all(batch_size=batch_size)) == before, batch_size


def test_read_all_after_a_position_with_a_limit_is_unchanged_while_archived(
    ledger: Ledger, sessions: dict[str, str]
) -> None:
    """``read_all(after_position, limit)`` gives the same slice of the log when archived."""
    slices = [(3, None), (0, 5), (7, 4), (10, 100)]
    before = {(a, n): list(ledger.read_all(a, n)) for a, n in slices}
    archive_all(ledger)
    for (after, limit), expected in before.items():
        assert list(ledger.read_all(after, limit)) == expected, (after, limit)
        assert list(ledger.store.read_all(after, limit, batch_size=2)) == expected


def test_read_all_with_many_interleaved_archived_sessions_yields_every_event(
    ledger: Ledger,
) -> None:
    """Twelve archived sessions written turn by turn (overlapping segments) all read back."""
    ids = [ledger.open_session(f"cli:{i}", session_id=f"many-{i:02d}") for i in range(12)]
    for turn in range(3):
        for session_id in ids:
            ledger.append_message(session_id, "user", f"turn {turn} of {session_id}")
    before = list(ledger.read_all())
    assert archive_all(ledger) == len(ids)
    positions = [r.position for r in ledger.read_all()]
    assert len(positions) == len(before), "read_all stopped early over archived segments"
    assert list(ledger.read_all()) == before


def test_export_output_is_unchanged_while_archived(
    ledger: Ledger, sessions: dict[str, str], migrated_url: str
) -> None:
    """``ledger export`` writes the same JSON Lines before and after archiving."""
    code, before, _ = invoke("export", "--url", migrated_url)
    assert code == 0
    archive_all(ledger)
    code, after, _ = invoke("export", "--url", migrated_url)
    assert code == 0
    assert after == before
    assert len(after.splitlines()) == len(list(ledger.read_all()))


def test_replay_json_is_unchanged_while_archived(
    ledger: Ledger, sessions: dict[str, str], migrated_url: str
) -> None:
    """``ledger replay --json`` reports the same totals and per-key detail when archived."""
    code, before, _ = invoke("replay", "--json", "--url", migrated_url)
    assert code == 0
    archive_all(ledger)
    code, after, _ = invoke("replay", "--json", "--url", migrated_url)
    assert code == 0
    assert json.loads(after) == json.loads(before)
    assert json.loads(before)["guards"]["ledger"]["turns"] > 0


def test_every_projection_verifies_clean_while_archived(
    ledger: Ledger, sessions: dict[str, str]
) -> None:
    """``verify`` finds no mismatch for any projection after an archive."""
    assert verify_all(ledger.store) == {}
    archive_all(ledger)
    assert verify_all(ledger.store) == {}


def test_last_position_counts_archived_events(ledger: Ledger, sessions: dict[str, str]) -> None:
    """``EventStore.last_position`` is the log's end even when its last events are archived."""
    last = ledger.store.last_position()
    assert list(ledger.read_all())[-1].position == last
    archive_all(ledger)
    assert ledger.store.last_position() == last


def test_search_finds_archived_messages(ledger: Ledger, sessions: dict[str, str]) -> None:
    """Search hits are the same before and after archiving (the index is a view)."""
    before = ledger.search("archive")
    archive_all(ledger)
    assert ledger.search("archive") == before
    assert [hit.session_id for hit in before] == [sessions["a"]]


# -- the agent cache ---------------------------------------------------------------------------


def _prime(ledger: Ledger, session_id: str) -> AgentCache:
    cache = ledger.cache()
    assert cache.check(KEY_A, session_id, SIGNATURE).action == "miss"
    cache.store(KEY_A, session_id, SIGNATURE, object())
    return cache


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        ("nothing", "hit"),
        ("own", "own_write"),
        ("foreign", "foreign_write"),
        ("retract", "retracted"),
        ("own_then_foreign", "foreign_write"),
    ],
)
def test_cache_decision_is_the_same_before_and_after_archive(
    ledger: Ledger, other: Ledger, sessions: dict[str, str], write: str, reason: str
) -> None:
    """``AgentCache.check`` decides the same (action, reason, baseline, live) on archived data."""
    session_id = sessions["a"]
    before_cache, after_cache = _prime(ledger, session_id), _prime(ledger, session_id)
    if write in ("own", "own_then_foreign"):
        ledger.append_message(session_id, "user", "own write")
        ledger.append_message(session_id, "assistant", "own answer")
    if write in ("foreign", "own_then_foreign"):
        other.append_message(session_id, "assistant", "foreign write")
    if write == "retract":
        ledger.retract_messages(session_id, 1)
    before = before_cache.check(KEY_A, session_id, SIGNATURE)
    archive_all(ledger)
    assert session_stream(session_id) in archived_streams(ledger.store)
    after = after_cache.check(KEY_A, session_id, SIGNATURE)
    assert before.reason == reason
    fields = ("action", "reason", "baseline", "live")
    assert [getattr(after, f) for f in fields] == [getattr(before, f) for f in fields]


def test_rebaseline_after_an_own_write_to_an_archived_session_moves_the_baseline(
    ledger: Ledger, sessions: dict[str, str]
) -> None:
    """An own turn on an archived session re-baselines the cache, so the next check hits."""
    session_id = sessions["a"]
    cache = _prime(ledger, session_id)
    archive_all(ledger)
    result = ledger.append_message(session_id, "user", "own turn after archive")
    cache.rebaseline(KEY_A, session_id, result)
    assert cache.baselines(KEY_A)[session_id] == result.sequence
    assert cache.check(KEY_A, session_id, SIGNATURE).reason == "hit"
