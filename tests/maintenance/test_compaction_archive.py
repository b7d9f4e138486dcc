"""The ``archive`` and ``restore`` compaction jobs, on SQLite and PostgreSQL.

Archiving moves a session's events into one compressed segment. While a session is archived
every read (facade, store, CLI export and replay, projections, the agent cache) must give what
it gave before; restore must put back byte-identical rows; an append restores first.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from ledger import AgentCache, Ledger, LedgerError
from ledger.cli import cli
from ledger.config import Settings
from ledger.maintenance import archive, restore
from ledger.schema import archive_segments, events, streams
from ledger.streams import key_stream, session_stream
from tests.maintenance.support import (
    AGE,
    KEY_A,
    KEY_B,
    archived_streams,
    build_history,
    dump_all,
    event_rows,
    let_age,
    live_streams,
    segment_count,
    verify_all,
)

SIGNATURE = ("model", "prompt-v1")


@pytest.fixture
def other(migrated_url: str, settings: Settings) -> Iterator[Ledger]:
    """A second gateway (writer ``gateway-2``) on the same database."""
    with Ledger.open(migrated_url, writer="gateway-2", settings=settings) as opened:
        yield opened


@pytest.fixture
def sessions(ledger: Ledger, other: Ledger) -> dict[str, str]:
    """The small two-key history of :func:`build_history`."""
    return build_history(ledger, other)


def archive_all(ledger: Ledger) -> int:
    """Archive every session (all are older than ``AGE``); returns how many were archived."""
    let_age()
    return archive(ledger.store, older_than=AGE).sessions


def invoke(*args: str) -> tuple[int, bytes, str]:
    """Run the ``ledger`` CLI; returns exit code, stdout bytes and stderr text."""
    result = CliRunner().invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout_bytes, result.stderr


def all_streams(sessions: dict[str, str]) -> list[str]:
    """Every stream of the history: its session streams and key streams."""
    return [session_stream(s) for s in sessions.values()] + [key_stream(KEY_A), key_stream(KEY_B)]


# -- byte-for-byte ------------------------------------------------------------------------------


def test_archive_then_restore_gives_back_byte_identical_event_rows(
    ledger: Ledger, sessions: dict[str, str]
) -> None:
    """Every column of every ``events`` row, positions included, is back after a restore."""
    before = event_rows(ledger.store)
    assert archive_all(ledger) == len(sessions)
    assert len(event_rows(ledger.store)) < len(before)
    for session_id in sessions.values():
        report = restore(ledger.store, session_id)
        assert (report.sessions, report.dry_run) == (1, False)
    assert event_rows(ledger.store) == before
    assert segment_count(ledger.store) == 0
    assert archived_streams(ledger.store) == set()


def test_archive_moves_every_session_stream_out_of_the_events_table(
    ledger: Ledger, sessions: dict[str, str]
) -> None:
    """After archiving only key streams stay live; each session has one segment, flagged."""
    archive_all(ledger)
    expected = {session_stream(s) for s in sessions.values()}
    assert live_streams(ledger.store) == {key_stream(KEY_A), key_stream(KEY_B)}
    assert archived_streams(ledger.store) == expected
    assert segment_count(ledger.store) == len(expected)


def test_archive_with_the_default_age_takes_only_closed_sessions(
    ledger: Ledger, sessions: dict[str, str]
) -> None:
    """A 30-day default age leaves fresh open sessions live and archives the closed one."""
    report = archive(ledger.store)
    assert report.sessions == 1
    assert archived_streams(ledger.store) == {session_stream(sessions["c"])}


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


def test_heads_keys_and_transcript_rows_are_unchanged_by_archive(
    ledger: Ledger, sessions: dict[str, str]
) -> None:
    """Archive writes no view row: heads, active sessions and transcripts stay as they were."""
    names = ("session_heads", "session_keys", "transcript_messages")
    before = dump_all(ledger.store, *names)
    archive_all(ledger)
    assert dump_all(ledger.store, *names) == before


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


# -- appends restore -------------------------------------------------------------------------------


def test_append_to_an_archived_session_restores_it_first(
    ledger: Ledger, sessions: dict[str, str]
) -> None:
    """An append brings the segment back, continues the sequence and loses nothing."""
    session_id = sessions["a"]
    stream = session_stream(session_id)
    rows_before = event_rows(ledger.store)
    head = ledger.head(session_id)
    assert head is not None
    archive_all(ledger)
    result = ledger.append_message(session_id, "user", "after the archive")
    assert result.sequence == head.sequence + 1
    assert stream not in archived_streams(ledger.store)
    with ledger.store.engine.connect() as conn:
        segment = conn.execute(
            sa.select(archive_segments.c.stream).where(archive_segments.c.stream == stream)
        ).first()
        flag = conn.execute(sa.select(streams.c.archived).where(streams.c.stream == stream))
        assert flag.scalar_one() is False
    assert segment is None
    sequences = [r.sequence for r in ledger.read_stream(stream)]
    assert sequences == list(range(1, head.sequence + 2))
    stored = event_rows(ledger.store)
    restored = [row for row in stored if row[1] == stream]
    assert restored[:-1] == [row for row in rows_before if row[1] == stream]
    assert ledger.transcript(session_id)[-1].content == "after the archive"
    assert verify_all(ledger.store) == {}


def test_append_with_expected_sequence_to_an_archived_session_checks_the_real_head(
    ledger: Ledger, sessions: dict[str, str]
) -> None:
    """Optimistic concurrency sees the archived stream's head, not an empty stream."""
    session_id = sessions["b"]
    head = ledger.head(session_id)
    assert head is not None
    archive_all(ledger)
    result = ledger.append_message(session_id, "user", "expected", expected_sequence=head.sequence)
    assert result.sequence == head.sequence + 1


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


# -- idempotence and dry runs --------------------------------------------------------------------


def test_archive_is_idempotent(ledger: Ledger, sessions: dict[str, str]) -> None:
    """A second archive run finds nothing left to do and changes nothing."""
    assert archive_all(ledger) == len(sessions)
    before = dump_all(ledger.store)
    second = archive(ledger.store, older_than=AGE)
    assert (second.sessions, second.events, second.bytes_before) == (0, 0, 0)
    assert dump_all(ledger.store) == before


def test_archive_dry_run_changes_nothing(ledger: Ledger, sessions: dict[str, str]) -> None:
    """``dry_run=True`` reports what would be archived and writes no row anywhere."""
    let_age()
    before = dump_all(ledger.store)
    planned = archive(ledger.store, older_than=AGE, dry_run=True)
    assert dump_all(ledger.store) == before
    done = archive(ledger.store, older_than=AGE)
    assert planned.dry_run
    assert (planned.sessions, planned.events) == (done.sessions, done.events)
    assert planned.sessions == len(sessions)


def test_archive_cli_dry_run_changes_nothing(
    ledger: Ledger, sessions: dict[str, str], migrated_url: str
) -> None:
    """``ledger compact archive --dry-run`` prints a report and leaves every table as it was."""
    let_age()
    before = dump_all(ledger.store)
    code, out, _ = invoke(
        "compact", "archive", "--dry-run", "--older-than", "0.001", "--json", "--url", migrated_url
    )
    assert code == 0
    report = json.loads(out)
    assert (report["job"], report["dry_run"], report["sessions"]) == ("archive", True, 3)
    assert dump_all(ledger.store) == before


def test_restore_dry_run_changes_nothing(ledger: Ledger, sessions: dict[str, str]) -> None:
    """``restore(dry_run=True)`` reports the segment and leaves it in place."""
    archive_all(ledger)
    before = dump_all(ledger.store)
    report = restore(ledger.store, sessions["a"], dry_run=True)
    assert (report.sessions, report.dry_run) == (1, True)
    assert report.events == len(list(ledger.read_stream(session_stream(sessions["a"]))))
    assert dump_all(ledger.store) == before


def test_restore_of_a_live_session_changes_nothing(
    ledger: Ledger, sessions: dict[str, str]
) -> None:
    """Restoring a session that is not archived reports so and writes nothing."""
    before = dump_all(ledger.store)
    report = restore(ledger.store, sessions["a"])
    assert report.sessions == 0
    assert dump_all(ledger.store) == before


# -- the CLI ----------------------------------------------------------------------------------


def test_restore_cli_brings_a_session_back(
    ledger: Ledger, sessions: dict[str, str], migrated_url: str
) -> None:
    """``ledger compact restore SESSION_ID --json`` restores and reports one session."""
    before = event_rows(ledger.store)
    archive_all(ledger)
    for session_id in sessions.values():
        code, out, _ = invoke("compact", "restore", session_id, "--json", "--url", migrated_url)
        assert code == 0
        assert json.loads(out)["sessions"] == 1
    assert event_rows(ledger.store) == before


def test_restore_cli_of_an_unknown_session_exits_1_with_an_error(
    ledger: Ledger, sessions: dict[str, str], migrated_url: str
) -> None:
    """Restoring a session that never existed prints one error line and exits 1."""
    code, out, err = invoke("compact", "restore", "ghost", "--url", migrated_url)
    assert code == 1
    assert out == b""
    assert err.startswith("error: ")
    assert "ghost" in err


# -- damaged segments --------------------------------------------------------------------------


def _damage(store_url: str, settings: Settings, stream: str, column: str) -> None:
    with Ledger.open(store_url, settings=settings) as damaged:
        s = archive_segments
        with damaged.store.engine.begin() as conn:
            row = conn.execute(sa.select(s.c.data, s.c.checksum).where(s.c.stream == stream)).one()
            if column == "data":
                data = bytearray(row.data)
                data[len(data) // 2] ^= 0x5A
                values = {"data": bytes(data)}
            else:
                values = {"checksum": "0" * 64}
            conn.execute(s.update().where(s.c.stream == stream).values(values))


@pytest.mark.parametrize("column", ["data", "checksum"])
def test_a_corrupt_segment_raises_a_ledger_error_naming_the_stream(
    ledger: Ledger, sessions: dict[str, str], migrated_url: str, settings: Settings, column: str
) -> None:
    """A flipped byte or a wrong checksum makes both readers raise a ``LedgerError``."""
    stream = session_stream(sessions["a"])
    archive_all(ledger)
    _damage(migrated_url, settings, stream, column)
    for read in ("read_stream", "read_all"):
        # A fresh ledger each time: a store caches the segments it has decoded.
        with Ledger.open(migrated_url, settings=settings) as fresh:
            reader = fresh.read_stream(stream) if read == "read_stream" else fresh.read_all()
            with pytest.raises(LedgerError, match=stream) as caught:
                list(reader)
        assert isinstance(caught.value, ValueError), read


def test_a_corrupt_segment_is_not_restored(
    ledger: Ledger, sessions: dict[str, str], migrated_url: str, settings: Settings
) -> None:
    """Restoring a damaged segment fails with a ``LedgerError`` and keeps the segment."""
    stream = session_stream(sessions["a"])
    archive_all(ledger)
    _damage(migrated_url, settings, stream, "data")
    before = dump_all(ledger.store, "events", "archive_segments", "streams")
    with pytest.raises(LedgerError, match=stream):
        restore(ledger.store, sessions["a"])
    assert dump_all(ledger.store, "events", "archive_segments", "streams") == before


def test_events_table_and_segments_never_hold_the_same_stream(
    ledger: Ledger, sessions: dict[str, str]
) -> None:
    """After archive, appends and restores, a stream lives in exactly one place."""
    archive_all(ledger)
    ledger.append_message(sessions["a"], "user", "restore a")
    restore(ledger.store, sessions["b"])
    with ledger.store.engine.connect() as conn:
        live = set(conn.execute(sa.select(events.c.stream).distinct()).scalars())
        segments = set(conn.execute(sa.select(archive_segments.c.stream)).scalars())
    assert live & segments == set()
    assert segments == {session_stream(sessions["c"])}
    assert archived_streams(ledger.store) == segments


def test_retrying_an_append_after_its_session_was_archived_returns_the_original(
    ledger: Ledger,
) -> None:
    """An idempotent retry still finds its event once the session has been archived."""
    session_id = ledger.open_session("cli:retry", session_id="retry")
    first = ledger.append_message(session_id, "user", "hello", event_id=uuid.UUID(int=7))
    ledger.close_session(session_id)
    archive_all(ledger)
    again = ledger.append_message(session_id, "user", "hello", event_id=uuid.UUID(int=7))
    assert again.duplicate
    assert (again.sequence, again.position) == (first.sequence, first.position)
