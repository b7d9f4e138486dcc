"""A reader tailing the whole log sees every committed event exactly once, in order.

These reproduce the PostgreSQL skip where ``read_all`` decided "the window is empty" and "there
is something beyond it" in two different snapshots: a batch larger than the read window that
committed between the two statements was jumped over. Writers are OS processes appending big
batches through the public gateway API; the reader is another process (started first) tailing
``Ledger.read_all(after)`` in a loop, exactly as a gateway's tailing consumer would.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger import EventStore, Ledger, StreamAppend
from ledger.config import Settings
from ledger.schema import events, search_documents, usage_daily
from ledger.store._archive import archive_stream, restore_stream
from ledger.store._reader import READ_BATCH
from projections.checkpoint import read_checkpoints
from tests import controls

CTX = multiprocessing.get_context("spawn")
#: How long the writers keep writing; the reader tails until this plus a grace period.
WRITE_SECONDS = 3.0
GRACE_SECONDS = 2.0


def _open(url: str, writer: str) -> Ledger:
    return Ledger.open(url, writer=writer, settings=Settings.from_env({}))


def _write_batches(url: str, worker: int, batch: int, ready: Any, go: Any, out: Any) -> None:
    """Append ``batch``-message calls 0.05 s apart until the write window closes."""
    with _open(url, f"writer-{worker}") as ledger:
        sid = ledger.open_session(f"agent:main:skip:dm:{worker}")
        ready.wait()
        go.wait()
        stop_at = time.time() + WRITE_SECONDS
        calls = 0
        while time.time() < stop_at:
            ledger.append_messages(
                sid,
                [{"role": "user", "content": f"w{worker} b{calls} m{j}"} for j in range(batch)],
            )
            calls += 1
            time.sleep(0.05)
    out.put(("writer", worker, calls))


def _tail(url: str, start: int, ready: Any, go: Any, out: Any) -> None:
    """Tail ``read_all(after)`` from ``start`` and report every position seen, in order."""
    with _open(url, "reader") as ledger:
        ready.wait()
        go.wait()
        stop_at = time.time() + WRITE_SECONDS + GRACE_SECONDS
        after, seen = start, []
        while time.time() < stop_at:
            for record in ledger.read_all(after):
                seen.append(record.position)
                after = record.position
    out.put(("reader", 0, seen))


def _run(url: str, *, writers: int, batch: int) -> tuple[list[int], list[int]]:
    with _open(url, "setup") as ledger:
        start = ledger.store.last_position()
    ready = CTX.Barrier(writers + 2)
    go = CTX.Event()
    out: Any = CTX.Queue()
    procs = [CTX.Process(target=_tail, args=(url, start, ready, go, out), daemon=True)]
    procs += [
        CTX.Process(target=_write_batches, args=(url, w, batch, ready, go, out), daemon=True)
        for w in range(writers)
    ]
    try:
        for proc in procs:
            proc.start()
        ready.wait(timeout=60)
        go.set()
        reports = [out.get(timeout=WRITE_SECONDS + GRACE_SECONDS + 60) for _ in procs]
        for proc in procs:
            proc.join(30)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
    seen = next(value for kind, _, value in reports if kind == "reader")
    assert all(value > 0 for kind, _, value in reports if kind == "writer"), reports
    with _open(url, "check") as ledger:
        stored = [record.position for record in ledger.read_all(start)]
    return seen, stored


@pytest.mark.slow
@pytest.mark.parametrize(
    "batch",
    [READ_BATCH * 4 - 1, READ_BATCH * 4 + 500],
    ids=["just-under-the-window", "over-the-window"],
)
def test_tailing_reader_sees_every_batch_of_one_writer(migrated_url: str, batch: int) -> None:
    """One writer process appends big batches; the tailing reader process misses none."""
    seen, stored = _run(migrated_url, writers=1, batch=batch)
    assert len(stored) > batch
    assert sorted(set(stored) - set(seen))[:10] == [], "the tail skipped committed events"
    assert seen == stored, "the tail repeated or reordered events"


@pytest.mark.slow
def test_tailing_reader_sees_every_batch_of_two_writers(migrated_url: str) -> None:
    """Two writer processes append batches over the window; the reader misses and repeats none."""
    seen, stored = _run(migrated_url, writers=2, batch=READ_BATCH * 4 + 500)
    assert sorted(set(stored) - set(seen))[:10] == [], "the tail skipped committed events"
    assert seen == stored, "the tail repeated or reordered events"
    assert all(a < b for a, b in itertools.pairwise(seen))


# -- the projection runner, killed and restarted mid-run ----------------------------------------


def _run_projections(url: str, ready: Any) -> None:
    """Tail the log with the asynchronous projections until killed."""
    import threading

    from projections.runner import ProjectionRunner
    from projections.search import SearchProjection
    from projections.usage import UsageProjection

    with EventStore.open(url, writer="runner", settings=Settings.from_env({})) as store:
        runner = ProjectionRunner(store, [SearchProjection(), UsageProjection()], batch_size=700)
        ready.set()
        runner.run(threading.Event(), poll_interval=0.01)


def _indexed(url: str) -> tuple[int, int, int]:
    """(messages counted by usage, search documents, lowest checkpoint)."""
    with (
        EventStore.open(url, writer="check", settings=Settings.from_env({})) as store,
        store.engine.connect() as conn,
    ):
        usage = conn.execute(sa.select(sa.func.sum(usage_daily.c.messages))).scalar()
        docs = conn.execute(sa.select(sa.func.count()).select_from(search_documents)).scalar()
        marks = read_checkpoints(conn)
    # A projection the runner has not reached yet has no checkpoint row: that is 0, not absent.
    lowest = min(marks.get(name, 0) for name in ("search", "usage"))
    return int(usage or 0), int(docs or 0), lowest


@pytest.mark.slow
def test_a_killed_and_restarted_runner_applies_every_big_batch_exactly_once(
    migrated_url: str,
) -> None:
    """A runner process is SIGKILLed while big batches commit; its successor misses nothing."""
    ready, go, out = CTX.Barrier(2), CTX.Event(), CTX.Queue()
    writer = CTX.Process(
        target=_write_batches,
        args=(migrated_url, 0, READ_BATCH * 4 + 500, ready, go, out),
        daemon=True,
    )
    runners: list[Any] = []
    try:
        writer.start()
        ready.wait(timeout=60)
        go.set()
        for _ in range(2):  # two runners killed mid-run, while the writer is writing
            started = CTX.Event()
            runners.append(CTX.Process(target=_run_projections, args=(migrated_url, started)))
            runners[-1].start()
            assert started.wait(60)
            time.sleep(WRITE_SECONDS / 3)
            os.kill(runners[-1].pid, signal.SIGKILL)
            runners[-1].join(10)
        _, _, calls = out.get(timeout=WRITE_SECONDS + 60)
        writer.join(30)
        assert calls > 1
        started = CTX.Event()
        runners.append(CTX.Process(target=_run_projections, args=(migrated_url, started)))
        runners[-1].start()
        with Ledger.open(migrated_url, settings=Settings.from_env({})) as ledger:
            last = ledger.store.last_position()
            messages = sum(1 for r in ledger.read_all() if r.type == "MessageAppended")
        deadline = time.monotonic() + 120
        while _indexed(migrated_url)[2] < last:
            assert time.monotonic() < deadline, "the restarted runner did not catch up"
            time.sleep(0.1)
    finally:
        for proc in [writer, *runners]:
            if proc.is_alive():
                proc.kill()
                proc.join(10)
    usage, docs, _ = _indexed(migrated_url)
    assert (usage, docs) == (messages, messages)


# -- `ledger tail` ------------------------------------------------------------------------------


@pytest.mark.slow
def test_ledger_tail_prints_every_event_of_big_batches_once(
    migrated_url: str, tmp_path: Path
) -> None:
    """``ledger tail --json`` run beside a writer of big batches prints each event once."""
    with Ledger.open(migrated_url, settings=Settings.from_env({})) as ledger:
        start = ledger.store.last_position()
    ready, go, out = CTX.Barrier(2), CTX.Event(), CTX.Queue()
    writer = CTX.Process(
        target=_write_batches,
        args=(migrated_url, 0, READ_BATCH * 4 + 500, ready, go, out),
        daemon=True,
    )
    command = [
        str(Path(sys.executable).with_name("ledger")),
        "tail",
        "--url",
        migrated_url,
        "--json",
    ]
    printed = tmp_path / "tail.jsonl"  # a file, not a pipe: a full pipe would stall the tail
    tail = subprocess.Popen(
        [*command, "--after", str(start), "--interval", "0.01"], stdout=printed.open("wb")
    )
    try:
        writer.start()
        ready.wait(timeout=60)
        go.set()
        out.get(timeout=WRITE_SECONDS + 60)
        writer.join(30)
        time.sleep(GRACE_SECONDS)
    finally:
        tail.send_signal(signal.SIGINT)
        tail.wait(timeout=60)
        if writer.is_alive():
            writer.kill()
    seen = [json.loads(line)["position"] for line in printed.read_bytes().splitlines()]
    with Ledger.open(migrated_url, settings=Settings.from_env({})) as ledger:
        stored = [record.position for record in ledger.read_all(start)]
    assert len(stored) > READ_BATCH * 4
    assert seen == stored


# -- random interleavings of commits and reads --------------------------------------------------


class TailMachine(RuleBasedStateMachine):
    """Commits (some held open across reads and other commits), archives and purges, and a tail.

    The store has no inline projections: this is the log alone. Reads use small batches, so a
    read window (``4 x batch``) is often smaller than one append, the shape of the original bug.
    """

    store: EventStore

    def __init__(self) -> None:
        super().__init__()
        self.after = self.store.last_position()
        self.start = self.after
        self.tailed: list[int] = []
        self.pending: contextlib.ExitStack | None = None
        self.held = ""
        self.sqlite = self.store.engine.dialect.name == "sqlite"
        self.purged: set[str] = set()
        self.counter = itertools.count()

    def _events(self, count: int) -> list[Any]:
        return [controls.message("x", f"m{next(self.counter)}") for _ in range(count)]

    @precondition(lambda self: self.pending is None)
    @rule(stream=st.integers(0, 3), count=st.integers(1, 30))
    def append(self, stream: int, count: int) -> None:
        self.store.append(f"s-{stream}", self._events(count))
        self.purged.discard(f"s-{stream}")

    # PostgreSQL only (SQLite admits one writer): another stream's append commits while an
    # older transaction is still open, so it lies above the horizon until that one ends.
    @precondition(lambda self: self.pending is not None and not self.sqlite)
    @rule(stream=st.integers(0, 3), count=st.integers(1, 30))
    def append_beside_the_open_one(self, stream: int, count: int) -> None:
        name = f"s-{stream}" if f"s-{stream}" != self.held else "s-beside"
        self.store.append(name, self._events(count))
        self.purged.discard(name)

    @precondition(lambda self: self.pending is None)
    @rule(stream=st.integers(0, 3), count=st.integers(1, 30))
    def hold_an_append_open(self, stream: int, count: int) -> None:
        self.pending = contextlib.ExitStack()
        conn = self.pending.enter_context(self.store.transaction())
        self.store.append_in(conn, [StreamAppend(stream=f"s-{stream}", events=self._events(count))])
        self.held = f"s-{stream}"

    @precondition(lambda self: self.pending is not None)
    @rule(commit=st.booleans())
    def finish_the_open_append(self, commit: bool) -> None:
        assert self.pending is not None
        if commit:
            self.pending.close()
            self.purged.discard(self.held)
        else:  # an exception through the transaction rolls it back
            self.pending.__exit__(RuntimeError, RuntimeError("roll back"), None)
        self.pending = None

    @precondition(lambda self: self.pending is None)
    @rule(stream=st.integers(0, 3))
    def archive(self, stream: int) -> None:
        with self.store.transaction() as conn:
            archive_stream(conn, f"s-{stream}")

    @precondition(lambda self: self.pending is None)
    @rule(stream=st.integers(0, 3))
    def purge(self, stream: int) -> None:
        with self.store.transaction() as conn:
            restore_stream(conn, f"s-{stream}")
            conn.execute(events.delete().where(events.c.stream == f"s-{stream}"))
        self.purged.add(f"s-{stream}")

    @rule(size=st.integers(1, 7), rounds=st.integers(1, 3))
    def read(self, size: int, rounds: int) -> None:
        for record in itertools.islice(self.store.read_all(self.after, batch_size=size), rounds):
            self.tailed.append(record.position)
            self.after = record.position

    @invariant()
    def the_tail_is_exactly_the_log_up_to_where_it_is(self) -> None:
        everything = [r.position for r in self.store.read_all(self.start)]
        # Purged events may have been read before they were purged; nothing else is extra.
        assert set(everything) & {p for p in everything if p <= self.after} <= set(self.tailed)
        assert all(a < b for a, b in itertools.pairwise(self.tailed))

    def teardown(self) -> None:
        if self.pending is not None:
            self.pending.close()
        for record in self.store.read_all(self.after):  # read to the end: nothing is left out
            self.tailed.append(record.position)
        everything = [r.position for r in self.store.read_all(self.start)]
        assert set(everything) <= set(self.tailed)
        assert [p for p in self.tailed if p in set(everything)] == everything


def test_random_interleavings_of_commits_and_reads_never_skip(migrated_url: str) -> None:
    """Hypothesis drives commits, held-open appends, archives, purges and tail reads."""
    with EventStore.open(
        migrated_url, writer="machine", settings=Settings.from_env({}), inline_projections=[]
    ) as store:
        TailMachine.store = store
        run_state_machine_as_test(
            TailMachine,
            settings=settings(max_examples=25, stateful_step_count=30, deadline=None),
        )


def test_a_batch_committing_during_a_read_round_is_not_jumped_over(migrated_url: str) -> None:
    """A batch bigger than the read window commits right after the reader's first statement.

    This is the original skip made deterministic: the reader found its window empty, the batch
    committed, and a second statement saw rows beyond the window and moved past them. Whatever
    the reader runs after its first statement, the batch must come out whole on the next read.
    """
    options = {"settings": Settings.from_env({}), "inline_projections": []}
    with (
        EventStore.open(migrated_url, writer="reader", **options) as reader,
        EventStore.open(migrated_url, writer="writer", **options) as writer,
    ):
        writer.append("s-0", [controls.message("x")])
        after = reader.last_position()
        batch = [controls.message("x", f"m{i}") for i in range(50)]  # window: 4 x 5 = 20
        landed: list[int] = []

        def commit_once(*_: object) -> None:
            if not landed:
                landed.extend(writer.append("s-0", batch).positions)

        sa.event.listen(reader.engine, "after_cursor_execute", commit_once)
        try:
            first = [r.position for r in reader.read_all(after, batch_size=5)]
        finally:
            sa.event.remove(reader.engine, "after_cursor_execute", commit_once)
        rest = [r.position for r in reader.read_all(first[-1] if first else after)]
    assert first + rest == landed
