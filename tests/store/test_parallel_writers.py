"""Writers of different streams do not wait for each other, and readers still never skip.

PostgreSQL takes no global append lock: one stream's writers queue on that stream's lock, other
streams' writers commit in parallel, and positions come from transaction ids, so a reader of
the whole log stays below the oldest transaction still running. These tests hold transactions
open on purpose to show each half: who waits, who does not, and what a reader sees meanwhile.
The multi-process run (8 writers, a tailing reader and a transaction that commits last) runs on
both backends.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ledger import EventStore, StreamAppend
from ledger.config import Settings
from tests import controls

CTX = multiprocessing.get_context("spawn")
TIMEOUT = 30.0


def _open(url: str, writer: str) -> EventStore:
    settings = Settings.from_env({})
    return EventStore.open(url, writer=writer, settings=settings, inline_projections=())


@contextlib.contextmanager
def _held_append(store: EventStore, stream: str, count: int = 1) -> Iterator[list[int]]:
    """An append to ``stream`` left uncommitted until the block ends; yields its positions."""
    with store.transaction() as conn:
        part = StreamAppend(stream=stream, events=controls.messages(count, "x"))
        yield list(store.append_in(conn, [part])[0].positions)


def _in_thread(func: Any) -> tuple[threading.Thread, list[Any]]:
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(func()), daemon=True)
    thread.start()
    return thread, done


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_an_append_to_another_stream_does_not_wait_for_an_open_one(migrated_url: str) -> None:
    """While a transaction holds an append to stream A open, an append to B commits at once."""
    with _open(migrated_url, "a") as first, _open(migrated_url, "b") as second:
        with _held_append(first, "stream-a"):
            thread, done = _in_thread(lambda: second.append("stream-b", [controls.message("x")]))
            thread.join(5)
            assert done, "the append to another stream waited for the open transaction"
        # Log order is the order transactions began to write: A's event comes first.
        assert [r.stream for r in second.read_all()] == ["stream-a", "stream-b"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_an_append_to_the_same_stream_waits_and_takes_the_next_sequence(migrated_url: str) -> None:
    """A second writer of the same stream waits for the first to commit, then follows it."""
    with _open(migrated_url, "a") as first, _open(migrated_url, "b") as second:
        with _held_append(first, "stream-a"):
            thread, done = _in_thread(lambda: second.append("stream-a", [controls.message("x")]))
            thread.join(0.5)
            assert not done, "the second writer did not wait for the stream's lock"
        thread.join(TIMEOUT)
        assert done, "the second writer never finished"
        assert done[0].sequence == 2
        positions = [(r.sequence, r.position) for r in second.read_stream("stream-a")]
        assert [s for s, _ in positions] == [1, 2]
        assert positions[0][1] < positions[1][1], "positions do not follow sequences"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_a_reader_holds_back_what_committed_behind_an_open_older_transaction(
    migrated_url: str,
) -> None:
    """B commits while older A is open: B is not read until A commits, then both, in order."""
    with _open(migrated_url, "a") as first, _open(migrated_url, "b") as second:
        before = second.last_position()
        with _held_append(first, "stream-a", 3) as held:
            newer = second.append("stream-b", controls.messages(2, "x")).positions
            assert list(second.read_all(before)) == []
            assert second.last_position() == before, "last_position ran ahead of the horizon"
        read = [r.position for r in second.read_all(before)]
    assert read == [*held, *newer], "not every event, or not in position order"


def _append_for(url: str, worker: int, seconds: float, start: Any) -> list[int]:
    """Append 1-3 events, to this worker's stream or a shared one, until ``seconds`` pass."""
    positions: list[int] = []
    with _open(url, f"writer-{worker}") as store:
        start.wait(TIMEOUT)
        stop_at = time.monotonic() + seconds
        for i in itertools.count():
            if time.monotonic() > stop_at:
                break
            stream = "shared" if i % 3 == 0 else f"own-{worker}"
            positions += store.append(stream, controls.messages(1 + i % 3, "x")).positions
    return positions


def _child(out: Any, index: int, *args: Any) -> None:
    out.put((index, _append_for(*args)))


@pytest.mark.slow
def test_eight_writers_a_tail_and_a_late_commit_deliver_every_event_once(
    migrated_url: str,
) -> None:
    """8 writer processes, a transaction committing last, a tail: nothing missed or repeated."""
    workers, seconds = 8, 2.0
    start, out = CTX.Barrier(workers + 1), CTX.Queue()
    procs = [
        CTX.Process(target=_child, args=(out, w, migrated_url, w, seconds, start), daemon=True)
        for w in range(workers)
    ]
    tailed: list[int] = []
    with _open(migrated_url, "reader") as reader, _open(migrated_url, "late") as late:
        begin = reader.last_position()
        try:
            for proc in procs:
                proc.start()
            # Held open across all the writers' commits (on SQLite they wait for it).
            with _held_append(late, "late", 5) as held:
                start.wait(TIMEOUT)
                deadline = time.monotonic() + seconds / 2
                after = begin
                while time.monotonic() < deadline:
                    for record in reader.read_all(after, batch_size=50):
                        tailed.append(record.position)
                        after = record.position
            reports = dict(out.get(timeout=TIMEOUT + seconds) for _ in procs)
            for proc in procs:
                proc.join(TIMEOUT)
        finally:
            for proc in procs:
                if proc.is_alive():
                    proc.kill()
        for record in reader.read_all(after):
            tailed.append(record.position)
        stored = [record.position for record in reader.read_all(begin)]
    acked = sorted([*held, *(p for positions in reports.values() for p in positions)])
    assert sorted(stored) == acked, "stored events differ from the acknowledged ones"
    assert tailed == stored, "the tail skipped, repeated or reordered events"
    assert all(a < b for a, b in itertools.pairwise(tailed))
