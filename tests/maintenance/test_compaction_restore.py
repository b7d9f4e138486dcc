"""Restoring archived sessions, and damaged segments, on SQLite and PostgreSQL.

Restore must put back byte-identical rows, an append to an archived session restores it first,
a dry run or a live session changes nothing, and a damaged segment is refused by every reader
and never restored.
"""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa

from ledger import Ledger, LedgerError
from ledger.config import Settings
from ledger.maintenance import restore
from ledger.schema import archive_segments, events, streams
from ledger.streams import session_stream
from tests.maintenance.support import (
    archive_all,
    archived_streams,
    dump_all,
    event_rows,
    invoke,
    segment_count,
    verify_all,
)

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
