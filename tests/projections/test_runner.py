"""``ProjectionRunner`` driving the asynchronous projections (``search``, ``usage``).

The runner applies each batch and moves its checkpoint in one transaction, so these tests pin:
a rerun applies each event exactly once, a restart resumes from the checkpoint, a failure before
the checkpoint changes nothing, two runners never apply an event twice, and a runner tailing
concurrent writers never skips an event. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from ledger import EventStore, StreamAppend
from ledger.config import Settings
from ledger.errors import ProjectionError
from ledger.records import RecordedEvent
from ledger.views import SessionViews
from projections.base import Projection
from projections.checkpoint import read_checkpoints
from projections.runner import ProjectionRunner
from projections.search import SearchProjection
from projections.sessions import SessionsProjection
from projections.usage import UsageProjection
from tests import controls
from tests.helpers import total_events
from tests.projections.support import _documents, _seed, _usage

CTX = multiprocessing.get_context("spawn")
#: Longest any wait (threads, processes, the tailing runner) may take before the test fails.
TIMEOUT = 30.0


# -- helpers -----------------------------------------------------------------------------------


def _open(url: str, writer: str) -> EventStore:
    return EventStore.open(url, writer=writer, settings=Settings.from_env({}))


def _checkpoints(store: EventStore) -> dict[str, int]:
    with store.engine.connect() as conn:
        return read_checkpoints(conn)


# -- catching up ------------------------------------------------------------------------------


def test_catch_up_applies_every_event_to_each_projection(
    store: EventStore, runner: ProjectionRunner
) -> None:
    """catch_up returns one application per event per projection."""
    _seed(store)
    assert runner.catch_up() == 2 * total_events(store)


def test_checkpoint_is_the_last_position_after_catch_up(
    store: EventStore, runner: ProjectionRunner
) -> None:
    """After catch_up each projection's checkpoint is the log's last position."""
    _seed(store)
    runner.catch_up()
    last = store.last_position()
    assert _checkpoints(store) == {"search": last, "usage": last}


def test_rerunning_catch_up_applies_nothing(store: EventStore, runner: ProjectionRunner) -> None:
    """A second catch_up with no new events applies 0 and changes no view."""
    _seed(store)
    runner.catch_up()
    usage, documents = _usage(store), _documents(store)
    assert runner.catch_up() == 0
    assert (_usage(store), _documents(store)) == (usage, documents)


def test_a_new_runner_resumes_from_the_checkpoint(
    store: EventStore, runner: ProjectionRunner
) -> None:
    """A fresh runner (a restart) applies only the events appended since the checkpoint."""
    _seed(store)
    runner.catch_up()
    store.append("session-a", controls.messages(3, "a"))
    restarted = ProjectionRunner(store, [SearchProjection(), UsageProjection()], batch_size=2)
    assert restarted.catch_up() == 2 * 3
    assert _usage(store)["cli"] == (1, 6, 0, 18)


def test_small_batches_apply_the_same_as_one_batch(store: EventStore) -> None:
    """Batch size changes how many transactions run, never what the views hold."""
    _seed(store)
    applied = ProjectionRunner(
        store, [SearchProjection(), UsageProjection()], batch_size=1
    ).catch_up()
    assert applied == 2 * total_events(store)
    assert _usage(store) == {"cli": (1, 3, 0, 18), "telegram": (1, 1, 0, 3)}
    assert _documents(store) == 4


def test_runner_refuses_inline_projections(store: EventStore) -> None:
    """Inline projections belong to the store; handing one to a runner is a ValueError."""
    with pytest.raises(ValueError, match="sessions"):
        ProjectionRunner(store, [SessionsProjection()])


# -- failure injection -------------------------------------------------------------------------


class _FailOnce:
    """A ``before_checkpoint`` hook that raises on its ``fail_at``-th call (1-based), once."""

    def __init__(self, fail_at: int = 1, only: str | None = None) -> None:
        self.fail_at = fail_at
        self.only = only
        self.calls = 0
        self.fired = False

    def __call__(self, projection: Projection, batch: Sequence[RecordedEvent]) -> None:
        if self.only is not None and projection.name != self.only:
            return
        self.calls += 1
        if not self.fired and self.calls == self.fail_at:
            self.fired = True
            raise RuntimeError(f"injected failure in {projection.name}")


def test_a_failure_before_the_checkpoint_leaves_view_and_checkpoint_unchanged(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """An error after apply but before the checkpoint rolls back the view with the checkpoint."""
    _seed(store)
    runner.catch_up()
    before = (_usage(store), _documents(store), _checkpoints(store))
    store.append("session-a", [controls.message("a", "zebra crossing", token_count=2)])
    failing = ProjectionRunner(
        store, [SearchProjection(), UsageProjection()], before_checkpoint=_FailOnce()
    )
    with pytest.raises(RuntimeError, match="injected failure in search"):
        failing.catch_up()
    assert (_usage(store), _documents(store), _checkpoints(store)) == before
    assert views.search("zebra") == []


def test_a_rerun_after_a_failure_applies_each_event_exactly_once(store: EventStore) -> None:
    """After a mid-run failure the rerun completes, and every count is exact (nothing doubled)."""
    _seed(store)
    store.append("session-a", [controls.message("a", f"word{i}", token_count=1) for i in range(6)])
    hook = _FailOnce(fail_at=3, only="usage")
    runner = ProjectionRunner(
        store, [SearchProjection(), UsageProjection()], batch_size=2, before_checkpoint=hook
    )
    with pytest.raises(RuntimeError, match="injected failure in usage"):
        runner.catch_up()
    stalled = _checkpoints(store)["usage"]
    assert 0 < stalled < store.last_position()
    runner.catch_up()
    assert _checkpoints(store) == {"search": store.last_position(), "usage": store.last_position()}
    assert _usage(store) == {"cli": (1, 9, 0, 24), "telegram": (1, 1, 0, 3)}
    assert _documents(store) == 10


def test_an_error_inside_a_projection_is_a_projection_error_naming_it(store: EventStore) -> None:
    """A projection that raises surfaces as ProjectionError with its name and the position."""

    class Exploding(UsageProjection):
        def apply(self, conn: sa.Connection, records: Sequence[RecordedEvent]) -> None:
            raise ZeroDivisionError("boom")

    result = store.append("session-a", [controls.opened()])
    with pytest.raises(ProjectionError, match=rf"'usage' failed at position {result.position}"):
        ProjectionRunner(store, [Exploding()]).catch_up()
    assert _checkpoints(store).get("usage", 0) == 0


# -- concurrency -------------------------------------------------------------------------------


def _run_threads(targets: Sequence[Callable[[], Any]]) -> None:
    """Run each target in its own thread; re-raise the first failure; fail on a hang."""
    errors: list[str] = []

    def guard(target: Callable[[], Any]) -> None:
        try:
            target()
        except BaseException:
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=guard, args=(t,), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not [t for t in threads if t.is_alive()], "a thread hung"
    assert not errors, "\n".join(errors)


def test_two_runners_on_two_stores_never_apply_an_event_twice(
    migrated_url: str, store: EventStore
) -> None:
    """Two runners catching up at once on separate stores leave exact totals, without errors."""
    sessions, per_session = 4, 15
    for i in range(sessions):
        sid = f"s{i}"
        store.append(
            f"session-{sid}",
            [
                controls.opened(sid, source="cli"),
                *[controls.message(sid, f"text {j}", token_count=1) for j in range(per_session)],
            ],
        )
    barrier = threading.Barrier(2, timeout=TIMEOUT)
    applied: list[int] = []

    def catch_up(writer: str) -> None:
        with _open(migrated_url, writer) as own:
            runner = ProjectionRunner(own, [SearchProjection(), UsageProjection()], batch_size=3)
            barrier.wait()
            applied.append(runner.catch_up())

    _run_threads([lambda: catch_up("runner-1"), lambda: catch_up("runner-2")])
    total = sessions * (1 + per_session)
    assert sum(applied) == 2 * total
    assert _usage(store) == {"cli": (sessions, sessions * per_session, 0, sessions * per_session)}
    assert _documents(store) == sessions * per_session


def _write_messages(url: str, writer: str, session_id: str, count: int) -> int:
    """Open ``session_id`` and append ``count`` one-token messages, one append each."""
    with _open(url, writer) as own:
        own.append(f"session-{session_id}", [controls.opened(session_id, source="cli")])
        for i in range(count):
            own.append(
                f"session-{session_id}",
                [controls.message(session_id, f"tail {i}", message_id=f"{writer}-{i}")],
            )
    return count


def _write_mixed(url: str, writer: str, session_id: str, count: int) -> int:
    """Like ``_write_messages`` but with 1-3 message appends, some to two sessions at once."""
    written = 0
    with _open(url, writer) as own:
        own.append(f"session-{session_id}", [controls.opened(session_id, source="cli")])
        while written < count:
            size = min(1 + written % 3, count - written)
            events = [
                controls.message(session_id, "mixed", message_id=f"{writer}-{written + j}")
                for j in range(size)
            ]
            own.append_streams(
                [
                    StreamAppend(stream=f"session-{session_id}", events=events),
                    StreamAppend(stream=f"key-{writer}", events=[controls.switched(writer)]),
                ]
            )
            written += size
    return written


def _child(queue: Any, target: Callable[..., int], args: tuple[Any, ...]) -> None:
    try:
        queue.put(("ok", target(*args)))
    except BaseException:
        queue.put(("error", traceback.format_exc()))


class _Tail:
    """A runner tailing the log in a thread until stopped; records any error it raises."""

    def __init__(self, url: str) -> None:
        self.store = _open(url, "tailer")
        self.runner = ProjectionRunner(
            self.store, [SearchProjection(), UsageProjection()], batch_size=7
        )
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.runner.run(self.stop, poll_interval=0.01)
        except BaseException:
            self.errors.append(traceback.format_exc())

    def __enter__(self) -> _Tail:
        self.thread.start()
        return self

    @staticmethod
    def _caught_up(store: EventStore) -> bool:
        marks = _checkpoints(store)
        return len(marks) == 2 and set(marks.values()) == {store.last_position()}

    def settle(self, store: EventStore) -> None:
        """Wait until both checkpoints reach the end of the log, then stop the tail."""
        deadline = time.monotonic() + TIMEOUT
        # The end of the log is read again each time: on PostgreSQL it is what is final, which
        # moves on as transactions anywhere on the server end.
        while not self._caught_up(store):
            assert not self.errors, "\n".join(self.errors)
            assert time.monotonic() < deadline, "the tailing runner did not catch up"
            time.sleep(0.02)
        self.stop.set()

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(TIMEOUT)
        self.store.close()
        assert not self.thread.is_alive(), "the tailing runner did not stop"
        assert not self.errors, "\n".join(self.errors)


@pytest.fixture
def tail(migrated_url: str) -> Callable[[], _Tail]:
    """A factory of tailing runners (each started by ``with``)."""
    return lambda: _Tail(migrated_url)


def test_a_runner_tailing_writer_threads_skips_no_event(
    migrated_url: str, store: EventStore, tail: Callable[[], _Tail]
) -> None:
    """Writer threads append while a runner tails: the usage total equals the messages written."""
    writers, per_writer = 4, 40
    with tail() as tailing:
        _run_threads(
            [
                (lambda i=i: _write_mixed(migrated_url, f"w{i}", f"t{i}", per_writer))
                for i in range(writers)
            ]
        )
        tailing.settle(store)
    assert _usage(store) == {"cli": (writers, writers * per_writer, 0, 0)}
    assert _documents(store) == writers * per_writer


@pytest.mark.slow
def test_a_runner_tailing_writer_processes_skips_no_event(
    migrated_url: str, store: EventStore, tail: Callable[[], _Tail]
) -> None:
    """Writer processes append while a runner tails: no event is skipped or applied twice."""
    writers, per_writer = 3, 40
    queue: Any = CTX.Queue()
    procs = [
        CTX.Process(
            target=_child,
            args=(queue, _write_messages, (migrated_url, f"p{i}", f"p{i}", per_writer)),
            daemon=True,
        )
        for i in range(writers)
    ]
    try:
        with tail() as tailing:
            for proc in procs:
                proc.start()
            reports = [queue.get(timeout=TIMEOUT) for _ in procs]
            assert all(status == "ok" for status, _ in reports), reports
            tailing.settle(store)
    finally:
        for proc in procs:
            proc.join(TIMEOUT)
            if proc.is_alive():
                proc.kill()
    assert _usage(store) == {"cli": (writers, writers * per_writer, 0, 0)}
    assert _documents(store) == writers * per_writer
