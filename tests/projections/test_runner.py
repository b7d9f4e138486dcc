"""The asynchronous projections (``search``, ``usage``) driven by ``ProjectionRunner``.

The runner applies each batch and moves its checkpoint in one transaction, so these tests pin:
views lag the log until the runner runs, a failure before the checkpoint changes nothing, a rerun
applies each event exactly once, two runners never apply an event twice, and a runner tailing
concurrent writers never skips an event. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
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
from ledger.errors import InvalidArgumentError, ProjectionError
from ledger.records import RecordedEvent
from ledger.schema import search_documents, usage_daily
from ledger.views import SessionViews
from projections.base import Projection
from projections.checkpoint import read_checkpoints
from projections.runner import ProjectionRunner
from projections.search import SearchProjection
from projections.sessions import SessionsProjection
from projections.usage import UsageProjection
from tests import controls
from tests.helpers import total_events

CTX = multiprocessing.get_context("spawn")
#: Longest any wait (threads, processes, the tailing runner) may take before the test fails.
TIMEOUT = 30.0

Usage = dict[str, tuple[int, int, int, int]]
"""Usage per source summed over days: (sessions, messages, retractions, tokens)."""


# -- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def views(store: EventStore) -> SessionViews:
    """Read access to the views of the ``store`` under test."""
    return SessionViews(store.engine)


@pytest.fixture
def runner(store: EventStore) -> ProjectionRunner:
    """A runner of both asynchronous projections on ``store``."""
    return ProjectionRunner(store, [SearchProjection(), UsageProjection()])


def _open(url: str, writer: str) -> EventStore:
    return EventStore.open(url, writer=writer, settings=Settings.from_env({}))


def _seed(store: EventStore) -> dict[str, str]:
    """Two sessions on two sources with indexed and non-indexed messages; returns message ids."""
    fox = controls.message("a", "the quick brown fox jumps", token_count=7)
    dogs = controls.message("a", "lazy dogs sleep all day", role="assistant", token_count=11)
    tool = controls.message("a", "fox tool output", role="tool", tool_name="grep")
    bread = controls.message("b", "brown bread recipe", token_count=3)
    store.append("session-a", [controls.opened("a", "k1", source="cli"), fox, dogs, tool])
    store.append("session-b", [controls.opened("b", "k2", source="telegram"), bread])
    return {
        "fox": fox.message_id,
        "dogs": dogs.message_id,
        "tool": tool.message_id,
        "bread": bread.message_id,
    }


def _usage(store: EventStore) -> Usage:
    """The usage view summed over days, per source."""
    t = usage_daily
    query = sa.select(
        t.c.source,
        sa.func.sum(t.c.sessions),
        sa.func.sum(t.c.messages),
        sa.func.sum(t.c.retractions),
        sa.func.sum(t.c.tokens),
    ).group_by(t.c.source)
    with store.engine.connect() as conn:
        return {row[0]: tuple(int(v) for v in row[1:]) for row in conn.execute(query)}  # type: ignore[misc]


def _documents(store: EventStore) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(search_documents)).scalar_one()
        )


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


def test_search_is_empty_until_the_runner_catches_up(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """Search is asynchronous: appended messages appear only after the runner has run."""
    _seed(store)
    assert views.search("fox") == []
    runner.catch_up()
    assert len(views.search("fox")) == 1


def test_search_finds_a_message_with_a_highlighted_snippet(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """A hit names the session, message, role and position, with the word marked in brackets."""
    ids = _seed(store)
    runner.catch_up()
    (hit,) = views.search("fox")
    assert (hit.session_id, hit.message_id, hit.role) == ("a", ids["fox"], "user")
    (message,) = [m for m in views.transcript("a") if m.message_id == ids["fox"]]
    assert hit.position == message.position
    assert "[fox]" in hit.snippet
    assert "quick brown" in hit.snippet


def test_search_matches_every_word_of_the_query(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """All words must occur: "brown" finds two messages, "brown bread" only one."""
    ids = _seed(store)
    runner.catch_up()
    assert {h.message_id for h in views.search("brown")} == {ids["fox"], ids["bread"]}
    assert [h.message_id for h in views.search("brown bread")] == [ids["bread"]]


def test_search_ranks_the_better_match_first(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """A message repeating the word outranks one that has it once, and ranks descend."""
    weak = controls.message("a", "apple pear plum")
    strong = controls.message("a", "apple apple apple")
    store.append("session-a", [controls.opened("a"), weak, strong])
    runner.catch_up()
    hits = views.search("apple")
    assert [h.message_id for h in hits] == [strong.message_id, weak.message_id]
    assert hits[0].rank > hits[1].rank


def test_search_filters_by_session_id(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """``session_id=`` keeps only hits from that session."""
    ids = _seed(store)
    runner.catch_up()
    assert [h.message_id for h in views.search("brown", session_id="b")] == [ids["bread"]]
    assert views.search("fox", session_id="b") == []


def test_search_limit_caps_the_number_of_hits(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """``limit=`` returns at most that many hits."""
    _seed(store)
    runner.catch_up()
    assert len(views.search("brown", limit=1)) == 1


def test_search_does_not_index_tool_messages(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """Tool output is not searchable; only user and assistant messages are."""
    _seed(store)
    runner.catch_up()
    assert views.search("output") == []
    assert _documents(store) == 3


@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
def test_search_rejects_an_empty_query(store: EventStore, views: SessionViews, query: str) -> None:
    """A query without words raises InvalidArgumentError naming the query."""
    with pytest.raises(InvalidArgumentError, match="Invalid search query"):
        views.search(query)


@pytest.mark.parametrize(
    ("query", "finds"),
    [
        ('fox "', True),
        ("fox*", True),
        ("-fox", True),
        ("fox:", True),
        ('"quick" (brown) fox', True),
        # Operators are words too, and every word must match: no message holds "or"/"near".
        ("fox OR", False),
        ("NEAR(fox", False),
    ],
)
def test_search_treats_query_syntax_as_plain_words(
    store: EventStore, runner: ProjectionRunner, views: SessionViews, query: str, finds: bool
) -> None:
    """Quotes, operators and punctuation in a query are plain words, never syntax."""
    ids = _seed(store)
    runner.catch_up()
    expected = [ids["fox"]] if finds else []
    assert [hit.message_id for hit in views.search(query)] == expected


def test_a_retraction_removes_messages_from_search(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """Once the runner applies an undo, the retracted message is no longer found."""
    ids = _seed(store)
    runner.catch_up()
    store.append("session-a", [controls.retracted("a", ids["fox"])])
    assert len(views.search("fox")) == 1
    runner.catch_up()
    assert views.search("fox") == []
    assert _documents(store) == 2


def test_a_retraction_in_the_same_batch_as_its_message_removes_it(
    store: EventStore, runner: ProjectionRunner, views: SessionViews
) -> None:
    """A message and its retraction applied in one batch leave no search document."""
    gone = controls.message("a", "ephemeral words")
    store.append(
        "session-a", [controls.opened("a"), gone, controls.retracted("a", gone.message_id)]
    )
    runner.catch_up()
    assert views.search("ephemeral") == []
    assert _documents(store) == 0


def test_usage_counts_sessions_messages_retractions_and_tokens_per_source_and_day(
    store: EventStore, runner: ProjectionRunner
) -> None:
    """usage_daily holds, per source and UTC day, the exact counts of what was appended."""
    ids = _seed(store)
    store.append("session-b", [controls.retracted("b", ids["bread"])])
    runner.catch_up()
    days = {r.recorded_at.date() for r in store.read_all()}
    t = usage_daily
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.source)).mappings().all()
    assert {row["day"] for row in rows} <= days
    assert all(isinstance(row["day"], dt.date) for row in rows)
    assert _usage(store) == {"cli": (1, 3, 0, 18), "telegram": (1, 1, 1, 3)}


def test_usage_counts_a_session_without_a_head_under_unknown(
    store: EventStore, runner: ProjectionRunner
) -> None:
    """Messages of a stream nobody opened are counted under the source ``unknown``."""
    store.append("session-x", controls.messages(2, "x"))
    runner.catch_up()
    assert _usage(store) == {"unknown": (0, 2, 0, 0)}


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
    assert _documents(store) == 3


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
    assert _documents(store) == 9


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

    def settle(self, store: EventStore) -> None:
        """Wait until both checkpoints reach the end of the log, then stop the tail."""
        deadline = time.monotonic() + TIMEOUT
        last = store.last_position()
        while set(_checkpoints(store).values()) != {last} or len(_checkpoints(store)) != 2:
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
