"""Property tests: no compaction job changes what a gateway or an operator can observe.

Hypothesis draws gateway histories (sessions opened on a few keys, messages from two writers,
undo/retry, switches, titles, closes) and writes them through ``Ledger``. Then one job runs
(``archive`` of every session, ``keys`` compaction, or a ``snapshot``) and every head (all
columns), every transcript (retracted messages included), every key's active session and the
totals of ``ledger.replay.replay(store.read_all())`` must be what they were, and every
projection must verify clean. Each example gets a fresh SQLite file copied from a migrated
template; one fixed history also runs on PostgreSQL.
"""

from __future__ import annotations

import itertools
import shutil
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ledger import EventStore, Ledger
from ledger.config import Settings
from ledger.maintenance import archive, compact_keys
from ledger.replay import replay
from ledger.streams import session_stream
from projections.snapshot import snapshot
from tests.maintenance.support import AGE, archived_streams, dump_all, let_age, verify_all

#: No shrinking: a history is ~50 writes, and shrinking one costs minutes. A failure prints the
#: drawn history as is; minimal cases live in the deterministic tests of the other files.
SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    database=None,
)
KEYS = 3
#: Fast commits for generated data; a crash is not part of these properties.
FAST = Settings.from_env({"LEDGER_SQLITE_SYNCHRONOUS": "NORMAL"})

Op = tuple[Any, ...]


class Gateway:
    """Writes a drawn history through two ``Ledger`` writers, skipping ops that cannot apply."""

    def __init__(self, ledger: Ledger, other: Ledger) -> None:
        self.writers = (ledger, other)
        self.ledger = ledger
        self.sessions: list[str] = []
        self.counter = itertools.count(1)

    def keys(self) -> list[str]:
        return [f"chat:{i}" for i in range(KEYS)]

    def _pick(self, index: int) -> str | None:
        return self.sessions[index % len(self.sessions)] if self.sessions else None

    def _open_state(self, index: int) -> str | None:
        session_id = self._pick(index)
        if session_id is None:
            return None
        head = self.ledger.head(session_id)
        return session_id if head is not None and head.state == "open" else None

    def apply(self, op: Op) -> None:
        name, *args = op
        getattr(self, f"do_{name}")(*args)

    def do_open(self, key: int, model: int) -> None:
        session_id = self.ledger.open_session(
            self.keys()[key], session_id=f"s{next(self.counter):03d}", model=f"model-{model}"
        )
        self.sessions.append(session_id)

    def do_message(self, index: int, writer: int, role: str, count: int) -> None:
        session_id = self._open_state(index)
        if session_id is None:
            return
        messages = [{"role": role, "content": f"{role} text {next(self.counter)}"}] * count
        ledger = self.writers[writer]
        if count == 1:
            ledger.append_message(session_id, role, messages[0]["content"], token_count=count)
        else:
            ledger.append_messages(
                session_id, [dict(m, content=f"{m['content']}-{i}") for i, m in enumerate(messages)]
            )

    def do_retract(self, index: int, count: int, reason: str) -> None:
        session_id = self._open_state(index)
        if session_id is None:
            return
        head = self.ledger.head(session_id)
        assert head is not None
        if head.message_count >= count:
            self.ledger.retract_messages(session_id, count, reason=reason)

    def do_switch(self, key: int, index: int) -> None:
        session_id = self._pick(index)
        if session_id is not None:
            self.ledger.switch_session(self.keys()[key], session_id)

    def do_close(self, index: int) -> None:
        session_id = self._open_state(index)
        if session_id is not None:
            self.ledger.close_session(session_id)

    def do_title(self, index: int) -> None:
        session_id = self._pick(index)
        if session_id is not None:
            self.ledger.set_title(session_id, f"title {next(self.counter)}")

    def observe(self) -> dict[str, Any]:
        """Everything the jobs must leave unchanged."""
        store = self.ledger.store
        return {
            "heads": dump_all(store, "session_heads")["session_heads"],
            "transcripts": {
                s: self.ledger.transcript(s, include_retracted=True) for s in self.sessions
            },
            "active": {key: self.ledger.active_session(key) for key in self.keys()},
            "replay": msgspec.to_builtins(replay(store.read_all()).guards),
        }


_index = st.integers(0, 20)
_open = st.tuples(st.just("open"), st.integers(0, KEYS - 1), st.integers(0, 1))
_message = st.tuples(
    st.just("message"),
    _index,
    st.integers(0, 1),
    st.sampled_from(["user", "user", "assistant", "tool"]),
    st.integers(1, 3),
)
OPERATION = st.one_of(
    _open,
    _message,
    _message,
    st.tuples(st.just("retract"), _index, st.integers(1, 2), st.sampled_from(["undo", "retry"])),
    st.tuples(st.just("switch"), st.integers(0, KEYS - 1), _index),
    st.tuples(st.just("close"), _index),
    st.tuples(st.just("title"), _index),
)
#: Histories start with a few sessions so later operations have something to work on.
HISTORY = st.builds(
    lambda first, rest: first + rest,
    st.lists(_open, min_size=2, max_size=12),
    st.lists(OPERATION, min_size=20, max_size=60),
)


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """A migrated, empty SQLite file that each example copies."""
    path = tmp_path / "template.db"
    EventStore.open(f"sqlite:///{path}", settings=FAST).close()
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path


def _run_job(name: str, store: EventStore) -> None:
    if name == "archive":
        let_age()
        archive(store, older_than=AGE)
    elif name == "keys":
        let_age()
        compact_keys(store, older_than=AGE)
    else:
        snapshot(store)


def check_job(url: str, name: str, ops: list[Op], settings_: Settings = FAST) -> None:
    """Write ``ops``, run job ``name`` and assert that nothing observable changed."""
    with (
        Ledger.open(url, writer="gateway-1", settings=settings_) as ledger,
        Ledger.open(url, writer="gateway-2", settings=settings_) as other,
    ):
        gateway = Gateway(ledger, other)
        for op in ops:
            gateway.apply(op)
        before = gateway.observe()
        assert verify_all(ledger.store) == {}
        _run_job(name, ledger.store)
        if name == "archive":
            assert archived_streams(ledger.store) == {session_stream(s) for s in gateway.sessions}
        after = gateway.observe()
        for part in before:
            if name == "keys" and part == "replay":
                # Keys compaction removes switch history by design. Replay infers the active
                # session where the history is gone, which is exact for logs a gateway writes
                # (user messages go to the active session; test_keys_compaction_keeps_replay_totals)
                # but not for these random histories, which send user messages anywhere.
                continue
            assert after[part] == before[part], f"{name} changed {part}"
        assert verify_all(ledger.store) == {}


def _fresh(template: Path) -> str:
    path = template.with_name(f"{uuid.uuid4().hex}.db")
    shutil.copy(template, path)
    return f"sqlite:///{path}"


@SETTINGS
@given(ops=HISTORY)
def test_archive_of_every_session_changes_nothing_observable(template: Path, ops: list[Op]) -> None:
    """Archiving all sessions keeps heads, transcripts, active sessions and replay totals."""
    check_job(_fresh(template), "archive", ops)


@SETTINGS
@given(ops=HISTORY)
def test_keys_compaction_changes_nothing_observable(template: Path, ops: list[Op]) -> None:
    """Dropping old key-stream switches keeps heads, transcripts and active sessions."""
    check_job(_fresh(template), "keys", ops)


@SETTINGS
@given(ops=HISTORY)
def test_snapshot_changes_nothing_observable(template: Path, ops: list[Op]) -> None:
    """Taking a snapshot keeps heads, transcripts, active sessions and replay totals."""
    check_job(_fresh(template), "snapshot", ops)


#: A fixed history with every kind of operation, for the PostgreSQL smoke run.
SMOKE: list[Op] = [
    ("open", 0, 0),
    ("message", 0, 0, "user", 1),
    ("message", 0, 0, "assistant", 2),
    ("open", 0, 1),
    ("message", 1, 0, "user", 1),
    ("retract", 1, 1, "undo"),
    ("message", 1, 0, "user", 1),
    ("switch", 0, 0),
    ("message", 0, 1, "assistant", 1),
    ("message", 0, 0, "user", 1),
    ("open", 1, 0),
    ("title", 2),
    ("message", 2, 0, "user", 3),
    ("retract", 2, 2, "retry"),
    ("close", 2),
    ("switch", 1, 1),
    ("message", 1, 0, "user", 1),
]


@pytest.mark.parametrize("job", ["archive", "keys", "snapshot"])
def test_fixed_history_job_changes_nothing_observable(
    migrated_url: str, settings: Settings, job: str
) -> None:
    """A fixed history through each job keeps everything observable, on both backends."""
    check_job(migrated_url, job, SMOKE, settings)
