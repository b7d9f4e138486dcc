"""The ``archive`` compaction job, on SQLite and PostgreSQL.

Archiving moves each session's events out of the ``events`` table into one compressed segment
(by default only closed sessions past the age) and writes no view row; a second run finds
nothing to do, and a dry run writes nothing.
"""

from __future__ import annotations

import json

from ledger import Ledger
from ledger.maintenance import archive
from ledger.streams import key_stream, session_stream
from tests.maintenance.support import (
    AGE,
    KEY_A,
    KEY_B,
    archive_all,
    archived_streams,
    dump_all,
    invoke,
    let_age,
    live_streams,
    segment_count,
)


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


def test_heads_keys_and_transcript_rows_are_unchanged_by_archive(
    ledger: Ledger, sessions: dict[str, str]
) -> None:
    """Archive writes no view row: heads, active sessions and transcripts stay as they were."""
    names = ("session_heads", "session_keys", "transcript_messages")
    before = dump_all(ledger.store, *names)
    archive_all(ledger)
    assert dump_all(ledger.store, *names) == before


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
