"""The ``keys``, ``snapshot`` and ``vacuum`` compaction jobs, on SQLite and PostgreSQL.

Key compaction keeps each key stream's latest switch and changes nothing a reader sees; a
rebuild from a snapshot folds only the later events; vacuum reports sizes and, on SQLite, frees
the pages an archive emptied.
"""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from ledger import Ledger
from ledger.facade import key_stream
from ledger.maintenance import archive, compact_keys, jobs, vacuum
from ledger.replay import replay
from ledger.schema import events
from projections.keys import KeysProjection
from projections.rebuild import rebuild, verify
from projections.sessions import SessionsProjection
from tests.maintenance.support import AGE, KEY, OTHER_KEY, dump_all, let_age, verify_all

# -- keys -----------------------------------------------------------------------------------------


@pytest.fixture
def switched(ledger: Ledger) -> list[str]:
    """Two keys with several switches each; returns the session ids."""
    ids = [ledger.open_session(KEY, session_id=f"k1-{i}") for i in range(3)]
    ledger.switch_session(KEY, ids[0])
    ledger.switch_session(KEY, ids[2], reason="resume")
    other = [ledger.open_session(OTHER_KEY, session_id=f"k2-{i}") for i in range(2)]
    ledger.switch_session(OTHER_KEY, other[0])
    let_age()
    return ids + other


def test_keys_compaction_keeps_only_each_keys_latest_switch(
    ledger: Ledger, switched: list[str]
) -> None:
    """Each key stream keeps exactly its latest switch, at its original sequence."""
    latest = {k: list(ledger.read_stream(key_stream(k)))[-1] for k in (KEY, OTHER_KEY)}
    report = compact_keys(ledger.store, older_than=AGE)
    assert (report.sessions, report.events) == (2, 5 - 1 + 3 - 1)
    for key, record in latest.items():
        assert list(ledger.read_stream(key_stream(key))) == [record]


def test_keys_compaction_leaves_active_sessions_and_heads_unchanged(
    ledger: Ledger, switched: list[str]
) -> None:
    """Active sessions, heads and transcripts are the same after key compaction."""
    before = dump_all(ledger.store, "session_heads", "session_keys", "transcript_messages")
    compact_keys(ledger.store, older_than=AGE)
    assert dump_all(ledger.store, "session_heads", "session_keys", "transcript_messages") == (
        before
    )
    assert ledger.active_session(KEY) == "k1-2"
    assert ledger.active_session(OTHER_KEY) == "k2-0"


def test_keys_compaction_keeps_every_projection_verifiable(
    ledger: Ledger, switched: list[str]
) -> None:
    """After key compaction every projection equals a rebuild from the log."""
    compact_keys(ledger.store, older_than=AGE)
    assert verify_all(ledger.store) == {}


def test_keys_compaction_continues_the_key_stream_sequence(
    ledger: Ledger, switched: list[str]
) -> None:
    """A switch after compaction gets the next sequence, never a reused one."""
    compact_keys(ledger.store, older_than=AGE)
    result = ledger.switch_session(KEY, "k1-0")
    assert result is not None
    assert result.sequence == 6


def test_keys_compaction_dry_run_and_rerun_change_nothing(
    ledger: Ledger, switched: list[str]
) -> None:
    """A dry run writes nothing; after a real run a second run finds nothing to drop."""
    before = dump_all(ledger.store)
    planned = compact_keys(ledger.store, older_than=AGE, dry_run=True)
    assert dump_all(ledger.store) == before
    assert compact_keys(ledger.store, older_than=AGE).events == planned.events
    after = dump_all(ledger.store)
    assert compact_keys(ledger.store, older_than=AGE).events == 0
    assert dump_all(ledger.store) == after


def test_keys_compaction_with_the_default_horizon_drops_only_older_switches(
    ledger: Ledger, switched: list[str]
) -> None:
    """With the 7-day default, only switches recorded more than 7 days ago go."""
    stream = key_stream(KEY)
    with ledger.store.engine.begin() as conn:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
        conn.execute(
            events.update()
            .where(events.c.stream == stream, events.c.sequence <= 2)
            .values(recorded_at=past)
        )
    report = compact_keys(ledger.store)
    assert (report.sessions, report.events) == (1, 2)
    assert [r.sequence for r in ledger.read_stream(stream)] == [3, 4, 5]
    assert verify_all(ledger.store) == {}


def test_keys_compaction_keeps_replay_totals(ledger: Ledger) -> None:
    """``ledger replay`` counts the same turns after old switches are dropped."""
    first = ledger.open_session(KEY, session_id="r1")
    ledger.append_message(first, "user", "a turn on the first session")
    second = ledger.open_session(KEY, session_id="r2")
    ledger.append_message(second, "user", "a turn on the second session")
    before = msgspec.to_builtins(replay(ledger.store.read_all()).guards)
    assert before["ledger"]["turns"] == 2
    let_age()
    assert compact_keys(ledger.store, older_than=AGE).events == 1
    assert msgspec.to_builtins(replay(ledger.store.read_all()).guards) == before


# -- snapshot -------------------------------------------------------------------------------------


def test_rebuild_from_a_snapshot_folds_only_the_later_events(ledger: Ledger) -> None:
    """After a snapshot, a rebuild of ``sessions`` folds just the events appended since."""
    session_id = ledger.open_session(KEY, session_id="snap")
    for i in range(5):
        ledger.append_message(session_id, "user", f"before snapshot {i}")
    report = jobs()["snapshot"](ledger.store)
    assert report.job == "snapshot"
    ledger.append_message(session_id, "user", "after 1")
    ledger.retract_messages(session_id, 2)
    ledger.append_message(session_id, "user", "after 2")
    views = dump_all(ledger.store, "session_heads", "transcript_messages")
    assert rebuild(ledger.store, SessionsProjection(), from_snapshot=True) == 3
    assert dump_all(ledger.store, "session_heads", "transcript_messages") == views
    assert verify(ledger.store, SessionsProjection()) == []
    assert rebuild(ledger.store, SessionsProjection(), from_snapshot=False) == 2 + 5 + 3


def test_rebuild_of_keys_from_a_snapshot_keeps_active_sessions(ledger: Ledger) -> None:
    """The keys projection rebuilt from a snapshot plus later switches is the live one."""
    first = ledger.open_session(KEY, session_id="s1")
    jobs()["snapshot"](ledger.store)
    ledger.open_session(KEY, session_id="s2")
    ledger.switch_session(KEY, first)
    assert rebuild(ledger.store, KeysProjection(), from_snapshot=True) == 3
    assert ledger.active_session(KEY) == first
    assert verify(ledger.store, KeysProjection()) == []


def test_snapshot_dry_run_writes_nothing(ledger: Ledger) -> None:
    """``snapshot(dry_run=True)`` reports sizes and stores no snapshot."""
    ledger.open_session(KEY)
    before = dump_all(ledger.store)
    report = jobs()["snapshot"](ledger.store, dry_run=True)
    assert report.dry_run
    assert report.sessions == 2  # the two inline projections
    assert dump_all(ledger.store) == before


def test_a_plain_rebuild_repairs_a_view_even_after_a_snapshot_of_the_damage(
    ledger: Ledger,
) -> None:
    """Rebuild reads the log by default, so a snapshot taken of a damaged view cannot keep it."""
    session_id = ledger.open_session(KEY, session_id="damaged")
    ledger.append_message(session_id, "user", "hello")
    with ledger.store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE session_heads SET message_count = 99")
    jobs()["snapshot"](ledger.store)
    rebuild(ledger.store, SessionsProjection())
    head = ledger.head(session_id)
    assert head is not None
    assert head.message_count == 1
    assert verify(ledger.store, SessionsProjection()) == []


# -- vacuum ----------------------------------------------------------------------------------------


def test_vacuum_reports_sizes_and_shrinks_after_a_big_archive(ledger: Ledger) -> None:
    """Vacuum reports integer sizes; on SQLite the file does not grow and frees archived pages."""
    for i in range(4):
        session_id = ledger.open_session(f"bulk:{i}")
        ledger.append_messages(
            session_id,
            [{"role": "user", "content": f"{i}-{n} " + "x" * 2000} for n in range(60)],
        )
        ledger.close_session(session_id)
    archive(ledger.store, older_than=None)
    report = vacuum(ledger.store)
    assert isinstance(report.bytes_before, int)
    assert isinstance(report.bytes_after, int)
    assert report.bytes_before > 0
    if ledger.store.engine.dialect.name == "sqlite":
        assert report.bytes_after <= report.bytes_before
        assert report.bytes_after < report.bytes_before, report.details


def test_vacuum_dry_run_changes_no_size(ledger: Ledger) -> None:
    """A dry-run vacuum reports and leaves the database size as it was."""
    session_id = ledger.open_session("bulk:0")
    ledger.append_messages(session_id, [{"role": "user", "content": "y" * 3000}] * 1)
    ledger.close_session(session_id)
    archive(ledger.store, older_than=None)
    planned = vacuum(ledger.store, dry_run=True)
    assert planned.dry_run
    assert vacuum(ledger.store, dry_run=True).bytes_before == planned.bytes_before
