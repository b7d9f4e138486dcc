"""Compaction under failure: injected errors, ``kill -9`` mid-archive, concurrent appenders.

A job works one session per transaction, so an error or a killed process at any point leaves
every session either fully live or fully archived (never split), loses no event, and a rerun
finishes the work. Appends from another process while archive and retention run are never
lost and never deadlock. Child processes use the ``spawn`` context; every wait has a timeout.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import random
import signal
import time
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from ledger import EventStore, Ledger
from ledger.config import Settings
from ledger.facade import session_stream
from ledger.maintenance import _jobs as compaction
from ledger.maintenance import archive, restore, retention
from ledger.schema import archive_segments, events, session_tombstones, streams
from projections.sessions import SessionsProjection
from tests.helpers import total_events
from tests.maintenance.support import (
    AGE,
    archived_streams,
    dump_all,
    event_rows,
    let_age,
    segment_count,
    verify_all,
)

CTX = multiprocessing.get_context("spawn")
TIMEOUT = 30.0
#: Fast commits for bulk test data; ``kill -9`` is a process crash, which WAL survives anyway.
FAST = {"LEDGER_SQLITE_SYNCHRONOUS": "NORMAL"}


class Injected(RuntimeError):
    """The failure the tests inject."""


@pytest.fixture
def ledger(migrated_url: str) -> Iterator[Ledger]:
    """A ``Ledger`` (writer ``gateway-1``) with fast SQLite commits, on each backend."""
    with Ledger.open(migrated_url, writer="gateway-1", settings=Settings.from_env(FAST)) as led:
        yield led


def write_sessions(ledger: Ledger, count: int, messages: int = 3) -> list[str]:
    """``count`` closed sessions, each written in one go (their events are contiguous)."""
    ids = []
    for i in range(count):
        session_id = ledger.open_session(f"bulk:{i % 4}", session_id=f"bulk-{i:03d}")
        ledger.append_messages(
            session_id,
            [{"role": "user", "content": f"message {n} of {session_id}"} for n in range(messages)],
        )
        ledger.close_session(session_id)
        ids.append(session_id)
    return ids


def assert_whole(store: EventStore, session_ids: list[str], expected_total: int) -> int:
    """Every session is fully live or fully archived; returns how many are archived."""
    archived = 0
    with store.engine.connect() as conn:
        live = dict(
            conn.execute(sa.select(events.c.stream, sa.func.count()).group_by(events.c.stream))
            .tuples()
            .all()
        )
        segments = dict(
            conn.execute(sa.select(archive_segments.c.stream, archive_segments.c.event_count))
            .tuples()
            .all()
        )
        heads = dict(conn.execute(sa.select(streams.c.stream, streams.c.sequence)).tuples().all())
        flags = dict(conn.execute(sa.select(streams.c.stream, streams.c.archived)).tuples().all())
    for session_id in session_ids:
        stream = session_stream(session_id)
        in_events, in_segment = live.get(stream, 0), segments.get(stream, 0)
        assert (in_events == 0) != (in_segment == 0), f"{stream} split: {in_events}/{in_segment}"
        assert in_events + in_segment == heads[stream], f"{stream} lost events"
        assert flags[stream] is (in_segment > 0), f"{stream} archived flag is wrong"
        archived += in_segment > 0
    assert total_events(store) == expected_total
    return archived


# -- injected failures ------------------------------------------------------------------------


def _failing_on(call: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the ``call``-th archive_stream fail after doing its work, before the commit."""
    real = compaction.archive_stream
    calls: list[str] = []

    def archive_then_fail(conn: sa.Connection, stream: str, **options: Any) -> Any:
        calls.append(stream)
        info = real(conn, stream, **options)
        if len(calls) == call:
            assert conn.in_transaction()
            raise Injected(f"after archiving {stream}, before the commit")
        return info

    monkeypatch.setattr(compaction, "archive_stream", archive_then_fail)
    return calls


def test_a_failure_before_the_commit_leaves_the_session_unchanged(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error after the segment is written but before commit rolls the session back whole."""
    write_sessions(ledger, 3)
    let_age()
    before = dump_all(ledger.store)
    calls = _failing_on(1, monkeypatch)
    with pytest.raises(Injected):
        archive(ledger.store, older_than=AGE)
    assert len(calls) == 1
    assert dump_all(ledger.store) == before


def test_a_failure_midway_keeps_the_sessions_done_before_it(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure on the third session keeps the first two archived and the rest whole."""
    ids = write_sessions(ledger, 5)
    total = total_events(ledger.store)
    let_age()
    _failing_on(3, monkeypatch)
    with pytest.raises(Injected):
        archive(ledger.store, older_than=AGE)
    assert assert_whole(ledger.store, ids, total) == 2


def test_a_rerun_after_a_failure_completes_the_archive(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an injected failure the next run archives every remaining session, losing none."""
    ids = write_sessions(ledger, 5)
    rows = event_rows(ledger.store)
    total = total_events(ledger.store)
    let_age()
    _failing_on(3, monkeypatch)
    with pytest.raises(Injected):
        archive(ledger.store, older_than=AGE)
    monkeypatch.undo()
    assert archive(ledger.store, older_than=AGE).sessions == 3
    assert assert_whole(ledger.store, ids, total) == len(ids)
    assert verify_all(ledger.store) == {}
    for session_id in ids:
        restore(ledger.store, session_id)
    assert event_rows(ledger.store) == rows


class _FailingForget:
    """A forgetting projection that fails after the sessions projection did its part."""

    name = "boom"

    def forget(self, conn: sa.Connection, session_id: str, records: Any) -> None:
        raise Injected(f"while forgetting {session_id}")


def test_a_failure_during_a_purge_leaves_the_session_unpurged(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retention failing inside a purge rolls back: events, head and views all stay."""
    write_sessions(ledger, 2)
    let_age()
    before = dump_all(ledger.store)
    monkeypatch.setattr(compaction, "forgetters", lambda: [SessionsProjection(), _FailingForget()])
    with pytest.raises(Injected):
        retention(ledger.store, older_than=AGE)
    assert dump_all(ledger.store) == before
    with ledger.store.engine.connect() as conn:
        tombstones = conn.execute(sa.select(sa.func.count()).select_from(session_tombstones))
        assert tombstones.scalar_one() == 0
    monkeypatch.undo()
    assert retention(ledger.store, older_than=AGE).sessions == 2
    assert verify_all(ledger.store) == {}


def test_an_append_after_retention_chose_its_sessions_is_not_lost(
    ledger: Ledger, migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message acknowledged while retention runs survives it (the session is no longer idle)."""
    idle = ledger.open_session("race:1", session_id="idle")
    ledger.append_message(idle, "user", "before")
    ledger.open_session("race:1", session_id="current")  # ``idle`` is no longer active
    let_age()
    stream = session_stream(idle)
    real = ledger.store.transaction
    acked: list[Any] = []

    def transaction_after_a_late_append(*args: Any, **kwargs: Any) -> Any:
        # Retention has scanned for candidates; another process appends before the purge.
        if not acked:
            with Ledger.open(migrated_url, writer="gateway-2") as other:
                acked.append(other.append_message(idle, "user", "late but acknowledged"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ledger.store, "transaction", transaction_after_a_late_append)
    retention(ledger.store, older_than=AGE)
    monkeypatch.undo()
    (result,) = acked
    stored = {r.event_id for r in ledger.read_stream(stream)}
    assert result.event_ids[0] in stored, "an acknowledged append was purged"


# -- kill -9 --------------------------------------------------------------------------------------


def _archive_in_child(url: str, started: Any, done: Any) -> None:
    """Archive every session, counting committed sessions in ``done`` (until killed)."""
    with EventStore.open(url, writer="archiver", settings=Settings.from_env(FAST)) as store:
        started.set()

        def advance(n: int) -> None:
            with done.get_lock():
                done.value += n

        archive(store, older_than=AGE, progress=advance)


@pytest.mark.slow
def test_kill_9_during_archive_leaves_every_session_whole(
    ledger: Ledger, migrated_url: str
) -> None:
    """Killed at random points, archive splits no stream and loses no event; a rerun ends it."""
    ids = write_sessions(ledger, 90)
    rows = event_rows(ledger.store)
    total = total_events(ledger.store)
    let_age()
    rng = random.Random(os.getpid())
    archived = 0
    for _ in range(3):
        started, done = CTX.Event(), CTX.Value("i", 0)
        proc = CTX.Process(target=_archive_in_child, args=(migrated_url, started, done))
        proc.start()
        try:
            assert started.wait(TIMEOUT), "the archiver did not start"
            target = rng.randint(1, 12)
            deadline = time.monotonic() + TIMEOUT
            while done.value < target and proc.is_alive():
                assert time.monotonic() < deadline, "the archiver made no progress"
                time.sleep(0.001)
            time.sleep(rng.random() * 0.004)  # land inside a later session's transaction
            os.kill(proc.pid, signal.SIGKILL)
            proc.join(TIMEOUT)
            assert proc.exitcode == -signal.SIGKILL, "the archiver finished before the kill"
        finally:
            if proc.is_alive():
                proc.kill()
                proc.join(5)
        now = assert_whole(ledger.store, ids, total)
        assert now > archived
        archived = now
    assert archive(ledger.store, older_than=AGE).sessions == len(ids) - archived
    assert assert_whole(ledger.store, ids, total) == len(ids)
    assert archived_streams(ledger.store) == {session_stream(s) for s in ids}
    assert verify_all(ledger.store) == {}
    for session_id in ids:
        restore(ledger.store, session_id)
    assert event_rows(ledger.store) == rows
    assert segment_count(ledger.store) == 0


# -- concurrent appenders --------------------------------------------------------------------


def _append_in_child(url: str, session_ids: list[str], count: int, out: Any) -> None:
    """Append ``count`` messages round-robin; report every acknowledgement (or the error)."""
    try:
        acks = []
        with Ledger.open(url, writer="appender", settings=Settings.from_env(FAST)) as led:
            for i in range(count):
                session_id = session_ids[i % len(session_ids)]
                result = led.append_message(session_id, "user", f"concurrent {i}")
                acks.append((session_id, result.sequence, str(result.event_ids[0])))
                time.sleep(0.001)
        out.put(("ok", acks))
    except BaseException:
        out.put(("error", traceback.format_exc()))


@pytest.mark.slow
def test_appends_during_archive_and_retention_are_all_kept(
    ledger: Ledger, migrated_url: str
) -> None:
    """Another process appending while archive and retention loop loses nothing, no deadlock."""
    cold = write_sessions(ledger, 20, messages=2)
    hot = [ledger.open_session(f"hot:{i}", session_id=f"hot-{i}") for i in range(3)]
    let_age()
    results: Any = CTX.Queue()
    proc = CTX.Process(target=_append_in_child, args=(migrated_url, hot, 150, results))
    proc.start()
    runs = {"archive": 0, "retention": 0}
    outcome = None
    try:
        deadline = time.monotonic() + TIMEOUT
        while outcome is None:
            assert time.monotonic() < deadline, "the appender did not finish (deadlock?)"
            runs["archive"] += archive(ledger.store, older_than=AGE).sessions
            runs["retention"] += retention(ledger.store, older_than=AGE).sessions
            try:
                outcome = results.get(timeout=0.01)
            except queue.Empty:
                continue
        proc.join(TIMEOUT)
        assert not proc.is_alive(), "the appender did not exit"
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    status, acks = outcome
    assert status == "ok", acks
    assert len(acks) == 150
    assert runs["retention"] == len(cold)
    assert runs["archive"] > len(cold), "no hot session was archived between appends"
    for session_id in hot:
        mine = [(seq, eid) for sid, seq, eid in acks if sid == session_id]
        stored = {
            (r.sequence, str(r.event_id)) for r in ledger.read_stream(session_stream(session_id))
        }
        assert set(mine) <= stored, f"{session_id} lost acknowledged appends"
        head = ledger.head(session_id)
        assert head is not None
        assert (head.sequence, head.message_count) == (1 + len(mine), len(mine))
    assert verify_all(ledger.store) == {}


@pytest.mark.slow
def test_archive_waits_for_a_long_append_transaction_without_deadlock(
    ledger: Ledger, migrated_url: str
) -> None:
    """An archive run started while an append transaction holds the session's stream waits."""
    session_id = ledger.open_session("lock:1", session_id="locked")
    ledger.close_session(session_id)
    with Ledger.open(migrated_url, writer="holder", settings=Settings.from_env(FAST)) as holder:
        started, done = CTX.Event(), CTX.Value("i", 0)
        with holder.store.transaction(streams=[session_stream(session_id)]) as conn:
            conn.execute(sa.select(sa.func.count()).select_from(events))
            proc = CTX.Process(target=_archive_in_child, args=(migrated_url, started, done))
            proc.start()
            try:
                assert started.wait(TIMEOUT), "the archiver did not start"
                time.sleep(0.2)
                assert done.value == 0, "archive committed while the stream was locked"
            except BaseException:
                proc.kill()
                raise
        proc.join(TIMEOUT)
        assert proc.exitcode == 0, "the archiver did not finish once the lock was released"
    assert done.value == 1
    assert archived_streams(ledger.store) == {session_stream(session_id)}
