"""Concurrency tests of ``EventStore``: racing writers, tailing readers, killed writers.

Each test runs on SQLite and PostgreSQL through ``migrated_url`` (except the SQLite-only
first-open race). OS processes are started with the ``spawn`` context, and every wait has a
timeout, so a deadlock fails the test instead of hanging CI.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Barrier as ProcessBarrier
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ledger import EventStore, StreamAppend, WrongExpectedVersionError
from ledger.config import Settings
from ledger.schema import events as events_table
from ledger.schema import streams as streams_table
from tests import controls

CTX = multiprocessing.get_context("spawn")
#: Longest any single wait (barrier, thread join, progress) may take before the test fails.
TIMEOUT = 20.0
#: Longest the test waits for children to report; more than TIMEOUT so their own errors surface.
REPORT_TIMEOUT = TIMEOUT + 10

#: Rounds of the first-open race; each is a new file, opened by both processes at once.
NEW_FILE_ROUNDS = 60

Ack = tuple[str, int, int, str]
"""What a writer was told about one stored event: (stream, sequence, position, event_id)."""


# -- helpers -----------------------------------------------------------------------------------


def _open(url: str, writer: str) -> EventStore:
    return EventStore.open(url, writer=writer, settings=Settings.from_env({}))


def _acks(result: Any) -> list[Ack]:
    return [
        (result.stream, seq, pos, str(eid))
        for seq, pos, eid in zip(result.sequences, result.positions, result.event_ids, strict=True)
    ]


def _child(queue: Any, index: int, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """Run ``target`` in a child process and report its return value or traceback."""
    try:
        queue.put((index, "ok", target(*args)))
    except BaseException:
        queue.put((index, "error", traceback.format_exc()))
        for arg in args:  # release the siblings waiting for this child at a start barrier
            if isinstance(arg, ProcessBarrier):
                arg.abort()


class _Processes:
    """Spawned children that report through one queue; any left running are killed at exit."""

    def __init__(self) -> None:
        self.queue: Any = CTX.Queue()
        self.procs: list[Any] = []
        self.found: dict[int, Any] = {}
        self.errors: list[str] = []

    def start(self, target: Callable[..., Any], *args: Any) -> Any:
        proc = CTX.Process(
            target=_child, args=(self.queue, len(self.procs), target, args), daemon=True
        )
        proc.start()
        self.procs.append(proc)
        return proc

    def _take(self, item: tuple[int, str, Any]) -> None:
        index, status, value = item
        if status == "ok":
            self.found[index] = value
        else:
            self.errors.append(f"child {index} failed:\n{value}")

    def done(self) -> bool:
        """Whether every child has reported (drains the queue without blocking)."""
        while True:
            try:
                self._take(self.queue.get_nowait())
            except queue.Empty:
                return len(self.found) + len(self.errors) == len(self.procs)

    def results(self, timeout: float = REPORT_TIMEOUT) -> list[Any]:
        """Every child's return value, in start order; fails on an error or a timeout."""
        deadline = time.monotonic() + timeout
        while len(self.found) + len(self.errors) < len(self.procs):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"children did not report within {timeout}s")
            try:
                self._take(self.queue.get(timeout=remaining))
            except queue.Empty:
                continue
        self.join(deadline - time.monotonic())
        assert not self.errors, "\n".join(self.errors)
        return [self.found[i] for i in range(len(self.procs))]

    def join(self, timeout: float = REPORT_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.join(max(0.0, deadline - time.monotonic()))
        hung = [proc.pid for proc in self.procs if proc.is_alive()]
        assert not hung, f"child processes {hung} did not exit within {timeout}s"

    def kill_leftovers(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join(5)


@contextmanager
def _processes() -> Iterator[_Processes]:
    group = _Processes()
    try:
        yield group
    finally:
        group.kill_leftovers()


def _stored_rows(conn: sa.Connection) -> list[Ack]:
    t = events_table
    query = sa.select(t.c.stream, t.c.sequence, t.c.position, t.c.event_id).order_by(t.c.position)
    return [(s, seq, pos, str(eid)) for s, seq, pos, eid in conn.execute(query)]


def _assert_consistent(conn: sa.Connection) -> dict[str, int]:
    """Streams are gap-free from 1, positions unique, and each head row is its max(sequence).

    Returns each stream's head sequence.
    """
    rows = _stored_rows(conn)
    positions = [pos for _, _, pos, _ in rows]
    assert len(set(positions)) == len(positions), "duplicate positions"
    assert len({eid for *_, eid in rows}) == len(rows), "duplicate event_ids"
    by_stream: dict[str, list[tuple[int, int]]] = {}
    for stream, seq, pos, _ in rows:
        by_stream.setdefault(stream, []).append((seq, pos))
    for stream, entries in by_stream.items():
        sequences = sorted(seq for seq, _ in entries)
        assert sequences == list(range(1, len(entries) + 1)), f"{stream} has gaps or duplicates"
        in_log_order = [seq for seq, _ in entries]
        assert in_log_order == sequences, f"{stream}: sequence order differs from position order"
    # Each head row holds the stream's highest sequence.
    expected_heads = {
        stream: max(seq for seq, _ in entries) for stream, entries in by_stream.items()
    }
    t = streams_table
    heads = dict(conn.execute(sa.select(t.c.stream, t.c.sequence)).tuples().all())
    assert heads == expected_heads, "streams head table disagrees with the events"
    return heads


# -- child-process targets ---------------------------------------------------------------------


def _append_singles(url: str, worker: int, count: int, start: Any) -> list[Ack]:
    """Append ``count`` single events to this worker's stream and to the shared one."""
    acks: list[Ack] = []
    with _open(url, f"writer-{worker}") as store:
        start.wait(TIMEOUT)
        for _ in range(count):
            for stream in (f"own-{worker}", "shared"):
                acks += _acks(store.append(stream, [controls.message()]))
    return acks


def _append_mixed(url: str, worker: int, count: int, start: Any) -> list[Ack]:
    """Append batches of 1-3 events, and every fifth time to two streams in one transaction."""
    acks: list[Ack] = []
    with _open(url, f"writer-{worker}") as store:
        start.wait(TIMEOUT)
        for i in range(count):
            events = controls.messages(1 + i % 3)
            if i % 5 == 4:
                results = store.append_streams(
                    [
                        StreamAppend(stream=f"own-{worker}", events=events),
                        StreamAppend(stream="shared", events=controls.messages(2)),
                    ]
                )
            else:
                results = [store.append(f"own-{worker}" if i % 2 else "shared", events)]
            for result in results:
                acks += _acks(result)
    return acks


def _append_forever(url: str, ready: Any) -> None:
    """Append multi-event, multi-stream transactions until killed."""
    with _open(url, "doomed") as store:
        ready.set()
        i = 0
        while True:
            i += 1
            store.append_streams(
                [
                    StreamAppend(stream=f"s-{i % 3}", events=controls.messages(4)),
                    StreamAppend(stream="shared", events=controls.messages(3)),
                ]
            )


def _open_new_files(paths: list[str], worker: int, start: Any) -> list[int]:
    """Open each new SQLite file together with the other process, then append to it."""
    sequences = []
    for path in paths:
        start.wait(TIMEOUT)
        with _open(f"sqlite:///{path}", f"opener-{worker}") as store:
            sequences.append(store.append(f"own-{worker}", [controls.opened()]).sequence)
    return sequences


# -- tests -------------------------------------------------------------------------------------


def _race(
    store: EventStore, stream: str, rounds: int, barrier: threading.Barrier, out: list[Any]
) -> None:
    try:
        for expected in range(rounds):
            barrier.wait(TIMEOUT)
            try:
                result = store.append(stream, [controls.message()], expected_sequence=expected)
            except WrongExpectedVersionError as exc:
                out.append(("lost", exc.expected, exc.actual))
            else:
                out.append(("won", result.sequence))
    except BaseException as exc:
        out.append(("crashed", repr(exc)))


def test_same_expected_sequence_from_two_connections_exactly_one_wins(migrated_url: str) -> None:
    """Two stores appending at the same expected sequence together: one wins, one is refused."""
    rounds = 20
    stores = [_open(migrated_url, f"racer-{i}") for i in range(2)]
    try:
        barrier = threading.Barrier(2)
        outcomes: list[list[Any]] = [[], []]
        threads = [
            threading.Thread(
                target=_race, args=(store, "session-a", rounds, barrier, out), daemon=True
            )
            for store, out in zip(stores, outcomes, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        assert not any(thread.is_alive() for thread in threads), "a racer hung"
        for expected, pair in enumerate(zip(*outcomes, strict=True)):
            assert sorted(pair) == [("lost", expected, expected + 1), ("won", expected + 1)], (
                f"round {expected}: {pair}"
            )
        assert stores[0].head_sequence("session-a") == rounds
        assert [r.sequence for r in stores[1].read_stream("session-a")] == list(
            range(1, rounds + 1)
        )
    finally:
        for store in stores:
            store.close()


@pytest.mark.slow
def test_concurrent_processes_lose_and_duplicate_nothing(migrated_url: str) -> None:
    """Three processes appending to their own and a shared stream store every event exactly once."""
    workers, count = 3, 100
    start = CTX.Barrier(workers)
    with _processes() as group:
        for worker in range(workers):
            group.start(_append_singles, migrated_url, worker, count, start)
        acked = [ack for acks in group.results() for ack in acks]
    with _open(migrated_url, "checker") as store, store.engine.connect() as conn:
        heads = _assert_consistent(conn)
        stored = _stored_rows(conn)
    assert len(stored) == workers * count * 2
    assert sorted(stored) == sorted(acked), "stored events differ from the acknowledged ones"
    assert heads == {"shared": workers * count} | {f"own-{w}": count for w in range(workers)}


@pytest.mark.slow
def test_reader_tailing_read_all_sees_every_position_once_in_order(migrated_url: str) -> None:
    """A reader tailing ``read_all(after_position=last)`` during writes misses and repeats none."""
    workers, count = 3, 40
    start = CTX.Barrier(workers + 1)
    tailed: list[int] = []
    with _open(migrated_url, "reader") as store, _processes() as group:
        for worker in range(workers):
            group.start(_append_mixed, migrated_url, worker, count, start)
        try:
            start.wait(TIMEOUT)
        except threading.BrokenBarrierError:
            group.results()  # fails with the writer's traceback
            raise
        deadline = time.monotonic() + TIMEOUT
        last = 0
        writing = True
        while True:
            for record in store.read_all(after_position=last, batch_size=5):
                tailed.append(record.position)
                last = record.position
            if not writing:
                break
            writing = not group.done()  # a writer reports after its last commit
            time.sleep(0.005)
            assert time.monotonic() < deadline, "writers did not finish in time"
        acked = [ack for acks in group.results() for ack in acks]
        final = [record.position for record in store.read_all()]
    assert tailed == final, "the tail skipped or repeated positions"
    assert all(a < b for a, b in itertools.pairwise(tailed)), "not strictly ascending"
    assert sorted(final) == sorted(pos for _, _, pos, _ in acked)


@pytest.mark.slow
def test_killed_writer_leaves_the_store_consistent(migrated_url: str) -> None:
    """SIGKILL in the middle of appends leaves gap-free streams, true heads, and appends go on."""
    ready = CTX.Event()
    with _open(migrated_url, "survivor") as store, _processes() as group:
        proc = group.start(_append_forever, migrated_url, ready)
        assert ready.wait(TIMEOUT), "writer did not start"
        deadline = time.monotonic() + TIMEOUT
        while store.last_position() < 100:
            assert proc.is_alive(), "writer died before it was killed"
            assert time.monotonic() < deadline, "writer made no progress"
            time.sleep(0.01)
        time.sleep(0.037)  # land somewhere inside a later transaction
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(TIMEOUT)
        assert proc.exitcode == -signal.SIGKILL
    # A brand-new store; its write transaction waits until the dead writer's lock is released.
    with _open(migrated_url, "after") as store:
        with store.transaction() as conn:
            heads = _assert_consistent(conn)
        assert set(heads) == {"s-0", "s-1", "s-2", "shared"}
        for stream, head in heads.items():
            result = store.append(stream, [controls.message()], expected_sequence=head)
            assert result.sequence == head + 1
        with store.engine.connect() as conn:
            _assert_consistent(conn)


@pytest.mark.slow
def test_opening_a_new_sqlite_file_from_two_processes_migrates_once(tmp_path: Path) -> None:
    """Two processes opening the same new SQLite file together both succeed and can append."""
    paths = [str(tmp_path / f"race-{i}" / "ledger.db") for i in range(NEW_FILE_ROUNDS)]
    start = CTX.Barrier(2)
    with _processes() as group:
        for worker in range(2):
            group.start(_open_new_files, paths, worker, start)
        assert group.results() == [[1] * len(paths), [1] * len(paths)]
    for path in paths:
        with _open(f"sqlite:///{path}", "checker") as store, store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
            heads = _assert_consistent(conn)
        assert heads == {"own-0": 1, "own-1": 1}
